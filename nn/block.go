package nn

import (
	"fmt"
	"math/rand"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
)

// residual is the part BasicBlock and Bottleneck share:
//
//	y = relu(main(x) + shortcut(x))
//
// with shortcut the identity or downsample (1x1 convolution + batch norm).
type residual struct {
	be         ops.Backend
	main       *Sequential
	downsample *Sequential // nil: identity shortcut
	relu       *ReLU       // in place on the sum
	name       string
	pool       *gradPool // gives back the shortcut's gradients
}

// Forward computes relu(main(x) + shortcut(x)). The sum is written over
// the main path's last batch-norm output (batch norm keeps its input, not
// its output, for the backward pass) and the ReLU works in place on it.
func (r *residual) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	h, err := r.main.Forward(slot, x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.name, err)
	}
	sc := x
	if r.downsample != nil {
		if sc, err = r.downsample.Forward(slot, x); err != nil {
			return nil, fmt.Errorf("%s.downsample: %w", r.name, err)
		}
	}
	if !h.SameShape(sc) {
		return nil, fmt.Errorf("nn: %s: main path %v and shortcut %v differ", r.name, h.Shape, sc.Shape)
	}
	if err := r.be.Add(h.Data, sc.Data, h.Data); err != nil {
		return nil, fmt.Errorf("nn: %s: residual add: %w", r.name, err)
	}
	return r.relu.Forward(slot, h)
}

// Backward returns dL/dx = dmain + dshortcut.
func (r *residual) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	dsum, err := r.relu.Backward(slot, dy)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.name, err)
	}
	dmain, err := r.main.Backward(slot, dsum)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.name, err)
	}
	dsc := dsum
	if r.downsample != nil {
		if dsc, err = r.downsample.Backward(slot, dsum); err != nil {
			return nil, fmt.Errorf("%s.downsample: %w", r.name, err)
		}
	}
	// dmain is the first convolution's own input-gradient buffer: add the
	// shortcut's gradient into it.
	if dmain == dsum || dmain == dsc {
		return nil, fmt.Errorf("nn: %s: the main path returned the gradient it was given (a main path must not compute its input gradient in place)", r.name)
	}
	if err := r.be.Add(dmain.Data, dsc.Data, dmain.Data); err != nil {
		return nil, fmt.Errorf("nn: %s: residual gradient add: %w", r.name, err)
	}
	if dsc != dsum {
		r.pool.release(dsc)
	}
	if dsum != dy {
		r.pool.release(dsum)
	}
	return dmain, nil
}

// Params lists the main path's parameters, then the downsample's
// (torchvision's state_dict order).
func (r *residual) Params() []*Param {
	ps := r.main.Params()
	if r.downsample != nil {
		ps = append(ps, r.downsample.Params()...)
	}
	return ps
}

// Buffers lists the main path's buffers, then the downsample's.
func (r *residual) Buffers() []*Buffer {
	bs := r.main.Buffers()
	if r.downsample != nil {
		bs = append(bs, r.downsample.Buffers()...)
	}
	return bs
}

// SetTraining sets the mode of every layer of the block.
func (r *residual) SetTraining(training bool) {
	r.main.SetTraining(training)
	if r.downsample != nil {
		r.downsample.SetTraining(training)
	}
}

// newDownsample returns torchvision's downsample "name.downsample":
// Sequential(conv1x1(in, out, stride), BatchNorm2d(out)), or nil when the
// shortcut is the identity (stride 1 and in == out).
func newDownsample(be ops.Backend, name string, in, out, stride int, rng *rand.Rand) (*Sequential, *Conv2d, *BatchNorm, error) {
	if stride == 1 && in == out {
		return nil, nil, nil, nil
	}
	conv, err := NewConv2d(be, name+".downsample.0", in, out, 1, stride, 0, false, rng)
	if err != nil {
		return nil, nil, nil, err
	}
	bn, err := NewBatchNorm(be, name+".downsample.1", out)
	if err != nil {
		return nil, nil, nil, err
	}
	bn.InPlaceGrad = true // residual.Backward runs the shortcut last: dsum has no reader after it
	return NewSequential(conv, bn), conv, bn, nil
}

// BasicBlock is torchvision's ResNet-18/34 block:
//
//	y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
//
// conv1 is 3x3 with the block's stride, conv2 3x3 stride 1, and the
// shortcut is the identity or downsample (conv 1x1 with the stride + BN).
type BasicBlock struct {
	Conv1, Conv2 *Conv2d
	BN1, BN2     *BatchNorm
	// DownConv and DownBN form the downsample shortcut; nil for identity.
	DownConv *Conv2d
	DownBN   *BatchNorm
	residual
}

