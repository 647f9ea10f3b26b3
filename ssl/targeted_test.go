package ssl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// targetedFixtureFile holds the reference values written by
// tools/pytorch/gen_targeted_fixtures.py.
type targetedFixtureFile struct {
	Generator    string `json:"generator"`
	TorchVersion string `json:"torch_version"`
	Cases        []struct {
		Name      string          `json:"name"`
		Method    string          `json:"method"`
		Options   json.RawMessage `json:"options"`
		N         int             `json:"n"`
		D         int             `json:"d"`
		QueueInit *struct {
			Queue1 []float64 `json:"queue1"`
			Queue2 []float64 `json:"queue2"`
			Ptr    int       `json:"queue_ptr"`
		} `json:"queue_init"`
		Steps []struct {
			O1, O2, T1, T2 []float64
			Loss           float64   `json:"loss"`
			Components     [][2]any  `json:"components"`
			G1             []float64 `json:"g1"`
			G2             []float64 `json:"g2"`
			Queue1         []float64 `json:"queue1"`
			Queue2         []float64 `json:"queue2"`
			Ptr            *int      `json:"queue_ptr"`
		} `json:"steps"`
	} `json:"cases"`
}

func loadTargetedFixtures(t *testing.T) targetedFixtureFile {
	t.Helper()
	raw, err := os.ReadFile("testdata/targeted_fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx targetedFixtureFile
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	return fx
}

// ulp32 is the spacing of float32 values at |x|.
func ulp32(x float64) float64 {
	a := float32(math.Abs(x))
	return float64(math.Nextafter32(a, float32(math.Inf(1))) - a)
}

// TestTargetedAgainstPyTorch runs every case of targeted_fixtures.json for
// its 3 consecutive steps through the public API (NewTargeted, SetState,
// TargetLoss, State) and compares with PyTorch (float64 autograd, written
// the way solo-learn computes the losses): losses and components to 1e-6
// relative, gradients to 1e-5 relative to the largest gradient entry, and
// MoCo's queues after each step to float32 rounding (at most one float32
// ulp: both sides round the same float64 keys to float32), its pointer
// exactly.
func TestTargetedAgainstPyTorch(t *testing.T) {
	fx := loadTargetedFixtures(t)
	seen := map[string]bool{}
	for _, c := range fx.Cases {
		seen[c.Method] = true
		opts, err := Defaults(c.Method)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if err := json.Unmarshal(c.Options, &opts); err != nil {
			t.Fatalf("%s: options: %v", c.Name, err)
		}
		m, err := NewTargeted(c.Method, opts)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		n, d := c.N, c.D
		st, stateful := m.(Stateful)
		if c.QueueInit != nil {
			if !stateful {
				t.Fatalf("%s: the fixture has a queue but %T is not Stateful", c.Name, m)
			}
			k := len(c.QueueInit.Queue1) / d
			if err := st.SetState([]StateTensor{
				{Name: "queue1", Shape: []int{k, d}, Data: c.QueueInit.Queue1},
				{Name: "queue2", Shape: []int{k, d}, Data: c.QueueInit.Queue2},
				{Name: "queue_ptr", Shape: []int{1}, Data: []float64{float64(c.QueueInit.Ptr)}},
			}); err != nil {
				t.Fatalf("%s: SetState: %v", c.Name, err)
			}
		}
		worstLoss, worstGrad := 0.0, 0.0
		for si, s := range c.Steps {
			step := si + 1
			g1, g2 := make([]float32, n*d), make([]float32, n*d)
			res, err := m.TargetLoss(step, to32(s.O1), to32(s.O2), to32(s.T1), to32(s.T2), n, d, g1, g2)
			if err != nil {
				t.Fatalf("%s step %d: %v", c.Name, step, err)
			}
			worstLoss = math.Max(worstLoss, relErr(res.Loss, s.Loss))
			if e := relErr(res.Loss, s.Loss); e > 1e-6 {
				t.Errorf("%s step %d: loss %.12g, PyTorch %.12g (rel. error %.2g)", c.Name, step, res.Loss, s.Loss, e)
			}
			if len(res.Components) != len(s.Components) {
				t.Fatalf("%s step %d: %d components, PyTorch %d", c.Name, step, len(res.Components), len(s.Components))
			}
			for i, pc := range s.Components {
				name, want := pc[0].(string), pc[1].(float64)
				if got := res.Components[i]; got.Name != name || relErr(got.Value, want) > 1e-6 {
					t.Errorf("%s step %d: component %d is %s = %.12g, PyTorch %s = %.12g", c.Name, step, i, got.Name, got.Value, name, want)
				}
			}
			scale := 0.0
			for i := range s.G1 {
				scale = math.Max(scale, math.Max(math.Abs(s.G1[i]), math.Abs(s.G2[i])))
			}
			for view, pair := range [][2]any{{g1, s.G1}, {g2, s.G2}} {
				got, want := pair[0].([]float32), pair[1].([]float64)
				worst, at := 0.0, 0
				for i := range want {
					if e := math.Abs(float64(got[i])-want[i]) / scale; e > worst {
						worst, at = e, i
					}
				}
				worstGrad = math.Max(worstGrad, worst)
				if worst > 1e-5 {
					t.Errorf("%s step %d: dL/do%d[%d, %d] = %.8g, PyTorch %.8g (error %.2g of the largest entry)",
						c.Name, step, view+1, at/d, at%d, got[at], want[at], worst)
				}
			}
			if si == len(c.Steps)-1 {
				t.Logf("%s: worst loss rel. error %.2g, worst gradient error %.2g of the largest entry", c.Name, worstLoss, worstGrad)
			}
			if s.Ptr == nil {
				continue
			}
			state := map[string][]float64{}
			for _, ts := range st.State() {
				state[ts.Name] = ts.Data
			}
			if got := state["queue_ptr"]; len(got) != 1 || got[0] != float64(*s.Ptr) {
				t.Errorf("%s step %d: queue_ptr %v, PyTorch %d", c.Name, step, got, *s.Ptr)
			}
			for _, q := range []struct {
				name string
				want []float64
			}{{"queue1", s.Queue1}, {"queue2", s.Queue2}} {
				got := state[q.name]
				if len(got) != len(q.want) {
					t.Fatalf("%s step %d: %s has %d values, PyTorch %d", c.Name, step, q.name, len(got), len(q.want))
				}
				inexact := 0
				for i, w := range q.want {
					if got[i] != w {
						inexact++
					}
					if math.Abs(got[i]-w) > ulp32(w) {
						t.Errorf("%s step %d: %s[%d, %d] = %.9g, PyTorch %.9g", c.Name, step, q.name, i/d, i%d, got[i], w)
						break
					}
				}
				if inexact > 0 {
					t.Logf("%s step %d: %s: %d of %d values one float32 ulp off", c.Name, step, q.name, inexact, len(q.want))
				}
			}
		}
	}
	for _, name := range targetedNames() {
		if !seen[name] {
			t.Errorf("no PyTorch fixture for %s in targeted_fixtures.json", name)
		}
	}
}

// targetedCore returns m's float64 core against its current state (MoCo's
// queues, not updated) as an f64Loss of the online outputs (o1, o2) with
// the targets t1, t2 fixed; MoCo runs its products in float64 (finite
// differences need a loss free of float32 rounding).
func targetedCore(t *testing.T, m Targeted, t1, t2 []float64) f64Loss {
	t.Helper()
	var f targetFunc64
	switch m := m.(type) {
	case *BYOL:
		f = m.eval
	case *SimSiam:
		f = m.eval
	case *MoCoV2:
		m.exact = true
		f = func(o1, o2, t1, t2 []float64, n, d int, g1, g2 []float64) (Result, error) {
			qs, err := m.current(n, d)
			if err != nil {
				return Result{}, err
			}
			res, _, _ := m.eval(qs, o1, o2, t1, t2, n, d, g1, g2)
			return res, nil
		}
	default:
		t.Fatalf("no float64 core for %T", m)
	}
	return func(o1, o2 []float64, n, d int, g1, g2 []float64) (float64, error) {
		clear(g1)
		clear(g2)
		r, err := f(o1, o2, t1, t2, n, d, g1, g2)
		return r.Loss, err
	}
}

// targetedInputs returns online outputs and targets of two views sharing
// a latent, so that the cosines are far from 0 (as in training).
func targetedInputs(rng *rand.Rand, n, d int) (o1, o2, t1, t2 []float64) {
	x := randn(rng, n*d, 1)
	mk := func(a, b float64) []float64 {
		y := randn(rng, n*d, b)
		for i := range y {
			y[i] += a * x[i]
		}
		return y
	}
	return mk(1, 0.5), mk(1, 0.5), mk(1.5, 0.7), mk(1.5, 0.7)
}

// TestTargetedGradientsFiniteDifferences checks dL/do1, dL/do2 of the
// three targeted methods against central differences of their float64
// cores, MoCo with a queue holding the initial random rows and, after two
// steps, real keys.
func TestTargetedGradientsFiniteDifferences(t *testing.T) {
	for _, name := range targetedNames() {
		for _, sh := range gradShapes {
			opts, _ := Defaults(name)
			setOwn(&opts, "queue_size", 150) // >= the batch; wraps in the third step at n = 64
			m, err := NewTargeted(name, opts)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(sh.n), uint64(sh.d)+7))
			steps := 1
			if _, ok := m.(*MoCoV2); ok {
				steps = 3
			}
			for step := 1; step <= steps; step++ {
				o1, o2, t1, t2 := targetedInputs(rng, sh.n, sh.d)
				label := fmt.Sprintf("%s n=%d d=%d step %d", name, sh.n, sh.d, step)
				checkFD(t, label, targetedCore(t, m, t1, t2), o1, o2, sh.n, sh.d, rng, 24)
				// Advance MoCo's queues with this step's keys.
				g1, g2 := make([]float32, sh.n*sh.d), make([]float32, sh.n*sh.d)
				if _, err := m.TargetLoss(step, toF32(o1), toF32(o2), toF32(t1), toF32(t2), sh.n, sh.d, g1, g2); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestTargetedKnownValues checks values that follow from the formulas by
// hand: targets parallel to the other view's online outputs give BYOL 0
// and SimSiam -1 with a zero gradient; a MoCo whose queue holds only the
// positive key gives log(K+1).
func TestTargetedKnownValues(t *testing.T) {
	const n, d = 6, 5
	rng := rand.New(rand.NewPCG(3, 3))
	o1, o2 := toF32(randn(rng, n*d, 1)), toF32(randn(rng, n*d, 1))
	t1, t2 := make([]float32, n*d), make([]float32, n*d)
	for i := range o1 {
		t2[i], t1[i] = 3*o1[i], 0.5*o2[i] // t2 pairs with o1, t1 with o2
	}
	for name, want := range map[string]float64{NameBYOL: 0, NameSimSiam: -1} {
		m, _ := NewTargeted(name, Options{})
		g1, g2 := make([]float32, n*d), make([]float32, n*d)
		r, err := m.TargetLoss(1, o1, o2, t1, t2, n, d, g1, g2)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.Loss-want) > 1e-6 {
			t.Errorf("%s on parallel targets: loss %g, want %g", name, r.Loss, want)
		}
		for i := range g1 {
			if math.Abs(float64(g1[i])) > 1e-6 || math.Abs(float64(g2[i])) > 1e-6 {
				t.Fatalf("%s on parallel targets: gradient %g, %g at %d, want 0", name, g1[i], g2[i], i)
			}
		}
		// Swapping the targets changes the loss: the pairing is o1 with t2.
		r2, _ := m.TargetLoss(2, o1, o2, t2, t1, n, d, g1, g2)
		if math.Abs(r2.Loss-want) < 1e-3 {
			t.Errorf("%s pairs o1 with t1 (loss %g with swapped targets)", name, r2.Loss)
		}
	}
	// MoCo: all rows equal to one unit vector u, the queue filled with u
	// too: every logit is 1/T and each row's loss is log(K+1).
	const k = 7
	u := make([]float32, n*d)
	for i := range u {
		u[i] = float32(1 + i%d)
	}
	opts, _ := Defaults(NameMoCoV2)
	opts.Set("queue_size", k)
	m, _ := NewTargeted(NameMoCoV2, opts)
	rows := make([]float64, k*d)
	norm := math.Sqrt(1 + 4 + 9 + 16 + 25)
	for i := range rows {
		rows[i] = float64(1+i%d) / norm
	}
	st := m.(Stateful)
	if err := st.SetState([]StateTensor{{Name: "queue1", Shape: []int{k, d}, Data: rows},
		{Name: "queue2", Shape: []int{k, d}, Data: rows}, {Name: "queue_ptr", Shape: []int{1}, Data: []float64{3}}}); err != nil {
		t.Fatal(err)
	}
	r, err := m.TargetLoss(1, u, u, u, u, n, d, make([]float32, n*d), make([]float32, n*d))
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Log(k + 1); math.Abs(r.Loss-want) > 1e-5 {
		t.Errorf("mocov2 with every key equal: loss %g, want log(K+1) = %g", r.Loss, want)
	}
	if ptr := st.State()[2].Data[0]; ptr != (3+n)%k {
		t.Errorf("queue_ptr after a batch of %d from 3 in a queue of %d: %v, want %d", n, k, ptr, (3+n)%k)
	}
}

// TestTargetedRejectsBadInput checks NaN/Inf rejection (naming the method,
// the step, the tensor and the entry) and size checks of the targeted
// methods, and that a refused call leaves MoCo's queues unchanged.
func TestTargetedRejectsBadInput(t *testing.T) {
	const n, d = 8, 4
	for _, name := range targetedNames() {
		o, _ := Defaults(name)
		setOwn(&o, "queue_size", 16)
		m, err := NewTargeted(name, o)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(5, 5))
		o1, o2, t1, t2 := targetedInputs(rng, n, d)
		in := [4][]float32{toF32(o1), toF32(o2), toF32(t1), toF32(t2)}
		g := func() []float32 { return make([]float32, n*d) }
		if _, err := m.TargetLoss(1, in[0], in[1], in[2], in[3], n, d, g(), g()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var before []StateTensor
		if st, ok := m.(Stateful); ok {
			before = st.State()
		}
		for _, tc := range []struct {
			tensor int
			bad    float64
			want   string
		}{
			{0, math.Inf(1), "online output of view 1"},
			{1, math.NaN(), "online output of view 2"},
			{2, math.Inf(-1), "target of view 1"},
			{3, math.NaN(), "target of view 2"},
		} {
			x := slices.Clone(in[tc.tensor])
			x[9] = float32(tc.bad)
			args := in
			args[tc.tensor] = x
			_, err := m.TargetLoss(11, args[0], args[1], args[2], args[3], n, d, g(), g())
			if err == nil {
				t.Fatalf("%s: %v in %s accepted", name, tc.bad, tc.want)
			}
			for _, want := range []string{name, "step 11", tc.want, "row 2, column 1"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %q does not contain %q", name, err, want)
				}
			}
		}
		for i, what := range []string{"o1", "o2", "t1", "t2", "g1", "g2"} {
			args := [6][]float32{in[0], in[1], in[2], in[3], g(), g()}
			args[i] = args[i][:n*d-1]
			_, err := m.TargetLoss(2, args[0], args[1], args[2], args[3], n, d, args[4], args[5])
			if err == nil || !strings.Contains(err.Error(), what) || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: short %s: want an error naming it, got %v", name, what, err)
			}
		}
		if _, err := m.TargetLoss(2, in[0], in[1], in[2], in[3], 0, d, g(), g()); err == nil {
			t.Errorf("%s: n = 0 accepted", name)
		}
		if st, ok := m.(Stateful); ok {
			if after := st.State(); !statesEqual(before, after) {
				t.Errorf("%s: refused calls changed the state", name)
			}
		}
	}
}

