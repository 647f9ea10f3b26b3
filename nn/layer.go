// Package nn builds layers and models (ResNet backbones, MLP projectors) on
// top of the operator set of package ops. Every layer has an explicit
// Forward and Backward; nothing is recorded implicitly.
//
// Slots. A forward pass keeps what its backward pass needs (inputs, outputs,
// batch-norm statistics) in a numbered slot until that slot's Backward. The
// two views of a self-supervised step use slots 0 and 1: two separate
// forward passes, so batch-norm statistics are per view as in the reference
// implementation, followed by the two backward passes. Evaluation uses slot
// 0. The input tensor given to Forward is referenced, not copied: it must
// stay unchanged until the slot's Backward.
//
// Buffers. Activations are allocated on first use per slot and shape and
// reused across steps; operators are created once per shape. Input
// gradients are not kept per layer in a network: ResNet and MLP lend them
// from a gradient pool and give each back once consumed, and batch norm and ReLU
// compute theirs in place where the builders know the incoming gradient has
// no other reader (so the backward pass holds only the gradients still
// alive, as autograd does). A tensor returned by a network's Backward is
// valid until its next Backward; a layer built on its own keeps a private
// input-gradient buffer, valid until its next Backward.
//
// Gradients. Backward ACCUMULATES parameter gradients into Param.Grad (so
// the two views add up); call ZeroGrad (or the optimizer's) before a step.
package nn

import (
	"fmt"
	"strconv"

	"github.com/corinfomax/corinfomax/tensor"
)

// Layer is a differentiable module with parameters and buffers.
type Layer interface {
	// Forward computes the output for x and keeps what Backward needs in
	// the given slot. The returned tensor is owned by the layer and valid
	// until the next Forward of the same slot.
	Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error)
	// Backward takes dL/dy for the slot's last Forward, adds the parameter
	// gradients into Param.Grad and returns dL/dx (nil when the layer was
	// told not to compute it, e.g. the stem convolution).
	Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error)
	// Params lists the trainable parameters in a stable order.
	Params() []*Param
	// Buffers lists the non-trainable saved tensors in a stable order.
	Buffers() []*Buffer
	// SetTraining switches between training (batch statistics) and
	// inference (running statistics) behaviour.
	SetTraining(bool)
}

// ZeroGrad sets the gradient of every parameter to zero.
func ZeroGrad(params []*Param) {
	for _, p := range params {
		p.Grad.Zero()
	}
}

// slotAt returns the state of slot i, growing the slice as needed.
func slotAt[T any](slots *[]T, i int) (*T, error) {
	if i < 0 || i > 64 {
		return nil, fmt.Errorf("nn: slot %d out of range [0, 64]", i)
	}
	for len(*slots) <= i {
		var zero T
		*slots = append(*slots, zero)
	}
	return &(*slots)[i], nil
}

// savedSlot returns the state of slot i for a backward pass, or an error
// when that slot has no forward pass to differentiate. layer and name
// describe the layer in the error (kept apart so that the success path
// builds no string).
func savedSlot[T any](slots []T, i int, ready func(*T) bool, layer, name string) (*T, error) {
	if i < 0 || i >= len(slots) || !ready(&slots[i]) {
		return nil, fmt.Errorf("nn: %s%s: backward on slot %d without a training-mode forward pass", layer, name, i)
	}
	return &slots[i], nil
}

// checkShape returns an error when t's shape differs from want.
func checkShape(layer, name, arg string, t *tensor.Tensor, want ...int) error {
	if t == nil {
		return fmt.Errorf("nn: %s%s: %s is nil", layer, name, arg)
	}
	ok := len(t.Shape) == len(want) && len(t.Data) == tensor.Numel(want)
	for i := 0; ok && i < len(want); i++ {
		ok = t.Shape[i] == want[i]
	}
	if !ok {
		return fmt.Errorf("nn: %s%s: %s has shape %s (%d values), want %s", layer, name, arg, shapeString(t.Shape), len(t.Data), shapeString(want))
	}
	return nil
}

// shapeString formats a shape as "[2 3]" without letting it escape (fmt
// would make every caller's variadic shape a heap allocation).
func shapeString(shape []int) string {
	b := []byte{'['}
	for i, v := range shape {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(v), 10)
	}
	return string(append(b, ']'))
}
