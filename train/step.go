package train

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/corinfomax/corinfomax/dist"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/tensor"
)

// Step is one optimizer step of two-view self-supervised training, the
// code the trainer runs and `bench step` times. For a symmetric objective
// (CorInfoMax, Barlow Twins, VICReg, SimCLR, W-MSE):
//
//	z_v = projector(backbone(x_v))     v = 1, 2: one forward pass per view,
//	                                   so batch-norm statistics are per view
//	L, dL/dz_1, dL/dz_2 = method(z_1, z_2)
//	backward(view 1, dL/dz_1); backward(view 2, dL/dz_2)
//	optimizer update at the learning rate lr
//
// For an asymmetric one (ssl.Targeted: BYOL, SimSiam, MoCo v2) the online
// output o_v is the predictor's p_v = predictor(z_v) when the method has a
// predictor, else z_v; the target t_v is the momentum network's projector
// output of x_v (BYOL, MoCo) or z_v itself, detached (SimSiam):
//
//	L, dL/do_1, dL/do_2 = method(o_1, o_2, t_1, t_2)
//	backward through the predictor (if any), projector and backbone
//	optimizer update; then the momentum network's EMA (Momentum.Update)
//
// A Step owns the gradient buffers of the online outputs and keeps them
// across steps.
type Step struct {
	Net *nn.Network
	// Method is the symmetric objective, or nil when Targeted is set.
	Method ssl.Method
	// Targeted is the asymmetric objective, or nil when Method is set.
	Targeted ssl.Targeted
	// Momentum is the momentum network (Targeted methods whose Branches
	// have Momentum); updated after every optimizer step.
	Momentum *nn.Momentum
	Opt      optim.Optimizer
	// Grads, when set, sums the parameter gradients over the ranks of a
	// data-parallel run between the backward passes and the update.
	Grads *dist.GradReducer
	// KeepFeatures makes Run copy the first view's backbone features (for
	// the online probe; Features returns them).
	KeepFeatures bool

	h0 *tensor.Tensor
	t0 *tensor.Tensor // view 1's momentum target, copied out of the shared slot

	g [2]*tensor.Tensor
	z [2]*tensor.Tensor
	// objective is how long the last call spent in the objective.
	objective time.Duration
}

// NewStep returns the step that trains net with the objective method (an
// ssl.Method or an ssl.Targeted) and opt. A Targeted method with a
// momentum network needs Step.Momentum set before Run.
func NewStep(net *nn.Network, method ssl.Objective, opt optim.Optimizer) *Step {
	s := &Step{Net: net, Opt: opt}
	switch m := method.(type) {
	case ssl.Method:
		s.Method = m
	case ssl.Targeted:
		s.Targeted = m
	}
	return s
}

// name is the objective's name.
func (s *Step) name() string {
	if s.Targeted != nil {
		return s.Targeted.Name()
	}
	if s.Method != nil {
		return s.Method.Name()
	}
	return "(no objective)"
}

// DivergenceError reports a non-finite loss or gradient. Nothing was
// updated: the weights are those before the step (the batch-norm running
// statistics and the method's running state did advance; the trainer
// rolls them back when it skips the step).
type DivergenceError struct {
	Step int
	Err  error
}

func (e *DivergenceError) Error() string { return e.Err.Error() }
func (e *DivergenceError) Unwrap() error { return e.Err }

