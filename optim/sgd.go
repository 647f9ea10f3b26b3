package optim

import (
	"fmt"

	"github.com/corinfomax/corinfomax/nn"
)

// SGD is PyTorch's torch.optim.SGD (dampening 0):
//
//	g = grad + wd * w
//	buf = g on the first step, else buf = momentum * buf + g
//	d = g + momentum * buf (Nesterov) or d = buf
//	w = w - lr * d
//
// With momentum 0 no buffer is kept and d = g.
type SGD struct {
	Momentum, WeightDecay float64
	Nesterov              bool
	params                []*nn.Param
	state                 slots
}

// NewSGD returns an SGD optimizer over params.
func NewSGD(params []*nn.Param, momentum, weightDecay float64, nesterov bool) *SGD {
	return &SGD{Momentum: momentum, WeightDecay: weightDecay, Nesterov: nesterov,
		params: params, state: newSlots(params, "momentum_buffer")}
}

// Name returns "sgd".
func (o *SGD) Name() string { return "sgd" }

// Step applies one update.
func (o *SGD) Step(lr float64) error {
	if err := checkParams(o.params); err != nil {
		return fmt.Errorf("sgd: %w", err)
	}
	for i, p := range o.params {
		var buf []float32
		existed := false
		if o.Momentum != 0 {
			buf, existed = o.state.get("momentum_buffer", i)
		}
		SGDUpdate(p.Value.Data, p.Grad.Data, buf, existed, lr, o.Momentum, o.WeightDecay, o.Nesterov)
	}
	return nil
}

// SGDUpdate applies SGD's rule (see SGD) to one tensor w with gradient
// grad, in float64 arithmetic whatever T is. buf is the momentum buffer
// (ignored when momentum is 0); hasBuf false means the first step, where
// the buffer is set to the gradient. The linear probe of package eval runs
// the same rule on its float64 weights.
func SGDUpdate[T ~float32 | ~float64](w, grad, buf []T, hasBuf bool, lr, momentum, weightDecay float64, nesterov bool) {
	if momentum == 0 {
		for j := range w {
			g := float64(grad[j]) + weightDecay*float64(w[j])
			w[j] = T(float64(w[j]) - lr*g)
		}
		return
	}
	for j := range w {
		g := float64(grad[j]) + weightDecay*float64(w[j])
		b := g
		if hasBuf {
			b = momentum*float64(buf[j]) + g
		}
		buf[j] = T(b)
		d := b
		if nesterov {
			d = g + momentum*b
		}
		w[j] = T(float64(w[j]) - lr*d)
	}
}

// ZeroGrad sets every gradient to zero.
func (o *SGD) ZeroGrad() { nn.ZeroGrad(o.params) }

// State returns the momentum buffers ("momentum_buffer.<param>").
func (o *SGD) State() []StateTensor { return o.state.state() }

// SetState restores momentum buffers.
func (o *SGD) SetState(st []StateTensor) error {
	if err := o.state.setState(st, nil); err != nil {
		return fmt.Errorf("sgd: %w", err)
	}
	return nil
}