// statesEqual reports whether two states are identical.
func statesEqual(a, b []StateTensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !slices.Equal(a[i].Shape, b[i].Shape) || !slices.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// TestTargetedGatherEqualsBigBatch splits a batch over two simulated
// workers for 3 steps: each worker's loss must equal the loss of the whole
// batch, its gradient the rows of the whole batch's gradient that belong
// to it, and MoCo's queues (which wrap within the 3 steps) must be the same
// on both workers and the big batch.
func TestTargetedGatherEqualsBigBatch(t *testing.T) {
	const workers, n, d = 2, 8, 4
	rng := rand.New(rand.NewPCG(8, 8))
	for _, name := range targetedNames() {
		o, _ := Defaults(name)
		setOwn(&o, "queue_size", 40)
		big, err := NewTargeted(name, o)
		if err != nil {
			t.Fatal(err)
		}
		var all [4][]float32 // the current step's gathered o1, o2, t1, t2
		// scattered[w][i] counts the calls of the scatter function that
		// worker w's gather of tensor i (o1, o2, t1, t2) returned.
		var scattered [workers][4]int
		local := make([]Targeted, workers)
		for w := range local {
			ow := o
			calls := 0
			ow.Gather = func(z []float32, nl, dl int) ([]float32, int, func(gAll, g []float32), error) {
				i := calls % 4
				v := all[i]
				calls++
				for j, x := range z {
					if v[w*nl*dl+j] != x {
						t.Fatalf("%s: worker %d gathered the wrong rows (call %d)", name, w, calls)
					}
				}
				return v, workers * nl, func(gAll, g []float32) {
					scattered[w][i]++
					copy(g, gAll[w*nl*dl:(w+1)*nl*dl])
				}, nil
			}
			if local[w], err = NewTargeted(name, ow); err != nil {
				t.Fatal(err)
			}
		}
		for step := 1; step <= 3; step++ {
			o1, o2, t1, t2 := targetedInputs(rng, workers*n, d)
			all = [4][]float32{toF32(o1), toF32(o2), toF32(t1), toF32(t2)}
			gb1, gb2 := make([]float32, workers*n*d), make([]float32, workers*n*d)
			rb, err := big.TargetLoss(step, all[0], all[1], all[2], all[3], workers*n, d, gb1, gb2)
			if err != nil {
				t.Fatal(err)
			}
			for w, m := range local {
				lo, hi := w*n*d, (w+1)*n*d
				g1, g2 := make([]float32, n*d), make([]float32, n*d)
				r, err := m.TargetLoss(step, all[0][lo:hi], all[1][lo:hi], all[2][lo:hi], all[3][lo:hi], n, d, g1, g2)
				if err != nil {
					t.Fatal(err)
				}
				if r.Loss != rb.Loss {
					t.Errorf("%s step %d worker %d: loss %v, big batch %v", name, step, w, r.Loss, rb.Loss)
				}
				if want := [4]int{step, step, 0, 0}; scattered[w] != want {
					t.Errorf("%s step %d worker %d: scatter functions of o1, o2, t1, t2 called %v times, want %v", name, step, w, scattered[w], want)
				}
				for i := range g1 {
					if g1[i] != gb1[lo+i] || g2[i] != gb2[lo+i] {
						t.Fatalf("%s step %d worker %d: gradient row %d differs from the big batch", name, step, w, i/d)
					}
				}
			}
		}
		if bs, ok := big.(Stateful); ok {
			want := bs.State()
			if len(want) == 0 || want[2].Data[0] != float64(3*workers*n%40) {
				t.Fatalf("%s: big batch state %v", name, want)
			}
			for w, m := range local {
				if !statesEqual(m.(Stateful).State(), want) {
					t.Errorf("%s: worker %d's queues differ from the big batch's", name, w)
				}
			}
		}
	}
}

// TestMoCoStateRoundTrip checks that a MoCo restored with SetState (before
// its first call, as a resumed run) continues exactly like the instance it
// was saved from, that State is empty before the first call and returns
// copies, and that SetState refuses malformed state without changing
// anything.
func TestMoCoStateRoundTrip(t *testing.T) {
	const n, d, k = 6, 5, 16
	opts, _ := Defaults(NameMoCoV2)
	opts.Set("queue_size", k)
	newMoCo := func() *MoCoV2 {
		m, err := NewTargeted(NameMoCoV2, opts)
		if err != nil {
			t.Fatal(err)
		}
		return m.(*MoCoV2)
	}
	a := newMoCo()
	if st := a.State(); len(st) != 0 {
		t.Fatalf("State before the first call: %v, want none", st)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	batch := func() [4][]float32 {
		o1, o2, t1, t2 := targetedInputs(rng, n, d)
		return [4][]float32{toF32(o1), toF32(o2), toF32(t1), toF32(t2)}
	}
	run := func(m *MoCoV2, step int, in [4][]float32) (Result, []float32, []float32) {
		g1, g2 := make([]float32, n*d), make([]float32, n*d)
		r, err := m.TargetLoss(step, in[0], in[1], in[2], in[3], n, d, g1, g2)
		if err != nil {
			t.Fatal(err)
		}
		return r, g1, g2
	}
	// A fresh instance draws the same initial queues (fixed seed).
	first := batch()
	ra, _, _ := run(a, 1, first)
	if rb, _, _ := run(newMoCo(), 1, first); rb.Loss != ra.Loss {
		t.Errorf("two fresh instances differ at step 1: %v vs %v (the initial queue is not reproducible)", ra.Loss, rb.Loss)
	}
	// The rows not yet overwritten are the documented initial queues, two
	// different ones.
	init := a.State()
	for v := 0; v < 2; v++ {
		q, _ := NewQueue(k, d, MoCoQueueSeed, uint64(v+1))
		if want := to64(q.Rows()); !slices.Equal(init[v].Data[n*d:], want[n*d:]) {
			t.Errorf("queue%d is not NewQueue(queue_size, d, MoCoQueueSeed, %d)", v+1, v+1)
		}
	}
	if slices.Equal(init[0].Data[n*d:], init[1].Data[n*d:]) {
		t.Error("the two initial queues are equal")
	}
	run(a, 2, batch())
	saved := a.State()
	if len(saved) != 3 || saved[0].Name != "queue1" || saved[1].Name != "queue2" || saved[2].Name != "queue_ptr" ||
		!slices.Equal(saved[0].Shape, []int{k, d}) || saved[2].Data[0] != 2*n%k {
		t.Fatalf("State() = %v", saved)
	}
	saved[0].Data[0] = 99 // State returns copies
	if a.State()[0].Data[0] == 99 {
		t.Fatal("State shares memory with the queue")
	}
	saved = a.State()
	b := newMoCo()
	if err := b.SetState(saved); err != nil {
		t.Fatal(err)
	}
	saved[1].Data[0] = 99 // SetState copies
	for step := 3; step <= 5; step++ {
		in := batch()
		ra, ga1, ga2 := run(a, step, in)
		rb, gb1, gb2 := run(b, step, in)
		if ra.Loss != rb.Loss || !slices.Equal(ga1, gb1) || !slices.Equal(ga2, gb2) {
			t.Fatalf("step %d: the restored instance differs (loss %v vs %v)", step, rb.Loss, ra.Loss)
		}
	}
	if !statesEqual(a.State(), b.State()) {
		t.Error("the states differ after 3 more steps")
	}
	// SetState of the empty state restores the initial one.
	c := newMoCo()
	if err := c.SetState(b.State()); err != nil {
		t.Fatal(err)
	}
	if err := c.SetState(nil); err != nil || c.State() != nil {
		t.Fatalf("SetState(nil): %v, state %v", err, c.State())
	}
	if rc, _, _ := run(c, 1, first); rc.Loss != freshMoCoLoss(t, opts, first, n, d) {
		t.Error("after SetState(nil) the first step differs from a fresh instance's")
	}

	good := a.State()
	edit := func(f func(ts []StateTensor) []StateTensor) []StateTensor {
		ts := make([]StateTensor, len(good))
		for i, g := range good {
			ts[i] = StateTensor{Name: g.Name, Shape: slices.Clone(g.Shape), Data: slices.Clone(g.Data)}
		}
		return f(ts)
	}
	bad := map[string][]StateTensor{
		"unknown":   edit(func(ts []StateTensor) []StateTensor { ts[0].Name = "queue3"; return ts }),
		"duplicate": edit(func(ts []StateTensor) []StateTensor { ts[1].Name = "queue1"; return ts }),
		"missing":   edit(func(ts []StateTensor) []StateTensor { return ts[:2] }),
		"queue_size": edit(func(ts []StateTensor) []StateTensor {
			ts[0].Shape, ts[0].Data = []int{k / 2, d}, ts[0].Data[:k/2*d]
			return ts
		}),
		"d=": edit(func(ts []StateTensor) []StateTensor {
			for v := 0; v < 2; v++ {
				ts[v].Shape, ts[v].Data = []int{k, d - 1}, ts[v].Data[:k*(d-1)]
			}
			return ts
		}),
		"values": edit(func(ts []StateTensor) []StateTensor { ts[1].Data = ts[1].Data[1:]; return ts }),
		"NaN":    edit(func(ts []StateTensor) []StateTensor { ts[1].Data[7] = math.NaN(); return ts }),
		"queue_ptr = 16: want an integer in [0, 16)": edit(func(ts []StateTensor) []StateTensor { ts[2].Data[0] = k; return ts }),
		"queue_ptr = 1.5": edit(func(ts []StateTensor) []StateTensor { ts[2].Data[0] = 1.5; return ts }),
	}
	for want, ts := range bad {
		err := a.SetState(ts)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), NameMoCoV2) {
			t.Errorf("SetState with a bad state (%s): got %v", want, err)
		}
		if !statesEqual(a.State(), good) {
			t.Fatalf("a refused SetState (%s) changed the state", want)
		}
	}
}

