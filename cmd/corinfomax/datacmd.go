package main

import (
	"fmt"
	"os"

	"github.com/corinfomax/corinfomax/data"
	"github.com/spf13/cobra"
)

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "data", Short: "Look at a dataset: statistics and augmented views"}
	var split string
	var limit int
	var strict, asJSON bool
	open := func(spec string) (data.Dataset, error) {
		sp, err := data.ParseSplit(split)
		if err != nil {
			return nil, usagef("--split: %v", err)
		}
		return data.Open(spec, sp, data.OpenOptions{Limit: limit, Strict: strict, Log: os.Stderr})
	}
	inspect := &cobra.Command{
		Use:   "inspect KIND:PATH",
		Short: "Size, classes, image shape and per-channel mean/std of a dataset",
		Example: `  corinfomax data inspect fashion-mnist
  corinfomax data inspect cifar10:~/data/cifar-10-batches-bin --split test`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := open(args[0])
			if err != nil {
				return err
			}
			st, err := data.Inspect(ds)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(st)
			}
			fmt.Println(st.String())
			return nil
		},
	}
	var out, augment string
	var n, size int
	var seed int64
	preview := &cobra.Command{
		Use:     "preview KIND:PATH --out views.png",
		Short:   "A grid of images with their two augmented views",
		Example: `  corinfomax data preview fashion-mnist --out views.png --n 8`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 1 {
				return usagef("--n: must be >= 1, got %d", n)
			}
			ds, err := open(args[0])
			if err != nil {
				return err
			}
			pipe, err := data.AugmentPipeline(augment, size, 0.08, data.DefaultNorm(args[0], ds.Channels()))
			if err != nil {
				return usagef("--augment: %v", err)
			}
			if err := data.Preview(ds, pipe, n, seed, out); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "wrote %s\n", out)
			return nil
		},
	}
	for _, c := range []*cobra.Command{inspect, preview} {
		c.Flags().StringVar(&split, "split", "train", "train, test (val: an image folder's DIR/val) or unlabeled")
		c.Flags().IntVar(&limit, "limit", 0, "use only the first N images")
		c.Flags().BoolVar(&strict, "strict", false, "stop at the first unreadable image")
	}
	inspect.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	preview.Flags().StringVar(&out, "out", "views.png", "output PNG")
	preview.Flags().StringVar(&augment, "augment", "paper", "paper, light or none")
	preview.Flags().IntVar(&size, "size", 32, "crop size")
	preview.Flags().IntVar(&n, "n", 8, "images")
	preview.Flags().Int64Var(&seed, "seed", 0, "random seed")
	cmd.AddCommand(inspect, preview)
	return cmd
}
