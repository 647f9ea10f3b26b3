package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/corinfomax/corinfomax/train"
)

func newFinetuneCmd() *cobra.Command {
	var labels string
	var resume, asJSON bool
	c := train.DefaultFinetune("1%")
	cmd := &cobra.Command{
		Use:   "finetune --checkpoint RUN --data DATA --labels 1%|10%|N-per-class --out DIR [flags]",
		Short: "Fine-tune a pretrained backbone and a linear head on a few labels",
		Long: `Fine-tune the backbone of a pretrained run together with a new linear head
(torchvision's "fc") on a class-balanced labelled subset of --data, then evaluate
on the whole test split (top-1, top-5) after every epoch.

The protocol is VICReg's semi-supervised one (facebookresearch/vicreg evaluate.py
--weights finetune, and its README's settings): SGD with momentum 0.9, separate
learning rates for backbone and head with cosine annealing over the epochs,
weight decay 0, 20 epochs at batch 256, random-resized crops and flips, the head
drawn from N(0, 0.01) with zero bias. The learning rates default to 0.03 and 0.08
(backbone, head) for budgets under 5% of the labels (VICReg's 1% setting) and to
0.01 and 0.1 from 5% (its 10% setting). Crops keep at least 40% of the image.

The labelled subset (the same number of images from every class, drawn with
--seed) is written to DIR/labelled.json; DIR also gets finetune.json,
metrics.jsonl and checkpoint.safetensors: the fine-tuned network with torchvision
names (fc.weight, fc.bias included; encoder.Load and PyTorch load it), saved every
epoch and on Ctrl-C. --resume continues exactly where it stopped.
--random-init trains the same architecture from random weights with the same
labels and schedule: the supervised baseline every few-label table needs.`,
		Example: `  corinfomax finetune --checkpoint runs/demo --data fashion-mnist --labels 1% --out runs/ft1
  corinfomax finetune --checkpoint runs/demo --data fashion-mnist --labels 10% --out runs/ft10 --json
  corinfomax finetune --checkpoint runs/demo --data fashion-mnist --labels 1% --random-init --out runs/ft1-rand
  corinfomax finetune --out runs/ft1 --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			c.Labels = labels
			if !fs.Changed("lr-backbone") || !fs.Changed("lr-head") {
				d := train.DefaultFinetune(labels)
				if !fs.Changed("lr-backbone") {
					c.LRBackbone = d.LRBackbone
				}
				if !fs.Changed("lr-head") {
					c.LRHead = d.LRHead
				}
			}
			sum, err := train.Finetune(cmd.Context(), c, resume, os.Stderr)
			if errors.Is(err, train.ErrInterrupted) {
				fmt.Fprintf(os.Stderr, "interrupted after epoch %d: checkpoint saved; continue with:\n  corinfomax finetune --out %s --resume\n", sum.Epochs, c.Out)
				return nil
			}
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(sum)
			}
			init := "pretrained"
			if sum.RandomInit {
				init = "random init"
			}
			fmt.Fprintf(os.Stderr, "done (%s, %d labelled images, %d epochs): test top-1 %.2f%%, top-5 %.2f%% on %d images; checkpoint %s\n",
				init, sum.Labelled, sum.Epochs, sum.Top1, sum.Top5, sum.TestImages, sum.Checkpoint)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&c.Checkpoint, "checkpoint", "", "the pretrained run directory or checkpoint (with --random-init: the run whose architecture to train)")
	fs.StringVar(&c.Data, "data", "fashion-mnist", "labelled data as KIND:PATH (see pretrain --help); its test split is the evaluation")
	fs.StringVar(&labels, "labels", "1%", "label budget: a percentage of the training set (1%, 10%) or N-per-class")
	fs.BoolVar(&c.RandomInit, "random-init", false, "start from random weights instead of the checkpoint's (the supervised baseline)")
	fs.Int64Var(&c.Seed, "seed", 0, "random seed (the labelled subset, the head, the data order and augmentations)")
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "training epochs")
	fs.IntVar(&c.Batch, "batch", c.Batch, "images per step")
	fs.Float64Var(&c.LRBackbone, "lr-backbone", c.LRBackbone, "backbone learning rate (default: 0.03 under 5% of the labels, 0.01 from 5%)")
	fs.Float64Var(&c.LRHead, "lr-head", c.LRHead, "head learning rate (default: 0.08 under 5% of the labels, 0.1 from 5%)")
	fs.Float64Var(&c.Momentum, "momentum", c.Momentum, "SGD momentum")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "weight decay")
	fs.Float64Var(&c.CropScaleMin, "crop-scale-min", c.CropScaleMin, "smallest random-resized-crop area fraction")
	fs.IntVar(&c.Workers, "workers", c.Workers, "data loading goroutines")
	fs.IntVar(&c.Threads, "threads", 0, "compute threads (0: all cores)")
	fs.StringVar(&c.Backend, "backend", c.Backend, "operator backend: "+backendHelp())
	fs.StringVar(&c.Out, "out", "", "run directory (finetune.json, labelled.json, metrics.jsonl, checkpoint.safetensors)")
	fs.BoolVar(&resume, "resume", false, "continue the run in --out from its checkpoint (with its stored settings)")
	fs.BoolVar(&asJSON, "json", false, "print the summary as one JSON object on stdout")
	return cmd
}
