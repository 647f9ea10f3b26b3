package dnnl

/*
#include "gd.h"
*/
import "C"

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bindEnv are the OpenMP variables by which a user places threads
// himself; when one is set, BindThreads leaves the placement to libgomp.
var bindEnv = []string{"OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY"}

// BindThreads binds the calling OS thread (OpenMP thread 0) and the
// backend's other OpenMP threads to distinct CPUs of the process's affinity
// mask, one thread per physical core first (see cpuOrder), as
// OMP_PROC_BIND=close OMP_PLACES=cores would. It implements
// ops.ThreadBinder: the caller's goroutine must stay locked to its OS thread
// (ops.OnComputeThread). It leaves the threads unbound, and says why, when
// the user set OMP_PROC_BIND, OMP_PLACES or GOMP_CPU_AFFINITY, when the
// backend has more threads than the process has CPUs, or when the OS refuses.
func (b *Backend) BindThreads() string {
	if b.ctx == nil {
		return "not bound: backend is closed"
	}
	for _, v := range bindEnv {
		if _, ok := os.LookupEnv(v); ok {
			return "not bound: " + v + " is set (libgomp places the threads)"
		}
	}
	cpus, err := cpuOrder()
	if err != nil {
		return "not bound: " + err.Error()
	}
	if len(cpus) < b.threads {
		return fmt.Sprintf("not bound: %d threads on %d CPUs", b.threads, len(cpus))
	}
	// Ranks of one MPI job on this machine whose CPU sets overlap (mpirun
	// --bind-to none) take disjoint CPUs, in local-rank order. (Bound by
	// mpirun, each rank's set holds only its own cores.)
	if r, size := localRank(); size > 1 && len(cpus) >= size*b.threads {
		cpus = cpus[r*b.threads:]
	}
	cpus = cpus[:b.threads]
	ci := make([]C.int, len(cpus))
	for i, c := range cpus {
		ci[i] = C.int(c)
	}
	if e := C.gd_bind_threads(b.ctx, (*C.int)(unsafe.Pointer(&ci[0])), C.int(len(ci))); e != 0 {
		return "not bound: " + syscall.Errno(e).Error()
	}
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	plural := "s"
	if len(cpus) == 1 {
		plural = ""
	}
	return fmt.Sprintf("bound %d thread%s to CPU%s %s", len(cpus), plural, plural, strings.Join(s, ","))
}

// cpuOrder returns the CPUs of the calling thread's affinity mask, first
// one per physical core (the lowest-numbered of its hardware threads, from
// /sys/devices/system/cpu/cpuN/topology/thread_siblings_list), then the
// remaining hardware threads, each group in CPU order. Where the topology
// cannot be read every CPU counts as its own core.
func cpuOrder() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("reading the CPU affinity: %w", err)
	}
	var allowed []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			allowed = append(allowed, i)
		}
	}
	r := make(map[int]int, len(allowed))
	for _, c := range allowed {
		r[c] = siblingRank(c)
	}
	sort.SliceStable(allowed, func(i, j int) bool { return r[allowed[i]] < r[allowed[j]] })
	return allowed, nil
}

// siblingRank is 0 for the lowest-numbered hardware thread of cpu's core
// (or when the topology cannot be read), 1 for its other threads.
func siblingRank(cpu int) int {
	b, err := os.ReadFile(fmt.Sprintf("/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", cpu))
	if err != nil {
		return 0
	}
	first := strings.FieldsFunc(strings.TrimSpace(string(b)), func(r rune) bool { return r == ',' || r == '-' })
	if len(first) == 0 {
		return 0
	}
	if f, err := strconv.Atoi(first[0]); err == nil && f != cpu {
		return 1
	}
	return 0
}

// threadAffinity returns, for each OpenMP thread of a team started from the
// calling OS thread, the one CPU it is bound to, or -1 when it may run on
// several (for tests).
func (b *Backend) threadAffinity() []int {
	out := make([]C.int, b.threads)
	C.gd_thread_affinity(b.ctx, (*C.int)(unsafe.Pointer(&out[0])))
	r := make([]int, len(out))
	for i, c := range out {
		r[i] = int(c)
	}
	return r
}

// localRank returns this process's rank among the processes of its MPI job
// on this machine and their number, from the variables Open MPI's launcher
// (mpirun, or srun through PMIx) sets; 0, 1 outside such a job.
func localRank() (rank, size int) {
	for _, v := range [][2]string{{"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"}, {"PMIX_LOCAL_RANK", "PMIX_LOCAL_SIZE"}} {
		r, err1 := strconv.Atoi(os.Getenv(v[0]))
		n, err2 := strconv.Atoi(os.Getenv(v[1]))
		if err1 == nil && err2 == nil && n > 0 && r >= 0 && r < n {
			return r, n
		}
	}
	return 0, 1
}
