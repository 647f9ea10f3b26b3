package ref

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randSlice returns n values uniform in [-1, 1).
func randSlice(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 2*rng.Float64() - 1
	}
	return v
}

// dot returns sum(a .* b), the scalar objective of the gradient checks.
func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// numGrad returns the central finite-difference gradient of f with respect
// to every element of p (perturbed in place and restored).
func numGrad(p []float64, h float64, f func() float64) []float64 {
	g := make([]float64, len(p))
	for i := range p {
		orig := p[i]
		p[i] = orig + h
		fp := f()
		p[i] = orig - h
		fm := f()
		p[i] = orig
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// assertClose fails when |got-want| > tol*max(1, |want|) for any element.
func assertClose(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", name, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); !(d <= tol*math.Max(1, math.Abs(want[i]))) {
			t.Fatalf("%s[%d] = %.12g, want %.12g (diff %.3g)", name, i, got[i], want[i], d)
		}
	}
}

// to32 converts a float64 slice to float32.
func to32(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = float32(x)
	}
	return o
}

// to64 converts a float32 slice to float64.
func to64(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, x := range v {
		o[i] = float64(x)
	}
	return o
}

// must fails the test on a non-nil error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