// freshMoCoLoss is the step-1 loss of a fresh MoCo on in.
func freshMoCoLoss(t *testing.T, opts Options, in [4][]float32, n, d int) float64 {
	m, err := NewTargeted(NameMoCoV2, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.TargetLoss(1, in[0], in[1], in[2], in[3], n, d, make([]float32, n*d), make([]float32, n*d))
	if err != nil {
		t.Fatal(err)
	}
	return r.Loss
}

// TestMoCoRefusesBadBatch checks that a global batch larger than the queue
// and a change of d are refused (naming the sizes) without touching the
// queues, and that a batch of exactly queue_size rows works.
func TestMoCoRefusesBadBatch(t *testing.T) {
	const d, k = 4, 8
	opts, _ := Defaults(NameMoCoV2)
	opts.Set("queue_size", k)
	m, _ := NewTargeted(NameMoCoV2, opts)
	rng := rand.New(rand.NewPCG(6, 6))
	call := func(step, n, d int) error {
		o1, o2, t1, t2 := targetedInputs(rng, n, d)
		_, err := m.TargetLoss(step, toF32(o1), toF32(o2), toF32(t1), toF32(t2), n, d, make([]float32, n*d), make([]float32, n*d))
		return err
	}
	if err := call(1, k+1, d); err == nil || !strings.Contains(err.Error(), "9 rows exceeds queue_size 8") || !strings.Contains(err.Error(), "step 1") {
		t.Errorf("a batch of %d with queue_size %d: got %v", k+1, k, err)
	}
	if st := m.(Stateful).State(); st != nil {
		t.Errorf("a refused first call allocated the queues: %v", st)
	}
	if err := call(1, k, d); err != nil {
		t.Fatalf("a batch of exactly queue_size: %v", err)
	}
	before := m.(Stateful).State()
	if err := call(2, 4, d+2); err == nil || !strings.Contains(err.Error(), "dimension 6 differs from the queue's 4") {
		t.Errorf("a call with another d: got %v", err)
	}
	// Gathered: two workers of 5 rows make a global batch of 10 > 8.
	all := make([]float32, 10*d)
	opts.Gather = func(z []float32, n, d int) ([]float32, int, func(gAll, g []float32), error) {
		return all, 10, func(gAll, g []float32) { copy(g, gAll[:n*d]) }, nil
	}
	mg, _ := NewTargeted(NameMoCoV2, opts)
	z := make([]float32, 5*d)
	if _, err := mg.TargetLoss(3, z, z, z, z, 5, d, make([]float32, 5*d), make([]float32, 5*d)); err == nil || !strings.Contains(err.Error(), "10 rows exceeds queue_size 8") {
		t.Errorf("a gathered batch of 10 with queue_size 8: got %v", err)
	}
	if !statesEqual(before, m.(Stateful).State()) {
		t.Error("refused calls changed the queues")
	}
	// An option error of NewMoCoV2 is an *OptionError.
	var oe *OptionError
	if _, err := NewMoCoV2(MoCoV2Config{QueueSize: 0, Temperature: 0.2}); !errors.As(err, &oe) || oe.Option != "queue_size" {
		t.Errorf("NewMoCoV2 with queue size 0: %v", err)
	}
	if _, err := NewMoCoV2(MoCoV2Config{QueueSize: 4, Temperature: math.NaN()}); !errors.As(err, &oe) || oe.Option != "moco_temperature" {
		t.Errorf("NewMoCoV2 with temperature NaN: %v", err)
	}
}

// TestMoCoFloat32ProductsMatchFloat64 checks MoCo's float32 products with
// the queue against the same computation in float64 at a training-like
// size (the PyTorch fixtures are small): loss within 1e-6 relative,
// gradients within 1e-5 of their largest entry.
func TestMoCoFloat32ProductsMatchFloat64(t *testing.T) {
	const n, d, k = 128, 64, 2048
	opts, _ := Defaults(NameMoCoV2)
	opts.Set("queue_size", k)
	m, err := NewTargeted(NameMoCoV2, opts)
	if err != nil {
		t.Fatal(err)
	}
	mc := m.(*MoCoV2)
	rng := rand.New(rand.NewPCG(7, 7))
	for step := 1; step <= 2; step++ { // fill part of the queue with keys
		o1, o2, t1, t2 := targetedInputs(rng, n, d)
		if _, err := m.TargetLoss(step, toF32(o1), toF32(o2), toF32(t1), toF32(t2), n, d, make([]float32, n*d), make([]float32, n*d)); err != nil {
			t.Fatal(err)
		}
	}
	o1, o2, t1, t2 := targetedInputs(rng, n, d)
	qs, err := mc.current(n, d)
	if err != nil {
		t.Fatal(err)
	}
	g1f, g2f, g1e, g2e := make([]float64, n*d), make([]float64, n*d), make([]float64, n*d), make([]float64, n*d)
	rf, _, _ := mc.eval(qs, o1, o2, t1, t2, n, d, g1f, g2f)
	mc.exact = true
	re, _, _ := mc.eval(qs, o1, o2, t1, t2, n, d, g1e, g2e)
	if e := relErr(rf.Loss, re.Loss); e > 1e-6 {
		t.Fatalf("loss %.10g (float32 products) vs %.10g (float64): rel. error %.2g", rf.Loss, re.Loss, e)
	}
	scale, worst := 0.0, 0.0
	for i := range g1e {
		scale = math.Max(scale, math.Max(math.Abs(g1e[i]), math.Abs(g2e[i])))
		worst = math.Max(worst, math.Max(math.Abs(g1f[i]-g1e[i]), math.Abs(g2f[i]-g2e[i])))
	}
	if worst > 1e-5*scale {
		t.Fatalf("gradients differ by %.3g, largest %.3g (want <= 1e-5 of it)", worst, scale)
	}
	t.Logf("loss rel. error %.2g, gradient error %.2g of the largest entry", relErr(rf.Loss, re.Loss), worst/scale)
}

// TestRunTargetLossChecks drives the shared front end with stub cores and
// gathers: a core's error, a non-finite loss, a gradient that overflows
// float32, a failing gather and a gather of inconsistent sizes are all
// reported with the method, the step and what failed, and g1, g2 are not
// written.
func TestRunTargetLossChecks(t *testing.T) {
	const n, d = 3, 2
	x := []float32{1, 2, 3, 4, 5, 6}
	core := func(loss float64, bad int, err error) targetFunc64 {
		return func(o1, o2, t1, t2 []float64, n, d int, g1, g2 []float64) (Result, error) {
			if bad >= 0 {
				g2[bad] = 1e39 // finite in float64, +Inf in float32
			}
			return Result{Loss: loss}, err
		}
	}
	for _, tc := range []struct {
		f    targetFunc64
		gath GatherFunc
		want []string
	}{
		{core(1, -1, errors.New("boom")), nil, []string{"stub: step 4: boom"}},
		{core(math.NaN(), -1, nil), nil, []string{"stub: step 4: loss is NaN"}},
		{core(1, 3, nil), nil, []string{"stub: step 4", "gradient of the online output of view 2", "row 1, column 1"}},
		{core(1, -1, nil), func(z []float32, n, d int) ([]float32, int, func(gAll, g []float32), error) {
			return nil, 0, nil, errors.New("link down")
		}, []string{"stub: step 4: gather online output of view 1 (o1): link down"}},
		{core(1, -1, nil), func(z []float32, n, d int) ([]float32, int, func(gAll, g []float32), error) {
			return z[:4], n, func(gAll, g []float32) {}, nil
		}, []string{"stub: step 4", "inconsistent sizes"}},
		{core(1, -1, nil), func(z []float32, n, d int) ([]float32, int, func(gAll, g []float32), error) {
			all := append(slices.Clone(z), float32(math.Inf(1)), 0)
			return all, n + 1, func(gAll, g []float32) {}, nil
		}, []string{"stub: step 4", "gathered online output of view 1", "row 3, column 0"}},
	} {
		g1, g2 := []float32{7, 7, 7, 7, 7, 7}, []float32{7, 7, 7, 7, 7, 7}
		_, err := runTargetLoss("stub", 4, x, x, x, x, n, d, g1, g2, tc.gath, tc.f)
		if err == nil {
			t.Errorf("want an error containing %q, got none", tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
		if slices.ContainsFunc(append(g1, g2...), func(v float32) bool { return v != 7 }) {
			t.Errorf("a failed call (%v) wrote the gradients", err)
		}
	}
}

// BenchmarkMoCoV2 times one TargetLoss at solo-learn's CIFAR sizes (batch
// 256, queue 32768) with gonum's float32 gemm (the corinfomax command
// plugs oneDNN's into blas32).
func BenchmarkMoCoV2(b *testing.B) {
	for _, d := range []int{64, 256} {
		b.Run(fmt.Sprintf("N=256/D=%d/K=32768", d), func(b *testing.B) {
			const n = 256
			m, err := NewTargeted(NameMoCoV2, Options{})
			if err != nil {
				b.Fatal(err)
			}
			o1, o2, t1, t2 := targetedInputs(rand.New(rand.NewPCG(1, 1)), n, d)
			in := [4][]float32{toF32(o1), toF32(o2), toF32(t1), toF32(t2)}
			g1, g2 := make([]float32, n*d), make([]float32, n*d)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.TargetLoss(i+1, in[0], in[1], in[2], in[3], n, d, g1, g2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
