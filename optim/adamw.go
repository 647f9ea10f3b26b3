package optim

import (
	"fmt"
	"math"

	"github.com/corinfomax/corinfomax/nn"
)

// AdamW is PyTorch's torch.optim.AdamW (amsgrad false). At step t = 1, 2, ...:
//
//	w = w * (1 - lr * wd)
//	m = beta1 * m + (1 - beta1) * grad
//	v = beta2 * v + (1 - beta2) * grad^2
//	w = w - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	params                         []*nn.Param
	step                           int
	state                          slots
}

// NewAdamW returns an AdamW optimizer (PyTorch defaults: 0.9, 0.999, 1e-8,
// 1e-2).
func NewAdamW(params []*nn.Param, beta1, beta2, eps, weightDecay float64) *AdamW {
	return &AdamW{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay,
		params: params, state: newSlots(params, "exp_avg", "exp_avg_sq")}
}

// Name returns "adamw".
func (o *AdamW) Name() string { return "adamw" }

// Step applies one update.
func (o *AdamW) Step(lr float64) error {
	if err := checkParams(o.params); err != nil {
		return fmt.Errorf("adamw: %w", err)
	}
	o.step++
	t := float64(o.step)
	b1, b2 := o.Beta1, o.Beta2
	bc1 := 1 - math.Pow(b1, t)
	sqrtBC2 := math.Sqrt(1 - math.Pow(b2, t))
	for i, p := range o.params {
		w, grad := p.Value.Data, p.Grad.Data
		m, _ := o.state.get("exp_avg", i)
		v, _ := o.state.get("exp_avg_sq", i)
		for j := range w {
			g := float64(grad[j])
			wj := float64(w[j]) * (1 - lr*o.WeightDecay)
			mj := b1*float64(m[j]) + (1-b1)*g
			vj := b2*float64(v[j]) + (1-b2)*g*g
			m[j], v[j] = float32(mj), float32(vj)
			w[j] = float32(wj - (lr/bc1)*mj/(math.Sqrt(vj)/sqrtBC2+o.Eps))
		}
	}
	return nil
}

// ZeroGrad sets every gradient to zero.
func (o *AdamW) ZeroGrad() { nn.ZeroGrad(o.params) }

// State returns "step" (one value, the number of steps taken) and the
// moments "exp_avg.<param>" and "exp_avg_sq.<param>".
func (o *AdamW) State() []StateTensor {
	return append([]StateTensor{{Name: "step", Data: []float32{float32(o.step)}}}, o.state.state()...)
}

// SetState restores the step count and moments.
func (o *AdamW) SetState(st []StateTensor) error {
	step := 0
	err := o.state.setState(st, func(t StateTensor) (bool, error) {
		if t.Name != "step" {
			return false, nil
		}
		if len(t.Data) != 1 || t.Data[0] < 0 || t.Data[0] != float32(int(t.Data[0])) {
			return true, fmt.Errorf("optim: invalid step state %v", t.Data)
		}
		step = int(t.Data[0])
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("adamw: %w", err)
	}
	o.step = step
	return nil
}
