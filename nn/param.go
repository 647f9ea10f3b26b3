package nn

import "github.com/corinfomax/corinfomax/tensor"

// ParamKind tells optimizers how a parameter is treated: LARS and weight
// decay exclusions follow solo-learn (biases and batch-norm parameters are
// excluded from LARS adaptation and weight decay when asked).
type ParamKind int

const (
	// KindWeight is a convolution or linear weight.
	KindWeight ParamKind = iota
	// KindBias is a convolution or linear bias.
	KindBias
	// KindBNWeight is a batch-norm scale (gamma).
	KindBNWeight
	// KindBNBias is a batch-norm shift (beta).
	KindBNBias
)

// Param is a trainable tensor with its gradient. Name is the key the
// parameter has in a torchvision state_dict ("layer1.0.conv1.weight") or
// "projector.N.weight" for the projector.
type Param struct {
	Name  string
	Kind  ParamKind
	Value *tensor.Tensor
	Grad  *tensor.Tensor
}

// Buffer is a non-trainable tensor saved with the model, such as a
// batch-norm running mean ("bn1.running_mean") or variance.
type Buffer struct {
	Name  string
	Value *tensor.Tensor
}

// NewParam returns a parameter of the given shape with a zero gradient.
func NewParam(name string, kind ParamKind, shape ...int) *Param {
	return &Param{Name: name, Kind: kind, Value: tensor.New(shape...), Grad: tensor.New(shape...)}
}
