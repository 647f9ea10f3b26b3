package nn

import (
	"fmt"
	"math/rand"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
)

// ResNetConfig describes a torchvision-style ResNet backbone.
type ResNetConfig struct {
	// Arch is "resnet18", "resnet34" or "resnet50".
	Arch string
	// Width is the number of channels of the stem and of layer1's planes
	// (64 in torchvision); layer2..4 use 2, 4 and 8 times Width.
	Width int
	// InChannels is the number of image channels (3 for RGB, 1 for grey).
	InChannels int
	// Stem is "cifar" (conv 3x3 stride 1 padding 1, no max-pool) or
	// "imagenet" (conv 7x7 stride 2 padding 3, max-pool 3x3 stride 2
	// padding 1).
	Stem string
	// ZeroInitResidual starts the last batch norm of every block at zero
	// weight (bn2 in BasicBlock, bn3 in Bottleneck).
	ZeroInitResidual bool
	// NumClasses > 0 adds torchvision's "fc" linear head (supervised
	// training); 0 ends the network at the pooled features.
	NumClasses int
}

// ResNet is a ResNet backbone: stem, layer1..4, global average pooling,
// and the optional fc head. Input: an NHWC image batch [N, H, W,
// InChannels]. Output: [N, FeatureDim()] features, or [N, NumClasses]
// logits with the head. Parameter and buffer names equal torchvision's
// state_dict keys (without num_batches_tracked).
//
// The stem convolution does not compute the image gradient by default
// (Backward returns nil); SetInputGrad(true) turns it on.
type ResNet struct {
	Config  ResNetConfig
	Conv1   *Conv2d
	BN1     *BatchNorm
	MaxPool *MaxPool2d // nil for the CIFAR stem
	// Stages are layer1..layer4; each holds *BasicBlock or *Bottleneck.
	Stages [4][]Layer
	FC     *Linear // nil without a head

	seq        *Sequential
	params     []*Param // cached for ZeroGrad
	featureDim int
	pool       *gradPool      // input gradients of all layers
	out        *tensor.Tensor // the gradient the last Backward returned
}

// NewResNet builds the backbone with torchvision's initialisation:
// convolutions kaiming_normal_(mode="fan_out", nonlinearity="relu"), batch
// norm weight 1 and bias 0 (last of each block 0 with ZeroInitResidual), fc
// like nn.Linear's default.
func NewResNet(be ops.Backend, cfg ResNetConfig, rng *rand.Rand) (*ResNet, error) {
	var blocks [4]int
	bottleneck := false
	switch cfg.Arch {
	case "resnet18":
		blocks = [4]int{2, 2, 2, 2}
	case "resnet34":
		blocks = [4]int{3, 4, 6, 3}
	case "resnet50":
		blocks = [4]int{3, 4, 6, 3}
		bottleneck = true
	default:
		return nil, fmt.Errorf("nn: unknown ResNet architecture %q (want resnet18, resnet34 or resnet50)", cfg.Arch)
	}
	if cfg.Width < 1 {
		return nil, fmt.Errorf("nn: ResNet width %d < 1", cfg.Width)
	}
	if cfg.InChannels < 1 {
		return nil, fmt.Errorf("nn: ResNet input channels %d < 1", cfg.InChannels)
	}
	if cfg.NumClasses < 0 {
		return nil, fmt.Errorf("nn: ResNet classes %d < 0", cfg.NumClasses)
	}
	if be == nil || rng == nil {
		return nil, fmt.Errorf("nn: NewResNet needs a backend and a random source")
	}
	r := &ResNet{Config: cfg}
	var err error
	var layers []Layer
	switch cfg.Stem {
	case "cifar":
		if r.Conv1, err = NewConv2d(be, "conv1", cfg.InChannels, cfg.Width, 3, 1, 1, false, rng); err != nil {
			return nil, err
		}
	case "imagenet":
		if r.Conv1, err = NewConv2d(be, "conv1", cfg.InChannels, cfg.Width, 7, 2, 3, false, rng); err != nil {
			return nil, err
		}
		if r.MaxPool, err = NewMaxPool2d(be, 3, 2, 1); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("nn: unknown ResNet stem %q (want cifar or imagenet)", cfg.Stem)
	}
	r.Conv1.SkipInputGrad = true
	if r.BN1, err = NewBatchNorm(be, "bn1", cfg.Width); err != nil {
		return nil, err
	}
	r.BN1.InPlaceGrad = true
	layers = append(layers, r.Conv1, r.BN1, &ReLU{InPlace: true, InPlaceGrad: true, be: be})
	if r.MaxPool != nil {
		layers = append(layers, r.MaxPool)
	}

	in := cfg.Width
	for stage := range 4 {
		planes := cfg.Width << stage
		for i := range blocks[stage] {
			stride := 1
			if i == 0 && stage > 0 {
				stride = 2
			}
			name := fmt.Sprintf("layer%d.%d", stage+1, i)
			var block Layer
			if bottleneck {
				block, err = NewBottleneck(be, name, in, planes, stride, cfg.ZeroInitResidual, rng)
				in = planes * BottleneckExpansion
			} else {
				block, err = NewBasicBlock(be, name, in, planes, stride, cfg.ZeroInitResidual, rng)
				in = planes
			}
			if err != nil {
				return nil, err
			}
			r.Stages[stage] = append(r.Stages[stage], block)
			layers = append(layers, block)
		}
	}
	r.featureDim = in
	layers = append(layers, NewGlobalAvgPool(be))
	if cfg.NumClasses > 0 {
		if r.FC, err = NewLinear(be, "fc", in, cfg.NumClasses, true, rng); err != nil {
			return nil, err
		}
		layers = append(layers, r.FC)
	}
	r.seq = NewSequential(layers...)
	r.pool = newGradPool()
	useGradPool(r.seq, r.pool)
	r.params = r.seq.Params()
	return r, nil
}

// FeatureDim is the size of the pooled features: 8*Width for resnet18/34
// (512 at Width 64), 32*Width for resnet50 (2048).
func (r *ResNet) FeatureDim() int { return r.featureDim }

// SetInputGrad chooses whether Backward computes the image gradient (off by
// default: training never needs it).
func (r *ResNet) SetInputGrad(on bool) { r.Conv1.SkipInputGrad = !on }

// Forward runs the network on NHWC images x [N, H, W, InChannels].
func (r *ResNet) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := r.seq.Forward(slot, x)
	if err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	return y, nil
}

// Backward adds every parameter gradient and returns the image gradient
// (nil unless SetInputGrad(true)).
// The returned gradient (nil when the stem skips it, as in every network
// built here) is valid until the next Backward.
func (r *ResNet) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	r.pool.release(r.out)
	r.out = nil
	dx, err := r.seq.Backward(slot, dy)
	if err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	r.out = dx
	return dx, nil
}

// ZeroGrad sets every parameter gradient to zero (without allocating).
func (r *ResNet) ZeroGrad() { ZeroGrad(r.params) }

// Params lists the parameters in torchvision's order.
func (r *ResNet) Params() []*Param { return r.seq.Params() }

// Buffers lists the batch-norm running statistics in torchvision's order.
func (r *ResNet) Buffers() []*Buffer { return r.seq.Buffers() }

// SetTraining switches every batch norm between batch and running
// statistics.
func (r *ResNet) SetTraining(training bool) { r.seq.SetTraining(training) }
