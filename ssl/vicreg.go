package ssl

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// NameVICReg is VICReg's registered name.
const NameVICReg = "vicreg"

// VICRegConfig holds VICReg's hyper-parameters: SimCoeff, StdCoeff and
// CovCoeff weight the invariance, variance and covariance terms; Gamma is
// the target standard deviation of the variance hinge; VarEps is added to
// the variance before the square root. Gather gathers z across
// data-parallel workers (nil: one worker).
type VICRegConfig struct {
	SimCoeff, StdCoeff, CovCoeff, Gamma, VarEps float64
	Gather                                      GatherFunc
}

var vicRegRegistration = Registration{
	Name:    NameVICReg,
	Summary: "variance-invariance-covariance regularisation (Bardes et al., ICLR 2022)",
	Options: []Option{
		{Name: "sim_coeff", Flag: "sim-coeff", Default: 25, Legacy: "SimCoeff", Help: "weight of the invariance (MSE) term"},
		{Name: "std_coeff", Flag: "std-coeff", Default: 25, Legacy: "StdCoeff", Help: "weight of the variance hinge"},
		{Name: "cov_coeff", Flag: "cov-coeff", Default: 1, Legacy: "CovCoeff", Help: "weight of the covariance term"},
		{Name: "gamma", Flag: "gamma", Default: 1, Legacy: "Gamma", Help: "target standard deviation of the variance hinge, > 0"},
		{Name: "var_eps", Flag: "var-eps", Default: 1e-4, Legacy: "VarEps", Help: "added to the variance before the square root, > 0"},
	},
	New: func(o Options) (Method, error) {
		r := resolved{vals: o.Values}
		return NewVICReg(VICRegConfig{SimCoeff: r.float("sim_coeff"), StdCoeff: r.float("std_coeff"),
			CovCoeff: r.float("cov_coeff"), Gamma: r.float("gamma"), VarEps: r.float("var_eps"), Gather: o.Gather})
	},
}

// VICReg is the variance-invariance-covariance objective of Bardes et al.,
// "VICReg" (ICLR 2022), with the paper's and solo-learn's formula:
//
//	inv  = sum ||z1 - z2||^2 / (N D)                               (MSE)
//	v(Z) = (1/D) sum_j max(0, gamma - sqrt(Var(z^j) + var_eps))    (unbiased variance)
//	c(Z) = (1/D) sum_{i!=j} C(Z)_ij^2,  C(Z) = zc^T zc / (N - 1)
//	L    = sim_coeff * inv + std_coeff * (v(Z1) + v(Z2)) + cov_coeff * (c(Z1) + c(Z2))
//
// (The official VICReg code halves the two variance terms; solo-learn and
// the paper do not, and neither does this.) Components: "sim", "var", "cov",
// each times its coefficient. Defaults: 25, 25, 1, gamma 1, var_eps 1e-4.
// N must be at least 2.
type VICReg struct {
	opts VICRegConfig
}

// NewVICReg validates opts and returns a VICReg.
func NewVICReg(opts VICRegConfig) (*VICReg, error) {
	nonneg := func(name string, v float64) error {
		if !(v >= 0) || math.IsInf(v, 0) {
			return optErr(NameVICReg, name, v, "finite and >= 0")
		}
		return nil
	}
	if err := nonneg("sim_coeff", opts.SimCoeff); err != nil {
		return nil, err
	}
	if err := nonneg("std_coeff", opts.StdCoeff); err != nil {
		return nil, err
	}
	if err := nonneg("cov_coeff", opts.CovCoeff); err != nil {
		return nil, err
	}
	if !(opts.Gamma > 0) || math.IsInf(opts.Gamma, 0) {
		return nil, optErr(NameVICReg, "gamma", opts.Gamma, "finite and > 0")
	}
	if !(opts.VarEps > 0) || math.IsInf(opts.VarEps, 0) {
		return nil, optErr(NameVICReg, "var_eps", opts.VarEps, "finite and > 0")
	}
	return &VICReg{opts: opts}, nil
}

// Name returns "vicreg".
func (v *VICReg) Name() string { return NameVICReg }

// Loss implements Method.
func (v *VICReg) Loss(step int, z1, z2 []float32, n, d int, g1, g2 []float32) (Result, error) {
	return runLoss(NameVICReg, step, z1, z2, n, d, g1, g2, v.opts.Gather, v.eval)
}

// eval is the float64 core of Loss.
func (v *VICReg) eval(z1, z2 []float64, n, d int, g1, g2 []float64) (Result, error) {
	if n < 2 {
		return Result{}, errSmallBatch(n, 2)
	}
	nd := float64(n * d)
	inv := 0.0
	for i := range z1 {
		e := z1[i] - z2[i]
		inv += e * e
		g1[i] = v.opts.SimCoeff * 2 * e / nd
		g2[i] = -g1[i]
	}
	inv *= v.opts.SimCoeff / nd
	vr, cv := 0.0, 0.0
	for b, z := range [][]float64{z1, z2} {
		g := [][]float64{g1, g2}[b]
		a, c := v.varCov(z, n, d, g)
		vr += a
		cv += c
	}
	return Result{
		Loss:       inv + vr + cv,
		Components: []Component{{Name: "sim", Value: inv}, {Name: "var", Value: vr}, {Name: "cov", Value: cv}},
	}, nil
}

// varCov returns std_coeff*v(Z) and cov_coeff*c(Z) of one view and ADDS
// their gradient into g.
func (v *VICReg) varCov(z []float64, n, d int, g []float64) (vl, cl float64) {
	m := colMean(z, n, d)
	zc := make([]float64, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			zc[i*d+j] = z[i*d+j] - m[j]
		}
	}
	fd, n1 := float64(d), float64(n-1)

	// C = zc^T zc / (N-1); its diagonal is the unbiased variance.
	cm := make([]float64, d*d)
	blas64.Gemm(blas.Trans, blas.NoTrans, 1/n1, gen(zc, n, d), gen(zc, n, d), 0, gen(cm, d, d))

	// Variance hinge: d/dz_ij = -std_coeff/D * 1[gamma > std_j] * zc_ij / ((N-1) std_j).
	hv := make([]float64, d) // per-column factor multiplying zc
	for j := 0; j < d; j++ {
		std := math.Sqrt(cm[j*d+j] + v.opts.VarEps)
		if h := v.opts.Gamma - std; h > 0 {
			vl += h
			hv[j] = -v.opts.StdCoeff / fd / (n1 * std)
		}
	}
	vl *= v.opts.StdCoeff / fd

	// Covariance: H = 2 cov_coeff/D * offdiag(C); dL/dz = 2 zc H / (N-1)
	// (the centring term vanishes because colmean(zc) = 0).
	h := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			if i != j {
				x := cm[i*d+j]
				cl += x * x
				h[i*d+j] = 2 * v.opts.CovCoeff / fd * x
			}
		}
	}
	cl *= v.opts.CovCoeff / fd
	gc := make([]float64, n*d)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 2/n1, gen(zc, n, d), gen(h, d, d), 0, gen(gc, n, d))
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			g[i*d+j] += gc[i*d+j] + hv[j]*zc[i*d+j]
		}
	}
	return vl, cl
}
