package dnnl

import (
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

// BenchmarkBatchNormStep times a training-mode forward and backward of a
// ResNet-18 width-16 first-stage batch norm (batch 128, 32x32x16, NHWC).
func BenchmarkBatchNormStep(b *testing.B) {
	be, err := New(0)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	s := ops.BNSpec{N: 128, Spatial: 32 * 32, C: 16, Eps: 1e-5}
	bn, err := be.BatchNorm(s)
	if err != nil {
		b.Fatal(err)
	}
	n := s.N * s.Spatial * s.C
	x, y, dy, dx := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(i%97) * 0.01
		dy[i] = float32(i%89) * 0.01
	}
	g, bt, m, v, dg, db := make([]float32, s.C), make([]float32, s.C), make([]float32, s.C), make([]float32, s.C), make([]float32, s.C), make([]float32, s.C)
	for i := range g {
		g[i] = 1
	}
	b.SetBytes(int64(4 * n * 5))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bn.ForwardTrain(x, g, bt, y, m, v); err != nil {
			b.Fatal(err)
		}
		if err := bn.Backward(x, g, m, v, dy, dx, dg, db); err != nil {
			b.Fatal(err)
		}
	}
}
