package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/eval"
	"github.com/corinfomax/corinfomax/model"
	"github.com/spf13/cobra"
)

// evalFlags are shared by the commands that read a checkpoint and a dataset.
type evalFlags struct {
	checkpoint string
	data       string
	limit      int
	testLimit  int
	threads    int
	backend    string
	json       bool
}

func (f *evalFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.checkpoint, "checkpoint", "", "a run directory (its latest checkpoint) or a .safetensors file")
	f.addCommon(cmd)
}

// addCommon adds the flags other than --checkpoint.
func (f *evalFlags) addCommon(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.data, "data", "", "dataset as KIND:PATH (default: the data the checkpoint was trained on)")
	fs.IntVar(&f.limit, "limit", 0, "use only the first N training images (0: all)")
	fs.IntVar(&f.testLimit, "test-limit", 0, "use only the first N test images (0: all)")
	fs.IntVar(&f.threads, "threads", 0, "compute threads (0: all cores)")
	fs.StringVar(&f.backend, "backend", "dnnl", "operator backend: dnnl or ref")
	fs.BoolVar(&f.json, "json", false, "print the result as one JSON object on stdout")
}

// open loads the encoder and resolves the dataset spec.
func (f *evalFlags) open() (*encoder.Encoder, string, error) {
	if f.checkpoint == "" {
		return nil, "", usagef("--checkpoint: a run directory or .safetensors file is required")
	}
	if f.limit < 0 || f.testLimit < 0 {
		return nil, "", usagef("--limit/--test-limit: must be >= 0")
	}
	enc, err := encoder.Load(f.checkpoint, encoder.Options{Backend: f.backend, Threads: f.threads})
	if err != nil {
		return nil, "", err
	}
	spec := f.data
	if spec == "" {
		spec = enc.Data
		if spec == "" {
			enc.Close()
			return nil, "", usagef("--data: the checkpoint does not say what it was trained on; give KIND:PATH")
		}
	}
	return enc, spec, nil
}

// record merges kv into RUNDIR/eval.json (what `compare` shows) when the
// command evaluated a run directory on the run's own data with full splits;
// a failed write is reported, not fatal (the result is already printed).
func (f *evalFlags) record(enc *encoder.Encoder, spec string, kv map[string]any) {
	if fi, err := os.Stat(f.checkpoint); err != nil || !fi.IsDir() || f.limit != 0 || f.testLimit != 0 ||
		spec != enc.Data {
		return
	}
	if err := recordEval(f.checkpoint, kv); err != nil {
		fmt.Fprintf(os.Stderr, "warning: recording the result in %s/eval.json: %v\n", f.checkpoint, err)
	}
}

// splitFeatures computes backbone (or projector) features of a split.
func splitFeatures(ctx context.Context, enc *encoder.Encoder, spec string, split data.Split, limit int, layer model.Layer, log io.Writer) ([]float32, []int, int, data.Dataset, error) {
	ds, err := data.Open(spec, split, data.OpenOptions{Limit: limit, Log: log})
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	if ds.Channels() != enc.Spec.InChannels {
		return nil, nil, 0, nil, fmt.Errorf("--data %s has %d channels, the checkpoint's network takes %d",
			spec, ds.Channels(), enc.Spec.InChannels)
	}
	size, norm := enc.Geometry(spec, ds)
	feats, labels, dim, err := model.Features(ctx, enc.Net, ds, size, norm, layer, 0, 256)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	return feats, labels, dim, ds, nil
}

func parseInts(flag, s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			return nil, usagef("--%s: want positive integers separated by commas, got %q", flag, s)
		}
		out = append(out, v)
	}
	return out, nil
}

func printJSON(v any) error { return json.NewEncoder(os.Stdout).Encode(v) }

