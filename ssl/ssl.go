// Package ssl implements the self-supervised objectives of the toolkit:
// CorInfoMax and its peers, symmetric and asymmetric.
//
// The symmetric methods (CorInfoMax, Barlow Twins, VICReg, SimCLR, W-MSE)
// are Methods: they work on the projector outputs of the two views of a
// batch and send a gradient into both. The asymmetric (targeted) methods
// (BYOL, SimSiam, MoCo v2+) are Targeted (targeted.go): they compare each
// view's online output (the predictor's output for BYOL and SimSiam, the
// projector's for MoCo) with targets computed without gradient (a momentum
// network's projector outputs for BYOL and MoCo, the detached online
// projector outputs for SimSiam), and their gradient flows into the online
// outputs only; Branches says which extra networks the trainer runs.
// NewObjective builds either kind.
//
// Every method takes its inputs as float32 row-major N x D matrices and
// returns the loss together with its analytic gradient. All arithmetic
// inside a method runs in float64, except the largest products of SimCLR
// and MoCo, which run in float32 (see their documentation); only the
// gradients written back are float32. The package uses the engine's row
// operators (package ops) but no backend.
//
// Each method is one file holding the method and its Registration (its
// name, declared options and constructor), listed once in registry.
//
// # Data-parallel training
//
// With Options.Gather set, a method first concatenates the inputs of all
// workers (z of both views, or the online outputs and targets of both
// views for a Targeted method, in the same worker order for every tensor)
// and evaluates the loss of that one big batch; every worker therefore
// computes the same loss value and the same running state (CorInfoMax's
// statistics, MoCo's queues). Gather's scatter function then hands each
// worker the rows of dL/dz_all (dL/do_all) that belong to its own samples.
// Backpropagating those rows through the local network gives the local
// contribution to dL/dθ, and the gradient of the big-batch loss is the SUM
// of the workers' contributions: all-reduce the parameter gradients with a
// sum (or multiply an averaged all-reduce by the number of workers).
// Training on W workers with n samples each is then exactly equal to
// training on one batch of W*n samples.
package ssl

import (
	"fmt"

	"github.com/corinfomax/corinfomax/ops"
)

// Component is one named part of a loss, already multiplied by its
// coefficient, so that the components of a Result add up to its Loss.
type Component struct {
	Name  string
	Value float64
}

// Result is the value of an objective for one step.
type Result struct {
	// Loss is the total objective.
	Loss float64
	// Components lists the parts of Loss in a fixed, method-specific order.
	Components []Component
}

// Method is a self-supervised objective on the projector outputs of two views.
type Method interface {
	// Name returns the method's name as listed by Names.
	Name() string
	// Loss computes the objective on the projector outputs of the two views
	// (each n x d, row-major) for optimizer step `step` (1-based; used in
	// error messages, and by W-MSE to derive its random splits) and
	// OVERWRITES g1, g2 with dL/dz1, dL/dz2. It rejects NaN/Inf input with
	// an error naming the method, the step and the view. Stateful methods
	// update their running state only when the call succeeds.
	Loss(step int, z1, z2 []float32, n, d int, g1, g2 []float32) (Result, error)
}

// StateTensor is one named float64 tensor of a method's running state.
type StateTensor struct {
	Name  string
	Shape []int
	Data  []float64
}

// GatherFunc concatenates the local z (n x d) of all workers into one
// (nAll x d) matrix and also returns a function that extracts this worker's
// rows of a gradient of the concatenated matrix: scatter(gAll, g) writes the
// local n x d block of gAll into g. A nil GatherFunc means a single worker
// (the identity). See the package documentation for how data-parallel
// training then equals one big batch.
type GatherFunc func(z []float32, n, d int) (all []float32, nAll int, scatter func(gAll []float32, g []float32), err error)

// finite reports whether v is neither NaN nor ±Inf (v - v is NaN exactly
// for those).
func finite(v float64) bool { return v-v == 0 }

// checkFinite32 returns an error naming the view and the first bad entry.
func checkFinite32(view int, z []float32, d int) error {
	for i, v := range z {
		if f := float64(v); !finite(f) {
			return fmt.Errorf("view %d (z%d) has non-finite value %v at row %d, column %d", view, view, v, i/d, i%d)
		}
	}
	return nil
}

// lossFunc64 is a method's float64 core: the loss of the (gathered) views
// z1, z2 (n x d) with gradients written into g1, g2 (zeroed by the caller).
type lossFunc64 func(z1, z2 []float64, n, d int, g1, g2 []float64) (Result, error)

