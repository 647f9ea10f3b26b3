package ssl

import (
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// NameCorInfoMax is CorInfoMax's registered name.
const NameCorInfoMax = "corinfomax"

// CorInfoMaxConfig holds CorInfoMax's hyper-parameters: Alpha weights the
// MSE attraction term; LamR and LamMu are the weights of the OLD running
// covariance and mean (lam_R, lam_mu); Eps is added to the covariance
// diagonal before the log-determinant; InitScale sets the initial
// covariance R0 = InitScale*I; Normalize L2-normalises each row of z
// before the loss. Gather gathers z across data-parallel workers (nil: one
// worker).
type CorInfoMaxConfig struct {
	Alpha, LamR, LamMu, Eps, InitScale float64
	Normalize                          bool
	Gather                             GatherFunc
}

var corInfoMaxRegistration = Registration{
	Name:    NameCorInfoMax,
	Summary: "correlative information maximisation (Ozsoy et al., NeurIPS 2022)",
	Options: []Option{
		{Name: "alpha", Flag: "alpha", Default: 250, Legacy: "Alpha", Help: "weight of the MSE attraction term"},
		{Name: "lam_R", Flag: "lam-r", Default: 0.01, Legacy: "LamR", Help: "weight of the old covariance estimate, in [0,1)"},
		{Name: "lam_mu", Flag: "lam-mu", Default: 0.01, Legacy: "LamMu", Help: "weight of the old mean estimate, in [0,1)"},
		{Name: "eps", Flag: "eps", Default: 1e-8, Legacy: "Eps", Help: "added to the covariance diagonal before the log-determinant, > 0"},
		{Name: "init_scale", Flag: "init-scale", Default: 1, Legacy: "InitScale", Help: "initial covariance = init-scale * I"},
		{Name: "normalize", Flag: "normalize", Kind: Bool, Default: 1, Legacy: "Normalize", Help: "L2-normalise the projector outputs"},
	},
	New: func(o Options) (Method, error) {
		r := resolved{vals: o.Values}
		return NewCorInfoMax(CorInfoMaxConfig{Alpha: r.float("alpha"), LamR: r.float("lam_R"), LamMu: r.float("lam_mu"),
			Eps: r.float("eps"), InitScale: r.float("init_scale"), Normalize: r.bool("normalize"), Gather: o.Gather})
	},
}

// CorInfoMax is the correlative information maximisation objective of Ozsoy
// et al., "Self-Supervised Learning with an Information Maximization
// Criterion" (NeurIPS 2022), computed exactly as its reference
// implementation does (see docs/design.md section 1):
//
//	z_b      = rows of the projector output, L2-normalised (Normalize)
//	mu_b'    = lam_mu * mu_b + (1 - lam_mu) * colmean(z_b)      (keeps its gradient)
//	zc_b     = z_b - mu_b'
//	R_b'     = lam_R * R_b + (1 - lam_R) * zc_b^T zc_b / N
//	Lcov(z_b)= -logdet(R_b' + eps*I) / D                        (float64, Cholesky)
//	Lsim     = sum ||z1 - z2||^2 / (N*D)
//	L        = alpha * Lsim + Lcov(z1) + Lcov(z2)
//
// after which R_b <- R_b', mu_b <- mu_b' as values (no gradient through the
// history). Each view has its own running mean (initially 0) and covariance
// (initially InitScale*I), kept in float64. lam weights the OLD estimate.
//
// Gradient: with A = (R' + eps*I)^-1 and G = -(2 (1 - lam_R) / (N D)) zc A,
// dLcov/dz = G - (1 - lam_mu) colmean(G); dLsim/dz1 = 2 (z1 - z2)/(N D);
// then through the L2-normalisation Jacobian.
//
// Components: "sim" (alpha*Lsim), "cov1", "cov2". Defaults follow the
// paper's CIFAR-10 recipe: alpha 250, lam_R = lam_mu = 0.01, eps 1e-8.
//
// The state dimension D is fixed by the first successful Loss call (or by
// SetState); later calls must use the same D.
type CorInfoMax struct {
	opts CorInfoMaxConfig
	d    int          // 0 until the state is initialised
	r    [2][]float64 // running covariances, d x d, full (both triangles)
	mu   [2][]float64 // running means, d
}

// NewCorInfoMax validates opts and returns a CorInfoMax with fresh state.
func NewCorInfoMax(opts CorInfoMaxConfig) (*CorInfoMax, error) {
	switch {
	case !(opts.Alpha >= 0) || math.IsInf(opts.Alpha, 0):
		return nil, optErr(NameCorInfoMax, "alpha", opts.Alpha, "finite and >= 0")
	case !(opts.LamR >= 0 && opts.LamR < 1):
		return nil, optErr(NameCorInfoMax, "lam_R", opts.LamR, "in [0, 1)")
	case !(opts.LamMu >= 0 && opts.LamMu < 1):
		return nil, optErr(NameCorInfoMax, "lam_mu", opts.LamMu, "in [0, 1)")
	case !(opts.Eps > 0) || math.IsInf(opts.Eps, 0):
		return nil, optErr(NameCorInfoMax, "eps", opts.Eps, "finite and > 0")
	case !(opts.InitScale > 0) || math.IsInf(opts.InitScale, 0):
		return nil, optErr(NameCorInfoMax, "init_scale", opts.InitScale, "finite and > 0")
	}
	return &CorInfoMax{opts: opts}, nil
}

// Name returns "corinfomax".
func (c *CorInfoMax) Name() string { return NameCorInfoMax }

// cimState is the running state of one step: covariances and means per view.
type cimState struct {
	r, mu [2][]float64
}

// Loss implements Method.
func (c *CorInfoMax) Loss(step int, z1, z2 []float32, n, d int, g1, g2 []float32) (Result, error) {
	var next cimState
	res, err := runLoss(NameCorInfoMax, step, z1, z2, n, d, g1, g2, c.opts.Gather,
		func(x1, x2 []float64, n, d int, gx1, gx2 []float64) (Result, error) {
			res, st, err := c.eval(x1, x2, n, d, gx1, gx2)
			next = st
			return res, err
		})
	if err != nil {
		return Result{}, err
	}
	c.d = d
	c.r, c.mu = next.r, next.mu
	return res, nil
}

// current returns the running state, or the initial state for dimension d
// when none has been set yet.
func (c *CorInfoMax) current(d int) (cimState, error) {
	if c.d == 0 {
		var s cimState
		for b := 0; b < 2; b++ {
			s.r[b] = make([]float64, d*d)
			for i := 0; i < d; i++ {
				s.r[b][i*d+i] = c.opts.InitScale
			}
			s.mu[b] = make([]float64, d)
		}
		return s, nil
	}
	if d != c.d {
		return cimState{}, fmt.Errorf("feature dimension %d differs from the running state's %d", d, c.d)
	}
	return cimState{r: c.r, mu: c.mu}, nil
}

// eval is the float64 core: loss and gradients (written into g1, g2) of the
// raw projector outputs z1, z2, and the running state after this step. It
// does not modify c.
func (c *CorInfoMax) eval(z1, z2 []float64, n, d int, g1, g2 []float64) (Result, cimState, error) {
	old, err := c.current(d)
	if err != nil {
		return Result{}, cimState{}, err
	}
	y1, y2 := z1, z2
	var norms1, norms2 []float64
	if c.opts.Normalize {
		y1, norms1 = normalizeRows(z1, n, d)
		y2, norms2 = normalizeRows(z2, n, d)
	}

	// Attraction: alpha * mean squared error, gradient 2 alpha (y1-y2)/(N D).
	nd := float64(n * d)
	sim := 0.0
	for i := range y1 {
		e := y1[i] - y2[i]
		sim += e * e
		g1[i] = 2 * c.opts.Alpha * e / nd
		g2[i] = -g1[i]
	}
	sim *= c.opts.Alpha / nd

	var next cimState
	var cov [2]float64
	// The two views are independent: run them concurrently.
	var errs [2]error
	var wg sync.WaitGroup
	for b, y := range [][]float64{y1, y2} {
		g := [][]float64{g1, g2}[b]
		wg.Go(func() {
			cov[b], next.r[b], next.mu[b], errs[b] = c.covTerm(y, n, d, old.r[b], old.mu[b], g)
		})
	}
	wg.Wait()
	for b, err := range errs {
		if err != nil {
			return Result{}, cimState{}, fmt.Errorf("view %d: %w", b+1, err)
		}
	}

	if c.opts.Normalize {
		normalizeRowsBackward(y1, norms1, g1, n, d, g1)
		normalizeRowsBackward(y2, norms2, g2, n, d, g2)
	}
	return Result{
		Loss: sim + cov[0] + cov[1],
		Components: []Component{
			{Name: "sim", Value: sim},
			{Name: "cov1", Value: cov[0]},
			{Name: "cov2", Value: cov[1]},
		},
	}, next, nil
}

// covTerm computes Lcov of one view y (n x d) from the old running state
// (r, mu), ADDS dLcov/dy into g, and returns the new state R', mu'.
func (c *CorInfoMax) covTerm(y []float64, n, d int, r, mu []float64, g []float64) (lcov float64, rNew, muNew []float64, err error) {
	lamR, lamMu := c.opts.LamR, c.opts.LamMu

	// mu' = lam_mu mu + (1 - lam_mu) colmean(y); zc = y - mu'.
	m := colMean(y, n, d)
	muNew = make([]float64, d)
	for j := range muNew {
		muNew[j] = lamMu*mu[j] + (1-lamMu)*m[j]
	}
	zc := make([]float64, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			zc[i*d+j] = y[i*d+j] - muNew[j]
		}
	}
	zcG := blas64.General{Rows: n, Cols: d, Stride: d, Data: zc}

	// R' = lam_R R + (1 - lam_R) zc^T zc / N, upper triangle, mirrored so
	// that R' is exactly symmetric.
	rNew = make([]float64, d*d)
	copy(rNew, r)
	gramUpper((1-lamR)/float64(n), zc, n, d, lamR, rNew)
	mirrorUpper(rNew, d)

	// Cholesky of M = R' + eps I (upper: M = U^T U); logdet = 2 sum log U_ii.
	mData := make([]float64, d*d)
	copy(mData, rNew)
	for i := 0; i < d; i++ {
		mData[i*d+i] += c.opts.Eps
	}
	t, ok := lapack64.Potrf(blas64.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: mData})
	if !ok {
		return 0, nil, nil, fmt.Errorf("covariance R' + eps*I is not positive definite (Cholesky failed); increase eps (now %g)", c.opts.Eps)
	}
	logdet := 0.0
	for i := 0; i < d; i++ {
		logdet += math.Log(t.Data[i*d+i])
	}
	logdet *= 2
	lcov = -logdet / float64(d)

	// A = M^-1 (upper triangle), G = -(2 (1 - lam_R)/(N D)) zc A.
	a, ok := lapack64.Potri(t)
	if !ok {
		return 0, nil, nil, fmt.Errorf("covariance R' + eps*I is singular; increase eps (now %g)", c.opts.Eps)
	}
	mirrorUpper(a.Data, d)
	gc := make([]float64, n*d)
	coef := -2 * (1 - lamR) / (float64(n) * float64(d))
	blas64.Gemm(blas.NoTrans, blas.NoTrans, coef, zcG, gen(a.Data, d, d), 0, gen(gc, n, d))

	// dLcov/dy = G - (1 - lam_mu) colmean(G).
	gm := colMean(gc, n, d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			g[i*d+j] += gc[i*d+j] - (1-lamMu)*gm[j]
		}
	}
	return lcov, rNew, muNew, nil
}

