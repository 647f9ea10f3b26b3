package nn

import (
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
)

// nopBackend is an ops.Backend whose kernels do nothing: it isolates the
// layers' own allocations from a backend's.
type nopBackend struct{}

type nopOp struct{}

func (nopOp) Forward(x, w, b, y []float32) error                      { return nil }
func (nopOp) Backward(x, w, dy, dx, dw, db []float32) error           { return nil }
func (nopOp) ForwardTrain(x, g, b, y, mean, variance []float32) error { return nil }
func (nopOp) ForwardInfer(x, g, b, rm, rv, y []float32) error         { return nil }

// nopBN is the batch-norm operator (its Backward has more arguments).
type nopBN struct{ nopOp }

func (nopBN) Backward(x, g, mean, variance, dy, dx, dg, db []float32) error {
	return nil
}
func (nopBN) Sums(x, shift []float32, s1, s2 []float64) error           { return nil }
func (nopBN) GradSums(x, mean, dy []float32, sdy, sdyx []float64) error { return nil }
func (nopBN) BackwardGiven(x, g, mean, v, dy []float32, sdy, sdyx []float64, m int, dx []float32) error {
	return nil
}

func (nopBackend) Name() string                                               { return "nop" }
func (nopBackend) Threads() int                                               { return 1 }
func (nopBackend) Precision() ops.Precision                                   { return ops.FP32 }
func (nopBackend) Conv(ops.ConvSpec) (ops.Conv, error)                        { return nopOp{}, nil }
func (nopBackend) BatchNorm(ops.BNSpec) (ops.BatchNorm, error)                { return nopBN{}, nil }
func (nopBackend) MaxPool(ops.PoolSpec) (ops.MaxPool, error)                  { return nil, nil }
func (nopBackend) Linear(ops.LinearSpec) (ops.Linear, error)                  { return nopOp{}, nil }
func (nopBackend) ReLU(x, y []float32) error                                  { return nil }
func (nopBackend) ReLUBackward(y, dy, dx []float32) error                     { return nil }
func (nopBackend) Add(a, b, y []float32) error                                { return nil }
func (nopBackend) GlobalAvgPool(x []float32, n, hw, c int, y []float32) error { return nil }
func (nopBackend) GlobalAvgPoolBackward(dy []float32, n, hw, c int, dx []float32) error {
	return nil
}
func (nopBackend) Close() error { return nil }

// TestSteadyStateAllocations checks that after the first step a training
// step (two views forward, then backward) allocates nothing in the layers.
func TestSteadyStateAllocations(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	be := nopBackend{}
	bb, err := NewResNet(be, ResNetConfig{Arch: "resnet18", Width: 2, InChannels: 1, Stem: "cifar"}, rng)
	if err != nil {
		t.Fatal(err)
	}
	pj, err := NewMLP(be, MLPConfig{In: bb.FeatureDim(), Spec: "8-4", BN: true, Prefix: "projector"}, rng)
	if err != nil {
		t.Fatal(err)
	}
	net := &Network{Backbone: bb, Projector: pj}
	xs := []*tensor.Tensor{randTensor(rng, 2, 8, 8, 1), randTensor(rng, 2, 8, 8, 1)}
	dz := randTensor(rng, 2, 4)
	step := func() {
		net.ZeroGrad()
		for slot, x := range xs {
			if _, _, err := net.Forward(slot, x); err != nil {
				t.Fatal(err)
			}
		}
		for slot := range xs {
			if err := net.Backward(slot, dz); err != nil {
				t.Fatal(err)
			}
		}
	}
	step()
	if allocs := testing.AllocsPerRun(3, step); allocs > 0 {
		t.Errorf("%v allocations per steady-state step", allocs)
	}
}

// TestGradPoolBoundsBackwardBuffers checks what the gradient pool is for:
// after the backward passes of both views, a ResNet holds a few gradient
// buffers per size (those alive at the same time), not one per layer, none
// stays lent, and a second step takes no new buffer. (The gradients
// themselves are checked by the PyTorch parity and finite-difference tests,
// which run with the pool.)
func TestGradPoolBoundsBackwardBuffers(t *testing.T) {
	rng := rand.New(rand.NewSource(14))
	be := nopBackend{}
	for _, arch := range []string{"resnet18", "resnet50"} {
		bb, err := NewResNet(be, ResNetConfig{Arch: arch, Width: 2, InChannels: 1, Stem: "cifar"}, rng)
		if err != nil {
			t.Fatal(err)
		}
		xs := []*tensor.Tensor{randTensor(rng, 2, 8, 8, 1), randTensor(rng, 2, 8, 8, 1)}
		dy := randTensor(rng, 2, bb.FeatureDim())
		step := func() {
			for v, x := range xs {
				if _, err := bb.Forward(v, x); err != nil {
					t.Fatal(err)
				}
			}
			for v := range xs {
				if _, err := bb.Backward(v, dy); err != nil {
					t.Fatal(err)
				}
			}
		}
		count := func() (free, lent int) {
			for _, f := range bb.pool.free {
				free += len(f)
			}
			return free, len(bb.pool.lent)
		}
		step()
		free1, lent1 := count()
		step()
		free2, lent2 := count()
		// Layers that compute an input gradient: every convolution but the
		// stem's, plus the pooling; batch norms and ReLUs work in place but
		// for the last batch norm of each block.
		layers := 0
		for _, p := range bb.Params() {
			if len(p.Value.Shape) == 4 {
				layers++
			}
		}
		if lent1 != 0 || lent2 != 0 {
			t.Errorf("%s: %d and %d buffers still lent after the steps (the stem returns none)", arch, lent1, lent2)
		}
		if free2 != free1 {
			t.Errorf("%s: the pool grew from %d to %d buffers in a steady-state step", arch, free1, free2)
		}
		// At most 4 gradients of one size are alive at once (in a block:
		// the gradient of the sum, and the input and output of a layer).
		if sizes := len(bb.pool.free); free1 == 0 || free1 > 4*sizes || free1 >= layers {
			t.Errorf("%s: the pool holds %d buffers of %d sizes for %d convolutions; want at most 4 per size and fewer than the convolutions", arch, free1, sizes, layers)
		}
	}
}
