package nn_test

import (
	"math"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/ref"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/tensor"
)

// The fixtures in testdata come from tools/pytorch/gen_engine_fixtures.py
// (PyTorch 1.13.1, torchvision 0.14.1).

// extraBackends holds further backends for the parity tests (dnnl_test.go
// adds oneDNN).
var extraBackends []func() (ops.Backend, error)

// parityBackends lists the backends the PyTorch parity tests run on: ref,
// plus those registered by other test files (dnnl).
func parityBackends() []func() (ops.Backend, error) {
	return append([]func() (ops.Backend, error){func() (ops.Backend, error) { return ref.New(), nil }}, extraBackends...)
}

func readFixture(t *testing.T, path string) *checkpoint.File {
	t.Helper()
	f, err := checkpoint.Read(path)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return f
}

func fixtureF32(t *testing.T, f *checkpoint.File, name string, shape ...int) []float32 {
	t.Helper()
	ft, ok := f.Get(name)
	if !ok {
		t.Fatalf("fixture has no tensor %q", name)
	}
	if ft.DType != "F32" || !tensor.SameShape(ft.Shape, shape) {
		t.Fatalf("fixture tensor %q is %s%v, want F32%v", name, ft.DType, ft.Shape, shape)
	}
	return ft.F32
}

func fixtureLabels(t *testing.T, f *checkpoint.File) []int {
	t.Helper()
	ft, ok := f.Get("labels")
	if !ok || ft.DType != "I64" {
		t.Fatalf("fixture has no I64 labels")
	}
	labels := make([]int, len(ft.I64))
	for i, v := range ft.I64 {
		labels[i] = int(v)
	}
	return labels
}

// fixtureImages reads an NCHW image batch and returns it as NHWC.
func fixtureImages(t *testing.T, f *checkpoint.File, n, c, h, w int) *tensor.Tensor {
	t.Helper()
	src := fixtureF32(t, f, "input", n, c, h, w)
	x := tensor.New(n, h, w, c)
	for in := range n {
		for ic := range c {
			for ih := range h {
				for iw := range w {
					x.Data[((in*h+ih)*w+iw)*c+ic] = src[((in*c+ic)*h+ih)*w+iw]
				}
			}
		}
	}
	return x
}

// loadState copies prefix+name tensors of f into params and buffers.
func loadState(t *testing.T, f *checkpoint.File, prefix string, params []*nn.Param, buffers []*nn.Buffer) {
	t.Helper()
	for _, p := range params {
		copy(p.Value.Data, fixtureF32(t, f, prefix+p.Name, p.Value.Shape...))
	}
	for _, b := range buffers {
		copy(b.Value.Data, fixtureF32(t, f, prefix+b.Name, b.Value.Shape...))
	}
}

// compareTensor fails when max|got - want| > tol * max(max|want|, 1e-3).
func compareTensor(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", name, len(got), len(want))
		return
	}
	var scale, worst float64
	worstAt := 0
	for i := range want {
		scale = math.Max(scale, math.Abs(float64(want[i])))
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst {
			worst, worstAt = d, i
		}
	}
	scale = math.Max(scale, 1e-3)
	if testing.Verbose() && worst > tol*scale/10 {
		t.Logf("%s: relative difference %.2g (tolerance %g)", name, worst/scale, tol)
	}
	if worst > tol*scale {
		t.Errorf("%s: max |diff| %.3g at %d (got %g, want %g) > %g * %.3g", name, worst, worstAt, got[worstAt], want[worstAt], tol, scale)
	}
}