// RunningCovariance returns a copy of the running covariance R of view 1
// or 2 (d x d, row-major) and d; nil and 0 before the first step or for
// another view. It implements CovarianceTracker.
func (c *CorInfoMax) RunningCovariance(view int) ([]float64, int) {
	if c.d == 0 || view < 1 || view > 2 {
		return nil, 0
	}
	return append([]float64(nil), c.r[view-1]...), c.d
}

// State returns copies of the running state: "R1", "R2" (d x d) and "mu1",
// "mu2" (d). It returns nil before the first successful step or SetState.
func (c *CorInfoMax) State() []StateTensor {
	if c.d == 0 {
		return nil
	}
	d := c.d
	return []StateTensor{
		{Name: "R1", Shape: []int{d, d}, Data: append([]float64(nil), c.r[0]...)},
		{Name: "R2", Shape: []int{d, d}, Data: append([]float64(nil), c.r[1]...)},
		{Name: "mu1", Shape: []int{d}, Data: append([]float64(nil), c.mu[0]...)},
		{Name: "mu2", Shape: []int{d}, Data: append([]float64(nil), c.mu[1]...)},
	}
}

// SetState replaces the running state by copies of the given tensors. It
// needs exactly "R1", "R2" (d x d, symmetric) and "mu1", "mu2" (d), all
// finite, with one d; the state is unchanged on error.
func (c *CorInfoMax) SetState(ts []StateTensor) error {
	byName := map[string]StateTensor{}
	for _, t := range ts {
		switch t.Name {
		case "R1", "R2", "mu1", "mu2":
		default:
			return fmt.Errorf("corinfomax: SetState: unknown state tensor %q (want R1, R2, mu1, mu2)", t.Name)
		}
		if _, dup := byName[t.Name]; dup {
			return fmt.Errorf("corinfomax: SetState: duplicate state tensor %q", t.Name)
		}
		byName[t.Name] = t
	}
	for _, name := range []string{"R1", "R2", "mu1", "mu2"} {
		if _, ok := byName[name]; !ok {
			return fmt.Errorf("corinfomax: SetState: missing state tensor %q", name)
		}
	}
	mu1 := byName["mu1"]
	if len(mu1.Shape) != 1 || mu1.Shape[0] <= 0 {
		return fmt.Errorf("corinfomax: SetState: mu1 has shape %v, want [d]", mu1.Shape)
	}
	d := mu1.Shape[0]
	if c.d != 0 && d != c.d {
		return fmt.Errorf("corinfomax: SetState: state has d=%d, but this CorInfoMax already runs with d=%d", d, c.d)
	}
	var next cimState
	for b := 0; b < 2; b++ {
		rt, mt := byName[fmt.Sprintf("R%d", b+1)], byName[fmt.Sprintf("mu%d", b+1)]
		if len(rt.Shape) != 2 || rt.Shape[0] != d || rt.Shape[1] != d || len(rt.Data) != d*d {
			return fmt.Errorf("corinfomax: SetState: %s has shape %v and %d values, want [%d %d]", rt.Name, rt.Shape, len(rt.Data), d, d)
		}
		if len(mt.Shape) != 1 || mt.Shape[0] != d || len(mt.Data) != d {
			return fmt.Errorf("corinfomax: SetState: %s has shape %v and %d values, want [%d]", mt.Name, mt.Shape, len(mt.Data), d)
		}
		for i, v := range rt.Data {
			if !finite(v) {
				return fmt.Errorf("corinfomax: SetState: %s[%d] = %v", rt.Name, i, v)
			}
			if r, col := i/d, i%d; col > r && v != rt.Data[col*d+r] {
				return fmt.Errorf("corinfomax: SetState: %s is not symmetric at (%d, %d)", rt.Name, r, col)
			}
		}
		for i, v := range mt.Data {
			if !finite(v) {
				return fmt.Errorf("corinfomax: SetState: %s[%d] = %v", mt.Name, i, v)
			}
		}
		next.r[b] = append([]float64(nil), rt.Data...)
		next.mu[b] = append([]float64(nil), mt.Data...)
	}
	c.d = d
	c.r, c.mu = next.r, next.mu
	return nil
}

