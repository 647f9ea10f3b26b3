package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/ops/backends"
	"github.com/corinfomax/corinfomax/recipe"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/train"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultRecipe and defaultMethod are what a bare `pretrain` runs.
const (
	defaultRecipe = "fashionmnist"
	defaultMethod = ssl.NameCorInfoMax
)

// pretrainFlags holds the flags of pretrain and demo. The run's settings
// are declared once, in bindSettings; resolve replays the flags the user
// set onto the recipe's (or the stored run's) configuration.
type pretrainFlags struct {
	recipe, method string
	resume, json   bool
	shared         bool // --shared-settings
	fs             *pflag.FlagSet
	c              train.Config       // where the parsed setting flags land
	opts           map[string]float64 // where the parsed method-option flags land
}

// bindSettings declares every setting flag of a run, bound to c, with c's
// values as the defaults.
func bindSettings(fs *pflag.FlagSet, c *train.Config) {
	fs.StringVar(&c.Data, "data", c.Data, "training data as KIND:PATH (fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR, stl10:DIR, folder:DIR, npy:IMAGES.npy[,LABELS.npy])")
	fs.IntVar(&c.Limit, "limit", c.Limit, "use only the first N training images (0: all)")
	fs.BoolVar(&c.Strict, "strict", c.Strict, "stop at the first unreadable image instead of skipping it")
	fs.Float32SliceVar(&c.Mean, "mean", c.Mean, "per-channel normalisation mean (default: the dataset's)")
	fs.Float32SliceVar(&c.Std, "std", c.Std, "per-channel normalisation std (default: the dataset's)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "data loading goroutines")
	fs.BoolVar(&c.Shuffle, "shuffle", c.Shuffle, "shuffle the training set every epoch")
	fs.StringVar(&c.Augment, "augment", c.Augment, "augmentation: paper, light (no blur) or none (both views are the normalised image)")
	fs.IntVar(&c.Size, "size", c.Size, "crop size in pixels")
	fs.Float64Var(&c.CropScaleMin, "crop-scale-min", c.CropScaleMin, "smallest RandomResizedCrop area fraction")
	fs.StringVar(&c.Arch, "arch", c.Arch, "backbone: "+strings.Join(model.Archs(), ", "))
	fs.StringVar(&c.Stem, "stem", c.Stem, "stem: cifar (3x3 conv, no max-pool) or imagenet (7x7/2 conv + max-pool)")
	fs.IntVar(&c.Width, "width", c.Width, "base channels of the ResNet (64 = standard)")
	fs.StringVar(&c.Projector, "projector", c.Projector, "projector MLP widths, e.g. 2048-2048-64")
	fs.BoolVar(&c.ProjectorBN, "projector-bn", c.ProjectorBN, "batch norm in the projector's hidden layers")
	fs.BoolVar(&c.ProjectorLastBias, "projector-last-bias", c.ProjectorLastBias, "a bias on the projector's last linear layer")
	fs.BoolVar(&c.ProjectorOutBN, "projector-out-bn", c.ProjectorOutBN, "batch norm without affine parameters on the projector's output (SimSiam)")
	fs.StringVar(&c.Predictor, "predictor", c.Predictor, "predictor MLP widths on the projector output, e.g. 1024-64 (byol, simsiam)")
	fs.BoolVar(&c.PredictorStaticLR, "predictor-static-lr", c.PredictorStaticLR, "train the predictor at the constant base --lr, outside the schedule (simsiam)")
	fs.Float64Var(&c.BaseTau, "base-tau", c.BaseTau, "momentum network: EMA coefficient at the start (byol, mocov2)")
	fs.Float64Var(&c.FinalTau, "final-tau", c.FinalTau, "momentum network: EMA coefficient at the end, reached on a cosine")
	fs.BoolVar(&c.ZeroInit, "zero-init-residual", c.ZeroInit, "zero-initialise the last BN of every residual block")
	fs.StringVar(&c.Optimizer, "optimizer", c.Optimizer, strings.Join(train.Optimizers(), ", "))
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "training epochs")
	fs.IntVar(&c.Batch, "batch", c.Batch, "images per view per step")
	fs.Float64Var(&c.LR, "lr", c.LR, "base learning rate")
	fs.Float64Var(&c.MinLR, "min-lr", c.MinLR, "learning rate at the end of the cosine schedule")
	fs.Float64Var(&c.WarmupStart, "warmup-start-lr", c.WarmupStart, "learning rate at the start of the warm-up")
	fs.IntVar(&c.WarmupEpochs, "warmup-epochs", c.WarmupEpochs, "linear warm-up epochs")
	fs.StringVar(&c.Schedule, "schedule", c.Schedule, "learning-rate schedule: cosine (after the warm-up) or constant")
	fs.StringVar(&c.ScheduleUnit, "schedule-unit", c.ScheduleUnit, "the schedule advances every epoch or every step")
	fs.Float64Var(&c.Momentum, "momentum", c.Momentum, "SGD/LARS momentum")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "weight decay")
	fs.IntVar(&c.MaxSteps, "max-steps", c.MaxSteps, "stop after N optimizer steps (0: no limit)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "random seed (weights, data order, augmentations)")
	fs.IntVar(&c.Threads, "threads", c.Threads, "compute threads (0: all cores)")
	fs.StringVar(&c.Backend, "backend", c.Backend, "operator backend: "+backendHelp())
	fs.StringVar(&c.Precision, "precision", c.Precision, "fp32, or bf16: bfloat16 convolutions (float32 weights, batch norm and projector; needs AVX512-BF16)")
	fs.IntVar(&c.LogEvery, "log-every", c.LogEvery, "write a metrics record every N steps")
	fs.IntVar(&c.KNNEvery, "knn-every", c.KNNEvery, "online kNN every N epochs when labels exist (0: never)")
	fs.IntVar(&c.KNNTrain, "knn-train", c.KNNTrain, "training images in the online kNN memory bank")
	fs.IntVar(&c.KNNTest, "knn-test", c.KNNTest, "test images the online kNN classifies")
	fs.StringVar(&c.OnNaN, "on-nan", c.OnNaN, "on a non-finite loss or gradient: stop, or skip the step")
	fs.StringVar(&c.Init, "init", c.Init, "start from the weights of FILE.safetensors (the optimizer starts fresh)")
	fs.StringVar(&c.Out, "out", c.Out, "run directory (config.json, metrics.jsonl, checkpoint.safetensors, report.png)")
	fs.IntVar(&c.CkptEvery, "checkpoint-every", c.CkptEvery, "also checkpoint every N steps (0: once per epoch)")
	fs.BoolVar(&c.OnlineProbe, "online-probe", c.OnlineProbe, "train a linear classifier on the detached backbone features during pretraining and log its test top-1 every epoch (needs labels)")
	fs.BoolVar(&c.SyncBN, "sync-bn", c.SyncBN, "under mpirun: batch-norm statistics over the global batch of all ranks (default: each rank's own slice)")
}

