package train

import (
	"io"
	"math"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops/ref"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/tensor"
)

// stepFixture is a tiny network on the reference backend and two different
// views of a random batch.
func stepFixture(t *testing.T) (*nn.Network, [2]*tensor.Tensor) {
	t.Helper()
	spec := model.Spec{Arch: "resnet18", Stem: "cifar", Width: 2, InChannels: 1, Projector: "16-8", ZeroInit: false}
	net, err := model.NewNetwork(ref.New(), spec, rand.New(rand.NewSource(4)))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(9))
	var x [2]*tensor.Tensor
	for v := range x {
		x[v] = tensor.New(8, 8, 8, 1)
		for i := range x[v].Data {
			x[v].Data[i] = float32(rng.NormFloat64())
		}
	}
	return net, x
}

func newCorInfoMax(t *testing.T) ssl.Method {
	t.Helper()
	o, _ := ssl.Defaults(ssl.NameCorInfoMax)
	o.Set("alpha", 2.5) // keeps the covariance terms visible next to the attraction term
	m, err := ssl.New(ssl.NameCorInfoMax, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// lossAt is the first-step objective of net on the two views, computed
// without Step: two training-mode forward passes and a fresh objective.
func lossAt(t *testing.T, net *nn.Network, x [2]*tensor.Tensor) float64 {
	t.Helper()
	var z [2][]float32
	for v := range x {
		_, zv, err := net.Forward(v, x[v])
		if err != nil {
			t.Fatal(err)
		}
		z[v] = append([]float32(nil), zv.Data...)
	}
	n, d := x[0].Shape[0], len(z[0])/x[0].Shape[0]
	res, err := newCorInfoMax(t).Loss(1, z[0], z[1], n, d, make([]float32, n*d), make([]float32, n*d))
	if err != nil {
		t.Fatal(err)
	}
	return res.Loss
}

// TestStepGradientIsTheObjectives checks the gradient Step computes (the
// trainer's step, on two views that differ) against central finite
// differences of the objective along random directions of all weights.
// Swapping the two views' gradients, or dropping one view's backward pass,
// fails it.
func TestStepGradientIsTheObjectives(t *testing.T) {
	net, x := stepFixture(t)
	st := NewStep(net, newCorInfoMax(t), optim.NewSGD(net.Params(), 0, 0, false))
	if _, err := st.Run(1, x, 0); err != nil { // lr 0: the weights stay, the gradients remain
		t.Fatal(err)
	}
	params := net.Params()
	rng := rand.New(rand.NewSource(2))
	for trial := 0; trial < 3; trial++ {
		// Direction u, scaled per tensor to its weights' size.
		u := make([][]float64, len(params))
		analytic := 0.0
		for i, p := range params {
			scale := 0.0
			for _, w := range p.Value.Data {
				scale = math.Max(scale, math.Abs(float64(w)))
			}
			if scale == 0 {
				scale = 1
			}
			u[i] = make([]float64, len(p.Value.Data))
			for j := range u[i] {
				u[i][j] = rng.NormFloat64() * scale
				analytic += float64(p.Grad.Data[j]) * u[i][j]
			}
		}
		// A small step: the tiny network (width 2, batch-norm on 8 images)
		// is far from linear at 1e-3 of its weights.
		const eps = 2e-5
		move := func(sign float64) {
			for i, p := range params {
				for j := range p.Value.Data {
					p.Value.Data[j] += float32(sign * eps * u[i][j])
				}
			}
		}
		orig := make([][]float32, len(params))
		for i, p := range params {
			orig[i] = append([]float32(nil), p.Value.Data...)
		}
		move(1)
		lp := lossAt(t, net, x)
		for i, p := range params {
			copy(p.Value.Data, orig[i])
		}
		move(-1)
		lm := lossAt(t, net, x)
		for i, p := range params {
			copy(p.Value.Data, orig[i])
		}
		numeric := (lp - lm) / (2 * eps)
		rel := math.Abs(numeric-analytic) / math.Max(math.Abs(numeric), 1e-9)
		t.Logf("direction %d: analytic %.6g, finite differences %.6g (relative difference %.2g)", trial, analytic, numeric, rel)
		if rel > 0.01 {
			t.Errorf("direction %d: Step's directional derivative %.6g, finite differences %.6g", trial, analytic, numeric)
		}
	}
}

// nanAfterState wraps CorInfoMax: its loss succeeds (the running state
// advances) but the gradient it returns is NaN, as a diverging network's
// would become.
type nanAfterState struct{ *ssl.CorInfoMax }

func (m nanAfterState) Loss(step int, z1, z2 []float32, n, d int, g1, g2 []float32) (ssl.Result, error) {
	res, err := m.CorInfoMax.Loss(step, z1, z2, n, d, g1, g2)
	g1[0] = float32(math.NaN())
	return res, err
}

// TestSkipRollsBackMethodState checks --on-nan skip: a skipped step leaves
// the batch-norm running statistics and CorInfoMax's running mean and
// covariance as they were before it.
func TestSkipRollsBackMethodState(t *testing.T) {
	net, x := stepFixture(t)
	good := newCorInfoMax(t).(*ssl.CorInfoMax)
	opt := optim.NewSGD(net.Params(), 0.9, 0, false)
	st := NewStep(net, good, opt)
	if _, err := st.Run(1, x, 0.01); err != nil { // a good step first, so the state is not the initial one
		t.Fatal(err)
	}
	before := good.State()
	bufs := map[string][]float32{}
	for _, b := range net.Buffers() {
		bufs[b.Name] = append([]float32(nil), b.Value.Data...)
	}
	bad := nanAfterState{good}
	tr := &Trainer{cfg: Config{OnNaN: "skip"}, log: io.Discard, net: net, method: bad, opt: opt,
		step1: NewStep(net, bad, opt), step: 1}
	b := batchOf(x)
	_, skipped, err := tr.trainStep(b, 0.01)
	if err != nil || !skipped {
		t.Fatalf("want the step skipped, got skipped=%v, err %v", skipped, err)
	}
	after := good.State()
	for i := range before {
		for j := range before[i].Data {
			if before[i].Data[j] != after[i].Data[j] {
				t.Fatalf("%s[%d] = %v after the skipped step, %v before", before[i].Name, j, after[i].Data[j], before[i].Data[j])
			}
		}
	}
	for _, bf := range net.Buffers() {
		for j, v := range bf.Value.Data {
			if v != bufs[bf.Name][j] {
				t.Fatalf("buffer %s[%d] changed by the skipped step", bf.Name, j)
			}
		}
	}
}

func batchOf(x [2]*tensor.Tensor) *data.Batch {
	s := x[0].Shape
	return &data.Batch{X: [2][]float32{x[0].Data, x[1].Data}, N: s[0], H: s[1], W: s[2], C: s[3]}
}
