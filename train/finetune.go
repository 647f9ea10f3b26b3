package train

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/backends"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/tensor"
)

// FinetuneConfig is every setting of a few-label fine-tuning run: a linear
// head on a pretrained backbone, both trained on a class-balanced labelled
// subset (VICReg's semi-supervised protocol, evaluate.py --weights
// finetune: SGD with momentum 0.9, separate learning rates for backbone and
// head, cosine annealing per epoch, weight decay 0, random-resized-crop and
// flip augmentation, the head drawn from N(0, 0.01) with zero bias). It is
// written to RUNDIR/finetune.json.
type FinetuneConfig struct {
	// Checkpoint is the pretrained run (or .safetensors file) whose backbone,
	// image size and normalisation the run starts from.
	Checkpoint string `json:"checkpoint"`
	// RandomInit trains the same architecture from random weights with the
	// same labels and schedule (the supervised-from-scratch baseline).
	RandomInit bool   `json:"random_init"`
	Data       string `json:"data"`
	// Labels is the label budget: "1%", "10%" or "N-per-class".
	Labels string `json:"labels"`
	Seed   int64  `json:"seed"` // the labelled subset, the head, the data order

	Epochs       int     `json:"epochs"`
	Batch        int     `json:"batch"`
	LRBackbone   float64 `json:"lr_backbone"`
	LRHead       float64 `json:"lr_head"`
	Momentum     float64 `json:"momentum"`
	WeightDecay  float64 `json:"weight_decay"`
	CropScaleMin float64 `json:"crop_scale_min"`

	Workers int    `json:"workers"`
	Threads int    `json:"threads"`
	Backend string `json:"backend"`
	Out     string `json:"out"`
}

// DefaultFinetune returns VICReg's semi-supervised settings for a label
// budget: 20 epochs at batch 256, learning rates 0.03 (backbone) and 0.08
// (head) for 1% of the labels, 0.01 and 0.1 for 10% (its README), used here
// for budgets under and from 5% respectively. Crops keep at least 40% of
// the image (the fashionmnist recipe's light views; VICReg crops ImageNet
// from 8%).
func DefaultFinetune(labels string) FinetuneConfig {
	c := FinetuneConfig{Labels: labels, Epochs: 20, Batch: 256, LRBackbone: 0.03, LRHead: 0.08, Momentum: 0.9,
		CropScaleMin: 0.4, Workers: 2, Backend: backends.Default}
	if b, err := data.ParseLabelBudget(labels); err == nil && b.PerClass == 0 && b.Fraction >= 0.05 {
		c.LRBackbone, c.LRHead = 0.01, 0.1
	}
	return c
}

// Validate checks the settings and returns a *ConfigError naming the first
// one out of range.
func (c *FinetuneConfig) Validate() error {
	switch {
	case c.Checkpoint == "":
		return cfgErr("checkpoint", "is required: the pretrained run (with --random-init, the run whose architecture to train from scratch)")
	case c.Data == "":
		return cfgErr("data", "is required")
	case c.Out == "":
		return cfgErr("out", "is required")
	case c.Epochs < 1:
		return cfgErr("epochs", "must be >= 1, got %d", c.Epochs)
	case c.Batch < 2:
		return cfgErr("batch", "must be >= 2 (batch statistics need two samples), got %d", c.Batch)
	case !(c.LRBackbone >= 0) || !(c.LRHead > 0):
		return cfgErr("lr_head", "learning rates must be >= 0 (backbone) and > 0 (head), got %g and %g", c.LRBackbone, c.LRHead)
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return cfgErr("momentum", "must be in [0, 1), got %g", c.Momentum)
	case !(c.WeightDecay >= 0):
		return cfgErr("weight_decay", "must be >= 0, got %g", c.WeightDecay)
	case !(c.CropScaleMin > 0 && c.CropScaleMin <= 1):
		return cfgErr("crop_scale_min", "must be in (0, 1], got %g", c.CropScaleMin)
	case c.Workers < 0:
		return cfgErr("workers", "must be >= 0, got %d", c.Workers)
	case c.Threads < 0:
		return cfgErr("threads", "must be >= 0 (0 = all cores), got %d", c.Threads)
	}
	if _, err := data.ParseLabelBudget(c.Labels); err != nil {
		return cfgErr("labels", "%v", err)
	}
	return nil
}

