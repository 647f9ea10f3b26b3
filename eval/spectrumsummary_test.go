package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

// rotated returns Q diag(ev) Q^T for a random orthogonal Q (product of
// Householder reflections), so the eigenvalues are known.
func rotated(rng *rand.Rand, ev []float64) []float64 {
	d := len(ev)
	a := make([]float64, d*d)
	for i, v := range ev {
		a[i*d+i] = v
	}
	for k := 0; k < 3; k++ {
		u := randn(rng, d, 1)
		nu := 0.0
		for _, x := range u {
			nu += x * x
		}
		// H = I - 2 u u^T / |u|^2; a <- H a H.
		h := make([]float64, d*d)
		for i := 0; i < d; i++ {
			for j := 0; j < d; j++ {
				h[i*d+j] = -2 * u[i] * u[j] / nu
				if i == j {
					h[i*d+j]++
				}
			}
		}
		a = matmul(matmul(h, a, d), h, d)
	}
	for i := 0; i < d; i++ { // exact symmetry
		for j := i + 1; j < d; j++ {
			a[j*d+i] = a[i*d+j]
		}
	}
	return a
}

func matmul(a, b []float64, d int) []float64 {
	c := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for k := 0; k < d; k++ {
			for j := 0; j < d; j++ {
				c[i*d+j] += a[i*d+k] * b[k*d+j]
			}
		}
	}
	return c
}

func TestSpectrumOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	ev := []float64{1e-12, 3, 0.05, 1, 1e-9, 0.5}
	s, err := SpectrumOf(rotated(rng, ev), len(ev))
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{3, 1, 0.5, 0.05, 1e-9, 1e-12}
	for i, w := range want {
		if math.Abs(s.Eigenvalues[i]-w) > 1e-12 {
			t.Errorf("eigenvalue %d = %g, want %g", i, s.Eigenvalues[i], w)
		}
	}
	if s.Below1e8 != 2 || s.Above1e1 != 3 {
		t.Errorf("counts below 1e-8 %d (want 2), above 1e-1 %d (want 3)", s.Below1e8, s.Above1e1)
	}
	sum, h := 0.0, 0.0
	for _, v := range want {
		sum += v
	}
	for _, v := range want {
		h -= v / sum * math.Log(v/sum)
	}
	if math.Abs(s.EffectiveRank-math.Exp(h)) > 1e-9 {
		t.Errorf("effective rank %g, want %g", s.EffectiveRank, math.Exp(h))
	}

	// Equal eigenvalues: effective rank D; one direction: 1.
	flat, err := SpectrumOf(rotated(rng, []float64{2, 2, 2, 2, 2}), 5)
	if err != nil || math.Abs(flat.EffectiveRank-5) > 1e-9 {
		t.Errorf("flat spectrum: rank %g, err %v", flat.EffectiveRank, err)
	}
	one, err := SpectrumOf(rotated(rng, []float64{0, 0, 7, 0}), 4)
	if err != nil || math.Abs(one.EffectiveRank-1) > 1e-6 {
		t.Errorf("rank-one spectrum: rank %g, err %v", one.EffectiveRank, err)
	}
	if _, err := SpectrumOf([]float64{1, 2, 3}, 2); err == nil {
		t.Error("wrong length accepted")
	}
	if _, err := SpectrumOf([]float64{1, math.NaN(), math.NaN(), 1}, 2); err == nil {
		t.Error("NaN accepted")
	}
}

// randn returns n standard normal values times scale.
func randn(rng *rand.Rand, n int, scale float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64() * scale
	}
	return x
}
