// Command stepdump runs the first steps of a two-view pretraining run the
// way `corinfomax pretrain` does (same network initialisation, data order,
// augmentations, objective, optimizer and learning-rate schedule for the
// same seed and flags) and writes everything a PyTorch re-run needs to
// compare step by step (tools/pytorch/vicreg_step_check.py):
//
//	OUT/init.safetensors   the initial weights and buffers (torchvision /
//	                       projector names, model.ModelTensors)
//	OUT/view1_NNNN.npy, OUT/view2_NNNN.npy
//	                       the two normalised views of step NNNN (N,H,W,C float32)
//	OUT/grads1.safetensors every parameter's gradient at step 1
//	OUT/steps.jsonl        per step: lr, loss, its components, and per
//	                       parameter the norms of the weight before the step,
//	                       of the gradient and of the update
//	OUT/config.json        the configuration
//
// Example (VICReg, solo-learn's LARS with the clip, projector with BN):
//
//	go run ./tools/stepdump --out /tmp/dump --method vicreg --optimizer lars --lr 0.3 \
//	    --projector 512-512-512 --projector-bn --limit 10240 --epochs 2 --steps 30
//
// It stops at the first non-finite loss or gradient (reported in
// steps.jsonl) instead of failing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/npy"
	"github.com/corinfomax/corinfomax/ops/backends"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/tensor"
	"github.com/corinfomax/corinfomax/train"
)

type paramRecord struct {
	Name   string  `json:"name"`
	W      float64 `json:"w"`      // ||w|| before the step
	G      float64 `json:"g"`      // ||grad||
	Update float64 `json:"update"` // ||w_after - w_before||
}