// FinetuneSummary is what a fine-tuning run reports: the test accuracy of
// the final network on the whole test split.
type FinetuneSummary struct {
	Epochs     int     `json:"epochs"`
	Labelled   int     `json:"labelled_images"`
	TestImages int     `json:"test_images"`
	Top1       float64 `json:"top1"`
	Top5       float64 `json:"top5"`
	RandomInit bool    `json:"random_init"`
	Checkpoint string  `json:"checkpoint"`
}

// Files of a fine-tuning run directory besides checkpoint.safetensors and
// metrics.jsonl.
const (
	FinetuneConfigFile = "finetune.json"
	LabelledFile       = "labelled.json"
)

// labelledSet is RUNDIR/labelled.json: the labelled subset, so that a run
// can be repeated (and is checked on --resume).
type labelledSet struct {
	Data    string `json:"data"`
	Labels  string `json:"labels"`
	Seed    int64  `json:"seed"`
	Indices []int  `json:"indices"`
}

// finetuner holds a fine-tuning run.
type finetuner struct {
	cfg        FinetuneConfig
	dir        model.RunDir
	log        io.Writer
	spec       model.Spec
	size       int
	norm       data.Norm
	be         ops.Backend
	net        *nn.Network
	optB, optH *optim.SGD
	loader     *data.Loader
	test       data.Dataset
	labelled   []int
	metrics    *metricsLog
	epoch      int // epochs done
	inEpoch    int // steps done in the epoch in progress
	step       int
	dlogits    *tensor.Tensor // the loss gradient, reused across steps
}

