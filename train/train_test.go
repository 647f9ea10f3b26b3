package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/internal/testutil"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/ops/dnnl"
	"github.com/corinfomax/corinfomax/ssl"
)

// tinyData is testutil.TinyNPY: n random 12x12 greyscale images, 3 classes.
func tinyData(t *testing.T, n int) string { return testutil.TinyNPY(t, n) }

func tinyConfig(t *testing.T, spec, out string) Config {
	t.Helper()
	cfg, err := FromRecipe("fashionmnist", "corinfomax")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data, cfg.Out = spec, out
	cfg.Width, cfg.Projector, cfg.Batch, cfg.Size = 2, "16-8", 8, 12
	cfg.Epochs, cfg.WarmupEpochs, cfg.LR = 3, 1, 0.1
	cfg.KNNEvery, cfg.LogEvery, cfg.Threads, cfg.Workers = 0, 1, 1, 2
	return cfg
}

// modelTensors returns the weights, running statistics, optimizer and
// method state stored in a run's checkpoint.
func stateOf(t *testing.T, dir string) map[string][]float64 {
	t.Helper()
	f, err := checkpoint.Read(filepath.Join(dir, "checkpoint.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, ct := range f.Tensors {
		var v []float64
		for _, x := range ct.F32 {
			v = append(v, float64(x))
		}
		v = append(v, ct.F64...)
		out[ct.Name] = v
	}
	return out
}

func sameState(t *testing.T, a, b map[string][]float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("checkpoints hold %d and %d tensors", len(a), len(b))
	}
	for name, va := range a {
		vb, ok := b[name]
		if !ok {
			t.Fatalf("tensor %s missing from the resumed run", name)
		}
		for i := range va {
			if va[i] != vb[i] {
				t.Fatalf("tensor %s differs at %d: %v (uninterrupted) vs %v (resumed)", name, i, va[i], vb[i])
			}
		}
	}
}

func TestResumeEqualsUninterrupted(t *testing.T) { resumeEqualsUninterrupted(t, 1) }

