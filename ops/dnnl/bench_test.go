package dnnl

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

// resnet18CIFAR lists the distinct convolutions of ResNet-18's CIFAR variant
// at width 16 and batch 128 (3x3 stem, four stages of two basic blocks, 1x1
// strided shortcuts) with the number of times each occurs in the network.
func resnet18CIFAR() []struct {
	spec  ops.ConvSpec
	count int
} {
	c3 := func(h, c, k, stride int) ops.ConvSpec {
		return ops.ConvSpec{N: 128, H: h, W: h, C: c, K: k, KH: 3, KW: 3, Stride: stride, Pad: 1}
	}
	c1 := func(h, c, k int) ops.ConvSpec {
		return ops.ConvSpec{N: 128, H: h, W: h, C: c, K: k, KH: 1, KW: 1, Stride: 2, Pad: 0}
	}
	return []struct {
		spec  ops.ConvSpec
		count int
	}{
		{c3(32, 3, 16, 1), 1},   // stem
		{c3(32, 16, 16, 1), 4},  // stage 1
		{c3(32, 16, 32, 2), 1},  // stage 2 entry
		{c1(32, 16, 32), 1},     // stage 2 shortcut
		{c3(16, 32, 32, 1), 3},  // stage 2
		{c3(16, 32, 64, 2), 1},  // stage 3 entry
		{c1(16, 32, 64), 1},     // stage 3 shortcut
		{c3(8, 64, 64, 1), 3},   // stage 3
		{c3(8, 64, 128, 2), 1},  // stage 4 entry (4x4 output)
		{c1(8, 64, 128), 1},     // stage 4 shortcut
		{c3(4, 128, 128, 1), 3}, // stage 4
	}
}

// BenchmarkConvResNet18 runs Forward then Backward (data gradient except for
// the stem, weight gradient) per iteration and reports GFLOPS counting
// 2*N*OH*OW*K*C*KH*KW per pass.
func BenchmarkConvResNet18(b *testing.B) {
	for _, l := range resnet18CIFAR() {
		s := l.spec
		name := fmt.Sprintf("%dx%d_%d-%d_k%d_s%d", s.H, s.W, s.C, s.K, s.KH, s.Stride)
		b.Run(name, func(b *testing.B) { benchConv(b, s) })
	}
}

// convBench holds one convolution with its buffers for benchmarking.
type convBench struct {
	op        *conv
	c         convCase
	y, dx, dw []float32
	flops     float64 // forward + backward
	spec      ops.ConvSpec
	count     int
}

func newConvBench(b *testing.B, d *Backend, s ops.ConvSpec, count int) *convBench {
	opi, err := d.Conv(s)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	oh, ow := s.OutHW()
	cb := &convBench{op: opi.(*conv), c: newConvCase(r, s), y: make([]float32, s.N*oh*ow*s.K), spec: s, count: count}
	cb.dw = make([]float32, len(cb.c.w))
	passes := 2.0
	if s.C > 3 { // the stem needs no data gradient
		cb.dx = make([]float32, len(cb.c.x))
		passes = 3
	}
	cb.flops = passes * 2 * float64(s.N*oh*ow*s.K*s.C*s.KH*s.KW)
	// One untimed step touches every buffer first.
	cb.run(b)
	return cb
}

func (cb *convBench) run(b *testing.B) {
	if err := cb.op.Forward(cb.c.x, cb.c.w, nil, cb.y); err != nil {
		b.Fatal(err)
	}
	if err := cb.op.Backward(cb.c.x, cb.c.w, cb.c.dy, cb.dx, cb.dw, nil); err != nil {
		b.Fatal(err)
	}
}

func benchConv(b *testing.B, s ops.ConvSpec) {
	d, err := New(0)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	cb := newConvBench(b, d, s, 1)
	impl := cb.op.impl()
	b.Logf("%+v: forward %s, backward data %s, backward weights %s", s, impl[0], impl[1], impl[2])
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cb.run(b)
	}
	b.ReportMetric(cb.flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}

// BenchmarkConvResNet18Step runs every convolution of one ResNet-18 (CIFAR,
// width 16, batch 128) training step, forward and backward, per iteration.
func BenchmarkConvResNet18Step(b *testing.B) {
	d, err := New(0)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var layers []*convBench
	flops := 0.0
	for _, l := range resnet18CIFAR() {
		cb := newConvBench(b, d, l.spec, l.count)
		layers = append(layers, cb)
		flops += float64(l.count) * cb.flops
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, cb := range layers {
			for j := 0; j < cb.count; j++ {
				cb.run(b)
			}
		}
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}