// Finetune runs cfg (resuming RUNDIR's checkpoint when resume is set, with
// the settings stored there) and evaluates the network on the whole test
// split after every epoch. On cancellation of ctx it writes a checkpoint
// and returns ErrInterrupted.
func Finetune(ctx context.Context, cfg FinetuneConfig, resume bool, log io.Writer) (*FinetuneSummary, error) {
	dir := model.RunDir(cfg.Out)
	if resume {
		if !dir.HasCheckpoint() {
			fmt.Fprintf(log, "no checkpoint in %s yet: starting from scratch with the flags given\n", cfg.Out)
			resume = false
		} else {
			stored, err := readFinetuneConfig(filepath.Join(cfg.Out, FinetuneConfigFile))
			if err != nil {
				return nil, err
			}
			stored.Out, stored.Workers, stored.Threads = cfg.Out, cfg.Workers, cfg.Threads
			cfg = stored
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	unlock, err := openRunDir(cfg.Out, log)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f := &finetuner{cfg: cfg, dir: dir, log: log}
	if err := f.setup(resume); err != nil {
		if f.be != nil {
			f.be.Close()
		}
		return nil, err
	}
	defer f.be.Close()
	var sum *FinetuneSummary
	err = ops.OnComputeThread(f.be, func(binding string) error {
		if binding != "" {
			fmt.Fprintf(log, "compute threads: %s\n", binding)
		}
		var err error
		sum, err = f.run(ctx)
		return err
	})
	return sum, err
}

func readFinetuneConfig(path string) (FinetuneConfig, error) {
	var c FinetuneConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("resuming: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("resuming: %s: %w", path, err)
	}
	return c, nil
}

// setup opens the data, picks (or reads back) the labelled subset, builds
// the network from the pretrained backbone and a fresh head, and restores
// the checkpoint when resuming.
func (f *finetuner) setup(resume bool) error {
	cfg := &f.cfg
	pre, err := model.Read(cfg.Checkpoint)
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	if pre.Spec.NumClasses > 0 {
		return cfgErr("checkpoint", "%s is already a fine-tuned classifier (%d classes): give the pretrained run", pre.Path, pre.Spec.NumClasses)
	}
	if pre.Size < 1 || len(pre.Norm.Mean) != pre.Spec.InChannels {
		return cfgErr("checkpoint", "%s has no image size or normalisation metadata (a weights-only file?): give the pretrained run directory", pre.Path)
	}
	f.size, f.norm = pre.Size, pre.Norm
	ds, err := data.Open(cfg.Data, data.Train, data.OpenOptions{Log: f.log})
	if err != nil {
		return fmt.Errorf("opening --data %s: %w", cfg.Data, err)
	}
	if ds.NumClasses() < 2 {
		return cfgErr("data", "%s has no labels: fine-tuning needs a labelled dataset", ds.Name())
	}
	if ds.Channels() != pre.Spec.InChannels {
		return cfgErr("checkpoint", "%s is a network for %d-channel images, --data %s has %d channels (a checkpoint of another architecture or dataset?)",
			pre.Path, pre.Spec.InChannels, cfg.Data, ds.Channels())
	}
	budget, _ := data.ParseLabelBudget(cfg.Labels) // checked by Validate
	if f.labelled, err = data.BalancedSubset(ds, budget, cfg.Seed); err != nil {
		return cfgErr("labels", "%v", err)
	}
	set := labelledSet{Data: cfg.Data, Labels: cfg.Labels, Seed: cfg.Seed, Indices: f.labelled}
	setPath := filepath.Join(cfg.Out, LabelledFile)
	if resume {
		var old labelledSet
		b, err := os.ReadFile(setPath)
		if err == nil {
			err = json.Unmarshal(b, &old)
		}
		if err != nil {
			return fmt.Errorf("resuming: reading the labelled subset %s: %w", setPath, err)
		}
		if !slices.Equal(old.Indices, f.labelled) {
			return fmt.Errorf("resuming: %s holds another labelled subset than --labels %s --seed %d give (the data changed?)", setPath, cfg.Labels, cfg.Seed)
		}
	} else if err := writeJSONAtomic(setPath, set); err != nil {
		return err
	}
	if f.test, err = data.Open(cfg.Data, data.Test, data.OpenOptions{Log: f.log}); err != nil {
		return fmt.Errorf("fine-tuning is evaluated on the test split of --data: %w", err)
	}
	if f.test.NumClasses() != ds.NumClasses() {
		return fmt.Errorf("the test split of %s has %d classes, the training split %d", cfg.Data, f.test.NumClasses(), ds.NumClasses())
	}
	view := data.ViewConfig{Size: f.size, ScaleMin: cfg.CropScaleMin, ScaleMax: 1, RatioMin: 3.0 / 4, RatioMax: 4.0 / 3, FlipP: 0.5}
	pipe := data.Pipeline{Views: [2]data.ViewConfig{view, view}, Norm: f.norm}
	f.loader, err = data.NewLoader(data.Subset(ds, f.labelled), data.LoaderConfig{Batch: min(cfg.Batch, len(f.labelled)),
		Workers: cfg.Workers, Seed: cfg.Seed, Shuffle: true, Views: 1, Pipeline: pipe})
	if err != nil {
		return fmt.Errorf("building the data loader: %w", err)
	}
	if f.be, err = backends.New(cfg.Backend, cfg.Threads, ""); err != nil {
		return err
	}
	f.spec = pre.Spec.Classifier(ds.NumClasses())
	rng := rand.New(rand.NewSource(cfg.Seed))
	if f.net, err = model.NewNetwork(f.be, f.spec, rng); err != nil {
		return err
	}
	for i := range f.net.Head.Weight.Value.Data { // VICReg: normal_(0, 0.01), bias zero
		f.net.Head.Weight.Value.Data[i] = float32(0.01 * rng.NormFloat64())
	}
	f.net.Head.Bias.Value.Zero()
	if !cfg.RandomInit {
		if err := model.LoadBackbone(pre.File, pre.Path, f.net); err != nil {
			return err
		}
	}
	f.optB = optim.NewSGD(f.net.Backbone.Params(), cfg.Momentum, cfg.WeightDecay, false)
	f.optH = optim.NewSGD(f.net.Head.Params(), cfg.Momentum, cfg.WeightDecay, false)
	var ck *model.Checkpoint
	if resume {
		if ck, err = model.Read(f.dir.Checkpoint()); err != nil {
			return fmt.Errorf("resuming from %s: %w", cfg.Out, err)
		}
		if ck.Spec != f.spec {
			return fmt.Errorf("resuming: %s holds a network %+v, the run builds %+v", ck.Path, ck.Spec, f.spec)
		}
		if err := ck.LoadWeights(f.net, model.LoadOptions{}); err != nil {
			return err
		}
		var stB, stH []optim.StateTensor
		head := map[string]bool{}
		for _, p := range f.net.Head.Params() {
			head[p.Name] = true
		}
		for _, s := range ck.Optimizer {
			if _, param, ok := cutKind(s.Name); ok && head[param] {
				stH = append(stH, s)
			} else {
				stB = append(stB, s)
			}
		}
		if err := f.optB.SetState(stB); err != nil {
			return fmt.Errorf("%s: backbone optimizer state: %w", ck.Path, err)
		}
		if err := f.optH.SetState(stH); err != nil {
			return fmt.Errorf("%s: head optimizer state: %w", ck.Path, err)
		}
		f.epoch, f.inEpoch, f.step = ck.Position.Epoch, ck.Position.StepInEpoch, ck.Position.Step
		fmt.Fprintf(f.log, "resuming %s at epoch %d, step %d\n", cfg.Out, f.epoch+1, f.step)
	}
	var rs *runState
	if ck != nil {
		rs = &runState{Pos: ck.Position}
	}
	if f.metrics, err = openMetrics(f.dir.Metrics(), rs); err != nil {
		return err
	}
	return writeJSONAtomic(filepath.Join(cfg.Out, FinetuneConfigFile), cfg)
}

// cutKind splits an optimizer state name "momentum_buffer.layer1.0.conv1.weight"
// into its kind and parameter name.
func cutKind(name string) (kind, param string, ok bool) {
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			return name[:i], name[i+1:], true
		}
	}
	return "", "", false
}

