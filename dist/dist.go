// Package dist holds what data-parallel training needs from the processes
// it runs on: a communicator with the few collective operations the trainer
// uses (sum all-reduce, all-gather, broadcast), the single-process one
// (Local), and the helpers built on them (gradient all-reduce in buckets,
// weight checksums). Package dist/mpi implements Comm over Open MPI.
//
// Every rank calls the same collectives in the same order with the same
// sizes; a Comm is used from one goroutine at a time.
package dist

import (
	"fmt"
)

// Comm is a communicator: the processes of one data-parallel job.
type Comm interface {
	// Rank is this process's index, 0 <= Rank < Size.
	Rank() int
	// Size is the number of processes.
	Size() int
	// AllreduceSum32 replaces buf on every rank by the element-wise sum of
	// every rank's buf (all of one length).
	AllreduceSum32(buf []float32) error
	// AllreduceSum64 is AllreduceSum32 for float64.
	AllreduceSum64(buf []float64) error
	// Allgather32 writes every rank's local (all of one length) into all,
	// rank 0's first: len(all) must be Size()*len(local).
	Allgather32(local, all []float32) error
	// AllgatherUint64 is Allgather32 for uint64 (checksums).
	AllgatherUint64(local, all []uint64) error
	// Bcast copies root's buf into every rank's buf (all of one length).
	Bcast(buf []byte, root int) error
	// Abort ends every process of the job with the exit code (it does not
	// return on a multi-process job).
	Abort(code int)
	// Close ends this process's part of the job (collective: every rank
	// calls it).
	Close() error
}

// Local is the communicator of a single process: every collective is the
// identity.
type Local struct{}

// Rank returns 0.
func (Local) Rank() int { return 0 }

// Size returns 1.
func (Local) Size() int { return 1 }

// AllreduceSum32 leaves buf as it is.
func (Local) AllreduceSum32([]float32) error { return nil }

// AllreduceSum64 leaves buf as it is.
func (Local) AllreduceSum64([]float64) error { return nil }

// Allgather32 copies local into all.
func (Local) Allgather32(local, all []float32) error {
	if len(all) != len(local) {
		return fmt.Errorf("dist: allgather into %d values from %d on 1 rank", len(all), len(local))
	}
	copy(all, local)
	return nil
}

// AllgatherUint64 copies local into all.
func (Local) AllgatherUint64(local, all []uint64) error {
	if len(all) != len(local) {
		return fmt.Errorf("dist: allgather into %d values from %d on 1 rank", len(all), len(local))
	}
	copy(all, local)
	return nil
}

// Bcast leaves buf as it is (root must be 0).
func (Local) Bcast(_ []byte, root int) error {
	if root != 0 {
		return fmt.Errorf("dist: broadcast from rank %d on 1 rank", root)
	}
	return nil
}

// Abort does nothing: the caller exits by itself.
func (Local) Abort(int) {}

// Close does nothing.
func (Local) Close() error { return nil }
