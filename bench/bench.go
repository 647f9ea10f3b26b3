// Package bench measures the toolkit's speed: the real training step
// (train.Step, the code the trainer runs) on synthetic data, the SSL
// objectives alone, and the data pipeline. `corinfomax bench` prints its
// results.
package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/backends"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/tensor"
	"github.com/corinfomax/corinfomax/train"
)

// StepConfig describes one synthetic training-step benchmark.
type StepConfig struct {
	Arch      string `json:"arch"`
	Stem      string `json:"stem"`
	Width     int    `json:"width"`
	Batch     int    `json:"batch"`
	Size      int    `json:"size"`
	Channels  int    `json:"channels"`
	Method    string `json:"method"` // "supervised" or an SSL method
	Projector string `json:"projector"`
	// Recipe, when set, takes the SSL method's network and optimizer from
	// that recipe's entry for the method (recipe.Recipe.For): projector and
	// its batch norms, predictor, momentum network, optimizer and weight
	// decay; Projector is then ignored. Empty: Projector without batch
	// norm, SGD, and the method's branches at solo-learn's CIFAR sizes
	// (predictor as wide as the projector's hidden layer, tau 0.99-1).
	Recipe string `json:"recipe,omitempty"`
	// Predictor and Optimizer are what the step ran with (filled in by
	// Step; output only).
	Predictor string `json:"predictor,omitempty"`
	Optimizer string `json:"optimizer,omitempty"`
	Steps     int    `json:"steps"`
	Warmup    int    `json:"warmup"`
	Threads   int    `json:"threads"`
	Backend   string `json:"backend"`
	// Precision is "fp32" or "bf16" (bfloat16 convolutions, dnnl only).
	Precision string `json:"precision"`
}

// StepResult is what `corinfomax bench step` prints.
type StepResult struct {
	StepConfig
	Engine          string  `json:"engine"`
	ImagesPerSec    float64 `json:"images_per_sec"`
	StepSecondsMed  float64 `json:"step_seconds_median"`
	StepSecondsMean float64 `json:"step_seconds_mean"`
	// StepSeconds lists every timed step, in order.
	StepSeconds     []float64 `json:"step_seconds"`
	ObjectiveSecMed float64   `json:"objective_seconds_median,omitempty"`
	PeakRSSBytes    int64     `json:"peak_rss_bytes"`
	// Binding says where the compute threads ran (ops.ThreadBinder).
	Binding string `json:"binding,omitempty"`
}

// Validate checks a benchmark configuration.
func (c *StepConfig) Validate() error {
	switch {
	case c.Width < 1:
		return cfgErr("width", "must be >= 1, got %d", c.Width)
	case c.Batch < 2:
		return cfgErr("batch", "must be >= 2, got %d", c.Batch)
	case c.Size < 8:
		return cfgErr("size", "must be >= 8, got %d", c.Size)
	case c.Channels < 1:
		return cfgErr("channels", "must be >= 1, got %d", c.Channels)
	case c.Steps < 1:
		return cfgErr("steps", "must be >= 1, got %d", c.Steps)
	case c.Warmup < 0:
		return cfgErr("warmup", "must be >= 0, got %d", c.Warmup)
	}
	if !slices.Contains(model.Archs(), c.Arch) {
		return cfgErr("arch", "must be one of %v, got %q", model.Archs(), c.Arch)
	}
	if !slices.Contains(model.Stems(), c.Stem) {
		return cfgErr("stem", "must be one of %v, got %q", model.Stems(), c.Stem)
	}
	if c.Method != "supervised" && !slices.Contains(ssl.Names(), c.Method) {
		return cfgErr("method", "must be supervised or one of %v, got %q", ssl.Names(), c.Method)
	}
	if _, err := backends.Lookup(c.Backend); err != nil {
		return cfgErr("backend", "%v", err)
	}
	if err := backends.CheckPrecision(c.Backend, c.Precision); err != nil {
		return cfgErr("precision", "%v", err)
	}
	return nil
}

