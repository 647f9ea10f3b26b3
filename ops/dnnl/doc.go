// Package dnnl is the fast CPU backend: ops.Backend implemented on oneDNN
// 2.6 (Debian's libdnnl, C API) through cgo.
//
// # Design
//
// Each operator is a small C object (gd_*.c) that owns oneDNN primitives
// and memory objects created ONCE, when Backend.Conv, BatchNorm, MaxPool or
// Linear first sees a spec; the Backend caches operators by spec, so a
// repeated spec returns the same operator. Element-wise operations (ReLU,
// Add, global average pooling) cache their primitives by length or shape.
// Every Go call is one C call that binds the caller's float32 buffers to the
// cached memory objects (dnnl_memory_set_data_handle), executes the
// primitives, waits on the stream and unbinds the buffers again, so C never
// keeps a Go pointer after a call returns (cgo rules). Steady-state calls
// allocate nothing: primitive-layout weight buffers and scratchpads
// (attribute scratchpad_mode = user, one scratchpad per primitive) are
// allocated with the primitive.
//
// Operators keep no per-call state: what Backward needs (inputs, saved
// batch-norm statistics, the max-pooling workspace) comes from the caller, so
// one operator can run the forward passes of two views before both backward
// passes.
//
// # Layouts and reorders
//
// Activations are NHWC on both sides of the API and oneDNN is asked for
// exactly that (format nhwc), so activations are never reordered.
// Convolution primitives are created with weights in format "any"; the
// user's OIHW weights are reordered into the chosen (blocked) layout before
// the forward and backward-data primitives run, and the backward-weights
// result is reordered back to OIHW. Weights are small, so these reorders
// cost little next to the convolutions. The backward primitives are created
// with the forward primitive descriptor as hint. The direct algorithm is
// used; convolution_auto selects the same implementations for NHWC float32.
//
// Batch norm uses separate scale and shift tensors (dnnl_use_scale |
// dnnl_use_shift): training forward outputs the batch mean and biased
// variance, inference uses dnnl_use_global_stats, and the backward pass
// (prop kind backward) gives dx, dgamma and dbeta. BatchNorm2d data is viewed
// as {N, C, Spatial, 1} in nhwc, BatchNorm1d as {N, C} in nc.
// Max pooling records argmax indices in the caller's workspace
// (WorkspaceBytes from the primitive's workspace descriptor). Linear is a
// oneDNN inner product with plain layouts ([N, In], [Out, In], [N, Out]).
// ReLU's backward uses the forward output (eltwise_relu_use_dst_for_bwd).
//
// # Threading
//
// libdnnl uses the OpenMP runtime (libgomp). omp_set_num_threads is a
// per-OS-thread setting and Go may run a goroutine on any OS thread, so the
// backend's thread count is applied at the start of every C call (it only
// stores an integer). libgomp keeps one worker pool per calling OS thread;
// callers that want exactly one pool can run the training loop on a
// goroutine locked with runtime.LockOSThread.
//
// A Backend and its operators are not safe for concurrent use. Every oneDNN
// status is checked and returned as an error naming the operation, the
// failed step and the status string; nothing panics.
package dnnl
