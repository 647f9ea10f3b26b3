package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"time"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/internal/atomicfile"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/tensor"
)

// ErrInterrupted is returned by Run when its context was cancelled: the
// current step finished and a checkpoint was written.
var ErrInterrupted = errors.New("training interrupted")

// Summary is what a finished (or interrupted) run reports.
type Summary struct {
	Epochs       int       `json:"epochs"`
	Steps        int       `json:"steps"`
	FinalLoss    float64   `json:"final_loss"`
	ImagesPerSec float64   `json:"images_per_sec"`
	KNN          []float64 `json:"knn_top1,omitempty"`
	Checkpoint   string    `json:"checkpoint"`
	SkippedSteps int       `json:"skipped_steps"`
}

// Trainer holds everything a pretraining run needs.
type Trainer struct {
	cfg    Config
	spec   encoder.ModelSpec
	be     ops.Backend
	net    *nn.Network
	opt    optim.Optimizer
	method ssl.Method
	train  data.Dataset
	loader *data.Loader
	log    io.Writer
	prog   Progress

	// Position: epoch (0-based) being trained and steps done in it; step is
	// the global number of optimizer steps done.
	epoch, stepInEpoch, step int
	skipped                  int
	metrics                  *metricsLog
	history                  history
	lastLoss                 float64
	g1, g2                   *tensor.Tensor
	lastZ                    *tensor.Tensor   // view 1's projector output of the last step
	saved                    []*tensor.Tensor // buffers snapshot for --on-nan skip
}

// Run trains according to cfg (validated), writing into cfg.Out, and
// resumes from cfg.Out's checkpoint when resume is true (start from
// StoredConfig then to get an identical continuation). Progress goes to
// log. On cancellation of ctx it finishes the current step, writes a
// checkpoint and returns ErrInterrupted.
func Run(ctx context.Context, cfg Config, resume bool, log io.Writer) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ensureWritable(cfg.Out); err != nil {
		return nil, err
	}
	unlock, err := lockRunDir(cfg.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	removeStaleTemps(cfg.Out, log)

	t := &Trainer{cfg: cfg, log: log}
	var ck *runState
	if resume && !HasCheckpoint(cfg.Out) {
		fmt.Fprintf(log, "no checkpoint in %s yet (the run stopped before its first one): starting from scratch with the flags given\n", cfg.Out)
		resume = false
	}
	if resume {
		ck, err = readRunState(checkpointPath(cfg.Out))
		if err != nil {
			return nil, fmt.Errorf("resuming from %s: %w", cfg.Out, err)
		}
	}
	if err := t.setup(ck); err != nil {
		return nil, err
	}
	defer t.be.Close()
	if err := writeJSONAtomic(filepath.Join(t.cfg.Out, "config.json"), t.cfg); err != nil {
		return nil, err
	}
	return t.run(ctx)
}

