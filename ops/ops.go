// Package ops defines the engine's operator set: the small, explicit list of
// compute kernels every layer is built from. A Backend implements the set.
// Two backends exist: ops/ref (plain Go, float64 accumulation, the test
// oracle) and ops/dnnl (oneDNN through cgo, the fast path). A later GPU
// backend implements the same interfaces.
//
// Conventions (see package tensor):
//   - image activations are NHWC (channels last), contiguous;
//   - convolution weights are OIHW, linear weights [out, in] (PyTorch's order);
//   - every Backward OVERWRITES its outputs (dx, dw, db, ...); callers that
//     need accumulation add the result themselves;
//   - a nil output in Backward means "not needed" (e.g. dx of the first
//     convolution) and is skipped;
//   - operators keep no per-call state between Forward and Backward: anything
//     the backward pass needs is passed back in by the caller (inputs,
//     outputs, saved statistics, workspaces). One operator object may
//     therefore serve several forward passes (the two SSL views) before their
//     backward passes.
//
// Every backend checks the arguments of each call with one of this package's
// checkers (CheckConvForward, CheckBNBackward, ...), so all backends accept
// and refuse the same arguments with the same errors.
//
// Operators are created once per shape by a Backend and reused across steps.
// A Backend and its operators are not safe for concurrent use.
package ops

import (
	"fmt"
	"math"
)

// ConvSpec describes a 2-D convolution (groups = 1, square stride/padding).
type ConvSpec struct {
	N, H, W, C int // input batch, height, width, channels (NHWC)
	K          int // output channels
	KH, KW     int // kernel height and width
	Stride     int // stride in both directions (>= 1)
	Pad        int // zero padding on every side (>= 0)
	Bias       bool
}

// OutHW returns the output height and width of the convolution.
func (s ConvSpec) OutHW() (int, int) {
	return (s.H+2*s.Pad-s.KH)/s.Stride + 1, (s.W+2*s.Pad-s.KW)/s.Stride + 1
}

// Validate reports an error when the spec cannot describe a convolution.
func (s ConvSpec) Validate() error {
	if s.N < 1 || s.H < 1 || s.W < 1 || s.C < 1 || s.K < 1 || s.KH < 1 || s.KW < 1 || s.Stride < 1 || s.Pad < 0 {
		return fmt.Errorf("ops: invalid convolution %+v", s)
	}
	if oh, ow := s.OutHW(); oh < 1 || ow < 1 {
		return fmt.Errorf("ops: convolution %+v has an empty output", s)
	}
	return nil
}

// Conv is a 2-D convolution y = conv(x, w) + b.
// Shapes: x N*H*W*C (NHWC), w K*C*KH*KW (OIHW), b K (or nil when the spec
// has no bias), y N*OH*OW*K (NHWC).
type Conv interface {
	Forward(x, w, b, y []float32) error
	// Backward writes dx (skipped when nil), dw, and db (skipped when nil).
	Backward(x, w, dy, dx, dw, db []float32) error
}

// BNSpec describes batch normalisation over channels. The input is viewed
// as [N, Spatial, C]: Spatial = H*W for BatchNorm2d on NHWC activations and
// Spatial = 1 for BatchNorm1d on N x C features.
type BNSpec struct {
	N, Spatial, C int
	Eps           float32 // 1e-5 as in PyTorch
}

// Validate reports an error when the spec cannot describe a batch
// normalisation: a size below 1, or an Eps that is negative or NaN.
func (s BNSpec) Validate() error {
	if s.N < 1 || s.Spatial < 1 || s.C < 1 || s.Eps < 0 || math.IsNaN(float64(s.Eps)) {
		return fmt.Errorf("ops: invalid batch norm %+v", s)
	}
	return nil
}

