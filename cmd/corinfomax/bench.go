package main

import (
	"fmt"
	"os"

	"github.com/corinfomax/corinfomax/bench"
	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/ssl"
	"github.com/spf13/cobra"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks: a training step, the SSL objective, the data loader",
	}
	var c bench.StepConfig
	var asJSON bool
	step := &cobra.Command{
		Use:   "step",
		Short: "Time full training steps on random data (images/s and peak RSS)",
		Example: `  corinfomax bench step --arch resnet18 --width 64 --batch 128 --size 32 --channels 3 --method supervised --steps 10 --json
  corinfomax bench step --width 16 --method corinfomax --projector 512-512-64 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := bench.Step(cmd.Context(), c)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(r)
			}
			fmt.Printf("%s %s w%d batch %d %s: %.1f images/s (median step %.3f s), peak RSS %.0f MiB\n",
				r.Engine, r.Arch, r.Width, r.Batch, r.Method, r.ImagesPerSec, r.StepSecondsMed, float64(r.PeakRSSBytes)/(1<<20))
			return nil
		},
	}
	fs := step.Flags()
	fs.StringVar(&c.Arch, "arch", "resnet18", "resnet18, resnet34 or resnet50")
	fs.StringVar(&c.Stem, "stem", "cifar", "cifar or imagenet")
	fs.IntVar(&c.Width, "width", 64, "base channels")
	fs.IntVar(&c.Batch, "batch", 128, "batch size (per view for SSL methods)")
	fs.IntVar(&c.Size, "size", 32, "image size")
	fs.IntVar(&c.Channels, "channels", 3, "input channels")
	fs.StringVar(&c.Method, "method", "supervised", "supervised (cross-entropy) or an SSL method")
	fs.StringVar(&c.Projector, "projector", "2048-2048-64", "projector for SSL methods (without batch norm, SGD)")
	fs.StringVar(&c.Recipe, "recipe", "", "take the SSL method's projector, predictor, momentum network and optimizer from this recipe (e.g. fashionmnist); overrides --projector")
	fs.IntVar(&c.Steps, "steps", 10, "timed steps")
	fs.IntVar(&c.Warmup, "warmup", 3, "untimed warm-up steps")
	fs.IntVar(&c.Threads, "threads", 0, "compute threads (0: all cores)")
	fs.StringVar(&c.Backend, "backend", "dnnl", "dnnl or ref")
	fs.StringVar(&c.Precision, "precision", "fp32", "fp32, or bf16 (bfloat16 convolutions; needs AVX512-BF16)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")

	var method string
	var n, d, steps int
	obj := &cobra.Command{
		Use:     "objective",
		Short:   "Time the SSL objective alone (loss and gradients)",
		Example: `  corinfomax bench objective --method corinfomax --batch 512 --dim 128`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case n < 2:
				return usagef("--batch: must be >= 2, got %d", n)
			case d < 1:
				return usagef("--dim: must be >= 1, got %d", d)
			case steps < 1:
				return usagef("--steps: must be >= 1, got %d", steps)
			}
			if _, err := ssl.Defaults(method); err != nil {
				return usagef("--method: %v", err)
			}
			sec, err := bench.Objective(method, n, d, steps)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(map[string]any{"method": method, "batch": n, "dim": d, "seconds_median": sec})
			}
			fmt.Printf("%s objective, batch %d, dim %d: %.3f ms per step\n", method, n, d, sec*1e3)
			return nil
		},
	}
	obj.Flags().StringVar(&method, "method", "corinfomax", "SSL method")
	obj.Flags().IntVar(&n, "batch", 512, "rows per view")
	obj.Flags().IntVar(&d, "dim", 128, "embedding dimension")
	obj.Flags().IntVar(&steps, "steps", 20, "timed calls")
	obj.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")

	var spec, augment string
	var batch, workers, batches, size int
	loader := &cobra.Command{
		Use:     "loader",
		Short:   "Images/s the two-view augmentation pipeline delivers",
		Example: `  corinfomax bench loader --data cifar10:DIR --batch 256 --workers 2`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ds, err := data.Open(spec, data.Train, data.OpenOptions{Log: os.Stderr})
			if err != nil {
				return err
			}
			pipe, err := data.AugmentPipeline(augment, size, 0.08, data.DefaultNorm(spec, ds.Channels()))
			if err != nil {
				return usagef("--augment: %v", err)
			}
			ips, err := bench.Loader(cmd.Context(), ds, pipe, batch, workers, batches)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(map[string]any{"data": spec, "batch": batch, "workers": workers, "images_per_sec": ips})
			}
			fmt.Printf("loader %s: %.0f two-view images/s (batch %d, %d workers)\n", spec, ips, batch, workers)
			return nil
		},
	}
	loader.Flags().StringVar(&spec, "data", "fashion-mnist", "dataset KIND:PATH")
	loader.Flags().StringVar(&augment, "augment", "paper", "paper, light or none")
	loader.Flags().IntVar(&size, "size", 32, "crop size")
	loader.Flags().IntVar(&batch, "batch", 256, "batch size")
	loader.Flags().IntVar(&workers, "workers", 2, "loader goroutines")
	loader.Flags().IntVar(&batches, "batches", 50, "batches to time")
	loader.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.AddCommand(step, obj, loader)
	return cmd
}
