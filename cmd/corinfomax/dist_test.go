package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corinfomax/corinfomax/checkpoint"
)

// mpirun is the prefix that starts n ranks of the binary on this machine
// (as root too, over shared memory).
func mpirun(t *testing.T, n int) []string {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatalf("mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev): %v", err)
	}
	// Single-copy shared memory (CMA) needs ptrace rights some containers
	// lack; the copy-in/copy-out path works everywhere.
	return []string{"mpirun", "-np", strconv.Itoa(n), "--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
		"--mca", "btl_vader_single_copy_mechanism", "none"}
}

// stepLosses returns the loss of every step record of a run's metrics.jsonl.
func stepLosses(t *testing.T, dir string) map[int]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Type string  `json:"type"`
			Step int     `json:"step"`
			Loss float64 `json:"loss"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("metrics.jsonl: %v", err)
		}
		if rec.Type == "step" {
			out[rec.Step] = rec.Loss
		}
	}
	return out
}

// sameState compares the model tensors of two checkpoints (weights,
// running statistics, method state): every value within tol of the largest
// magnitude over all of them. (Momentum buffers are left out: they are sums
// of raw gradients, whose rounding, from the summation order, exceeds the
// weights' even between thread counts of one process.)
func sameState(t *testing.T, what, a, b string, tol float64) {
	t.Helper()
	fa, fb := readCheckpoints(t, a, b)
	if len(fa.Tensors) != len(fb.Tensors) {
		t.Fatalf("%s: %d tensors against %d", what, len(fa.Tensors), len(fb.Tensors))
	}
	big := 0.0
	for _, ta := range fa.Tensors {
		if !strings.HasPrefix(ta.Name, "optimizer.") {
			for _, v := range floats(ta) {
				big = math.Max(big, math.Abs(v))
			}
		}
	}
	worst, at := 0.0, ""
	for _, ta := range fa.Tensors {
		if strings.HasPrefix(ta.Name, "optimizer.") {
			continue
		}
		tb, ok := fb.Get(ta.Name)
		if !ok {
			t.Fatalf("%s: tensor %s missing", what, ta.Name)
		}
		va, vb := floats(ta), floats(tb)
		if len(va) != len(vb) {
			t.Fatalf("%s: %s has %d values against %d", what, ta.Name, len(va), len(vb))
		}
		for i := range va {
			if d := math.Abs(va[i] - vb[i]); d > worst {
				worst, at = d, fmt.Sprintf("%s[%d] = %g against %g", ta.Name, i, va[i], vb[i])
			}
		}
	}
	if worst > tol*big {
		t.Fatalf("%s: %s: differs by %.3g of the largest magnitude %g (tolerance %g)", what, at, worst/big, big, tol)
	}
	t.Logf("%s: largest difference %.2g of the largest magnitude %.3g (%s)", what, worst/big, big, at)
}

// readCheckpoints reads the checkpoints of run directories a and b.
func readCheckpoints(t *testing.T, a, b string) (*checkpoint.File, *checkpoint.File) {
	t.Helper()
	fa, err := checkpoint.Read(ckptPath(a))
	if err != nil {
		t.Fatal(err)
	}
	fb, err := checkpoint.Read(ckptPath(b))
	if err != nil {
		t.Fatal(err)
	}
	return fa, fb
}

func floats(t *checkpoint.Tensor) []float64 {
	out := make([]float64, 0, len(t.F32)+len(t.F64))
	for _, v := range t.F32 {
		out = append(out, float64(v))
	}
	out = append(out, t.F64...)
	for _, v := range t.I64 {
		out = append(out, float64(v))
	}
	return out
}

// TestDataParallelEqualsOneProcess trains every method (with BYOL's and
// MoCo's momentum networks, MoCo's queue, SimSiam's fixed-rate predictor)
// for 5 steps on one
// process and on 2 ranks (mpirun, --sync-bn) from the same initial weights:
// the losses agree to 1e-4 relative and the final weights, running
// statistics and method state to 1e-4 of their largest magnitude. A gradient averaged instead of
// summed over the ranks, statistics or an objective computed on one rank's
// slice, or a wrong slice of the batch each break it.
func TestDataParallelEqualsOneProcess(t *testing.T) {
	spec := tinyData(t, 40)
	base := t.TempDir()
	for _, method := range []string{"corinfomax", "barlowtwins", "vicreg", "simclr", "wmse", "byol", "simsiam", "mocov2"} {
		one, two := filepath.Join(base, method+"-1"), filepath.Join(base, method+"-2")
		args := func(out string) []string {
			// SGD for every method: this checks the data-parallel arithmetic,
			// and Adam (W-MSE's recipe) turns the rounding noise of the
			// zero gradient of a bias followed by batch norm into full steps.
			a := tinyArgs(spec, out, "--method", method, "--max-steps", "5", "--sync-bn", "--lr", "0.01", "--optimizer", "sgd")
			return append(a, tinyMethodArgs(method)...) // W-MSE whitens the whole global batch of 8
		}
		if r := run(t, args(one)...); r.code != 0 {
			t.Fatalf("%s, one process: exit %d\n%s", method, r.code, r.stderr)
		}
		r := start(t, mpirun(t, 2), args(two)...).wait(t, 2*time.Minute)
		if r.code != 0 {
			t.Fatalf("%s, 2 ranks: exit %d\n%s", method, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "data-parallel on 2 ranks") {
			t.Fatalf("%s: the 2-rank run does not say it is data-parallel:\n%s", method, r.stderr)
		}
		la, lb := stepLosses(t, one), stepLosses(t, two)
		if len(la) != 5 || len(lb) != 5 {
			t.Fatalf("%s: %d and %d step records, want 5 (rank 1 must not write metrics)", method, len(la), len(lb))
		}
		for s := 1; s <= 5; s++ {
			if d := math.Abs(la[s] - lb[s]); d > 1e-4*math.Abs(la[s]) {
				t.Fatalf("%s: step %d loss %.9g on one process, %.9g on 2 ranks", method, s, la[s], lb[s])
			}
		}
		sameState(t, method, one, two, 1e-4)
	}
}

// TestDataParallelRefusesUnevenBatch: a global batch the ranks cannot
// split evenly stops the job with a message naming the flag.
func TestDataParallelRefusesUnevenBatch(t *testing.T) {
	spec := tinyData(t, 40)
	out := filepath.Join(t.TempDir(), "run")
	args := tinyArgs(spec, out, "--max-steps", "2")
	for i, a := range args {
		if a == "--batch" {
			args[i+1] = "9"
		}
	}
	r := start(t, mpirun(t, 2), args...).wait(t, time.Minute)
	if r.code == 0 || !strings.Contains(r.stderr, "--batch") || !strings.Contains(r.stderr, "multiple of the 2 ranks") {
		t.Fatalf("exit %d, want a failure naming --batch and the ranks:\n%s", r.code, r.stderr)
	}
}

// TestDataParallelRankKilled kills rank 1 with SIGKILL mid-run: the job
// ends with a non-zero status within 60 s, the last checkpoint is intact,
// and --resume on one process (a different number of ranks) finishes it.
func TestDataParallelRankKilled(t *testing.T) {
	spec := tinyData(t, 40)
	out := filepath.Join(t.TempDir(), "run")
	args := tinyArgs(spec, out, "--epochs", "6", "--checkpoint-every", "2")
	p := start(t, mpirun(t, 2), args...)
	deadline := time.Now().Add(90 * time.Second)
	for position(t, out) < 2 {
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			t.Fatalf("no checkpoint after 90 s:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ranks := childPIDs(p.cmd.Process.Pid)
	if len(ranks) != 2 {
		p.cmd.Process.Kill()
		t.Fatalf("mpirun has %d children, want 2", len(ranks))
	}
	killed := time.Now()
	if err := syscall.Kill(ranks[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := p.wait(t, 60*time.Second)
	if r.code == 0 {
		t.Fatalf("the job exited 0 after a rank was killed:\n%s", r.stderr)
	}
	t.Logf("job ended %v after the kill, exit %d", time.Since(killed).Round(time.Millisecond), r.code)
	if pos := position(t, out); pos < 2 {
		t.Fatalf("checkpoint at step %d after the kill", pos)
	}
	rr := run(t, append(args, "--resume")...)
	if rr.code != 0 {
		t.Fatalf("resume on one process: exit %d\n%s", rr.code, rr.stderr)
	}
	if pos := position(t, out); pos != 30 {
		t.Fatalf("resumed run ended at step %d, want 30", pos)
	}
}

// childPIDs lists the processes whose parent is pid, in PID order.
func childPIDs(pid int) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		c, _ := strconv.Atoi(strings.Fields(s)[0])
		out = append(out, c)
	}
	sort.Ints(out)
	return out
}

// TestDataParallelMissingData: ranks that cannot read the data stop the
// job with the usual error naming the file.
func TestDataParallelMissingData(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent.npy")
	args := tinyArgs("npy:"+missing, filepath.Join(t.TempDir(), "run"), "--max-steps", "2")
	r := start(t, mpirun(t, 2), args...).wait(t, time.Minute)
	if r.code == 0 || !strings.Contains(r.stderr, missing) {
		t.Fatalf("exit %d, want a failure naming %s:\n%s", r.code, missing, r.stderr)
	}
}

// TestDataParallelResumesOneProcessRun: a run started on one process
// continues under mpirun on 2 ranks from its checkpoint, to the end.
func TestDataParallelResumesOneProcessRun(t *testing.T) {
	spec := tinyData(t, 40)
	out := filepath.Join(t.TempDir(), "run")
	if r := run(t, tinyArgs(spec, out, "--epochs", "2")...); r.code != 0 {
		t.Fatalf("one process: exit %d\n%s", r.code, r.stderr)
	}
	if pos := position(t, out); pos != 10 {
		t.Fatalf("one process ended at step %d, want 10", pos)
	}
	r := start(t, mpirun(t, 2), tinyArgs(spec, out, "--epochs", "4", "--resume")...).wait(t, 2*time.Minute)
	if r.code != 0 {
		t.Fatalf("2 ranks --resume: exit %d\n%s", r.code, r.stderr)
	}
	if pos := position(t, out); pos != 20 {
		t.Fatalf("the resumed run ended at step %d, want 20", pos)
	}
	if steps := metricsSteps(t, out); len(steps) != 20 || steps[19] != 20 {
		t.Fatalf("metrics.jsonl has step records %v, want 1..20 once each", steps)
	}
}
