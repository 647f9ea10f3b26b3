package nn

import (
	"fmt"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
)

// ReLU is y = max(x, 0).
//
// With InPlace set, Forward overwrites its input and returns it, saving an
// activation buffer. That is only correct when the producer of x does not
// need its own output in its backward pass, which holds for Conv2d,
// BatchNorm and Linear (they keep their inputs, not their outputs), and
// when the caller does not need x afterwards.
//
// With InPlaceGrad set, Backward writes dL/dx over dy and returns dy's
// tensor (only for a caller that does not read dy afterwards); otherwise
// Backward never writes into dy.
type ReLU struct {
	InPlace     bool
	InPlaceGrad bool

	be    ops.Backend
	slots []reluSlot
	dx    *tensor.Tensor // input gradient, shared by the slots (without a pool)
	pool  *gradPool
}

type reluSlot struct {
	y     *tensor.Tensor
	ready bool
}

// NewReLU returns a ReLU (not in place).
func NewReLU(be ops.Backend) *ReLU { return &ReLU{be: be} }

// Forward computes y = max(x, 0).
func (r *ReLU) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	if r.be == nil {
		return nil, fmt.Errorf("nn: relu: nil backend")
	}
	if x == nil {
		return nil, fmt.Errorf("nn: relu: nil input")
	}
	s, err := slotAt(&r.slots, slot)
	if err != nil {
		return nil, err
	}
	if r.InPlace {
		s.y = x
	} else {
		if s.y == x { // the layer was switched from in place: do not reuse x's storage
			s.y = nil
		}
		s.y = tensor.Ensure(s.y, x.Shape...)
	}
	if err := r.be.ReLU(x.Data, s.y.Data); err != nil {
		return nil, fmt.Errorf("nn: relu forward: %w", err)
	}
	s.ready = true
	return s.y, nil
}

// Backward returns dL/dx = dy where y > 0, else 0.
func (r *ReLU) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	s, err := savedSlot(r.slots, slot, func(s *reluSlot) bool { return s.ready }, "relu", "")
	if err != nil {
		return nil, err
	}
	if err := checkShape("relu", "", "dy", dy, s.y.Shape...); err != nil {
		return nil, err
	}
	dx := dy
	if !r.InPlaceGrad {
		dx = gradBuf(r.pool, &r.dx, dy.Shape...)
	}
	if err := r.be.ReLUBackward(s.y.Data, dy.Data, dx.Data); err != nil {
		return nil, fmt.Errorf("nn: relu backward: %w", err)
	}
	s.ready = false
	return dx, nil
}

// Params returns nil.
func (r *ReLU) Params() []*Param { return nil }

// Buffers returns nil.
func (r *ReLU) Buffers() []*Buffer { return nil }

// SetTraining does nothing.
func (r *ReLU) SetTraining(bool) {}
