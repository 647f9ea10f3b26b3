package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"time"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/dist"
	"github.com/corinfomax/corinfomax/eval"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/backends"
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
	dir    model.RunDir
	spec   model.Spec
	norm   data.Norm // the run's normalisation, resolved once
	be     ops.Backend
	net    *nn.Network
	opt    optim.Optimizer
	method ssl.Objective
	step1  *Step
	// momentum is the momentum network of BYOL and MoCo, else nil.
	momentum *nn.Momentum
	train    data.Dataset
	loader   *data.Loader
	log      io.Writer
	prog     Progress

	// Position: epoch (0-based) being trained and steps done in it; step is
	// the global number of optimizer steps done.
	epoch, stepInEpoch, step int
	skipped                  int
	metrics                  *metricsLog
	history                  history
	lastLoss                 float64
	saved                    snapshot // state rolled back by --on-nan skip

	probe *eval.OnlineLinear // --online-probe (rank 0 only), else nil

	comm dist.Comm // the data-parallel ranks (dist.Local for one process)
	lead bool      // rank 0: writes the run directory and the log
}

// checkEvery is how often (in steps) the ranks of a data-parallel run
// compare their weights.
const checkEvery = 50

// Run trains according to cfg (validated), writing into cfg.Out, and
// resumes from cfg.Out's checkpoint when resume is true (start from
// StoredConfig then to get an identical continuation). Progress goes to
// log. On cancellation of ctx it finishes the current step, writes a
// checkpoint and returns ErrInterrupted.
func Run(ctx context.Context, cfg Config, resume bool, log io.Writer) (*Summary, error) {
	return RunDistributed(ctx, dist.Local{}, cfg, resume, log)
}