// backendHelp lists the registered backends for help texts.
func backendHelp() string {
	var parts []string
	for _, b := range backends.All() {
		parts = append(parts, b.Name+" ("+b.Summary+")")
	}
	return strings.Join(parts, ", ")
}

// optionValue is a method option's flag: it records the value under the
// option's name.
type optionValue struct {
	into map[string]float64
	opt  ssl.Option
	def  float64
}

func (v *optionValue) String() string {
	x, ok := v.into[v.opt.Name]
	if !ok {
		x = v.def
	}
	if v.opt.Kind == ssl.Bool {
		return strconv.FormatBool(x != 0)
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

func (v *optionValue) Set(s string) error {
	switch v.opt.Kind {
	case ssl.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.into[v.opt.Name] = 0
		if b {
			v.into[v.opt.Name] = 1
		}
	case ssl.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		v.into[v.opt.Name] = float64(n)
	default:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.into[v.opt.Name] = x
	}
	return nil
}

func (v *optionValue) Type() string { return v.opt.Kind.String() }

// addPretrainFlags declares pretrain's flags on fs: the run settings with
// the default recipe's values as defaults, --recipe and --method, and one
// flag per declared method option (ssl.Methods), its default the value the
// default recipe gives that method.
func addPretrainFlags(fs *pflag.FlagSet, f *pretrainFlags) {
	f.fs = fs
	base, err := train.FromRecipe(defaultRecipe, defaultMethod)
	if err == nil {
		f.c = base
	}
	f.c.Out = ""
	fs.StringVar(&f.recipe, "recipe", defaultRecipe, "defaults by dataset: "+strings.Join(recipe.Names(), ", ")+" (see the table above)")
	fs.StringVar(&f.method, "method", defaultMethod, "SSL objective: "+strings.Join(ssl.Names(), ", "))
	fs.BoolVar(&f.shared, "shared-settings", false, "train the method on the recipe's shared settings (CorInfoMax's projector and optimizer) instead of its own; a predictor and momentum schedule are kept where the method needs them")
	bindSettings(fs, &f.c)
	f.opts = map[string]float64{}
	for _, m := range ssl.Methods() {
		defs, err := train.FromRecipe(defaultRecipe, m.Name)
		for _, o := range m.Options {
			def := o.Default
			if err == nil {
				def, _ = defs.MethodOpts.Get(o.Name)
			}
			fl := fs.VarPF(&optionValue{into: f.opts, opt: o, def: def}, o.Flag, "", m.Name+": "+o.Help)
			if o.Kind == ssl.Bool {
				fl.NoOptDefVal = "true"
			}
		}
	}
}

// resolve builds the effective configuration: the recipe and method
// defaults (or, with --resume, the stored run's configuration), then every
// flag the user set.
func (f *pretrainFlags) resolve(fs *pflag.FlagSet) (train.Config, error) {
	var cfg train.Config
	var err error
	if f.resume && f.c.Out == "" {
		return cfg, usagef("--resume needs --out RUNDIR")
	}
	// A run killed before its first checkpoint has nothing stored: --resume
	// then starts it from scratch with the flags given (train.Run says so).
	stored := f.resume && train.HasCheckpoint(f.c.Out)
	if stored {
		cfg, err = train.StoredConfig(f.c.Out)
		if err != nil {
			return cfg, err
		}
		if fs.Changed("method") && f.method != cfg.Method {
			return cfg, usagef("--method: a resumed run keeps its method (%s); start a new run for %s", cfg.Method, f.method)
		}
	} else {
		from := train.FromRecipe
		if f.shared {
			from = train.FromSharedRecipe
		}
		cfg, err = from(f.recipe, f.method)
		if err != nil {
			if fs.Changed("recipe") || !fs.Changed("method") {
				return cfg, usagef("--recipe/--method: %v", err)
			}
			return cfg, usagef("--method: %v", err)
		}
	}
	// Replay the setting flags the user set onto cfg.
	onto := pflag.NewFlagSet("resolve", pflag.ContinueOnError)
	bindSettings(onto, &cfg)
	var replayErr error
	fs.Visit(func(fl *pflag.Flag) {
		if replayErr != nil {
			return
		}
		if v, ok := fl.Value.(*optionValue); ok {
			owner, _, _ := ssl.OptionOf(v.opt.Name)
			if owner != cfg.Method {
				replayErr = &FlagError{Flag: fl.Name, Msg: fmt.Sprintf("an option of %s, not of the run's method %s", owner, cfg.Method)}
				return
			}
			cfg.MethodOpts = cfg.MethodOpts.Clone()
			cfg.MethodOpts.Set(v.opt.Name, f.opts[v.opt.Name])
			return
		}
		dst := onto.Lookup(fl.Name)
		if dst == nil {
			return // --recipe, --method, --shared-settings, --resume, --json
		}
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			replayErr = dst.Value.(pflag.SliceValue).Replace(sv.GetSlice())
			return
		}
		replayErr = dst.Value.Set(fl.Value.String())
	})
	if replayErr != nil {
		return cfg, replayErr
	}
	cfg.Version = version
	return cfg, nil
}

// recipeTable describes every recipe's defaults for the help text.
func recipeTable() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  recipe\tarch/stem\twidth\tprojector\tbatch\tepochs\toptimizer lr\tschedule\taugment size crop\tcorinfomax alpha lam eps")
	for _, name := range recipe.Names() {
		r, err := recipe.Lookup(name)
		if err != nil {
			continue
		}
		cim, _ := r.MethodDefaults(ssl.NameCorInfoMax)
		a, _ := cim.Get("alpha")
		l, _ := cim.Get("lam_R")
		e, _ := cim.Get("eps")
		bn := ""
		if r.ProjectorBN {
			bn = " +BN"
		}
		fmt.Fprintf(tw, "  %s\t%s/%s\t%d\t%s%s\t%d\t%d\t%s %g\twarm-up %d, per %s\t%s %d %g\t%g %g %g\n", name, r.Arch, r.Stem, r.Width,
			r.Projector, bn, r.Batch, r.Epochs, r.Optimizer, r.LR, r.WarmupEpochs, r.ScheduleUnit, r.Augment, r.Size,
			r.CropScaleMin, a, l, e)
	}
	tw.Flush()
	return b.String()
}

