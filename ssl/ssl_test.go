package ssl

import (
	"encoding/json"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// symmetricNames returns the names of the symmetric methods (those New
// builds), in registry order.
func symmetricNames() []string {
	var names []string
	for _, r := range Methods() {
		if r.New != nil {
			names = append(names, r.Name)
		}
	}
	return names
}

// targetedNames returns the names of the asymmetric methods (those
// NewTargeted builds), in registry order.
func targetedNames() []string {
	var names []string
	for _, r := range Methods() {
		if r.NewTargeted != nil {
			names = append(names, r.Name)
		}
	}
	return names
}

func TestDefaultsConstructEveryMethod(t *testing.T) {
	for _, name := range Names() {
		opts, err := Defaults(name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewObjective(name, opts)
		if err != nil {
			t.Fatalf("%s: defaults rejected: %v", name, err)
		}
		if m.Name() != name {
			t.Errorf("NewObjective(%q).Name() = %q", name, m.Name())
		}
		r, _ := Lookup(name)
		_, isMethod := m.(Method)
		_, isTargeted := m.(Targeted)
		if isMethod != (r.New != nil) || isTargeted != (r.NewTargeted != nil) {
			t.Errorf("%s: NewObjective returned %T (Method %v, Targeted %v)", name, m, isMethod, isTargeted)
		}
		if isTargeted {
			if got := m.(Targeted).Branches(); got != r.Branches {
				t.Errorf("%s: Branches() = %+v, registration %+v", name, got, r.Branches)
			}
			if _, err := New(name, opts); err == nil || !strings.Contains(err.Error(), "NewTargeted") {
				t.Errorf("%s: New on an asymmetric method: want an error pointing to NewTargeted, got %v", name, err)
			}
		} else if _, err := NewTargeted(name, opts); err == nil || !strings.Contains(err.Error(), "ssl.New") {
			t.Errorf("%s: NewTargeted on a symmetric method: want an error pointing to New, got %v", name, err)
		}
	}
	if got, want := Names(), []string{NameCorInfoMax, NameBarlowTwins, NameVICReg, NameSimCLR, NameWMSE,
		NameBYOL, NameSimSiam, NameMoCoV2}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	wantBranches := map[string]Branches{
		NameBYOL:    {Predictor: true, Momentum: true},
		NameSimSiam: {Predictor: true},
		NameMoCoV2:  {Momentum: true},
	}
	for _, name := range Names() {
		if b, err := BranchesOf(name); err != nil || b != wantBranches[name] {
			t.Errorf("BranchesOf(%s) = %+v, %v; want %+v", name, b, err, wantBranches[name])
		}
	}
	if _, err := Defaults("byol2"); err == nil {
		t.Error("Defaults accepted an unknown method")
	}
	if _, err := New("byol2", Options{}); err == nil {
		t.Error("New accepted an unknown method")
	}
	if _, err := NewTargeted("byol2", Options{}); err == nil {
		t.Error("NewTargeted accepted an unknown method")
	}
	// A declared option that Options lacks takes its default; an option
	// the method does not declare is refused with a typed error.
	if _, err := New(NameCorInfoMax, Options{}); err != nil {
		t.Errorf("zero Options (all defaults) refused: %v", err)
	}
	var oe *OptionError
	_, err := New(NameCorInfoMax, Options{Values: map[string]float64{"temperature": 0.5}})
	if !errors.As(err, &oe) || oe.Option != "temperature" || oe.Method != NameCorInfoMax {
		t.Errorf("an option of another method: want an *OptionError naming it, got %v", err)
	}
	_, err = New(NameWMSE, Options{Values: map[string]float64{"w_size": 2.5}})
	if !errors.As(err, &oe) || oe.Option != "w_size" {
		t.Errorf("a fractional integer option: want an *OptionError naming it, got %v", err)
	}
}

// TestDefaultValues checks the declared defaults against the papers' and
// solo-learn's values (docs/design.md).
func TestDefaultValues(t *testing.T) {
	want := map[string]map[string]float64{
		NameCorInfoMax:  {"alpha": 250, "lam_R": 0.01, "lam_mu": 0.01, "eps": 1e-8, "init_scale": 1, "normalize": 1},
		NameBarlowTwins: {"lambda": 0.0051, "scale_loss": 1},
		NameVICReg:      {"sim_coeff": 25, "std_coeff": 25, "cov_coeff": 1, "gamma": 1, "var_eps": 1e-4},
		NameSimCLR:      {"temperature": 0.2},
		NameWMSE:        {"w_size": 128, "w_iter": 1, "w_eps": 0},
		NameBYOL:        {},
		NameSimSiam:     {},
		NameMoCoV2:      {"queue_size": 32768, "moco_temperature": 0.2},
	}
	for _, name := range Names() {
		o, err := Defaults(name)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(o.Values, want[name]) {
			t.Errorf("%s defaults %v, want %v", name, o.Values, want[name])
		}
	}
}

// TestOptionDeclarations checks what the commands rely on: every option
// has a help text and a flag, and no two options share a name or a flag.
func TestOptionDeclarations(t *testing.T) {
	names, flags := map[string]string{}, map[string]string{}
	for _, r := range Methods() {
		if r.Summary == "" || (r.New == nil) == (r.NewTargeted == nil) {
			t.Errorf("%s: registration lacks a summary or has not exactly one constructor", r.Name)
		}
		if r.New != nil && r.Branches != (Branches{}) {
			t.Errorf("%s: a symmetric method declares branches %+v", r.Name, r.Branches)
		}
		for _, o := range r.Options {
			if o.Help == "" || o.Flag == "" {
				t.Errorf("%s: option %s lacks a flag or help", r.Name, o.Name)
			}
			if m, dup := names[o.Name]; dup {
				t.Errorf("option %s declared by %s and %s", o.Name, m, r.Name)
			}
			if m, dup := flags[o.Flag]; dup {
				t.Errorf("flag --%s declared by %s and %s", o.Flag, m, r.Name)
			}
			names[o.Name], flags[o.Flag] = r.Name, r.Name
			if m, decl, ok := OptionOf(o.Name); !ok || m != r.Name || decl.Flag != o.Flag {
				t.Errorf("OptionOf(%q) = %s, %+v", o.Name, m, decl)
			}
		}
	}
}

// TestOptionsJSON checks the stored form of options, and that
// configurations written before the declarations (Go field names, a JSON
// boolean, the union of every method's fields) still read.
func TestOptionsJSON(t *testing.T) {
	o, _ := Defaults(NameCorInfoMax)
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back Options
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(back.Values, o.Values) {
		t.Errorf("round trip %v -> %s -> %v", o.Values, b, back.Values)
	}
	legacy := `{"Alpha":500,"LamR":0.1,"LamMu":0.1,"Eps":1e-8,"InitScale":1,"Normalize":false,"Lambda":0.0051,` +
		`"ScaleLoss":1,"SimCoeff":25,"StdCoeff":25,"CovCoeff":1,"Gamma":1,"VarEps":0.0001,"Temperature":0.2,` +
		`"WSize":128,"WIter":1,"WEps":0,"Seed":0}`
	var old Options
	if err := json.Unmarshal([]byte(legacy), &old); err != nil {
		t.Fatal(err)
	}
	kept, err := Declared(NameCorInfoMax, old)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Resolved(NameCorInfoMax, kept)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"alpha": 500, "lam_R": 0.1, "lam_mu": 0.1, "eps": 1e-8, "init_scale": 1, "normalize": 0}
	if !maps.Equal(got.Values, want) {
		t.Errorf("legacy options read as %v, want %v", got.Values, want)
	}
}

func TestOptionValidation(t *testing.T) {
	cases := []struct {
		method, option string
		edit           func(*Options)
	}{
		{NameCorInfoMax, "alpha", func(o *Options) { o.Set("alpha", -1) }},
		{NameCorInfoMax, "lam_R", func(o *Options) { o.Set("lam_R", 1) }},
		{NameCorInfoMax, "lam_R", func(o *Options) { o.Set("lam_R", -0.1) }},
		{NameCorInfoMax, "lam_mu", func(o *Options) { o.Set("lam_mu", 1.5) }},
		{NameCorInfoMax, "eps", func(o *Options) { o.Set("eps", 0) }},
		{NameCorInfoMax, "eps", func(o *Options) { o.Set("eps", math.NaN()) }},
		{NameCorInfoMax, "init_scale", func(o *Options) { o.Set("init_scale", 0) }},
		{NameBarlowTwins, "lambda", func(o *Options) { o.Set("lambda", -1) }},
		{NameBarlowTwins, "scale_loss", func(o *Options) { o.Set("scale_loss", 0) }},
		{NameVICReg, "sim_coeff", func(o *Options) { o.Set("sim_coeff", -1) }},
		{NameVICReg, "std_coeff", func(o *Options) { o.Set("std_coeff", math.Inf(1)) }},
		{NameVICReg, "cov_coeff", func(o *Options) { o.Set("cov_coeff", -2) }},
		{NameVICReg, "gamma", func(o *Options) { o.Set("gamma", 0) }},
		{NameVICReg, "var_eps", func(o *Options) { o.Set("var_eps", 0) }},
		{NameSimCLR, "temperature", func(o *Options) { o.Set("temperature", 0) }},
		{NameWMSE, "w_size", func(o *Options) { o.Set("w_size", 1) }},
		{NameWMSE, "w_iter", func(o *Options) { o.Set("w_iter", 0) }},
		{NameWMSE, "w_eps", func(o *Options) { o.Set("w_eps", 1) }},
		{NameMoCoV2, "queue_size", func(o *Options) { o.Set("queue_size", 0) }},
		{NameMoCoV2, "queue_size", func(o *Options) { o.Set("queue_size", -5) }},
		{NameMoCoV2, "queue_size", func(o *Options) { o.Set("queue_size", 2.5) }},
		{NameMoCoV2, "moco_temperature", func(o *Options) { o.Set("moco_temperature", 0) }},
		{NameMoCoV2, "moco_temperature", func(o *Options) { o.Set("moco_temperature", -0.1) }},
		{NameMoCoV2, "moco_temperature", func(o *Options) { o.Set("moco_temperature", math.Inf(1)) }},
		{NameBYOL, "temperature", func(o *Options) { o.Set("temperature", 0.2) }},
		{NameSimSiam, "queue_size", func(o *Options) { o.Set("queue_size", 8) }},
	}
	for _, tc := range cases {
		o, _ := Defaults(tc.method)
		tc.edit(&o)
		_, err := NewObjective(tc.method, o)
		if err == nil {
			t.Errorf("%s: bad %s accepted", tc.method, tc.option)
			continue
		}
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Method != tc.method || oe.Option != tc.option {
			t.Errorf("%s: error %q is not an *OptionError naming the method and option %s", tc.method, err, tc.option)
		}
	}
}

// TestEveryMethodRejectsBadInput checks NaN/Inf rejection and size checks
// for all symmetric methods through the public API
// (TestTargetedRejectsBadInput for the others).
func TestEveryMethodRejectsBadInput(t *testing.T) {
	const n, d = 8, 4
	for _, name := range symmetricNames() {
		o, _ := Defaults(name)
		setOwn(&o, "w_size", n)
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
	for _, name := range symmetricNames() {
		o, _ := Defaults(name)
		setOwn(&o, "w_size", n)
		setOwn(&o, "w_eps", 0.1)
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
	o.Set("lambda", 0)
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
	sc, _ := New(NameSimCLR, Options{Values: map[string]float64{"temperature": 0.5}})
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
	o.Set("w_size", 6)
	m, _ := New(NameWMSE, o)
	z1, z2 := randViews32(rand.New(rand.NewPCG(1, 1)), 8, 2)
	_, err := m.Loss(4, z1, z2, 8, 2, make([]float32, 16), make([]float32, 16))
	if err == nil || !strings.Contains(err.Error(), "w_size") || !strings.Contains(err.Error(), "step 4") {
		t.Errorf("want an error naming w_size and the step, got %v", err)
	}
	// Sub-batches of 4 rows cannot whiten 8 dimensions without shrinkage.
	o.Set("w_size", 4)
	o.Set("w_eps", 0)
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
	m, err := New(NameSimCLR, opts)
	if err != nil {
		t.Fatal(err)
	}
	fast := m.(*SimCLR)
	m, _ = New(NameSimCLR, opts)
	exact := m.(*SimCLR)
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
