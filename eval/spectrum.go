package eval

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Covariance returns the d x d covariance (row-major, float64) of the n rows
// of x (n x d, row-major): C = (x - mean)^T (x - mean) / n, divided by n,
// not n - 1. Rows are centred and accumulated in float64 in chunks, so the
// extra memory is O(chunk * d + d * d). It returns nil when n < 1, d < 1 or
// len(x) != n*d.
func Covariance(x []float32, n, d int) []float64 {
	if n < 1 || d < 1 || len(x) != n*d {
		return nil
	}
	mean := make([]float64, d)
	for i := range n {
		for j, v := range x[i*d : (i+1)*d] {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	cov := blas64.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: make([]float64, d*d)}
	chunk := max(1, min(n, (1<<20)/d))
	buf := make([]float64, chunk*d)
	for start := 0; start < n; start += chunk {
		rows := min(chunk, n-start)
		for r := range rows {
			for j, v := range x[(start+r)*d : (start+r+1)*d] {
				buf[r*d+j] = float64(v) - mean[j]
			}
		}
		a := blas64.General{Rows: rows, Cols: d, Stride: d, Data: buf[:rows*d]}
		blas64.Syrk(blas.Trans, 1, a, 1, cov)
	}
	for i := range d {
		for j := i; j < d; j++ {
			cov.Data[i*d+j] /= float64(n)
			cov.Data[j*d+i] = cov.Data[i*d+j]
		}
	}
	return cov.Data
}

// Spectrum returns the eigenvalues of the symmetric d x d matrix cov
// (row-major), sorted in descending order.
func Spectrum(cov []float64, d int) ([]float64, error) {
	if d < 1 || len(cov) != d*d {
		return nil, fmt.Errorf("eval: spectrum: %d values for a %d x %d matrix", len(cov), d, d)
	}
	var eig mat.EigenSym
	if !eig.Factorize(mat.NewSymDense(d, slices.Clone(cov)), false) {
		return nil, fmt.Errorf("eval: spectrum: eigendecomposition of the %d x %d matrix failed", d, d)
	}
	vals := eig.Values(nil)
	slices.Reverse(vals) // gonum returns ascending order
	return vals, nil
}

// EffectiveRank returns exp(H(p)), the exponential of the Shannon entropy of
// the normalised eigenvalues p_i = l_i / sum(l) (Roy and Vetterli, 2007).
// Eigenvalues <= 0 (numerical noise) are ignored. It is between 1 and the
// number of positive eigenvalues, and 0 when there are none.
func EffectiveRank(eigenvalues []float64) float64 {
	var sum float64
	for _, l := range eigenvalues {
		if l > 0 {
			sum += l
		}
	}
	if !(sum > 0) {
		return 0
	}
	var h float64
	for _, l := range eigenvalues {
		if l > 0 {
			p := l / sum
			h -= p * math.Log(p)
		}
	}
	return math.Exp(h)
}
