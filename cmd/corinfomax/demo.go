package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/eval"
	"github.com/corinfomax/corinfomax/internal/atomicfile"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/report"
	"github.com/corinfomax/corinfomax/train"
)

// featureScore is the kNN and linear-probe accuracy of one set of features.
type featureScore struct {
	Name      string  `json:"name"`
	Dim       int     `json:"dim"`
	KNN20     float64 `json:"knn_k20"`
	KNN200    float64 `json:"knn_k200"`
	LinTop1   float64 `json:"linear_top1"`
	LinTop5   float64 `json:"linear_top5"`
	EvalSecs  float64 `json:"eval_seconds"`
	FeatLimit int     `json:"train_images"`
}

// scoreFeatures evaluates one network's backbone features (nil: raw
// pixels) on train/test with weighted kNN and a linear probe.
func scoreFeatures(ctx context.Context, name string, net *nn.Network, tr, te data.Dataset, size int, norm data.Norm, lin eval.LinearConfig, log io.Writer) (featureScore, error) {
	start := time.Now()
	trF, trL, dim, err := model.Features(ctx, net, tr, size, norm, model.Backbone, 0, 256)
	if err != nil {
		return featureScore{}, err
	}
	teF, teL, _, err := model.Features(ctx, net, te, size, norm, model.Backbone, 0, 256)
	if err != nil {
		return featureScore{}, err
	}
	s := featureScore{Name: name, Dim: dim, FeatLimit: tr.Len()}
	knn, err := eval.KNN(trF, trL, teF, teL, dim, eval.KNNConfig{Ks: []int{20, 200}, Temperature: 0.07, NumClasses: tr.NumClasses()})
	if err != nil {
		return s, fmt.Errorf("%s: kNN: %w", name, err)
	}
	s.KNN20, s.KNN200 = knn[0].Top1, knn[1].Top1
	lin.NumClasses = tr.NumClasses()
	fmt.Fprintf(log, "%s: kNN k=20 %.2f%%, k=200 %.2f%%; linear probe (%d epochs)...\n", name, s.KNN20, s.KNN200, lin.Epochs)
	lr, err := eval.LinearProbe(ctx, trF, trL, teF, teL, dim, lin, nil)
	if err != nil {
		return s, fmt.Errorf("%s: linear probe: %w", name, err)
	}
	s.LinTop1, s.LinTop5 = lr.Top1, lr.Top5
	s.EvalSecs = time.Since(start).Seconds()
	fmt.Fprintf(log, "%s: linear top-1 %.2f%% top-5 %.2f%%\n", name, s.LinTop1, s.LinTop5)
	return s, nil
}