func (t *Trainer) setup(ck *runState) error {
	cfg := &t.cfg
	ds, err := data.Open(cfg.Data, data.Train, data.OpenOptions{Limit: cfg.Limit, Strict: cfg.Strict, Log: t.log})
	if err != nil {
		return fmt.Errorf("opening --data %s: %w", cfg.Data, err)
	}
	if ds.Len() < cfg.Batch {
		return flagErr("batch", "must be <= the number of training images (%d), got %d", ds.Len(), cfg.Batch)
	}
	t.train = ds
	t.spec = encoder.ModelSpec{Arch: cfg.Arch, Stem: cfg.Stem, Width: cfg.Width, InChannels: ds.Channels(),
		Projector: cfg.Projector, ProjectorBN: cfg.ProjectorBN, ZeroInit: cfg.ZeroInit}
	pipe, err := Pipeline(cfg, ds)
	if err != nil {
		return err
	}
	t.loader, err = data.NewLoader(ds, data.LoaderConfig{Batch: cfg.Batch, Workers: cfg.Workers, Seed: cfg.Seed,
		Shuffle: cfg.Shuffle, DropLast: true, Views: 2, Pipeline: pipe})
	if err != nil {
		return fmt.Errorf("building the data loader: %w", err)
	}
	if t.be, err = encoder.NewBackend(cfg.Backend, cfg.Threads, cfg.Precision); err != nil {
		return err
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	if t.net, err = encoder.NewNetwork(t.be, t.spec, rng); err != nil {
		return err
	}
	if t.method, err = ssl.New(cfg.Method, cfg.MethodOpts); err != nil {
		return methodFlagErr(err)
	}
	if t.opt, err = NewOptimizer(cfg, t.net.Params()); err != nil {
		return err
	}
	if t.metrics, err = openMetrics(filepath.Join(cfg.Out, "metrics.jsonl"), ck); err != nil {
		return err
	}
	switch {
	case ck != nil:
		if err := ck.restore(t); err != nil {
			return err
		}
		fmt.Fprintf(t.log, "resuming %s at epoch %d, step %d\n", cfg.Out, t.epoch+1, t.step)
	case cfg.Init != "":
		if err := loadWeights(cfg.Init, t); err != nil {
			return fmt.Errorf("--init: %w", err)
		}
	}
	t.history = t.metrics.history()
	return nil
}

// Pipeline returns the augmentation pipeline cfg asks for on ds.
func Pipeline(cfg *Config, ds data.Dataset) (data.Pipeline, error) {
	norm := data.DefaultNorm(cfg.Data, ds.Channels())
	if len(cfg.Mean) > 0 || len(cfg.Std) > 0 {
		if len(cfg.Mean) != ds.Channels() || len(cfg.Std) != ds.Channels() {
			return data.Pipeline{}, flagErr("mean", "--mean and --std need %d values each (one per channel), got %d and %d",
				ds.Channels(), len(cfg.Mean), len(cfg.Std))
		}
		norm = data.Norm{Mean: cfg.Mean, Std: cfg.Std}
	}
	switch cfg.Augment {
	case "none":
		return data.IdentityPipeline(cfg.Size, norm), nil
	case "light":
		return LightPipeline(cfg.Size, cfg.CropScaleMin, norm), nil
	}
	p := data.PaperPipeline(cfg.Size, norm)
	for v := range p.Views {
		p.Views[v].ScaleMin = cfg.CropScaleMin
	}
	return p, nil
}

// LightPipeline is the CPU recipe's augmentation for small greyscale images:
// the paper's asymmetric pipeline with crops from scaleMin and no blur
// (a 28-pixel image has little high-frequency content to lose).
func LightPipeline(size int, scaleMin float64, norm data.Norm) data.Pipeline {
	p := data.PaperPipeline(size, norm)
	for v := range p.Views {
		p.Views[v].ScaleMin = scaleMin
		p.Views[v].BlurP = 0
	}
	return p
}

func (t *Trainer) run(ctx context.Context) (*Summary, error) {
	cfg := &t.cfg
	spe := t.loader.StepsPerEpoch()
	total := cfg.Epochs * spe
	if cfg.MaxSteps > 0 && cfg.MaxSteps < total {
		total = cfg.MaxSteps
	}
	t.prog = newProgress(t.log, total, t.step)
	defer t.prog.Finish()
	sched := cfg.schedule(spe)
	var imgs int
	start := time.Now()
	for ; t.epoch < cfg.Epochs; t.epoch++ {
		lr := sched.At(t.epoch)
		epochStart, epochImgs := time.Now(), 0
		it := t.loader.Epoch(ctx, t.epoch, t.stepInEpoch)
		for t.stepInEpoch < spe {
			if cfg.ScheduleUnit == "step" {
				lr = sched.At(t.step)
			}
			if cfg.MaxSteps > 0 && t.step >= cfg.MaxSteps {
				break
			}
			if ctx.Err() != nil {
				it.Close()
				return t.interrupt()
			}
			b, err := it.Next()
			if err != nil {
				it.Close()
				if ctx.Err() != nil {
					return t.interrupt()
				}
				return nil, fmt.Errorf("epoch %d: reading batch %d: %w", t.epoch+1, t.stepInEpoch+1, err)
			}
			stepStart := time.Now()
			res, skippedStep, err := t.trainStep(b, lr)
			if err != nil {
				it.Close()
				return nil, err
			}
			t.step++
			t.stepInEpoch++
			imgs += 2 * b.N
			epochImgs += 2 * b.N
			ips := float64(2*b.N) / time.Since(stepStart).Seconds()
			if skippedStep {
				t.skipped++
			} else {
				t.lastLoss = res.Loss
			}
			if t.step%cfg.LogEvery == 0 || t.step == 1 {
				rec := stepRecord(t.epoch+1, t.step, lr, res, ips, t.skipped)
				if err := t.metrics.write(rec); err != nil {
					it.Close()
					return nil, err
				}
				t.history.addStep(t.step, res)
			}
			t.prog.Step(t.step, res, ips)
			if cfg.CkptEvery > 0 && t.step%cfg.CkptEvery == 0 && t.stepInEpoch < spe {
				if err := t.save(); err != nil {
					it.Close()
					return nil, err
				}
			}
		}
		it.Close()
		if cfg.MaxSteps > 0 && t.step >= cfg.MaxSteps && t.stepInEpoch < spe {
			break // stop mid-epoch: the checkpoint below records the position
		}
		if err := t.endEpoch(ctx, time.Since(epochStart).Seconds(), epochImgs); err != nil {
			return nil, err
		}
		t.stepInEpoch = 0
	}
	if err := t.save(); err != nil {
		return nil, err
	}
	if err := t.writeReport(); err != nil {
		fmt.Fprintf(t.log, "warning: writing report.png: %v\n", err)
	}
	sum := t.summary()
	if el := time.Since(start).Seconds(); el > 0 {
		sum.ImagesPerSec = float64(imgs) / el
	}
	return sum, nil
}

func (t *Trainer) summary() *Summary {
	s := &Summary{Epochs: t.epoch, Steps: t.step, FinalLoss: t.lastLoss, Checkpoint: checkpointPath(t.cfg.Out),
		SkippedSteps: t.skipped}
	if n := len(t.history.KNN); n > 0 {
		s.KNN = t.history.KNN[n-1].Top1
	}
	return s
}

func (t *Trainer) interrupt() (*Summary, error) {
	if err := t.save(); err != nil {
		return nil, fmt.Errorf("saving the checkpoint after interruption: %w", err)
	}
	if err := t.writeReport(); err != nil {
		fmt.Fprintf(t.log, "warning: writing report.png: %v\n", err)
	}
	return t.summary(), ErrInterrupted
}

// trainStep runs one optimizer step on the two views of b: two forward
// passes (batch-norm statistics per view, as the reference), the objective,
// two backward passes and the update. It reports whether the step was
// skipped because of a non-finite value (--on-nan skip).
func (t *Trainer) trainStep(b *data.Batch, lr float64) (ssl.Result, bool, error) {
	step := t.step + 1
	if t.cfg.OnNaN == "skip" {
		t.snapshotBuffers()
	}
	t.net.ZeroGrad()
	var z [2]*tensor.Tensor
	for v := 0; v < 2; v++ {
		x, err := tensor.FromData(b.X[v], b.N, b.H, b.W, b.C)
		if err != nil {
			return ssl.Result{}, false, err
		}
		_, zv, err := t.net.Forward(v, x)
		if err != nil {
			return ssl.Result{}, false, fmt.Errorf("step %d: forward pass of view %d: %w", step, v+1, err)
		}
		z[v] = zv
	}
	t.lastZ = z[0]
	n, d := z[0].Shape[0], z[0].Shape[1]
	t.g1 = tensor.Ensure(t.g1, n, d)
	t.g2 = tensor.Ensure(t.g2, n, d)
	res, err := t.method.Loss(step, z[0].Data, z[1].Data, n, d, t.g1.Data, t.g2.Data)
	if err == nil && (math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0)) {
		err = fmt.Errorf("step %d: the %s loss is %v", step, t.cfg.Method, res.Loss)
	}
	if err != nil {
		return t.divergence(step, res, fmt.Errorf("%w (likely cause: the learning rate %g is too high, or the "+
			"features collapsed; try a lower --lr, or --on-nan skip)", err, lr))
	}
	if err := t.net.Backward(0, t.g1); err != nil {
		return res, false, fmt.Errorf("step %d: backward pass of view 1: %w", step, err)
	}
	if err := t.net.Backward(1, t.g2); err != nil {
		return res, false, fmt.Errorf("step %d: backward pass of view 2: %w", step, err)
	}
	if name, ok := firstNonFinite(t.net.Params()); !ok {
		return t.divergence(step, res, fmt.Errorf("step %d: the gradient of %s is not finite (likely cause: the "+
			"learning rate %g is too high; try a lower --lr, or --on-nan skip)", step, name, lr))
	}
	if err := t.opt.Step(lr); err != nil {
		return res, false, fmt.Errorf("step %d: optimizer: %w", step, err)
	}
	if name, ok := firstNonFiniteValue(t.net.Params()); !ok {
		return res, false, fmt.Errorf("step %d: the weights of %s became non-finite after the update (learning "+
			"rate %g); %s", step, name, lr, t.lastGood())
	}
	return res, false, nil
}

