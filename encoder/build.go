package encoder

import (
	"fmt"
	"math/rand"

	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/dnnl"
	"github.com/corinfomax/corinfomax/ops/ref"
)

// NewBackend returns the named operator backend ("dnnl" or "ref") using
// threads threads (0: all cores) at the given precision: "fp32" (or "")
// everywhere, or "bf16" for bfloat16 convolutions on the dnnl backend (see
// dnnl.Options.BF16).
func NewBackend(name string, threads int, precision string) (ops.Backend, error) {
	if precision != "" && precision != "fp32" && precision != "bf16" {
		return nil, fmt.Errorf("unknown precision %q (want fp32 or bf16)", precision)
	}
	bf16 := precision == "bf16"
	switch name {
	case "dnnl", "":
		b, err := dnnl.NewWithOptions(dnnl.Options{Threads: threads, BF16: bf16})
		if err != nil {
			return nil, fmt.Errorf("starting the oneDNN backend: %w", err)
		}
		return b, nil
	case "ref":
		if bf16 {
			return nil, fmt.Errorf("precision bf16 needs the dnnl backend (the ref backend is float32/float64 only)")
		}
		return ref.New(), nil
	}
	return nil, fmt.Errorf("unknown backend %q (want dnnl or ref)", name)
}

// ModelSpec is what it takes to rebuild a network: it is stored in every
// checkpoint's metadata.
type ModelSpec struct {
	Arch        string `json:"arch"`
	Stem        string `json:"stem"`
	Width       int    `json:"width"`
	InChannels  int    `json:"in_channels"`
	Projector   string `json:"projector"`
	ProjectorBN bool   `json:"projector_bn"`
	ZeroInit    bool   `json:"zero_init_residual"`
}

// NewNetwork builds the backbone and projector of spec with weights drawn
// from rng.
func NewNetwork(be ops.Backend, spec ModelSpec, rng *rand.Rand) (*nn.Network, error) {
	bb, err := nn.NewResNet(be, nn.ResNetConfig{Arch: spec.Arch, Width: spec.Width, InChannels: spec.InChannels,
		Stem: spec.Stem, ZeroInitResidual: spec.ZeroInit}, rng)
	if err != nil {
		return nil, fmt.Errorf("building the backbone: %w", err)
	}
	proj, err := nn.NewMLP(be, nn.MLPConfig{In: bb.FeatureDim(), Spec: spec.Projector, BN: spec.ProjectorBN,
		Prefix: "projector"}, rng)
	if err != nil {
		return nil, fmt.Errorf("building the projector: %w", err)
	}
	return &nn.Network{Backbone: bb, Projector: proj}, nil
}
