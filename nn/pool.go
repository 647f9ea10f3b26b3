package nn

import (
	"fmt"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
)

// MaxPool2d is max pooling over NHWC activations (the ImageNet stem's 3x3,
// stride 2, padding 1).
type MaxPool2d struct {
	Kernel, Stride, Pad int

	be    ops.Backend
	ops   map[ops.PoolSpec]ops.MaxPool
	slots []poolSlot
	dx    *tensor.Tensor // input gradient, shared by the slots (without a pool)
	pool  *gradPool
}

type poolSlot struct {
	spec  ops.PoolSpec
	y     *tensor.Tensor
	ws    []byte
	ready bool
}

// NewMaxPool2d returns a max pooling layer.
func NewMaxPool2d(be ops.Backend, kernel, stride, pad int) (*MaxPool2d, error) {
	if be == nil {
		return nil, fmt.Errorf("nn: max pool: nil backend")
	}
	if kernel < 1 || stride < 1 || pad < 0 || 2*pad > kernel {
		return nil, fmt.Errorf("nn: max pool: invalid kernel=%d stride=%d pad=%d", kernel, stride, pad)
	}
	return &MaxPool2d{Kernel: kernel, Stride: stride, Pad: pad, be: be, ops: map[ops.PoolSpec]ops.MaxPool{}}, nil
}

func (p *MaxPool2d) op(spec ops.PoolSpec) (ops.MaxPool, error) {
	if op, ok := p.ops[spec]; ok {
		return op, nil
	}
	op, err := p.be.MaxPool(spec)
	if err != nil {
		return nil, fmt.Errorf("nn: max pool: %w", err)
	}
	p.ops[spec] = op
	return op, nil
}

// Forward pools x [N, H, W, C].
func (p *MaxPool2d) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	if x == nil || len(x.Shape) != 4 {
		return nil, fmt.Errorf("nn: max pool: input %v, want [N H W C]", x)
	}
	s, err := slotAt(&p.slots, slot)
	if err != nil {
		return nil, err
	}
	spec := ops.PoolSpec{N: x.Shape[0], H: x.Shape[1], W: x.Shape[2], C: x.Shape[3], Kernel: p.Kernel, Stride: p.Stride, Pad: p.Pad}
	oh, ow := spec.OutHW()
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("nn: max pool: input %v too small", x.Shape)
	}
	op, err := p.op(spec)
	if err != nil {
		return nil, err
	}
	s.y = tensor.Ensure(s.y, spec.N, oh, ow, spec.C)
	if n := op.WorkspaceBytes(); cap(s.ws) >= n {
		s.ws = s.ws[:n]
	} else {
		s.ws = make([]byte, n)
	}
	if err := op.Forward(x.Data, s.y.Data, s.ws); err != nil {
		return nil, fmt.Errorf("nn: max pool forward: %w", err)
	}
	s.spec, s.ready = spec, true
	return s.y, nil
}

// Backward routes dy to the maxima and returns dL/dx.
func (p *MaxPool2d) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	s, err := savedSlot(p.slots, slot, func(s *poolSlot) bool { return s.ready }, "max pool", "")
	if err != nil {
		return nil, err
	}
	if err := checkShape("max pool", "", "dy", dy, s.y.Shape...); err != nil {
		return nil, err
	}
	op, err := p.op(s.spec)
	if err != nil {
		return nil, err
	}
	dx := gradBuf(p.pool, &p.dx, s.spec.N, s.spec.H, s.spec.W, s.spec.C)
	if err := op.Backward(dy.Data, s.ws, dx.Data); err != nil {
		return nil, fmt.Errorf("nn: max pool backward: %w", err)
	}
	s.ready = false
	return dx, nil
}

// Params returns nil.
func (p *MaxPool2d) Params() []*Param { return nil }

// Buffers returns nil.
func (p *MaxPool2d) Buffers() []*Buffer { return nil }

// SetTraining does nothing.
func (p *MaxPool2d) SetTraining(bool) {}

// GlobalAvgPool averages NHWC activations [N, H, W, C] over H and W into
// [N, C] (torchvision's avgpool + flatten).
type GlobalAvgPool struct {
	be    ops.Backend
	slots []gapSlot
	dx    *tensor.Tensor // input gradient, shared by the slots (without a pool)
	pool  *gradPool
}

type gapSlot struct {
	n, h, w, c int
	y          *tensor.Tensor
	ready      bool
}

// NewGlobalAvgPool returns a global average pooling layer.
func NewGlobalAvgPool(be ops.Backend) *GlobalAvgPool { return &GlobalAvgPool{be: be} }

// Forward averages x [N, H, W, C] into [N, C].
func (g *GlobalAvgPool) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	if g.be == nil {
		return nil, fmt.Errorf("nn: global average pool: nil backend")
	}
	if x == nil || len(x.Shape) != 4 {
		return nil, fmt.Errorf("nn: global average pool: input %v, want [N H W C]", x)
	}
	s, err := slotAt(&g.slots, slot)
	if err != nil {
		return nil, err
	}
	s.n, s.h, s.w, s.c = x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	s.y = tensor.Ensure(s.y, s.n, s.c)
	if err := g.be.GlobalAvgPool(x.Data, s.n, s.h*s.w, s.c, s.y.Data); err != nil {
		return nil, fmt.Errorf("nn: global average pool forward: %w", err)
	}
	s.ready = true
	return s.y, nil
}

// Backward spreads dy [N, C] evenly over the H*W positions.
func (g *GlobalAvgPool) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	s, err := savedSlot(g.slots, slot, func(s *gapSlot) bool { return s.ready }, "global average pool", "")
	if err != nil {
		return nil, err
	}
	if err := checkShape("global average pool", "", "dy", dy, s.n, s.c); err != nil {
		return nil, err
	}
	dx := gradBuf(g.pool, &g.dx, s.n, s.h, s.w, s.c)
	if err := g.be.GlobalAvgPoolBackward(dy.Data, s.n, s.h*s.w, s.c, dx.Data); err != nil {
		return nil, fmt.Errorf("nn: global average pool backward: %w", err)
	}
	s.ready = false
	return dx, nil
}

// Params returns nil.
func (g *GlobalAvgPool) Params() []*Param { return nil }

// Buffers returns nil.
func (g *GlobalAvgPool) Buffers() []*Buffer { return nil }

// SetTraining does nothing.
func (g *GlobalAvgPool) SetTraining(bool) {}
