package ssl

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// NameWMSE is W-MSE's registered name.
const NameWMSE = "wmse"

// WMSEConfig holds W-MSE's hyper-parameters: WSize is the whitening
// sub-batch size (N must be a multiple of it), WIter the number of random
// splits per step, WEps the shrinkage of the sub-batch covariance towards I
// before Cholesky. Seed seeds the splits; Gather gathers z across
// data-parallel workers (nil: one worker).
type WMSEConfig struct {
	WSize, WIter int
	WEps         float64
	Seed         int64
	Gather       GatherFunc
}

var wmseRegistration = Registration{
	Name:    NameWMSE,
	Summary: "whitening MSE (Ermolov et al., ICML 2021)",
	Options: []Option{
		{Name: "w_size", Flag: "w-size", Kind: Int, Default: 128, Legacy: "WSize", Help: "whitening sub-batch size (the batch must be a multiple of it)"},
		{Name: "w_iter", Flag: "w-iter", Kind: Int, Default: 1, Legacy: "WIter", Help: "random splits (whitening iterations) per step"},
		{Name: "w_eps", Flag: "w-eps", Default: 0, Legacy: "WEps", Help: "shrinkage of the sub-batch covariance towards I, in [0,1) (needed when w-size <= the embedding dimension)"},
	},
	New: func(o Options) (Method, error) {
		r := resolved{vals: o.Values}
		return NewWMSE(WMSEConfig{WSize: r.int("w_size"), WIter: r.int("w_iter"), WEps: r.float("w_eps"),
			Seed: o.Seed, Gather: o.Gather})
	},
}

// WMSE is the whitening-MSE objective of Ermolov et al., "Whitening for
// Self-Supervised Representation Learning" (ICML 2021), as the W-MSE code
// (and solo-learn) computes it. For each of w_iter random splits of the N
// images into sub-batches of w_size, every sub-batch of each view is
// whitened on its own with the Cholesky factor of its covariance:
//
//	xn = X - colmean(X),  C = xn^T xn / (w_size - 1)
//	L L^T = (1 - w_eps) C + w_eps I,  Y = xn L^-T
//
// and the loss is the MSE of the L2-normalised whitened views,
//
//	L = (1/w_iter) sum_iter [ 2 - (2/N) sum_i <y1_i/|y1_i|, y2_i/|y2_i|> ].
//
// Both views get a gradient, as in the W-MSE code and paper (solo-learn's
// wmse_loss_func detaches the second view; this does not). Component:
// "wmse". Defaults: w_size 128, w_iter 1, w_eps 0 (the W-MSE code's
// defaults). N must be a multiple of w_size, and w_size must exceed D unless
// w_eps > 0. The splits are drawn from a PCG generator seeded with
// (Seed, step), so they are deterministic and need no saved state.
type WMSE struct {
	opts WMSEConfig
	// perm returns the split permutation of iteration iter at step; tests
	// replace it to reproduce a reference run's splits.
	perm func(step, iter, n int) []int
}

// NewWMSE validates opts and returns a WMSE.
func NewWMSE(opts WMSEConfig) (*WMSE, error) {
	switch {
	case opts.WSize < 2:
		return nil, optErr(NameWMSE, "w_size", opts.WSize, ">= 2")
	case opts.WIter < 1:
		return nil, optErr(NameWMSE, "w_iter", opts.WIter, ">= 1")
	case !(opts.WEps >= 0 && opts.WEps < 1):
		return nil, optErr(NameWMSE, "w_eps", opts.WEps, "in [0, 1)")
	}
	w := &WMSE{opts: opts}
	w.perm = w.randomPerm
	return w, nil
}

// randomPerm draws the permutation of iteration iter at step from a
// generator seeded with (Seed, step).
func (w *WMSE) randomPerm(step, iter, n int) []int {
	r := rand.New(rand.NewPCG(uint64(w.opts.Seed), uint64(step)))
	p := r.Perm(n)
	for i := 0; i < iter; i++ {
		p = r.Perm(n)
	}
	return p
}

// Name returns "wmse".
func (w *WMSE) Name() string { return NameWMSE }

// Loss implements Method.
func (w *WMSE) Loss(step int, z1, z2 []float32, n, d int, g1, g2 []float32) (Result, error) {
	return runLoss(NameWMSE, step, z1, z2, n, d, g1, g2, w.opts.Gather,
		func(x1, x2 []float64, n, d int, gx1, gx2 []float64) (Result, error) {
			return w.eval(step, x1, x2, n, d, gx1, gx2)
		})
}

// whitened is one whitened sub-batch, kept for the backward pass.
type whitened struct {
	xn, y []float64         // centred input and output, ws x d
	l     blas64.Triangular // lower Cholesky factor
}

