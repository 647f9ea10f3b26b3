package optim

import (
	"math"
	"testing"

	"github.com/corinfomax/corinfomax/nn"
)

// testParams returns a weight [2,2] and a bias [2] with fixed values and
// gradients.
func testParams() []*nn.Param {
	w := nn.NewParam("w", nn.KindWeight, 2, 2)
	copy(w.Value.Data, []float32{0.5, -1, 2, 0.25})
	copy(w.Grad.Data, []float32{0.1, 0.2, -0.3, 0.4})
	b := nn.NewParam("b", nn.KindBias, 2)
	copy(b.Value.Data, []float32{0.3, -0.2})
	copy(b.Grad.Data, []float32{-0.05, 0.5})
	return []*nn.Param{w, b}
}

// second-step gradients, set before the second step
var grad2 = [][]float32{{-0.2, 0.1, 0.3, 0.05}, {0.25, -0.1}}

func setGrad2(ps []*nn.Param) {
	for i, p := range ps {
		copy(p.Grad.Data, grad2[i])
	}
}

func closeTo(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-6*math.Max(1, math.Abs(want[i])) {
			t.Errorf("%s[%d] = %.8g, want %.8g", what, i, got[i], want[i])
		}
	}
}

// TestSGD checks two steps against PyTorch's rule written out per element:
// step 1: buf = g1 + wd*w0, w1 = w0 - lr*buf; step 2: g = g2 + wd*w1,
// buf = m*buf + g, w2 = w1 - lr*(nesterov ? g + m*buf : buf).
func TestSGD(t *testing.T) {
	const lr1, lr2, m, wd = 0.1, 0.05, 0.9, 0.01
	for _, nesterov := range []bool{false, true} {
		ps := testParams()
		want := make([][]float64, len(ps))
		for k, p := range ps {
			for i := range p.Value.Data {
				w0, g1, g2 := float64(p.Value.Data[i]), float64(p.Grad.Data[i]), float64(grad2[k][i])
				d1 := g1 + wd*w0
				buf := d1
				step1 := buf
				if nesterov {
					step1 = d1 + m*buf
				}
				w1 := w0 - lr1*step1
				d2 := g2 + wd*w1
				buf = m*buf + d2
				step2 := buf
				if nesterov {
					step2 = d2 + m*buf
				}
				want[k] = append(want[k], w1-lr2*step2)
			}
		}
		o := NewSGD(ps, m, wd, nesterov)
		if err := o.Step(lr1); err != nil {
			t.Fatal(err)
		}
		setGrad2(ps)
		if err := o.Step(lr2); err != nil {
			t.Fatal(err)
		}
		for k, p := range ps {
			closeTo(t, p.Name, p.Value.Data, want[k])
		}
		st := o.State()
		if len(st) != 2 || st[0].Name != "momentum_buffer.w" || st[1].Name != "momentum_buffer.b" {
			t.Fatalf("state names %v", st)
		}
	}
}

// TestSGDStateRoundTrip checks that restoring the state reproduces the
// continuation of an interrupted run exactly.
func TestSGDStateRoundTrip(t *testing.T) {
	a, b := testParams(), testParams()
	oa := NewSGD(a, 0.9, 1e-4, false)
	if err := oa.Step(0.1); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		copy(b[i].Value.Data, a[i].Value.Data)
	}
	ob := NewSGD(b, 0.9, 1e-4, false)
	if err := ob.SetState(oa.State()); err != nil {
		t.Fatal(err)
	}
	setGrad2(a)
	setGrad2(b)
	if err := oa.Step(0.1); err != nil {
		t.Fatal(err)
	}
	if err := ob.Step(0.1); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		for j := range a[i].Value.Data {
			if a[i].Value.Data[j] != b[i].Value.Data[j] {
				t.Fatalf("%s[%d]: %g after restore, %g uninterrupted", a[i].Name, j, b[i].Value.Data[j], a[i].Value.Data[j])
			}
		}
	}
	if err := ob.SetState([]StateTensor{{Name: "momentum_buffer.nope", Data: []float32{1}}}); err == nil {
		t.Error("state for an unknown parameter accepted")
	}
	if err := ob.SetState([]StateTensor{{Name: "momentum_buffer.b", Data: []float32{1}}}); err == nil {
		t.Error("state of the wrong size accepted")
	}
	if err := ob.SetState([]StateTensor{{Name: "exp_avg.b", Data: []float32{1, 2}}}); err == nil {
		t.Error("state of another optimizer accepted")
	}
}

