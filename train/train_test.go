package train

import (
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/npy"
)

// tinyData writes n random 12x12 greyscale images with 3 classes as .npy
// files and returns the dataset spec.
func tinyData(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(7))
	img := make([]uint8, n*12*12)
	for i := range img {
		img[i] = uint8(rng.Intn(256))
	}
	lab := make([]int64, n)
	for i := range lab {
		lab[i] = int64(i % 3)
	}
	ip, lp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := npy.WriteUint8(ip, []int{n, 12, 12}, img); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteInt64(lp, []int{n}, lab); err != nil {
		t.Fatal(err)
	}
	return "npy:" + ip + "," + lp
}

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

func TestResumeEqualsUninterrupted(t *testing.T) {
	spec := tinyData(t, 40)
	ctx := context.Background()
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

func TestValidateNamesTheFlag(t *testing.T) {
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
		{"method", func(c *Config) { c.MethodOpts.LamR = 1 }},
		{"method", func(c *Config) { c.MethodOpts.Eps = 0 }},
		{"lr", func(c *Config) { c.LR = 0 }},
		{"projector", func(c *Config) { c.Projector = "12-x" }},
		{"optimizer", func(c *Config) { c.Optimizer = "rmsprop" }},
		{"on-nan", func(c *Config) { c.OnNaN = "ignore" }},
	}
	for _, tc := range cases {
		c := base
		tc.set(&c)
		err := c.Validate()
		var fe *FlagError
		if !errors.As(err, &fe) || fe.Flag != tc.flag {
			t.Errorf("want a FlagError for --%s, got %v", tc.flag, err)
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
	if err == nil || !strings.Contains(err.Error(), "step ") || !strings.Contains(err.Error(), "learning rate") {
		t.Fatalf("want a divergence error naming the step and the learning rate, got %v", err)
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
}
