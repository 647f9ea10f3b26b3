package train

import (
	"fmt"

	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/optim"
)

// Optimizers lists the optimizers NewOptimizer builds.
func Optimizers() []string { return []string{"sgd", "lars", "adamw"} }

// NewOptimizer returns the optimizer named by cfg for params.
func NewOptimizer(cfg *Config, params []*nn.Param) (optim.Optimizer, error) {
	switch cfg.Optimizer {
	case "sgd":
		return optim.NewSGD(params, cfg.Momentum, cfg.WeightDecay, false), nil
	case "lars":
		// solo-learn's LARS recipes: eta 0.02, exclude_bias_n_norm and
		// clip_lr true.
		o := optim.NewLARS(params, cfg.Momentum, cfg.WeightDecay, 0.02, true)
		o.ClipLR = true
		return o, nil
	case "adamw":
		return optim.NewAdamW(params, 0.9, 0.999, 1e-8, cfg.WeightDecay), nil
	}
	return nil, fmt.Errorf("unknown optimizer %q", cfg.Optimizer)
}

// schedule returns the learning-rate schedule of cfg: linear warm-up from
// WarmupStart over WarmupEpochs, then cosine to MinLR (or the constant LR),
// indexed by epoch, or by optimizer step when ScheduleUnit is "step"
// (spe steps per epoch).
func (c *Config) schedule(spe int) optim.Schedule {
	unit := 1
	if c.ScheduleUnit == "step" {
		unit = spe
	}
	if c.Schedule == "constant" {
		return optim.Constant(c.LR)
	}
	return optim.Schedule{Base: c.LR, WarmupStart: c.WarmupStart, Min: c.MinLR, WarmupSteps: c.WarmupEpochs * unit,
		TotalSteps: c.Epochs * unit}
}
