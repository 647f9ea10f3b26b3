package ssl

import "fmt"

// Branches says which extra parts of the network an asymmetric objective
// needs. The symmetric methods (CorInfoMax, Barlow Twins, VICReg, SimCLR,
// W-MSE) need neither: their loss reads the projector outputs of both views
// and sends a gradient into both.
type Branches struct {
	// Predictor: the online output of a view is the predictor's output p
	// (an MLP on the projector output z, trained with the network) instead
	// of z. BYOL and SimSiam.
	Predictor bool
	// Momentum: a view's target is the projector output of the momentum
	// network (an exponential moving average of the online backbone and
	// projector, never trained by gradient). Without it the target is the
	// online projector output of the view, detached (SimSiam).
	Momentum bool
}

// Targeted is an asymmetric objective (BYOL, SimSiam, MoCo v2): it compares
// each view's online output with targets computed without gradient, and
// its gradient flows into the online outputs only.
type Targeted interface {
	// Name returns the method's name as listed by Names.
	Name() string
	// Branches says where the online outputs and the targets come from.
	Branches() Branches
	// TargetLoss computes the objective for optimizer step `step`
	// (1-based) from the online outputs o1, o2 and the targets t1, t2 of
	// views 1 and 2 (each n x d, row-major; t_v is computed from view v)
	// and OVERWRITES g1, g2 with dL/do1, dL/do2. The targets get no
	// gradient. It rejects NaN/Inf input with an error naming the method,
	// the step and the tensor. Stateful methods (MoCo's queue) update their
	// running state only when the call succeeds.
	TargetLoss(step int, o1, o2, t1, t2 []float32, n, d int, g1, g2 []float32) (Result, error)
}

// Objective is either a Method or a Targeted method: what NewObjective
// returns. Use a type switch (or AsMethod/AsTargeted) to tell them apart.
type Objective interface {
	Name() string
}

// NewTargeted returns the named asymmetric method with the given options,
// validated like New's.
func NewTargeted(method string, opts Options) (Targeted, error) {
	r, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	if r.NewTargeted == nil {
		return nil, fmt.Errorf("ssl: %s is a symmetric method: build it with ssl.New", method)
	}
	res, err := resolve(r, opts)
	if err != nil {
		return nil, err
	}
	full := opts.Clone()
	full.Values = res.vals
	return r.NewTargeted(full)
}

// NewObjective returns the named method, symmetric (a Method) or
// asymmetric (a Targeted), with the given options.
func NewObjective(method string, opts Options) (Objective, error) {
	r, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	if r.NewTargeted != nil {
		return NewTargeted(method, opts)
	}
	return New(method, opts)
}

// BranchesOf returns the branches the named method needs (none for a
// symmetric method).
func BranchesOf(method string) (Branches, error) {
	r, err := Lookup(method)
	if err != nil {
		return Branches{}, err
	}
	return r.Branches, nil
}
