package nn

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
)

// Linear is a fully connected layer y = x w^T + b on [N, In] inputs, with
// weight [Out, In] and an optional bias [Out].
type Linear struct {
	In, Out int
	Weight  *Param
	Bias    *Param // nil without bias

	be    ops.Backend
	ops   map[ops.LinearSpec]ops.Linear
	slots []linearSlot
	dx    *tensor.Tensor // input gradient, shared by the slots (without a pool)
	pool  *gradPool
	dw    *tensor.Tensor // scratch, added into Weight.Grad
	db    *tensor.Tensor // scratch, added into Bias.Grad
}

type linearSlot struct {
	spec  ops.LinearSpec
	x, y  *tensor.Tensor
	ready bool
}

// NewLinear returns a linear layer named name ("fc": "fc.weight",
// "fc.bias") with nn.Linear's default initialisation: weight and bias from
// U(-1/sqrt(in), 1/sqrt(in)).
func NewLinear(be ops.Backend, name string, in, out int, bias bool, rng *rand.Rand) (*Linear, error) {
	if be == nil || rng == nil {
		return nil, fmt.Errorf("nn: linear %s: nil backend or random source", name)
	}
	if in < 1 || out < 1 {
		return nil, fmt.Errorf("nn: linear %s: invalid in=%d out=%d", name, in, out)
	}
	l := &Linear{In: in, Out: out, be: be, ops: map[ops.LinearSpec]ops.Linear{}}
	bound := 1 / math.Sqrt(float64(in))
	l.Weight = NewParam(name+".weight", KindWeight, out, in)
	uniform(l.Weight.Value.Data, bound, rng)
	if bias {
		l.Bias = NewParam(name+".bias", KindBias, out)
		uniform(l.Bias.Value.Data, bound, rng)
	}
	return l, nil
}

func (l *Linear) name() string { return "linear " + l.Weight.Name }

func (l *Linear) op(spec ops.LinearSpec) (ops.Linear, error) {
	if op, ok := l.ops[spec]; ok {
		return op, nil
	}
	op, err := l.be.Linear(spec)
	if err != nil {
		return nil, fmt.Errorf("nn: %s: %w", l.name(), err)
	}
	l.ops[spec] = op
	return op, nil
}

// Forward computes y = x w^T + b for x [N, In].
func (l *Linear) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	if x == nil || len(x.Shape) != 2 || x.Shape[1] != l.In || x.Shape[0] < 1 {
		return nil, fmt.Errorf("nn: %s: input %v, want [N %d]", l.name(), x, l.In)
	}
	s, err := slotAt(&l.slots, slot)
	if err != nil {
		return nil, err
	}
	spec := ops.LinearSpec{N: x.Shape[0], In: l.In, Out: l.Out, Bias: l.Bias != nil}
	op, err := l.op(spec)
	if err != nil {
		return nil, err
	}
	s.y = tensor.Ensure(s.y, spec.N, l.Out)
	var b []float32
	if l.Bias != nil {
		b = l.Bias.Value.Data
	}
	if err := op.Forward(x.Data, l.Weight.Value.Data, b, s.y.Data); err != nil {
		return nil, fmt.Errorf("nn: %s forward: %w", l.name(), err)
	}
	s.spec, s.x, s.ready = spec, x, true
	return s.y, nil
}

// Backward adds dL/dw (and dL/db) into the gradients and returns dL/dx.
func (l *Linear) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	s, err := savedSlot(l.slots, slot, func(s *linearSlot) bool { return s.ready }, "linear ", l.Weight.Name)
	if err != nil {
		return nil, err
	}
	if err := checkShape("linear ", l.Weight.Name, "dy", dy, s.y.Shape...); err != nil {
		return nil, err
	}
	op, err := l.op(s.spec)
	if err != nil {
		return nil, err
	}
	dx := gradBuf(l.pool, &l.dx, s.x.Shape...)
	l.dw = tensor.Ensure(l.dw, l.Out, l.In)
	var db []float32
	if l.Bias != nil {
		l.db = tensor.Ensure(l.db, l.Out)
		db = l.db.Data
	}
	if err := op.Backward(s.x.Data, l.Weight.Value.Data, dy.Data, dx.Data, l.dw.Data, db); err != nil {
		return nil, fmt.Errorf("nn: %s backward: %w", l.name(), err)
	}
	if err := l.be.Add(l.Weight.Grad.Data, l.dw.Data, l.Weight.Grad.Data); err != nil {
		return nil, fmt.Errorf("nn: %s: accumulate dw: %w", l.name(), err)
	}
	if l.Bias != nil {
		if err := l.be.Add(l.Bias.Grad.Data, db, l.Bias.Grad.Data); err != nil {
			return nil, fmt.Errorf("nn: %s: accumulate db: %w", l.name(), err)
		}
	}
	s.ready = false
	return dx, nil
}

// Params returns the weight (and bias).
func (l *Linear) Params() []*Param {
	if l.Bias != nil {
		return []*Param{l.Weight, l.Bias}
	}
	return []*Param{l.Weight}
}

// Buffers returns nil: a linear layer has no buffers.
func (l *Linear) Buffers() []*Buffer { return nil }

// SetTraining does nothing: a linear layer behaves the same in both modes.
func (l *Linear) SetTraining(bool) {}
