package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/internal/testutil"
)

// bin is the corinfomax binary built once by TestMain: the reliability
// tests run it as a subprocess (signals, kills, exit codes).
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "corinfomax-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "corinfomax")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building corinfomax:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe to read while a subprocess writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is what a finished subprocess left.
type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
	maxRSS         int64 // peak resident memory in bytes (Linux getrusage)
}

// proc is a running subprocess.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	start          time.Time
	done           chan struct{}
	res            result
}

// start runs the binary with args (prefix, when given, is a wrapper
// command such as bash -c 'ulimit ...').
func start(t *testing.T, prefix []string, args ...string) *proc {
	t.Helper()
	argv := append(append([]string(nil), prefix...), bin)
	argv = append(argv, args...)
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), stdout: &syncBuffer{}, stderr: &syncBuffer{},
		done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", argv, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.res = result{code: 0, stdout: p.stdout.String(), stderr: p.stderr.String(), elapsed: time.Since(p.start)}
		if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.res.maxRSS = ru.Maxrss * 1024 // kilobytes on Linux
		}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			p.res.code = ee.ExitCode() // -1 when killed by a signal
		case err != nil:
			p.res.code = -2
		}
		close(p.done)
	}()
	return p
}

// wait waits for the process to exit, killing it after timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v did not finish in %v; stderr:\n%s", p.cmd.Args, timeout, p.res.stderr)
	}
	return p.res
}

// run runs the binary to completion (at most 2 minutes).
func run(t *testing.T, args ...string) result {
	t.Helper()
	return start(t, nil, args...).wait(t, 2*time.Minute)
}

// tinyData is testutil.TinyNPY: n random 12x12 greyscale images, 3 classes.
func tinyData(t *testing.T, n int) string { return testutil.TinyNPY(t, n) }

// tinyArgs are pretrain flags for a ResNet-18 of width 2 on tinyData: 40
// images give 5 steps per epoch.
func tinyArgs(spec, out string, extra ...string) []string {
	a := []string{"pretrain", "--data", spec, "--out", out, "--width", "2", "--projector", "16-8", "--batch", "8",
		"--size", "12", "--knn-every", "0", "--threads", "1", "--workers", "2", "--log-every", "1", "--lr", "0.1",
		"--warmup-epochs", "1", "--seed", "3"}
	return append(a, extra...)
}

// tinyMethodArgs are the pretrain flags that fit method's own pieces to
// tinyArgs' network and batch of 8: BYOL's and SimSiam's predictor 16-8
// (to the projector's 8 outputs), MoCo's queue of 24 rows, W-MSE's
// whitening over the whole batch.
func tinyMethodArgs(method string) []string {
	switch method {
	case "wmse":
		return []string{"--w-size", "8", "--w-eps", "0.1"}
	case "byol", "simsiam":
		return []string{"--predictor", "16-8"}
	case "mocov2":
		return []string{"--queue-size", "24"}
	}
	return nil
}

// ckptPath is the checkpoint of a run directory.
func ckptPath(dir string) string { return filepath.Join(dir, "checkpoint.safetensors") }

// position reads the step a run directory's checkpoint records (-1: none).
func position(t *testing.T, dir string) int {
	t.Helper()
	f, err := checkpoint.Read(ckptPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return -1
	}
	if err != nil {
		t.Fatalf("the checkpoint of %s is unreadable: %v", dir, err)
	}
	var pos struct {
		Step int `json:"step"`
	}
	if err := json.Unmarshal([]byte(f.Metadata["corinfomax.position"]), &pos); err != nil {
		t.Fatalf("checkpoint position: %v", err)
	}
	return pos.Step
}

// sameTensors fails unless the checkpoints at a and b hold the same tensors
// bit for bit (weights, running statistics, optimizer and method state).
func sameTensors(t *testing.T, a, b string) {
	t.Helper()
	fa, err := checkpoint.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := checkpoint.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(fa.Tensors) != len(fb.Tensors) {
		t.Fatalf("%s holds %d tensors, %s %d", a, len(fa.Tensors), b, len(fb.Tensors))
	}
	for _, ta := range fa.Tensors {
		tb, ok := fb.Get(ta.Name)
		if !ok {
			t.Fatalf("tensor %s missing from %s", ta.Name, b)
		}
		if len(ta.F32) != len(tb.F32) || len(ta.F64) != len(tb.F64) {
			t.Fatalf("tensor %s: sizes differ", ta.Name)
		}
		for i := range ta.F32 {
			if math.Float32bits(ta.F32[i]) != math.Float32bits(tb.F32[i]) {
				t.Fatalf("tensor %s differs at %d: %v vs %v", ta.Name, i, ta.F32[i], tb.F32[i])
			}
		}
		for i := range ta.F64 {
			if math.Float64bits(ta.F64[i]) != math.Float64bits(tb.F64[i]) {
				t.Fatalf("tensor %s differs at %d: %v vs %v", ta.Name, i, ta.F64[i], tb.F64[i])
			}
		}
	}
}

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
