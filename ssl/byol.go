package ssl

// NameBYOL is BYOL's registered name.
const NameBYOL = "byol"

// BYOLConfig holds what BYOL needs besides its inputs: BYOL has no
// hyper-parameter of its own (the momentum schedule of its target network
// belongs to the trainer). Gather gathers the inputs across data-parallel
// workers (nil: one worker).
type BYOLConfig struct {
	Gather GatherFunc
}

var byolRegistration = Registration{
	Name:    NameBYOL,
	Summary: "bootstrap your own latent: a predictor regresses a momentum network's target (Grill et al., NeurIPS 2020)",
	NewTargeted: func(o Options) (Targeted, error) {
		return NewBYOL(BYOLConfig{Gather: o.Gather})
	},
	Branches: Branches{Predictor: true, Momentum: true},
}

// BYOL is the objective of Grill et al., "Bootstrap Your Own Latent: A New
// Approach to Self-Supervised Learning" (NeurIPS 2020), as solo-learn
// computes it (solo/losses/byol.py, solo/methods/byol.py): the online
// output o_v of a view is the predictor's output, its target t_v the
// momentum network's projector output of the same view, and with
//
//	byol(p, z) = 2 - 2 * (1/N) sum_i cos(p_i, z_i)
//
// the loss of two views sums over both pairs of different views (no /2):
//
//	L = byol(o2, t1) + byol(o1, t2)
//
// The cosine normalises each row as F.normalize does (divided by
// max(|x|, 1e-12)), solo-learn's non-simplified form; its simplified form,
// F.cosine_similarity, differs only for rows of norm below 1e-8. The
// targets get no gradient. Component: "byol". No options.
type BYOL struct {
	opts BYOLConfig
}

// NewBYOL returns a BYOL.
func NewBYOL(opts BYOLConfig) (*BYOL, error) {
	return &BYOL{opts: opts}, nil
}

// Name returns "byol".
func (b *BYOL) Name() string { return NameBYOL }

// Branches returns a predictor and a momentum network.
func (b *BYOL) Branches() Branches { return Branches{Predictor: true, Momentum: true} }

// TargetLoss implements Targeted.
func (b *BYOL) TargetLoss(step int, o1, o2, t1, t2 []float32, n, d int, g1, g2 []float32) (Result, error) {
	return runTargetLoss(NameBYOL, step, o1, o2, t1, t2, n, d, g1, g2, b.opts.Gather, b.eval)
}

// eval is the float64 core of TargetLoss.
func (b *BYOL) eval(o1, o2, t1, t2 []float64, n, d int, g1, g2 []float64) (Result, error) {
	c21 := meanCos(o2, t1, n, d, -2, g2)
	c12 := meanCos(o1, t2, n, d, -2, g1)
	loss := (2 - 2*c21) + (2 - 2*c12)
	return Result{Loss: loss, Components: []Component{{Name: "byol", Value: loss}}}, nil
}
