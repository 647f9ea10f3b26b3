package eval

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/corinfomax/corinfomax/ops"
)

// OnlineLinear is the online linear probe of solo-learn: a linear
// classifier trained during pretraining on the detached backbone features
// of each batch (no gradient flows back into the backbone), with its own
// SGD. Its test accuracy tracks the representation without a separate
// evaluation run.
//
// The optimizer follows solo-learn's online classifier: learning rate 0.1
// (`classifier_lr: 0.1` in its CIFAR pretraining configs, e.g.
// scripts/pretrain/cifar/barlow.yaml), no weight decay; we use SGD with
// momentum 0.9 at a constant rate, where solo-learn uses the backbone's
// optimizer and schedule.
type OnlineLinear struct {
	Dim, Classes int
	LR, Momentum float64
	// W (Classes x Dim, row-major), B (Classes) and their momentum buffers.
	W, B, MW, MB []float32

	logits, dlogits []float32
}

// NewOnlineLinear returns a probe for dim-dimensional features and classes
// classes, its weights drawn like torch.nn.Linear's (uniform in
// +-1/sqrt(dim)) from rng.
func NewOnlineLinear(dim, classes int, rng *rand.Rand) (*OnlineLinear, error) {
	if dim < 1 || classes < 2 {
		return nil, fmt.Errorf("eval: online probe of %d features and %d classes (need at least 1 and 2)", dim, classes)
	}
	p := &OnlineLinear{Dim: dim, Classes: classes, LR: 0.1, Momentum: 0.9,
		W: make([]float32, classes*dim), B: make([]float32, classes),
		MW: make([]float32, classes*dim), MB: make([]float32, classes)}
	bound := 1 / math.Sqrt(float64(dim))
	for i := range p.W {
		p.W[i] = float32((2*rng.Float64() - 1) * bound)
	}
	for i := range p.B {
		p.B[i] = float32((2*rng.Float64() - 1) * bound)
	}
	return p, nil
}

// forward writes the n x Classes logits of feats (n x Dim) into p.logits.
func (p *OnlineLinear) forward(feats []float32, n int) {
	if cap(p.logits) < n*p.Classes {
		p.logits = make([]float32, n*p.Classes)
		p.dlogits = make([]float32, n*p.Classes)
	}
	p.logits, p.dlogits = p.logits[:n*p.Classes], p.dlogits[:n*p.Classes]
	for r := 0; r < n; r++ {
		x := feats[r*p.Dim : (r+1)*p.Dim]
		for k := 0; k < p.Classes; k++ {
			w := p.W[k*p.Dim : (k+1)*p.Dim]
			s := float64(p.B[k])
			for j, v := range x {
				s += float64(w[j]) * float64(v)
			}
			p.logits[r*p.Classes+k] = float32(s)
		}
	}
}

// Step trains the probe on one batch: feats (n x Dim) and labels in
// [0, Classes). It returns the batch's mean cross-entropy before the update.
func (p *OnlineLinear) Step(feats []float32, n int, labels []int) (float64, error) {
	if n < 1 || len(feats) != n*p.Dim || len(labels) != n {
		return 0, fmt.Errorf("eval: online probe step: %d features and %d labels for %d rows of %d", len(feats), len(labels), n, p.Dim)
	}
	p.forward(feats, n)
	loss, err := ops.SoftmaxCrossEntropy(p.logits, n, p.Classes, labels, p.dlogits)
	if err != nil {
		return 0, fmt.Errorf("eval: online probe: %w", err)
	}
	gw := make([]float64, p.Dim) // one class's weight gradient
	for k := 0; k < p.Classes; k++ {
		clear(gw)
		gb := 0.0
		for r := 0; r < n; r++ {
			g := float64(p.dlogits[r*p.Classes+k])
			if g == 0 {
				continue
			}
			gb += g
			for j, v := range feats[r*p.Dim : (r+1)*p.Dim] {
				gw[j] += g * float64(v)
			}
		}
		w, mw := p.W[k*p.Dim:(k+1)*p.Dim], p.MW[k*p.Dim:(k+1)*p.Dim]
		for j := range w {
			mw[j] = float32(p.Momentum*float64(mw[j]) + gw[j])
			w[j] -= float32(p.LR * float64(mw[j]))
		}
		p.MB[k] = float32(p.Momentum*float64(p.MB[k]) + gb)
		p.B[k] -= float32(p.LR * float64(p.MB[k]))
	}
	return loss, nil
}

// Top1 returns the percentage of the n rows of feats whose highest logit
// is their label.
func (p *OnlineLinear) Top1(feats []float32, n int, labels []int) (float64, error) {
	if n < 1 || len(feats) != n*p.Dim || len(labels) != n {
		return 0, fmt.Errorf("eval: online probe: %d features and %d labels for %d rows of %d", len(feats), len(labels), n, p.Dim)
	}
	p.forward(feats, n)
	right := 0
	for r := 0; r < n; r++ {
		row := p.logits[r*p.Classes : (r+1)*p.Classes]
		best := 0
		for k, v := range row {
			if v > row[best] {
				best = k
			}
		}
		if best == labels[r] {
			right++
		}
	}
	return 100 * float64(right) / float64(n), nil
}

// State returns the probe's tensors by name (for checkpoints).
func (p *OnlineLinear) State() map[string][]float32 {
	return map[string][]float32{"weight": p.W, "bias": p.B, "momentum.weight": p.MW, "momentum.bias": p.MB}
}

// SetState copies tensors saved by State into the probe, checking that
// every one is present with its length.
func (p *OnlineLinear) SetState(s map[string][]float32) error {
	for name, dst := range p.State() {
		src, ok := s[name]
		if !ok {
			return fmt.Errorf("eval: online probe state lacks %q", name)
		}
		if len(src) != len(dst) {
			return fmt.Errorf("eval: online probe state %q has %d values, the probe needs %d (different classes or features?)", name, len(src), len(dst))
		}
		copy(dst, src)
	}
	return nil
}