// mirrorUpper copies the upper triangle of the d x d matrix x into its lower
// triangle.
func mirrorUpper(x []float64, d int) {
	for i := 0; i < d; i++ {
		for j := i + 1; j < d; j++ {
			x[j*d+i] = x[i*d+j]
		}
	}
}

// gramUpper sets the upper triangle (at least) of the d x d matrix c to
// alpha x^T x + beta c, x being n x d. It splits the columns in two halves
// and skips the lower-left block: 3/4 of the work of one Gemm, done by
// gonum's blocked, parallel Gemm (its Syrk is unblocked and much slower).
func gramUpper(alpha float64, x []float64, n, d int, beta float64, c []float64) {
	h := d / 2
	if h < 16 {
		blas64.Gemm(blas.Trans, blas.NoTrans, alpha, gen(x, n, d), gen(x, n, d), beta, gen(c, d, d))
		return
	}
	// sub returns columns [j0, j1) of the row-major matrix with the given
	// stride starting at row 0.
	sub := func(m []float64, rows, stride, i0, j0, j1 int) blas64.General {
		return blas64.General{Rows: rows, Cols: j1 - j0, Stride: stride, Data: m[i0*stride+j0:]}
	}
	for _, blk := range [][2][2]int{{{0, h}, {0, h}}, {{0, h}, {h, d}}, {{h, d}, {h, d}}} {
		ri, cj := blk[0], blk[1]
		blas64.Gemm(blas.Trans, blas.NoTrans, alpha,
			sub(x, n, d, 0, ri[0], ri[1]), sub(x, n, d, 0, cj[0], cj[1]),
			beta, sub(c, ri[1]-ri[0], d, ri[0], cj[0], cj[1]))
	}
}