// Step times full training steps (forward, backward, SGD update) on
// random data: an SSL method runs train.Step, the trainer's own step. It
// reports images through the backbone per second (an SSL
// step passes 2 x batch images) and the process's peak RSS.
func Step(ctx context.Context, c StepConfig) (*StepResult, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	be, err := backends.New(c.Backend, c.Threads, c.Precision)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	rng := rand.New(rand.NewSource(1))
	x := [2]*tensor.Tensor{tensor.New(c.Batch, c.Size, c.Size, c.Channels), tensor.New(c.Batch, c.Size, c.Size, c.Channels)}
	for _, t := range x {
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64())
		}
	}
	if c.Method != "supervised" {
		cfg, err := sslConfig(c)
		if err != nil {
			return nil, err
		}
		c.Projector, c.Predictor, c.Optimizer = cfg.Projector, cfg.Predictor, cfg.Optimizer
	}
	var step func() (time.Duration, error)
	imgs := c.Batch
	if c.Method == "supervised" {
		step, err = supervisedStep(be, c, rng, x[0])
	} else {
		imgs = 2 * c.Batch
		step, err = sslStep(be, c, rng, x)
	}
	if err != nil {
		return nil, err
	}
	var times, objTimes []float64
	var binding string
	err = ops.OnComputeThread(be, func(b string) error {
		binding = b
		for i := 0; i < c.Warmup+c.Steps; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			start := time.Now()
			obj, err := step()
			if err != nil {
				return fmt.Errorf("step %d: %w", i+1, err)
			}
			if i >= c.Warmup {
				times = append(times, time.Since(start).Seconds())
				objTimes = append(objTimes, obj.Seconds())
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	med := median(times)
	r := &StepResult{StepConfig: c, Engine: "corinfomax-" + be.Name(), StepSecondsMed: med,
		ImagesPerSec: float64(imgs) / med, StepSecondsMean: mean(times), StepSeconds: times, PeakRSSBytes: peakRSS(), Binding: binding}
	r.StepConfig.Threads = be.Threads()
	if c.Method != "supervised" {
		r.ObjectiveSecMed = median(objTimes)
	}
	return r, nil
}

func supervisedStep(be ops.Backend, c StepConfig, rng *rand.Rand, x *tensor.Tensor) (func() (time.Duration, error), error) {
	const classes = 10
	net, err := nn.NewResNet(be, nn.ResNetConfig{Arch: c.Arch, Width: c.Width, InChannels: c.Channels, Stem: c.Stem,
		NumClasses: classes}, rng)
	if err != nil {
		return nil, err
	}
	opt := optim.NewSGD(net.Params(), 0.9, 1e-4, false)
	labels := make([]int, c.Batch)
	for i := range labels {
		labels[i] = rng.Intn(classes)
	}
	var dlogits *tensor.Tensor
	return func() (time.Duration, error) {
		opt.ZeroGrad()
		logits, err := net.Forward(0, x)
		if err != nil {
			return 0, err
		}
		dlogits = tensor.Ensure(dlogits, logits.Shape...)
		if _, err := ops.SoftmaxCrossEntropy(logits.Data, c.Batch, classes, labels, dlogits.Data); err != nil {
			return 0, err
		}
		if _, err := net.Backward(0, dlogits); err != nil {
			return 0, err
		}
		return 0, opt.Step(0.1)
	}, nil
}

// sslConfig is the trainer configuration sslStep builds from: the
// recipe's for the method, or Projector with SGD.
func sslConfig(c StepConfig) (train.Config, error) {
	if c.Recipe != "" {
		cfg, err := train.FromRecipe(c.Recipe, c.Method)
		if err != nil {
			return cfg, cfgErr("recipe", "%v", err)
		}
		return cfg, nil
	}
	cfg := train.Config{Projector: c.Projector, Optimizer: "sgd", Momentum: 0.9, WeightDecay: 1e-4}
	br, err := ssl.BranchesOf(c.Method)
	if err != nil {
		return cfg, err
	}
	if br.Predictor {
		sizes, err := nn.ParseSpec(c.Projector)
		if err != nil {
			return cfg, cfgErr("projector", "%v", err)
		}
		cfg.Predictor = fmt.Sprintf("%d-%d", sizes[0], sizes[len(sizes)-1])
	}
	if br.Momentum {
		cfg.BaseTau, cfg.FinalTau = 0.99, 1
	}
	return cfg, nil
}

func sslStep(be ops.Backend, c StepConfig, rng *rand.Rand, x [2]*tensor.Tensor) (func() (time.Duration, error), error) {
	cfg, err := sslConfig(c)
	if err != nil {
		return nil, err
	}
	spec := model.Spec{Arch: c.Arch, Stem: c.Stem, Width: c.Width, InChannels: c.Channels, Projector: cfg.Projector,
		ProjectorBN: cfg.ProjectorBN, ProjectorLastBias: cfg.ProjectorLastBias, ProjectorOutBN: cfg.ProjectorOutBN,
		Predictor: cfg.Predictor, ZeroInit: true}
	net, err := model.NewNetwork(be, spec, rng)
	if err != nil {
		return nil, err
	}
	opts, err := ssl.Defaults(c.Method)
	if err != nil {
		return nil, err
	}
	if c.Recipe != "" {
		opts = cfg.MethodOpts
	}
	method, err := ssl.NewObjective(c.Method, opts)
	if err != nil {
		return nil, err
	}
	opt, err := train.NewNetworkOptimizer(&cfg, net)
	if err != nil {
		return nil, err
	}
	st := train.NewStep(net, method, opt)
	if br, _ := ssl.BranchesOf(c.Method); br.Momentum {
		if st.Momentum, err = model.NewMomentum(be, spec, net, cfg.BaseTau, cfg.FinalTau, c.Warmup+c.Steps, rng); err != nil {
			return nil, err
		}
	}
	step := 0
	return func() (time.Duration, error) {
		step++
		_, err := st.Run(step, x, 0.05)
		return st.ObjectiveTime(), err
	}, nil
}

// Objective times the SSL objective alone (loss and gradients) on random
// inputs of n x d and returns the median seconds per call.
func Objective(method string, n, d, steps int) (float64, error) {
	obj, err := ssl.NewObjective(method, ssl.Options{})
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewSource(1))
	z1, z2, g1, g2 := make([]float32, n*d), make([]float32, n*d), make([]float32, n*d), make([]float32, n*d)
	t1, t2 := make([]float32, n*d), make([]float32, n*d)
	for i := range z1 {
		z1[i], z2[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		t1[i], t2[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	var times []float64
	for s := 1; s <= steps+2; s++ {
		start := time.Now()
		switch m := obj.(type) {
		case ssl.Method:
			_, err = m.Loss(s, z1, z2, n, d, g1, g2)
		case ssl.Targeted:
			_, err = m.TargetLoss(s, z1, z2, t1, t2, n, d, g1, g2)
		}
		if err != nil {
			return 0, err
		}
		if s > 2 {
			times = append(times, time.Since(start).Seconds())
		}
	}
	return median(times), nil
}

// Loader measures how many two-view batches per second the data
// pipeline delivers for ds (decoding and augmentation included).
func Loader(ctx context.Context, ds data.Dataset, pipe data.Pipeline, batch, workers, batches int) (float64, error) {
	switch {
	case batch < 1 || batch > ds.Len():
		return 0, cfgErr("batch", "must be in [1, %d] (the number of images), got %d", ds.Len(), batch)
	case workers < 1:
		return 0, cfgErr("workers", "must be >= 1, got %d", workers)
	case batches < 1:
		return 0, cfgErr("batches", "must be >= 1, got %d", batches)
	}
	l, err := data.NewLoader(ds, data.LoaderConfig{Batch: batch, Workers: workers, Seed: 1, Shuffle: true,
		DropLast: true, Views: 2, Pipeline: pipe})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	got := 0
	for epoch := 0; got < batches; epoch++ {
		it := l.Epoch(ctx, epoch, 0)
		for got < batches {
			_, err := it.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				it.Close()
				return 0, fmt.Errorf("epoch %d: %w", epoch+1, err)
			}
			got++
		}
		it.Close()
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return float64(got*batch) / time.Since(start).Seconds(), nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// peakRSS is the process's peak resident set size in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

func cfgErr(field, format string, a ...any) error {
	return &train.ConfigError{Field: field, Msg: fmt.Sprintf(format, a...)}
}
