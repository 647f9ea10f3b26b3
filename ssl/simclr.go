package ssl

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// NameSimCLR is SimCLR's registered name.
const NameSimCLR = "simclr"

// SimCLRConfig holds SimCLR's hyper-parameter: the Temperature of the
// NT-Xent softmax. Gather gathers z across data-parallel workers (nil: one
// worker).
type SimCLRConfig struct {
	Temperature float64
	Gather      GatherFunc
}

var simCLRRegistration = Registration{
	Name:    NameSimCLR,
	Summary: "NT-Xent contrastive learning (Chen et al., ICML 2020)",
	Options: []Option{
		{Name: "temperature", Flag: "temperature", Default: 0.2, Legacy: "Temperature", Help: "temperature of the NT-Xent softmax, > 0"},
	},
	New: func(o Options) (Method, error) {
		r := resolved{vals: o.Values}
		return NewSimCLR(SimCLRConfig{Temperature: r.float("temperature"), Gather: o.Gather})
	},
}

// SimCLR is the NT-Xent contrastive objective of Chen et al., "A Simple
// Framework for Contrastive Learning of Visual Representations" (ICML 2020),
// as solo-learn's simclr_loss_func computes it: with z the 2N rows of both
// views, each L2-normalised, s_ij = z_i·z_j / T and p(i) the other view of
// the same image,
//
//	L = (1/2N) sum_i [ -s_{i,p(i)} + log sum_{j != i} exp(s_ij) ]
//
// Component: "nce". Default temperature 0.2 (solo-learn's CIFAR config).
type SimCLR struct {
	opts  SimCLRConfig
	exact bool // float64 products (tests); see eval
}

// NewSimCLR validates opts and returns a SimCLR.
func NewSimCLR(opts SimCLRConfig) (*SimCLR, error) {
	if !(opts.Temperature > 0) || math.IsInf(opts.Temperature, 0) {
		return nil, optErr(NameSimCLR, "temperature", opts.Temperature, "finite and > 0")
	}
	return &SimCLR{opts: opts}, nil
}

// Name returns "simclr".
func (s *SimCLR) Name() string { return NameSimCLR }

// Loss implements Method.
func (s *SimCLR) Loss(step int, z1, z2 []float32, n, d int, g1, g2 []float32) (Result, error) {
	return runLoss(NameSimCLR, step, z1, z2, n, d, g1, g2, s.opts.Gather, s.eval)
}

// eval is the core of Loss. The two O(N^2 D) products (the similarities
// S = y y^T / T and the gradient (dS + dS^T) y / T) run in float32 through
// blas32, the precision of the network that produced z, and with the fast
// sgemm that the corinfomax command plugs into blas32 (dnnl.BLAS32); the
// row normalisation, the softmax, its log-sum-exp and the loss accumulate
// in float64. Against the float64 PyTorch fixtures this keeps the loss
// within 1e-7 relative and the gradients within 1e-6 of their largest
// entry. With exact set (the finite-difference test, which needs a loss free
// of float32 rounding) the same code runs its products in float64.
func (s *SimCLR) eval(z1, z2 []float64, n, d int, g1, g2 []float64) (Result, error) {
	m := 2 * n
	x := make([]float64, 0, m*d)
	x = append(append(x, z1...), z2...)
	y, norms := normalizeRows(x, m, d)
	var loss float64
	var gy []float64
	if s.exact {
		loss, gy = ntXent(y, n, d, s.opts.Temperature, gemm64)
	} else {
		loss, gy = ntXent(round32(y), n, d, s.opts.Temperature, gemm32)
	}
	normalizeRowsBackward(y, norms, gy, m, d, gy)
	copy(g1, gy[:n*d])
	copy(g2, gy[n*d:])
	return Result{Loss: loss, Components: []Component{{Name: "nce", Value: loss}}}, nil
}

// dims returns the first dimension of an operand whose op(A) is r x c:
// r, or c when transposed.
func dims(t blas.Transpose, r, c int) int {
	if t == blas.NoTrans {
		return r
	}
	return c
}

