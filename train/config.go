// Package train is the pretraining loop: it builds the network, the SSL
// objective, the optimizer and the data loader from a Config, runs the
// optimisation with checkpoints, metrics, online evaluation and clean
// cancellation, and resumes a run exactly where it stopped.
package train

import (
	"fmt"
	"strings"

	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops/dnnl"
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
	// Augment is "paper" (DESIGN.md's asymmetric views), "light" (the CPU
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
	ZeroInit    bool   `json:"zero_init_residual"`

	// Method.
	Method     string      `json:"method"`
	Recipe     string      `json:"recipe"`
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
}

// FromRecipe returns the configuration a recipe and a method give before any
// flag overrides it.
func FromRecipe(recipeName, method string) (Config, error) {
	r, err := recipe.Lookup(recipeName)
	if err != nil {
		return Config{}, err
	}
	opts, err := ssl.RecipeDefaults(method, recipeName)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Data: "fashion-mnist", Workers: 2, Shuffle: true, Augment: r.Augment, Size: r.Size, CropScaleMin: r.CropScaleMin,
		Arch: r.Arch, Stem: r.Stem, Width: r.Width, Projector: r.Projector, ProjectorBN: r.ProjectorBN, ZeroInit: true,
		Method: method, Recipe: recipeName, MethodOpts: opts,
		Optimizer: r.Optimizer, Epochs: r.Epochs, Batch: r.Batch, LR: r.LR, MinLR: r.MinLR, WarmupStart: r.WarmupStart,
		WarmupEpochs: r.WarmupEpochs, Schedule: "cosine", ScheduleUnit: r.ScheduleUnit, Momentum: r.Momentum, WeightDecay: r.WeightDecay,
		Seed: 0, Backend: "dnnl", Precision: "fp32", LogEvery: 10, KNNEvery: 1, KNNTrain: 10000, KNNTest: 2000, OnNaN: "stop",
	}, nil
}

// FlagError is a configuration error attributable to one command-line flag.
type FlagError struct {
	Flag string
	Msg  string
}

func (e *FlagError) Error() string { return fmt.Sprintf("--%s: %s", e.Flag, e.Msg) }

func flagErr(flag, format string, a ...any) error {
	return &FlagError{Flag: flag, Msg: fmt.Sprintf(format, a...)}
}