// RunDistributed is Run on the ranks of comm, data-parallel: every rank
// calls it with the same cfg. cfg.Batch is the global batch per view; each
// rank trains on its Batch/Size slice of every batch (data.LoaderConfig
// Shard), the objective sees the global batch (ssl's Gather), the parameter
// gradients are summed over the ranks before every update, and with
// cfg.SyncBN the batch-norm statistics are global too: N ranks then compute
// what one process computes on the whole batch. Rank 0 alone writes the run
// directory (checkpoints, metrics, report, online kNN) and the log; every
// rank reads the checkpoint to resume, so the run directory must be on a
// file system all ranks see. Every checkEvery steps the ranks compare a
// checksum of their weights. An error on one rank returns on that rank
// only: the caller must end the job (comm.Abort), since the other ranks
// wait in a collective.
func RunDistributed(ctx context.Context, comm dist.Comm, cfg Config, resume bool, log io.Writer) (*Summary, error) {
	if comm == nil {
		comm = dist.Local{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if n := comm.Size(); cfg.Batch%n != 0 {
		return nil, cfgErr("batch", "%d (the global batch per view) is not a multiple of the %d ranks: each rank takes an equal slice", cfg.Batch, n)
	}
	lead := comm.Rank() == 0
	if lead {
		unlock, err := openRunDir(cfg.Out, log)
		if err != nil {
			return nil, err
		}
		defer unlock()
	} else {
		log = io.Discard
	}

	t := &Trainer{cfg: cfg, dir: model.RunDir(cfg.Out), log: log, comm: comm, lead: lead}
	var ck *runState
	var err error
	if resume && !t.dir.HasCheckpoint() {
		fmt.Fprintf(log, "no checkpoint in %s yet (the run stopped before its first one): starting from scratch with the flags given\n", cfg.Out)
		resume = false
	}
	if resume {
		ck, err = readRunState(t.dir.Checkpoint())
		if err != nil {
			return nil, fmt.Errorf("resuming from %s: %w", cfg.Out, err)
		}
	}
	if err := t.setup(ck); err != nil {
		return nil, err
	}
	defer t.be.Close()
	if lead {
		if err := writeJSONAtomic(t.dir.Config(), t.cfg); err != nil {
			return nil, err
		}
	}
	// The whole loop runs on one OS thread whose compute threads are bound
	// to cores (ops.OnComputeThread): unbound, the step time of a process
	// on a small machine is bimodal (docs/benchmarks.md).
	var sum *Summary
	err = ops.OnComputeThread(t.be, func(binding string) error {
		if binding != "" {
			fmt.Fprintf(t.log, "compute threads: %s\n", binding)
		}
		if comm.Size() > 1 {
			fmt.Fprintf(t.log, "data-parallel on %d ranks: %d images per rank and view of each batch of %d; batch norm %s\n",
				comm.Size(), cfg.Batch/comm.Size(), cfg.Batch, map[bool]string{true: "synchronised over the ranks", false: "per rank"}[cfg.SyncBN])
		}
		var err error
		sum, err = t.run(ctx)
		return err
	})
	return sum, err
}

func (t *Trainer) setup(ck *runState) error {
	cfg := &t.cfg
	ds, err := data.Open(cfg.Data, data.Train, data.OpenOptions{Limit: cfg.Limit, Strict: cfg.Strict, Log: t.log})
	if err != nil {
		return fmt.Errorf("opening --data %s: %w", cfg.Data, err)
	}
	if ds.Len() < cfg.Batch {
		return cfgErr("batch", "must be <= the number of training images (%d), got %d", ds.Len(), cfg.Batch)
	}
	t.train = ds
	t.spec = cfg.Spec(ds.Channels())
	if t.norm, err = cfg.Norm(ds.Channels()); err != nil {
		return err
	}
	pipe, err := cfg.Pipeline(t.norm)
	if err != nil {
		return err
	}
	t.loader, err = data.NewLoader(ds, data.LoaderConfig{Batch: cfg.Batch, Workers: cfg.Workers, Seed: cfg.Seed,
		Shuffle: cfg.Shuffle, DropLast: true, Views: 2, Pipeline: pipe, Shard: t.comm.Rank(), Shards: t.comm.Size()})
	if err != nil {
		return fmt.Errorf("building the data loader: %w", err)
	}
	if t.be, err = backends.New(cfg.Backend, cfg.Threads, cfg.Precision); err != nil {
		return err
	}
	if err := t.build(ck); err != nil {
		t.be.Close()
		return err
	}
	t.history = t.metrics.history()
	return nil
}

// build creates the network, objective, optimizer and metrics log on t.be
// and restores the checkpoint ck or the --init weights.
func (t *Trainer) build(ck *runState) error {
	cfg := &t.cfg
	var err error
	rng := rand.New(rand.NewSource(cfg.Seed))
	if t.net, err = model.NewNetwork(t.be, t.spec, rng); err != nil {
		return err
	}
	if t.method, err = newMethod(cfg, t.comm); err != nil {
		return err
	}
	if t.opt, err = NewNetworkOptimizer(cfg, t.net); err != nil {
		return err
	}
	t.step1 = NewStep(t.net, t.method, t.opt)
	if br, _ := ssl.BranchesOf(cfg.Method); br.Momentum {
		// Its own random source (the weights are the online ones anyway).
		if t.momentum, err = model.NewMomentum(t.be, t.spec, t.net, cfg.BaseTau, cfg.FinalTau, t.scheduleSteps(),
			rand.New(rand.NewSource(cfg.Seed^0x6d6f6d))); err != nil {
			return err
		}
		t.step1.Momentum = t.momentum
	}
	if cfg.OnlineProbe && t.lead {
		if t.train.NumClasses() < 2 {
			return cfgErr("online_probe", "needs a labelled dataset: %s has no labels", cfg.Data)
		}
		// Its own random source: the probe changes nothing else of the run.
		if t.probe, err = eval.NewOnlineLinear(t.net.Backbone.FeatureDim(), t.train.NumClasses(),
			rand.New(rand.NewSource(cfg.Seed^0x70726f6265))); err != nil {
			return err
		}
		t.step1.KeepFeatures = true
	}
	if t.comm.Size() > 1 {
		t.step1.Grads = dist.NewGradReducer(t.comm, 0)
		if cfg.SyncBN {
			bns := t.net.BatchNorms()
			if t.momentum != nil {
				bns = append(bns, t.momentum.Net.BatchNorms()...)
			}
			for _, b := range bns {
				b.Sync = t.comm.AllreduceSum64
			}
		}
	}
	if !t.lead {
		t.metrics = &metricsLog{}
	} else if t.metrics, err = openMetrics(t.dir.Metrics(), ck); err != nil {
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
		if t.momentum != nil { // the momentum network starts from the loaded weights
			t.momentum.CopyOnline()
		}
	}
	return nil
}

// scheduleSteps is the number of optimizer steps of all the run's epochs,
// over which the momentum network's tau rises (as the learning rate's
// cosine runs over the epochs): --max-steps stops a run early but does not
// change its schedules, so a run stopped by it and resumed equals an
// uninterrupted one.
func (t *Trainer) scheduleSteps() int { return t.cfg.Epochs * t.loader.StepsPerEpoch() }

// totalSteps is the number of optimizer steps the run will take.
func (t *Trainer) totalSteps() int {
	total := t.cfg.Epochs * t.loader.StepsPerEpoch()
	if t.cfg.MaxSteps > 0 && t.cfg.MaxSteps < total {
		total = t.cfg.MaxSteps
	}
	return total
}

// newMethod builds cfg's objective (symmetric or targeted), its W-MSE
// splits seeded by the run's seed, gathering z over comm's ranks when there
// are several.
func newMethod(cfg *Config, comm dist.Comm) (ssl.Objective, error) {
	opts := cfg.MethodOpts.Clone()
	opts.Seed = cfg.Seed
	if comm != nil && comm.Size() > 1 {
		opts.Gather = gatherOver(comm)
	}
	return ssl.NewObjective(cfg.Method, opts)
}

// networks lists the online network, then the momentum network if any.
func (t *Trainer) networks() []*nn.Network {
	if t.momentum != nil {
		return []*nn.Network{t.net, t.momentum.Net}
	}
	return []*nn.Network{t.net}
}

// gatherOver is the ssl.GatherFunc of comm: it concatenates the ranks' z in
// rank order (the order of the global batch's slices).
func gatherOver(comm dist.Comm) ssl.GatherFunc {
	return func(z []float32, n, d int) ([]float32, int, func(gAll, g []float32), error) {
		all := make([]float32, comm.Size()*len(z))
		if err := comm.Allgather32(z, all); err != nil {
			return nil, 0, nil, err
		}
		off := comm.Rank() * n * d
		return all, comm.Size() * n, func(gAll, g []float32) { copy(g, gAll[off:off+n*d]) }, nil
	}
}

// agreeToStop reports whether any rank's ctx is cancelled, so that every
// rank stops after the same step (one all-reduce of one value).
func (t *Trainer) agreeToStop(ctx context.Context) (bool, error) {
	if t.comm.Size() == 1 {
		return ctx.Err() != nil, nil
	}
	flag := []float64{0}
	if ctx.Err() != nil {
		flag[0] = 1
	}
	if err := t.comm.AllreduceSum64(flag); err != nil {
		return false, fmt.Errorf("step %d: agreeing on an interruption: %w", t.step+1, err)
	}
	return flag[0] > 0, nil
}

// checkRanks stops a data-parallel run whose ranks' weights differ.
func (t *Trainer) checkRanks() error {
	if t.comm.Size() == 1 {
		return nil
	}
	ps := t.net.Params()
	ts := make([][]float32, len(ps))
	for i, p := range ps {
		ts[i] = p.Value.Data
	}
	if err := dist.CheckSame(t.comm, ts, "weights"); err != nil {
		return fmt.Errorf("after step %d: %w", t.step, err)
	}
	return nil
}

func (t *Trainer) run(ctx context.Context) (*Summary, error) {
	cfg := &t.cfg
	spe := t.loader.StepsPerEpoch()
	total := t.totalSteps()
	t.prog = newProgress(t.log, total, t.step)
	defer t.prog.Finish()
	sched := cfg.schedule(spe)
	if err := t.checkRanks(); err != nil {
		return nil, err
	}
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
			stop, err := t.agreeToStop(ctx)
			if err != nil {
				it.Close()
				return nil, err
			}
			if stop {
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
				if isDivergence(err) {
					t.recordStop("diverged", err)
				}
				return nil, err
			}
			t.step++
			t.stepInEpoch++
			imgs += 2 * cfg.Batch
			epochImgs += 2 * cfg.Batch
			ips := float64(2*cfg.Batch) / time.Since(stepStart).Seconds()
			if t.step%checkEvery == 0 {
				if err := t.checkRanks(); err != nil {
					it.Close()
					return nil, err
				}
			}
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
	s := &Summary{Epochs: t.epoch, Steps: t.step, FinalLoss: t.lastLoss, Checkpoint: t.dir.Checkpoint(),
		SkippedSteps: t.skipped}
	if n := len(t.history.KNN); n > 0 {
		s.KNN = t.history.KNN[n-1].Top1
	}
	return s
}

func (t *Trainer) interrupt() (*Summary, error) {
	t.recordStop("interrupted", ErrInterrupted)
	if err := t.save(); err != nil {
		return nil, fmt.Errorf("saving the checkpoint after interruption: %w", err)
	}
	if err := t.writeReport(); err != nil {
		fmt.Fprintf(t.log, "warning: writing report.png: %v\n", err)
	}
	return t.summary(), ErrInterrupted
}

// trainStep runs one optimizer step on the two views of b (Step.Run). It
// reports whether the step was skipped because of a non-finite value
// (--on-nan skip): the batch-norm running statistics and the method's
// running state are then rolled back to before the step.
func (t *Trainer) trainStep(b *data.Batch, lr float64) (ssl.Result, bool, error) {
	step := t.step + 1
	skip := t.cfg.OnNaN == "skip"
	if skip {
		t.saved.take(t.method, t.networks()...)
	}
	var x [2]*tensor.Tensor
	for v := range x {
		var err error
		if x[v], err = tensor.FromData(b.X[v], b.N, b.H, b.W, b.C); err != nil {
			return ssl.Result{}, false, fmt.Errorf("step %d: view %d: %w", step, v+1, err)
		}
	}
	res, err := t.step1.Run(step, x, lr)
	switch {
	case err == nil:
		if t.probe != nil {
			if _, err := t.probe.Step(t.step1.Features().Data, b.N, b.Labels); err != nil {
				return res, false, fmt.Errorf("step %d: %w", step, err)
			}
		}
		return res, false, nil
	case isDivergence(err) && skip:
		fmt.Fprintf(t.log, "skipping step %d: %v\n", step, err)
		if rerr := t.saved.restore(t.method, t.networks()...); rerr != nil {
			return res, false, fmt.Errorf("step %d: rolling back the skipped step: %w", step, rerr)
		}
		t.net.ZeroGrad()
		return ssl.Result{Loss: math.NaN()}, true, nil
	case isDivergence(err):
		return res, false, fmt.Errorf("%w (likely cause: the learning rate %g is too high, or the features "+
			"collapsed; try a lower --lr, or --on-nan skip); %s", err, lr, t.lastGood())
	}
	return res, false, fmt.Errorf("%w; %s", err, t.lastGood())
}

// recordStop appends a "stop" record (why the run stopped before its end:
// "diverged" or "interrupted") to metrics.jsonl, so that a reader of the
// run directory (corinfomax serve) tells a diverged run from a killed one.
// A failed write is only logged: the run is stopping anyway.
func (t *Trainer) recordStop(reason string, cause error) {
	rec := map[string]any{"type": "stop", "reason": reason, "epoch": t.epoch + 1, "step": t.step,
		"error": cause.Error()}
	if err := t.metrics.write(rec); err != nil {
		fmt.Fprintf(t.log, "warning: recording the stop in metrics.jsonl: %v\n", err)
	}
}
