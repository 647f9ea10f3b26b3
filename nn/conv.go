package nn

import (
	"fmt"
	"math/rand"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
)

// Conv2d is a 2-D convolution over NHWC activations with an OIHW weight
// [Out, In, Kernel, Kernel] and an optional bias [Out].
type Conv2d struct {
	In, Out, Kernel, Stride, Pad int
	Weight                       *Param
	Bias                         *Param // nil without bias (torchvision's ResNet convolutions)

	// SkipInputGrad makes Backward skip dL/dx and return nil: the stem
	// convolution of a network never needs the image gradient.
	SkipInputGrad bool

	be    ops.Backend
	ops   map[ops.ConvSpec]ops.Conv
	slots []convSlot
	dx    *tensor.Tensor // input gradient, shared by the slots (without a pool)
	pool  *gradPool
	dw    *tensor.Tensor // weight-gradient scratch, added into Weight.Grad
	db    *tensor.Tensor // bias-gradient scratch
}

type convSlot struct {
	spec  ops.ConvSpec
	x, y  *tensor.Tensor
	ready bool
}

// NewConv2d returns a convolution named name (its weight is "name.weight",
// its bias "name.bias") initialised like torchvision's ResNet convolutions:
// kaiming_normal_(mode="fan_out", nonlinearity="relu"); the bias, if any,
// starts at zero.
func NewConv2d(be ops.Backend, name string, in, out, kernel, stride, pad int, bias bool, rng *rand.Rand) (*Conv2d, error) {
	if be == nil || rng == nil {
		return nil, fmt.Errorf("nn: conv %s: nil backend or random source", name)
	}
	if in < 1 || out < 1 || kernel < 1 || stride < 1 || pad < 0 {
		return nil, fmt.Errorf("nn: conv %s: invalid in=%d out=%d kernel=%d stride=%d pad=%d", name, in, out, kernel, stride, pad)
	}
	c := &Conv2d{In: in, Out: out, Kernel: kernel, Stride: stride, Pad: pad, be: be, ops: map[ops.ConvSpec]ops.Conv{}}
	c.Weight = NewParam(name+".weight", KindWeight, out, in, kernel, kernel)
	kaimingNormalFanOut(c.Weight.Value.Data, out*kernel*kernel, rng)
	if bias {
		c.Bias = NewParam(name+".bias", KindBias, out)
	}
	return c, nil
}

func (c *Conv2d) op(spec ops.ConvSpec) (ops.Conv, error) {
	if op, ok := c.ops[spec]; ok {
		return op, nil
	}
	op, err := c.be.Conv(spec)
	if err != nil {
		return nil, fmt.Errorf("nn: conv %s: %w", c.Weight.Name, err)
	}
	c.ops[spec] = op
	return op, nil
}

func (c *Conv2d) bias() []float32 {
	if c.Bias == nil {
		return nil
	}
	return c.Bias.Value.Data
}

// Forward computes y = conv(x, w) + b for NHWC x [N, H, W, In].
func (c *Conv2d) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	if x == nil || len(x.Shape) != 4 || x.Shape[3] != c.In {
		return nil, fmt.Errorf("nn: conv %s: input %v, want [N H W %d]", c.Weight.Name, x, c.In)
	}
	s, err := slotAt(&c.slots, slot)
	if err != nil {
		return nil, err
	}
	spec := ops.ConvSpec{N: x.Shape[0], H: x.Shape[1], W: x.Shape[2], C: c.In, K: c.Out,
		KH: c.Kernel, KW: c.Kernel, Stride: c.Stride, Pad: c.Pad, Bias: c.Bias != nil}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("nn: conv %s: %w", c.Weight.Name, err)
	}
	op, err := c.op(spec)
	if err != nil {
		return nil, err
	}
	oh, ow := spec.OutHW()
	s.y = tensor.Ensure(s.y, spec.N, oh, ow, c.Out)
	b := c.bias()
	if err := op.Forward(x.Data, c.Weight.Value.Data, b, s.y.Data); err != nil {
		return nil, fmt.Errorf("nn: conv %s forward: %w", c.Weight.Name, err)
	}
	s.spec, s.x, s.ready = spec, x, true
	return s.y, nil
}

// Backward adds dL/dw (and dL/db) into the gradients and returns dL/dx,
// or nil when SkipInputGrad is set.
func (c *Conv2d) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	s, err := savedSlot(c.slots, slot, func(s *convSlot) bool { return s.ready }, "conv ", c.Weight.Name)
	if err != nil {
		return nil, err
	}
	if err := checkShape("conv ", c.Weight.Name, "dy", dy, s.y.Shape...); err != nil {
		return nil, err
	}
	op, err := c.op(s.spec)
	if err != nil {
		return nil, err
	}
	var dx []float32
	var dxT *tensor.Tensor
	if !c.SkipInputGrad {
		dxT = gradBuf(c.pool, &c.dx, s.x.Shape...)
		dx = dxT.Data
	}
	c.dw = tensor.Ensure(c.dw, c.Weight.Value.Shape...)
	var db []float32
	if c.Bias != nil {
		c.db = tensor.Ensure(c.db, c.Out)
		db = c.db.Data
	}
	if err := op.Backward(s.x.Data, c.Weight.Value.Data, dy.Data, dx, c.dw.Data, db); err != nil {
		return nil, fmt.Errorf("nn: conv %s backward: %w", c.Weight.Name, err)
	}
	if err := c.be.Add(c.Weight.Grad.Data, c.dw.Data, c.Weight.Grad.Data); err != nil {
		return nil, fmt.Errorf("nn: conv %s: accumulate dw: %w", c.Weight.Name, err)
	}
	if c.Bias != nil {
		if err := c.be.Add(c.Bias.Grad.Data, db, c.Bias.Grad.Data); err != nil {
			return nil, fmt.Errorf("nn: conv %s: accumulate db: %w", c.Weight.Name, err)
		}
	}
	s.ready = false
	if c.SkipInputGrad {
		return nil, nil
	}
	return dxT, nil
}

// Params returns the weight (and bias).
func (c *Conv2d) Params() []*Param {
	if c.Bias != nil {
		return []*Param{c.Weight, c.Bias}
	}
	return []*Param{c.Weight}
}

// Buffers returns nil: a convolution has no buffers.
func (c *Conv2d) Buffers() []*Buffer { return nil }

// SetTraining does nothing: a convolution behaves the same in both modes.
func (c *Conv2d) SetTraining(bool) {}
