package nn

import (
	"math"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/tensor"
)

// objective is L = sum(r .* y) in float64, the randomised scalar the
// gradient checks differentiate; dL/dy = r.
func objective(y, r *tensor.Tensor) float64 {
	var s float64
	for i, v := range y.Data {
		s += float64(v) * float64(r.Data[i])
	}
	return s
}

func randTensor(rng *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64())
	}
	return t
}

// randomiseBN gives every batch norm of l non-trivial affine parameters so
// that gradient checks exercise them.
func randomiseBN(params []*Param, rng *rand.Rand) {
	for _, p := range params {
		switch p.Kind {
		case KindBNWeight:
			for i := range p.Value.Data {
				p.Value.Data[i] = float32(0.5 + rng.Float64())
			}
		case KindBNBias:
			for i := range p.Value.Data {
				p.Value.Data[i] = float32(0.4*rng.Float64() - 0.2)
			}
		}
	}
}

// gradCheck compares the analytic gradients of L = sum(r .* layer(x)) (slot
// 0, training mode) with central finite differences, for up to perTensor
// random coordinates of x (when checkInput) and of every parameter.
//
// float32 forward passes limit finite differences, so the step is 1e-2
// relative (at least 1e-2 absolute; whole networks, whose batch norms over
// 3 values are strongly curved, use gradCheckStep with 1e-3) and a coordinate passes when
// |fd - analytic| <= 2e-2 * max(|fd|, |analytic|) + 2e-3 * max|analytic|
// over the tensor, with fd the Richardson extrapolation of central
// differences at h/2 and h/4. A ReLU kink crossed by the step makes the
// objective non-smooth: such coordinates are recognised by the
// extrapolations at h and h/2 disagreeing and skipped; at least three
// quarters of the coordinates must be checked.
func gradCheck(t *testing.T, layer Layer, x *tensor.Tensor, checkInput bool, perTensor int, rng *rand.Rand) {
	gradCheckStep(t, layer, x, checkInput, perTensor, 1e-2, rng)
}

// gradCheckStep is gradCheck with a given relative step.
func gradCheckStep(t *testing.T, layer Layer, x *tensor.Tensor, checkInput bool, perTensor int, step float64, rng *rand.Rand) {
	t.Helper()
	layer.SetTraining(true)
	ZeroGrad(layer.Params())
	y, err := layer.Forward(0, x)
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	r := randTensor(rng, y.Shape...)
	dx, err := layer.Backward(0, r.Clone())
	if err != nil {
		t.Fatalf("backward: %v", err)
	}
	loss := func() float64 {
		y, err := layer.Forward(0, x)
		if err != nil {
			t.Fatalf("forward: %v", err)
		}
		return objective(y, r)
	}
	type target struct {
		name  string
		value []float32
		grad  []float32
	}
	var targets []target
	if checkInput {
		if dx == nil {
			t.Fatalf("no input gradient")
		}
		targets = append(targets, target{"input", x.Data, append([]float32(nil), dx.Data...)})
	}
	for _, p := range layer.Params() {
		targets = append(targets, target{p.Name, p.Value.Data, append([]float32(nil), p.Grad.Data...)})
	}
	checked, skipped := 0, 0
	for _, tg := range targets {
		var gmax float64
		for _, g := range tg.grad {
			gmax = math.Max(gmax, math.Abs(float64(g)))
		}
		n := min(perTensor, len(tg.value))
		for _, i := range rng.Perm(len(tg.value))[:n] {
			v := tg.value[i]
			fd := func(h float64) float64 {
				plus := float32(float64(v) + h)
				minus := float32(float64(v) - h)
				tg.value[i] = plus
				lp := loss()
				tg.value[i] = minus
				lm := loss()
				tg.value[i] = v
				return (lp - lm) / (float64(plus) - float64(minus))
			}
			// Richardson extrapolation of central differences cancels the
			// h^2 error term: R(h) = (4 fd(h/2) - fd(h)) / 3.
			h := step * math.Max(1, math.Abs(float64(v)))
			f1, f2, f4 := fd(h), fd(h/2), fd(h/4)
			r1, r2 := (4*f2-f1)/3, (4*f4-f2)/3
			an := float64(tg.grad[i])
			tol := func(a, b float64) float64 { return 2e-2*math.Max(math.Abs(a), math.Abs(b)) + 2e-3*gmax + 1e-5 }
			if math.Abs(r1-r2) > tol(r1, r2) {
				if testing.Verbose() {
					t.Logf("skip %s[%d]: analytic %.6g, extrapolated %.6g, %.6g", tg.name, i, an, r1, r2)
				}
				skipped++
				continue
			}
			checked++
			if math.Abs(r2-an) > tol(r2, an) {
				t.Errorf("%s[%d]: analytic %.6g, finite difference %.6g (step %g: %.6g)", tg.name, i, an, r2, h, r1)
			}
		}
	}
	if checked < 3*(checked+skipped)/4 {
		t.Errorf("only %d of %d coordinates were smooth enough to check", checked, checked+skipped)
	}
	if checked == 0 {
		t.Errorf("nothing checked")
	}
}
