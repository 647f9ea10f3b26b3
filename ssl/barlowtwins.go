package ssl

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// barlowBNEps is the epsilon of the affine-free BatchNorm1d that the
// reference code uses to standardise z (PyTorch's default, 1e-5).
const barlowBNEps = 1e-5

// NameBarlowTwins is Barlow Twins' registered name.
const NameBarlowTwins = "barlowtwins"

// BarlowTwinsConfig holds Barlow Twins' hyper-parameters: Lambda weights
// the off-diagonal terms, ScaleLoss multiplies the whole loss. Gather
// gathers z across data-parallel workers (nil: one worker).
type BarlowTwinsConfig struct {
	Lambda, ScaleLoss float64
	Gather            GatherFunc
}

var barlowTwinsRegistration = Registration{
	Name:    NameBarlowTwins,
	Summary: "redundancy reduction (Zbontar et al., ICML 2021)",
	Options: []Option{
		{Name: "lambda", Flag: "lambda", Default: 0.0051, Legacy: "Lambda", Help: "weight of the off-diagonal terms"},
		{Name: "scale_loss", Flag: "scale-loss", Default: 1, Legacy: "ScaleLoss", Help: "multiplies the whole loss"},
	},
	New: func(o Options) (Method, error) {
		r := resolved{vals: o.Values}
		return NewBarlowTwins(BarlowTwinsConfig{Lambda: r.float("lambda"), ScaleLoss: r.float("scale_loss"), Gather: o.Gather})
	},
}

// BarlowTwins is the redundancy-reduction objective of Zbontar et al.,
// "Barlow Twins" (ICML 2021), as solo-learn's barlow_loss_func computes it:
//
//	zn_b = (z_b - mean_b) / sqrt(var_b + 1e-5)      (per column over the batch;
//	                                                 biased variance, as BatchNorm1d)
//	c    = zn_1^T zn_2 / N                          (D x D cross-correlation)
//	L    = scale_loss * ( sum_i (1 - c_ii)^2 + lambda * sum_{i!=j} c_ij^2 )
//
// Components: "on_diag" and "off_diag" (both times scale_loss, the latter
// also times lambda). Defaults: lambda 0.0051 (paper and solo-learn) and
// scale_loss 1 (no scaling); solo-learn's CIFAR and ImageNet-100 configs use
// scale_loss 0.1, the function's own default is 0.025.
type BarlowTwins struct {
	opts BarlowTwinsConfig
}

// NewBarlowTwins validates opts and returns a BarlowTwins.
func NewBarlowTwins(opts BarlowTwinsConfig) (*BarlowTwins, error) {
	switch {
	case !(opts.Lambda >= 0) || math.IsInf(opts.Lambda, 0):
		return nil, optErr(NameBarlowTwins, "lambda", opts.Lambda, "finite and >= 0")
	case !(opts.ScaleLoss > 0) || math.IsInf(opts.ScaleLoss, 0):
		return nil, optErr(NameBarlowTwins, "scale_loss", opts.ScaleLoss, "finite and > 0")
	}
	return &BarlowTwins{opts: opts}, nil
}

// Name returns "barlowtwins".
func (b *BarlowTwins) Name() string { return NameBarlowTwins }

// Loss implements Method.
func (b *BarlowTwins) Loss(step int, z1, z2 []float32, n, d int, g1, g2 []float32) (Result, error) {
	return runLoss(NameBarlowTwins, step, z1, z2, n, d, g1, g2, b.opts.Gather, b.eval)
}

// eval is the float64 core of Loss.
func (b *BarlowTwins) eval(z1, z2 []float64, n, d int, g1, g2 []float64) (Result, error) {
	x1, s1 := standardize(z1, n, d)
	x2, s2 := standardize(z2, n, d)
	fn := float64(n)

	// c = x1^T x2 / N.
	c := make([]float64, d*d)
	blas64.Gemm(blas.Trans, blas.NoTrans, 1/fn, gen(x1, n, d), gen(x2, n, d), 0, gen(c, d, d))

	// Loss and W = dL/dc.
	on, off := 0.0, 0.0
	w := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			v := c[i*d+j]
			if i == j {
				on += (1 - v) * (1 - v)
				w[i*d+j] = -2 * (1 - v) * b.opts.ScaleLoss
			} else {
				off += v * v
				w[i*d+j] = 2 * b.opts.Lambda * v * b.opts.ScaleLoss
			}
		}
	}
	on *= b.opts.ScaleLoss
	off *= b.opts.Lambda * b.opts.ScaleLoss

	// dL/dx1 = x2 W^T / N, dL/dx2 = x1 W / N.
	gx1 := make([]float64, n*d)
	gx2 := make([]float64, n*d)
	blas64.Gemm(blas.NoTrans, blas.Trans, 1/fn, gen(x2, n, d), gen(w, d, d), 0, gen(gx1, n, d))
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1/fn, gen(x1, n, d), gen(w, d, d), 0, gen(gx2, n, d))
	standardizeBackward(x1, s1, gx1, n, d, g1)
	standardizeBackward(x2, s2, gx2, n, d, g2)
	return Result{
		Loss:       on + off,
		Components: []Component{{Name: "on_diag", Value: on}, {Name: "off_diag", Value: off}},
	}, nil
}

// gen wraps a row-major r x c slice as a blas64.General.
func gen(x []float64, r, c int) blas64.General {
	return blas64.General{Rows: r, Cols: c, Stride: c, Data: x}
}

// standardize returns x = (z - mean)/s per column, s = sqrt(biased var + 1e-5),
// and the per-column s.
func standardize(z []float64, n, d int) (x, s []float64) {
	m := colMean(z, n, d)
	s = make([]float64, d)
	x = make([]float64, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			e := z[i*d+j] - m[j]
			x[i*d+j] = e
			s[j] += e * e
		}
	}
	for j := range s {
		s[j] = math.Sqrt(s[j]/float64(n) + barlowBNEps)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			x[i*d+j] /= s[j]
		}
	}
	return x, s
}

// standardizeBackward writes into gz the gradient through standardize
// (batch-norm backward): gz = (gx - mean(gx) - x mean(gx x)) / s.
func standardizeBackward(x, s, gx []float64, n, d int, gz []float64) {
	mg := colMean(gx, n, d)
	mgx := make([]float64, d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			mgx[j] += gx[i*d+j] * x[i*d+j]
		}
	}
	for j := range mgx {
		mgx[j] /= float64(n)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			gz[i*d+j] = (gx[i*d+j] - mg[j] - x[i*d+j]*mgx[j]) / s[j]
		}
	}
}
