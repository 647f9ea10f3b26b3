package nn

import (
	"math"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/ops/ref"
)

// tinyNet builds a width-2 ResNet-18 with a 8-4 projector and, when pred,
// a 8-4 predictor.
func tinyNet(t *testing.T, seed int64, pred bool) *Network {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	be := ref.New()
	bb, err := NewResNet(be, ResNetConfig{Arch: "resnet18", Width: 2, InChannels: 1, Stem: "cifar"}, rng)
	if err != nil {
		t.Fatal(err)
	}
	proj, err := NewMLP(be, MLPConfig{In: bb.FeatureDim(), Spec: "8-4", BN: true, LastBias: true, Prefix: "projector"}, rng)
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{Backbone: bb, Projector: proj}
	if pred {
		if n.Predictor, err = NewMLP(be, MLPConfig{In: 4, Spec: "8-4", BN: true, LastBias: true, Prefix: "predictor"}, rng); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestMomentumEMA checks that NewMomentum copies the online backbone and
// projector (not the predictor) into the momentum network, that Update is
// ξ ← τξ + (1−τ)θ on every parameter and leaves the buffers alone, and the
// cosine schedule of τ.
func TestMomentumEMA(t *testing.T) {
	online, target := tinyNet(t, 1, true), tinyNet(t, 2, false)
	m, err := NewMomentum(online, target, 0.9, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	on := map[string][]float32{}
	for _, p := range online.Params() {
		on[p.Name] = p.Value.Data
	}
	for _, q := range target.Params() {
		for i, v := range q.Value.Data {
			if v != on[q.Name][i] {
				t.Fatalf("%s[%d] = %v after NewMomentum, online %v", q.Name, i, v, on[q.Name][i])
			}
		}
	}
	if len(m.pairs) != len(online.Params())-len(online.Predictor.Params()) {
		t.Errorf("%d pairs for %d online parameters outside the predictor", len(m.pairs), len(online.Params())-len(online.Predictor.Params()))
	}
	// Move the online weights, remember the momentum ones, update.
	rng := rand.New(rand.NewSource(3))
	before := map[string][]float32{}
	for _, q := range target.Params() {
		before[q.Name] = append([]float32(nil), q.Value.Data...)
	}
	for _, p := range online.Params() {
		for i := range p.Value.Data {
			p.Value.Data[i] += float32(rng.NormFloat64())
		}
	}
	buf := append([]float32(nil), target.Buffers()[0].Value.Data...)
	const tau = 0.75
	m.Update(tau)
	for _, q := range target.Params() {
		for i, v := range q.Value.Data {
			want := float32(tau*float64(before[q.Name][i]) + (1-tau)*float64(on[q.Name][i]))
			if v != want {
				t.Fatalf("%s[%d] = %v after Update(%g), want %v", q.Name, i, v, tau, want)
			}
		}
	}
	for i, v := range target.Buffers()[0].Value.Data {
		if v != buf[i] {
			t.Fatalf("Update changed buffer %s", target.Buffers()[0].Name)
		}
	}
	// tau(k) = final - (final - base)(cos(pi k / K) + 1)/2 at k = step - 1.
	for _, c := range []struct {
		step int
		want float64
	}{{1, 0.9}, {6, 0.95}, {11, 1}} {
		if got := m.Tau(c.step); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("Tau(%d) = %.17g, want %g", c.step, got, c.want)
		}
	}
}

// TestMomentumRefusesMismatch checks the errors of NewMomentum.
func TestMomentumRefusesMismatch(t *testing.T) {
	online := tinyNet(t, 1, true)
	if _, err := NewMomentum(online, tinyNet(t, 2, true), 0.9, 1, 10); err == nil {
		t.Error("a momentum network with a predictor was accepted")
	}
	other := tinyNet(t, 2, false)
	other.Projector = nil
	if _, err := NewMomentum(online, other, 0.9, 1, 10); err == nil {
		t.Error("a momentum network without the projector was accepted")
	}
	for _, taus := range [][2]float64{{0.99, 0.9}, {-0.1, 1}, {0.9, 1.1}} {
		if _, err := NewMomentum(online, tinyNet(t, 2, false), taus[0], taus[1], 10); err == nil {
			t.Errorf("taus %v accepted", taus)
		}
	}
	if _, err := NewMomentum(online, tinyNet(t, 2, false), 0.9, 1, 0); err == nil {
		t.Error("a schedule of 0 steps accepted")
	}
}
