package ssl

import "fmt"

// Branches says which extra parts of the network an asymmetric objective
// needs. The symmetric methods (CorInfoMax, Barlow Twins, VICReg, SimCLR,
// W-MSE) need neither: their loss reads the projector outputs of both views
// and sends a gradient into both.
type Branches struct {
	// Predictor: the online output of a view is the predictor's output p
	// (an MLP on the projector output z, trained with the network) instead
	// of z. BYOL and SimSiam.
	Predictor bool
	// Momentum: a view's target is the projector output of the momentum
	// network (an exponential moving average of the online backbone and
	// projector, never trained by gradient). Without it the target is the
	// online projector output of the view, detached (SimSiam).
	Momentum bool
}

// Targeted is an asymmetric objective (BYOL, SimSiam, MoCo v2): it compares
// each view's online output with targets computed without gradient, and
// its gradient flows into the online outputs only.
type Targeted interface {
	// Name returns the method's name as listed by Names.
	Name() string
	// Branches says where the online outputs and the targets come from.
	Branches() Branches
	// TargetLoss computes the objective for optimizer step `step`
	// (1-based) from the online outputs o1, o2 and the targets t1, t2 of
	// views 1 and 2 (each n x d, row-major; t_v is computed from view v)
	// and OVERWRITES g1, g2 with dL/do1, dL/do2. The targets get no
	// gradient. It rejects NaN/Inf input with an error naming the method,
	// the step and the tensor. Stateful methods (MoCo's queue) update their
	// running state only when the call succeeds.
	TargetLoss(step int, o1, o2, t1, t2 []float32, n, d int, g1, g2 []float32) (Result, error)
}

// Objective is either a Method or a Targeted method: what NewObjective
// returns. Use a type switch to tell them apart.
type Objective interface {
	Name() string
}

// NewTargeted returns the named asymmetric method with the given options,
// validated like New's.
func NewTargeted(method string, opts Options) (Targeted, error) {
	r, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	if r.NewTargeted == nil {
		return nil, fmt.Errorf("ssl: %s is a symmetric method: build it with ssl.New", method)
	}
	res, err := resolve(r, opts)
	if err != nil {
		return nil, err
	}
	full := opts.Clone()
	full.Values = res.vals
	return r.NewTargeted(full)
}

// NewObjective returns the named method, symmetric (a Method) or
// asymmetric (a Targeted), with the given options.
func NewObjective(method string, opts Options) (Objective, error) {
	r, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	if r.NewTargeted != nil {
		return NewTargeted(method, opts)
	}
	return New(method, opts)
}

// BranchesOf returns the branches the named method needs (none for a
// symmetric method).
func BranchesOf(method string) (Branches, error) {
	r, err := Lookup(method)
	if err != nil {
		return Branches{}, err
	}
	return r.Branches, nil
}

// targetFunc64 is a targeted method's float64 core: the loss of the
// (gathered) online outputs o1, o2 against the targets t1, t2 (each n x d)
// with dL/do1, dL/do2 written into g1, g2 (zeroed by the caller).
type targetFunc64 func(o1, o2, t1, t2 []float64, n, d int, g1, g2 []float64) (Result, error)

// targetTensors names the inputs of TargetLoss in error messages, in the
// order o1, o2, t1, t2.
var targetTensors = [4]string{
	"online output of view 1 (o1)", "online output of view 2 (o2)",
	"target of view 1 (t1)", "target of view 2 (t2)",
}

// checkFiniteTensor returns an error naming the tensor and its first
// non-finite entry.
func checkFiniteTensor(what string, x []float32, d int) error {
	for i, v := range x {
		if !finite(float64(v)) {
			return fmt.Errorf("%s has non-finite value %v at row %d, column %d", what, v, i/d, i%d)
		}
	}
	return nil
}

// runTargetLoss is the float32 front end shared by the targeted methods,
// runLoss's counterpart: it validates the sizes, rejects non-finite input
// naming the method, the step and the tensor, gathers o1, o2, t1, t2 (in
// that order, each with one call of gather) across workers, runs the
// float64 core f, checks the loss and the gradients for finiteness and
// scatters the gradient rows of this worker back into g1, g2. The targets
// get no gradient, so their scatter functions are not used.
func runTargetLoss(name string, step int, o1, o2, t1, t2 []float32, n, d int, g1, g2 []float32, gather GatherFunc, f targetFunc64) (Result, error) {
	if n <= 0 || d <= 0 {
		return Result{}, fmt.Errorf("%s: step %d: invalid shape n=%d, d=%d", name, step, n, d)
	}
	for i, s := range [][]float32{o1, o2, t1, t2, g1, g2} {
		if len(s) != n*d {
			what := [...]string{"o1", "o2", "t1", "t2", "g1", "g2"}[i]
			return Result{}, fmt.Errorf("%s: step %d: %s has %d values, want n*d = %d", name, step, what, len(s), n*d)
		}
	}
	in := [4][]float32{o1, o2, t1, t2}
	for i, x := range in {
		if err := checkFiniteTensor(targetTensors[i], x, d); err != nil {
			return Result{}, fmt.Errorf("%s: step %d: %w", name, step, err)
		}
	}
	all, nAll := in, n
	var scatter [2]func(gAll, g []float32)
	if gather != nil {
		for i, x := range in {
			a, m, sc, err := gather(x, n, d)
			if err != nil {
				return Result{}, fmt.Errorf("%s: step %d: gather %s: %w", name, step, targetTensors[i], err)
			}
			if i == 0 {
				nAll = m
			}
			if m <= 0 || m != nAll || len(a) != m*d || (i < 2 && sc == nil) {
				return Result{}, fmt.Errorf("%s: step %d: gather %s returned inconsistent sizes (%d rows, %d values, d=%d; %d rows for o1)",
					name, step, targetTensors[i], m, len(a), d, nAll)
			}
			if err := checkFiniteTensor("gathered "+targetTensors[i], a, d); err != nil {
				return Result{}, fmt.Errorf("%s: step %d: %w", name, step, err)
			}
			all[i] = a
			if i < 2 {
				scatter[i] = sc
			}
		}
	}
	gx1, gx2 := make([]float64, nAll*d), make([]float64, nAll*d)
	res, err := f(to64(all[0]), to64(all[1]), to64(all[2]), to64(all[3]), nAll, d, gx1, gx2)
	return finishLoss(name, step, "the online output of view", res, err, nAll, d, [2][]float64{gx1, gx2},
		[2][]float32{g1, g2}, scatter)
}

// meanCos returns mean_i cos(o_i, t_i) over the n rows of o and t (n x d),
// each row L2-normalised as F.normalize does (normalizeRows), and
// OVERWRITES g with coef times its gradient with respect to o (t is
// detached).
func meanCos(o, t []float64, n, d int, coef float64, g []float64) float64 {
	y, norms := normalizeRows(o, n, d)
	k, _ := normalizeRows(t, n, d)
	s := 0.0
	for i := 0; i < n; i++ {
		dot := 0.0
		for j := i * d; j < (i+1)*d; j++ {
			dot += y[j] * k[j]
		}
		s += dot
	}
	s /= float64(n)
	c := coef / float64(n)
	for j, v := range k {
		g[j] = c * v
	}
	normalizeRowsBackward(y, norms, g, n, d, g)
	return s
}
