package dnnl

import (
	"math"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/ref"
)

// tol is the accepted error relative to the largest magnitude of the
// reference result. Both backends compute in float32 storage, but oneDNN sums
// in float32 in a blocked, vectorised order while ref accumulates in float64;
// for the sums in these tests (at most a few thousand terms) the float32
// rounding error stays around 1e-6 of the largest term, so 1e-4 leaves a wide
// margin while still catching any indexing or layout mistake (those give
// errors of order 1).
const tol = 1e-4

// garbageValue prefills outputs so that a test notices an output that an
// operator failed to overwrite.
const garbageValue = 777

// backends returns a fresh oneDNN backend (closed at the end of the test)
// and the reference backend.
func backends(t testing.TB) (*Backend, ops.Backend) {
	t.Helper()
	d, err := New(2)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d, ref.New()
}

// randn returns n normal values with the given standard deviation and mean.
func randn(r *rand.Rand, n int, std, mean float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()*std + mean)
	}
	return x
}

// garbage returns n values that no operator would produce.
func garbage(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = garbageValue
	}
	return x
}

// assertClose fails the test when got differs from want by more than tol
// times the largest magnitude of want (or contains NaN).
func assertClose(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", name, len(got), len(want))
	}
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	if scale == 0 {
		scale = 1
	}
	worst, at := 0.0, -1
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if !(d <= worst) {
			worst, at = d, i
		}
	}
	if !(worst <= tol*scale) {
		t.Errorf("%s: max error %.3g at %d (got %v, want %v), scale %.3g, tolerance %.3g",
			name, worst, at, got[at], want[at], scale, tol*scale)
	}
}

// mustNoErr fails the test now when err is not nil.
func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