// eval is the float64 core of Loss.
func (w *WMSE) eval(step int, z1, z2 []float64, n, d int, g1, g2 []float64) (Result, error) {
	ws := w.opts.WSize
	if n%ws != 0 {
		return Result{}, fmt.Errorf("batch of %d rows (all workers) is not a multiple of w_size %d", n, ws)
	}
	total := 0.0
	scale := 1 / float64(w.opts.WIter)
	z := [2][]float64{z1, z2}
	g := [2][]float64{g1, g2}
	for it := 0; it < w.opts.WIter; it++ {
		perm := w.perm(step, it, n)
		var y [2][]float64
		subs := make([][2]whitened, n/ws)
		for b := 0; b < 2; b++ {
			y[b] = make([]float64, n*d)
			for k := range subs {
				idx := perm[k*ws : (k+1)*ws]
				x := make([]float64, ws*d)
				for r, i := range idx {
					copy(x[r*d:(r+1)*d], z[b][i*d:(i+1)*d])
				}
				wh, err := w.whiten(x, ws, d)
				if err != nil {
					return Result{}, fmt.Errorf("view %d, iteration %d, sub-batch %d: %w", b+1, it+1, k+1, err)
				}
				subs[k][b] = wh
				for r, i := range idx {
					copy(y[b][i*d:(i+1)*d], wh.y[r*d:(r+1)*d])
				}
			}
		}

		// 2 - 2 mean cosine, and its gradient w.r.t. the whitened rows.
		u1, n1 := normalizeRows(y[0], n, d)
		u2, n2 := normalizeRows(y[1], n, d)
		dot := 0.0
		gu1 := make([]float64, n*d)
		gu2 := make([]float64, n*d)
		c := -2 / float64(n) * scale
		for i := range u1 {
			dot += u1[i] * u2[i]
			gu1[i] = c * u2[i]
			gu2[i] = c * u1[i]
		}
		total += 2 - 2*dot/float64(n)
		normalizeRowsBackward(u1, n1, gu1, n, d, gu1)
		normalizeRowsBackward(u2, n2, gu2, n, d, gu2)

		for b, gu := range [][]float64{gu1, gu2} {
			for k := range subs {
				idx := perm[k*ws : (k+1)*ws]
				gy := make([]float64, ws*d)
				for r, i := range idx {
					copy(gy[r*d:(r+1)*d], gu[i*d:(i+1)*d])
				}
				gx := w.whitenBackward(subs[k][b], gy, ws, d)
				for r, i := range idx {
					row := g[b][i*d : (i+1)*d]
					for j := range row {
						row[j] += gx[r*d+j]
					}
				}
			}
		}
	}
	total *= scale
	return Result{Loss: total, Components: []Component{{Name: "wmse", Value: total}}}, nil
}

// whiten whitens the ws x d sub-batch x: Y = xn L^-T with L L^T the shrunk
// covariance of x.
func (w *WMSE) whiten(x []float64, ws, d int) (whitened, error) {
	m := colMean(x, ws, d)
	xn := make([]float64, ws*d)
	for i := 0; i < ws; i++ {
		for j := 0; j < d; j++ {
			xn[i*d+j] = x[i*d+j] - m[j]
		}
	}
	c := make([]float64, d*d)
	eps := w.opts.WEps
	blas64.Gemm(blas.Trans, blas.NoTrans, (1-eps)/float64(ws-1), gen(xn, ws, d), gen(xn, ws, d), 0, gen(c, d, d))
	for i := 0; i < d; i++ {
		c[i*d+i] += eps
	}
	l, ok := lapack64.Potrf(blas64.Symmetric{Uplo: blas.Lower, N: d, Stride: d, Data: c})
	if !ok {
		return whitened{}, fmt.Errorf("sub-batch covariance is not positive definite (Cholesky failed): use w_size > D or w_eps > 0 (now w_size %d, D %d, w_eps %g)", ws, d, eps)
	}
	y := append([]float64(nil), xn...)
	blas64.Trsm(blas.Right, blas.Trans, 1, l, gen(y, ws, d)) // Y L^T = xn
	return whitened{xn: xn, y: y, l: l}, nil
}

// whitenBackward returns dL/dx of a sub-batch given dL/dY (gy, consumed).
//
// With K = -dY^T Y, the gradient reaching L is -L^-T dY^T Y, so L^T gL = K;
// Cholesky's backward (Murray 2016) gives the shrunk covariance the gradient
// gCs = L^-T P L^-1, where P is the symmetric matrix with P_ij = K_ij/2 for
// i >= j taken from the lower triangle of K. Then gC = (1 - eps) gCs and
// dxn = dY L^-1 + 2 xn gC / (ws - 1); dx = dxn - colmean(dxn).
func (w *WMSE) whitenBackward(s whitened, gy []float64, ws, d int) []float64 {
	k := make([]float64, d*d)
	blas64.Gemm(blas.Trans, blas.NoTrans, -1, gen(gy, ws, d), gen(s.y, ws, d), 0, gen(k, d, d))
	p := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j <= i; j++ {
			p[i*d+j] = k[i*d+j] / 2
			p[j*d+i] = k[i*d+j] / 2
		}
	}
	blas64.Trsm(blas.Left, blas.Trans, 1, s.l, gen(p, d, d))    // L^T X = P
	blas64.Trsm(blas.Right, blas.NoTrans, 1, s.l, gen(p, d, d)) // Z L = X
	dxn := gy
	blas64.Trsm(blas.Right, blas.NoTrans, 1, s.l, gen(dxn, ws, d)) // dY L^-1
	coef := 2 * (1 - w.opts.WEps) / float64(ws-1)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, coef, gen(s.xn, ws, d), gen(p, d, d), 1, gen(dxn, ws, d))
	m := colMean(dxn, ws, d)
	for i := 0; i < ws; i++ {
		for j := 0; j < d; j++ {
			dxn[i*d+j] -= m[j]
		}
	}
	return dxn
}
