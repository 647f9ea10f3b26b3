package ops

import (
	"fmt"
	"runtime"
)

// ThreadBinder is implemented by a backend whose compute threads run
// fastest bound to cores, one thread per core (package dnnl: its OpenMP
// workers and the thread that calls it). Left to the OS scheduler, two
// compute threads on a small machine sometimes share a core for a whole
// process (the bimodal step times of docs/benchmarks.md).
type ThreadBinder interface {
	// BindThreads binds the calling OS thread and the backend's worker
	// threads to distinct cores and says what it did ("bound 2 threads to
	// CPUs 0,1", or why it left the threads to the OS). The caller's
	// goroutine must be locked to its OS thread for the rest of its life
	// (OnComputeThread does this). Not binding is not an error: the
	// backend then runs as it would unbound.
	BindThreads() string
}

// OnComputeThread runs f on a new goroutine locked to its own OS thread.
// When be is a ThreadBinder, that thread and be's workers are bound to cores
// first. Every backend call f makes then comes from one OS thread (one
// OpenMP worker pool, the same cores), and no other goroutine inherits the
// binding: the goroutine exits still locked, so the Go runtime retires its
// OS thread. f receives BindThreads' report ("" for other backends). A
// panic in f is returned as an error.
func OnComputeThread(be Backend, f func(binding string) error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the OS thread ends with the goroutine
		var err error
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("ops: compute thread: panic: %v", p)
			}
			done <- err
		}()
		binding := ""
		if tb, ok := be.(ThreadBinder); ok {
			binding = tb.BindThreads()
		}
		err = f(binding)
	}()
	return <-done
}