func (t *Trainer) divergence(step int, res ssl.Result, err error) (ssl.Result, bool, error) {
	if t.cfg.OnNaN == "skip" {
		fmt.Fprintf(t.log, "skipping step %d: %v\n", step, err)
		t.restoreBuffers()
		t.net.ZeroGrad()
		return ssl.Result{Loss: math.NaN()}, true, nil
	}
	return res, false, fmt.Errorf("%w; %s", err, t.lastGood())
}

// lastGood names the checkpoint a diverged run can be resumed from.
func (t *Trainer) lastGood() string {
	if !HasCheckpoint(t.cfg.Out) {
		return "no checkpoint was written yet"
	}
	return "the last good checkpoint is " + checkpointPath(t.cfg.Out)
}

func (t *Trainer) snapshotBuffers() {
	bufs := t.net.Buffers()
	if len(t.saved) != len(bufs) {
		t.saved = make([]*tensor.Tensor, len(bufs))
	}
	for i, b := range bufs {
		t.saved[i] = tensor.Ensure(t.saved[i], b.Value.Shape...)
		copy(t.saved[i].Data, b.Value.Data)
	}
}

func (t *Trainer) restoreBuffers() {
	for i, b := range t.net.Buffers() {
		copy(b.Value.Data, t.saved[i].Data)
	}
}

