package nn

import (
	"fmt"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
)

// BatchNorm is batch normalisation over the last (channel) axis: BatchNorm2d
// on NHWC activations [N, H, W, C] or BatchNorm1d on features [N, C].
//
// Training mode normalises with the batch statistics and updates the running
// statistics like PyTorch (momentum 0.1):
//
//	running_mean = (1 - m) * running_mean + m * mean
//	running_var  = (1 - m) * running_var  + m * var * n / (n - 1)
//
// with var the biased batch variance over n = N*H*W values per channel (the
// running variance uses the unbiased one). Inference mode uses the running
// statistics. PyTorch's num_batches_tracked is not kept: it only matters
// when momentum is None, which no recipe uses.
type BatchNorm struct {
	C        int
	Eps      float32 // 1e-5
	Momentum float64 // 0.1

	Weight, Bias            *Param  // gamma (1) and beta (0), length C
	RunningMean, RunningVar *Buffer // 0 and 1, length C

	// NoAffine makes this PyTorch's BatchNorm1d(affine=False): gamma stays
	// 1 and beta 0, and Params lists neither (nothing trains or saves
	// them). SimSiam's projector ends with one.
	NoAffine bool

	// InPlaceGrad makes Backward write dL/dx over dy and return dy's
	// tensor, saving an input-gradient buffer. Only for a caller that does
	// not read dy after the call: the network builders set it where the
	// incoming gradient has no other reader (not on the first layer of a
	// residual branch, whose dy the shortcut still needs).
	InPlaceGrad bool

	// Sync, when set, makes training-mode statistics those of every
	// data-parallel worker's batch together (synchronised batch norm; see
	// batchnorm_sync.go). nil: this process's batch only.
	Sync SyncFunc

	training bool
	be       ops.Backend
	ops      map[ops.BNSpec]ops.BatchNorm
	slots    []bnSlot
	dx       *tensor.Tensor // input gradient, shared by the slots (without a pool)
	pool     *gradPool
	dgamma   *tensor.Tensor // scratch, added into Weight.Grad
	dbeta    *tensor.Tensor // scratch, added into Bias.Grad
}

type bnSlot struct {
	spec           ops.BNSpec
	x, y           *tensor.Tensor
	mean, variance *tensor.Tensor // batch statistics of the training forward
	m              int            // values per channel behind them (all workers' with Sync)
	synced         bool           // the statistics came from a synchronised forward
	ready          bool           // a training forward waits for its backward
}

// NewBatchNorm returns a batch normalisation over c channels named name
// ("bn1": parameters "bn1.weight", "bn1.bias", buffers "bn1.running_mean",
// "bn1.running_var"), in training mode, with PyTorch's defaults.
func NewBatchNorm(be ops.Backend, name string, c int) (*BatchNorm, error) {
	if be == nil {
		return nil, fmt.Errorf("nn: batch norm %s: nil backend", name)
	}
	if c < 1 {
		return nil, fmt.Errorf("nn: batch norm %s: %d channels", name, c)
	}
	b := &BatchNorm{C: c, Eps: 1e-5, Momentum: 0.1, training: true, be: be, ops: map[ops.BNSpec]ops.BatchNorm{}}
	b.Weight = NewParam(name+".weight", KindBNWeight, c)
	fill(b.Weight.Value.Data, 1)
	b.Bias = NewParam(name+".bias", KindBNBias, c)
	b.RunningMean = &Buffer{Name: name + ".running_mean", Value: tensor.New(c)}
	b.RunningVar = &Buffer{Name: name + ".running_var", Value: tensor.New(c)}
	fill(b.RunningVar.Value.Data, 1)
	return b, nil
}

func (b *BatchNorm) name() string { return "batch norm " + b.Weight.Name }

func (b *BatchNorm) op(spec ops.BNSpec) (ops.BatchNorm, error) {
	if op, ok := b.ops[spec]; ok {
		return op, nil
	}
	op, err := b.be.BatchNorm(spec)
	if err != nil {
		return nil, fmt.Errorf("nn: %s: %w", b.name(), err)
	}
	b.ops[spec] = op
	return op, nil
}

