package ref

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

var linearSpecs = []ops.LinearSpec{
	{N: 3, In: 4, Out: 5, Bias: true},
	{N: 1, In: 7, Out: 2},
	{N: 5, In: 1, Out: 3, Bias: true},
}

func TestLinearForwardHand(t *testing.T) {
	s := ops.LinearSpec{N: 2, In: 3, Out: 2, Bias: true}
	x := []float64{1, 2, 3, -1, 0, 1}
	w := []float64{1, 0, -1, 2, 1, 0}
	b := []float64{0.5, -1}
	y := make([]float64, 4)
	must(t, LinearForward(s, 2, x, w, b, y))
	// row 0: (1-3)+0.5, (2+2)-1; row 1: (-1-1)+0.5, (-2+0)-1.
	assertClose(t, "y", y, []float64{-1.5, 3, -1.5, -3}, 0)
}

func TestLinearGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, s := range linearSpecs {
		name := fmt.Sprintf("%+v", s)
		x, w := randSlice(rng, s.N*s.In), randSlice(rng, s.Out*s.In)
		var b, db []float64
		if s.Bias {
			b, db = randSlice(rng, s.Out), make([]float64, s.Out)
		}
		r := randSlice(rng, s.N*s.Out)
		y := make([]float64, len(r))
		loss := func() float64 {
			must(t, LinearForward(s, 2, x, w, b, y))
			return dot(r, y)
		}
		dx, dw := make([]float64, len(x)), make([]float64, len(w))
		must(t, LinearBackward(s, 2, x, w, r, dx, dw, db))
		assertClose(t, name+" dx", dx, numGrad(x, 1e-6, loss), 1e-8)
		assertClose(t, name+" dw", dw, numGrad(w, 1e-6, loss), 1e-8)
		if s.Bias {
			assertClose(t, name+" db", db, numGrad(b, 1e-6, loss), 1e-8)
		}
	}
}

func TestLinearBackendFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	be := New()
	for _, s := range linearSpecs {
		name := fmt.Sprintf("%+v", s)
		op, err := be.Linear(s)
		must(t, err)
		x, w, dy := randSlice(rng, s.N*s.In), randSlice(rng, s.Out*s.In), randSlice(rng, s.N*s.Out)
		var b []float64
		var db32 []float32
		if s.Bias {
			b, db32 = randSlice(rng, s.Out), make([]float32, s.Out)
		}
		y := make([]float64, s.N*s.Out)
		must(t, LinearForward(s, 1, x, w, b, y))
		y32 := make([]float32, len(y))
		must(t, op.Forward(to32(x), to32(w), to32(b), y32))
		assertClose(t, name+" y32", to64(y32), y, 1e-5)
		dx, dw := make([]float64, len(x)), make([]float64, len(w))
		must(t, LinearBackward(s, 1, x, w, dy, dx, dw, nil))
		dx32, dw32 := make([]float32, len(x)), make([]float32, len(w))
		must(t, op.Backward(to32(x), to32(w), to32(dy), dx32, dw32, db32))
		assertClose(t, name+" dx32", to64(dx32), dx, 1e-5)
		assertClose(t, name+" dw32", to64(dw32), dw, 1e-5)
		if err := op.Forward(to32(x), to32(w)[1:], to32(b), y32); err == nil {
			t.Errorf("%s: short w accepted", name)
		}
	}
}

func TestElementwise(t *testing.T) {
	be := New()
	x := []float32{-1, 0, 2, -0.5, 3}
	y := make([]float32, 5)
	must(t, be.ReLU(x, y))
	assertClose(t, "relu", to64(y), []float64{0, 0, 2, 0, 3}, 0)
	dy := []float32{1, 2, 3, 4, 5}
	dx := make([]float32, 5)
	must(t, be.ReLUBackward(y, dy, dx))
	assertClose(t, "relu backward", to64(dx), []float64{0, 0, 3, 0, 5}, 0)
	must(t, be.ReLUBackward(y, dy, dy)) // in place
	assertClose(t, "relu backward in place", to64(dy), []float64{0, 0, 3, 0, 5}, 0)
	must(t, be.ReLU(x, x)) // in place
	assertClose(t, "relu in place", to64(x), []float64{0, 0, 2, 0, 3}, 0)

	a, b := []float32{1, 2, 3}, []float32{10, 20, 30}
	must(t, be.Add(a, b, a))
	assertClose(t, "add", to64(a), []float64{11, 22, 33}, 0)
	if err := be.Add(a, b[:2], a); err == nil {
		t.Error("add accepted mismatched lengths")
	}
	if err := be.ReLU(x, y[:4]); err == nil {
		t.Error("relu accepted mismatched lengths")
	}

	// Global average pooling: n=2, hw=3, c=2.
	g := []float32{1, 10, 2, 20, 3, 30, -1, 0, -2, 0, -6, 3}
	gy := make([]float32, 4)
	must(t, be.GlobalAvgPool(g, 2, 3, 2, gy))
	assertClose(t, "gap", to64(gy), []float64{2, 20, -3, 1}, 1e-7)
	gdx := make([]float32, 12)
	must(t, be.GlobalAvgPoolBackward([]float32{3, 6, -3, 0}, 2, 3, 2, gdx))
	assertClose(t, "gap backward", to64(gdx), []float64{1, 2, 1, 2, 1, 2, -1, 0, -1, 0, -1, 0}, 1e-7)
	if err := be.GlobalAvgPool(g, 2, 2, 2, gy); err == nil {
		t.Error("gap accepted mismatched lengths")
	}
	if be.Name() != "ref" || be.Threads() < 1 || be.Close() != nil {
		t.Error("backend identity")
	}
}

func TestElementwiseGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	// ReLU: values kept at least 0.05 away from the kink.
	x := randSlice(rng, 13)
	for i := range x {
		if x[i] >= 0 {
			x[i] += 0.05
		} else {
			x[i] -= 0.05
		}
	}
	r := randSlice(rng, 13)
	y := make([]float64, 13)
	loss := func() float64 {
		must(t, ReLU(x, y))
		return dot(r, y)
	}
	loss()
	dx := make([]float64, 13)
	must(t, ReLUBackward(y, r, dx))
	assertClose(t, "relu dx", dx, numGrad(x, 1e-6, loss), 1e-8)

	// Global average pooling, n=2 hw=5 c=3.
	g := randSlice(rng, 30)
	rg := randSlice(rng, 6)
	gy := make([]float64, 6)
	gloss := func() float64 {
		must(t, GlobalAvgPool(g, 2, 5, 3, gy))
		return dot(rg, gy)
	}
	gdx := make([]float64, 30)
	must(t, GlobalAvgPoolBackward(rg, 2, 5, 3, gdx))
	assertClose(t, "gap dx", gdx, numGrad(g, 1e-6, gloss), 1e-8)
}
