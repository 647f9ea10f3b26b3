package ref

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

var bnSpecs = []ops.BNSpec{
	{N: 5, Spatial: 1, C: 3, Eps: 1e-5},  // BatchNorm1d
	{N: 2, Spatial: 6, C: 4, Eps: 1e-5},  // BatchNorm2d on 2x3 maps
	{N: 1, Spatial: 4, C: 2, Eps: 1e-5},  // batch 1
	{N: 3, Spatial: 5, C: 1, Eps: 1e-3},  // odd sizes, one channel
	{N: 4, Spatial: 1, C: 7, Eps: 1e-5},  // 1-D, odd width
	{N: 2, Spatial: 9, C: 3, Eps: 0.125}, // large eps
}

func TestBatchNormForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range bnSpecs {
		name := fmt.Sprintf("%+v", s)
		m := s.N * s.Spatial
		x := randSlice(rng, m*s.C)
		for i := range x {
			x[i] = 3*x[i] + 1 // mean away from 0, spread away from 1
		}
		gamma, beta := randSlice(rng, s.C), randSlice(rng, s.C)
		y := make([]float64, len(x))
		mean, variance := make([]float64, s.C), make([]float64, s.C)
		must(t, BatchNormForwardTrain(s, x, gamma, beta, y, mean, variance))
		// Independent statistics: E[x] and E[x^2] - E[x]^2, channel by channel.
		want := make([]float64, len(x))
		for c := 0; c < s.C; c++ {
			s1, s2 := 0.0, 0.0
			for r := 0; r < m; r++ {
				s1 += x[r*s.C+c]
				s2 += x[r*s.C+c] * x[r*s.C+c]
			}
			mu := s1 / float64(m)
			v := s2/float64(m) - mu*mu
			if math.Abs(mean[c]-mu) > 1e-12 || math.Abs(variance[c]-v) > 1e-10 {
				t.Fatalf("%s: channel %d stats (%g, %g), want (%g, %g)", name, c, mean[c], variance[c], mu, v)
			}
			for r := 0; r < m; r++ {
				want[r*s.C+c] = gamma[c]*(x[r*s.C+c]-mu)/math.Sqrt(v+float64(s.Eps)) + beta[c]
			}
		}
		assertClose(t, name+" y", y, want, 1e-10)
		// Inference with the batch statistics reproduces training mode.
		yi := make([]float64, len(x))
		must(t, BatchNormForwardInfer(s, x, gamma, beta, mean, variance, yi))
		assertClose(t, name+" infer", yi, y, 1e-12)
	}
}

func TestBatchNormInferHand(t *testing.T) {
	s := ops.BNSpec{N: 2, Spatial: 1, C: 2, Eps: 0}
	x := []float64{1, 10, 3, 20}
	y := make([]float64, 4)
	// channel 0: (x-1)/2*3+1; channel 1: (x-10)/4*(-1)+0.
	must(t, BatchNormForwardInfer(s, x, []float64{3, -1}, []float64{1, 0}, []float64{1, 10}, []float64{4, 16}, y))
	assertClose(t, "y", y, []float64{1, 0, 4, -2.5}, 1e-15)
}

func TestBatchNormGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, s := range bnSpecs {
		name := fmt.Sprintf("%+v", s)
		n := s.N * s.Spatial * s.C
		x, gamma, beta := randSlice(rng, n), randSlice(rng, s.C), randSlice(rng, s.C)
		r := randSlice(rng, n)
		y := make([]float64, n)
		mean, variance := make([]float64, s.C), make([]float64, s.C)
		loss := func() float64 {
			must(t, BatchNormForwardTrain(s, x, gamma, beta, y, mean, variance))
			return dot(r, y)
		}
		loss()
		dx, dgamma, dbeta := make([]float64, n), make([]float64, s.C), make([]float64, s.C)
		must(t, BatchNormBackward(s, x, gamma, mean, variance, r, dx, dgamma, dbeta))
		const h, tol = 1e-6, 1e-6
		assertClose(t, name+" dx", dx, numGrad(x, h, loss), tol)
		assertClose(t, name+" dgamma", dgamma, numGrad(gamma, h, loss), tol)
		assertClose(t, name+" dbeta", dbeta, numGrad(beta, h, loss), tol)
	}
}

func TestBatchNormBackendFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	be := New()
	for _, s := range bnSpecs {
		name := fmt.Sprintf("%+v", s)
		n := s.N * s.Spatial * s.C
		x, gamma, beta, dy := randSlice(rng, n), randSlice(rng, s.C), randSlice(rng, s.C), randSlice(rng, n)
		op, err := be.BatchNorm(s)
		must(t, err)
		y, mean, variance := make([]float64, n), make([]float64, s.C), make([]float64, s.C)
		must(t, BatchNormForwardTrain(s, x, gamma, beta, y, mean, variance))
		y32, m32, v32 := make([]float32, n), make([]float32, s.C), make([]float32, s.C)
		must(t, op.ForwardTrain(to32(x), to32(gamma), to32(beta), y32, m32, v32))
		assertClose(t, name+" y32", to64(y32), y, 1e-4)
		assertClose(t, name+" var32", to64(v32), variance, 1e-5)
		dx, dg, db := make([]float64, n), make([]float64, s.C), make([]float64, s.C)
		must(t, BatchNormBackward(s, x, gamma, mean, variance, dy, dx, dg, db))
		dx32, dg32, db32 := make([]float32, n), make([]float32, s.C), make([]float32, s.C)
		must(t, op.Backward(to32(x), to32(gamma), m32, v32, to32(dy), dx32, dg32, db32))
		assertClose(t, name+" dx32", to64(dx32), dx, 1e-3)
		assertClose(t, name+" dgamma32", to64(dg32), dg, 1e-4)
		assertClose(t, name+" dbeta32", to64(db32), db, 1e-5)
		if err := op.ForwardTrain(to32(x), to32(gamma)[:s.C-1], to32(beta), y32, m32, v32); err == nil {
			t.Errorf("%s: short gamma accepted", name)
		}
		if err := op.Backward(to32(x), to32(gamma), m32, v32, to32(dy)[1:], dx32, dg32, db32); err == nil {
			t.Errorf("%s: short dy accepted", name)
		}
	}
	if _, err := be.BatchNorm(ops.BNSpec{N: 0, Spatial: 1, C: 1}); err == nil {
		t.Error("empty batch norm accepted")
	}
}
