package nn

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/ops/ref"
	"github.com/corinfomax/corinfomax/tensor"
)

func TestConv2dGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	be := ref.New()
	for _, tc := range []struct {
		name                    string
		in, out, k, stride, pad int
		bias                    bool
	}{
		{"3x3s1p1", 2, 3, 3, 1, 1, false},
		{"3x3s2p1bias", 3, 2, 3, 2, 1, true},
		{"1x1s2", 3, 4, 1, 2, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConv2d(be, "c", tc.in, tc.out, tc.k, tc.stride, tc.pad, tc.bias, rng)
			if err != nil {
				t.Fatal(err)
			}
			if tc.bias {
				uniform(c.Bias.Value.Data, 0.5, rng)
			}
			gradCheck(t, c, randTensor(rng, 2, 5, 5, tc.in), true, 12, rng)
		})
	}
}

func TestConv2dSkipInputGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	c, err := NewConv2d(ref.New(), "c", 2, 2, 3, 1, 1, false, rng)
	if err != nil {
		t.Fatal(err)
	}
	c.SkipInputGrad = true
	y, err := c.Forward(0, randTensor(rng, 1, 4, 4, 2))
	if err != nil {
		t.Fatal(err)
	}
	dx, err := c.Backward(0, randTensor(rng, y.Shape...))
	if err != nil || dx != nil {
		t.Fatalf("dx = %v, err = %v; want nil, nil", dx, err)
	}
	var s float64
	for _, g := range c.Weight.Grad.Data {
		s += math.Abs(float64(g))
	}
	if s == 0 {
		t.Fatal("weight gradient not computed")
	}
	if _, err := c.Backward(0, randTensor(rng, y.Shape...)); err == nil {
		t.Fatal("a second backward without forward succeeded")
	}
}

func TestLinearGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, bias := range []bool{true, false} {
		l, err := NewLinear(ref.New(), "fc", 5, 4, bias, rng)
		if err != nil {
			t.Fatal(err)
		}
		gradCheck(t, l, randTensor(rng, 3, 5), true, 12, rng)
	}
}

func TestBatchNormGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, shape := range [][]int{{3, 4, 3, 5}, {6, 5}} {
		b, err := NewBatchNorm(ref.New(), "bn", 5)
		if err != nil {
			t.Fatal(err)
		}
		randomiseBN(b.Params(), rng)
		gradCheck(t, b, randTensor(rng, shape...), true, 15, rng)
	}
}

func TestReLUMaxPoolAvgPoolGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	be := ref.New()
	gradCheck(t, NewReLU(be), randTensor(rng, 2, 3, 3, 2), true, 20, rng)
	mp, err := NewMaxPool2d(be, 3, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	gradCheck(t, mp, randTensor(rng, 2, 6, 6, 2), true, 20, rng)
	gradCheck(t, NewGlobalAvgPool(be), randTensor(rng, 2, 3, 3, 2), true, 20, rng)
}

func TestBlocksGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	be := ref.New()
	for _, tc := range []struct {
		name       string
		bottleneck bool
		in, planes int
		stride     int
	}{
		{"basic-identity", false, 3, 3, 1},
		{"basic-downsample", false, 2, 4, 2},
		{"bottleneck-downsample", true, 4, 2, 2},
		{"bottleneck-identity", true, 8, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l Layer
			var err error
			if tc.bottleneck {
				l, err = NewBottleneck(be, "layer1.0", tc.in, tc.planes, tc.stride, false, rng)
			} else {
				l, err = NewBasicBlock(be, "layer1.0", tc.in, tc.planes, tc.stride, false, rng)
			}
			if err != nil {
				t.Fatal(err)
			}
			randomiseBN(l.Params(), rng)
			gradCheck(t, l, randTensor(rng, 2, 4, 4, tc.in), true, 8, rng)
		})
	}
}

func TestMLPGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, c := range []MLPConfig{{}, {BN: true}, {BN: true, LastBias: true}, {BN: true, OutBN: true}, {LastBias: true, OutBN: true}} {
		c.In, c.Spec, c.Prefix = 6, "8-8-4", "projector"
		m, err := NewMLP(ref.New(), c, rng)
		if err != nil {
			t.Fatal(err)
		}
		randomiseBN(m.Params(), rng)
		gradCheck(t, m, randTensor(rng, 5, 6), true, 8, rng)
	}
}

