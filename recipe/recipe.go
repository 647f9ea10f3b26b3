// Package recipe holds the reference training recipes of docs/design.md
// section 2 (the defaults users expect by dataset name) and the CPU-sized
// Fashion-MNIST recipe of this project. A recipe fixes the backbone, the
// optimisation and the augmentation, and overrides methods' declared
// option defaults by option name (MethodOptions).
package recipe

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/corinfomax/corinfomax/ssl"
)

// Recipe is a complete set of pretraining defaults.
type Recipe struct {
	Name string `json:"name"`
	// Backbone.
	Arch  string `json:"arch"`
	Stem  string `json:"stem"`
	Width int    `json:"width"`
	// Projector spec ("2048-2048-64") and whether it has batch norm (and,
	// for the methods whose projectors have them, a bias on its last layer
	// and an affine-free batch norm after it); the predictor of BYOL and
	// SimSiam.
	Projector         string `json:"projector"`
	ProjectorBN       bool   `json:"projector_bn"`
	ProjectorLastBias bool   `json:"projector_last_bias,omitempty"`
	ProjectorOutBN    bool   `json:"projector_out_bn,omitempty"`
	Predictor         string `json:"predictor,omitempty"`
	// PredictorStaticLR keeps the predictor at the base learning rate,
	// outside the schedule (SimSiam).
	PredictorStaticLR bool `json:"predictor_static_lr,omitempty"`
	// BaseTau and FinalTau: the momentum network's EMA coefficient.
	BaseTau  float64 `json:"base_tau,omitempty"`
	FinalTau float64 `json:"final_tau,omitempty"`
	// Optimisation.
	Optimizer    string  `json:"optimizer"`
	Batch        int     `json:"batch"`
	Epochs       int     `json:"epochs"`
	LR           float64 `json:"lr"`
	WarmupStart  float64 `json:"warmup_start_lr"`
	WarmupEpochs int     `json:"warmup_epochs"`
	// ScheduleUnit is "epoch" (the paper) or "step".
	ScheduleUnit string  `json:"schedule_unit"`
	MinLR        float64 `json:"min_lr"`
	Momentum     float64 `json:"momentum"`
	WeightDecay  float64 `json:"weight_decay"`
	// Augmentation: crop size and the RandomResizedCrop scale range; Augment
	// names the pipeline ("paper" for the paper's asymmetric views,
	// "light" for the CPU recipe's weaker greyscale views).
	Size         int     `json:"size"`
	CropScaleMin float64 `json:"crop_scale_min"`
	Augment      string  `json:"augment"`
	// Dataset the recipe was written for (documentation only).
	Dataset string `json:"dataset"`
	// MethodOptions overrides, per method name, the defaults of that
	// method's declared options (ssl.Option.Name -> value).
	MethodOptions map[string]map[string]float64 `json:"method_options,omitempty"`
	// Methods holds, per method name, the settings of that method's own
	// recipe where its authors differ from the shared ones above (For
	// applies them). A method without an entry trains on the shared
	// settings.
	Methods map[string]MethodRecipe `json:"methods,omitempty"`
}

// MethodRecipe is a method's own network and optimisation under a recipe:
// every field replaces the recipe's shared setting of the same name.
type MethodRecipe struct {
	Projector         string `json:"projector"`
	ProjectorBN       bool   `json:"projector_bn"`
	ProjectorLastBias bool   `json:"projector_last_bias"`
	ProjectorOutBN    bool   `json:"projector_out_bn"`
	Predictor         string `json:"predictor,omitempty"`
	// PredictorStaticLR: the predictor trains at the constant base rate
	// (solo-learn's static_lr group, SimSiam).
	PredictorStaticLR bool   `json:"predictor_static_lr,omitempty"`
	Optimizer         string `json:"optimizer"`
	// LR and WarmupStart are for a batch of 256 per view; For scales them
	// linearly to the recipe's batch, as solo-learn does
	// (solo/args/pretrain.py: lr * batch_size / 256).
	LR          float64 `json:"lr_at_256"`
	WarmupStart float64 `json:"warmup_start_lr_at_256"`
	WeightDecay float64 `json:"weight_decay"`
	// BaseTau and FinalTau: the momentum network's EMA coefficient (BYOL,
	// MoCo), 0 for methods without one.
	BaseTau  float64 `json:"base_tau,omitempty"`
	FinalTau float64 `json:"final_tau,omitempty"`
	// Options overrides the method's objective options (as MethodOptions).
	Options map[string]float64 `json:"options,omitempty"`
	// Source is where the values come from.
	Source string `json:"source"`
}

