package dnnl

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

func TestBindThreadsOneCPUEach(t *testing.T) {
	for _, v := range bindEnv {
		if _, ok := os.LookupEnv(v); ok {
			t.Fatalf("%s is set in the test environment: BindThreads would not bind", v)
		}
	}
	cpus, err := cpuOrder()
	if err != nil {
		t.Fatal(err)
	}
	threads := min(2, len(cpus))
	b, err := New(threads)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got []int
	var binding string
	err = ops.OnComputeThread(b, func(bound string) error {
		binding, got = bound, b.threadAffinity()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(binding, fmt.Sprintf("bound %d thread", threads)) {
		t.Fatalf("binding %q", binding)
	}
	seen := map[int]bool{}
	for i, c := range got {
		if c < 0 || seen[c] || c != cpus[i] {
			t.Fatalf("thread CPUs %v, want distinct CPUs %v", got, cpus[:threads])
		}
		seen[c] = true
	}
	// Another OS thread (another libgomp pool) is not bound: the binding
	// stays with the compute thread.
	done := make(chan []int)
	go func() {
		runtime.LockOSThread()
		done <- b.threadAffinity()
	}()
	if other := <-done; len(cpus) > 1 && other[0] != -1 {
		t.Fatalf("an unbound OS thread runs on CPU %d only", other[0])
	}
}

func TestBindThreadsLeavesUserPlacement(t *testing.T) {
	t.Setenv("OMP_PROC_BIND", "close")
	b, err := New(1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var binding string
	err = ops.OnComputeThread(b, func(bound string) error { binding = bound; return nil })
	if err != nil || !strings.Contains(binding, "OMP_PROC_BIND is set") {
		t.Fatalf("binding %q err %v", binding, err)
	}
}

func TestCPUOrderPutsCoresFirst(t *testing.T) {
	cpus, err := cpuOrder()
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) == 0 || len(cpus) > runtime.NumCPU() {
		t.Fatalf("cpuOrder %v with %d CPUs", cpus, runtime.NumCPU())
	}
	seen := map[int]bool{}
	for i, c := range cpus {
		if seen[c] {
			t.Fatalf("CPU %d twice in %v", c, cpus)
		}
		seen[c] = true
		if i > 0 && siblingRank(cpus[i-1]) > siblingRank(c) {
			t.Fatalf("CPU %d (first thread of its core) after CPU %d (a second thread) in %v", c, cpus[i-1], cpus)
		}
	}
}
