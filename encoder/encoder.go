// Package encoder loads a pretrained network from a checkpoint and turns
// images into feature vectors. It is the library face of the toolkit:
//
//	enc, err := encoder.Load("runs/demo", encoder.Options{})
//	defer enc.Close()
//	feat, err := enc.EmbedImage(img) // img is an image.Image
//
// It also builds networks and backends for the trainer and the commands.
package encoder

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
	xdraw "golang.org/x/image/draw"
)

// Metadata keys for evaluation defaults stored by the trainer.
const (
	MetaSize = "corinfomax.size" // training crop size
	MetaData = "corinfomax.data" // the --data the run trained on
	MetaNorm = "corinfomax.norm" // JSON of data.Norm
)

// CheckpointFile is the name of a run directory's checkpoint.
const CheckpointFile = "checkpoint.safetensors"

// Options configures Load.
type Options struct {
	Backend string // "dnnl" (default) or "ref"
	Threads int    // 0: all cores
}

// Encoder is a pretrained network ready for inference.
type Encoder struct {
	Spec ModelSpec
	Net  *nn.Network
	// Size is the image size the network was trained on; Norm its
	// normalisation (from the checkpoint's metadata when present).
	Size int
	Norm data.Norm
	// File is the checkpoint the encoder came from.
	File    *checkpoint.File
	Path    string
	backend ops.Backend
}

// ResolveCheckpoint turns a run directory into its checkpoint path; a file
// path is returned as is.
func ResolveCheckpoint(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if st.IsDir() {
		p := filepath.Join(path, CheckpointFile)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("run directory %s has no %s yet: %w", path, CheckpointFile, err)
		}
		return p, nil
	}
	return path, nil
}

// Load reads a checkpoint (a .safetensors file or a run directory) and
// builds its network in inference mode.
func Load(path string, opt Options) (*Encoder, error) {
	p, err := ResolveCheckpoint(path)
	if err != nil {
		return nil, err
	}
	f, err := checkpoint.Read(p)
	if err != nil {
		return nil, err
	}
	spec, err := SpecOf(f, p)
	if err != nil {
		return nil, err
	}
	be, err := NewBackend(opt.Backend, opt.Threads, "fp32")
	if err != nil {
		return nil, err
	}
	net, err := NewNetwork(be, spec, rand.New(rand.NewSource(0)))
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if err := LoadWeights(f, p, net, LoadOptions{}); err != nil {
		be.Close()
		return nil, err
	}
	net.SetTraining(false)
	e := &Encoder{Spec: spec, Net: net, File: f, Path: p, backend: be, Size: 0}
	if s, ok := f.Metadata[MetaSize]; ok {
		e.Size, _ = strconv.Atoi(s)
	}
	if s, ok := f.Metadata[MetaNorm]; ok {
		_ = json.Unmarshal([]byte(s), &e.Norm)
	}
	return e, nil
}

// Close releases the encoder's backend.
func (e *Encoder) Close() error { return e.backend.Close() }

// FeatureDim is the length of a backbone feature vector.
func (e *Encoder) FeatureDim() int { return e.Net.Backbone.FeatureDim() }

// EmbedImage returns the backbone features of one image, resized to the
// training size and normalised with the training constants.
func (e *Encoder) EmbedImage(img image.Image) ([]float32, error) {
	c := e.Spec.InChannels
	if e.Size < 1 || len(e.Norm.Mean) != c || len(e.Norm.Std) != c {
		return nil, fmt.Errorf("%s: the checkpoint has no image size or normalisation metadata", e.Path)
	}
	dst := image.NewNRGBA(image.Rect(0, 0, e.Size, e.Size))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), xdraw.Src, nil)
	x := tensor.New(1, e.Size, e.Size, c)
	for i := 0; i < e.Size*e.Size; i++ {
		r, g, b := float32(dst.Pix[4*i]), float32(dst.Pix[4*i+1]), float32(dst.Pix[4*i+2])
		if c == 1 {
			v := (0.299*r + 0.587*g + 0.114*b) / 255
			x.Data[i] = (v - e.Norm.Mean[0]) / e.Norm.Std[0]
			continue
		}
		for ch, v := range [3]float32{r, g, b} {
			x.Data[i*3+ch] = (v/255 - e.Norm.Mean[ch]) / e.Norm.Std[ch]
		}
	}
	e.Net.SetTraining(false)
	h, err := e.Net.Backbone.Forward(0, x)
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), h.Data...), nil
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

// Backend is the operator backend the encoder runs on.
func (e *Encoder) Backend() ops.Backend { return e.backend }