// runLoss is the float32 front end shared by all methods: it validates the
// input, gathers across workers, runs the float64 core, checks its output
// and scatters the gradient back into g1, g2.
func runLoss(name string, step int, z1, z2 []float32, n, d int, g1, g2 []float32, gather GatherFunc, f lossFunc64) (Result, error) {
	if n <= 0 || d <= 0 {
		return Result{}, fmt.Errorf("%s: step %d: invalid shape n=%d, d=%d", name, step, n, d)
	}
	for i, s := range [][]float32{z1, z2, g1, g2} {
		if len(s) != n*d {
			what := [...]string{"z1", "z2", "g1", "g2"}[i]
			return Result{}, fmt.Errorf("%s: step %d: %s has %d values, want n*d = %d", name, step, what, len(s), n*d)
		}
	}
	if err := checkFinite32(1, z1, d); err != nil {
		return Result{}, fmt.Errorf("%s: step %d: %w", name, step, err)
	}
	if err := checkFinite32(2, z2, d); err != nil {
		return Result{}, fmt.Errorf("%s: step %d: %w", name, step, err)
	}
	a1, a2, nAll := z1, z2, n
	var scatter1, scatter2 func(gAll, g []float32)
	if gather != nil {
		var err error
		var n1, n2 int
		if a1, n1, scatter1, err = gather(z1, n, d); err != nil {
			return Result{}, fmt.Errorf("%s: step %d: gather view 1: %w", name, step, err)
		}
		if a2, n2, scatter2, err = gather(z2, n, d); err != nil {
			return Result{}, fmt.Errorf("%s: step %d: gather view 2: %w", name, step, err)
		}
		if n1 != n2 || len(a1) != n1*d || len(a2) != n2*d {
			return Result{}, fmt.Errorf("%s: step %d: gather returned inconsistent sizes (%d and %d rows, %d and %d values, d=%d)", name, step, n1, n2, len(a1), len(a2), d)
		}
		if err := checkFinite32(1, a1, d); err != nil {
			return Result{}, fmt.Errorf("%s: step %d: gathered %w", name, step, err)
		}
		if err := checkFinite32(2, a2, d); err != nil {
			return Result{}, fmt.Errorf("%s: step %d: gathered %w", name, step, err)
		}
		nAll = n1
	}
	gx1, gx2 := make([]float64, nAll*d), make([]float64, nAll*d)
	res, err := f(to64(a1), to64(a2), nAll, d, gx1, gx2)
	return finishLoss(name, step, "view", res, err, nAll, d, [2][]float64{gx1, gx2}, [2][]float32{g1, g2},
		[2]func(gAll, g []float32){scatter1, scatter2})
}

// finishLoss is the end of both float32 front ends (runLoss and
// runTargetLoss): it checks the float64 core's result and writes its
// gradients gx (nAll x d each) into g, copied, or, after a gather, as this
// worker's rows (scatter). what names the tensors in messages.
func finishLoss(name string, step int, what string, res Result, err error, nAll, d int, gx [2][]float64, g [2][]float32,
	scatter [2]func(gAll, g []float32)) (Result, error) {
	if err != nil {
		return Result{}, fmt.Errorf("%s: step %d: %w", name, step, err)
	}
	if !finite(res.Loss) {
		return Result{}, fmt.Errorf("%s: step %d: loss is %v", name, step, res.Loss)
	}
	if err := checkGrads(name, step, what, d, gx[0], gx[1]); err != nil {
		return Result{}, err
	}
	var ga []float32
	for v := range gx {
		if scatter[v] == nil {
			copy32(g[v], gx[v])
			continue
		}
		if ga == nil {
			ga = make([]float32, nAll*d)
		}
		copy32(ga, gx[v])
		scatter[v](ga, g[v])
	}
	return res, nil
}

// checkGrads returns an error naming the first gradient entry of gx1, gx2
// (of "what 1", "what 2") that is not finite in float32.
func checkGrads(name string, step int, what string, d int, gx1, gx2 []float64) error {
	for view, g := range [][]float64{gx1, gx2} {
		for i, v := range g {
			if !finite(float64(float32(v))) {
				return fmt.Errorf("%s: step %d: gradient of %s %d is %v at row %d, column %d", name, step, what, view+1, v, i/d, i%d)
			}
		}
	}
	return nil
}

func to64(z []float32) []float64 {
	x := make([]float64, len(z))
	for i, v := range z {
		x[i] = float64(v)
	}
	return x
}

func copy32(dst []float32, src []float64) {
	for i, v := range src {
		dst[i] = float32(v)
	}
}

// normalizeRows returns y with y_i = x_i / max(||x_i||, 1e-12) (PyTorch's
// F.normalize, computed by ops.L2NormalizeRows64) and the row norms.
func normalizeRows(x []float64, n, d int) (y, norms []float64) {
	y, norms = make([]float64, n*d), make([]float64, n)
	if err := ops.L2NormalizeRows64(x, n, d, y, norms); err != nil {
		panic(err) // unreachable: the lengths are n*d and n by construction
	}
	return y, norms
}

// normalizeRowsBackward overwrites gx with the gradient through
// normalizeRows (ops.L2NormalizeRowsBackward64); gx may alias gy.
func normalizeRowsBackward(y, norms, gy []float64, n, d int, gx []float64) {
	if err := ops.L2NormalizeRowsBackward64(y, norms, n, d, gy, gx); err != nil {
		panic(err) // unreachable: the lengths are n*d and n by construction
	}
}

// colMean returns the column means of the n x d matrix x.
func colMean(x []float64, n, d int) []float64 {
	m := make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range x[i*d : (i+1)*d] {
			m[j] += v
		}
	}
	for j := range m {
		m[j] /= float64(n)
	}
	return m
}

// errSmallBatch reports a batch too small for a method.
func errSmallBatch(n, min int) error {
	return fmt.Errorf("batch of %d rows is too small: need at least %d", n, min)
}

// Compile-time checks that the methods implement the interfaces.
var (
	_ Method            = (*CorInfoMax)(nil)
	_ Stateful          = (*CorInfoMax)(nil)
	_ CovarianceTracker = (*CorInfoMax)(nil)
	_ Method            = (*BarlowTwins)(nil)
	_ Method            = (*VICReg)(nil)
	_ Method            = (*SimCLR)(nil)
	_ Method            = (*WMSE)(nil)
	_ Targeted          = (*BYOL)(nil)
	_ Targeted          = (*SimSiam)(nil)
	_ Targeted          = (*MoCoV2)(nil)
	_ Stateful          = (*MoCoV2)(nil)
)