// Forward normalises x ([N, H, W, C] or [N, C]).
func (b *BatchNorm) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	if x == nil || (len(x.Shape) != 4 && len(x.Shape) != 2) || x.Shape[len(x.Shape)-1] != b.C {
		return nil, fmt.Errorf("nn: %s: input %v, want [N H W %d] or [N %d]", b.name(), x, b.C, b.C)
	}
	s, err := slotAt(&b.slots, slot)
	if err != nil {
		return nil, err
	}
	spec := ops.BNSpec{N: x.Shape[0], Spatial: x.Len() / (x.Shape[0] * b.C), C: b.C, Eps: b.Eps}
	op, err := b.op(spec)
	if err != nil {
		return nil, err
	}
	s.y = tensor.Ensure(s.y, x.Shape...)
	if !b.training {
		err := op.ForwardInfer(x.Data, b.Weight.Value.Data, b.Bias.Value.Data,
			b.RunningMean.Value.Data, b.RunningVar.Value.Data, s.y.Data)
		if err != nil {
			return nil, fmt.Errorf("nn: %s inference forward: %w", b.name(), err)
		}
		s.ready = false
		return s.y, nil
	}
	n := spec.N * spec.Spatial
	if n < 2 && b.Sync == nil {
		return nil, fmt.Errorf("nn: %s: training needs more than one value per channel, got input %v", b.name(), x.Shape)
	}
	s.mean = tensor.Ensure(s.mean, b.C)
	s.variance = tensor.Ensure(s.variance, b.C)
	s.m, s.synced = n, b.Sync != nil
	if s.synced {
		if s.m, err = b.syncForward(op, x.Data, n, s.mean.Data, s.variance.Data); err != nil {
			return nil, err
		}
		if err := op.ForwardInfer(x.Data, b.Weight.Value.Data, b.Bias.Value.Data, s.mean.Data, s.variance.Data, s.y.Data); err != nil {
			return nil, fmt.Errorf("nn: %s synchronised training forward: %w", b.name(), err)
		}
	} else if err := op.ForwardTrain(x.Data, b.Weight.Value.Data, b.Bias.Value.Data, s.y.Data, s.mean.Data, s.variance.Data); err != nil {
		return nil, fmt.Errorf("nn: %s training forward: %w", b.name(), err)
	}
	m := b.Momentum
	unbias := float64(s.m) / float64(s.m-1)
	rm, rv := b.RunningMean.Value.Data, b.RunningVar.Value.Data
	for c := range b.C {
		rm[c] = float32((1-m)*float64(rm[c]) + m*float64(s.mean.Data[c]))
		rv[c] = float32((1-m)*float64(rv[c]) + m*float64(s.variance.Data[c])*unbias)
	}
	s.spec, s.x, s.ready = spec, x, true
	return s.y, nil
}

// Backward adds dL/dgamma and dL/dbeta into the gradients and returns
// dL/dx. Only a training-mode forward can be differentiated.
func (b *BatchNorm) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	s, err := savedSlot(b.slots, slot, func(s *bnSlot) bool { return s.ready }, "batch norm ", b.Weight.Name)
	if err != nil {
		return nil, err
	}
	if err := checkShape("batch norm ", b.Weight.Name, "dy", dy, s.y.Shape...); err != nil {
		return nil, err
	}
	op, err := b.op(s.spec)
	if err != nil {
		return nil, err
	}
	dx := dy
	if !b.InPlaceGrad {
		dx = gradBuf(b.pool, &b.dx, s.x.Shape...)
	}
	b.dgamma = tensor.Ensure(b.dgamma, b.C)
	b.dbeta = tensor.Ensure(b.dbeta, b.C)
	if s.synced {
		if err := b.syncBackward(op, s.x.Data, dy.Data, s.m, s.mean.Data, s.variance.Data, dx, b.dgamma, b.dbeta); err != nil {
			return nil, err
		}
	} else if err := op.Backward(s.x.Data, b.Weight.Value.Data, s.mean.Data, s.variance.Data, dy.Data,
		dx.Data, b.dgamma.Data, b.dbeta.Data); err != nil {
		return nil, fmt.Errorf("nn: %s backward: %w", b.name(), err)
	}
	if b.NoAffine {
		s.ready = false
		return dx, nil
	}
	if err := b.be.Add(b.Weight.Grad.Data, b.dgamma.Data, b.Weight.Grad.Data); err != nil {
		return nil, fmt.Errorf("nn: %s: accumulate dgamma: %w", b.name(), err)
	}
	if err := b.be.Add(b.Bias.Grad.Data, b.dbeta.Data, b.Bias.Grad.Data); err != nil {
		return nil, fmt.Errorf("nn: %s: accumulate dbeta: %w", b.name(), err)
	}
	s.ready = false
	return dx, nil
}

// Params returns gamma and beta (none with NoAffine).
func (b *BatchNorm) Params() []*Param {
	if b.NoAffine {
		return nil
	}
	return []*Param{b.Weight, b.Bias}
}

// Buffers returns the running mean and variance.
func (b *BatchNorm) Buffers() []*Buffer { return []*Buffer{b.RunningMean, b.RunningVar} }

// SetTraining selects batch statistics (true) or running statistics (false).
func (b *BatchNorm) SetTraining(training bool) { b.training = training }
