// Package encoder is the inference face of the toolkit: it loads a
// pretrained network from a checkpoint and turns images into feature
// vectors.
//
//	enc, err := encoder.Load("runs/demo", encoder.Options{})
//	defer enc.Close()
//	feat, err := enc.EmbedImage(img) // img is an image.Image
//
// For whole datasets, model.Features runs enc.Net over a data.Dataset.
package encoder

import (
	"fmt"
	"image"
	"math/rand"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/backends"
	"github.com/corinfomax/corinfomax/tensor"
	xdraw "golang.org/x/image/draw"
)

// Options configures Load.
type Options struct {
	Backend string // a name of backends.Names(); "" is backends.Default
	Threads int    // 0: all cores
}

// Encoder is a pretrained network ready for inference.
type Encoder struct {
	Spec model.Spec
	Net  *nn.Network
	// Size is the image size the network was trained on and Norm its
	// normalisation (zero when the checkpoint does not say); Data is the
	// --data it was trained on ("" when unknown).
	Size int
	Norm data.Norm
	Data string
	// Checkpoint is the file the encoder came from, read back.
	Checkpoint *model.Checkpoint
	// Path is the checkpoint file's path.
	Path    string
	backend ops.Backend
}

// Load reads a checkpoint (a .safetensors file or a run directory) and
// builds its network in inference mode.
func Load(path string, opt Options) (*Encoder, error) {
	ck, err := model.Read(path)
	if err != nil {
		return nil, err
	}
	be, err := backends.New(opt.Backend, opt.Threads, "")
	if err != nil {
		return nil, err
	}
	net, err := model.NewNetwork(be, ck.Spec, rand.New(rand.NewSource(0)))
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("%s: %w", ck.Path, err)
	}
	if err := ck.LoadWeights(net, model.LoadOptions{}); err != nil {
		be.Close()
		return nil, err
	}
	net.SetTraining(false)
	return &Encoder{Spec: ck.Spec, Net: net, Size: ck.Size, Norm: ck.Norm, Data: ck.Data, Checkpoint: ck,
		Path: ck.Path, backend: be}, nil
}

// Close releases the encoder's backend.
func (e *Encoder) Close() error { return e.backend.Close() }

// FeatureDim is the length of a backbone feature vector.
func (e *Encoder) FeatureDim() int { return e.Net.Backbone.FeatureDim() }

// EmbedImage returns the backbone features of one image, resized to the
// training size and normalised with the training constants.
func (e *Encoder) EmbedImage(img image.Image) ([]float32, error) {
	x, err := e.input(img)
	if err != nil {
		return nil, err
	}
	e.Net.SetTraining(false)
	h, err := e.Net.Backbone.Forward(0, x)
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), h.Data...), nil
}

// Classify returns the class a fine-tuned network (a checkpoint with a
// classification head, `corinfomax finetune`) gives one image and the
// logits of every class.
func (e *Encoder) Classify(img image.Image) (int, []float32, error) {
	if e.Net.Head == nil {
		return 0, nil, fmt.Errorf("%s has no classification head (a pretrained network: fine-tune it with corinfomax finetune)", e.Path)
	}
	x, err := e.input(img)
	if err != nil {
		return 0, nil, err
	}
	e.Net.SetTraining(false)
	_, z, err := e.Net.Forward(0, x)
	if err != nil {
		return 0, nil, err
	}
	logits := append([]float32(nil), z.Data...)
	best := 0
	for k, v := range logits {
		if v > logits[best] {
			best = k
		}
	}
	return best, logits, nil
}

// input resizes and normalises img into a 1 x Size x Size x C tensor.
func (e *Encoder) input(img image.Image) (*tensor.Tensor, error) {
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
	return x, nil
}

// Geometry is the image size and normalisation the encoder expects for
// the dataset ds opened from spec: the checkpoint's own, else the
// dataset's defaults (size 32).
func (e *Encoder) Geometry(spec string, ds data.Dataset) (int, data.Norm) {
	size := e.Size
	if size < 1 {
		size = 32
	}
	norm := e.Norm
	if len(norm.Mean) != ds.Channels() {
		norm = data.DefaultNorm(spec, ds.Channels())
	}
	return size, norm
}

// Pixels returns img as the network sees it: resized to the training size,
// normalised with the training constants, Size x Size x C values (HWC),
// laid out as model.Features returns the pixels of a dataset image.
func (e *Encoder) Pixels(img image.Image) ([]float32, error) {
	x, err := e.input(img)
	if err != nil {
		return nil, err
	}
	return x.Data, nil
}

// Backend is the operator backend the encoder runs on.
func (e *Encoder) Backend() ops.Backend { return e.backend }
