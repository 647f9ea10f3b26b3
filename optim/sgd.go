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
	mom, wd := o.Momentum, o.WeightDecay
	for i, p := range o.params {
		w, grad := p.Value.Data, p.Grad.Data
		if mom == 0 {
			for j := range w {
				g := float64(grad[j]) + wd*float64(w[j])
				w[j] = float32(float64(w[j]) - lr*g)
			}
			continue
		}
		buf, existed := o.state.get("momentum_buffer", i)
		for j := range w {
			g := float64(grad[j]) + wd*float64(w[j])
			b := g
			if existed {
				b = mom*float64(buf[j]) + g
			}
			buf[j] = float32(b)
			d := b
			if o.Nesterov {
				d = g + mom*b
			}
			w[j] = float32(float64(w[j]) - lr*d)
		}
	}
	return nil
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
