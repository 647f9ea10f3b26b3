package nn

import (
	"fmt"
	"math"

	"github.com/corinfomax/corinfomax/tensor"
)

// SyncFunc sums a float64 buffer over the data-parallel workers in place
// (dist.Comm.AllreduceSum64). Every worker calls it with buffers of the
// same length in the same order.
type SyncFunc func(buf []float64) error

// Synchronised batch norm (BatchNorm.Sync set): the statistics of the
// training forward pass are those of the union of every worker's batch, as
// torch.nn.SyncBatchNorm computes them, and the backward pass uses the
// matching global sums. With m the number of values per channel summed
// over the workers:
//
//	forward:  mean = sum(x)/m, var = sum((x-mean)^2)/m  (two all-reduces)
//	          y = gamma*(x-mean)/sqrt(var+eps) + beta   (ForwardInfer)
//	backward: g1 = sum(dy), g2 = sum(dy*(x-mean))       (one all-reduce)
//	          dx = gamma*istd*(dy - g1/m - (x-mean)*istd^2*g2/m)
//	          dgamma, dbeta: this worker's own sums (the gradient
//	          all-reduce of the step adds the workers' parts)
//
// The sums run in float64 in plain Go; the normalisation itself uses the
// backend's operator.

// syncForward computes the global batch statistics of x (rows x C) into
// s.mean and s.variance and returns m, the number of values per channel
// over all workers.
func (b *BatchNorm) syncForward(x []float32, rows int, mean, variance []float32) (int, error) {
	c := b.C
	buf := make([]float64, c+1)
	for r := 0; r < rows; r++ {
		for j, v := range x[r*c : (r+1)*c] {
			buf[j] += float64(v)
		}
	}
	buf[c] = float64(rows)
	if err := b.Sync(buf); err != nil {
		return 0, fmt.Errorf("nn: %s: all-reduce of the channel sums: %w", b.name(), err)
	}
	m := buf[c]
	if m < 2 || m != math.Trunc(m) {
		return 0, fmt.Errorf("nn: %s: %v values per channel over the workers, need at least 2", b.name(), m)
	}
	mu := make([]float64, c)
	for j := range mu {
		mu[j] = buf[j] / m
	}
	sq := make([]float64, c)
	for r := 0; r < rows; r++ {
		for j, v := range x[r*c : (r+1)*c] {
			d := float64(v) - mu[j]
			sq[j] += d * d
		}
	}
	if err := b.Sync(sq); err != nil {
		return 0, fmt.Errorf("nn: %s: all-reduce of the squared deviations: %w", b.name(), err)
	}
	for j := range mu {
		mean[j] = float32(mu[j])
		variance[j] = float32(sq[j] / m)
	}
	return int(m), nil
}

// syncBackward writes dx, dgamma and dbeta of a synchronised training
// forward with statistics mean, variance over m values per channel.
func (b *BatchNorm) syncBackward(x, dy []float32, rows, m int, mean, variance []float32, dx, dgamma, dbeta *tensor.Tensor) error {
	c := b.C
	buf := make([]float64, 2*c) // sum(dy), then sum(dy*(x-mean))
	for r := 0; r < rows; r++ {
		xr, dr := x[r*c:(r+1)*c], dy[r*c:(r+1)*c]
		for j := range xr {
			g := float64(dr[j])
			buf[j] += g
			buf[c+j] += g * (float64(xr[j]) - float64(mean[j]))
		}
	}
	istd := make([]float64, c)
	for j := range istd {
		istd[j] = 1 / math.Sqrt(float64(variance[j])+float64(b.Eps))
		dbeta.Data[j] = float32(buf[j])
		dgamma.Data[j] = float32(buf[c+j] * istd[j])
	}
	if err := b.Sync(buf); err != nil {
		return fmt.Errorf("nn: %s: all-reduce of the gradient sums: %w", b.name(), err)
	}
	gamma := b.Weight.Value.Data
	fm := float64(m)
	for r := 0; r < rows; r++ {
		xr, dr, or := x[r*c:(r+1)*c], dy[r*c:(r+1)*c], dx.Data[r*c:(r+1)*c]
		for j := range xr {
			is := istd[j]
			d := float64(xr[j]) - float64(mean[j])
			or[j] = float32(float64(gamma[j]) * is * (float64(dr[j]) - buf[j]/fm - d*is*is*buf[c+j]/fm))
		}
	}
	return nil
}
