package eval

import (
	"fmt"
	"math"
)

// SpectrumSummary summarises the eigenvalues of an embedding covariance matrix.
type SpectrumSummary struct {
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
// (row-major; only the upper triangle is read) by Spectrum's symmetric
// eigen-decomposition. Tiny negative eigenvalues from round-off count as 0
// in the effective rank.
func SpectrumOf(cov []float64, d int) (SpectrumSummary, error) {
	if d <= 0 || len(cov) != d*d {
		return SpectrumSummary{}, fmt.Errorf("eval: SpectrumOf: %d values for d = %d, want d*d", len(cov), d)
	}
	for i, v := range cov {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return SpectrumSummary{}, fmt.Errorf("eval: SpectrumOf: cov[%d] = %v", i, v)
		}
	}
	vals, err := Spectrum(cov, d)
	if err != nil {
		return SpectrumSummary{}, fmt.Errorf("eval: SpectrumOf: %w", err)
	}
	s := SpectrumSummary{Eigenvalues: vals, EffectiveRank: EffectiveRank(vals)}
	for _, v := range vals {
		if v < 1e-8 {
			s.Below1e8++
		}
		if v > 1e-1 {
			s.Above1e1++
		}
	}
	return s, nil
}
