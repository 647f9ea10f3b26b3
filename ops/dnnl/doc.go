// Package dnnl is the fast CPU backend: ops.Backend implemented on oneDNN
// 2.6 (Debian's libdnnl, C API) through cgo, plus hand-written C kernels
// where oneDNN is slow.
//
// # Design
//
// Each operator is a small C object (gd_*.c) created ONCE, when
// Backend.Conv, BatchNorm, MaxPool or Linear first sees a spec; the Backend
// caches operators by spec, so a repeated spec returns the same operator.
// ReLU, Add and global average pooling cache theirs by length or shape.
// Every Go call is one C call. For a oneDNN operator it binds the caller's
// float32 buffers to the operator's memory objects
// (dnnl_memory_set_data_handle), executes, waits on the stream and unbinds
// the buffers again; the batch-norm kernels read and write the caller's
// buffers directly. Either way C never keeps a Go pointer after a call
// returns (cgo rules).
//
// Operators keep no per-call state: what Backward needs (inputs, saved
// batch-norm statistics, the max-pooling workspace) comes from the caller, so
// one operator can run the forward passes of two views before both backward
// passes.
//
// # Where each operation runs
//
//   - Convolution (forward, backward data, backward weights): oneDNN
//     convolution primitives, direct algorithm (convolution_auto selects the
//     same implementations for NHWC float32). The backward primitives are
//     created with the forward primitive descriptor as hint.
//   - Batch normalisation (training forward, inference forward, backward):
//     our own C kernels in gd_bnk.c, not oneDNN, whose NHWC batch norm is
//     slow at the narrow channel counts of CPU-sized ResNets. Data is viewed
//     as rows x C (rows = N * Spatial, BatchNorm1d has Spatial = 1); per-channel
//     sums are accumulated in double per OpenMP thread over contiguous row
//     blocks, in registers, a block of channels at a time (32, 16, 8, 1),
//     each thread's partial sums on cache lines of their own, and reduced in
//     thread order (deterministic for a thread count); the training
//     forward returns the batch mean and biased variance. The loops are
//     built in AVX-512, AVX2 and baseline variants (target_clones).
//   - Max pooling: a oneDNN pooling primitive that records its argmax in the
//     caller's workspace (WorkspaceBytes from the primitive's workspace
//     descriptor). Global average pooling: a oneDNN average pooling over an
//     hw x 1 window.
//   - Linear: a oneDNN inner product with plain layouts ([N, In], [Out, In],
//     [N, Out]).
//   - ReLU: a oneDNN eltwise primitive; its backward reads the forward
//     output (eltwise_relu_use_dst_for_bwd).
//   - Add: a Go loop up to smallElementwise (16,384) values, where a
//     primitive call costs more than the loop (gradient accumulation into
//     weights and batch-norm parameters); a oneDNN binary-add primitive for
//     longer vectors (residual sums and their gradients).
//   - BLAS32 replaces gonum's float32 Sgemm by dnnl_sgemm for programs that
//     opt in (the corinfomax command does, for the evaluators).
//
// # Layouts and reorders
//
// Activations are NHWC on both sides of the API and oneDNN is asked for
// exactly that (format nhwc), so activations are never reordered in float32
// mode. Convolution primitives are created with weights in format "any"; the
// caller's OIHW weights are reordered into the chosen (blocked) layout before
// the forward and backward-data primitives run, and the backward-weights
// result is reordered back to OIHW. Weights are small, so these reorders
// cost little next to the convolutions.
//
// # Shared buffers
//
// One Backend (the C context gd_ctx, see gd.h) owns a few buffers that every
// operator uses only for the duration of a call: the primitives'
// scratchpads (every primitive is created with scratchpad_mode = user and
// bound to the one shared scratchpad at execution), the weights and weight
// gradients in a primitive's layout, and the bfloat16 copies of
// activations and output gradients. Operators reserve their sizes when they
// are created; each buffer grows to the largest reservation, so memory is
// the largest single need rather than a sum over layers, and steady-state
// calls allocate nothing. The batch-norm kernels own their small
// per-channel scratch (partial sums, coefficients).
//
// # bfloat16
//
// With Options.BF16 (CPUs with AVX512-BF16 only, see BF16Supported) the
// convolutions compute in bfloat16: their float32 activations, weights and
// output gradients are converted on entry into the shared buffers, products
// accumulate in float32, and outputs, input gradients and weight gradients
// stay float32. Forward and backward data read NHWC bfloat16 (with "any"
// next to a float32 NHWC output oneDNN 2.6 falls back to its reference
// kernels); backward weights reads the layout it prefers. Batch norm, pooling,
// ReLU, Add and Linear stay float32.
//
// # Threading
//
// libdnnl and the batch-norm kernels use the OpenMP runtime (libgomp).
// omp_set_num_threads is a per-OS-thread setting and Go may run a goroutine
// on any OS thread, so the backend's thread count is applied at the start of
// every C call (it only stores an integer); the batch-norm kernels fix their
// thread count when the operator is created (one thread below 64 rows).
// libgomp keeps one worker pool per calling OS thread. BindThreads
// (ops.ThreadBinder) binds the calling OS thread and its pool's workers one
// per core; ops.OnComputeThread runs work on a locked goroutine so bound.
// Such a goroutine never passes through the Go scheduler by itself, and
// after 10 ms the runtime's sysmon thread starts retaking its P on every cgo
// call, waking every 20 µs; the convolutions therefore call
// runtime.Gosched every 2 ms (Backend.yield), which keeps sysmon asleep.
//
// A Backend and its operators are not safe for concurrent use. Every oneDNN
// status is checked and returned as an error naming the operation, the
// failed step and the status string; nothing panics except BLAS32's bounds
// checks, as the blas interface specifies.
package dnnl