// Run performs optimizer step number step (1-based) on the views x[0] and
// x[1] (each N x H x W x C) at learning rate lr. A non-finite loss or
// gradient returns a *DivergenceError before the update; non-finite
// weights after the update return a plain error.
func (s *Step) Run(step int, x [2]*tensor.Tensor, lr float64) (ssl.Result, error) {
	if (s.Method == nil) == (s.Targeted == nil) {
		return ssl.Result{}, fmt.Errorf("step %d: the step needs exactly one objective, symmetric or targeted", step)
	}
	var br ssl.Branches
	if s.Targeted != nil {
		br = s.Targeted.Branches()
		if br.Momentum && s.Momentum == nil {
			return ssl.Result{}, fmt.Errorf("step %d: %s needs a momentum network", step, s.Targeted.Name())
		}
		if br.Predictor && s.Net.Predictor == nil {
			return ssl.Result{}, fmt.Errorf("step %d: %s needs a predictor", step, s.Targeted.Name())
		}
	}
	s.Net.ZeroGrad()
	var o, t [2]*tensor.Tensor // online outputs and targets (Targeted)
	for v := 0; v < 2; v++ {
		hv, zv, err := s.Net.Forward(v, x[v])
		if err != nil {
			return ssl.Result{}, fmt.Errorf("step %d: forward pass of view %d: %w", step, v+1, err)
		}
		s.z[v], o[v], t[v] = zv, zv, zv
		if v == 0 && s.KeepFeatures {
			s.h0 = tensor.Ensure(s.h0, hv.Shape...)
			copy(s.h0.Data, hv.Data)
		}
		if br.Predictor {
			if o[v], err = s.Net.Predict(v, zv); err != nil {
				return ssl.Result{}, fmt.Errorf("step %d: predictor of view %d: %w", step, v+1, err)
			}
		}
		if br.Momentum {
			// One slot for both views: the momentum network never runs
			// backward, so view 2 may reuse view 1's activations (half its
			// memory); view 1's target is copied out first.
			if _, t[v], err = s.Momentum.Net.Forward(0, x[v]); err != nil {
				return ssl.Result{}, fmt.Errorf("step %d: momentum network on view %d: %w", step, v+1, err)
			}
			if v == 0 {
				s.t0 = tensor.Ensure(s.t0, t[0].Shape...)
				copy(s.t0.Data, t[0].Data)
				t[0] = s.t0
			}
		}
	}
	n, d := o[0].Shape[0], o[0].Shape[1]
	s.g[0] = tensor.Ensure(s.g[0], n, d)
	s.g[1] = tensor.Ensure(s.g[1], n, d)
	start := time.Now()
	var res ssl.Result
	var err error
	if s.Targeted != nil {
		if t[0].Shape[1] != d {
			return res, fmt.Errorf("step %d: %s: targets of %d columns for online outputs of %d", step, s.Targeted.Name(), t[0].Shape[1], d)
		}
		res, err = s.Targeted.TargetLoss(step, o[0].Data, o[1].Data, t[0].Data, t[1].Data, n, d, s.g[0].Data, s.g[1].Data)
	} else {
		res, err = s.Method.Loss(step, o[0].Data, o[1].Data, n, d, s.g[0].Data, s.g[1].Data)
	}
	s.objective = time.Since(start)
	if err == nil && (math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0)) {
		err = fmt.Errorf("step %d: the %s loss is %v", step, s.name(), res.Loss)
	}
	if err != nil {
		return res, &DivergenceError{Step: step, Err: err}
	}
	for v := 0; v < 2; v++ {
		var err error
		if br.Predictor {
			err = s.Net.BackwardPredicted(v, s.g[v])
		} else {
			err = s.Net.Backward(v, s.g[v])
		}
		if err != nil {
			return res, fmt.Errorf("step %d: backward pass of view %d: %w", step, v+1, err)
		}
	}
	if s.Grads != nil {
		ps := s.Net.Params()
		gs := make([][]float32, len(ps))
		for i, p := range ps {
			gs[i] = p.Grad.Data
		}
		if err := s.Grads.SumAll(gs); err != nil {
			return res, fmt.Errorf("step %d: %w", step, err)
		}
	}
	if name, ok := firstNonFinite(s.Net.Params(), true); !ok {
		return res, &DivergenceError{Step: step, Err: fmt.Errorf("step %d: the gradient of %s is not finite", step, name)}
	}
	if err := s.Opt.Step(lr); err != nil {
		return res, fmt.Errorf("step %d: optimizer: %w", step, err)
	}
	if name, ok := firstNonFinite(s.Net.Params(), false); !ok {
		return res, fmt.Errorf("step %d: the weights of %s became non-finite after the update (learning rate %g)", step, name, lr)
	}
	if br.Momentum {
		s.Momentum.Update(s.Momentum.Tau(step))
	}
	return res, nil
}

// Features returns the first view's backbone features of the last step
// (nil unless KeepFeatures is set).
func (s *Step) Features() *tensor.Tensor { return s.h0 }

// Z returns view v's (0 or 1) projector output of the last step.
func (s *Step) Z(v int) *tensor.Tensor { return s.z[v] }

// ObjectiveTime is how long the last Run spent in the objective.
func (s *Step) ObjectiveTime() time.Duration { return s.objective }

// isDivergence reports whether err is a *DivergenceError.
func isDivergence(err error) bool {
	var de *DivergenceError
	return errors.As(err, &de)
}

// firstNonFinite returns the name of the first parameter whose gradient
// (grad true) or value has a NaN or Inf, and false; or "", true.
func firstNonFinite(params []*nn.Param, grad bool) (string, bool) {
	for _, p := range params {
		t := p.Value
		if grad {
			t = p.Grad
		}
		if !finite(t.Data) {
			return p.Name, false
		}
	}
	return "", true
}

func finite(x []float32) bool {
	var s float32
	for _, v := range x {
		s += v * 0 // NaN*0 = NaN, Inf*0 = NaN
	}
	return s == 0
}
