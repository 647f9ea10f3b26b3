// Package tensor holds the float32 tensor type shared by the engine's layers,
// operators and methods. It is deliberately small: a shape and contiguous,
// row-major storage. It is not a general-purpose array library.
//
// Layout conventions used across the project:
//   - activations of images are NHWC (channels last): index ((n*H+h)*W+w)*C+c;
//   - convolution weights are OIHW, exactly as PyTorch stores them;
//   - linear weights are [out, in], exactly as PyTorch stores them;
//   - feature matrices are N x D, row-major.
package tensor

import (
	"fmt"
	"slices"
)

// Tensor is a dense float32 array with row-major (last index fastest) storage.
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zero-filled tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, Numel(shape))}
}

// FromData wraps data (not copied) in a tensor of the given shape. It returns
// an error when len(data) does not match the shape.
func FromData(data []float32, shape ...int) (*Tensor, error) {
	if n := Numel(shape); n != len(data) {
		return nil, fmt.Errorf("tensor: shape %v needs %d values, got %d", shape, n, len(data))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}, nil
}

// Numel returns the number of elements a tensor of the given shape holds.
func Numel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// Len returns the number of elements of t.
func (t *Tensor) Len() int { return len(t.Data) }

// Zero sets every element of t to 0.
func (t *Tensor) Zero() { clear(t.Data) }

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// SameShape reports whether t and o have identical shapes.
func (t *Tensor) SameShape(o *Tensor) bool { return SameShape(t.Shape, o.Shape) }

// SameShape reports whether the shapes a and b are identical.
func SameShape(a, b []int) bool { return slices.Equal(a, b) }

// Ensure returns t when it already has the given shape, and otherwise a new
// zero-filled tensor of that shape (reusing t's storage when it is large
// enough). Layers use it to keep activation buffers across steps.
func Ensure(t *Tensor, shape ...int) *Tensor {
	n := Numel(shape)
	if t == nil {
		return New(shape...)
	}
	if SameShape(t.Shape, shape) {
		return t
	}
	if cap(t.Data) >= n {
		t.Data = t.Data[:n]
	} else {
		t.Data = make([]float32, n)
	}
	t.Shape = append(t.Shape[:0], shape...)
	return t
}

// String describes t's shape.
func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v", t.Shape) }