// NewBasicBlock returns a BasicBlock named name ("layer1.0") from in to out
// channels. zeroInit sets bn2's weight to zero (torchvision's
// zero_init_residual).
func NewBasicBlock(be ops.Backend, name string, in, out, stride int, zeroInit bool, rng *rand.Rand) (*BasicBlock, error) {
	b := &BasicBlock{}
	var err error
	if b.Conv1, err = NewConv2d(be, name+".conv1", in, out, 3, stride, 1, false, rng); err != nil {
		return nil, err
	}
	if b.BN1, err = NewBatchNorm(be, name+".bn1", out); err != nil {
		return nil, err
	}
	if b.Conv2, err = NewConv2d(be, name+".conv2", out, out, 3, 1, 1, false, rng); err != nil {
		return nil, err
	}
	if b.BN2, err = NewBatchNorm(be, name+".bn2", out); err != nil {
		return nil, err
	}
	if zeroInit {
		b.BN2.Weight.Value.Zero()
	}
	down, conv, bn, err := newDownsample(be, name, in, out, stride, rng)
	if err != nil {
		return nil, err
	}
	b.DownConv, b.DownBN = conv, bn
	// In-place gradients everywhere but on BN2, whose dy (the gradient of
	// the sum) the shortcut still reads.
	b.BN1.InPlaceGrad = true
	b.residual = residual{
		be:         be,
		main:       NewSequential(b.Conv1, b.BN1, &ReLU{InPlace: true, InPlaceGrad: true, be: be}, b.Conv2, b.BN2),
		downsample: down,
		relu:       &ReLU{InPlace: true, InPlaceGrad: true, be: be},
		name:       name,
	}
	return b, nil
}

// Bottleneck is torchvision's ResNet-50 block (v1.5, stride on the 3x3):
//
//	y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))
//
// conv1 1x1 in->width, conv2 3x3 width->width with the block's stride,
// conv3 1x1 width->4*width.
type Bottleneck struct {
	Conv1, Conv2, Conv3 *Conv2d
	BN1, BN2, BN3       *BatchNorm
	// DownConv and DownBN form the downsample shortcut; nil for identity.
	DownConv *Conv2d
	DownBN   *BatchNorm
	residual
}

// BottleneckExpansion is the ratio of a Bottleneck's output channels to its
// inner width.
const BottleneckExpansion = 4

// NewBottleneck returns a Bottleneck named name with the given inner width,
// from in to BottleneckExpansion*width channels. zeroInit sets bn3's weight
// to zero (torchvision's zero_init_residual).
func NewBottleneck(be ops.Backend, name string, in, width, stride int, zeroInit bool, rng *rand.Rand) (*Bottleneck, error) {
	out := width * BottleneckExpansion
	b := &Bottleneck{}
	var err error
	if b.Conv1, err = NewConv2d(be, name+".conv1", in, width, 1, 1, 0, false, rng); err != nil {
		return nil, err
	}
	if b.BN1, err = NewBatchNorm(be, name+".bn1", width); err != nil {
		return nil, err
	}
	if b.Conv2, err = NewConv2d(be, name+".conv2", width, width, 3, stride, 1, false, rng); err != nil {
		return nil, err
	}
	if b.BN2, err = NewBatchNorm(be, name+".bn2", width); err != nil {
		return nil, err
	}
	if b.Conv3, err = NewConv2d(be, name+".conv3", width, out, 1, 1, 0, false, rng); err != nil {
		return nil, err
	}
	if b.BN3, err = NewBatchNorm(be, name+".bn3", out); err != nil {
		return nil, err
	}
	if zeroInit {
		b.BN3.Weight.Value.Zero()
	}
	down, conv, bn, err := newDownsample(be, name, in, out, stride, rng)
	if err != nil {
		return nil, err
	}
	b.DownConv, b.DownBN = conv, bn
	// In-place gradients everywhere but on BN3 (see NewBasicBlock).
	b.BN1.InPlaceGrad, b.BN2.InPlaceGrad = true, true
	b.residual = residual{
		be: be,
		main: NewSequential(b.Conv1, b.BN1, &ReLU{InPlace: true, InPlaceGrad: true, be: be},
			b.Conv2, b.BN2, &ReLU{InPlace: true, InPlaceGrad: true, be: be}, b.Conv3, b.BN3),
		downsample: down,
		relu:       &ReLU{InPlace: true, InPlaceGrad: true, be: be},
		name:       name,
	}
	return b, nil
}
