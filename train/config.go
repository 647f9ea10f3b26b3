// Package train is the pretraining loop: it builds the network, the SSL
// objective, the optimizer and the data loader from a Config, runs the
// optimisation with checkpoints, metrics, online evaluation and clean
// cancellation, and resumes a run exactly where it stopped.
package train

import (
	"fmt"
	"slices"
	"strings"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops/backends"
	"github.com/corinfomax/corinfomax/recipe"
	"github.com/corinfomax/corinfomax/ssl"
)

// Config is every effective setting of a pretraining run. It is written to
// RUNDIR/config.json and stored in each checkpoint.
type Config struct {
	// Data.
	Data    string    `json:"data"`
	Limit   int       `json:"limit"`
	Strict  bool      `json:"strict"`
	Mean    []float32 `json:"mean,omitempty"`
	Std     []float32 `json:"std,omitempty"`
	Workers int       `json:"workers"`
	Shuffle bool      `json:"shuffle"`
	// Augment is "paper" (the paper's asymmetric views), "light" (the CPU
	// Fashion-MNIST views) or "none" (both views are the normalised image).
	Augment      string  `json:"augment"`
	Size         int     `json:"size"`
	CropScaleMin float64 `json:"crop_scale_min"`

	// Model.
	Arch        string `json:"arch"`
	Stem        string `json:"stem"`
	Width       int    `json:"width"`
	Projector   string `json:"projector"`
	ProjectorBN bool   `json:"projector_bn"`
	// ProjectorLastBias and ProjectorOutBN: a bias on the projector's last
	// linear layer, and BatchNorm1d(affine=False) after it (model.Spec).
	ProjectorLastBias bool `json:"projector_last_bias,omitempty"`
	ProjectorOutBN    bool `json:"projector_out_bn,omitempty"`
	// Predictor is the predictor MLP of BYOL and SimSiam ("" for none).
	Predictor string `json:"predictor,omitempty"`
	// PredictorStaticLR trains the predictor at the constant rate LR,
	// outside the warm-up and cosine schedule (SimSiam).
	PredictorStaticLR bool `json:"predictor_static_lr,omitempty"`
	ZeroInit          bool `json:"zero_init_residual"`
	// SharedSettings records that the run took the recipe's shared
	// settings instead of the method's own (FromSharedRecipe).
	SharedSettings bool `json:"shared_settings,omitempty"`
	// BaseTau and FinalTau bound the momentum network's EMA coefficient
	// (BYOL, MoCo: nn.Momentum), raised on a cosine over the run.
	BaseTau  float64 `json:"base_tau,omitempty"`
	FinalTau float64 `json:"final_tau,omitempty"`

	// Method.
	Method string `json:"method"`
	Recipe string `json:"recipe"`
	// MethodOpts holds the options of Method only, by declared name.
	MethodOpts ssl.Options `json:"method_options"`

	// Optimisation.
	Optimizer    string  `json:"optimizer"`
	Epochs       int     `json:"epochs"`
	Batch        int     `json:"batch"`
	LR           float64 `json:"lr"`
	MinLR        float64 `json:"min_lr"`
	WarmupStart  float64 `json:"warmup_start_lr"`
	WarmupEpochs int     `json:"warmup_epochs"`
	Schedule     string  `json:"schedule"`
	// ScheduleUnit is "epoch" (the paper: the learning rate changes once
	// per epoch) or "step" (every optimizer step, for short runs).
	ScheduleUnit string  `json:"schedule_unit"`
	Momentum     float64 `json:"momentum"`
	WeightDecay  float64 `json:"weight_decay"`
	MaxSteps     int     `json:"max_steps"`

	// Run control.
	Seed    int64  `json:"seed"`
	Threads int    `json:"threads"`
	Backend string `json:"backend"`
	// Precision is "fp32" or "bf16": bfloat16 convolutions with float32
	// weights, batch norm and projector, float64 objective (dnnl only, on
	// CPUs with AVX512-BF16). Empty means fp32 (runs from before the flag).
	Precision string `json:"precision,omitempty"`
	LogEvery  int    `json:"log_every"`
	KNNEvery  int    `json:"knn_every"`
	KNNTrain  int    `json:"knn_train"`
	KNNTest   int    `json:"knn_test"`
	OnNaN     string `json:"on_nan"`
	Init      string `json:"init,omitempty"`
	Out       string `json:"out"`
	Version   string `json:"version"`
	CkptEvery int    `json:"checkpoint_every_steps"`
	// SyncBN computes the batch-norm statistics over the global batch of
	// all data-parallel ranks (synchronised batch norm); off, each rank
	// normalises with its own slice, as PyTorch's DDP does.
	SyncBN bool `json:"sync_bn,omitempty"`
	// OnlineProbe trains a linear classifier on the detached backbone
	// features of the first view during pretraining (eval.OnlineLinear)
	// and logs its test top-1 every epoch; it needs labels.
	OnlineProbe bool `json:"online_probe,omitempty"`
}

