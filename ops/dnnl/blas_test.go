package dnnl

import (
	"math"
	"math/rand"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestSgemmMatchesGonum compares oneDNN's Sgemm with gonum's pure-Go one
// for every transposition and odd sizes, with alpha, beta and padded leading
// dimensions.
func TestSgemmMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
		for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, sz := range [][3]int{{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 128, 9}} {
				m, n, k := sz[0], sz[1], sz[2]
				ra, ca := m, k
				if tA == blas.Trans {
					ra, ca = k, m
				}
				rb, cb := k, n
				if tB == blas.Trans {
					rb, cb = n, k
				}
				lda, ldb, ldc := ca+2, cb+1, n+3
				a, b := make([]float32, ra*lda), make([]float32, rb*ldb)
				c := make([]float32, m*ldc)
				for i := range a {
					a[i] = float32(rng.NormFloat64())
				}
				for i := range b {
					b[i] = float32(rng.NormFloat64())
				}
				for i := range c {
					c[i] = float32(rng.NormFloat64())
				}
				want := append([]float32(nil), c...)
				gonum.Implementation{}.Sgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, -0.3, want, ldc)
				BLAS32{}.Sgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, -0.3, c, ldc)
				for i := range c {
					if d := math.Abs(float64(c[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("tA=%c tB=%c %v: c[%d] = %v, gonum %v", tA, tB, sz, i, c[i], want[i])
					}
				}
			}
		}
	}
}
