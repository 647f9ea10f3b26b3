package ssl

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDefaultsConstructEveryMethod(t *testing.T) {
	for _, name := range Names() {
		opts, err := Defaults(name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(name, opts)
		if err != nil {
			t.Fatalf("%s: defaults rejected: %v", name, err)
		}
		if m.Name() != name {
			t.Errorf("New(%q).Name() = %q", name, m.Name())
		}
	}
	if _, err := Defaults("byol"); err == nil {
		t.Error("Defaults accepted an unknown method")
	}
	if _, err := New("byol", Options{}); err == nil {
		t.Error("New accepted an unknown method")
	}
	if _, err := New(NameCorInfoMax, Options{}); err == nil {
		t.Error("zero Options accepted: zero values must not mean defaults in New")
	}
}

// TestDefaultValues checks the defaults against the values the brief and
// DESIGN.md (paper, solo-learn configs) prescribe.
func TestDefaultValues(t *testing.T) {
	o, _ := Defaults(NameVICReg)
	if o.Alpha != 250 || o.LamR != 0.01 || o.LamMu != 0.01 || o.Eps != 1e-8 || o.InitScale != 1 || !o.Normalize {
		t.Errorf("corinfomax defaults %+v", o)
	}
	if o.Lambda != 0.0051 || o.ScaleLoss != 1 || o.SimCoeff != 25 || o.StdCoeff != 25 || o.CovCoeff != 1 ||
		o.Gamma != 1 || o.VarEps != 1e-4 || o.Temperature != 0.2 || o.WSize != 128 || o.WIter != 1 {
		t.Errorf("peer defaults %+v", o)
	}
}

func TestRecipeDefaults(t *testing.T) {
	// DESIGN.md section 2.
	want := map[string][3]float64{
		"cifar10": {250, 0.01, 1e-8}, "cifar100": {1000, 0.01, 1e-8}, "tinyimagenet": {500, 0.1, 1e-8},
		"imagenet100": {500, 0.01, 1e-8}, "imagenet1k": {2000, 0.1, 1e-8}, "fashionmnist": {250, 0.01, 1e-8},
	}
	for _, r := range Recipes() {
		o, err := RecipeDefaults(NameCorInfoMax, r)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[r]
		if !ok {
			t.Fatalf("unexpected recipe %q", r)
		}
		if o.Alpha != w[0] || o.LamR != w[1] || o.LamMu != w[1] || o.Eps != w[2] {
			t.Errorf("%s: alpha %g lam_R %g lam_mu %g eps %g, want %v", r, o.Alpha, o.LamR, o.LamMu, o.Eps, w)
		}
		for _, name := range Names()[1:] {
			o, err := RecipeDefaults(name, r)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := Defaults(name)
			if o.Temperature != d.Temperature || o.Lambda != d.Lambda || o.WSize != d.WSize || o.SimCoeff != d.SimCoeff {
				t.Errorf("%s/%s: peer options differ from defaults", name, r)
			}
		}
	}
	if len(want) != len(Recipes()) {
		t.Errorf("Recipes() = %v", Recipes())
	}
	if _, err := RecipeDefaults(NameCorInfoMax, "mnist"); err == nil {
		t.Error("unknown recipe accepted")
	}
}

func TestOptionValidation(t *testing.T) {
	cases := []struct {
		method, option string
		edit           func(*Options)
	}{
		{NameCorInfoMax, "alpha", func(o *Options) { o.Alpha = -1 }},
		{NameCorInfoMax, "lam_R", func(o *Options) { o.LamR = 1 }},
		{NameCorInfoMax, "lam_R", func(o *Options) { o.LamR = -0.1 }},
		{NameCorInfoMax, "lam_mu", func(o *Options) { o.LamMu = 1.5 }},
		{NameCorInfoMax, "eps", func(o *Options) { o.Eps = 0 }},
		{NameCorInfoMax, "eps", func(o *Options) { o.Eps = math.NaN() }},
		{NameCorInfoMax, "init_scale", func(o *Options) { o.InitScale = 0 }},
		{NameBarlowTwins, "lambda", func(o *Options) { o.Lambda = -1 }},
		{NameBarlowTwins, "scale_loss", func(o *Options) { o.ScaleLoss = 0 }},
		{NameVICReg, "sim_coeff", func(o *Options) { o.SimCoeff = -1 }},
		{NameVICReg, "std_coeff", func(o *Options) { o.StdCoeff = math.Inf(1) }},
		{NameVICReg, "cov_coeff", func(o *Options) { o.CovCoeff = -2 }},
		{NameVICReg, "gamma", func(o *Options) { o.Gamma = 0 }},
		{NameVICReg, "var_eps", func(o *Options) { o.VarEps = 0 }},
		{NameSimCLR, "temperature", func(o *Options) { o.Temperature = 0 }},
		{NameWMSE, "w_size", func(o *Options) { o.WSize = 1 }},
		{NameWMSE, "w_iter", func(o *Options) { o.WIter = 0 }},
		{NameWMSE, "w_eps", func(o *Options) { o.WEps = 1 }},
	}
	for _, tc := range cases {
		o, _ := Defaults(tc.method)
		tc.edit(&o)
		_, err := New(tc.method, o)
		if err == nil {
			t.Errorf("%s: bad %s accepted", tc.method, tc.option)
			continue
		}
		if !strings.Contains(err.Error(), tc.method) || !strings.Contains(err.Error(), tc.option+" ") {
			t.Errorf("%s: error %q does not name the method and option %s", tc.method, err, tc.option)
		}
	}
}

// TestEveryMethodRejectsBadInput checks NaN/Inf rejection and size checks
// for all methods through the public API.
func TestEveryMethodRejectsBadInput(t *testing.T) {
	const n, d = 8, 4
	for _, name := range Names() {
		o, _ := Defaults(name)
		o.WSize = n
		m, err := New(name, o)
		if err != nil {
			t.Fatal(err)
		}
		z1, z2 := randViews32(rand.New(rand.NewPCG(5, 5)), n, d)
		z1[9] = float32(math.Inf(1))
		_, err = m.Loss(11, z1, z2, n, d, make([]float32, n*d), make([]float32, n*d))
		if err == nil {
			t.Fatalf("%s: Inf accepted", name)
		}
		for _, want := range []string{name, "step 11", "view 1", "row 2, column 1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not contain %q", name, err, want)
			}
		}
		if _, err := m.Loss(1, z1[:n*d-1], z2, n, d, make([]float32, n*d), make([]float32, n*d)); err == nil {
			t.Errorf("%s: wrong length accepted", name)
		}
	}
}