// FromRecipe returns the configuration a recipe and a method give before any
// flag overrides it: the method's own settings under the recipe
// (recipe.Recipe.For) where it has them.
func FromRecipe(recipeName, method string) (Config, error) {
	return fromRecipe(recipeName, method, false)
}

// FromSharedRecipe is FromRecipe with the recipe's shared settings for every
// method (CorInfoMax's), ignoring the method's own: the setting of a
// comparison at identical settings.
func FromSharedRecipe(recipeName, method string) (Config, error) {
	return fromRecipe(recipeName, method, true)
}

func fromRecipe(recipeName, method string, shared bool) (Config, error) {
	r, err := recipe.Lookup(recipeName)
	if err != nil {
		return Config{}, err
	}
	_, ownRecipe := r.Methods[method]
	if !ownRecipe {
		// A recipe without the method's own settings (the ImageNet ones)
		// takes the branches from its CIFAR recipe.
		c10, err := recipe.Lookup("cifar10")
		if err != nil {
			return Config{}, err
		}
		r.Methods = c10.Methods
		shared = true
	}
	if !shared {
		r = r.For(method)
	} else if own := r.For(method); own.Predictor != "" || own.FinalTau > 0 {
		// The branches a method cannot train without: its momentum
		// schedule, and its predictor's hidden widths ending in the shared
		// projector's output size.
		r.BaseTau, r.FinalTau, r.PredictorStaticLR = own.BaseTau, own.FinalTau, own.PredictorStaticLR
		if own.Predictor != "" {
			pred := strings.Split(own.Predictor, "-")
			proj := strings.Split(r.Projector, "-")
			pred[len(pred)-1] = proj[len(proj)-1]
			r.Predictor = strings.Join(pred, "-")
		}
	}
	opts, err := r.MethodDefaults(method)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Data: "fashion-mnist", Workers: 2, Shuffle: true, Augment: r.Augment, Size: r.Size, CropScaleMin: r.CropScaleMin,
		Arch: r.Arch, Stem: r.Stem, Width: r.Width, Projector: r.Projector, ProjectorBN: r.ProjectorBN, ZeroInit: true,
		ProjectorLastBias: r.ProjectorLastBias, ProjectorOutBN: r.ProjectorOutBN, Predictor: r.Predictor,
		PredictorStaticLR: r.PredictorStaticLR,
		BaseTau:           r.BaseTau, FinalTau: r.FinalTau,
		Method: method, Recipe: recipeName, MethodOpts: opts, SharedSettings: shared && ownRecipe,
		Optimizer: r.Optimizer, Epochs: r.Epochs, Batch: r.Batch, LR: r.LR, MinLR: r.MinLR, WarmupStart: r.WarmupStart,
		WarmupEpochs: r.WarmupEpochs, Schedule: "cosine", ScheduleUnit: r.ScheduleUnit, Momentum: r.Momentum, WeightDecay: r.WeightDecay,
		Seed: 0, Backend: backends.Default, Precision: "fp32", LogEvery: 10, KNNEvery: 1, KNNTrain: 10000, KNNTest: 2000, OnNaN: "stop",
	}, nil
}