// crossEntropyStep runs forward, the mean cross-entropy and backward on
// slot 0 and returns the logits and the loss.
func crossEntropyStep(t *testing.T, r *nn.ResNet, x *tensor.Tensor, labels []int) (*tensor.Tensor, float64) {
	t.Helper()
	logits, err := r.Forward(0, x)
	if err != nil {
		t.Fatal(err)
	}
	n, k := logits.Shape[0], logits.Shape[1]
	dlogits := tensor.New(n, k)
	loss, err := ops.SoftmaxCrossEntropy(logits.Data, n, k, labels, dlogits.Data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backward(0, dlogits); err != nil {
		t.Fatal(err)
	}
	return logits, loss
}

// TestPyTorchParityResNet18 replays tools/pytorch/gen_engine_fixtures.py:
// torchvision nn.ResNet-18, CIFAR stem, width 8, channels_last, batch 4 of
// 32x32: logits, loss, every gradient, three SGD steps (lr 0.1, momentum
// 0.9, weight decay 1e-4) and the running statistics, then eval-mode logits.
//
// Tolerance: both sides compute in float32 with different summation orders
// over about 20 layers (PyTorch's oneDNN convolutions vs the reference
// backend's float64 accumulation), and batch norm over 4x4x4 = 64 values at
// layer4 amplifies rounding differences by 1/sigma. Relative to each
// tensor's largest magnitude, measured differences are 1e-6 for the logits,
// 1e-5 for gradients and 2e-6 for the stepped weights; 1e-4 (forward) and
// 5e-4 (gradients, stepped weights and statistics, eval logits 1e-3) leave
// a margin for other backends while still catching any wrong formula (which
// gives errors of order 1e-1).
func TestPyTorchParityResNet18(t *testing.T) {
	f := readFixture(t, "testdata/resnet18_w8_cifar.safetensors")
	for _, newBackend := range parityBackends() {
		be, err := newBackend()
		if err != nil {
			t.Fatal(err)
		}
		t.Run(be.Name(), func(t *testing.T) {
			defer be.Close()
			r, err := nn.NewResNet(be, nn.ResNetConfig{Arch: "resnet18", Width: 8, InChannels: 3, Stem: "cifar", NumClasses: 10}, rand.New(rand.NewSource(1)))
			if err != nil {
				t.Fatal(err)
			}
			loadState(t, f, "init.", r.Params(), r.Buffers())
			x := fixtureImages(t, f, 4, 3, 32, 32)
			labels := fixtureLabels(t, f)
			wantLosses := fixtureF32(t, f, "losses", 3)
			opt := optim.NewSGD(r.Params(), 0.9, 1e-4, false)

			nn.ZeroGrad(r.Params())
			logits, loss := crossEntropyStep(t, r, x, labels)
			compareTensor(t, "logits", logits.Data, fixtureF32(t, f, "logits", 4, 10), 1e-4)
			compareTensor(t, "loss", []float32{float32(loss)}, fixtureF32(t, f, "loss"), 1e-5)
			for _, p := range r.Params() {
				compareTensor(t, "grad."+p.Name, p.Grad.Data, fixtureF32(t, f, "grad."+p.Name, p.Value.Shape...), 5e-4)
			}
			for step := range 3 {
				if step > 0 {
					nn.ZeroGrad(r.Params())
					_, loss = crossEntropyStep(t, r, x, labels)
				}
				if d := math.Abs(loss - float64(wantLosses[step])); d > 1e-4*math.Max(1, math.Abs(loss)) {
					t.Errorf("loss before step %d: %g, want %g", step, loss, wantLosses[step])
				}
				if err := opt.Step(0.1); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range r.Params() {
				compareTensor(t, "step3."+p.Name, p.Value.Data, fixtureF32(t, f, "step3."+p.Name, p.Value.Shape...), 5e-4)
			}
			for _, b := range r.Buffers() {
				compareTensor(t, "step3."+b.Name, b.Value.Data, fixtureF32(t, f, "step3."+b.Name, b.Value.Shape...), 5e-4)
			}
			r.SetTraining(false)
			eval, err := r.Forward(0, x)
			if err != nil {
				t.Fatal(err)
			}
			compareTensor(t, "eval_logits", eval.Data, fixtureF32(t, f, "eval_logits", 4, 10), 1e-3)
		})
	}
}

// TestPyTorchParityResNet50 checks one forward and backward of a
// torchvision ResNet-50 (Bottleneck, ImageNet stem with max-pool) at width
// 2 against PyTorch computed in float64: this measures our float32 error
// alone, on a network that the finite-difference checks cannot test (its
// conditioning is too poor for float32 finite differences).
//
// Tolerance: 16 blocks of width 2 amplify float32 rounding. Measured
// differences relative to each tensor's largest magnitude: ref 7e-6
// (logits), 2e-4 (gradients), 5e-6 (running statistics); dnnl 1.5e-5,
// 5.4e-3 (bn1.weight; other gradients below 1e-3), 2.2e-5. Tolerances: 1e-4
// logits, 5e-5 loss, 1e-4 statistics, gradients 2e-3 on ref and 1.5e-2 on
// other backends. A wrong formula gives errors of order 1e-1.
func TestPyTorchParityResNet50(t *testing.T) {
	f := readFixture(t, "testdata/resnet50_w2_imagenet.safetensors")
	for _, newBackend := range parityBackends() {
		be, err := newBackend()
		if err != nil {
			t.Fatal(err)
		}
		t.Run(be.Name(), func(t *testing.T) {
			defer be.Close()
			r, err := nn.NewResNet(be, nn.ResNetConfig{Arch: "resnet50", Width: 2, InChannels: 1, Stem: "imagenet", NumClasses: 5}, rand.New(rand.NewSource(1)))
			if err != nil {
				t.Fatal(err)
			}
			loadState(t, f, "init.", r.Params(), r.Buffers())
			x := fixtureImages(t, f, 4, 1, 64, 64)
			nn.ZeroGrad(r.Params())
			logits, loss := crossEntropyStep(t, r, x, fixtureLabels(t, f))
			compareTensor(t, "logits", logits.Data, fixtureF32(t, f, "logits", 4, 5), 1e-4)
			compareTensor(t, "loss", []float32{float32(loss)}, fixtureF32(t, f, "loss"), 5e-5)
			gradTol := 2e-3
			if be.Name() != "ref" {
				gradTol = 1.5e-2
			}
			for _, p := range r.Params() {
				compareTensor(t, "grad."+p.Name, p.Grad.Data, fixtureF32(t, f, "grad."+p.Name, p.Value.Shape...), gradTol)
			}
			for _, b := range r.Buffers() {
				compareTensor(t, "after."+b.Name, b.Value.Data, fixtureF32(t, f, "after."+b.Name, b.Value.Shape...), 1e-4)
			}
		})
	}
}