// TestAdamW checks two steps against PyTorch's AdamW written out per element.
func TestAdamW(t *testing.T) {
	const lr1, lr2, b1, b2, eps, wd = 0.01, 0.02, 0.9, 0.999, 1e-8, 0.05
	ps := testParams()
	want := make([][]float64, len(ps))
	for k, p := range ps {
		for i := range p.Value.Data {
			w, m, v := float64(p.Value.Data[i]), 0.0, 0.0
			for step, g := range []float64{float64(p.Grad.Data[i]), float64(grad2[k][i])} {
				lr := []float64{lr1, lr2}[step]
				tt := float64(step + 1)
				w *= 1 - lr*wd
				m = b1*m + (1-b1)*g
				v = b2*v + (1-b2)*g*g
				mhat := m / (1 - math.Pow(b1, tt))
				vhat := v / (1 - math.Pow(b2, tt))
				w -= lr * mhat / (math.Sqrt(vhat) + eps)
			}
			want[k] = append(want[k], w)
		}
	}
	o := NewAdamW(ps, b1, b2, eps, wd)
	if err := o.Step(lr1); err != nil {
		t.Fatal(err)
	}
	setGrad2(ps)
	if err := o.Step(lr2); err != nil {
		t.Fatal(err)
	}
	for k, p := range ps {
		closeTo(t, p.Name, p.Value.Data, want[k])
	}
	st := o.State()
	if st[0].Name != "step" || st[0].Data[0] != 2 || len(st) != 5 {
		t.Fatalf("state %v", st)
	}
	o2 := NewAdamW(testParams(), b1, b2, eps, wd)
	if err := o2.SetState(st); err != nil {
		t.Fatal(err)
	}
	if o2.step != 2 {
		t.Errorf("restored step %d, want 2", o2.step)
	}
}

// TestLARS checks one step of solo-learn's LARS with and without the
// bias/BN exclusion, then a second step through the momentum buffer.
func TestLARS(t *testing.T) {
	const lr, m, wd, eta, eps = 0.3, 0.9, 1e-3, 0.02, 1e-8
	for _, exclude := range []bool{false, true} {
		ps := testParams()
		bn := nn.NewParam("bn.weight", nn.KindBNWeight, 2)
		copy(bn.Value.Data, []float32{1, 0.8})
		copy(bn.Grad.Data, []float32{0.2, -0.1})
		ps = append(ps, bn)
		bufs := make([][]float64, len(ps))
		want := make([][]float64, len(ps))
		for k, p := range ps {
			var wn, gn float64
			for i := range p.Value.Data {
				wn += float64(p.Value.Data[i]) * float64(p.Value.Data[i])
				gn += float64(p.Grad.Data[i]) * float64(p.Grad.Data[i])
			}
			wn, gn = math.Sqrt(wn), math.Sqrt(gn)
			adapted := !exclude || p.Kind == nn.KindWeight
			for i := range p.Value.Data {
				w, g := float64(p.Value.Data[i]), float64(p.Grad.Data[i])
				d := g // excluded: no adaptation, no weight decay
				if adapted {
					d = eta * wn / (gn + wd*wn + eps) * (g + wd*w)
				}
				bufs[k] = append(bufs[k], d)
				want[k] = append(want[k], w-lr*d)
			}
		}
		o := NewLARS(ps, m, wd, eta, exclude)
		if err := o.Step(lr); err != nil {
			t.Fatal(err)
		}
		for k, p := range ps {
			closeTo(t, p.Name, p.Value.Data, want[k])
		}
		// Second step with zero gradients: LARS skips adaptation (and
		// weight decay) when ||g|| = 0, so w -= lr * m * buf.
		o.ZeroGrad()
		for k := range ps {
			for i := range want[k] {
				want[k][i] -= lr * m * bufs[k][i]
			}
		}
		if err := o.Step(lr); err != nil {
			t.Fatal(err)
		}
		for k, p := range ps {
			closeTo(t, p.Name, p.Value.Data, want[k])
		}
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{Base: 0.5, WarmupStart: 3e-3, Min: 1e-6, WarmupSteps: 10, TotalSteps: 110}
	cases := []struct {
		t    int
		want float64
	}{
		{0, 3e-3},
		{1, 3e-3 + (0.5-3e-3)/9},
		{9, 0.5},  // warm-up ends at W-1 (solo-learn divides by W-1)
		{10, 0.5}, // cosine starts at Base
		{60, 1e-6 + (0.5-1e-6)/2},
		{85, 1e-6 + (0.5-1e-6)*(1+math.Cos(math.Pi*0.75))/2},
		{110, 1e-6},
		{200, 1e-6},
	}
	for _, c := range cases {
		if got := s.At(c.t); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("At(%d) = %.12g, want %.12g", c.t, got, c.want)
		}
	}
	noWarm := Schedule{Base: 1, Min: 0, TotalSteps: 4}
	if got := noWarm.At(0); got != 1 {
		t.Errorf("no warm-up At(0) = %g, want 1", got)
	}
	if got := noWarm.At(2); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("no warm-up At(2) = %g, want 0.5", got)
	}
	c := Constant(0.2)
	for _, tt := range []int{0, 5, 1000} {
		if got := c.At(tt); got != 0.2 {
			t.Errorf("Constant At(%d) = %g", tt, got)
		}
	}
}
