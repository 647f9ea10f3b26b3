package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// metricsSteps returns the step numbers of metrics.jsonl's step records.
func metricsSteps(t *testing.T, dir string) []int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Type string `json:"type"`
			Step int    `json:"step"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("metrics.jsonl: bad line %q: %v", sc.Text(), err)
		}
		if rec.Type == "step" {
			steps = append(steps, rec.Step)
		}
	}
	return steps
}

func tempFiles(dir string) []string {
	names, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	return append(names, hidden...)
}

// TestKillResumeMatchesUninterrupted kills a pretraining process with
// SIGKILL at random moments (start-up, steps, checkpoint writes every step,
// report writes) at least 20 times and restarts it with --resume each time:
// every checkpoint left behind is complete, the position never goes back,
// and each run, finished, holds exactly the tensors of an uninterrupted run.
func TestKillResumeMatchesUninterrupted(t *testing.T) {
	spec := tinyData(t, 40)
	base := t.TempDir()
	args := func(out string, extra ...string) []string {
		return tinyArgs(spec, out, append([]string{"--epochs", "4", "--checkpoint-every", "1"}, extra...)...)
	}
	ref := filepath.Join(base, "ref")
	r := run(t, args(ref)...)
	if r.code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", r.code, r.stderr)
	}
	total := r.elapsed
	rng := rand.New(rand.NewSource(11))
	const minKills = 24
	kills, midWrite, beforeFirst, rounds := 0, 0, 0, 0
	for round := 0; kills < minKills || rounds == 0; round++ {
		dir := filepath.Join(base, fmt.Sprintf("run%d", round))
		last := -1
		for attempt := 0; ; attempt++ {
			if attempt > 200 {
				t.Fatalf("round %d: no progress after %d restarts", round, attempt)
			}
			extra := []string{"--resume"}
			p := start(t, nil, args(dir, extra...)...)
			var res result
			killed := false
			if kills < minKills {
				// Up to half an uninterrupted run: most runs die several times.
				delay := time.Duration(rng.Int63n(int64(total / 2)))
				select {
				case <-p.done:
				case <-time.After(delay):
					killed = p.cmd.Process.Signal(syscall.SIGKILL) == nil
				}
			}
			res = p.wait(t, 2*time.Minute)
			if killed && res.code == 0 {
				killed = false // it had just finished
			}
			if !killed {
				if res.code != 0 {
					t.Fatalf("round %d: resumed run failed with exit %d:\n%s", round, res.code, res.stderr)
				}
				break
			}
			if res.code != -1 {
				t.Fatalf("round %d: the run failed with exit %d before the kill:\n%s", round, res.code, res.stderr)
			}
			kills++
			if len(tempFiles(dir)) > 0 {
				midWrite++
			}
			// The checkpoint left behind is absent or complete, and never older.
			pos := position(t, dir)
			if pos < 0 {
				beforeFirst++
			}
			if pos < last {
				t.Fatalf("round %d: the checkpoint went back from step %d to %d", round, last, pos)
			}
			last = pos
		}
		rounds++
		sameTensors(t, ckptPath(ref), ckptPath(dir))
		if left := tempFiles(dir); len(left) > 0 {
			t.Fatalf("round %d: temporary files left after the final run: %v", round, left)
		}
		steps := metricsSteps(t, dir)
		for i, s := range steps {
			if s != i+1 {
				t.Fatalf("round %d: metrics.jsonl step records %v, want 1..20 once each", round, steps)
			}
		}
		if len(steps) != 20 {
			t.Fatalf("round %d: metrics.jsonl has %d step records, want 20", round, len(steps))
		}
	}
	t.Logf("%d kills over %d runs (%d during a write, %d before the first checkpoint); uninterrupted run %v",
		kills, rounds, midWrite, beforeFirst, total)
}

// TestSignalSavesAndExitsZero: SIGINT and SIGTERM finish the current step,
// write a checkpoint at it, print how to resume and exit 0.
func TestSignalSavesAndExitsZero(t *testing.T) {
	spec := tinyData(t, 40)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			p := start(t, nil, tinyArgs(spec, dir, "--epochs", "1000")...)
			waitFor(t, time.Minute, "three logged steps", func() bool {
				b, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
				return strings.Count(string(b), `"type":"step"`) >= 3
			})
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			res := p.wait(t, time.Minute)
			if res.code != 0 {
				t.Fatalf("exit %d after %v, want 0:\n%s", res.code, sig, res.stderr)
			}
			m := regexp.MustCompile(`interrupted at step (\d+)`).FindStringSubmatch(res.stderr)
			if m == nil || !strings.Contains(res.stderr, "--out "+dir+" --resume") {
				t.Fatalf("stderr lacks the interruption message with the resume command:\n%s", res.stderr)
			}
			steps := metricsSteps(t, dir)
			last := steps[len(steps)-1]
			if got := position(t, dir); fmt.Sprint(got) != m[1] || got != last {
				t.Fatalf("checkpoint at step %d, message says %s, last logged step %d", got, m[1], last)
			}
			if last >= 5000 {
				t.Fatalf("the run finished (%d steps) instead of stopping", last)
			}
		})
	}
}

// TestLockRefusesSecondProcess: a second pretrain on the same run directory
// refuses while the first runs; a holder killed with SIGKILL leaves no
// stale lock.
func TestLockRefusesSecondProcess(t *testing.T) {
	spec := tinyData(t, 40)
	dir := filepath.Join(t.TempDir(), "run")
	holder := start(t, nil, tinyArgs(spec, dir, "--epochs", "1000")...)
	pidLine := fmt.Sprintf("pid %d", holder.cmd.Process.Pid)
	waitFor(t, time.Minute, "the holder's lock", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, ".lock"))
		return strings.Contains(string(b), pidLine)
	})
	second := run(t, tinyArgs(spec, dir, "--epochs", "1", "--resume")...)
	if second.code == 0 || !strings.Contains(second.stderr, "in use") || !strings.Contains(second.stderr, pidLine) {
		t.Fatalf("second process: exit %d, want a refusal naming %q:\n%s", second.code, pidLine, second.stderr)
	}
	select {
	case <-holder.done:
		t.Fatalf("the holder stopped: exit %d\n%s", holder.res.code, holder.res.stderr)
	default:
	}
	holder.cmd.Process.Signal(syscall.SIGKILL)
	holder.wait(t, time.Minute)
	third := run(t, tinyArgs(spec, dir, "--epochs", "1", "--resume")...)
	if third.code != 0 {
		t.Fatalf("after the holder was killed: exit %d\n%s", third.code, third.stderr)
	}
}

// TestUnwritableRunDir: an --out that cannot be created or written is a
// usage error naming --out before any training (tests run as root, so
// permissions do not stop writes: use a path under a regular file and
// kernel file systems).
func TestUnwritableRunDir(t *testing.T) {
	spec := tinyData(t, 40)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	outs := []string{filepath.Join(file, "run"), "/proc/self"}
	if st, err := os.Stat("/sys/kernel"); err == nil && st.IsDir() {
		outs = append(outs, "/sys/kernel")
	}
	for _, out := range outs {
		res := run(t, tinyArgs(spec, out, "--epochs", "1")...)
		if res.code != 2 || !strings.Contains(res.stderr, "--out") || strings.Contains(res.stderr, "step 1") {
			t.Errorf("--out %s: exit %d, want 2 with a message naming --out before any step:\n%s", out, res.code, res.stderr)
		}
	}
}

// TestWriteFailureKeepsCheckpoint: a checkpoint write that fails mid-run
// (the file size limit RLIMIT_FSIZE makes the write fail with EFBIG, as a
// full disk fails with ENOSPC) stops the run with a clear error, leaves the
// previous checkpoint byte for byte and no temporary file; resuming
// afterwards ends exactly where an uninterrupted run does.
func TestWriteFailureKeepsCheckpoint(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found: cannot set RLIMIT_FSIZE for the subprocess")
	}
	spec := tinyData(t, 40)
	base := t.TempDir()
	ref, dir := filepath.Join(base, "ref"), filepath.Join(base, "run")
	if r := run(t, tinyArgs(spec, ref, "--epochs", "2")...); r.code != 0 {
		t.Fatalf("reference run: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, tinyArgs(spec, dir, "--epochs", "1")...); r.code != 0 {
		t.Fatalf("first epoch: exit %d\n%s", r.code, r.stderr)
	}
	before, err := os.ReadFile(ckptPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	// 32 KiB: metrics.jsonl and config.json fit, the ~110 KB checkpoint does not.
	limited := []string{bash, "-c", `ulimit -f 32 && exec "$0" "$@"`}
	res := start(t, limited, tinyArgs(spec, dir, "--epochs", "2", "--resume")...).wait(t, 2*time.Minute)
	if res.code != 1 || !strings.Contains(res.stderr, "saving the checkpoint at step 10") ||
		!strings.Contains(res.stderr, "file too large") {
		t.Fatalf("exit %d, want 1 and a message about the failed checkpoint write:\n%s", res.code, res.stderr)
	}
	after, err := os.ReadFile(ckptPath(dir))
	if err != nil || string(after) != string(before) {
		t.Fatalf("the previous checkpoint changed or vanished (err %v)", err)
	}
	if left := tempFiles(dir); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if r := run(t, tinyArgs(spec, dir, "--epochs", "2", "--resume")...); r.code != 0 {
		t.Fatalf("resume after the failure: exit %d\n%s", r.code, r.stderr)
	}
	sameTensors(t, ckptPath(ref), ckptPath(dir))
}

// TestDivergenceCLI: a huge learning rate makes the run diverge: exit 1
// with a message naming the step, the tensor and the likely cause, and the
// last good checkpoint unchanged and loadable by the other commands.
func TestDivergenceCLI(t *testing.T) {
	spec := tinyData(t, 40)
	dir := filepath.Join(t.TempDir(), "run")
	if r := run(t, tinyArgs(spec, dir, "--epochs", "1")...); r.code != 0 {
		t.Fatalf("first epoch: exit %d\n%s", r.code, r.stderr)
	}
	before, err := os.ReadFile(ckptPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, tinyArgs(spec, dir, "--epochs", "2", "--resume", "--lr", "1e30", "--warmup-epochs", "0",
		"--schedule", "constant", "--min-lr", "0")...)
	msg := regexp.MustCompile(`step \d+: .*(z1|z2|gradient of \S+|weights of \S+|loss is).*likely cause.*` +
		`last good checkpoint is ` + regexp.QuoteMeta(ckptPath(dir)))
	if res.code != 1 || !msg.MatchString(res.stderr) || !strings.Contains(res.stderr, "--lr") {
		t.Fatalf("exit %d, want 1 and a divergence message (step, tensor, cause, checkpoint):\n%s", res.code, res.stderr)
	}
	after, err := os.ReadFile(ckptPath(dir))
	if err != nil || string(after) != string(before) {
		t.Fatalf("the last good checkpoint changed or vanished (err %v)", err)
	}
	emb := run(t, "embed", "--checkpoint", dir, "--out", filepath.Join(t.TempDir(), "f.npy"), "--threads", "1")
	if emb.code != 0 {
		t.Fatalf("embed with the last good checkpoint: exit %d\n%s", emb.code, emb.stderr)
	}
}
