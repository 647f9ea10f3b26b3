package dnnl

/*
#cgo CFLAGS: -O3 -Wall -fopenmp
#cgo LDFLAGS: -ldnnl -lgomp -lm
#include <oneapi/dnnl/dnnl_debug.h>
#include "gd.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/cpu"

	"github.com/corinfomax/corinfomax/ops"
)

// Backend is the oneDNN implementation of ops.Backend: one CPU engine, one
// stream, and the operators created on them. Operators are cached by spec:
// asking twice for the same spec returns the same operator. A Backend and its
// operators are not safe for concurrent use.
type Backend struct {
	ctx     *C.gd_ctx
	threads int
	bf16    bool

	convs   map[ops.ConvSpec]*conv
	bns     map[ops.BNSpec]*batchNorm
	pools   map[ops.PoolSpec]*maxPool
	linears map[ops.LinearSpec]*linear
	relus   map[int]*C.gd_relu
	adds    map[int]*C.gd_add
	gaps    map[[3]int]*C.gd_pool

	lastYield time.Time // see yield
}

// yield reschedules the calling goroutine (runtime.Gosched) when it has not
// done so for yieldEvery; the convolutions call it before they enter C.
// A goroutine that stays on the same scheduler tick for 10 ms (the Go
// runtime's forcePreemptNS), as the compute thread's loop of cgo calls
// does, makes sysmon retake its P on every cgo call and poll every 20 µs:
// about 2000 wake-ups a second of threads that then preempt the OpenMP
// workers. Rescheduling every 2 ms keeps sysmon asleep (about 100 wake-ups
// a second, docs/benchmarks.md) for the price of a few microseconds.
func (b *Backend) yield() {
	if now := time.Now(); now.Sub(b.lastYield) >= yieldEvery {
		b.lastYield = now
		runtime.Gosched()
	}
}

// yieldEvery is how often yield reschedules, well under the runtime's
// 10 ms.
const yieldEvery = 2 * time.Millisecond

var _ ops.Backend = (*Backend)(nil)

// errClosed is returned by every call on a closed Backend or its operators.
var errClosed = errors.New("dnnl: backend is closed")

// BF16Supported reports whether this CPU has the AVX512-BF16 instructions
// oneDNN's fast bfloat16 kernels need (elsewhere oneDNN would emulate them,
// slower than float32).
func BF16Supported() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BF16
}

// Precisions lists the precisions this CPU runs fast: fp32 always, bf16
// where BF16Supported.
func Precisions() []ops.Precision {
	if BF16Supported() {
		return []ops.Precision{ops.FP32, ops.BF16}
	}
	return []ops.Precision{ops.FP32}
}

// New creates a float32 Backend whose kernels run on threads OpenMP threads
// (runtime.GOMAXPROCS(0) when threads <= 0).
func New(threads int) (*Backend, error) {
	return NewWithOptions(ops.BackendOptions{Threads: threads})
}

// NewWithOptions creates a Backend configured by o. With ops.BF16,
// convolutions compute in bfloat16: their float32 inputs (activations,
// weights, output gradients) are rounded to bfloat16 on entry, products
// accumulate in float32, and every output, input gradient and weight
// gradient stays float32, so the weights the optimizer updates, batch norm
// and everything after the backbone stay float32. It needs a CPU with
// AVX512-BF16 (see BF16Supported) and is refused elsewhere.
func NewWithOptions(o ops.BackendOptions) (*Backend, error) {
	threads := o.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
		// Ranks of one MPI job sharing this machine's CPUs (mpirun
		// --bind-to none) split them rather than each taking all.
		if _, size := localRank(); size > 1 && threads >= 2*size {
			threads /= size
		}
	}
	prec, err := ops.ParsePrecision(string(o.Precision))
	if err != nil {
		return nil, fmt.Errorf("dnnl: %w", err)
	}
	isBF16 := prec == ops.BF16
	if isBF16 && !BF16Supported() {
		return nil, errors.New("dnnl: bfloat16 precision needs a CPU with AVX512-BF16 instructions, which this one lacks (use float32)")
	}
	bf := 0
	if isBF16 {
		bf = 1
	}
	var where *C.char
	var ctx *C.gd_ctx
	if st := C.gd_ctx_create(&ctx, C.int(threads), C.int(bf), &where); st != C.dnnl_success {
		return nil, statusError("create backend", st, where)
	}
	return &Backend{
		ctx:     ctx,
		threads: threads,
		bf16:    isBF16,
		convs:   map[ops.ConvSpec]*conv{},
		bns:     map[ops.BNSpec]*batchNorm{},
		pools:   map[ops.PoolSpec]*maxPool{},
		linears: map[ops.LinearSpec]*linear{},
		relus:   map[int]*C.gd_relu{},
		adds:    map[int]*C.gd_add{},
		gaps:    map[[3]int]*C.gd_pool{},
	}, nil
}

// Name returns "dnnl".
func (b *Backend) Name() string { return "dnnl" }

// Precision returns ops.BF16 when convolutions compute in bfloat16, else
// ops.FP32.
func (b *Backend) Precision() ops.Precision {
	if b.bf16 {
		return ops.BF16
	}
	return ops.FP32
}

// Threads returns the number of OpenMP threads the kernels use.
func (b *Backend) Threads() int { return b.threads }

// Close releases every primitive and memory object of the backend and its
// operators. Later calls return an error. Close is idempotent.
func (b *Backend) Close() error {
	if b.ctx == nil {
		return nil
	}
	for _, c := range b.convs {
		c.destroy()
	}
	for _, n := range b.bns {
		n.destroy()
	}
	for _, p := range b.pools {
		p.destroy()
	}
	for _, l := range b.linears {
		l.destroy()
	}
	for _, r := range b.relus {
		C.gd_relu_destroy(r)
	}
	for _, a := range b.adds {
		C.gd_add_destroy(a)
	}
	for _, g := range b.gaps {
		C.gd_pool_destroy(g)
	}
	b.convs, b.bns, b.pools, b.linears = nil, nil, nil, nil
	b.relus, b.adds, b.gaps = nil, nil, nil
	C.gd_ctx_destroy(b.ctx)
	b.ctx = nil
	return nil
}

// statusError turns a failed oneDNN status into an error naming the
// operation, the failed step and the status.
func statusError(op string, st C.dnnl_status_t, where *C.char) error {
	step := "?"
	if where != nil {
		step = C.GoString(where)
	}
	return fmt.Errorf("dnnl: %s: %s: %s", op, step, C.GoString(C.dnnl_status2str(st)))
}

// fail is statusError for a call that recorded its failed step in the
// backend's C context.
func (b *Backend) fail(op string, st C.dnnl_status_t) error {
	return statusError(op, st, C.gd_ctx_where(b.ctx))
}

// fp returns a C pointer to the first element of x, or nil when x is empty.
// The C side binds it to a memory object for the duration of one call only.
func fp(x []float32) *C.float {
	if len(x) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&x[0]))
}

// same reports whether x and y start at the same element.
func same(x, y []float32) bool {
	return len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
}

// ReLU writes y = max(x, 0); y may alias x.
func (b *Backend) ReLU(x, y []float32) error {
	if b.ctx == nil {
		return errClosed
	}
	if err := ops.CheckReLU(x, y); err != nil {
		return err
	}
	if len(x) == 0 {
		return nil
	}
	r, err := b.relu(len(x))
	if err != nil {
		return err
	}
	if st := C.gd_relu_forward(r, fp(x), fp(y)); st != C.dnnl_success {
		return b.fail("ReLU forward", st)
	}
	return nil
}

// ReLUBackward writes dx = dy where y > 0, else 0; dx may alias dy.
func (b *Backend) ReLUBackward(y, dy, dx []float32) error {
	if b.ctx == nil {
		return errClosed
	}
	if err := ops.CheckReLUBackward(y, dy, dx); err != nil {
		return err
	}
	if len(y) == 0 {
		return nil
	}
	r, err := b.relu(len(y))
	if err != nil {
		return err
	}
	if st := C.gd_relu_backward(r, fp(y), fp(dy), fp(dx)); st != C.dnnl_success {
		return b.fail("ReLU backward", st)
	}
	return nil
}

// relu returns the cached ReLU primitives for vectors of length n.
func (b *Backend) relu(n int) (*C.gd_relu, error) {
	if r, ok := b.relus[n]; ok {
		return r, nil
	}
	var r *C.gd_relu
	if st := C.gd_relu_create(&r, b.ctx, C.longlong(n)); st != C.dnnl_success {
		return nil, b.fail(fmt.Sprintf("create ReLU of length %d", n), st)
	}
	b.relus[n] = r
	return r, nil
}

// smallElementwise is the length up to which element-wise operations run
// as plain Go loops instead of oneDNN primitives (a primitive call costs
// tens of microseconds, a 16k-element loop a few).
const smallElementwise = 1 << 14

// Add writes y = a + b; y may alias a or b.
func (b *Backend) Add(x0, x1, y []float32) error {
	if b.ctx == nil {
		return errClosed
	}
	if err := ops.CheckAdd(x0, x1, y); err != nil {
		return err
	}
	if len(x0) == 0 {
		return nil
	}
	if len(x0) <= smallElementwise {
		// Below this size a primitive call costs more than the loop:
		// gradient accumulation of weights and batch-norm parameters.
		for i := range y {
			y[i] = x0[i] + x1[i]
		}
		return nil
	}
	a, err := b.add(len(x0))
	if err != nil {
		return err
	}
	// oneDNN computes in place when dst is src0; put an aliased operand there.
	if same(y, x1) && !same(y, x0) {
		x0, x1 = x1, x0
	}
	if st := C.gd_add_run(a, fp(x0), fp(x1), fp(y)); st != C.dnnl_success {
		return b.fail("Add", st)
	}
	return nil
}

// add returns the cached addition primitive for vectors of length n.
func (b *Backend) add(n int) (*C.gd_add, error) {
	if a, ok := b.adds[n]; ok {
		return a, nil
	}
	var a *C.gd_add
	if st := C.gd_add_create(&a, b.ctx, C.longlong(n)); st != C.dnnl_success {
		return nil, b.fail(fmt.Sprintf("create Add of length %d", n), st)
	}
	b.adds[n] = a
	return a, nil
}

// GlobalAvgPool averages NHWC x (n*hw*c) over its hw positions into y (n*c).
func (b *Backend) GlobalAvgPool(x []float32, n, hw, c int, y []float32) error {
	if b.ctx == nil {
		return errClosed
	}
	if err := ops.CheckGlobalAvgPool(x, n, hw, c, y); err != nil {
		return err
	}
	p, err := b.gap(n, hw, c)
	if err != nil {
		return err
	}
	if st := C.gd_pool_forward(p, fp(x), fp(y), nil); st != C.dnnl_success {
		return b.fail("global average pooling forward", st)
	}
	return nil
}

// GlobalAvgPoolBackward spreads dy (n*c) evenly into dx (n*hw*c).
func (b *Backend) GlobalAvgPoolBackward(dy []float32, n, hw, c int, dx []float32) error {
	if b.ctx == nil {
		return errClosed
	}
	if err := ops.CheckGlobalAvgPoolBackward(dy, n, hw, c, dx); err != nil {
		return err
	}
	p, err := b.gap(n, hw, c)
	if err != nil {
		return err
	}
	if st := C.gd_pool_backward(p, fp(dy), nil, fp(dx)); st != C.dnnl_success {
		return b.fail("global average pooling backward", st)
	}
	return nil
}

// gap returns the cached average pooling primitives for n images of hw
// positions and c channels (sizes already checked), creating them on first
// use.
func (b *Backend) gap(n, hw, c int) (*C.gd_pool, error) {
	key := [3]int{n, hw, c}
	if p, ok := b.gaps[key]; ok {
		return p, nil
	}
	var p *C.gd_pool
	// The hw positions form an hw x 1 image pooled by an hw x 1 window.
	st := C.gd_pool_create(&p, b.ctx, 0, C.int(n), C.int(hw), 1, C.int(c), C.int(hw), 1, 1, 0)
	if st != C.dnnl_success {
		return nil, b.fail(fmt.Sprintf("create global average pooling %v", key), st)
	}
	b.gaps[key] = p
	return p, nil
}