// methodTable describes each method's own recipe under the recipes that
// have them, for the help text.
func methodTable() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  recipe\tmethod\tprojector\tpredictor\toptimizer, lr at batch 256\twarm-up from\tweight decay\ttau\tsource")
	for _, name := range recipe.Names() {
		r, err := recipe.Lookup(name)
		if err != nil {
			continue
		}
		for _, m := range ssl.Names() {
			mr, ok := r.Methods[m]
			if !ok {
				continue
			}
			proj := mr.Projector
			if mr.ProjectorBN {
				proj += " +BN"
			}
			if mr.ProjectorOutBN {
				proj += " +outBN"
			}
			pred, tau := "-", "-"
			if mr.Predictor != "" {
				pred = mr.Predictor + " +BN"
				if mr.PredictorStaticLR {
					pred += ", fixed lr"
				}
			}
			if mr.FinalTau > 0 {
				tau = fmt.Sprintf("%g-%g", mr.BaseTau, mr.FinalTau)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s %g\t%g\t%g\t%s\t%s\n", name, m, proj, pred, mr.Optimizer, mr.LR, mr.WarmupStart,
				mr.WeightDecay, tau, mr.Source)
		}
	}
	tw.Flush()
	return b.String()
}

func newPretrainCmd() *cobra.Command {
	f := &pretrainFlags{}
	cmd := &cobra.Command{
		Use:   "pretrain --out RUNDIR [flags]",
		Short: "Pretrain an encoder with a self-supervised method",
		Long: `Pretrain a ResNet backbone and projector with a self-supervised objective.

Defaults come from --recipe (the paper's recipes by dataset, and the CPU-sized
fashionmnist recipe) and --method; any flag overrides them. The defaults shown
below are the fashionmnist recipe's, which a bare "pretrain" runs; the recipes:

` + recipeTable() + `
Every recipe uses SGD momentum 0.9, weight decay 1e-4, a cosine schedule from a
warm-up start of 0.003. Under the cifar10, cifar100 and fashionmnist recipes each
peer trains on its own authors' settings instead (solo-learn's CIFAR configs; for
fashionmnist every width divided by 4 as the backbone is, outputs at least 64);
LARS is solo-learn's (eta 0.02, clip_lr, biases and batch norm excluded), and
learning rates scale linearly with the batch (lr x batch / 256, solo-learn's rule):

` + methodTable() + `
Method options other than CorInfoMax's take the defaults shown below (Barlow
Twins' scale-loss is 0.1 under those three recipes). The run directory gets config.json,
metrics.jsonl, checkpoint.safetensors (every epoch and on Ctrl-C) and report.png.
--resume continues from the checkpoint exactly where it stopped.

Started by mpirun (or srun --mpi=pmix) the command trains one model on all the
processes, data-parallel: --batch stays the global batch per view (each rank takes
its slice), gradients are summed over the ranks, rank 0 writes the run directory,
and --sync-bn makes the batch-norm statistics global.`,
		Example: `  corinfomax pretrain --out runs/fm --epochs 5
  corinfomax pretrain --data cifar10:~/data/cifar-10-batches-bin --recipe cifar10 --width 16 --epochs 100 --out runs/c10
  corinfomax pretrain --method vicreg --out runs/vicreg --max-steps 100 --log-every 1
  corinfomax pretrain --out runs/fm --resume
  mpirun -np 2 corinfomax pretrain --out runs/fm2 --threads 1 --sync-bn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.resolve(cmd.Flags())
			if err != nil {
				return err
			}
			comm, err := openComm()
			if err != nil {
				return err
			}
			sum, err := train.RunDistributed(cmd.Context(), comm, cfg, f.resume, os.Stderr)
			var ce *train.ConfigError
			if comm.Size() > 1 && errors.As(err, &ce) {
				// A setting refused before training: the same on every rank.
				_ = comm.Close()
				if comm.Rank() != 0 {
					os.Exit(2)
				}
				return err
			}
			if comm.Size() > 1 {
				if err != nil && !errors.Is(err, train.ErrInterrupted) {
					// The other ranks wait in a collective: end the job.
					fmt.Fprintf(os.Stderr, "corinfomax: rank %d of %d: %v\n", comm.Rank(), comm.Size(), err)
					comm.Abort(1)
				}
				if cerr := comm.Close(); cerr != nil && err == nil {
					err = cerr
				}
				if comm.Rank() != 0 { // rank 0 reports for the job
					if errors.Is(err, train.ErrInterrupted) {
						return nil
					}
					return err
				}
			}
			if errors.Is(err, train.ErrInterrupted) {
				fmt.Fprintf(os.Stderr, "interrupted at step %d: checkpoint saved; continue with:\n  corinfomax pretrain --out %s --resume\n", sum.Steps, cfg.Out)
				return nil
			}
			if err != nil {
				return err
			}
			if f.json {
				return json.NewEncoder(os.Stdout).Encode(sum)
			}
			fmt.Fprintf(os.Stderr, "done: %d epochs, %d steps, final loss %.4f, %.0f img/s; checkpoint %s\n",
				sum.Epochs, sum.Steps, sum.FinalLoss, sum.ImagesPerSec, sum.Checkpoint)
			return nil
		},
	}
	addPretrainFlags(cmd.Flags(), f)
	cmd.Flags().BoolVar(&f.resume, "resume", false, "continue the run in --out from its last checkpoint")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the run summary as one JSON object on stdout")
	return cmd
}
