package mpi

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/dist"
)

// TestMain runs the rank side of TestCollectivesUnderMpirun when mpirun
// started this test binary with CORINFOMAX_MPI_CHILD set.
func TestMain(m *testing.M) {
	if os.Getenv("CORINFOMAX_MPI_CHILD") == "collectives" {
		c := &child{}
		collectivesChild(c)
		if c.failed {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child collects the failures of one rank (a *testing.T cannot run under
// mpirun's copies of the binary).
type child struct{ failed bool }

func (c *child) Errorf(format string, a ...any) {
	c.failed = true
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", a...)
}
func (c *child) Error(a ...any) { c.Errorf("%s", fmt.Sprint(a...)) }
func (c *child) Fatal(a ...any) {
	c.Error(a...)
	os.Exit(1)
}
func (c *child) Failed() bool { return c.failed }

// TestCollectivesUnderMpirun runs the child test below on 2 and 3 ranks
// and checks that every rank passed.
func TestCollectivesUnderMpirun(t *testing.T) {
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatalf("mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev): %v", err)
	}
	for _, n := range []int{2, 3} {
		cmd := exec.Command("mpirun", "-np", fmt.Sprint(n), "--oversubscribe", "--allow-run-as-root",
			"--mca", "btl", "self,vader,tcp", "--mca", "btl_vader_single_copy_mechanism", "none", os.Args[0])
		cmd.Env = append(os.Environ(), "CORINFOMAX_MPI_CHILD=collectives")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mpirun -np %d: %v\n%s", n, err, out)
		}
		if got := strings.Count(string(out), "child ok"); got != n {
			t.Fatalf("mpirun -np %d: %d ranks reported ok\n%s", n, got, out)
		}
	}
}

// collectivesChild is one rank of TestCollectivesUnderMpirun.
func collectivesChild(t *child) {
	c, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	r, n := c.Rank(), c.Size()
	if _, err := Init(); err == nil {
		t.Error("a second Init succeeded")
	}
	// Sum all-reduce: rank r contributes r+1 and i*(r+1).
	f32 := []float32{float32(r + 1), 0, 0}
	for i := range f32[1:] {
		f32[i+1] = float32((i + 1) * (r + 1))
	}
	if err := c.AllreduceSum32(f32); err != nil {
		t.Fatal(err)
	}
	tri := float32(n * (n + 1) / 2)
	if f32[0] != tri || f32[1] != tri || f32[2] != 2*tri {
		t.Errorf("rank %d: float32 all-reduce %v, want [%v %v %v]", r, f32, tri, tri, 2*tri)
	}
	f64 := []float64{float64(r) + 0.5}
	if err := c.AllreduceSum64(f64); err != nil {
		t.Fatal(err)
	}
	if want := float64(n*(n-1))/2 + 0.5*float64(n); f64[0] != want {
		t.Errorf("rank %d: float64 all-reduce %v, want %v", r, f64[0], want)
	}
	// All-gather in rank order.
	all := make([]float32, 2*n)
	if err := c.Allgather32([]float32{float32(r), float32(-r)}, all); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < n; k++ {
		if all[2*k] != float32(k) || all[2*k+1] != float32(-k) {
			t.Errorf("rank %d: allgather %v", r, all)
		}
	}
	if err := c.Allgather32([]float32{1}, make([]float32, n+1)); err == nil {
		t.Error("an allgather into the wrong length succeeded")
	}
	// Broadcast from the last rank.
	msg := []byte(fmt.Sprintf("rank %d", r))
	if err := c.Bcast(msg, n-1); err != nil {
		t.Fatal(err)
	}
	if string(msg) != fmt.Sprintf("rank %d", n-1) {
		t.Errorf("rank %d: broadcast gave %q", r, msg)
	}
	// Gradient buckets smaller than a tensor, and a checksum check that
	// names the rank that differs.
	grads := [][]float32{make([]float32, 5), make([]float32, 3)}
	for _, g := range grads {
		for i := range g {
			g[i] = float32(r + i)
		}
	}
	red := dist.NewGradReducer(c, 8) // two values per bucket
	if err := red.SumAll(grads); err != nil {
		t.Fatal(err)
	}
	for _, g := range grads {
		for i, v := range g {
			if want := float32(n*(n-1)/2 + n*i); v != want {
				t.Errorf("rank %d: reduced gradient %v at %d, want %v", r, v, i, want)
			}
		}
	}
	if red.Bytes != 4*8 {
		t.Errorf("rank %d: %d bytes reduced, want 32", r, red.Bytes)
	}
	if err := dist.CheckSame(c, grads, "gradients"); err != nil {
		t.Errorf("rank %d: equal gradients reported as different: %v", r, err)
	}
	if r == n-1 {
		grads[1][2] += 1e-3
	}
	err = dist.CheckSame(c, grads, "gradients")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("[%d]", n-1)) {
		t.Errorf("rank %d: a drifted rank %d gave %v", r, n-1, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.AllreduceSum32(f32); err == nil {
		t.Error("a call after Close succeeded")
	}
	if !t.Failed() {
		fmt.Printf("child ok: rank %d of %d\n", r, n)
	}
}