// TestMLPLayout checks the parameter and buffer names of the projector and
// predictor variants against the keys PyTorch's nn.Sequential gives the
// same layers (solo-learn's projectors, written out by hand from
// solo/methods/*.py: index of each module in the Sequential), and that an
// affine-free output batch norm has buffers but no parameters.
func TestMLPLayout(t *testing.T) {
	cases := []struct {
		cfg    MLPConfig
		params []string
		bufs   []string
	}{
		// SimSiam: Linear, BN, ReLU, Linear, BN, ReLU, Linear, BN(affine=False).
		{MLPConfig{Spec: "8-8-4", BN: true, OutBN: true},
			[]string{"p.0.weight", "p.0.bias", "p.1.weight", "p.1.bias", "p.3.weight", "p.3.bias", "p.4.weight", "p.4.bias", "p.6.weight"},
			[]string{"p.1.running_mean", "p.1.running_var", "p.4.running_mean", "p.4.running_var", "p.7.running_mean", "p.7.running_var"}},
		// BYOL: Linear, BN, ReLU, Linear (with bias).
		{MLPConfig{Spec: "8-4", BN: true, LastBias: true},
			[]string{"p.0.weight", "p.0.bias", "p.1.weight", "p.1.bias", "p.3.weight", "p.3.bias"},
			[]string{"p.1.running_mean", "p.1.running_var"}},
		// MoCo v2+: Linear, ReLU, Linear (with bias).
		{MLPConfig{Spec: "8-4", LastBias: true}, []string{"p.0.weight", "p.0.bias", "p.2.weight", "p.2.bias"}, nil},
	}
	for _, c := range cases {
		c.cfg.In, c.cfg.Prefix = 6, "p"
		m, err := NewMLP(ref.New(), c.cfg, rand.New(rand.NewSource(1)))
		if err != nil {
			t.Fatal(err)
		}
		var ps, bs []string
		for _, p := range m.Params() {
			ps = append(ps, p.Name)
		}
		for _, b := range m.Buffers() {
			bs = append(bs, b.Name)
		}
		if fmt.Sprint(ps) != fmt.Sprint(c.params) || fmt.Sprint(bs) != fmt.Sprint(c.bufs) {
			t.Errorf("%+v: params %v buffers %v, want %v and %v", c.cfg, ps, bs, c.params, c.bufs)
		}
		if c.cfg.OutBN && (len(m.BNs) == 0 || !m.BNs[len(m.BNs)-1].NoAffine) {
			t.Errorf("%+v: the output batch norm is not affine-free", c.cfg)
		}
	}
}

func TestResNet18Grad(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	r, err := NewResNet(ref.New(), ResNetConfig{Arch: "resnet18", Width: 2, InChannels: 3, Stem: "cifar"}, rng)
	if err != nil {
		t.Fatal(err)
	}
	if r.FeatureDim() != 16 {
		t.Fatalf("FeatureDim = %d, want 16", r.FeatureDim())
	}
	randomiseBN(r.Params(), rng)
	r.SetInputGrad(true)
	gradCheckStep(t, r, randTensor(rng, 3, 8, 8, 3), true, 2, 1e-3, rng)
}

// The ImageNet stem (7x7 stride 2, max-pool) and Bottleneck networks are
// checked against PyTorch in parity_test.go: deeper nets are too poorly
// conditioned for float32 finite differences.