// lrAt is the cosine annealing of torch's CosineAnnealingLR(T_max=epochs)
// stepped once per epoch: base * (1 + cos(pi * epoch / epochs)) / 2.
func (f *finetuner) lrAt(base float64, epoch int) float64 {
	return base * (1 + math.Cos(math.Pi*float64(epoch)/float64(f.cfg.Epochs))) / 2
}

func (f *finetuner) run(ctx context.Context) (*FinetuneSummary, error) {
	cfg := &f.cfg
	spe := f.loader.StepsPerEpoch()
	prog := newProgress(f.log, cfg.Epochs*spe, f.step)
	defer prog.Finish()
	fmt.Fprintf(f.log, "fine-tuning on %d labelled images (%s, %d classes), %d steps an epoch, backbone %s\n",
		len(f.labelled), cfg.Labels, f.spec.NumClasses, spe, map[bool]string{true: "randomly initialised", false: "from " + cfg.Checkpoint}[cfg.RandomInit])
	last := &FinetuneSummary{}
	for ; f.epoch < cfg.Epochs; f.epoch++ {
		interrupted, err := f.trainEpoch(ctx, prog)
		if err != nil {
			return nil, err
		}
		if interrupted {
			return f.interrupt()
		}
		top1, top5, n, err := f.evaluate(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return f.interrupt()
			}
			return nil, err
		}
		prog.Note(fmt.Sprintf("epoch %d: test top-1 %.2f%%, top-5 %.2f%% (%d images)", f.epoch+1, top1, top5, n))
		if err := f.metrics.write(map[string]any{"type": "epoch", "epoch": f.epoch + 1, "step": f.step,
			"top1": top1, "top5": top5, "test_images": n}); err != nil {
			return nil, err
		}
		f.inEpoch = 0
		if err := f.save(f.epoch+1, 0); err != nil {
			return nil, err
		}
		last = &FinetuneSummary{Epochs: f.epoch + 1, Top1: top1, Top5: top5, TestImages: n}
	}
	if last.TestImages == 0 { // resumed after the last epoch: evaluate again
		top1, top5, n, err := f.evaluate(ctx)
		if err != nil {
			return nil, err
		}
		last = &FinetuneSummary{Epochs: cfg.Epochs, Top1: top1, Top5: top5, TestImages: n}
	}
	last.Labelled, last.RandomInit, last.Checkpoint = len(f.labelled), cfg.RandomInit, f.dir.Checkpoint()
	return last, nil
}

// trainEpoch runs the rest of epoch f.epoch (from step f.inEpoch) at the
// epoch's learning rates. It reports whether ctx was cancelled (the caller
// then writes the checkpoint).
func (f *finetuner) trainEpoch(ctx context.Context, prog Progress) (bool, error) {
	lrB, lrH := f.lrAt(f.cfg.LRBackbone, f.epoch), f.lrAt(f.cfg.LRHead, f.epoch)
	f.net.SetTraining(true)
	it := f.loader.Epoch(ctx, f.epoch, f.inEpoch)
	defer it.Close()
	for spe := f.loader.StepsPerEpoch(); f.inEpoch < spe; {
		if ctx.Err() != nil {
			return true, nil
		}
		start := time.Now()
		b, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			return false, fmt.Errorf("epoch %d: reading batch %d: %w", f.epoch+1, f.inEpoch+1, err)
		}
		loss := math.NaN()
		if b.N >= 2 { // a last batch of one image has no batch statistics: skip it
			if loss, err = f.trainStep(b, lrB, lrH); err != nil {
				return false, fmt.Errorf("step %d: %w", f.step+1, err)
			}
		}
		f.step++
		f.inEpoch++
		ips := float64(b.N) / time.Since(start).Seconds()
		if err := f.metrics.write(map[string]any{"type": "step", "epoch": f.epoch + 1, "step": f.step,
			"lr_backbone": lrB, "lr_head": lrH, "loss": jsonFloat(loss), "images_per_sec": ips}); err != nil {
			return false, err
		}
		prog.Step(f.step, ssl.Result{Loss: loss}, ips)
	}
	return false, nil
}