func newKNNCmd() *cobra.Command {
	f := &evalFlags{}
	var ks string
	var temp float64
	cmd := &cobra.Command{
		Use:   "knn --checkpoint RUNDIR [--data KIND:PATH]",
		Short: "Weighted kNN accuracy of the backbone features",
		Long: `Classify the test split by a temperature-weighted vote of its k nearest training images
(cosine similarity of L2-normalised backbone features), as solo-learn does.`,
		Example: `  corinfomax knn --checkpoint runs/fm
  corinfomax knn --checkpoint runs/fm/checkpoint.safetensors --data fashion-mnist --k 20,200 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kv, err := parseInts("k", ks)
			if err != nil {
				return err
			}
			if !(temp > 0) {
				return usagef("--temperature: must be > 0, got %g", temp)
			}
			enc, spec, err := f.open()
			if err != nil {
				return err
			}
			defer enc.Close()
			res, err := runKNN(cmd.Context(), enc, spec, f.limit, f.testLimit, kv, temp)
			if err != nil {
				return err
			}
			out := map[string]any{"checkpoint": enc.Path, "data": spec, "temperature": temp}
			rec := map[string]any{}
			for _, r := range res {
				out[fmt.Sprintf("knn_k%d", r.K)] = r.Top1
				rec[fmt.Sprintf("knn_k%d", r.K)] = r.Top1
				fmt.Fprintf(os.Stderr, "kNN k=%d top-1 %.2f%%\n", r.K, r.Top1)
			}
			if temp == 0.07 {
				f.record(enc, spec, rec)
			}
			if f.json {
				return printJSON(out)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&ks, "k", "20,200", "neighbour counts, comma-separated")
	cmd.Flags().Float64Var(&temp, "temperature", 0.07, "softmax temperature of the votes")
	return cmd
}

func runKNN(ctx context.Context, enc *encoder.Encoder, spec string, limit, testLimit int, ks []int, temp float64) ([]eval.KNNResult, error) {
	trF, trL, dim, ds, err := splitFeatures(ctx, enc, spec, data.Train, limit, model.Backbone, os.Stderr)
	if err != nil {
		return nil, err
	}
	if trL == nil {
		return nil, fmt.Errorf("--data %s has no labels: kNN needs a labelled train and test split", spec)
	}
	teF, teL, _, _, err := splitFeatures(ctx, enc, spec, data.Test, testLimit, model.Backbone, os.Stderr)
	if err != nil {
		return nil, err
	}
	return eval.KNN(trF, trL, teF, teL, dim, eval.KNNConfig{Ks: ks, Temperature: temp, NumClasses: ds.NumClasses()})
}

func newLinearCmd() *cobra.Command {
	f := &evalFlags{}
	cfg := eval.LinearConfig{}
	noAugment := true
	cmd := &cobra.Command{
		Use:   "linear --checkpoint RUNDIR [--data KIND:PATH]",
		Short: "Linear probe on the frozen backbone features",
		Long: `Train one linear layer with cross-entropy on the frozen backbone's features (inference-mode
batch norm, features before the projector) and report top-1 and top-5 on the test split
(docs/design.md section 3: SGD lr 0.2, batch 256, cosine to 2e-3, no weight decay).
By default the features are computed once without augmentation, which makes a CPU probe
take minutes; --no-augment=false runs the protocol's train-time RandomResizedCrop + flip,
one backbone pass over the training set per epoch.`,
		Example: `  corinfomax linear --checkpoint runs/fm
  corinfomax linear --checkpoint runs/fm --epochs 30 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case cfg.Epochs < 1:
				return usagef("--epochs: must be >= 1, got %d", cfg.Epochs)
			case cfg.Batch < 1:
				return usagef("--batch: must be >= 1, got %d", cfg.Batch)
			case !(cfg.LR > 0):
				return usagef("--lr: must be > 0, got %g", cfg.LR)
			case !(cfg.MinLR >= 0 && cfg.MinLR <= cfg.LR):
				return usagef("--min-lr: must be in [0, lr=%g], got %g", cfg.LR, cfg.MinLR)
			case !(cfg.Momentum >= 0 && cfg.Momentum < 1):
				return usagef("--momentum: must be in [0, 1), got %g", cfg.Momentum)
			case !(cfg.WeightDecay >= 0):
				return usagef("--weight-decay: must be >= 0, got %g", cfg.WeightDecay)
			}
			enc, spec, err := f.open()
			if err != nil {
				return err
			}
			defer enc.Close()
			res, err := runLinear(cmd.Context(), enc, spec, f.limit, f.testLimit, !noAugment, cfg, os.Stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "linear probe top-1 %.2f%% top-5 %.2f%%\n", res.Top1, res.Top5)
			f.record(enc, spec, map[string]any{"linear_top1": res.Top1, "linear_top5": res.Top5,
				"linear_epochs": cfg.Epochs, "linear_augment": !noAugment})
			if f.json {
				return printJSON(map[string]any{"checkpoint": enc.Path, "data": spec, "linear_top1": res.Top1,
					"linear_top5": res.Top5, "epochs": cfg.Epochs, "augment": !noAugment})
			}
			return nil
		},
	}
	f.add(cmd)
	fs := cmd.Flags()
	fs.IntVar(&cfg.Epochs, "epochs", 100, "probe epochs")
	fs.IntVar(&cfg.Batch, "batch", 256, "probe batch size")
	fs.Float64Var(&cfg.LR, "lr", 0.2, "probe learning rate")
	fs.Float64Var(&cfg.MinLR, "min-lr", 2e-3, "final learning rate of the cosine schedule")
	fs.Float64Var(&cfg.WeightDecay, "weight-decay", 0, "probe weight decay")
	fs.Float64Var(&cfg.Momentum, "momentum", 0.9, "probe momentum")
	fs.Int64Var(&cfg.Seed, "seed", 0, "probe random seed")
	fs.BoolVar(&noAugment, "no-augment", true, "precompute features once without augmentation")
	return cmd
}

// runLinear trains the linear probe on the training split's backbone
// features (recomputed on augmented images every epoch when augment is
// set) and evaluates it on the test split.
func runLinear(ctx context.Context, enc *encoder.Encoder, spec string, limit, testLimit int, augment bool, cfg eval.LinearConfig, log io.Writer) (eval.LinearResult, error) {
	trF, trL, dim, ds, err := splitFeatures(ctx, enc, spec, data.Train, limit, model.Backbone, log)
	if err != nil {
		return eval.LinearResult{}, err
	}
	if trL == nil {
		return eval.LinearResult{}, fmt.Errorf("--data %s has no labels: the linear probe needs labelled splits", spec)
	}
	teF, teL, _, _, err := splitFeatures(ctx, enc, spec, data.Test, testLimit, model.Backbone, log)
	if err != nil {
		return eval.LinearResult{}, err
	}
	cfg.NumClasses = ds.NumClasses()
	source := func(context.Context, int) ([]float32, []int, error) { return trF, trL, nil }
	if augment {
		size, norm := enc.Geometry(spec, ds)
		source = func(ctx context.Context, epoch int) ([]float32, []int, error) {
			f, l, _, err := model.AugmentedFeatures(ctx, enc.Net, ds, size, norm, epoch, cfg.Seed, 256)
			return f, l, err
		}
	}
	every := max(1, cfg.Epochs/10)
	return eval.LinearProbeEpochs(ctx, source, teF, teL, dim, cfg, func(epoch int, loss float64) {
		if epoch%every == 0 || epoch == cfg.Epochs {
			fmt.Fprintf(log, "linear probe epoch %d/%d loss %.4f\n", epoch, cfg.Epochs, loss)
		}
	})
}