// For returns the recipe as method trains under it: the shared settings
// with the method's own entry of Methods, if any, applied (its learning
// rates scaled to the recipe's batch).
func (r Recipe) For(method string) Recipe {
	m, ok := r.Methods[method]
	if !ok {
		return r
	}
	r.Projector, r.ProjectorBN, r.ProjectorLastBias, r.ProjectorOutBN = m.Projector, m.ProjectorBN, m.ProjectorLastBias, m.ProjectorOutBN
	scale := float64(r.Batch) / 256
	r.Predictor, r.Optimizer, r.LR, r.WarmupStart, r.WeightDecay = m.Predictor, m.Optimizer, m.LR*scale, m.WarmupStart*scale, m.WeightDecay
	r.BaseTau, r.FinalTau, r.PredictorStaticLR = m.BaseTau, m.FinalTau, m.PredictorStaticLR
	if len(m.Options) > 0 {
		all := map[string]map[string]float64{}
		for name, o := range r.MethodOptions {
			all[name] = o
		}
		own := map[string]float64{}
		for k, v := range r.MethodOptions[method] {
			own[k] = v
		}
		for k, v := range m.Options {
			own[k] = v
		}
		all[method] = own
		r.MethodOptions = all
	}
	return r
}

// soloCIFAR is solo-learn's CIFAR pretraining config of each peer
// (scripts/pretrain/cifar/<method>.yaml, ResNet-18 with 512 features,
// batch 256; solo-learn scales lr by batch/256, which at batch 256 is the
// value itself), where it differs from the shared recipe: the projector and
// predictor with their batch norms (solo/methods/<method>.py), the
// optimizer (LARS with eta 0.02, clip_lr and biases and batch-norm
// parameters excluded, as those configs set), lr, weight decay, the
// momentum network's tau and the objective options they set (Barlow
// Twins' scale_loss 0.1). The warm-up starts at solo-learn's default
// warmup_start_lr 3e-5.
var soloCIFAR = map[string]MethodRecipe{
	"barlowtwins": {Projector: "2048-2048-2048", ProjectorBN: true, ProjectorLastBias: true, Optimizer: "lars", LR: 0.3,
		WarmupStart: 3e-5, WeightDecay: 1e-4, Options: map[string]float64{"scale_loss": 0.1},
		Source: "solo-learn scripts/pretrain/cifar/barlow.yaml"},
	"vicreg": {Projector: "2048-2048-2048", ProjectorBN: true, ProjectorLastBias: true, Optimizer: "lars", LR: 0.3,
		WarmupStart: 3e-5, WeightDecay: 1e-4, Source: "solo-learn scripts/pretrain/cifar/vicreg.yaml"},
	"simclr": {Projector: "2048-256", ProjectorLastBias: true, Optimizer: "lars", LR: 0.4,
		WarmupStart: 3e-5, WeightDecay: 1e-4, Source: "solo-learn scripts/pretrain/cifar/simclr.yaml"},
	"wmse": {Projector: "1024-64", ProjectorBN: true, ProjectorLastBias: true, Optimizer: "adamw", LR: 2e-3,
		WarmupStart: 3e-5, WeightDecay: 1e-6, Source: "solo-learn scripts/pretrain/cifar/wmse.yaml (adam)"},
	"byol": {Projector: "4096-256", ProjectorBN: true, ProjectorLastBias: true, Predictor: "4096-256", Optimizer: "lars",
		LR: 1.0, WarmupStart: 3e-5, WeightDecay: 1e-5, BaseTau: 0.99, FinalTau: 1.0, Source: "solo-learn scripts/pretrain/cifar/byol.yaml"},
	"simsiam": {Projector: "2048-2048-2048", ProjectorBN: true, ProjectorOutBN: true, Predictor: "512-2048", PredictorStaticLR: true, Optimizer: "sgd",
		LR: 0.5, WarmupStart: 3e-5, WeightDecay: 1e-5, Source: "solo-learn scripts/pretrain/cifar/simsiam.yaml"},
	"mocov2": {Projector: "2048-256", ProjectorLastBias: true, Optimizer: "sgd", LR: 0.3, WarmupStart: 3e-5,
		WeightDecay: 1e-4, BaseTau: 0.99, FinalTau: 0.999, Source: "solo-learn scripts/pretrain/cifar/mocov2plus.yaml"},
}

// scaled returns the recipes of ms for a backbone `div` times narrower:
// every hidden width of the projector and predictor divided by div, every
// output width too but not below 64 (CorInfoMax's own output size), the
// optimisation unchanged.
func scaled(ms map[string]MethodRecipe, div int) map[string]MethodRecipe {
	out := map[string]MethodRecipe{}
	for name, m := range ms {
		m.Projector = scaleSpec(m.Projector, div)
		m.Predictor = scaleSpec(m.Predictor, div)
		m.Source += fmt.Sprintf(", widths divided by %d", div)
		out[name] = m
	}
	return out
}

func scaleSpec(spec string, div int) string {
	if spec == "" {
		return ""
	}
	parts := strings.Split(spec, "-")
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			panic(fmt.Sprintf("recipe: bad spec %q", spec)) // the table above is constant
		}
		n /= div
		if i == len(parts)-1 && n < 64 {
			n = 64
		}
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, "-")
}

// cim is CorInfoMax's recipe column: alpha, lam_R = lam_mu = lam, eps.
func cim(alpha, lam, eps float64) map[string]map[string]float64 {
	return map[string]map[string]float64{
		ssl.NameCorInfoMax: {"alpha": alpha, "lam_R": lam, "lam_mu": lam, "eps": eps},
	}
}

