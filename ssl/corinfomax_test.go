package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func randViews32(rng *rand.Rand, n, d int) (z1, z2 []float32) {
	a, b := twoViews(rng, n, d)
	return toF32(a), toF32(b)
}

func toF32(x []float64) []float32 {
	z := make([]float32, len(x))
	for i, v := range x {
		z[i] = float32(v)
	}
	return z
}

func allFinite32(x []float32) bool {
	for _, v := range x {
		if !finite(float64(v)) {
			return false
		}
	}
	return true
}

func newCIM(t testing.TB, edit func(*Options)) *CorInfoMax {
	t.Helper()
	opts, err := Defaults(NameCorInfoMax)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&opts)
	}
	m, err := New(NameCorInfoMax, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*CorInfoMax)
}

// TestCorInfoMaxEdgeCases runs batches that are hard for the covariance:
// fewer rows than dimensions, identical rows, zero rows, at D = 32 (the
// blocked Gram path). Every step must succeed with finite gradients, and its
// loss, components and running state (R, mu of both views) must equal those
// of cimRef, the plain-loop float64 reference fed the same float32 inputs:
// loss and components to 1e-9 relative to max(|loss|, 1), R and mu to 1e-12
// relative to their largest entry. Both compute in float64 from the same
// inputs and differ only in summation order; the worst case measured is
// n<d without normalisation (4 rows in 32 dimensions leave R' + eps I badly
// conditioned), whose loss agrees to 3e-11 and state to 1e-13. The runs
// without normalisation use lam_R != lam_mu (0.05 and 0.2) so that the two
// cannot be confused unnoticed. A wrong lam, a missing mean, a Gram block
// left out or an unmirrored triangle changes the loss by far more.
func TestCorInfoMaxEdgeCases(t *testing.T) {
	const d = 32
	cases := []struct {
		name string
		n    int
		make func(rng *rand.Rand, n int) ([]float32, []float32)
	}{
		{"n<d", 4, func(rng *rand.Rand, n int) ([]float32, []float32) { return randViews32(rng, n, d) }},
		{"identical rows", 8, func(rng *rand.Rand, n int) ([]float32, []float32) {
			z1, z2 := randViews32(rng, 1, d)
			a, b := make([]float32, 0, n*d), make([]float32, 0, n*d)
			for i := 0; i < n; i++ {
				a, b = append(a, z1...), append(b, z2...)
			}
			return a, b
		}},
		{"some zero rows", 8, func(rng *rand.Rand, n int) ([]float32, []float32) {
			z1, z2 := randViews32(rng, n, d)
			clear(z1[:2*d])
			clear(z2[3*d : 4*d])
			return z1, z2
		}},
		{"all-zero view", 8, func(rng *rand.Rand, n int) ([]float32, []float32) {
			_, z2 := randViews32(rng, n, d)
			return make([]float32, n*d), z2
		}},
	}
	for _, tc := range cases {
		for _, normalize := range []bool{true, false} {
			c := newCIM(t, func(o *Options) {
				o.Set("normalize", b2f(normalize))
				if !normalize {
					o.Set("lam_R", 0.05)
					o.Set("lam_mu", 0.2)
				}
			})
			ref := &cimRef{o: c.opts}
			rng := rand.New(rand.NewPCG(7, 7))
			label := fmt.Sprintf("%s normalize=%v", tc.name, normalize)
			for step := 1; step <= 8; step++ {
				z1, z2 := tc.make(rng, tc.n)
				g1, g2 := make([]float32, tc.n*d), make([]float32, tc.n*d)
				res, err := c.Loss(step, z1, z2, tc.n, d, g1, g2)
				if err != nil {
					t.Fatalf("%s step %d: %v", label, step, err)
				}
				if !allFinite32(g1) || !allFinite32(g2) {
					t.Fatalf("%s step %d: non-finite gradient", label, step)
				}
				want, comps, err := ref.step(z1, z2, tc.n, d)
				if err != nil {
					t.Fatalf("%s step %d: reference: %v", label, step, err)
				}
				checkAgainstRef(t, fmt.Sprintf("%s step %d", label, step), c, ref, res, want, comps)
			}
		}
	}
}

