// Package ref is the plain-Go reference backend of the engine: every
// operator of package ops written once, generic over float32 and float64,
// with sums accumulated in float64. It is the test oracle for the fast
// backends, and its float64 instantiation is what the finite-difference
// tests differentiate.
//
// The generic kernels (ConvForward, BatchNormBackward, ...) are exported so
// that other packages can run the same arithmetic in float64 in their own
// gradient checks. New returns an ops.Backend whose float32 operators call
// these kernels.
//
// Convolution and linear layers run in parallel over the batch with a static
// partition into contiguous chunks; every goroutine writes disjoint outputs
// and weight gradients are reduced from per-goroutine partial sums in a
// fixed order, so results are deterministic for a given thread count.
package ref

import (
	"runtime"
	"sync"

	"github.com/corinfomax/corinfomax/ops"
)

// Float is the set of element types the generic kernels accept.
type Float interface {
	~float32 | ~float64
}

// Backend is the plain-Go implementation of ops.Backend.
type Backend struct{}

// New returns the reference backend.
func New() *Backend { return &Backend{} }

var _ ops.Backend = (*Backend)(nil)

// Name returns "ref".
func (*Backend) Name() string { return "ref" }

// Threads returns runtime.GOMAXPROCS(0), the number of goroutines the
// convolution and linear kernels split their work into.
func (*Backend) Threads() int { return runtime.GOMAXPROCS(0) }

// Precision returns ops.FP32: the reference computes in float32 with
// float64 sums (or entirely in float64 through the generic kernels).
func (*Backend) Precision() ops.Precision { return ops.FP32 }

// Close releases nothing; the reference backend holds no resources.
func (*Backend) Close() error { return nil }

// chunks is the number of chunks parallelFor splits n items into.
func chunks(n, threads int) int { return max(1, min(threads, n)) }

// parallelFor splits [0, n) into chunks(n, threads) contiguous chunks of
// nearly equal size and runs fn(g, lo, hi) for chunk g in its own goroutine,
// returning when all are done. The partition depends only on n and threads.
func parallelFor(n, threads int, fn func(g, lo, hi int)) {
	g := chunks(n, threads)
	if g == 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for i := range g {
		lo, hi := i*n/g, (i+1)*n/g
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i, lo, hi)
		}()
	}
	wg.Wait()
}
