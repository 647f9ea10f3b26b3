package model

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/tensor"
)

// AugmentedFeatures runs net's backbone in inference mode (batch-norm
// running statistics) over every image of ds in order, each image passed
// through the linear probe's training transform data.ProbePipeline(size,
// norm) (RandomResizedCrop scale 0.08-1 and horizontal flip, docs/design.md
// section 3), and returns the features before the projector (N x dim,
// row-major), the labels (nil when ds is unlabelled) and dim. The
// augmentation of image i is drawn from (seed, epoch, i) by the data
// loader, so the same (seed, epoch) gives the same features and a new
// epoch gives new crops; the result does not depend on batch (default 256
// when < 1). The network is left in inference mode. A nil net returns the
// augmented, normalised pixels.
func AugmentedFeatures(ctx context.Context, net *nn.Network, ds data.Dataset, size int, norm data.Norm, epoch int, seed int64, batch int) (feats []float32, labels []int, dim int, err error) {
	if batch < 1 {
		batch = 256
	}
	loader, err := data.NewLoader(ds, data.LoaderConfig{Batch: batch, Workers: 2, Seed: seed, Views: 1,
		Pipeline: data.ProbePipeline(size, norm)})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("augmented features: %w", err)
	}
	feats, labels, dim, err = loaderFeatures(ctx, net, loader, epoch, Backbone)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("augmented features (epoch %d): %w", epoch, err)
	}
	return feats, labels, dim, nil
}

// loaderFeatures runs net in inference mode over one epoch of loader (its
// first view) and returns the layer's outputs (rows x dim), the labels
// (nil when the dataset is unlabelled) and dim. A nil net returns the
// loader's pixels flattened.
func loaderFeatures(ctx context.Context, net *nn.Network, loader *data.Loader, epoch int, layer Layer) ([]float32, []int, int, error) {
	ds := loader.Dataset()
	if net != nil {
		net.SetTraining(false)
	}
	var feats []float32
	var labels []int
	dim := 0
	it := loader.Epoch(ctx, epoch, 0)
	defer it.Close()
	for {
		b, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, 0, fmt.Errorf("features of %s: %w", ds.Name(), err)
		}
		x, err := tensor.FromData(b.X[0], b.N, b.H, b.W, b.C)
		if err != nil {
			return nil, nil, 0, err
		}
		out := x
		switch {
		case net == nil:
			out = &tensor.Tensor{Shape: []int{b.N, b.H * b.W * b.C}, Data: x.Data}
		case layer == Projector:
			_, out, err = net.Forward(0, x)
		default:
			out, err = net.Backbone.Forward(0, x)
		}
		if err != nil {
			return nil, nil, 0, fmt.Errorf("features of %s: %w", ds.Name(), err)
		}
		if feats == nil {
			dim = out.Shape[1]
			feats = make([]float32, 0, ds.Len()*dim)
		}
		feats = append(feats, out.Data...)
		if ds.NumClasses() > 0 {
			labels = append(labels, b.Labels...)
		}
	}
	return feats, labels, dim, nil
}

// RecalibrateBN re-estimates the batch-norm running statistics of net's
// backbone from the first batches*batch images of ds (normalised only, no
// augmentation): training-mode forward passes without backward, so the
// running means and variances follow the data with momentum 0.1. The demo
// uses it to give the random-initialisation baseline statistics that match
// its inputs. net is left in inference mode.
func RecalibrateBN(ctx context.Context, net *nn.Network, ds data.Dataset, size int, norm data.Norm, batches, batch int) error {
	batch = min(batch, ds.Len())
	n := min(ds.Len(), batches*batch)
	loader, err := data.NewLoader(subset{ds, n}, data.LoaderConfig{Batch: batch, Workers: 2, Views: 1, Eval: true,
		DropLast: true, Pipeline: data.IdentityPipeline(size, norm)})
	if err != nil {
		return fmt.Errorf("recalibrating batch norm: %w", err)
	}
	net.SetTraining(true)
	defer net.SetTraining(false)
	it := loader.Epoch(ctx, 0, 0)
	defer it.Close()
	for {
		b, err := it.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("recalibrating batch norm on %s: %w", ds.Name(), err)
		}
		x, err := tensor.FromData(b.X[0], b.N, b.H, b.W, b.C)
		if err != nil {
			return err
		}
		if _, err := net.Backbone.Forward(0, x); err != nil {
			return fmt.Errorf("recalibrating batch norm: %w", err)
		}
	}
}

// Layer selects which features Features returns.
type Layer int

const (
	// Backbone features (before the projector): what linear probes and kNN use.
	Backbone Layer = iota
	// Projector outputs (the embedding the SSL loss sees).
	Projector
)

// Features runs net in inference mode over every image of ds in order
// (normalised with norm at size size, no augmentation) and returns the
// features (N x dim, row-major), the labels (nil when ds is unlabelled) and
// dim. limit > 0 uses only the first limit images. The network is left in
// inference mode (a trainer sets training mode again). A nil net returns the normalised pixels
// themselves (the raw-pixel baseline).
func Features(ctx context.Context, net *nn.Network, ds data.Dataset, size int, norm data.Norm, layer Layer, limit, batch int) ([]float32, []int, int, error) {
	n := ds.Len()
	if limit > 0 && limit < n {
		n = limit
	}
	if batch < 1 {
		batch = 256
	}
	loader, err := data.NewLoader(subset{ds, n}, data.LoaderConfig{Batch: batch, Workers: 2, Views: 1, Eval: true,
		Pipeline: data.IdentityPipeline(size, norm)})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("features: %w", err)
	}
	return loaderFeatures(ctx, net, loader, 0, layer)
}

// subset is the first n images of a dataset.
type subset struct {
	data.Dataset
	n int
}

func (s subset) Len() int { return s.n }