// gemmFunc computes out (r x c) = alpha op(a) op(b) + beta out, op(a) being
// r x k and op(b) k x c.
type gemmFunc[T float32 | float64] func(ta, tb blas.Transpose, r, c, k int, alpha float64, a, b []T, beta float64, out []T)

// gemm64 is a gemmFunc on blas64.
func gemm64(ta, tb blas.Transpose, r, c, k int, alpha float64, a, b []float64, beta float64, out []float64) {
	ar, ac, br, bc := dims(ta, r, k), dims(ta, k, r), dims(tb, k, c), dims(tb, c, k)
	blas64.Gemm(ta, tb, alpha, blas64.General{Rows: ar, Cols: ac, Stride: ac, Data: a},
		blas64.General{Rows: br, Cols: bc, Stride: bc, Data: b}, beta, blas64.General{Rows: r, Cols: c, Stride: c, Data: out})
}

// gemm32 is a gemmFunc on blas32 (oneDNN's sgemm when the command installs it).
func gemm32(ta, tb blas.Transpose, r, c, k int, alpha float64, a, b []float32, beta float64, out []float32) {
	ar, ac, br, bc := dims(ta, r, k), dims(ta, k, r), dims(tb, k, c), dims(tb, c, k)
	blas32.Gemm(ta, tb, float32(alpha), blas32.General{Rows: ar, Cols: ac, Stride: ac, Data: a},
		blas32.General{Rows: br, Cols: bc, Stride: bc, Data: b}, float32(beta), blas32.General{Rows: r, Cols: c, Stride: c, Data: out})
}

// ntXent is NT-Xent on the 2N unit rows y (T is the precision of the two
// products): it returns the loss and dL/dy (float64). Each row's softmax
// takes one exp per entry; rows are split over goroutines (forRowBlocks) and the loss
// is summed in row order afterwards, so the result does not depend on the
// split.
func ntXent[T float32 | float64](y []T, n, d int, temp float64, gemm gemmFunc[T]) (float64, []float64) {
	m := 2 * n
	invT := 1 / temp
	// S = y y^T / T, then overwritten row by row with
	// dS = (P - onehot(p(i))) / 2N.
	sm := make([]T, m*m)
	gemm(blas.NoTrans, blas.Trans, m, m, d, invT, y, y, 0, sm)
	rowLoss := make([]float64, m)
	softmaxRows := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := sm[i*m : (i+1)*m]
			pos := (i + n) % m
			mx := math.Inf(-1)
			for j, v := range row {
				if j != i && float64(v) > mx {
					mx = float64(v)
				}
			}
			sum := 0.0
			for j, v := range row {
				if j != i {
					sum += math.Exp(float64(v) - mx)
				}
			}
			lse := mx + math.Log(sum)
			rowLoss[i] = lse - float64(row[pos])
			for j, v := range row {
				if j == i {
					row[j] = 0
				} else {
					row[j] = T(math.Exp(float64(v)-lse) / float64(m))
				}
			}
			row[pos] -= T(1 / float64(m))
		}
	}
	forRowBlocks(m, softmaxRows)
	loss := meanInOrder(rowLoss)

	// dL/dy = (dS + dS^T) y / T, as two products (no transposition pass).
	g := make([]T, m*d)
	gemm(blas.NoTrans, blas.NoTrans, m, d, m, invT, sm, y, 0, g)
	gemm(blas.Trans, blas.NoTrans, m, d, m, invT, sm, y, 1, g)
	gy := make([]float64, m*d)
	for i, v := range g {
		gy[i] = float64(v)
	}
	return loss, gy
}

// forRowBlocks runs f(lo, hi) over up to GOMAXPROCS contiguous blocks of
// the rows [0, n) concurrently and returns when all are done. f must touch
// only its own rows, so the results do not depend on the split.
func forRowBlocks(n int, f func(lo, hi int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), n))
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(w*n/workers, (w+1)*n/workers)
	}
	f(0, n/workers)
	wg.Wait()
}

// meanInOrder is the mean of x summed in index order (so independent of
// how forRowBlocks split the rows that wrote it).
func meanInOrder(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// round32 returns x rounded to float32.
func round32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}
