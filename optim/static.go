package optim

import (
	"fmt"
	"strings"
)

// StaticPrefix names the state tensors of Static's fixed-rate optimizer.
const StaticPrefix = "static."

// Static runs two optimizers over disjoint sets of parameters: Main at the
// scheduled learning rate Step receives, Fixed at the constant rate LR,
// whatever the schedule says. It is solo-learn's "static_lr" parameter
// group: SimSiam trains its predictor at a fixed rate (Chen & He 2021,
// section 4.2; solo/methods/simsiam.py learnable_params). The state of
// Fixed is saved under StaticPrefix.
type Static struct {
	Main, Fixed Optimizer
	LR          float64
}

// Name returns the main optimizer's name.
func (o *Static) Name() string { return o.Main.Name() }

// Step updates Main's parameters at lr and Fixed's at o.LR.
func (o *Static) Step(lr float64) error {
	if err := o.Main.Step(lr); err != nil {
		return err
	}
	if err := o.Fixed.Step(o.LR); err != nil {
		return fmt.Errorf("fixed-rate parameters: %w", err)
	}
	return nil
}

// ZeroGrad sets every gradient of both to zero.
func (o *Static) ZeroGrad() {
	o.Main.ZeroGrad()
	o.Fixed.ZeroGrad()
}

// State returns Main's state, then Fixed's under StaticPrefix.
func (o *Static) State() []StateTensor {
	st := o.Main.State()
	for _, t := range o.Fixed.State() {
		st = append(st, StateTensor{Name: StaticPrefix + t.Name, Data: t.Data})
	}
	return st
}

// SetState hands each tensor to the optimizer that wrote it.
func (o *Static) SetState(st []StateTensor) error {
	var main, fixed []StateTensor
	for _, t := range st {
		if name, ok := strings.CutPrefix(t.Name, StaticPrefix); ok {
			fixed = append(fixed, StateTensor{Name: name, Data: t.Data})
		} else {
			main = append(main, t)
		}
	}
	if err := o.Main.SetState(main); err != nil {
		return err
	}
	if err := o.Fixed.SetState(fixed); err != nil {
		return fmt.Errorf("fixed-rate parameters: %w", err)
	}
	return nil
}
