package nn_test

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/dnnl"
	"github.com/corinfomax/corinfomax/tensor"
)

// TestDeterministicTwoThreads runs the same forward and backward pass of a
// ResNet-18 with a projector twice on the oneDNN backend with 2 threads and
// requires bit-identical outputs and gradients: a resumed run equals an
// uninterrupted one only if every operator is run-to-run deterministic.
func TestDeterministicTwoThreads(t *testing.T) {
	be, err := dnnl.New(2)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	err = ops.OnComputeThread(be, func(string) error {
		run := func() (map[string][]float32, error) {
			rng := rand.New(rand.NewSource(1))
			bb, err := nn.NewResNet(be, nn.ResNetConfig{Arch: "resnet18", Width: 4, InChannels: 1, Stem: "cifar", ZeroInitResidual: true}, rng)
			if err != nil {
				return nil, err
			}
			proj, err := nn.NewMLP(be, nn.MLPConfig{In: bb.FeatureDim(), Spec: "32-16", BN: true, Prefix: "projector"}, rng)
			if err != nil {
				return nil, err
			}
			net := &nn.Network{Backbone: bb, Projector: proj}
			x := tensor.New(10, 12, 12, 1)
			for i := range x.Data {
				x.Data[i] = float32(rng.NormFloat64())
			}
			out := map[string][]float32{}
			for step := 0; step < 2; step++ {
				net.ZeroGrad()
				_, z, err := net.Forward(0, x)
				if err != nil {
					return nil, err
				}
				out[fmt.Sprintf("z%d", step)] = append([]float32(nil), z.Data...)
				dz := tensor.New(z.Shape...)
				for i := range dz.Data {
					dz.Data[i] = float32(rng.NormFloat64())
				}
				if err := net.Backward(0, dz); err != nil {
					return nil, err
				}
				for _, p := range net.Params() {
					out[fmt.Sprintf("%d:%s", step, p.Name)] = append([]float32(nil), p.Grad.Data...)
					for i := range p.Value.Data { // a small update, so the second pass sees new weights
						p.Value.Data[i] -= 0.1 * p.Grad.Data[i]
					}
				}
			}
			return out, nil
		}
		a, err := run()
		if err != nil {
			return err
		}
		for rep := 0; rep < 3; rep++ {
			b, err := run()
			if err != nil {
				return err
			}
			for name, va := range a {
				for i, v := range va {
					if b[name][i] != v {
						t.Errorf("repeat %d: %s[%d] = %v, first run %v", rep+1, name, i, b[name][i], v)
						break
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
