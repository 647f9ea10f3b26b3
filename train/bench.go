package train

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"sort"
	"syscall"
	"time"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/tensor"
)

// BenchConfig describes one synthetic training-step benchmark.
type BenchConfig struct {
	Arch      string `json:"arch"`
	Stem      string `json:"stem"`
	Width     int    `json:"width"`
	Batch     int    `json:"batch"`
	Size      int    `json:"size"`
	Channels  int    `json:"channels"`
	Method    string `json:"method"` // "supervised" or an SSL method
	Projector string `json:"projector"`
	Steps     int    `json:"steps"`
	Warmup    int    `json:"warmup"`
	Threads   int    `json:"threads"`
	Backend   string `json:"backend"`
	// Precision is "fp32" or "bf16" (bfloat16 convolutions, dnnl only).
	Precision string `json:"precision"`
}

// BenchResult is what `corinfomax bench step` prints.
type BenchResult struct {
	BenchConfig
	Engine          string  `json:"engine"`
	ImagesPerSec    float64 `json:"images_per_sec"`
	StepSecondsMed  float64 `json:"step_seconds_median"`
	StepSecondsMean float64 `json:"step_seconds_mean"`
	ObjectiveSecMed float64 `json:"objective_seconds_median,omitempty"`
	PeakRSSBytes    int64   `json:"peak_rss_bytes"`
}

// Validate checks a benchmark configuration.
func (c *BenchConfig) Validate() error {
	switch {
	case c.Width < 1:
		return flagErr("width", "must be >= 1, got %d", c.Width)
	case c.Batch < 2:
		return flagErr("batch", "must be >= 2, got %d", c.Batch)
	case c.Size < 8:
		return flagErr("size", "must be >= 8, got %d", c.Size)
	case c.Channels < 1:
		return flagErr("channels", "must be >= 1, got %d", c.Channels)
	case c.Steps < 1:
		return flagErr("steps", "must be >= 1, got %d", c.Steps)
	case c.Warmup < 0:
		return flagErr("warmup", "must be >= 0, got %d", c.Warmup)
	}
	if !oneOf(c.Arch, "resnet18", "resnet34", "resnet50") {
		return flagErr("arch", "must be resnet18, resnet34 or resnet50, got %q", c.Arch)
	}
	if !oneOf(c.Stem, "cifar", "imagenet") {
		return flagErr("stem", "must be cifar or imagenet, got %q", c.Stem)
	}
	if c.Method != "supervised" && !oneOf(c.Method, ssl.Names()...) {
		return flagErr("method", "must be supervised or one of %v, got %q", ssl.Names(), c.Method)
	}
	return validatePrecision(c.Precision, c.Backend)
}

// BenchStep times full training steps (forward, backward, SGD update) on
// random data and reports images through the backbone per second (an SSL
// step passes 2 x batch images) and the process's peak RSS.
func BenchStep(ctx context.Context, c BenchConfig) (*BenchResult, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	be, err := encoder.NewBackend(c.Backend, c.Threads, c.Precision)
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
	for i := 0; i < c.Warmup+c.Steps; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		obj, err := step()
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i+1, err)
		}
		if i >= c.Warmup {
			times = append(times, time.Since(start).Seconds())
			objTimes = append(objTimes, obj.Seconds())
		}
	}
	med := median(times)
	r := &BenchResult{BenchConfig: c, Engine: "corinfomax-" + be.Name(), StepSecondsMed: med,
		ImagesPerSec: float64(imgs) / med, StepSecondsMean: mean(times), PeakRSSBytes: peakRSS()}
	r.BenchConfig.Threads = be.Threads()
	if c.Method != "supervised" {
		r.ObjectiveSecMed = median(objTimes)
	}
	return r, nil
}

func supervisedStep(be ops.Backend, c BenchConfig, rng *rand.Rand, x *tensor.Tensor) (func() (time.Duration, error), error) {
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

func sslStep(be ops.Backend, c BenchConfig, rng *rand.Rand, x [2]*tensor.Tensor) (func() (time.Duration, error), error) {
	net, err := encoder.NewNetwork(be, encoder.ModelSpec{Arch: c.Arch, Stem: c.Stem, Width: c.Width, InChannels: c.Channels,
		Projector: c.Projector, ZeroInit: true}, rng)
	if err != nil {
		return nil, err
	}
	opts, err := ssl.Defaults(c.Method)
	if err != nil {
		return nil, err
	}
	method, err := ssl.New(c.Method, opts)
	if err != nil {
		return nil, err
	}
	opt := optim.NewSGD(net.Params(), 0.9, 1e-4, false)
	var g [2]*tensor.Tensor
	step := 0
	return func() (time.Duration, error) {
		step++
		net.ZeroGrad()
		var z [2]*tensor.Tensor
		for v := range x {
			_, zv, err := net.Forward(v, x[v])
			if err != nil {
				return 0, err
			}
			z[v] = zv
		}
		n, d := z[0].Shape[0], z[0].Shape[1]
		g[0], g[1] = tensor.Ensure(g[0], n, d), tensor.Ensure(g[1], n, d)
		start := time.Now()
		if _, err := method.Loss(step, z[0].Data, z[1].Data, n, d, g[0].Data, g[1].Data); err != nil {
			return 0, err
		}
		obj := time.Since(start)
		for v := range x {
			if err := net.Backward(v, g[v]); err != nil {
				return 0, err
			}
		}
		return obj, opt.Step(0.05)
	}, nil
}

// BenchObjective times the SSL objective alone (loss and gradients) on
// random unit-norm inputs of n x d.
func BenchObjective(method string, n, d, steps int) (float64, error) {
	opts, err := ssl.Defaults(method)
	if err != nil {
		return 0, err
	}
	m, err := ssl.New(method, opts)
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewSource(1))
	z1, z2, g1, g2 := make([]float32, n*d), make([]float32, n*d), make([]float32, n*d), make([]float32, n*d)
	for i := range z1 {
		z1[i], z2[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	var times []float64
	for s := 1; s <= steps+2; s++ {
		start := time.Now()
		if _, err := m.Loss(s, z1, z2, n, d, g1, g2); err != nil {
			return 0, err
		}
		if s > 2 {
			times = append(times, time.Since(start).Seconds())
		}
	}
	return median(times), nil
}

// BenchLoader measures how many two-view batches per second the data
// pipeline delivers for ds (decoding and augmentation included).
func BenchLoader(ctx context.Context, ds data.Dataset, pipe data.Pipeline, batch, workers, batches int) (float64, error) {
	switch {
	case batch < 1 || batch > ds.Len():
		return 0, flagErr("batch", "must be in [1, %d] (the number of images), got %d", ds.Len(), batch)
	case workers < 1:
		return 0, flagErr("workers", "must be >= 1, got %d", workers)
	case batches < 1:
		return 0, flagErr("batches", "must be >= 1, got %d", batches)
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