// TestCorInfoMaxInvalidInputErrors checks the exact errors for malformed
// calls and that none of them touches the running state.
func TestCorInfoMaxInvalidInputErrors(t *testing.T) {
	const n, d = 8, 32
	c := newCIM(t, nil)
	z1, z2 := randViews32(rand.New(rand.NewPCG(5, 5)), n, d)
	g1, g2 := make([]float32, n*d), make([]float32, n*d)
	if _, err := c.Loss(1, z1, z2, n, d, g1, g2); err != nil {
		t.Fatal(err)
	}
	before := c.State()
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"n=0", func() error { _, err := c.Loss(2, nil, nil, 0, d, nil, nil); return err },
			"corinfomax: step 2: invalid shape n=0, d=32"},
		{"short z2", func() error { _, err := c.Loss(3, z1, z2[:5], n, d, g1, g2); return err },
			"corinfomax: step 3: z2 has 5 values, want n*d = 256"},
		{"short g1", func() error { _, err := c.Loss(4, z1, z2, n, d, g1[:255], g2); return err },
			"corinfomax: step 4: g1 has 255 values, want n*d = 256"},
		{"other d", func() error { _, err := c.Loss(5, z1, z2, 2*n, d/2, g1, g2); return err },
			"corinfomax: step 5: feature dimension 16 differs from the running state's 32"},
	} {
		err := tc.call()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	after := c.State()
	for i := range before {
		for j := range before[i].Data {
			if before[i].Data[j] != after[i].Data[j] {
				t.Fatalf("state %s changed by a failed call", before[i].Name)
			}
		}
	}
}

