package nn

import (
	"fmt"
	"math"
)

// Momentum is the momentum network of BYOL and MoCo: a copy of the online
// backbone and projector (no predictor) that is never trained by gradient.
// After every optimizer step its weights follow the online ones by an
// exponential moving average,
//
//	ξ ← τ ξ + (1 − τ) θ,
//
// with τ raised from BaseTau to FinalTau on a cosine over the run (BYOL,
// Grill et al. 2020, eq. 2 and section 3.2; solo-learn's MomentumUpdater):
//
//	τ(k) = FinalTau − (FinalTau − BaseTau) (cos(π k / K) + 1) / 2
//
// for the update after the (k+1)-th of K optimizer steps. Only parameters
// are averaged: the network's batch-norm running statistics are its own,
// updated by its training-mode forward passes (as solo-learn's, whose
// momentum backbone runs in training mode under no_grad).
type Momentum struct {
	// Net is the momentum network; its Forward gives the targets.
	Net *Network
	// BaseTau and FinalTau bound τ, 0 <= BaseTau <= FinalTau <= 1.
	BaseTau, FinalTau float64
	// TotalSteps is K, the run's optimizer steps.
	TotalSteps int

	pairs [][2]*Param // (online, momentum) with the same name
}

// NewMomentum pairs target's parameters with online's of the same name
// and shape (online's predictor, if any, has no partner: target must be
// built from the same spec without one) and copies online's values into
// target, as solo-learn's initialize_momentum_params does.
func NewMomentum(online, target *Network, baseTau, finalTau float64, totalSteps int) (*Momentum, error) {
	if online == nil || target == nil {
		return nil, fmt.Errorf("nn: momentum network needs an online and a target network")
	}
	if !(0 <= baseTau && baseTau <= finalTau && finalTau <= 1) {
		return nil, fmt.Errorf("nn: momentum tau from %g to %g: need 0 <= base <= final <= 1", baseTau, finalTau)
	}
	if totalSteps < 1 {
		return nil, fmt.Errorf("nn: momentum schedule over %d steps: need at least 1", totalSteps)
	}
	if target.Predictor != nil {
		return nil, fmt.Errorf("nn: the momentum network has a predictor: build it without one")
	}
	byName := map[string]*Param{}
	for _, p := range online.Params() {
		byName[p.Name] = p
	}
	m := &Momentum{Net: target, BaseTau: baseTau, FinalTau: finalTau, TotalSteps: totalSteps}
	for _, q := range target.Params() {
		p, ok := byName[q.Name]
		if !ok {
			return nil, fmt.Errorf("nn: momentum network parameter %s has no online counterpart", q.Name)
		}
		if len(p.Value.Data) != len(q.Value.Data) {
			return nil, fmt.Errorf("nn: momentum network parameter %s has %d values, the online one %d", q.Name, len(q.Value.Data), len(p.Value.Data))
		}
		m.pairs = append(m.pairs, [2]*Param{p, q})
	}
	want := len(online.Params())
	if online.Predictor != nil {
		want -= len(online.Predictor.Params())
	}
	if len(m.pairs) != want {
		return nil, fmt.Errorf("nn: the momentum network has %d parameters, the online backbone and projector %d", len(m.pairs), want)
	}
	m.CopyOnline()
	return m, nil
}

// CopyOnline sets every momentum parameter to its online counterpart (the
// start of a run, or after new online weights were loaded).
func (m *Momentum) CopyOnline() {
	for _, pq := range m.pairs {
		copy(pq[1].Value.Data, pq[0].Value.Data)
	}
}

// Tau returns τ for the update after optimizer step `step` (1-based): the
// schedule evaluated at k = step − 1, so the first update uses BaseTau.
func (m *Momentum) Tau(step int) float64 {
	k := float64(step - 1)
	return m.FinalTau - (m.FinalTau-m.BaseTau)*(math.Cos(math.Pi*k/float64(m.TotalSteps))+1)/2
}

// Update moves every momentum parameter towards its online counterpart:
// ξ ← τ ξ + (1 − τ) θ (in float64, stored as float32).
func (m *Momentum) Update(tau float64) {
	for _, pq := range m.pairs {
		on, mo := pq[0].Value.Data, pq[1].Value.Data
		for i, v := range on {
			mo[i] = float32(tau*float64(mo[i]) + (1-tau)*float64(v))
		}
	}
}
