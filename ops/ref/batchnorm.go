package ref

import (
	"fmt"
	"math"

	"github.com/corinfomax/corinfomax/ops"
)

// batchNorm is the reference ops.BatchNorm.
type batchNorm struct {
	spec ops.BNSpec
}

// BatchNorm returns a batch-normalisation operator for spec.
func (*Backend) BatchNorm(spec ops.BNSpec) (ops.BatchNorm, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("ref: batch norm: %w", err)
	}
	return &batchNorm{spec: spec}, nil
}

// ForwardTrain normalises with the batch statistics and writes them.
func (b *batchNorm) ForwardTrain(x, gamma, beta, y, mean, variance []float32) error {
	return BatchNormForwardTrain(b.spec, x, gamma, beta, y, mean, variance)
}

// ForwardInfer normalises with the given running statistics.
func (b *batchNorm) ForwardInfer(x, gamma, beta, runMean, runVar, y []float32) error {
	return BatchNormForwardInfer(b.spec, x, gamma, beta, runMean, runVar, y)
}

// Backward is the training-mode gradient.
func (b *batchNorm) Backward(x, gamma, mean, variance, dy, dx, dgamma, dbeta []float32) error {
	return BatchNormBackward(b.spec, x, gamma, mean, variance, dy, dx, dgamma, dbeta)
}

// BatchNormForwardTrain normalises x, viewed as [N*Spatial, C], with its
// per-channel batch statistics:
//
//	mean[c] = sum_r x[r,c] / M,  variance[c] = sum_r (x[r,c] - mean[c])^2 / M
//	y[r,c]  = gamma[c] * (x[r,c] - mean[c]) / sqrt(variance[c] + eps) + beta[c]
//
// with M = N*Spatial (the biased variance, as PyTorch normalises with). It
// writes mean and variance.
func BatchNormForwardTrain[T Float](s ops.BNSpec, x, gamma, beta, y, mean, variance []T) error {
	if err := ops.CheckBNForwardTrain(s, x, gamma, beta, y, mean, variance); err != nil {
		return err
	}
	rows := s.N * s.Spatial
	mu := make([]float64, s.C)
	for r := range rows {
		for c, v := range x[r*s.C:][:s.C] {
			mu[c] += float64(v)
		}
	}
	for c := range mu {
		mu[c] /= float64(rows)
	}
	vr := make([]float64, s.C)
	for r := range rows {
		for c, v := range x[r*s.C:][:s.C] {
			d := float64(v) - mu[c]
			vr[c] += d * d
		}
	}
	for c := range vr {
		vr[c] /= float64(rows)
		mean[c] = T(mu[c])
		variance[c] = T(vr[c])
	}
	bnApply(s, x, gamma, beta, mu, vr, y)
	return nil
}

// BatchNormForwardInfer normalises x with the running statistics:
//
//	y[r,c] = gamma[c] * (x[r,c] - runMean[c]) / sqrt(runVar[c] + eps) + beta[c].
func BatchNormForwardInfer[T Float](s ops.BNSpec, x, gamma, beta, runMean, runVar, y []T) error {
	if err := ops.CheckBNForwardInfer(s, x, gamma, beta, runMean, runVar, y); err != nil {
		return err
	}
	mu := make([]float64, s.C)
	vr := make([]float64, s.C)
	for c := range s.C {
		mu[c] = float64(runMean[c])
		vr[c] = float64(runVar[c])
	}
	bnApply(s, x, gamma, beta, mu, vr, y)
	return nil
}

// bnApply writes y = gamma * (x - mu) / sqrt(vr + eps) + beta.
func bnApply[T Float](s ops.BNSpec, x, gamma, beta []T, mu, vr []float64, y []T) {
	scale := make([]float64, s.C)
	shift := make([]float64, s.C)
	for c := range s.C {
		invStd := 1 / math.Sqrt(vr[c]+float64(s.Eps))
		scale[c] = float64(gamma[c]) * invStd
		shift[c] = float64(beta[c])
	}
	for r := range s.N * s.Spatial {
		xr := x[r*s.C:][:s.C]
		yr := y[r*s.C:][:s.C]
		for c, v := range xr {
			yr[c] = T((float64(v)-mu[c])*scale[c] + shift[c])
		}
	}
}

