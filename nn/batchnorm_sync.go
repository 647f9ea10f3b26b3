package nn

import (
	"fmt"
	"math"

	"github.com/corinfomax/corinfomax/ops"
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
// over the workers and shift the running mean (the same on every worker):
//
//	forward:  s1 = sum(x-shift), s2 = sum((x-shift)^2), m  (one all-reduce)
//	          mean = shift + s1/m, var = s2/m - (s1/m)^2
//	          y = gamma*(x-mean)/sqrt(var+eps) + beta     (ForwardInfer)
//	backward: g1 = sum(dy), g2 = sum(dy*(x-mean))         (one all-reduce)
//	          dx = gamma*istd*(dy - g1/m - (x-mean)*istd^2*g2/m)
//	          dgamma, dbeta: this worker's own sums (the gradient
//	          all-reduce of the step adds the workers' parts)
//
// The sums and the input gradient are the backend's operators (Sums,
// GradSums, BackwardGiven); only the C (or 2C+1) sums cross the workers.

// syncForward writes the global batch statistics of x (rows x C) into mean
// and variance and returns m, the number of values per channel over all
// workers.
func (b *BatchNorm) syncForward(op ops.BatchNorm, x []float32, rows int, mean, variance []float32) (int, error) {
	c := b.C
	buf := make([]float64, 2*c+1)
	shift := b.RunningMean.Value.Data
	if err := op.Sums(x, shift, buf[:c], buf[c:2*c]); err != nil {
		return 0, fmt.Errorf("nn: %s: channel sums: %w", b.name(), err)
	}
	buf[2*c] = float64(rows)
	if err := b.Sync(buf); err != nil {
		return 0, fmt.Errorf("nn: %s: all-reduce of the channel sums: %w", b.name(), err)
	}
	m := buf[2*c]
	if m < 2 || m != math.Trunc(m) {
		return 0, fmt.Errorf("nn: %s: %v values per channel over the workers, need at least 2", b.name(), m)
	}
	for j := 0; j < c; j++ {
		d := buf[j] / m
		mean[j] = float32(float64(shift[j]) + d)
		variance[j] = float32(max(buf[c+j]/m-d*d, 0))
	}
	return int(m), nil
}

// syncBackward writes dx, dgamma and dbeta of a synchronised training
// forward with statistics mean, variance over m values per channel.
func (b *BatchNorm) syncBackward(op ops.BatchNorm, x, dy []float32, m int, mean, variance []float32, dx, dgamma, dbeta *tensor.Tensor) error {
	c := b.C
	buf := make([]float64, 2*c) // sum(dy), then sum(dy*(x-mean))
	if err := op.GradSums(x, mean, dy, buf[:c], buf[c:]); err != nil {
		return fmt.Errorf("nn: %s: gradient sums: %w", b.name(), err)
	}
	for j := 0; j < c; j++ {
		istd := 1 / math.Sqrt(float64(variance[j])+float64(b.Eps))
		dbeta.Data[j] = float32(buf[j])
		dgamma.Data[j] = float32(buf[c+j] * istd)
	}
	if err := b.Sync(buf); err != nil {
		return fmt.Errorf("nn: %s: all-reduce of the gradient sums: %w", b.name(), err)
	}
	if err := op.BackwardGiven(x, b.Weight.Value.Data, mean, variance, dy, buf[:c], buf[c:], m, dx.Data); err != nil {
		return fmt.Errorf("nn: %s: synchronised backward: %w", b.name(), err)
	}
	return nil
}