// BatchNorm normalises x per channel and applies the affine transform
// y = gamma * (x - mean) / sqrt(var + eps) + beta.
type BatchNorm interface {
	// ForwardTrain uses the batch statistics and writes them to mean and
	// variance (length C; the variance is the biased one, divided by
	// N*Spatial). The caller updates running statistics from them.
	ForwardTrain(x, gamma, beta, y, mean, variance []float32) error
	// ForwardInfer uses the given running statistics.
	ForwardInfer(x, gamma, beta, runMean, runVar, y []float32) error
	// Backward is the training-mode gradient given the statistics saved by
	// ForwardTrain; it writes dx, dgamma and dbeta (each skipped when nil).
	// dx may alias dy.
	Backward(x, gamma, mean, variance, dy, dx, dgamma, dbeta []float32) error

	// The pieces of the training pass that data-parallel workers combine
	// (synchronised batch norm: the workers add up their sums, normalise
	// with ForwardInfer and differentiate with BackwardGiven).

	// Sums writes, per channel, s1 = sum(x - shift) and s2 = sum((x -
	// shift)^2) over the N*Spatial rows, accumulated in float64. The shift
	// (length C, e.g. the running mean) keeps s2 - s1^2/M well conditioned.
	Sums(x, shift []float32, s1, s2 []float64) error
	// GradSums writes, per channel, sdy = sum(dy) and sdyx = sum(dy * (x -
	// mean)), accumulated in float64.
	GradSums(x, mean, dy []float32, sdy, sdyx []float64) error
	// BackwardGiven writes the training-mode input gradient from sums over
	// m values per channel (every worker's): with inv = 1/sqrt(variance +
	// eps), dx = gamma*inv*(dy - sdy/m - (x - mean)*inv^2*sdyx/m). dx may
	// alias dy.
	BackwardGiven(x, gamma, mean, variance, dy []float32, sdy, sdyx []float64, m int, dx []float32) error
}

// PoolSpec describes max pooling over NHWC input (e.g. the ImageNet stem's
// 3x3, stride 2, padding 1).
type PoolSpec struct {
	N, H, W, C          int
	Kernel, Stride, Pad int
}

// OutHW returns the output height and width of the pooling.
func (s PoolSpec) OutHW() (int, int) {
	return (s.H+2*s.Pad-s.Kernel)/s.Stride + 1, (s.W+2*s.Pad-s.Kernel)/s.Stride + 1
}

// Validate reports an error when the spec cannot describe a max pooling: a
// size, kernel or stride below 1, a negative padding, a padding of a whole
// kernel or more (a window could then hold no input element) or an empty
// output. A backend may refuse more (package ref, as PyTorch, allows at
// most half a kernel of padding).
func (s PoolSpec) Validate() error {
	if s.N < 1 || s.H < 1 || s.W < 1 || s.C < 1 || s.Kernel < 1 || s.Stride < 1 || s.Pad < 0 || s.Pad >= s.Kernel {
		return fmt.Errorf("ops: invalid max pool %+v", s)
	}
	if oh, ow := s.OutHW(); oh < 1 || ow < 1 {
		return fmt.Errorf("ops: max pool %+v has an empty output", s)
	}
	return nil
}

// MaxPool is max pooling. Forward records in ws (exactly WorkspaceBytes
// long, owned by the caller) what Backward needs.
type MaxPool interface {
	WorkspaceBytes() int
	Forward(x, y []float32, ws []byte) error
	Backward(dy []float32, ws []byte, dx []float32) error
}

// LinearSpec describes a fully connected layer y = x w^T + b.
type LinearSpec struct {
	N, In, Out int
	Bias       bool
}

// Validate reports an error when the spec cannot describe a linear layer
// (a size below 1).
func (s LinearSpec) Validate() error {
	if s.N < 1 || s.In < 1 || s.Out < 1 {
		return fmt.Errorf("ops: invalid linear %+v", s)
	}
	return nil
}

// Linear is a fully connected layer. Shapes: x N*In, w Out*In, b Out (or
// nil without bias), y N*Out.
type Linear interface {
	Forward(x, w, b, y []float32) error
	// Backward writes dx (skipped when nil), dw, and db (skipped when nil).
	Backward(x, w, dy, dx, dw, db []float32) error
}

// Backend creates operators and runs the element-wise ones.
type Backend interface {
	// Name identifies the backend ("ref", "dnnl").
	Name() string
	// Threads is the number of threads the backend's kernels use.
	Threads() int
	// Precision is the arithmetic the backend's heavy operators use.
	Precision() Precision

	Conv(ConvSpec) (Conv, error)
	BatchNorm(BNSpec) (BatchNorm, error)
	MaxPool(PoolSpec) (MaxPool, error)
	Linear(LinearSpec) (Linear, error)

	// ReLU writes y = max(x, 0); y may alias x.
	ReLU(x, y []float32) error
	// ReLUBackward writes dx = dy where y > 0, else 0, from the forward
	// OUTPUT y; dx may alias dy.
	ReLUBackward(y, dy, dx []float32) error
	// Add writes y = a + b (residual connections, gradient accumulation);
	// y may alias a or b.
	Add(a, b, y []float32) error
	// GlobalAvgPool averages NHWC x (n*hw*c) over its hw positions into y (n*c).
	GlobalAvgPool(x []float32, n, hw, c int, y []float32) error
	// GlobalAvgPoolBackward spreads dy (n*c) evenly into dx (n*hw*c).
	GlobalAvgPoolBackward(dy []float32, n, hw, c int, dx []float32) error

	// Close releases the backend's resources; operators must not be used
	// afterwards.
	Close() error
}