type stepRecord struct {
	Step       int                `json:"step"`
	LR         float64            `json:"lr"`
	Loss       float64            `json:"loss"`
	Components map[string]float64 `json:"components"`
	Error      string             `json:"error,omitempty"`
	Params     []paramRecord      `json:"params,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "stepdump:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		out        = flag.String("out", "", "output directory")
		recipeName = flag.String("recipe", "fashionmnist", "recipe")
		method     = flag.String("method", "vicreg", "SSL objective")
		optName    = flag.String("optimizer", "lars", "sgd, lars, adamw")
		clip       = flag.Bool("clip", true, "lars: clip_lr")
		lr         = flag.Float64("lr", 0.3, "base learning rate")
		constLR    = flag.Bool("constant-lr", false, "constant learning rate instead of the recipe's warm-up + cosine")
		epochs     = flag.Int("epochs", 2, "epochs of the schedule")
		steps      = flag.Int("steps", 30, "steps to run")
		limit      = flag.Int("limit", 10240, "training images")
		projector  = flag.String("projector", "512-512-512", "projector widths")
		projBN     = flag.Bool("projector-bn", true, "batch norm in the projector's hidden layers")
		augment    = flag.String("augment", "", "augmentation (default: the recipe's)")
		backend    = flag.String("backend", "dnnl", "dnnl or ref")
		threads    = flag.Int("threads", 2, "compute threads")
		seed       = flag.Int64("seed", 0, "seed")
		noViews    = flag.Bool("no-views", false, "do not write the views")
	)
	flag.Parse()
	if *out == "" {
		return errors.New("--out is required")
	}
	cfg, err := train.FromRecipe(*recipeName, *method)
	if err != nil {
		return err
	}
	cfg.Optimizer, cfg.LR, cfg.Epochs, cfg.Limit = *optName, *lr, *epochs, *limit
	cfg.Projector, cfg.ProjectorBN, cfg.Backend, cfg.Threads, cfg.Seed = *projector, *projBN, *backend, *threads, *seed
	if *augment != "" {
		cfg.Augment = *augment
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	ds, err := data.Open(cfg.Data, data.Train, data.OpenOptions{Limit: cfg.Limit})
	if err != nil {
		return err
	}
	norm, err := cfg.Norm(ds.Channels())
	if err != nil {
		return err
	}
	pipe, err := cfg.Pipeline(norm)
	if err != nil {
		return err
	}
	// As train.Trainer.setup and build.
	loader, err := data.NewLoader(ds, data.LoaderConfig{Batch: cfg.Batch, Workers: 2, Seed: cfg.Seed,
		Shuffle: cfg.Shuffle, DropLast: true, Views: 2, Pipeline: pipe, Shards: 1})
	if err != nil {
		return err
	}
	be, err := backends.New(cfg.Backend, cfg.Threads, cfg.Precision)
	if err != nil {
		return err
	}
	defer be.Close()
	spec := cfg.Spec(ds.Channels())
	net, err := model.NewNetwork(be, spec, rand.New(rand.NewSource(cfg.Seed)))
	if err != nil {
		return err
	}
	opts := cfg.MethodOpts.Clone()
	opts.Seed = cfg.Seed
	m, err := ssl.New(cfg.Method, opts)
	if err != nil {
		return err
	}
	opt, err := train.NewOptimizer(&cfg, net.Params())
	if err != nil {
		return err
	}
	if l, ok := opt.(*optim.LARS); ok {
		l.ClipLR = *clip
	}
	spe := loader.StepsPerEpoch()
	sched := optim.Schedule{Base: cfg.LR, WarmupStart: cfg.WarmupStart, Min: cfg.MinLR,
		WarmupSteps: cfg.WarmupEpochs * spe, TotalSteps: cfg.Epochs * spe}
	if cfg.ScheduleUnit != "step" {
		return fmt.Errorf("the recipe's schedule advances per %s; stepdump does per-step schedules only", cfg.ScheduleUnit)
	}
	if *constLR {
		sched = optim.Constant(cfg.LR)
	}
	cj, _ := json.MarshalIndent(map[string]any{"config": cfg, "clip_lr": *clip, "constant_lr": *constLR,
		"steps_per_epoch": spe, "schedule": sched, "spec": spec, "norm": norm}, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "config.json"), cj, 0o644); err != nil {
		return err
	}
	if err := checkpoint.Write(filepath.Join(*out, "init.safetensors"),
		&checkpoint.File{Metadata: map[string]string{}, Tensors: model.ModelTensors(net)}); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(*out, "steps.jsonl"))
	if err != nil {
		return err
	}
	defer log.Close()
	enc := json.NewEncoder(log)

	st := train.NewStep(net, m, opt)
	params := net.Params()
	before := make([][]float32, len(params))
	ctx := context.Background()
	for t := 0; t < *steps; {
		epoch := t / spe
		it := loader.Epoch(ctx, epoch, t%spe)
		for ; t < *steps && t/spe == epoch; t++ {
			b, err := it.Next()
			if err != nil {
				it.Close()
				return err
			}
			var x [2]*tensor.Tensor
			for v := range x {
				if x[v], err = tensor.FromData(b.X[v], b.N, b.H, b.W, b.C); err != nil {
					it.Close()
					return err
				}
				if !*noViews {
					name := filepath.Join(*out, fmt.Sprintf("view%d_%04d.npy", v+1, t+1))
					if err := npy.WriteFloat32(name, []int{b.N, b.H, b.W, b.C}, b.X[v]); err != nil {
						it.Close()
						return err
					}
				}
			}
			for i, p := range params {
				before[i] = append(before[i][:0], p.Value.Data...)
			}
			rate := sched.At(t)
			res, err := st.Run(t+1, x, rate)
			rec := stepRecord{Step: t + 1, LR: rate, Loss: res.Loss, Components: map[string]float64{}}
			for _, c := range res.Components {
				rec.Components[c.Name] = c.Value
			}
			if err != nil {
				rec.Error = err.Error()
				rec.Loss = finiteOr(rec.Loss)
				for k, v := range rec.Components {
					rec.Components[k] = finiteOr(v)
				}
				it.Close()
				fmt.Printf("step %d lr %.6g: %v\n", t+1, rate, err)
				return enc.Encode(rec)
			}
			for i, p := range params {
				var w, g, u float64
				for j, v := range p.Value.Data {
					w += float64(before[i][j]) * float64(before[i][j])
					g += float64(p.Grad.Data[j]) * float64(p.Grad.Data[j])
					d := float64(v) - float64(before[i][j])
					u += d * d
				}
				rec.Params = append(rec.Params, paramRecord{Name: p.Name, W: math.Sqrt(w), G: math.Sqrt(g), Update: math.Sqrt(u)})
			}
			if err := enc.Encode(rec); err != nil {
				it.Close()
				return err
			}
			fmt.Printf("step %d lr %.6g loss %.6f", t+1, rate, res.Loss)
			for _, c := range res.Components {
				fmt.Printf(" %s %.6f", c.Name, c.Value)
			}
			fmt.Println()
			if t == 0 {
				var ts []*checkpoint.Tensor
				for _, p := range params {
					ts = append(ts, &checkpoint.Tensor{Name: "grad." + p.Name, DType: "F32",
						Shape: append([]int(nil), p.Grad.Shape...), F32: append([]float32(nil), p.Grad.Data...)})
				}
				if err := checkpoint.Write(filepath.Join(*out, "grads1.safetensors"),
					&checkpoint.File{Metadata: map[string]string{}, Tensors: ts}); err != nil {
					it.Close()
					return err
				}
			}
		}
		it.Close()
	}
	return nil
}

// finiteOr returns v, or -1 when v is NaN or infinite (JSON has no NaN).
func finiteOr(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return v
}
