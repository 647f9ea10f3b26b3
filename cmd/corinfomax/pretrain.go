package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/corinfomax/corinfomax/recipe"
	"github.com/corinfomax/corinfomax/train"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// pretrainFlags binds every overridable setting; only flags the user set
// override the recipe's values.
type pretrainFlags struct {
	recipe, method string
	resume, json   bool
	c              train.Config
}

func addPretrainFlags(fs *pflag.FlagSet, f *pretrainFlags) {
	c := &f.c
	fs.StringVar(&f.recipe, "recipe", "fashionmnist", "defaults by dataset: "+fmt.Sprint(recipe.Names()))
	fs.StringVar(&f.method, "method", "corinfomax", "SSL objective: corinfomax, barlowtwins, vicreg, simclr, wmse")
	fs.StringVar(&c.Data, "data", "fashion-mnist", "training data as KIND:PATH (fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR, stl10:DIR, folder:DIR, npy:IMAGES.npy[,LABELS.npy])")
	fs.IntVar(&c.Limit, "limit", 0, "use only the first N training images (0: all)")
	fs.BoolVar(&c.Strict, "strict", false, "stop at the first unreadable image instead of skipping it")
	fs.Float32SliceVar(&c.Mean, "mean", nil, "per-channel normalisation mean (default: the dataset's)")
	fs.Float32SliceVar(&c.Std, "std", nil, "per-channel normalisation std (default: the dataset's)")
	fs.IntVar(&c.Workers, "workers", 2, "data loading goroutines")
	fs.BoolVar(&c.Shuffle, "shuffle", true, "shuffle the training set every epoch")
	fs.StringVar(&c.Augment, "augment", "paper", "augmentation: paper, light or none (both views are the normalised image)")
	fs.IntVar(&c.Size, "size", 32, "crop size in pixels")
	fs.Float64Var(&c.CropScaleMin, "crop-scale-min", 0.08, "smallest RandomResizedCrop area fraction")
	fs.StringVar(&c.Arch, "arch", "resnet18", "backbone: resnet18, resnet34, resnet50")
	fs.StringVar(&c.Stem, "stem", "cifar", "stem: cifar (3x3 conv, no max-pool) or imagenet (7x7/2 conv + max-pool)")
	fs.IntVar(&c.Width, "width", 64, "base channels of the ResNet (64 = standard)")
	fs.StringVar(&c.Projector, "projector", "2048-2048-64", "projector MLP widths, e.g. 2048-2048-64")
	fs.BoolVar(&c.ProjectorBN, "projector-bn", false, "batch norm in the projector's hidden layers")
	fs.BoolVar(&c.ZeroInit, "zero-init-residual", true, "zero-initialise the last BN of every residual block")
	fs.StringVar(&c.Optimizer, "optimizer", "sgd", "sgd, lars or adamw")
	fs.IntVar(&c.Epochs, "epochs", 1, "training epochs")
	fs.IntVar(&c.Batch, "batch", 256, "images per view per step")
	fs.Float64Var(&c.LR, "lr", 0.5, "base learning rate")
	fs.Float64Var(&c.MinLR, "min-lr", 1e-6, "learning rate at the end of the cosine schedule")
	fs.Float64Var(&c.WarmupStart, "warmup-start-lr", 3e-3, "learning rate at the start of the warm-up")
	fs.IntVar(&c.WarmupEpochs, "warmup-epochs", 1, "linear warm-up epochs")
	fs.StringVar(&c.Schedule, "schedule", "cosine", "learning-rate schedule: cosine (after the warm-up) or constant")
	fs.StringVar(&c.ScheduleUnit, "schedule-unit", "epoch", "the schedule advances every epoch or every step")
	fs.Float64Var(&c.Momentum, "momentum", 0.9, "SGD/LARS momentum")
	fs.Float64Var(&c.WeightDecay, "weight-decay", 1e-4, "weight decay")
	fs.IntVar(&c.MaxSteps, "max-steps", 0, "stop after N optimizer steps (0: no limit)")
	fs.Int64Var(&c.Seed, "seed", 0, "random seed (weights, data order, augmentations)")
	fs.IntVar(&c.Threads, "threads", 0, "compute threads (0: all cores)")
	fs.StringVar(&c.Backend, "backend", "dnnl", "operator backend: dnnl (fast) or ref (plain Go, slow, for checking)")
	fs.StringVar(&c.Precision, "precision", "fp32", "fp32, or bf16: bfloat16 convolutions (float32 weights, batch norm and projector; needs AVX512-BF16)")
	fs.IntVar(&c.LogEvery, "log-every", 10, "write a metrics record every N steps")
	fs.IntVar(&c.KNNEvery, "knn-every", 1, "online kNN every N epochs when labels exist (0: never)")
	fs.IntVar(&c.KNNTrain, "knn-train", 10000, "training images in the online kNN memory bank")
	fs.IntVar(&c.KNNTest, "knn-test", 2000, "test images the online kNN classifies")
	fs.StringVar(&c.OnNaN, "on-nan", "stop", "on a non-finite loss or gradient: stop, or skip the step")
	fs.StringVar(&c.Init, "init", "", "start from the weights of FILE.safetensors (the optimizer starts fresh)")
	fs.StringVar(&c.Out, "out", "", "run directory (config.json, metrics.jsonl, checkpoint.safetensors, report.png)")
	fs.IntVar(&c.CkptEvery, "checkpoint-every", 0, "also checkpoint every N steps (0: once per epoch)")
	o := &c.MethodOpts
	fs.Float64Var(&o.Alpha, "alpha", 0, "corinfomax: weight of the MSE term")
	fs.Float64Var(&o.LamR, "lam-r", 0, "corinfomax: weight of the old covariance estimate, in [0,1)")
	fs.Float64Var(&o.LamMu, "lam-mu", 0, "corinfomax: weight of the old mean estimate, in [0,1)")
	fs.Float64Var(&o.Eps, "eps", 0, "corinfomax: eps added to the covariance diagonal, > 0")
	fs.Float64Var(&o.InitScale, "init-scale", 0, "corinfomax: initial covariance = init-scale * I")
	fs.BoolVar(&o.Normalize, "normalize", true, "corinfomax: L2-normalise the projector outputs")
	fs.Float64Var(&o.Lambda, "lambda", 0, "barlowtwins: off-diagonal weight")
	fs.Float64Var(&o.ScaleLoss, "scale-loss", 0, "barlowtwins: loss scale")
	fs.Float64Var(&o.SimCoeff, "sim-coeff", 0, "vicreg: invariance weight")
	fs.Float64Var(&o.StdCoeff, "std-coeff", 0, "vicreg: variance weight")
	fs.Float64Var(&o.CovCoeff, "cov-coeff", 0, "vicreg: covariance weight")
	fs.Float64Var(&o.Temperature, "temperature", 0, "simclr: softmax temperature")
	fs.IntVar(&o.WSize, "w-size", 0, "wmse: whitening sub-batch size")
	fs.IntVar(&o.WIter, "w-iter", 0, "wmse: whitening iterations")
}