func firstNonFinite(params []*nn.Param) (string, bool) {
	for _, p := range params {
		if !finite(p.Grad.Data) {
			return p.Name, false
		}
	}
	return "", true
}

func firstNonFiniteValue(params []*nn.Param) (string, bool) {
	for _, p := range params {
		if !finite(p.Value.Data) {
			return p.Name, false
		}
	}
	return "", true
}

func finite(x []float32) bool {
	var s float32
	for _, v := range x {
		s += v * 0 // NaN*0 = NaN, Inf*0 = NaN
	}
	return s == 0
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic writes b to a temporary file next to path, syncs it and
// renames it into place, so a crash never leaves a partial file at path.
func writeFileAtomic(path string, b []byte) error { return atomicfile.WriteBytes(path, b) }

// removeStaleTemps deletes the temporary files that a process killed while
// writing a checkpoint, config.json or metrics.jsonl leaves behind (the
// caller holds the run directory's lock, so no writer is active).
func removeStaleTemps(dir string, log io.Writer) {
	pats := []string{".write-test-*"}
	for _, name := range []string{encoder.CheckpointFile, "config.json", "metrics.jsonl", "report.png"} {
		pats = append(pats, name+".tmp-*", "."+name+".tmp-*")
	}
	for _, pat := range pats {
		names, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, name := range names {
			if err := os.Remove(name); err == nil {
				fmt.Fprintf(log, "removed %s, left by an interrupted write\n", name)
			}
		}
	}
}

func ensureWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return flagErr("out", "cannot create the run directory: %v", err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return flagErr("out", "the run directory %s is not writable: %v", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