// TestGatherEqualsBigBatch splits a batch over two simulated workers: each
// worker's loss must equal the loss of the whole batch, and its gradient
// the rows of the whole batch's gradient that belong to it.
func TestGatherEqualsBigBatch(t *testing.T) {
	const workers, n, d = 2, 8, 4
	rng := rand.New(rand.NewPCG(8, 8))
	for _, name := range Names() {
		o, _ := Defaults(name)
		o.WSize, o.WEps = n, 0.1
		big, err := New(name, o)
		if err != nil {
			t.Fatal(err)
		}
		var all [2][]float32 // current step's gathered views
		local := make([]Method, workers)
		for w := range local {
			ow := o
			calls := 0
			ow.Gather = func(z []float32, nl, dl int) ([]float32, int, func(gAll, g []float32), error) {
				v := all[calls%2]
				calls++
				for i, x := range z {
					if v[w*nl*dl+i] != x {
						t.Fatalf("%s: worker %d gathered the wrong rows", name, w)
					}
				}
				return v, workers * nl, func(gAll, g []float32) { copy(g, gAll[w*nl*dl:(w+1)*nl*dl]) }, nil
			}
			if local[w], err = New(name, ow); err != nil {
				t.Fatal(err)
			}
		}
		for step := 1; step <= 3; step++ {
			all[0], all[1] = randViews32(rng, workers*n, d)
			gb1, gb2 := make([]float32, workers*n*d), make([]float32, workers*n*d)
			rb, err := big.Loss(step, all[0], all[1], workers*n, d, gb1, gb2)
			if err != nil {
				t.Fatal(err)
			}
			for w, m := range local {
				lo, hi := w*n*d, (w+1)*n*d
				g1, g2 := make([]float32, n*d), make([]float32, n*d)
				r, err := m.Loss(step, all[0][lo:hi], all[1][lo:hi], n, d, g1, g2)
				if err != nil {
					t.Fatal(err)
				}
				if r.Loss != rb.Loss {
					t.Errorf("%s step %d worker %d: loss %v, big batch %v", name, step, w, r.Loss, rb.Loss)
				}
				for i := range g1 {
					if g1[i] != gb1[lo+i] || g2[i] != gb2[lo+i] {
						t.Fatalf("%s step %d worker %d: gradient row %d differs from the big batch", name, step, w, i/d)
					}
				}
			}
		}
	}
}