// ConfigError is a setting of Config out of range. Field is the setting's
// JSON name ("crop_scale_min"); the command maps it to its flag.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

func cfgErr(field, format string, a ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Validate checks every setting and returns a *ConfigError naming the
// setting and the allowed range for the first one out of range, or the
// *ssl.OptionError of a method option.
func (c *Config) Validate() error {
	switch {
	case c.Epochs < 1:
		return cfgErr("epochs", "must be >= 1, got %d", c.Epochs)
	case c.Batch < 2:
		return cfgErr("batch", "must be >= 2 (batch statistics need two samples), got %d", c.Batch)
	case c.Width < 1:
		return cfgErr("width", "must be >= 1, got %d", c.Width)
	case c.Size < 8:
		return cfgErr("size", "must be >= 8 pixels, got %d", c.Size)
	case c.LR <= 0:
		return cfgErr("lr", "must be > 0, got %g", c.LR)
	case c.MinLR < 0 || c.MinLR > c.LR:
		return cfgErr("min_lr", "must be in [0, lr=%g], got %g", c.LR, c.MinLR)
	case c.WarmupEpochs < 0:
		return cfgErr("warmup_epochs", "must be >= 0, got %d", c.WarmupEpochs)
	case c.Momentum < 0 || c.Momentum >= 1:
		return cfgErr("momentum", "must be in [0, 1), got %g", c.Momentum)
	case c.WeightDecay < 0:
		return cfgErr("weight_decay", "must be >= 0, got %g", c.WeightDecay)
	case c.MaxSteps < 0:
		return cfgErr("max_steps", "must be >= 0 (0 = no limit), got %d", c.MaxSteps)
	case c.LogEvery < 1:
		return cfgErr("log_every", "must be >= 1, got %d", c.LogEvery)
	case c.Threads < 0:
		return cfgErr("threads", "must be >= 0 (0 = all cores), got %d", c.Threads)
	case c.Workers < 1:
		return cfgErr("workers", "must be >= 1, got %d", c.Workers)
	case c.Limit < 0:
		return cfgErr("limit", "must be >= 0 (0 = all images), got %d", c.Limit)
	case c.CropScaleMin <= 0 || c.CropScaleMin > 1:
		return cfgErr("crop_scale_min", "must be in (0, 1], got %g", c.CropScaleMin)
	case c.KNNEvery < 0:
		return cfgErr("knn_every", "must be >= 0 (0 = never), got %d", c.KNNEvery)
	case c.CkptEvery < 0:
		return cfgErr("checkpoint_every_steps", "must be >= 0 (0 = once per epoch), got %d", c.CkptEvery)
	case c.KNNTrain < 0:
		return cfgErr("knn_train", "must be >= 0 (0 = all images), got %d", c.KNNTrain)
	case c.KNNTest < 0:
		return cfgErr("knn_test", "must be >= 0 (0 = all images), got %d", c.KNNTest)
	case c.WarmupStart < 0:
		return cfgErr("warmup_start_lr", "must be >= 0, got %g", c.WarmupStart)
	}
	if !slices.Contains(model.Archs(), c.Arch) {
		return cfgErr("arch", "must be one of %s, got %q", strings.Join(model.Archs(), ", "), c.Arch)
	}
	if !slices.Contains(model.Stems(), c.Stem) {
		return cfgErr("stem", "must be one of %s, got %q", strings.Join(model.Stems(), ", "), c.Stem)
	}
	if !slices.Contains(Optimizers(), c.Optimizer) {
		return cfgErr("optimizer", "must be one of %s, got %q", strings.Join(Optimizers(), ", "), c.Optimizer)
	}
	if !oneOf(c.Schedule, "cosine", "constant") {
		return cfgErr("schedule", "must be cosine or constant, got %q", c.Schedule)
	}
	if !oneOf(c.ScheduleUnit, "epoch", "step") {
		return cfgErr("schedule_unit", "must be epoch or step, got %q", c.ScheduleUnit)
	}
	if !slices.Contains(data.Augmentations(), c.Augment) {
		return cfgErr("augment", "must be one of %s, got %q", strings.Join(data.Augmentations(), ", "), c.Augment)
	}
	if !oneOf(c.OnNaN, "stop", "skip") {
		return cfgErr("on_nan", "must be stop or skip, got %q", c.OnNaN)
	}
	if _, err := backends.Lookup(c.Backend); err != nil {
		return cfgErr("backend", "%v", err)
	}
	if _, err := ssl.Lookup(c.Method); err != nil {
		return cfgErr("method", "must be one of %s, got %q", strings.Join(ssl.Names(), ", "), c.Method)
	}
	if err := backends.CheckPrecision(c.Backend, c.Precision); err != nil {
		return cfgErr("precision", "%v", err)
	}
	if _, err := nn.ParseSpec(c.Projector); err != nil {
		return cfgErr("projector", "%v", err)
	}
	if c.Out == "" {
		return cfgErr("out", "a run directory is required")
	}
	if _, err := ssl.NewObjective(c.Method, c.MethodOpts); err != nil {
		return err
	}
	br, _ := ssl.BranchesOf(c.Method)
	switch {
	case br.Predictor && c.Predictor == "":
		return cfgErr("predictor", "%s needs a predictor MLP, e.g. --predictor 1024-64", c.Method)
	case !br.Predictor && c.Predictor != "":
		return cfgErr("predictor", "%s has no predictor (only byol and simsiam do), got %q", c.Method, c.Predictor)
	case br.Momentum && !(0 <= c.BaseTau && c.BaseTau <= c.FinalTau && c.FinalTau <= 1):
		return cfgErr("base_tau", "the momentum network's tau must satisfy 0 <= base-tau <= final-tau <= 1, got %g and %g", c.BaseTau, c.FinalTau)
	}
	if c.Predictor != "" {
		if _, err := nn.ParseSpec(c.Predictor); err != nil {
			return cfgErr("predictor", "%v", err)
		}
	}
	return nil
}

func oneOf(s string, allowed ...string) bool { return slices.Contains(allowed, s) }

// Norm returns the run's normalisation for its data with channels channels:
// Mean and Std when given, else the dataset's published constants.
func (c *Config) Norm(channels int) (data.Norm, error) {
	n, err := data.ResolveNorm(c.Data, channels, c.Mean, c.Std)
	if err != nil {
		return data.Norm{}, cfgErr("mean", "--mean/--std: %v", err)
	}
	return n, nil
}

// Pipeline returns the two-view augmentation of the run, normalised with
// norm.
func (c *Config) Pipeline(norm data.Norm) (data.Pipeline, error) {
	p, err := data.AugmentPipeline(c.Augment, c.Size, c.CropScaleMin, norm)
	if err != nil {
		return data.Pipeline{}, cfgErr("augment", "%v", err)
	}
	return p, nil
}

// Spec returns the model the run trains on images with channels channels.
func (c *Config) Spec(channels int) model.Spec {
	return model.Spec{Arch: c.Arch, Stem: c.Stem, Width: c.Width, InChannels: channels,
		Projector: c.Projector, ProjectorBN: c.ProjectorBN, ProjectorLastBias: c.ProjectorLastBias,
		ProjectorOutBN: c.ProjectorOutBN, Predictor: c.Predictor, ZeroInit: c.ZeroInit}
}
