package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/eval"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/npy"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/report"
	"github.com/spf13/cobra"
)

// spectrumOf returns the eigenvalue spectrum of the covariance of features
// (n x d), L2-normalising the rows first when normalize is set.
func spectrumOf(feats []float32, n, d int, normalize bool) (eval.SpectrumSummary, error) {
	x := feats
	if normalize {
		x = make([]float32, n*d)
		if err := ops.L2NormalizeRows(feats, n, d, x, make([]float64, n)); err != nil {
			return eval.SpectrumSummary{}, err
		}
	}
	return eval.SpectrumOf(eval.Covariance(x, n, d), d)
}

type spectrumOut struct {
	Checkpoint string    `json:"checkpoint"`
	Layer      string    `json:"layer"`
	Dim        int       `json:"dim"`
	EffRank    float64   `json:"effective_rank"`
	Below1e8   int       `json:"below_1e-8"`
	Above1e1   int       `json:"above_1e-1"`
	Eigen      []float64 `json:"eigenvalues"`
}

func newSpectrumCmd() *cobra.Command {
	f := &evalFlags{}
	var out string
	var checkpoints []string
	cmd := &cobra.Command{
		Use:   "spectrum --checkpoint RUNDIR [--checkpoint RUNDIR2 ...] --out spectrum.png",
		Short: "Eigenvalue spectrum of the embedding covariance (dimensional collapse made visible)",
		Long: `Compute the covariance of the L2-normalised projector outputs and of the backbone features
over the training images (first --limit, default 10000), and plot their eigenvalues on a
log scale with the effective rank. Several checkpoints go into one plot to compare methods.`,
		Example: `  corinfomax spectrum --checkpoint runs/corinfomax --checkpoint runs/simclr --out spectra.png`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(checkpoints) == 0 {
				return usagef("--checkpoint: at least one run directory or .safetensors file is required")
			}
			if f.limit == 0 {
				f.limit = 10000
			}
			var results []spectrumOut
			proj, back := map[string][]float64{}, map[string][]float64{}
			for _, ck := range checkpoints {
				f.checkpoint = ck
				enc, spec, err := f.open()
				if err != nil {
					return err
				}
				for _, layer := range []model.Layer{model.Projector, model.Backbone} {
					feats, _, dim, _, err := splitFeatures(cmd.Context(), enc, spec, data.Train, f.limit, layer, os.Stderr)
					if err != nil {
						enc.Close()
						return err
					}
					sp, err := spectrumOf(feats, len(feats)/dim, dim, layer == model.Projector)
					if err != nil {
						enc.Close()
						return err
					}
					name := "backbone"
					if layer == model.Projector {
						name = "projector"
					}
					results = append(results, spectrumOut{Checkpoint: ck, Layer: name, Dim: dim, EffRank: sp.EffectiveRank,
						Below1e8: sp.Below1e8, Above1e1: sp.Above1e1, Eigen: sp.Eigenvalues})
					fmt.Fprintf(os.Stderr, "%s %s: dim %d, effective rank %.2f, eigenvalues < 1e-8: %d, > 1e-1: %d\n",
						ck, name, dim, sp.EffectiveRank, sp.Below1e8, sp.Above1e1)
					label := fmt.Sprintf("%s (erank %.1f)", runLabel(ck), sp.EffectiveRank)
					if layer == model.Projector {
						proj[label] = sp.Eigenvalues
					} else {
						back[label] = sp.Eigenvalues
					}
				}
				enc.Close()
			}
			if out != "" {
				if err := report.Spectra(out, "normalised projector outputs", proj); err != nil {
					return err
				}
				ext := filepath.Ext(out)
				bout := out[:len(out)-len(ext)] + "_backbone" + ext
				if err := report.Spectra(bout, "backbone features", back); err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "wrote %s and %s\n", out, bout)
			}
			if f.json {
				return printJSON(map[string]any{"spectra": results})
			}
			return nil
		},
	}
	f.addCommon(cmd)
	cmd.Flags().StringArrayVar(&checkpoints, "checkpoint", nil, "run directory or .safetensors file (repeatable)")
	cmd.Flags().StringVar(&out, "out", "spectrum.png", "plot of the projector spectra (the backbone's goes to NAME_backbone.png)")
	return cmd
}

func runLabel(path string) string {
	if filepath.Ext(path) == ".safetensors" {
		return filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
	}
	return filepath.Base(filepath.Clean(path))
}

func newEmbedCmd() *cobra.Command {
	f := &evalFlags{}
	var out, split, layer string
	cmd := &cobra.Command{
		Use:   "embed --checkpoint RUNDIR --out features.npy [--split train|test|val] [--layer backbone|projector]",
		Short: "Write features as a float32 .npy array (N x F), plus labels.npy",
		Long: `Run the encoder over a dataset split in order (images normalised only, no augmentation)
and write the features as a float32 .npy array (N x F), and the labels as int64
labels.npy next to it when the data has labels.`,
		Example: `  corinfomax embed --checkpoint runs/fm --data fashion-mnist --split test --out test_features.npy`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sp, err := data.ParseSplit(split)
			if err != nil || sp == data.Unlabeled {
				return usagef("--split: must be train, test or val (the held-out split; an image folder's DIR/val), got %q", split)
			}
			var l model.Layer
			switch layer {
			case "backbone":
				l = model.Backbone
			case "projector":
				l = model.Projector
			default:
				return usagef("--layer: must be backbone or projector, got %q", layer)
			}
			if out == "" {
				return usagef("--out: a .npy path is required")
			}
			enc, spec, err := f.open()
			if err != nil {
				return err
			}
			defer enc.Close()
			lim := f.limit
			if sp == data.Test {
				lim = f.testLimit
			}
			feats, labels, dim, _, err := splitFeatures(cmd.Context(), enc, spec, sp, lim, l, os.Stderr)
			if err != nil {
				return err
			}
			n := len(feats) / dim
			if err := npy.WriteFloat32(out, []int{n, dim}, feats); err != nil {
				return err
			}
			res := map[string]any{"features": out, "n": n, "dim": dim}
			if labels != nil {
				lp := filepath.Join(filepath.Dir(out), "labels.npy")
				l64 := make([]int64, len(labels))
				for i, v := range labels {
					l64[i] = int64(v)
				}
				if err := npy.WriteInt64(lp, []int{len(l64)}, l64); err != nil {
					return err
				}
				res["labels"] = lp
			}
			fmt.Fprintf(os.Stderr, "wrote %s (%d x %d)\n", out, n, dim)
			if f.json {
				return printJSON(res)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&out, "out", "", "output .npy file")
	cmd.Flags().StringVar(&split, "split", "train", "train, or test (also spelled val: an image folder's DIR/val)")
	cmd.Flags().StringVar(&layer, "layer", "backbone", "backbone (features before the projector) or projector")
	return cmd
}

// readJSON decodes a JSON file into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