// TestKnownValues checks simple cases whose values follow from the formulas
// by hand.
func TestKnownValues(t *testing.T) {
	const n, d = 16, 4
	rng := rand.New(rand.NewPCG(9, 9))
	z, _ := randViews32(rng, n, d)
	g1, g2 := make([]float32, n*d), make([]float32, n*d)

	// Barlow Twins on identical views: c = diag(var/(var+1e-5)) so the
	// loss is sum_i (1e-5/(var_i+1e-5))^2 plus lambda times the squared
	// off-diagonal correlations (tiny but nonzero).
	o, _ := Defaults(NameBarlowTwins)
	o.Lambda = 0
	bt, _ := New(NameBarlowTwins, o)
	r, err := bt.Loss(1, z, z, n, d, g1, g2)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.0
	for j := 0; j < d; j++ {
		m, v := 0.0, 0.0
		for i := 0; i < n; i++ {
			m += float64(z[i*d+j])
		}
		m /= n
		for i := 0; i < n; i++ {
			e := float64(z[i*d+j]) - m
			v += e * e
		}
		v /= n
		x := barlowBNEps / (v + barlowBNEps)
		want += x * x
	}
	if math.Abs(r.Loss-want) > 1e-12 {
		t.Errorf("barlow twins on identical views: %g, want %g", r.Loss, want)
	}

	// SimCLR with every row equal: all similarities are 1/T, the loss is
	// log(2N - 1).
	same := make([]float32, n*d)
	for i := range same {
		same[i] = float32(1 + i%d)
	}
	sc, _ := New(NameSimCLR, Options{Temperature: 0.5})
	r, err = sc.Loss(1, same, same, n, d, g1, g2)
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Log(2*n - 1); math.Abs(r.Loss-want) > 1e-12 {
		t.Errorf("simclr on equal rows: %g, want log(2N-1) = %g", r.Loss, want)
	}

	// CorInfoMax: alpha * Lsim = (2 alpha / D)(1 - mean cosine).
	c := newCIM(t, nil)
	z1, z2 := randViews32(rng, n, d)
	r, err = c.Loss(1, z1, z2, n, d, g1, g2)
	if err != nil {
		t.Fatal(err)
	}
	cos := 0.0
	for i := 0; i < n; i++ {
		dot, a, b := 0.0, 0.0, 0.0
		for j := 0; j < d; j++ {
			x, y := float64(z1[i*d+j]), float64(z2[i*d+j])
			dot, a, b = dot+x*y, a+x*x, b+y*y
		}
		cos += dot / math.Sqrt(a*b)
	}
	cos /= n
	if want := 2 * 250 / float64(d) * (1 - cos); math.Abs(r.Components[0].Value-want) > 1e-9*want {
		t.Errorf("corinfomax sim = %g, want (2 alpha/D)(1 - mean cos) = %g", r.Components[0].Value, want)
	}
	if sum := r.Components[0].Value + r.Components[1].Value + r.Components[2].Value; math.Abs(sum-r.Loss) > 1e-12*math.Abs(r.Loss) {
		t.Errorf("components add up to %g, loss %g", sum, r.Loss)
	}
}

func TestWMSERejectsBadSplit(t *testing.T) {
	o, _ := Defaults(NameWMSE)
	o.WSize = 6
	m, _ := New(NameWMSE, o)
	z1, z2 := randViews32(rand.New(rand.NewPCG(1, 1)), 8, 2)
	_, err := m.Loss(4, z1, z2, 8, 2, make([]float32, 16), make([]float32, 16))
	if err == nil || !strings.Contains(err.Error(), "w_size") || !strings.Contains(err.Error(), "step 4") {
		t.Errorf("want an error naming w_size and the step, got %v", err)
	}
	// Sub-batches of 4 rows cannot whiten 8 dimensions without shrinkage.
	o.WSize, o.WEps = 4, 0
	m, _ = New(NameWMSE, o)
	z1, z2 = randViews32(rand.New(rand.NewPCG(1, 1)), 8, 8)
	if _, err := m.Loss(1, z1, z2, 8, 8, make([]float32, 64), make([]float32, 64)); err == nil || !strings.Contains(err.Error(), "w_eps") {
		t.Errorf("want a Cholesky error suggesting w_eps, got %v", err)
	}
}

// TestSimCLRFloat32ProductsMatchFloat64 checks SimCLR's float32 similarity
// products against the same computation in float64 at a training-sized
// batch (the PyTorch fixtures are small): loss within 1e-6 relative,
// gradients within 1e-5 of their largest entry.
func TestSimCLRFloat32ProductsMatchFloat64(t *testing.T) {
	n, d := 256, 64
	opts, err := Defaults(NameSimCLR)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := NewSimCLR(opts)
	if err != nil {
		t.Fatal(err)
	}
	exact, _ := NewSimCLR(opts)
	exact.exact = true
	rng := rand.New(rand.NewPCG(5, 5))
	z1, z2 := make([]float64, n*d), make([]float64, n*d)
	for i := range z1 {
		z1[i] = rng.NormFloat64()
		z2[i] = z1[i] + 0.3*rng.NormFloat64()
	}
	g1f, g2f, g1e, g2e := make([]float64, n*d), make([]float64, n*d), make([]float64, n*d), make([]float64, n*d)
	rf, err := fast.eval(z1, z2, n, d, g1f, g2f)
	if err != nil {
		t.Fatal(err)
	}
	re, err := exact.eval(z1, z2, n, d, g1e, g2e)
	if err != nil {
		t.Fatal(err)
	}
	if e := math.Abs(rf.Loss-re.Loss) / math.Abs(re.Loss); e > 1e-6 {
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
}