// TestBatchNormStatistics checks the running-statistics update (unbiased
// variance, momentum 0.1) and inference mode against float64 formulas.
func TestBatchNormStatistics(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	const n, hw, c = 3, 4, 2
	b, err := NewBatchNorm(ref.New(), "bn", c)
	if err != nil {
		t.Fatal(err)
	}
	randomiseBN(b.Params(), rng)
	x := randTensor(rng, n, 2, 2, c)
	for i := range x.Data {
		x.Data[i] = x.Data[i]*2 + 1
	}
	if _, err := b.Forward(0, x); err != nil {
		t.Fatal(err)
	}
	for ch := range c {
		var s, ss float64
		for i := range n * hw {
			s += float64(x.Data[i*c+ch])
		}
		mean := s / (n * hw)
		for i := range n * hw {
			d := float64(x.Data[i*c+ch]) - mean
			ss += d * d
		}
		unbiased := ss / (n*hw - 1)
		if got, want := float64(b.RunningMean.Value.Data[ch]), 0.9*0+0.1*mean; math.Abs(got-want) > 1e-6 {
			t.Errorf("running_mean[%d] = %g, want %g", ch, got, want)
		}
		if got, want := float64(b.RunningVar.Value.Data[ch]), 0.9*1+0.1*unbiased; math.Abs(got-want) > 1e-5 {
			t.Errorf("running_var[%d] = %g, want %g", ch, got, want)
		}
	}
	b.SetTraining(false)
	y, err := b.Forward(0, x)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range x.Data {
		ch := i % c
		want := float64(b.Weight.Value.Data[ch])*(float64(v)-float64(b.RunningMean.Value.Data[ch]))/
			math.Sqrt(float64(b.RunningVar.Value.Data[ch])+1e-5) + float64(b.Bias.Value.Data[ch])
		if math.Abs(float64(y.Data[i])-want) > 1e-5 {
			t.Fatalf("inference y[%d] = %g, want %g", i, y.Data[i], want)
		}
	}
	if _, err := b.Backward(0, y); err == nil {
		t.Error("backward after an inference forward succeeded")
	}
	b.SetTraining(true)
	if _, err := b.Forward(0, randTensor(rng, 1, c)); err == nil {
		t.Error("training with one value per channel succeeded")
	}
}

// TestTwoSlots runs two views (slot 0 and 1) forward, then both backward,
// and checks the accumulated gradients equal the sum of the two views'
// separate gradients, and the running statistics saw both batches.
func TestTwoSlots(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	be := ref.New()
	build := func() *Network {
		r := rand.New(rand.NewSource(12))
		bb, err := NewResNet(be, ResNetConfig{Arch: "resnet18", Width: 2, InChannels: 1, Stem: "cifar"}, r)
		if err != nil {
			t.Fatal(err)
		}
		pj, err := NewMLP(be, MLPConfig{In: bb.FeatureDim(), Spec: "8-4", BN: true, Prefix: "projector"}, r)
		if err != nil {
			t.Fatal(err)
		}
		randomiseBN(bb.Params(), r)
		return &Network{Backbone: bb, Projector: pj}
	}
	x0, x1 := randTensor(rng, 3, 8, 8, 1), randTensor(rng, 3, 8, 8, 1)
	dz0, dz1 := randTensor(rng, 3, 4), randTensor(rng, 3, 4)

	both := build()
	both.ZeroGrad()
	_, z0, err := both.Forward(0, x0)
	if err != nil {
		t.Fatal(err)
	}
	z0c := z0.Clone()
	if _, _, err := both.Forward(1, x1); err != nil {
		t.Fatal(err)
	}
	if err := both.Backward(0, dz0); err != nil {
		t.Fatal(err)
	}
	if err := both.Backward(1, dz1); err != nil {
		t.Fatal(err)
	}

	single := build()
	var sep [2][][]float32
	for v, pair := range []struct{ x, dz *tensor.Tensor }{{x0, dz0}, {x1, dz1}} {
		single.ZeroGrad()
		_, z, err := single.Forward(0, pair.x)
		if err != nil {
			t.Fatal(err)
		}
		if v == 0 {
			for i := range z.Data {
				if z.Data[i] != z0c.Data[i] {
					t.Fatalf("slot 0 output differs from a single forward at %d", i)
				}
			}
		}
		if err := single.Backward(0, pair.dz); err != nil {
			t.Fatal(err)
		}
		for _, p := range single.Params() {
			sep[v] = append(sep[v], append([]float32(nil), p.Grad.Data...))
		}
	}
	nonzero := false
	for k, p := range both.Params() {
		for i, g := range p.Grad.Data {
			want := sep[0][k][i] + sep[1][k][i]
			if math.Abs(float64(g-want)) > 1e-6*(1+math.Abs(float64(want))) {
				t.Fatalf("%s[%d]: two-slot gradient %g, want %g", p.Name, i, g, want)
			}
			nonzero = nonzero || g != 0
		}
	}
	if !nonzero {
		t.Fatal("all gradients are zero")
	}
	for k, b := range both.Buffers() {
		sb := single.Buffers()[k]
		for i := range b.Value.Data {
			if b.Value.Data[i] != sb.Value.Data[i] {
				t.Fatalf("%s[%d]: %g after two slots, %g after two single passes", b.Name, i, b.Value.Data[i], sb.Value.Data[i])
			}
		}
	}
}
