package ssl

// NameSimSiam is SimSiam's registered name.
const NameSimSiam = "simsiam"

// SimSiamConfig holds what SimSiam needs besides its inputs: SimSiam has
// no hyper-parameter of its own. Gather gathers the inputs across
// data-parallel workers (nil: one worker).
type SimSiamConfig struct {
	Gather GatherFunc
}

var simSiamRegistration = Registration{
	Name:    NameSimSiam,
	Summary: "simple Siamese networks: a predictor against the other view's stop-gradient projection (Chen & He, CVPR 2021)",
	NewTargeted: func(o Options) (Targeted, error) {
		return NewSimSiam(SimSiamConfig{Gather: o.Gather})
	},
	Branches: Branches{Predictor: true, Momentum: false},
}

// SimSiam is the objective of Chen and He, "Exploring Simple Siamese
// Representation Learning" (CVPR 2021), as solo-learn's simsiam_loss_func
// and solo/methods/simsiam.py compute it: the online output o_v of a view
// is the predictor's output, its target t_v the online projector output of
// the same view, detached (no momentum network), and
//
//	L = -cos(o1, t2)/2 - cos(o2, t1)/2,  cos(p, z) = (1/N) sum_i cos(p_i, z_i)
//
// with each row normalised as F.normalize does (see BYOL). The targets get
// no gradient (the stop-gradient). Component: "neg_cos". No options.
type SimSiam struct {
	opts SimSiamConfig
}

// NewSimSiam returns a SimSiam.
func NewSimSiam(opts SimSiamConfig) (*SimSiam, error) {
	return &SimSiam{opts: opts}, nil
}

// Name returns "simsiam".
func (s *SimSiam) Name() string { return NameSimSiam }

// Branches returns a predictor and no momentum network.
func (s *SimSiam) Branches() Branches { return Branches{Predictor: true} }

// TargetLoss implements Targeted.
func (s *SimSiam) TargetLoss(step int, o1, o2, t1, t2 []float32, n, d int, g1, g2 []float32) (Result, error) {
	return runTargetLoss(NameSimSiam, step, o1, o2, t1, t2, n, d, g1, g2, s.opts.Gather, s.eval)
}

// eval is the float64 core of TargetLoss.
func (s *SimSiam) eval(o1, o2, t1, t2 []float64, n, d int, g1, g2 []float64) (Result, error) {
	c12 := meanCos(o1, t2, n, d, -0.5, g1)
	c21 := meanCos(o2, t1, n, d, -0.5, g2)
	loss := -c12/2 - c21/2
	return Result{Loss: loss, Components: []Component{{Name: "neg_cos", Value: loss}}}, nil
}