// trainStep is one optimizer step on batch b: cross-entropy of the head's
// logits, backward through head and backbone, both optimizers' updates.
// It returns the batch's loss.
func (f *finetuner) trainStep(b *data.Batch, lrB, lrH float64) (float64, error) {
	x, err := tensor.FromData(b.X[0], b.N, b.H, b.W, b.C)
	if err != nil {
		return 0, err
	}
	f.net.ZeroGrad()
	_, z, err := f.net.Forward(0, x)
	if err != nil {
		return 0, err
	}
	f.dlogits = tensor.Ensure(f.dlogits, z.Shape...)
	loss, err := ops.SoftmaxCrossEntropy(z.Data, b.N, f.spec.NumClasses, b.Labels, f.dlogits.Data)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, fmt.Errorf("the cross-entropy is %v (learning rates %g and %g too high?)", loss, lrB, lrH)
	}
	if err := f.net.Backward(0, f.dlogits); err != nil {
		return 0, err
	}
	if err := f.optB.Step(lrB); err != nil {
		return 0, err
	}
	if err := f.optH.Step(lrH); err != nil {
		return 0, err
	}
	return loss, nil
}

// evaluate returns the top-1 and top-5 accuracy (percent) of the network on
// the whole test split (inference mode, the evaluation transform).
func (f *finetuner) evaluate(ctx context.Context) (top1, top5 float64, n int, err error) {
	defer f.net.SetTraining(true)
	logits, labels, k, err := model.Features(ctx, f.net, f.test, f.size, f.norm, model.Projector, 0, 256)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("evaluating on %s: %w", f.test.Name(), err)
	}
	t1, t5 := TopK(logits, labels, k)
	return t1, t5, len(labels), nil
}

// TopK returns the percentages of rows of the n x k logits whose label is
// the highest logit (top-1) and among the five highest (top-5; every row
// when k <= 5).
func TopK(logits []float32, labels []int, k int) (top1, top5 float64) {
	if len(labels) == 0 {
		return 0, 0
	}
	var r1, r5 int
	for r, l := range labels {
		row := logits[r*k : (r+1)*k]
		above := 0 // logits strictly above the label's
		for _, v := range row {
			if v > row[l] {
				above++
			}
		}
		if above == 0 {
			r1++
		}
		if above < 5 {
			r5++
		}
	}
	n := float64(len(labels))
	return 100 * float64(r1) / n, 100 * float64(r5) / n
}

// save writes the network (torchvision names, fc.* included), both
// optimizers' state and the position atomically.
func (f *finetuner) save(epoch, inEpoch int) error {
	cfg, err := json.Marshal(f.cfg)
	if err != nil {
		return fmt.Errorf("encoding the configuration: %w", err)
	}
	st := &model.State{Spec: f.spec, Size: f.size, Data: f.cfg.Data, Norm: f.norm, Method: "finetune", Config: cfg,
		Position:  model.Position{Epoch: epoch, StepInEpoch: inEpoch, Step: f.step},
		Optimizer: append(f.optB.State(), f.optH.State()...)}
	if err := model.Save(f.dir.Checkpoint(), f.net, st); err != nil {
		return fmt.Errorf("saving the checkpoint at step %d (the previous one, if any, is intact): %w", f.step, err)
	}
	return nil
}

func (f *finetuner) interrupt() (*FinetuneSummary, error) {
	if err := f.save(f.epoch, f.inEpoch); err != nil {
		return nil, fmt.Errorf("saving the checkpoint after interruption: %w", err)
	}
	return &FinetuneSummary{Epochs: f.epoch, Labelled: len(f.labelled), RandomInit: f.cfg.RandomInit,
		Checkpoint: f.dir.Checkpoint()}, ErrInterrupted
}