// BatchNormBackward is the training-mode gradient of BatchNormForwardTrain
// given the statistics it saved. With xhat = (x - mean) / sqrt(variance + eps):
//
//	dbeta[c]  = sum_r dy[r,c]
//	dgamma[c] = sum_r dy[r,c] * xhat[r,c]
//	dx[r,c]   = gamma[c] / sqrt(variance[c] + eps) *
//	            (dy[r,c] - dbeta[c]/M - xhat[r,c] * dgamma[c]/M)
//
// Any of dx, dgamma, dbeta may be nil to skip it.
func BatchNormBackward[T Float](s ops.BNSpec, x, gamma, mean, variance, dy, dx, dgamma, dbeta []T) error {
	if err := ops.CheckBNBackward(s, x, gamma, mean, variance, dy, dx, dgamma, dbeta); err != nil {
		return err
	}
	rows := s.N * s.Spatial
	mu := make([]float64, s.C)
	invStd := make([]float64, s.C)
	for c := range s.C {
		mu[c] = float64(mean[c])
		invStd[c] = 1 / math.Sqrt(float64(variance[c])+float64(s.Eps))
	}
	sumDy := make([]float64, s.C)
	sumDyXhat := make([]float64, s.C)
	for r := range rows {
		xr := x[r*s.C:][:s.C]
		dr := dy[r*s.C:][:s.C]
		for c, v := range xr {
			d := float64(dr[c])
			sumDy[c] += d
			sumDyXhat[c] += d * (float64(v) - mu[c]) * invStd[c]
		}
	}
	if dx != nil {
		m := float64(rows)
		for r := range rows {
			xr := x[r*s.C:][:s.C]
			dr := dy[r*s.C:][:s.C]
			or := dx[r*s.C:][:s.C]
			for c, v := range xr {
				xhat := (float64(v) - mu[c]) * invStd[c]
				g := float64(gamma[c]) * invStd[c]
				or[c] = T(g * (float64(dr[c]) - sumDy[c]/m - xhat*sumDyXhat[c]/m))
			}
		}
	}
	for c := range dgamma {
		dgamma[c] = T(sumDyXhat[c])
	}
	for c := range dbeta {
		dbeta[c] = T(sumDy[c])
	}
	return nil
}

// Sums writes the shifted channel sums of x (BatchNormSums).
func (b *batchNorm) Sums(x, shift []float32, s1, s2 []float64) error {
	return BatchNormSums(b.spec, x, shift, s1, s2)
}

// GradSums writes the channel sums of a backward pass (BatchNormGradSums).
func (b *batchNorm) GradSums(x, mean, dy []float32, sdy, sdyx []float64) error {
	return BatchNormGradSums(b.spec, x, mean, dy, sdy, sdyx)
}

// BackwardGiven writes dx from given sums (BatchNormBackwardGiven).
func (b *batchNorm) BackwardGiven(x, gamma, mean, variance, dy []float32, sdy, sdyx []float64, m int, dx []float32) error {
	return BatchNormBackwardGiven(b.spec, x, gamma, mean, variance, dy, sdy, sdyx, m, dx)
}

// BatchNormSums writes, for x viewed as [N*Spatial, C],
//
//	s1[c] = sum_r (x[r,c] - shift[c]),  s2[c] = sum_r (x[r,c] - shift[c])^2
func BatchNormSums[T Float](s ops.BNSpec, x, shift []T, s1, s2 []float64) error {
	if err := ops.CheckBNSums(s, x, shift, s1, s2); err != nil {
		return err
	}
	clear(s1)
	clear(s2)
	for r := range s.N * s.Spatial {
		for c, v := range x[r*s.C:][:s.C] {
			d := float64(v) - float64(shift[c])
			s1[c] += d
			s2[c] += d * d
		}
	}
	return nil
}

// BatchNormGradSums writes, for x and dy viewed as [N*Spatial, C],
//
//	sdy[c] = sum_r dy[r,c],  sdyx[c] = sum_r dy[r,c] * (x[r,c] - mean[c])
func BatchNormGradSums[T Float](s ops.BNSpec, x, mean, dy []T, sdy, sdyx []float64) error {
	if err := ops.CheckBNGradSums(s, x, mean, dy, sdy, sdyx); err != nil {
		return err
	}
	clear(sdy)
	clear(sdyx)
	for r := range s.N * s.Spatial {
		xr, dr := x[r*s.C:][:s.C], dy[r*s.C:][:s.C]
		for c, v := range xr {
			d := float64(dr[c])
			sdy[c] += d
			sdyx[c] += d * (float64(v) - float64(mean[c]))
		}
	}
	return nil
}

// BatchNormBackwardGiven writes the training-mode input gradient from sums
// over m values per channel (BatchNormBackward's formula with sdy for
// dbeta and sdyx*inv for dgamma):
//
//	inv[c]  = 1 / sqrt(variance[c] + eps)
//	dx[r,c] = gamma[c]*inv[c] * (dy[r,c] - sdy[c]/m - (x[r,c]-mean[c])*inv[c]^2*sdyx[c]/m)
func BatchNormBackwardGiven[T Float](s ops.BNSpec, x, gamma, mean, variance, dy []T, sdy, sdyx []float64, m int, dx []T) error {
	if err := ops.CheckBNBackwardGiven(s, x, gamma, mean, variance, dy, sdy, sdyx, m, dx); err != nil {
		return err
	}
	fm := float64(m)
	for r := range s.N * s.Spatial {
		xr, dr, or := x[r*s.C:][:s.C], dy[r*s.C:][:s.C], dx[r*s.C:][:s.C]
		for c, v := range xr {
			inv := 1 / math.Sqrt(float64(variance[c])+float64(s.Eps))
			d := float64(v) - float64(mean[c])
			or[c] = T(float64(gamma[c]) * inv * (float64(dr[c]) - sdy[c]/fm - d*inv*inv*sdyx[c]/fm))
		}
	}
	return nil
}
