package ssl

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Spectrum summarises the eigenvalues of an embedding covariance matrix.
type Spectrum struct {
	// Eigenvalues in descending order.
	Eigenvalues []float64
	// Below1e8 counts eigenvalues below 1e-8; Above1e1 counts those above
	// 1e-1 (the two numbers the CorInfoMax reference logs).
	Below1e8, Above1e1 int
	// EffectiveRank is exp(-sum p_i log p_i) with p_i = max(λ_i, 0) / sum_j max(λ_j, 0):
	// 1 when one direction holds everything, D when all are equal.
	EffectiveRank float64
}

// SpectrumOf returns the spectrum of the symmetric d x d matrix cov
// (row-major; only the upper triangle is read) by symmetric
// eigen-decomposition. Tiny negative eigenvalues from round-off count as 0
// in the effective rank.
func SpectrumOf(cov []float64, d int) (Spectrum, error) {
	if d <= 0 || len(cov) != d*d {
		return Spectrum{}, fmt.Errorf("ssl: SpectrumOf: %d values for d = %d, want d*d", len(cov), d)
	}
	for i, v := range cov {
		if !finite(v) {
			return Spectrum{}, fmt.Errorf("ssl: SpectrumOf: cov[%d] = %v", i, v)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(mat.NewSymDense(d, append([]float64(nil), cov...)), false) {
		return Spectrum{}, fmt.Errorf("ssl: SpectrumOf: eigen-decomposition of the %d x %d matrix did not converge", d, d)
	}
	s := Spectrum{Eigenvalues: sortedDesc(eig.Values(nil))}
	sum := 0.0
	for _, v := range s.Eigenvalues {
		if v < 1e-8 {
			s.Below1e8++
		}
		if v > 1e-1 {
			s.Above1e1++
		}
		if v > 0 {
			sum += v
		}
	}
	if sum == 0 {
		return s, nil // no positive eigenvalue: effective rank 0
	}
	h := 0.0
	for _, v := range s.Eigenvalues {
		if v > 0 {
			p := v / sum
			h -= p * math.Log(p)
		}
	}
	s.EffectiveRank = math.Exp(h)
	return s, nil
}