func TestCorInfoMaxRejectsNaN(t *testing.T) {
	const n, d = 8, 4
	c := newCIM(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	z1, z2 := randViews32(rng, n, d)
	g1, g2 := make([]float32, n*d), make([]float32, n*d)
	if _, err := c.Loss(6, z1, z2, n, d, g1, g2); err != nil {
		t.Fatal(err)
	}
	before := c.State()
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		z1, z2 := randViews32(rng, n, d)
		z2[5] = bad
		_, err := c.Loss(7, z1, z2, n, d, g1, g2)
		if err == nil {
			t.Fatalf("%v input accepted", bad)
		}
		for _, want := range []string{"corinfomax", "step 7", "view 2"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	}
	after := c.State()
	for i := range before {
		for j := range before[i].Data {
			if before[i].Data[j] != after[i].Data[j] {
				t.Fatalf("state %s changed by a failed call", before[i].Name)
			}
		}
	}
}

// TestCorInfoMaxCholeskyFailure forces an indefinite covariance through
// SetState and expects an error naming method, step, view and eps.
func TestCorInfoMaxCholeskyFailure(t *testing.T) {
	const n, d = 2, 6
	c := newCIM(t, func(o *Options) { o.Set("lam_R", 0.5) })
	st := []StateTensor{
		{Name: "R1", Shape: []int{d, d}, Data: make([]float64, d*d)},
		{Name: "R2", Shape: []int{d, d}, Data: make([]float64, d*d)},
		{Name: "mu1", Shape: []int{d}, Data: make([]float64, d)},
		{Name: "mu2", Shape: []int{d}, Data: make([]float64, d)},
	}
	for i := 0; i < d; i++ {
		st[0].Data[i*d+i] = -1 // indefinite R1
		st[1].Data[i*d+i] = 1
	}
	if err := c.SetState(st); err != nil {
		t.Fatal(err)
	}
	z1, z2 := randViews32(rand.New(rand.NewPCG(3, 3)), n, d)
	_, err := c.Loss(3, z1, z2, n, d, make([]float32, n*d), make([]float32, n*d))
	if err == nil {
		t.Fatal("indefinite covariance accepted")
	}
	for _, want := range []string{"corinfomax", "step 3", "view 1", "eps"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestCorInfoMaxSanityBound checks the lower bound of docs/design.md section 1: with unit rows,
// tr(R) is about 1, so by AM-GM Lcov >= ln D - ln(tr(R' + eps I)/D * D)
// holds exactly for each view, and cov1+cov2 >= about 2 ln D after a few steps.
func TestCorInfoMaxSanityBound(t *testing.T) {
	for _, d := range []int{8, 64} {
		const n = 256
		c := newCIM(t, nil)
		rng := rand.New(rand.NewPCG(uint64(d), 9))
		var res Result
		for step := 1; step <= 5; step++ {
			z1, z2 := randViews32(rng, n, d)
			var err error
			res, err = c.Loss(step, z1, z2, n, d, make([]float32, n*d), make([]float32, n*d))
			if err != nil {
				t.Fatal(err)
			}
			for view := 1; view <= 2; view++ {
				r, _ := c.RunningCovariance(view)
				tr := 0.0
				for i := 0; i < d; i++ {
					tr += r[i*d+i] + 1e-8
				}
				bound := math.Log(float64(d)) - math.Log(tr)
				if got := res.Components[view].Value; got < bound-1e-9 {
					t.Errorf("d=%d step %d: cov%d = %g below the AM-GM bound %g", d, step, view, got, bound)
				}
			}
		}
		sum := res.Components[1].Value + res.Components[2].Value
		if lb := 2 * math.Log(float64(d)); sum < lb-0.01 {
			t.Errorf("d=%d: cov1+cov2 = %g, want >= about 2 ln D = %g", d, sum, lb)
		}
		if res.Components[0].Name != "sim" || res.Components[1].Name != "cov1" || res.Components[2].Name != "cov2" {
			t.Errorf("component names %v", res.Components)
		}
	}
}

func TestCorInfoMaxStateRoundTrip(t *testing.T) {
	const n, d = 16, 8
	rng := rand.New(rand.NewPCG(4, 4))
	batches := make([][2][]float32, 5)
	for i := range batches {
		batches[i][0], batches[i][1] = randViews32(rng, n, d)
	}
	a := newCIM(t, func(o *Options) { o.Set("lam_R", 0.2); o.Set("lam_mu", 0.4) })
	if a.State() != nil {
		t.Fatal("state before the first step should be nil")
	}
	for i := 0; i < 3; i++ {
		if _, err := a.Loss(i+1, batches[i][0], batches[i][1], n, d, make([]float32, n*d), make([]float32, n*d)); err != nil {
			t.Fatal(err)
		}
	}
	st := a.State()
	if saved := st[0].Data[0]; true {
		st[0].Data[0] = 1e9 // State must return a copy
		if a.State()[0].Data[0] == 1e9 {
			t.Fatal("State returned the live covariance")
		}
		st[0].Data[0] = saved
	}
	b := newCIM(t, func(o *Options) { o.Set("lam_R", 0.2); o.Set("lam_mu", 0.4) })
	if err := b.SetState(st); err != nil {
		t.Fatal(err)
	}
	st[2].Data[0] = 1e9 // SetState must copy too
	for i := 3; i < 5; i++ {
		ga1, ga2 := make([]float32, n*d), make([]float32, n*d)
		gb1, gb2 := make([]float32, n*d), make([]float32, n*d)
		ra, err := a.Loss(i+1, batches[i][0], batches[i][1], n, d, ga1, ga2)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.Loss(i+1, batches[i][0], batches[i][1], n, d, gb1, gb2)
		if err != nil {
			t.Fatal(err)
		}
		if ra.Loss != rb.Loss {
			t.Fatalf("step %d: loss %v after round trip, %v without", i+1, rb.Loss, ra.Loss)
		}
		for j := range ga1 {
			if ga1[j] != gb1[j] || ga2[j] != gb2[j] {
				t.Fatalf("step %d: gradients differ after the state round trip", i+1)
			}
		}
	}
	for i, s := range a.State() {
		for j, v := range s.Data {
			if b.State()[i].Data[j] != v {
				t.Fatalf("state %s differs", s.Name)
			}
		}
	}
}

func TestCorInfoMaxSetStateValidates(t *testing.T) {
	good := func() []StateTensor {
		return []StateTensor{
			{Name: "R1", Shape: []int{2, 2}, Data: []float64{1, 0, 0, 1}},
			{Name: "R2", Shape: []int{2, 2}, Data: []float64{1, 0, 0, 1}},
			{Name: "mu1", Shape: []int{2}, Data: []float64{0, 0}},
			{Name: "mu2", Shape: []int{2}, Data: []float64{0, 0}},
		}
	}
	bad := map[string]func([]StateTensor) []StateTensor{
		"missing":    func(s []StateTensor) []StateTensor { return s[:3] },
		"unknown":    func(s []StateTensor) []StateTensor { s[3].Name = "nu2"; return s },
		"shape":      func(s []StateTensor) []StateTensor { s[1].Shape = []int{2, 3}; return s },
		"length":     func(s []StateTensor) []StateTensor { s[2].Data = []float64{0}; return s },
		"nan":        func(s []StateTensor) []StateTensor { s[0].Data[1] = math.NaN(); return s },
		"asymmetric": func(s []StateTensor) []StateTensor { s[0].Data[1] = 0.5; return s },
		"duplicate":  func(s []StateTensor) []StateTensor { s[3].Name = "mu1"; return s },
	}
	for name, edit := range bad {
		c := newCIM(t, nil)
		if err := c.SetState(edit(good())); err == nil {
			t.Errorf("%s: SetState accepted a bad state", name)
		} else if !strings.Contains(err.Error(), "corinfomax") {
			t.Errorf("%s: error %q does not name the method", name, err)
		}
	}
	c := newCIM(t, nil)
	if err := c.SetState(good()); err != nil {
		t.Fatal(err)
	}
	z := make([]float32, 3*3)
	if _, err := c.Loss(1, z, z, 3, 3, make([]float32, 9), make([]float32, 9)); err == nil {
		t.Error("Loss accepted d=3 with a d=2 state")
	}
}

func BenchmarkCorInfoMax(b *testing.B) {
	for _, d := range []int{64, 128} {
		b.Run(fmt.Sprintf("N=512/D=%d", d), func(b *testing.B) {
			const n = 512
			c := newCIM(b, nil)
			z1, z2 := randViews32(rand.New(rand.NewPCG(1, 1)), n, d)
			g1, g2 := make([]float32, n*d), make([]float32, n*d)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Loss(i+1, z1, z2, n, d, g1, g2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