// Validate checks every setting and returns a *FlagError naming the flag and
// the allowed range for the first one out of range.
func (c *Config) Validate() error {
	switch {
	case c.Epochs < 1:
		return flagErr("epochs", "must be >= 1, got %d", c.Epochs)
	case c.Batch < 2:
		return flagErr("batch", "must be >= 2 (batch statistics need two samples), got %d", c.Batch)
	case c.Width < 1:
		return flagErr("width", "must be >= 1, got %d", c.Width)
	case c.Size < 8:
		return flagErr("size", "must be >= 8 pixels, got %d", c.Size)
	case c.LR <= 0:
		return flagErr("lr", "must be > 0, got %g", c.LR)
	case c.MinLR < 0 || c.MinLR > c.LR:
		return flagErr("min-lr", "must be in [0, lr=%g], got %g", c.LR, c.MinLR)
	case c.WarmupEpochs < 0:
		return flagErr("warmup-epochs", "must be >= 0, got %d", c.WarmupEpochs)
	case c.Momentum < 0 || c.Momentum >= 1:
		return flagErr("momentum", "must be in [0, 1), got %g", c.Momentum)
	case c.WeightDecay < 0:
		return flagErr("weight-decay", "must be >= 0, got %g", c.WeightDecay)
	case c.MaxSteps < 0:
		return flagErr("max-steps", "must be >= 0 (0 = no limit), got %d", c.MaxSteps)
	case c.LogEvery < 1:
		return flagErr("log-every", "must be >= 1, got %d", c.LogEvery)
	case c.Threads < 0:
		return flagErr("threads", "must be >= 0 (0 = all cores), got %d", c.Threads)
	case c.Workers < 1:
		return flagErr("workers", "must be >= 1, got %d", c.Workers)
	case c.Limit < 0:
		return flagErr("limit", "must be >= 0 (0 = all images), got %d", c.Limit)
	case c.CropScaleMin <= 0 || c.CropScaleMin > 1:
		return flagErr("crop-scale-min", "must be in (0, 1], got %g", c.CropScaleMin)
	case c.KNNEvery < 0:
		return flagErr("knn-every", "must be >= 0 (0 = never), got %d", c.KNNEvery)
	case c.CkptEvery < 0:
		return flagErr("checkpoint-every", "must be >= 0 (0 = once per epoch), got %d", c.CkptEvery)
	case c.KNNTrain < 0:
		return flagErr("knn-train", "must be >= 0 (0 = all images), got %d", c.KNNTrain)
	case c.KNNTest < 0:
		return flagErr("knn-test", "must be >= 0 (0 = all images), got %d", c.KNNTest)
	case c.WarmupStart < 0:
		return flagErr("warmup-start-lr", "must be >= 0, got %g", c.WarmupStart)
	}
	if !oneOf(c.Arch, "resnet18", "resnet34", "resnet50") {
		return flagErr("arch", "must be resnet18, resnet34 or resnet50, got %q", c.Arch)
	}
	if !oneOf(c.Stem, "cifar", "imagenet") {
		return flagErr("stem", "must be cifar or imagenet, got %q", c.Stem)
	}
	if !oneOf(c.Optimizer, "sgd", "lars", "adamw") {
		return flagErr("optimizer", "must be sgd, lars or adamw, got %q", c.Optimizer)
	}
	if !oneOf(c.Schedule, "cosine", "constant") {
		return flagErr("schedule", "must be cosine or constant, got %q", c.Schedule)
	}
	if !oneOf(c.ScheduleUnit, "epoch", "step") {
		return flagErr("schedule-unit", "must be epoch or step, got %q", c.ScheduleUnit)
	}
	if !oneOf(c.Augment, "paper", "light", "none") {
		return flagErr("augment", "must be paper, light or none, got %q", c.Augment)
	}
	if !oneOf(c.OnNaN, "stop", "skip") {
		return flagErr("on-nan", "must be stop or skip, got %q", c.OnNaN)
	}
	if !oneOf(c.Backend, "dnnl", "ref") {
		return flagErr("backend", "must be dnnl or ref, got %q", c.Backend)
	}
	if !oneOf(c.Method, ssl.Names()...) {
		return flagErr("method", "must be one of %s, got %q", strings.Join(ssl.Names(), ", "), c.Method)
	}
	if err := validatePrecision(c.Precision, c.Backend); err != nil {
		return err
	}
	if _, err := nn.ParseSpec(c.Projector); err != nil {
		return flagErr("projector", "%v", err)
	}
	if c.Out == "" {
		return flagErr("out", "a run directory is required")
	}
	if _, err := ssl.New(c.Method, c.MethodOpts); err != nil {
		return methodFlagErr(err)
	}
	return nil
}

// optionFlag returns the pretrain flag that sets the ssl option name (as
// ssl's errors spell it: lam_R, scale_loss, ...), if there is one.
func optionFlag(name string) (string, bool) {
	switch name {
	case "alpha", "eps", "lambda", "temperature":
		return name, true
	case "lam_R", "lam_mu", "init_scale", "scale_loss", "sim_coeff", "std_coeff", "cov_coeff", "w_size", "w_iter":
		return strings.ReplaceAll(strings.ToLower(name), "_", "-"), true
	}
	return "", false
}

// methodFlagErr turns an error of ssl.New into a *FlagError naming the flag
// of the offending option ("option lam_R = 1 out of range" -> --lam-r), or
// --method when the option has no flag.
func methodFlagErr(err error) error {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "option "); ok {
		name, _, _ := strings.Cut(rest, " ")
		if flag, ok := optionFlag(name); ok {
			return &FlagError{Flag: flag, Msg: msg}
		}
	}
	return &FlagError{Flag: "method", Msg: msg}
}

// validatePrecision checks --precision against the backend and the CPU:
// bf16 needs the dnnl backend and AVX512-BF16 (elsewhere oneDNN would
// emulate bfloat16, slower than float32, so the flag refuses).
func validatePrecision(precision, backend string) error {
	switch precision {
	case "", "fp32":
		return nil
	case "bf16":
		if backend != "dnnl" && backend != "" {
			return flagErr("precision", "bf16 needs --backend dnnl, got --backend %s", backend)
		}
		if !dnnl.BF16Supported() {
			return flagErr("precision", "bf16 needs a CPU with AVX512-BF16 instructions, which this one lacks; use fp32")
		}
		return nil
	}
	return flagErr("precision", "must be fp32 or bf16, got %q", precision)
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}