// resolve builds the effective configuration: the recipe and method
// defaults, then every flag the user set.
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
	} else {
		cfg, err = train.FromRecipe(f.recipe, f.method)
	}
	if err != nil && stored {
		return cfg, err
	}
	if err != nil {
		if fs.Changed("recipe") || !fs.Changed("method") {
			return cfg, usagef("--recipe/--method: %v", err)
		}
		return cfg, usagef("--method: %v", err)
	}
	set := f.c
	override := map[string]func(){
		"data": func() { cfg.Data = set.Data }, "limit": func() { cfg.Limit = set.Limit },
		"strict": func() { cfg.Strict = set.Strict }, "mean": func() { cfg.Mean = set.Mean },
		"std": func() { cfg.Std = set.Std }, "workers": func() { cfg.Workers = set.Workers },
		"shuffle": func() { cfg.Shuffle = set.Shuffle }, "augment": func() { cfg.Augment = set.Augment },
		"size": func() { cfg.Size = set.Size }, "crop-scale-min": func() { cfg.CropScaleMin = set.CropScaleMin },
		"arch": func() { cfg.Arch = set.Arch }, "stem": func() { cfg.Stem = set.Stem },
		"width": func() { cfg.Width = set.Width }, "projector": func() { cfg.Projector = set.Projector },
		"projector-bn": func() { cfg.ProjectorBN = set.ProjectorBN }, "zero-init-residual": func() { cfg.ZeroInit = set.ZeroInit },
		"optimizer": func() { cfg.Optimizer = set.Optimizer }, "epochs": func() { cfg.Epochs = set.Epochs },
		"batch": func() { cfg.Batch = set.Batch }, "lr": func() { cfg.LR = set.LR }, "min-lr": func() { cfg.MinLR = set.MinLR },
		"warmup-start-lr": func() { cfg.WarmupStart = set.WarmupStart }, "warmup-epochs": func() { cfg.WarmupEpochs = set.WarmupEpochs },
		"schedule": func() { cfg.Schedule = set.Schedule }, "schedule-unit": func() { cfg.ScheduleUnit = set.ScheduleUnit }, "momentum": func() { cfg.Momentum = set.Momentum },
		"weight-decay": func() { cfg.WeightDecay = set.WeightDecay }, "max-steps": func() { cfg.MaxSteps = set.MaxSteps },
		"seed": func() { cfg.Seed = set.Seed }, "threads": func() { cfg.Threads = set.Threads },
		"backend": func() { cfg.Backend = set.Backend }, "precision": func() { cfg.Precision = set.Precision }, "log-every": func() { cfg.LogEvery = set.LogEvery },
		"knn-every": func() { cfg.KNNEvery = set.KNNEvery }, "knn-train": func() { cfg.KNNTrain = set.KNNTrain },
		"knn-test": func() { cfg.KNNTest = set.KNNTest }, "on-nan": func() { cfg.OnNaN = set.OnNaN },
		"init": func() { cfg.Init = set.Init }, "out": func() { cfg.Out = set.Out },
		"checkpoint-every": func() { cfg.CkptEvery = set.CkptEvery },
		"alpha":            func() { cfg.MethodOpts.Alpha = set.MethodOpts.Alpha }, "lam-r": func() { cfg.MethodOpts.LamR = set.MethodOpts.LamR },
		"lam-mu": func() { cfg.MethodOpts.LamMu = set.MethodOpts.LamMu }, "eps": func() { cfg.MethodOpts.Eps = set.MethodOpts.Eps },
		"init-scale": func() { cfg.MethodOpts.InitScale = set.MethodOpts.InitScale },
		"normalize":  func() { cfg.MethodOpts.Normalize = set.MethodOpts.Normalize },
		"lambda":     func() { cfg.MethodOpts.Lambda = set.MethodOpts.Lambda }, "scale-loss": func() { cfg.MethodOpts.ScaleLoss = set.MethodOpts.ScaleLoss },
		"sim-coeff": func() { cfg.MethodOpts.SimCoeff = set.MethodOpts.SimCoeff }, "std-coeff": func() { cfg.MethodOpts.StdCoeff = set.MethodOpts.StdCoeff },
		"cov-coeff": func() { cfg.MethodOpts.CovCoeff = set.MethodOpts.CovCoeff }, "temperature": func() { cfg.MethodOpts.Temperature = set.MethodOpts.Temperature },
		"w-size": func() { cfg.MethodOpts.WSize = set.MethodOpts.WSize }, "w-iter": func() { cfg.MethodOpts.WIter = set.MethodOpts.WIter },
	}
	fs.Visit(func(fl *pflag.Flag) {
		if o, ok := override[fl.Name]; ok {
			o()
		}
	})
	cfg.Version = version
	return cfg, nil
}

func newPretrainCmd() *cobra.Command {
	f := &pretrainFlags{}
	cmd := &cobra.Command{
		Use:   "pretrain --out RUNDIR [flags]",
		Short: "Pretrain an encoder with a self-supervised method",
		Long: `Pretrain a ResNet backbone and projector with a self-supervised objective.

Defaults come from --recipe (the paper's recipes by dataset, and the CPU-sized
fashionmnist recipe) and --method; any flag overrides them. The run directory gets
config.json, metrics.jsonl, checkpoint.safetensors (every epoch and on Ctrl-C) and
report.png. --resume continues from the checkpoint exactly where it stopped.`,
		Example: `  corinfomax pretrain --out runs/fm --epochs 5
  corinfomax pretrain --data cifar10:~/data/cifar-10-batches-bin --recipe cifar10 --width 16 --epochs 100 --out runs/c10
  corinfomax pretrain --method vicreg --out runs/vicreg --max-steps 100 --log-every 1
  corinfomax pretrain --out runs/fm --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.resolve(cmd.Flags())
			if err != nil {
				return err
			}
			sum, err := train.Run(cmd.Context(), cfg, f.resume, os.Stderr)
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