// MethodDefaults returns the options method starts from under the recipe:
// the method's declared defaults with the recipe's overrides applied.
func (r Recipe) MethodDefaults(method string) (ssl.Options, error) {
	opts, err := ssl.Defaults(method)
	if err != nil {
		return ssl.Options{}, err
	}
	for name, v := range r.MethodOptions[method] {
		if _, ok := opts.Get(name); !ok {
			return ssl.Options{}, fmt.Errorf("recipe %s: %s has no option %q", r.Name, method, name)
		}
		opts.Set(name, v)
	}
	return opts, nil
}

var table = map[string]Recipe{
	"cifar10": {Name: "cifar10", Dataset: "CIFAR-10", Arch: "resnet18", Stem: "cifar", Width: 64,
		Projector: "2048-2048-64", Optimizer: "sgd", Batch: 512, Epochs: 1000, LR: 0.5, WarmupStart: 3e-3,
		WarmupEpochs: 10, ScheduleUnit: "epoch", MinLR: 1e-6, Momentum: 0.9, WeightDecay: 1e-4, Size: 32, CropScaleMin: 0.08, Augment: "paper",
		MethodOptions: cim(250, 0.01, 1e-8), Methods: soloCIFAR},
	"cifar100": {Name: "cifar100", Dataset: "CIFAR-100", Arch: "resnet18", Stem: "cifar", Width: 64,
		Projector: "4096-4096-128", Optimizer: "sgd", Batch: 512, Epochs: 1000, LR: 0.5, WarmupStart: 3e-3,
		WarmupEpochs: 10, ScheduleUnit: "epoch", MinLR: 1e-6, Momentum: 0.9, WeightDecay: 1e-4, Size: 32, CropScaleMin: 0.08, Augment: "paper",
		MethodOptions: cim(1000, 0.01, 1e-8), Methods: soloCIFAR},
	"tinyimagenet": {Name: "tinyimagenet", Dataset: "Tiny-ImageNet", Arch: "resnet50", Stem: "imagenet", Width: 64,
		Projector: "4096-4096-128", Optimizer: "sgd", Batch: 1024, Epochs: 800, LR: 0.5, WarmupStart: 3e-3,
		WarmupEpochs: 10, ScheduleUnit: "epoch", MinLR: 1e-6, Momentum: 0.9, WeightDecay: 1e-4, Size: 64, CropScaleMin: 0.08, Augment: "paper",
		MethodOptions: cim(500, 0.1, 1e-8)},
	"imagenet100": {Name: "imagenet100", Dataset: "ImageNet-100", Arch: "resnet18", Stem: "imagenet", Width: 64,
		Projector: "4096-4096-128", Optimizer: "sgd", Batch: 1024, Epochs: 400, LR: 1.0, WarmupStart: 3e-3,
		WarmupEpochs: 10, ScheduleUnit: "epoch", MinLR: 5e-3, Momentum: 0.9, WeightDecay: 1e-4, Size: 224, CropScaleMin: 0.08, Augment: "paper",
		MethodOptions: cim(500, 0.01, 1e-8)},
	"imagenet1k": {Name: "imagenet1k", Dataset: "ImageNet-1K", Arch: "resnet50", Stem: "imagenet", Width: 64,
		Projector: "8192-8192-512", ProjectorBN: true, Optimizer: "sgd", Batch: 1536, Epochs: 100, LR: 0.2,
		WarmupStart: 3e-3, WarmupEpochs: 10, ScheduleUnit: "epoch", MinLR: 1e-6, Momentum: 0.9, WeightDecay: 1e-4, Size: 224,
		CropScaleMin: 0.08, Augment: "paper", MethodOptions: cim(2000, 0.1, 1e-8)},
	// fashionmnist is the CPU-sized recipe of this project: the demo's.
	// Chosen by measurement (docs/results.md): against the paper's CIFAR
	// recipe at the same budget it uses weaker views for 28-pixel greyscale
	// images (crops from 40% of the area, no blur) and steps the schedule
	// every optimizer step (a one-epoch warm-up stepped per epoch jumps from
	// 3e-3 to 0.5 at once and collapsed the features).
	"fashionmnist": {Name: "fashionmnist", Dataset: "Fashion-MNIST", Arch: "resnet18", Stem: "cifar", Width: 16,
		Projector: "512-512-64", Optimizer: "sgd", Batch: 256, Epochs: 6, LR: 0.5, WarmupStart: 3e-3,
		WarmupEpochs: 1, ScheduleUnit: "step", MinLR: 1e-6, Momentum: 0.9, WeightDecay: 1e-4, Size: 28,
		CropScaleMin: 0.4, Augment: "light", MethodOptions: cim(250, 0.01, 1e-8), Methods: scaled(soloCIFAR, 4)},
}

// Lookup returns the recipe called name.
func Lookup(name string) (Recipe, error) {
	r, ok := table[name]
	if !ok {
		return Recipe{}, fmt.Errorf("unknown recipe %q (known: %v)", name, Names())
	}
	return r, nil
}

// Names lists the known recipes in alphabetical order.
func Names() []string {
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
