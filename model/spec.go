// Package model owns what a trained network is on disk and in memory: the
// model spec, network construction, the run directory's layout, every
// checkpoint metadata key, saving and loading weights and training state,
// and running a network over a dataset to get its features. The trainer,
// the encoder (the inference face of the toolkit) and the commands all go
// through it, so the checkpoint format is written down in one place.
package model

import (
	"fmt"
	"math/rand"

	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
)

// Spec is what it takes to rebuild a network: it is stored in every
// checkpoint's metadata (MetaModel).
type Spec struct {
	Arch        string `json:"arch"`
	Stem        string `json:"stem"`
	Width       int    `json:"width"`
	InChannels  int    `json:"in_channels"`
	Projector   string `json:"projector"`
	ProjectorBN bool   `json:"projector_bn"`
	ZeroInit    bool   `json:"zero_init_residual"`
	// ProjectorLastBias gives the projector's last linear layer a bias
	// (BYOL's and MoCo's projectors); ProjectorOutBN ends it with
	// BatchNorm1d(affine=False) (SimSiam's).
	ProjectorLastBias bool `json:"projector_last_bias,omitempty"`
	ProjectorOutBN    bool `json:"projector_out_bn,omitempty"`
	// Predictor is the predictor MLP on the projector output ("1024-64":
	// hidden sizes, then the output size, which must equal the
	// projector's), with batch norm after every hidden layer and a bias on
	// the last (BYOL's and SimSiam's); "" for none.
	Predictor string `json:"predictor,omitempty"`
	// NumClasses > 0 makes the network a classifier: the backbone and
	// torchvision's "fc" head of that many classes, no projector (a
	// fine-tuned network). 0: the backbone and the projector.
	NumClasses int `json:"num_classes,omitempty"`
}

// Classifier returns the spec of a classifier of numClasses classes on
// s's backbone: the backbone's fields kept, every projector and predictor
// field cleared (a fine-tuned network has the head instead).
func (s Spec) Classifier(numClasses int) Spec {
	return Spec{Arch: s.Arch, Stem: s.Stem, Width: s.Width, InChannels: s.InChannels, ZeroInit: s.ZeroInit,
		NumClasses: numClasses}
}

// Archs lists the backbones NewNetwork builds.
func Archs() []string { return []string{"resnet18", "resnet34", "resnet50"} }

// Stems lists the ResNet stems NewNetwork builds.
func Stems() []string { return []string{"cifar", "imagenet"} }

// NewNetwork builds the backbone and projector (or, for a classifier spec,
// the head) of spec on be with weights drawn from rng.
func NewNetwork(be ops.Backend, spec Spec, rng *rand.Rand) (*nn.Network, error) {
	bb, err := nn.NewResNet(be, nn.ResNetConfig{Arch: spec.Arch, Width: spec.Width, InChannels: spec.InChannels,
		Stem: spec.Stem, ZeroInitResidual: spec.ZeroInit}, rng)
	if err != nil {
		return nil, fmt.Errorf("building the backbone: %w", err)
	}
	if spec.NumClasses > 0 {
		if spec.Projector != "" || spec.Predictor != "" {
			return nil, fmt.Errorf("a classifier spec (%d classes) with a projector %q and a predictor %q: a network has a head or those",
				spec.NumClasses, spec.Projector, spec.Predictor)
		}
		head, err := nn.NewLinear(be, "fc", bb.FeatureDim(), spec.NumClasses, true, rng)
		if err != nil {
			return nil, fmt.Errorf("building the head: %w", err)
		}
		return &nn.Network{Backbone: bb, Head: head}, nil
	}
	proj, err := nn.NewMLP(be, nn.MLPConfig{In: bb.FeatureDim(), Spec: spec.Projector, BN: spec.ProjectorBN,
		LastBias: spec.ProjectorLastBias, OutBN: spec.ProjectorOutBN, Prefix: "projector"}, rng)
	if err != nil {
		return nil, fmt.Errorf("building the projector: %w", err)
	}
	net := &nn.Network{Backbone: bb, Projector: proj}
	if spec.Predictor != "" {
		pred, err := nn.NewMLP(be, nn.MLPConfig{In: proj.OutDim(), Spec: spec.Predictor, BN: true, LastBias: true,
			Prefix: "predictor"}, rng)
		if err != nil {
			return nil, fmt.Errorf("building the predictor: %w", err)
		}
		if pred.OutDim() != proj.OutDim() {
			return nil, fmt.Errorf("the predictor %q ends in %d outputs, the projector %q in %d: they must be equal",
				spec.Predictor, pred.OutDim(), spec.Projector, proj.OutDim())
		}
		net.Predictor = pred
	}
	return net, nil
}

// NewMomentum builds the momentum network of online (built from spec): a
// network of spec without the predictor, its weights then copied from
// online's backbone and projector (nn.NewMomentum), tau from baseTau to
// finalTau over steps optimizer steps. rng only draws the initial weights
// that the copy replaces.
func NewMomentum(be ops.Backend, spec Spec, online *nn.Network, baseTau, finalTau float64, steps int, rng *rand.Rand) (*nn.Momentum, error) {
	spec.Predictor = ""
	target, err := NewNetwork(be, spec, rng)
	if err != nil {
		return nil, fmt.Errorf("building the momentum network: %w", err)
	}
	return nn.NewMomentum(online, target, baseTau, finalTau, steps)
}