func newDemoCmd() *cobra.Command {
	f := &pretrainFlags{}
	var linEpochs int
	cmd := &cobra.Command{
		Use:   "demo [--out runs/demo]",
		Short: "The main job: pretrain CorInfoMax on Fashion-MNIST, evaluate, compare with baselines",
		Long: `Pretrain CorInfoMax on Fashion-MNIST with the CPU recipe (measured on 2 cores, build included: 13.5 minutes on an Intel Xeon with AMX, 17.8 to 19 on an AMD EPYC Zen 4),
then evaluate the learned backbone features with weighted kNN and a linear probe on the
10k test images, next to two baselines computed in the same run: the raw pixels and the
same network at its random initialisation. Prints a markdown table and writes
RUNDIR/demo.md, RUNDIR/demo.json and RUNDIR/report.png.

Re-running resumes (or reuses) the finished pretraining in --out.`,
		Example: `  corinfomax demo
  corinfomax demo --out runs/demo2 --epochs 2 --limit 20000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if !cmd.Flags().Changed("out") {
				f.c.Out = "runs/demo"
				if err := cmd.Flags().Set("out", "runs/demo"); err != nil {
					return err
				}
			}
			if _, err := os.Stat(filepath.Join(f.c.Out, model.CheckpointFile)); err == nil {
				f.resume = true
				fmt.Fprintf(os.Stderr, "demo: %s has a checkpoint: resuming it (use another --out for a fresh run)\n", f.c.Out)
			}
			cfg, err := f.resolve(cmd.Flags())
			if err != nil {
				return err
			}
			if !f.resume && !cmd.Flags().Changed("knn-every") {
				cfg.KNNEvery = 2 // the online kNN curve at half the cost: the demo has 20 minutes
			}
			start := time.Now()
			fmt.Fprintf(os.Stderr, "demo: pretraining %s on %s (%s recipe: %s width %d, %d epochs, batch %d) into %s\n",
				cfg.Method, cfg.Data, cfg.Recipe, cfg.Arch, cfg.Width, cfg.Epochs, cfg.Batch, cfg.Out)
			sum, err := train.Run(ctx, cfg, f.resume, os.Stderr)
			if errors.Is(err, train.ErrInterrupted) {
				fmt.Fprintf(os.Stderr, "interrupted: run `corinfomax demo --out %s` again to continue\n", cfg.Out)
				return nil
			}
			if err != nil {
				return err
			}
			trainSecs := time.Since(start).Seconds()
			tr, err := data.Open(cfg.Data, data.Train, data.OpenOptions{Log: os.Stderr})
			if err != nil {
				return err
			}
			te, err := data.Open(cfg.Data, data.Test, data.OpenOptions{Log: os.Stderr})
			if err != nil {
				return err
			}
			enc, err := encoder.Load(cfg.Out, encoder.Options{Backend: cfg.Backend, Threads: cfg.Threads})
			if err != nil {
				return err
			}
			defer enc.Close()
			norm := enc.Norm // the normalisation the run trained with, from its checkpoint
			lin := eval.LinearConfig{Epochs: linEpochs, Batch: 256, LR: 0.2, MinLR: 2e-3, Momentum: 0.9, Seed: cfg.Seed,
				Standardize: true} // the same treatment for the three feature sets: raw pixels and a random network are badly scaled
			var scores []featureScore
			s, err := scoreFeatures(ctx, "raw pixels", nil, tr, te, cfg.Size, norm, lin, os.Stderr)
			if err != nil {
				return err
			}
			scores = append(scores, s)
			// The same network at the initialisation the run started from.
			random, err := model.NewNetwork(enc.Backend(), enc.Spec, rand.New(rand.NewSource(cfg.Seed)))
			if err != nil {
				return err
			}
			// Its batch-norm statistics are re-estimated on 20 training
			// batches so that inference mode normalises its real inputs.
			if err := model.RecalibrateBN(ctx, random, tr, cfg.Size, norm, 20, 256); err != nil {
				return err
			}
			if s, err = scoreFeatures(ctx, "random-init "+cfg.Arch, random, tr, te, cfg.Size, norm, lin, os.Stderr); err != nil {
				return err
			}
			scores = append(scores, s)
			if s, err = scoreFeatures(ctx, cfg.Method+" "+cfg.Arch, enc.Net, tr, te, cfg.Size, norm, lin, os.Stderr); err != nil {
				return err
			}
			scores = append(scores, s)
			table := demoTable(scores)
			fmt.Println(table)
			learned := scores[2]
			beats := learned.KNN20 > scores[0].KNN20 && learned.KNN20 > scores[1].KNN20 &&
				learned.LinTop1 > scores[0].LinTop1 && learned.LinTop1 > scores[1].LinTop1
			verdict := "the learned features beat both baselines on kNN (k=20) and linear top-1"
			if !beats {
				verdict = "the learned features do NOT beat both baselines on kNN (k=20) and linear top-1"
			}
			md := fmt.Sprintf("# corinfomax demo\n\n%s\n\n%s.\n\nPretraining: %d epochs, %d steps, %.0f s (%.0f img/s); total %.0f s.\n\nCurves and spectrum: report.png.\n",
				table, verdict, sum.Epochs, sum.Steps, trainSecs, sum.ImagesPerSec, time.Since(start).Seconds())
			if err := writeText(filepath.Join(cfg.Out, "demo.md"), md); err != nil {
				return err
			}
			if err := recordEval(cfg.Out, map[string]any{"knn_k20": learned.KNN20, "knn_k200": learned.KNN200,
				"linear_top1": learned.LinTop1, "linear_top5": learned.LinTop5, "linear_epochs": linEpochs}); err != nil {
				return err
			}
			if err := writeJSONFile(filepath.Join(cfg.Out, "demo.json"), map[string]any{"scores": scores,
				"beats_baselines": beats, "pretrain_seconds": trainSecs, "total_seconds": time.Since(start).Seconds()}); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "demo: %s; wrote %s/demo.md, demo.json, report.png (%.0f s in all)\n", verdict, cfg.Out, time.Since(start).Seconds())
			return nil
		},
	}
	addPretrainFlags(cmd.Flags(), f)
	cmd.Flags().IntVar(&linEpochs, "linear-epochs", 30, "linear-probe epochs on the precomputed features")
	return cmd
}

func demoTable(scores []featureScore) string {
	rows := make([][]string, len(scores))
	for i, s := range scores {
		rows[i] = []string{s.Name, fmt.Sprint(s.Dim), fmt.Sprintf("%.2f", s.KNN20), fmt.Sprintf("%.2f", s.KNN200),
			fmt.Sprintf("%.2f", s.LinTop1), fmt.Sprintf("%.2f", s.LinTop5)}
	}
	return report.MarkdownTable([]string{"features", "dim", "kNN k=20", "kNN k=200", "linear top-1", "linear top-5"}, rows)
}

func writeText(path, s string) error { return atomicfile.WriteBytes(path, []byte(s)) }

func writeJSONFile(path string, v any) error {
	var b strings.Builder
	enc := newIndentEncoder(&b)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeText(path, b.String())
}

// recordEval merges results into RUNDIR/eval.json (read by `compare`).
func recordEval(runDir string, kv map[string]any) error {
	path := filepath.Join(runDir, "eval.json")
	cur := map[string]any{}
	if _, err := os.Stat(path); err == nil {
		if err := readJSON(path, &cur); err != nil {
			return err
		}
	}
	for k, v := range kv {
		cur[k] = v
	}
	return writeJSONFile(path, cur)
}