// resumeEqualsUninterrupted checks, with the given --threads, that a run
// stopped after an epoch or mid-epoch and resumed ends with bit for bit the
// tensors of an uninterrupted run.
func resumeEqualsUninterrupted(t *testing.T, threads int) {
	spec := tinyData(t, 40)
	ctx := context.Background()
	tinyConfig := func(t *testing.T, spec, out string) Config {
		cfg := tinyConfig(t, spec, out)
		cfg.Threads = threads
		return cfg
	}
	full := tinyConfig(t, spec, filepath.Join(t.TempDir(), "full"))
	if _, err := Run(ctx, full, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := stateOf(t, full.Out)
	if len(want["method.R1"]) != 64 {
		t.Fatalf("checkpoint lacks the CorInfoMax running covariance: %d values", len(want["method.R1"]))
	}

	// 1 epoch, then resume to 3 epochs.
	part := tinyConfig(t, spec, filepath.Join(t.TempDir(), "part"))
	part.Epochs = 1
	if _, err := Run(ctx, part, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg, err := StoredConfig(part.Out)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Epochs = 3
	if _, err := Run(ctx, cfg, true, io.Discard); err != nil {
		t.Fatal(err)
	}
	sameState(t, want, stateOf(t, part.Out))

	// Stop mid-epoch with --max-steps (7 steps: epoch 2, step 2 of 5), then resume.
	mid := tinyConfig(t, spec, filepath.Join(t.TempDir(), "mid"))
	mid.MaxSteps = 7
	sum, err := Run(ctx, mid, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Steps != 7 {
		t.Fatalf("--max-steps 7 ran %d steps", sum.Steps)
	}
	cfg, err = StoredConfig(mid.Out)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxSteps = 0
	if _, err := Run(ctx, cfg, true, io.Discard); err != nil {
		t.Fatal(err)
	}
	sameState(t, want, stateOf(t, mid.Out))
	// metrics.jsonl holds each step exactly once after the resume.
	b, err := os.ReadFile(filepath.Join(mid.Out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), `"type":"step"`); got != 15 {
		t.Fatalf("metrics.jsonl has %d step records, want 15", got)
	}
}

func TestInterruptSavesAndResumes(t *testing.T) {
	spec := tinyData(t, 40)
	full := tinyConfig(t, spec, filepath.Join(t.TempDir(), "full"))
	full.Epochs = 2
	if _, err := Run(context.Background(), full, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(t, spec, filepath.Join(t.TempDir(), "int"))
	cfg.Epochs = 2
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // cancelled before the first step: the run saves at step 0
	sum, err := Run(ctx, cfg, false, io.Discard)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("want ErrInterrupted, got %v", err)
	}
	if sum.Steps != 0 {
		t.Fatalf("interrupted run did %d steps", sum.Steps)
	}
	if last := lastRecord(t, cfg.Out); last["type"] != "stop" || last["reason"] != "interrupted" {
		t.Fatalf("want a last metrics record {\"type\":\"stop\",\"reason\":\"interrupted\"}, got %v", last)
	}
	// The epoch records carry the whole spectrum (serve plots it per epoch).
	if sp, _ := lastRecord(t, full.Out)["spectrum"].(map[string]any); sp == nil ||
		len(sp["eigenvalues"].([]any)) != int(sp["dim"].(float64)) {
		t.Fatalf("the last epoch record's spectrum lacks its %v eigenvalues: %v", sp["dim"], sp)
	}
	stored, err := StoredConfig(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), stored, true, io.Discard); err != nil {
		t.Fatal(err)
	}
	sameState(t, stateOf(t, full.Out), stateOf(t, cfg.Out))
}

func TestLockRefusesSecondProcess(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockRunDir(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second lock: want an 'in use' error, got %v", err)
	}
	unlock()
	unlock2, err := lockRunDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}

// TestValidateNamesTheSetting checks that Validate names the setting (its
// JSON name, or the method option's declared name) of each bad value.
func TestValidateNamesTheSetting(t *testing.T) {
	base := tinyConfig(t, "fashion-mnist", t.TempDir())
	cases := []struct {
		flag string
		set  func(*Config)
	}{
		{"epochs", func(c *Config) { c.Epochs = -1 }},
		{"batch", func(c *Config) { c.Batch = 0 }},
		{"width", func(c *Config) { c.Width = 0 }},
		{"arch", func(c *Config) { c.Arch = "vgg" }},
		{"method", func(c *Config) { c.Method = "byol2" }},
		{"lam_R", func(c *Config) { c.MethodOpts.Set("lam_R", 1) }},
		{"lam_mu", func(c *Config) { c.MethodOpts.Set("lam_mu", -0.5) }},
		{"eps", func(c *Config) { c.MethodOpts.Set("eps", 0) }},
		{"alpha", func(c *Config) { c.MethodOpts.Set("alpha", -1) }},
		{"temperature", func(c *Config) { c.MethodOpts.Set("temperature", 0.5) }}, // not a corinfomax option
		{"knn_train", func(c *Config) { c.KNNTrain = -1 }},
		{"lr", func(c *Config) { c.LR = 0 }},
		{"projector", func(c *Config) { c.Projector = "12-x" }},
		{"optimizer", func(c *Config) { c.Optimizer = "rmsprop" }},
		{"on_nan", func(c *Config) { c.OnNaN = "ignore" }},
		{"precision", func(c *Config) { c.Precision = "fp16" }},
		{"precision", func(c *Config) { c.Precision, c.Backend = "bf16", "ref" }},
	}
	for _, tc := range cases {
		c := base
		c.MethodOpts = base.MethodOpts.Clone()
		tc.set(&c)
		err := c.Validate()
		var ce *ConfigError
		var oe *ssl.OptionError
		switch {
		case errors.As(err, &ce):
			if ce.Field != tc.flag {
				t.Errorf("want a ConfigError for %s, got %v", tc.flag, err)
			}
		case errors.As(err, &oe):
			if oe.Option != tc.flag {
				t.Errorf("want an OptionError for %s, got %v", tc.flag, err)
			}
		default:
			t.Errorf("want an error naming %s, got %v", tc.flag, err)
		}
	}
	if err := base.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func TestDivergenceStopsOrSkips(t *testing.T) {
	spec := tinyData(t, 40)
	cfg := tinyConfig(t, spec, filepath.Join(t.TempDir(), "nan"))
	cfg.LR, cfg.WarmupEpochs, cfg.Schedule, cfg.MinLR = 1e30, 0, "constant", 0
	_, err := Run(context.Background(), cfg, false, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "step ") || !strings.Contains(err.Error(), "learning rate") ||
		!strings.Contains(err.Error(), "no checkpoint was written yet") {
		t.Fatalf("want a divergence error naming the step, the learning rate and the missing checkpoint, got %v", err)
	}
	// metrics.jsonl ends with a stop record that says so (what serve shows).
	mb, rerr := os.ReadFile(filepath.Join(cfg.Out, "metrics.jsonl"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	lines := strings.Split(strings.TrimSpace(string(mb)), "\n")
	var stop map[string]any
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &stop); jerr != nil || stop["type"] != "stop" ||
		stop["reason"] != "diverged" {
		t.Fatalf("want a last record {\"type\":\"stop\",\"reason\":\"diverged\"}, got %q (%v)", lines[len(lines)-1], jerr)
	}
	// With a checkpoint every step, the one left is the last finite state.
	every := tinyConfig(t, spec, filepath.Join(t.TempDir(), "every"))
	every.LR, every.WarmupEpochs, every.Schedule, every.MinLR, every.CkptEvery = 1e30, 0, "constant", 0, 1
	_, divErr := Run(context.Background(), every, false, io.Discard)
	if divErr == nil || !strings.Contains(divErr.Error(), "last good checkpoint is "+model.RunDir(every.Out).Checkpoint()) {
		t.Fatalf("want a divergence error naming the last good checkpoint, got %v", divErr)
	}
	rs, err := readRunState(model.RunDir(every.Out).Checkpoint())
	if err != nil {
		t.Fatalf("the last good checkpoint is unreadable: %v", err)
	}
	if rs.Pos.Step < 1 || !strings.Contains(divErr.Error(), fmt.Sprintf("step %d:", rs.Pos.Step+1)) {
		t.Fatalf("checkpoint at step %d, but the error is %v", rs.Pos.Step, divErr)
	}
	for _, ct := range rs.Ck.File.Tensors {
		if !finite(ct.F32) {
			t.Fatalf("the last good checkpoint holds non-finite values in %s", ct.Name)
		}
	}
	skip := tinyConfig(t, spec, filepath.Join(t.TempDir(), "skip"))
	skip.LR, skip.WarmupEpochs, skip.Schedule, skip.MinLR, skip.OnNaN = 1e30, 0, "constant", 0, "skip"
	skip.Epochs = 1
	sum, err := Run(context.Background(), skip, false, io.Discard)
	if err != nil {
		t.Fatalf("--on-nan skip: %v", err)
	}
	if sum.SkippedSteps == 0 {
		t.Fatal("--on-nan skip with lr 1e30 skipped no step")
	}
	// metrics.jsonl counts the skips: the last step record and the epoch
	// record carry the total.
	b, err := os.ReadFile(filepath.Join(skip.Out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lastStep, epochSkips := -1.0, -1.0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("metrics.jsonl line %q: %v", line, err)
		}
		n, _ := rec["skipped_steps"].(float64)
		switch rec["type"] {
		case "step":
			lastStep = n
		case "epoch":
			epochSkips = n
		}
	}
	if int(lastStep) != sum.SkippedSteps || int(epochSkips) != sum.SkippedSteps {
		t.Fatalf("metrics.jsonl counts %v skips in the last step record and %v in the epoch record, the run %d",
			lastStep, epochSkips, sum.SkippedSteps)
	}
}

// TestResumeWithoutCheckpoint: a run killed before its first checkpoint
// leaves none; resuming it starts from scratch (saying so) and ends where
// an uninterrupted run does.
func TestResumeWithoutCheckpoint(t *testing.T) {
	spec := tinyData(t, 40)
	full := tinyConfig(t, spec, filepath.Join(t.TempDir(), "full"))
	full.Epochs = 1
	if _, err := Run(context.Background(), full, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(t, spec, filepath.Join(t.TempDir(), "fresh"))
	cfg.Epochs = 1
	// What a process killed during its first checkpoint write leaves.
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(cfg.Out, "checkpoint.safetensors.tmp-123")
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if HasCheckpoint(cfg.Out) {
		t.Fatal("HasCheckpoint true without a checkpoint")
	}
	var log strings.Builder
	if _, err := Run(context.Background(), cfg, true, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "starting from scratch") {
		t.Fatalf("no message about starting from scratch:\n%s", log.String())
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the stale temporary file was not removed: %v", err)
	}
	sameState(t, stateOf(t, full.Out), stateOf(t, cfg.Out))
}

// TestBF16Pretraining runs one step of a tiny model with bfloat16
// convolutions and one with float32 from the same initial weights, and
// compares their updates (weights after the step minus before) tensor by
// tensor. With weight decay 0 the first SGD step moves each parameter by
// -lr * its gradient, so this compares the bf16 gradients with the float32
// ones. The updates must differ (the flag changes the arithmetic), and:
//
//   - with the recipe's zero-initialised last BN of each residual block,
//     the first step moves the stem and downsample convolutions, every BN
//     parameter and the projector (the residual convolutions get no gradient
//     yet): each convolution's bf16 update must be within 40% of the float32
//     update's norm, and all updates together within 15%;
//   - without it every convolution gets a gradient, and the bf16 error grows
//     towards the input (each train-mode BN backward removes most of the
//     incoming gradient, so the rounding left is relatively larger): each
//     convolution's update must keep its direction (cosine >= 0.8) and its
//     norm within a factor 1.5 of float32's, all updates together within 40%.
//
// A convolution's gradient scaled by 2 (error 100%, norm ratio 2) or zeroed
// (error 100%, ratio 0) fails either part. Measured over seeds 0-5: errors of
// the convolutions at most 16% and 4.7% on average over all parameters with
// zero-init (up to 7.3% at seed 2); without it cosines >= 0.92, norm ratios
// 0.83-1.20 and 22-29% over all parameters. The BN parameters (4 to 32
// values, sums with much cancellation) are left to the total: one tensor
// alone differs by up to 61% with zero-init and up to 230% (cosine -0.9)
// without. One step only, because the tiny, ill-conditioned CorInfoMax
// problem amplifies any difference over steps. config.json must record the
// precision. Where the CPU lacks AVX512-BF16 the configuration must be
// refused, naming the flag.
func TestBF16Pretraining(t *testing.T) {
	spec := tinyData(t, 40)
	if !dnnl.BF16Supported() {
		cfg16 := tinyConfig(t, spec, filepath.Join(t.TempDir(), "bf16"))
		cfg16.Precision = "bf16"
		var fe *ConfigError
		if err := cfg16.Validate(); !errors.As(err, &fe) || fe.Field != "precision" {
			t.Fatalf("bf16 on a CPU without AVX512-BF16: want a --precision error, got %v", err)
		}
		t.Skip("CPU lacks AVX512-BF16: checked that --precision bf16 is refused; bf16 pretraining was not run")
	}
	for _, zeroInit := range []bool{true, false} {
		stats, all, out16 := bf16Updates(t, spec, zeroInit)
		label := fmt.Sprintf("zero-init %v", zeroInit)
		convs, differs := 0, false
		worst, minCos, minRatio, maxRatio := 0.0, 1.0, math.Inf(1), 0.0
		for _, st := range stats {
			differs = differs || st.rel > 0
			if !strings.HasSuffix(st.name, "conv1.weight") && !strings.HasSuffix(st.name, "conv2.weight") &&
				!strings.HasSuffix(st.name, "downsample.0.weight") {
				continue // BN parameters and the projector: in the total only
			}
			convs++
			worst, minCos = math.Max(worst, st.rel), math.Min(minCos, st.cos)
			minRatio, maxRatio = math.Min(minRatio, st.ratio), math.Max(maxRatio, st.ratio)
			switch {
			case zeroInit && st.rel > 0.4:
				t.Errorf("%s: %s: the bf16 update differs from fp32's by %.3g of its norm, want <= 0.4", label, st.name, st.rel)
			case !zeroInit && (st.cos < 0.8 || st.ratio < 1/1.5 || st.ratio > 1.5):
				t.Errorf("%s: %s: bf16 update vs fp32's: cosine %.3g (want >= 0.8), norm ratio %.3g (want 0.67 .. 1.5)",
					label, st.name, st.cos, st.ratio)
			}
		}
		t.Logf("%s: %d tensors moved, %d convolutions: largest error %.3g, cosines >= %.3g, norm ratios %.3g .. %.3g; over all parameters %.3g",
			label, len(stats), convs, worst, minCos, minRatio, maxRatio, all)
		if want := map[bool]int{true: 4, false: 20}[zeroInit]; convs != want {
			t.Errorf("%s: %d convolutions moved, want %d", label, convs, want)
		}
		if limit := map[bool]float64{true: 0.15, false: 0.4}[zeroInit]; all > limit {
			t.Errorf("%s: over all parameters the bf16 update differs from fp32's by %.3g of its norm, want <= %g", label, all, limit)
		}
		if !differs {
			t.Errorf("%s: bf16 updates equal fp32's: the flag must change the arithmetic", label)
		}
		raw, err := os.ReadFile(filepath.Join(out16, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), `"precision": "bf16"`) {
			t.Fatalf("config.json does not record the precision:\n%s", raw)
		}
	}
}

// updateStat compares one parameter tensor's bf16 update u16 with its fp32
// update u32: rel = |u16 - u32| / |u32|, ratio = |u16| / |u32|, cos their
// cosine.
type updateStat struct {
	name            string
	rel, ratio, cos float64
}

// bf16Updates runs one step in fp32 and in bf16 (weight decay 0, batch 32,
// width 4, projector 32-16) and returns the statistics of every parameter
// tensor the fp32 step moves, the relative error over all of them, and the
// bf16 run directory.
func bf16Updates(t *testing.T, spec string, zeroInit bool) ([]updateStat, float64, string) {
	t.Helper()
	var init, after []map[string][]float64
	var out16 string
	for _, prec := range []string{"fp32", "bf16"} {
		c := tinyConfig(t, spec, filepath.Join(t.TempDir(), prec))
		c.Precision, c.Epochs, c.MaxSteps, c.WeightDecay = prec, 1, 1, 0
		c.Batch, c.Projector, c.Width, c.ZeroInit = 32, "32-16", 4, zeroInit
		// A run cancelled before its first step saves the initial state.
		c0 := c
		c0.Out += "-init"
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Run(ctx, c0, false, io.Discard); !errors.Is(err, ErrInterrupted) {
			t.Fatalf("%s: cancelled run: want ErrInterrupted, got %v", prec, err)
		}
		init = append(init, stateOf(t, c0.Out))
		if _, err := Run(context.Background(), c, false, io.Discard); err != nil {
			t.Fatalf("%s run: %v", prec, err)
		}
		after = append(after, stateOf(t, c.Out))
		out16 = c.Out
	}
	sameState(t, init[0], init[1])
	var stats []updateStat
	var d2All, n2All float64
	for name, w0 := range init[0] {
		if strings.HasPrefix(name, "optimizer.") || strings.HasPrefix(name, "method.") ||
			strings.HasSuffix(name, "running_mean") || strings.HasSuffix(name, "running_var") {
			continue
		}
		w32, w16 := after[0][name], after[1][name]
		if len(w32) != len(w0) || len(w16) != len(w0) {
			t.Fatalf("%s: %d initial values, %d (fp32) and %d (bf16) after the step", name, len(w0), len(w32), len(w16))
		}
		var d2, n2, m2, dot float64
		for i := range w0 {
			if math.IsNaN(w16[i]) || math.IsInf(w16[i], 0) {
				t.Fatalf("bf16 run: %s[%d] = %v", name, i, w16[i])
			}
			u32, u16 := w32[i]-w0[i], w16[i]-w0[i]
			d2 += (u16 - u32) * (u16 - u32)
			n2 += u32 * u32
			m2 += u16 * u16
			dot += u16 * u32
		}
		if n2 == 0 {
			if m2 != 0 {
				t.Errorf("%s: the bf16 step moves it, the fp32 step does not", name)
			}
			continue // no gradient yet (a residual convolution behind a zero-initialised BN)
		}
		d2All += d2
		n2All += n2
		cos := 0.0
		if m2 > 0 {
			cos = dot / math.Sqrt(m2*n2)
		}
		stats = append(stats, updateStat{name: name, rel: math.Sqrt(d2 / n2), ratio: math.Sqrt(m2 / n2), cos: cos})
	}
	return stats, math.Sqrt(d2All / math.Max(n2All, 1e-300)), out16
}

// lastRecord is the last record of dir's metrics.jsonl.
func lastRecord(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatalf("metrics.jsonl's last line %q: %v", lines[len(lines)-1], err)
	}
	return rec
}
