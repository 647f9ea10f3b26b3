// Package mpi implements dist.Comm over Open MPI (MPI_COMM_WORLD), for a
// job started by mpirun or by Slurm's srun --mpi=pmix.
//
// Init starts MPI only when the process was launched by one of them
// (Launched); a process started by hand keeps dist.Local and never touches
// MPI. Calls come from any goroutine but never two at once
// (MPI_THREAD_SERIALIZED).
package mpi

/*
#cgo pkg-config: ompi
#include <stdlib.h>
#include <mpi.h>

static int gm_init(int *provided) {
	int st = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
	if (st != MPI_SUCCESS) return st;
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}
static int gm_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int gm_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int gm_allreduce_f32(float *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static int gm_allreduce_f64(double *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static int gm_allgather_f32(float *local, int n, float *all) {
	return MPI_Allgather(local, n, MPI_FLOAT, all, n, MPI_FLOAT, MPI_COMM_WORLD);
}
static int gm_allgather_u64(unsigned long long *local, int n, unsigned long long *all) {
	return MPI_Allgather(local, n, MPI_UNSIGNED_LONG_LONG, all, n, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
}
static int gm_bcast(void *buf, int n, int root) {
	return MPI_Bcast(buf, n, MPI_BYTE, root, MPI_COMM_WORLD);
}
static void gm_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static int gm_finalize(void) { return MPI_Finalize(); }
static void gm_error_string(int code, char *s) {
	int n = 0;
	if (MPI_Error_string(code, s, &n) != MPI_SUCCESS) n = 0;
	s[n] = 0;
}
static int gm_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"unsafe"

	"github.com/corinfomax/corinfomax/dist"
)

// launchEnv are variables set in every process that mpirun (Open MPI) or a
// PMIx launcher (srun --mpi=pmix) starts.
var launchEnv = []string{"OMPI_COMM_WORLD_SIZE", "PMIX_RANK"}

// Launched reports whether this process was started by mpirun or srun.
func Launched() bool {
	for _, v := range launchEnv {
		if _, ok := os.LookupEnv(v); ok {
			return true
		}
	}
	return false
}

// Comm is MPI_COMM_WORLD.
type Comm struct {
	mu         sync.Mutex // serializes the calls (MPI_THREAD_SERIALIZED)
	rank, size int
	closed     bool
}

var _ dist.Comm = (*Comm)(nil)

// initOnce guards MPI_Init, which a process may call once.
var initOnce struct {
	sync.Mutex
	done bool
}

// Init starts MPI and returns MPI_COMM_WORLD. It may be called once per
// process.
func Init() (*Comm, error) {
	initOnce.Lock()
	defer initOnce.Unlock()
	if initOnce.done {
		return nil, errors.New("mpi: Init called twice")
	}
	initOnce.done = true
	// Open MPI's own handlers for SIGSEGV, SIGBUS, SIGFPE and SIGABRT would
	// replace the Go runtime's (which turn faults into panics); keep Go's.
	if _, ok := os.LookupEnv("OMPI_MCA_opal_signal"); !ok {
		os.Setenv("OMPI_MCA_opal_signal", "")
	}
	var provided C.int
	if st := C.gm_init(&provided); st != C.MPI_SUCCESS {
		return nil, fmt.Errorf("mpi: MPI_Init_thread: %s", errString(st))
	}
	if provided < C.MPI_THREAD_SERIALIZED {
		C.gm_finalize()
		return nil, fmt.Errorf("mpi: this Open MPI offers thread level %d, below MPI_THREAD_SERIALIZED", int(provided))
	}
	c := &Comm{}
	var r, s C.int
	if st := C.gm_rank(&r); st != C.MPI_SUCCESS {
		return nil, fmt.Errorf("mpi: MPI_Comm_rank: %s", errString(st))
	}
	if st := C.gm_size(&s); st != C.MPI_SUCCESS {
		return nil, fmt.Errorf("mpi: MPI_Comm_size: %s", errString(st))
	}
	c.rank, c.size = int(r), int(s)
	return c, nil
}

func errString(code C.int) string {
	buf := (*C.char)(C.malloc(C.size_t(C.gm_max_error_string() + 1)))
	defer C.free(unsafe.Pointer(buf))
	C.gm_error_string(code, buf)
	return fmt.Sprintf("%s (MPI error %d)", C.GoString(buf), int(code))
}

// Rank is this process's rank in MPI_COMM_WORLD.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of processes of MPI_COMM_WORLD.
func (c *Comm) Size() int { return c.size }

func (c *Comm) call(op string, f func() C.int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("mpi: %s after Close", op)
	}
	if st := f(); st != C.MPI_SUCCESS {
		return fmt.Errorf("mpi: %s: %s", op, errString(st))
	}
	return nil
}

func count(op string, n int) (C.int, error) {
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("mpi: %s of %d values: more than 2^31-1", op, n)
	}
	return C.int(n), nil
}

// AllreduceSum32 sums buf over the ranks, in place.
func (c *Comm) AllreduceSum32(buf []float32) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := count("all-reduce", len(buf))
	if err != nil {
		return err
	}
	return c.call("MPI_Allreduce", func() C.int { return C.gm_allreduce_f32((*C.float)(&buf[0]), n) })
}

// AllreduceSum64 sums buf over the ranks, in place.
func (c *Comm) AllreduceSum64(buf []float64) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := count("all-reduce", len(buf))
	if err != nil {
		return err
	}
	return c.call("MPI_Allreduce", func() C.int { return C.gm_allreduce_f64((*C.double)(&buf[0]), n) })
}

// Allgather32 concatenates the ranks' local into all, in rank order.
func (c *Comm) Allgather32(local, all []float32) error {
	return allgather(c, local, all, func(l, a unsafe.Pointer, n C.int) C.int {
		return C.gm_allgather_f32((*C.float)(l), n, (*C.float)(a))
	})
}

// AllgatherUint64 concatenates the ranks' local into all, in rank order.
func (c *Comm) AllgatherUint64(local, all []uint64) error {
	return allgather(c, local, all, func(l, a unsafe.Pointer, n C.int) C.int {
		return C.gm_allgather_u64((*C.ulonglong)(l), n, (*C.ulonglong)(a))
	})
}

// allgather checks the lengths and runs f, the MPI_Allgather of one type,
// on the first elements of local and all.
func allgather[T any](c *Comm, local, all []T, f func(l, a unsafe.Pointer, n C.int) C.int) error {
	if len(all) != c.size*len(local) {
		return fmt.Errorf("mpi: allgather of %d values on %d ranks into %d", len(local), c.size, len(all))
	}
	if len(local) == 0 {
		return nil
	}
	n, err := count("allgather", len(local))
	if err != nil {
		return err
	}
	return c.call("MPI_Allgather", func() C.int { return f(unsafe.Pointer(&local[0]), unsafe.Pointer(&all[0]), n) })
}

// Bcast copies root's buf to every rank.
func (c *Comm) Bcast(buf []byte, root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("mpi: broadcast from rank %d of %d", root, c.size)
	}
	if len(buf) == 0 {
		return nil
	}
	n, err := count("broadcast", len(buf))
	if err != nil {
		return err
	}
	return c.call("MPI_Bcast", func() C.int { return C.gm_bcast(unsafe.Pointer(&buf[0]), n, C.int(root)) })
}

// Abort ends every process of the job with code (MPI_Abort).
func (c *Comm) Abort(code int) { C.gm_abort(C.int(code)) }

// Close finalizes MPI; the Comm must not be used afterwards.
func (c *Comm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if st := C.gm_finalize(); st != C.MPI_SUCCESS {
		return fmt.Errorf("mpi: MPI_Finalize: %s", errString(st))
	}
	return nil
}
