package optim

import (
	"fmt"
	"math"

	"github.com/corinfomax/corinfomax/nn"
)

// LARS is solo-learn's LARS (solo/utils/lars.py, from PyTorch Lightning
// Bolts; dampening 0, eps 1e-8, no Nesterov). For every parameter, with
// ||.|| the Euclidean norm over the whole tensor and lr the learning rate
// of this step:
//
//	d = grad
//	if the parameter is adapted and ||w|| != 0 and ||grad|| != 0:
//	    lars_lr = eta * ||w|| / (||grad|| + wd * ||w|| + eps)
//	    if ClipLR: lars_lr = min(lars_lr / lr, 1)
//	    d = lars_lr * (grad + wd * w)
//	buf = d on the first step, else buf = momentum * buf + d
//	w = w - lr * buf
//
// Without ClipLR the rate of an adapted parameter is lr * lars_lr; with it
// (solo-learn's clip_lr, which all of solo-learn's LARS recipes set) it is
// min(lars_lr, lr): never above lr, and 1/lr times the unclipped rate where
// the clip does not bind.
//
// With ExcludeBiasAndBN, biases and batch-norm parameters (solo-learn's
// p.ndim == 1 test) are not adapted AND get no weight decay: d = grad. Note
// that, as in solo-learn, weight decay is also skipped for an adapted
// parameter whose weight or gradient norm is zero.
type LARS struct {
	Momentum, WeightDecay, Eta, Eps float64
	// ExcludeBiasAndBN is solo-learn's exclude_bias_n_norm, ClipLR its
	// clip_lr (lars_lr = min(lars_lr / lr, 1)).
	ExcludeBiasAndBN, ClipLR bool
	params                   []*nn.Param
	state                    slots
}

// NewLARS returns a LARS optimizer without the clip (set ClipLR for it;
// eta 0.02 is solo-learn's default in its recipes).
func NewLARS(params []*nn.Param, momentum, weightDecay, eta float64, excludeBiasAndBN bool) *LARS {
	return &LARS{Momentum: momentum, WeightDecay: weightDecay, Eta: eta, Eps: 1e-8,
		ExcludeBiasAndBN: excludeBiasAndBN, params: params, state: newSlots(params, "momentum_buffer")}
}

// Name returns "lars".
func (o *LARS) Name() string { return "lars" }

// excluded reports whether p skips the LARS adaptation and weight decay.
func (o *LARS) excluded(p *nn.Param) bool {
	return o.ExcludeBiasAndBN && p.Kind != nn.KindWeight
}

// Step applies one update.
func (o *LARS) Step(lr float64) error {
	if err := checkParams(o.params); err != nil {
		return fmt.Errorf("lars: %w", err)
	}
	wd, mom := o.WeightDecay, o.Momentum
	for i, p := range o.params {
		w, grad := p.Value.Data, p.Grad.Data
		scale, decay := 1.0, 0.0
		if !o.excluded(p) {
			wNorm, gNorm := norm(w), norm(grad)
			if wNorm != 0 && gNorm != 0 {
				scale = o.Eta * wNorm / (gNorm + wd*wNorm + o.Eps)
				if o.ClipLR {
					// At lr 0, scale/lr is +Inf and the clip gives 1, as in PyTorch.
					scale = math.Min(scale/lr, 1)
				}
				decay = wd
			}
		}
		var buf []float32
		existed := false
		if mom != 0 {
			buf, existed = o.state.get("momentum_buffer", i)
		}
		for j := range w {
			d := scale * (float64(grad[j]) + decay*float64(w[j]))
			if mom != 0 {
				if existed {
					d = mom*float64(buf[j]) + d
				}
				buf[j] = float32(d)
			}
			w[j] = float32(float64(w[j]) - lr*d)
		}
	}
	return nil
}

func norm(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// ZeroGrad sets every gradient to zero.
func (o *LARS) ZeroGrad() { nn.ZeroGrad(o.params) }

// State returns the momentum buffers ("momentum_buffer.<param>").
func (o *LARS) State() []StateTensor { return o.state.state() }

// SetState restores momentum buffers.
func (o *LARS) SetState(st []StateTensor) error {
	if err := o.state.setState(st, nil); err != nil {
		return fmt.Errorf("lars: %w", err)
	}
	return nil
}
