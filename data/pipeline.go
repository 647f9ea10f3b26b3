package data

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// ViewConfig is one view's augmentation, applied in this order (torchvision
// semantics, docs/design.md section 2): RandomResizedCrop(Size, scale
// [ScaleMin, ScaleMax], ratio [RatioMin, RatioMax], bicubic); horizontal flip
// with probability FlipP; ColorJitter(Brightness, Contrast, Saturation, Hue)
// with probability JitterP, its four adjustments in a random order; grayscale
// with probability GrayP; Gaussian blur (sigma ~ U[0.1, 2], kernel
// BlurKernelSize(Size), reflect padding) with probability BlurP; solarize
// (threshold 128/255) with probability SolarizeP; then normalisation.
// Grey (C = 1) images skip saturation, hue and grayscale.
type ViewConfig struct {
	Size                                   int // output side; <= 0 keeps the native size (Identity only)
	ScaleMin, ScaleMax, RatioMin, RatioMax float64
	FlipP, JitterP                         float64
	Brightness, Contrast, Saturation, Hue  float64
	GrayP, BlurP, SolarizeP                float64
	Identity                               bool // no augmentation: resize to Size if needed, normalise
}

// Pipeline is the two-view augmentation of a self-supervised method plus
// the normalisation applied to every output.
type Pipeline struct {
	Views [2]ViewConfig
	Norm  Norm
}

// paperView is the shared part of the paper's two views.
func paperView(size int) ViewConfig {
	return ViewConfig{
		Size: size, ScaleMin: 0.08, ScaleMax: 1, RatioMin: 3.0 / 4, RatioMax: 4.0 / 3,
		FlipP: 0.5, JitterP: 0.8, Brightness: 0.4, Contrast: 0.4, Saturation: 0.2, Hue: 0.1,
		GrayP: 0.2,
	}
}

// PaperPipeline returns the CorInfoMax paper's asymmetric augmentation
// (docs/design.md section 2): view 1 blur p 1.0, solarize p 0; view 2 blur p 0.1,
// solarize p 0.2.
func PaperPipeline(size int, norm Norm) Pipeline {
	v1, v2 := paperView(size), paperView(size)
	v1.BlurP, v1.SolarizeP = 1.0, 0.0
	v2.BlurP, v2.SolarizeP = 0.1, 0.2
	return Pipeline{Views: [2]ViewConfig{v1, v2}, Norm: norm}
}

// IdentityPipeline returns a pipeline that only resizes (when the image is
// not size x size; size <= 0 keeps the native size) and normalises.
func IdentityPipeline(size int, norm Norm) Pipeline {
	v := ViewConfig{Size: size, Identity: true}
	return Pipeline{Views: [2]ViewConfig{v, v}, Norm: norm}
}

// ProbePipeline returns the linear-probe training transform (docs/design.md
// section 3): RandomResizedCrop(size, 0.08-1, 3/4-4/3) and horizontal flip.
func ProbePipeline(size int, norm Norm) Pipeline {
	v := ViewConfig{Size: size, ScaleMin: 0.08, ScaleMax: 1, RatioMin: 3.0 / 4, RatioMax: 4.0 / 3, FlipP: 0.5}
	return Pipeline{Views: [2]ViewConfig{v, v}, Norm: norm}
}

// Validate checks the configuration's ranges.
func (v ViewConfig) Validate() error {
	if v.Identity {
		return nil
	}
	if v.Size <= 0 {
		return fmt.Errorf("data: view size %d must be positive", v.Size)
	}
	if !(v.ScaleMin > 0 && v.ScaleMin <= v.ScaleMax && v.ScaleMax <= 1) {
		return fmt.Errorf("data: crop scale [%g, %g] must satisfy 0 < min <= max <= 1", v.ScaleMin, v.ScaleMax)
	}
	if !(v.RatioMin > 0 && v.RatioMin <= v.RatioMax) {
		return fmt.Errorf("data: crop ratio [%g, %g] must satisfy 0 < min <= max", v.RatioMin, v.RatioMax)
	}
	for name, p := range map[string]float64{"flip": v.FlipP, "jitter": v.JitterP, "grayscale": v.GrayP, "blur": v.BlurP, "solarize": v.SolarizeP} {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("data: %s probability %g outside [0, 1]", name, p)
		}
	}
	if v.Brightness < 0 || v.Contrast < 0 || v.Saturation < 0 || !(v.Hue >= 0 && v.Hue <= 0.5) {
		return fmt.Errorf("data: color jitter (%g, %g, %g, %g) must be non-negative with hue <= 0.5", v.Brightness, v.Contrast, v.Saturation, v.Hue)
	}
	return nil
}

// Validate checks both views and the normalisation for c channels.
func (p Pipeline) Validate(c int) error {
	for i, v := range p.Views {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("view %d: %w", i+1, err)
		}
	}
	if len(p.Norm.Mean) != c || len(p.Norm.Std) != c {
		return fmt.Errorf("data: normalisation has %d means and %d stds for %d channels", len(p.Norm.Mean), len(p.Norm.Std), c)
	}
	for i, s := range p.Norm.Std {
		if !(s > 0) {
			return fmt.Errorf("data: normalisation std[%d] = %g must be positive", i, s)
		}
	}
	return nil
}

// Augmenter applies views to images. It owns scratch buffers and is not safe
// for concurrent use: give each goroutine its own.
type Augmenter struct {
	src, a, b FloatImage
	rs        Resampler
	tmp       []float32
}

// NewAugmenter returns an Augmenter with empty scratch buffers.
func NewAugmenter() *Augmenter { return &Augmenter{} }

// uniform returns a sample of U[lo, hi).
func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }

// ViewFloat applies v to src and leaves the un-normalised result (in
// [0, 1]) in the returned image, which is owned by the Augmenter and valid
// until its next call. All randomness comes from rng.
func (a *Augmenter) ViewFloat(rng *rand.Rand, v ViewConfig, src *Image) (*FloatImage, error) {
	if src.H <= 0 || src.W <= 0 || (src.C != 1 && src.C != 3) || len(src.Pix) != src.H*src.W*src.C {
		return nil, fmt.Errorf("data: invalid image %dx%dx%d with %d bytes", src.H, src.W, src.C, len(src.Pix))
	}
	ToFloat(src, &a.src)
	if v.Identity {
		oh, ow := v.Size, v.Size
		if v.Size <= 0 {
			oh, ow = src.H, src.W
		}
		a.rs.ResizedCrop(&a.src, 0, 0, src.H, src.W, oh, ow, &a.a)
		return &a.a, nil
	}
	if v.Size <= 0 {
		return nil, fmt.Errorf("data: view size %d must be positive", v.Size)
	}
	return a.applyView(v, sampleViewParams(rng, v, src.H, src.W)), nil
}

// viewParams are the random choices of one view: the crop box, whether
// each transform runs, the jitter factors and order, the blur sigma.
type viewParams struct {
	top, left, ch, cw int
	flip              bool
	jitter            bool
	order             []int // jitter order: 0 brightness, 1 contrast, 2 saturation, 3 hue
	bright, contrast  float32
	sat, hue          float32
	gray, blur        bool
	sigma             float64
	solarize          bool
}

// sampleViewParams draws the random choices of v for an h x w image from
// rng (in a fixed order: changing it would change every seeded run).
func sampleViewParams(rng *rand.Rand, v ViewConfig, h, w int) viewParams {
	var p viewParams
	p.top, p.left, p.ch, p.cw = RandomResizedCropParams(rng, h, w, [2]float64{v.ScaleMin, v.ScaleMax}, [2]float64{v.RatioMin, v.RatioMax})
	p.flip = rng.Float64() < v.FlipP
	if p.jitter = rng.Float64() < v.JitterP; p.jitter {
		p.order = rng.Perm(4)
		p.bright = float32(uniform(rng, math.Max(0, 1-v.Brightness), 1+v.Brightness))
		p.contrast = float32(uniform(rng, math.Max(0, 1-v.Contrast), 1+v.Contrast))
		p.sat = float32(uniform(rng, math.Max(0, 1-v.Saturation), 1+v.Saturation))
		p.hue = float32(uniform(rng, -v.Hue, v.Hue))
	}
	p.gray = rng.Float64() < v.GrayP
	if p.blur = rng.Float64() < v.BlurP; p.blur {
		p.sigma = uniform(rng, 0.1, 2.0)
	}
	p.solarize = rng.Float64() < v.SolarizeP
	return p
}

// applyView applies v with the choices p to a.src (already converted to
// float) and returns the result, owned by the Augmenter. ViewFloat calls it
// with sampled choices; the torchvision fixture test with fixed ones.
func (a *Augmenter) applyView(v ViewConfig, p viewParams) *FloatImage {
	im := &a.a
	a.rs.ResizedCrop(&a.src, p.top, p.left, p.ch, p.cw, v.Size, v.Size, im)
	if p.flip {
		FlipHorizontal(im)
	}
	if p.jitter {
		for _, fn := range p.order {
			switch {
			case fn == 0 && v.Brightness > 0:
				AdjustBrightness(im, p.bright)
			case fn == 1 && v.Contrast > 0:
				AdjustContrast(im, p.contrast)
			case fn == 2 && v.Saturation > 0:
				AdjustSaturation(im, p.sat)
			case fn == 3 && v.Hue > 0:
				AdjustHue(im, p.hue)
			}
		}
	}
	if p.gray {
		Grayscale(im)
	}
	if p.blur {
		a.tmp = GaussianBlur(im, GaussianKernel(BlurKernelSize(v.Size), p.sigma), a.tmp)
	}
	if p.solarize {
		Solarize(im, 128.0/255)
	}
	return im
}

// View applies v to src and writes the normalised H x W x C result into
// out, which must have room for it; it returns the output height and width.
func (a *Augmenter) View(rng *rand.Rand, v ViewConfig, norm Norm, src *Image, out []float32) (h, w int, err error) {
	im, err := a.ViewFloat(rng, v, src)
	if err != nil {
		return 0, 0, err
	}
	if len(out) < len(im.Pix) {
		return 0, 0, fmt.Errorf("data: output buffer holds %d values, view needs %d", len(out), len(im.Pix))
	}
	Normalize(im, norm, out)
	return im.H, im.W, nil
}

// EvalFloat applies the deterministic evaluation transform: an image that
// is already size x size (or any image when size <= 0) is kept as is;
// otherwise the shorter side is resized to size*8/7 (bicubic) and the centre
// size x size is cropped, as torchvision's Resize + CenterCrop.
func (a *Augmenter) EvalFloat(size int, src *Image) (*FloatImage, error) {
	if src.H <= 0 || src.W <= 0 || (src.C != 1 && src.C != 3) || len(src.Pix) != src.H*src.W*src.C {
		return nil, fmt.Errorf("data: invalid image %dx%dx%d with %d bytes", src.H, src.W, src.C, len(src.Pix))
	}
	ToFloat(src, &a.src)
	if size <= 0 || (src.H == size && src.W == size) {
		return &a.src, nil
	}
	short := size * 8 / 7
	var rh, rw int
	if src.W <= src.H {
		rw, rh = short, short*src.H/src.W
	} else {
		rh, rw = short, short*src.W/src.H
	}
	a.rs.ResizedCrop(&a.src, 0, 0, src.H, src.W, rh, rw, &a.b)
	if rh < size || rw < size {
		return nil, fmt.Errorf("data: eval resize %dx%d smaller than crop %d", rh, rw, size)
	}
	top := int(math.RoundToEven(float64(rh-size) / 2))
	left := int(math.RoundToEven(float64(rw-size) / 2))
	a.rs.ResizedCrop(&a.b, top, left, size, size, size, size, &a.a)
	return &a.a, nil
}

// Eval applies the evaluation transform and normalisation into out,
// returning the output height and width.
func (a *Augmenter) Eval(size int, norm Norm, src *Image, out []float32) (h, w int, err error) {
	im, err := a.EvalFloat(size, src)
	if err != nil {
		return 0, 0, err
	}
	if len(out) < len(im.Pix) {
		return 0, 0, fmt.Errorf("data: output buffer holds %d values, view needs %d", len(out), len(im.Pix))
	}
	Normalize(im, norm, out)
	return im.H, im.W, nil
}

// Augmentations lists the names AugmentPipeline accepts.
func Augmentations() []string { return []string{"paper", "light", "none"} }

// AugmentPipeline returns the named two-view augmentation at size with
// RandomResizedCrop areas from scaleMin: "paper" (the asymmetric views of
// PaperPipeline), "light" (LightPipeline) or "none" (both views are the
// normalised image).
func AugmentPipeline(name string, size int, scaleMin float64, norm Norm) (Pipeline, error) {
	switch name {
	case "none":
		return IdentityPipeline(size, norm), nil
	case "light":
		return LightPipeline(size, scaleMin, norm), nil
	case "paper":
		p := PaperPipeline(size, norm)
		for v := range p.Views {
			p.Views[v].ScaleMin = scaleMin
		}
		return p, nil
	}
	return Pipeline{}, fmt.Errorf("unknown augmentation %q (want paper, light or none)", name)
}

// LightPipeline is the CPU recipe's augmentation for small greyscale images:
// the paper's asymmetric pipeline with crops from scaleMin and no blur
// (a 28-pixel image has little high-frequency content to lose).
func LightPipeline(size int, scaleMin float64, norm Norm) Pipeline {
	p := PaperPipeline(size, norm)
	for v := range p.Views {
		p.Views[v].ScaleMin = scaleMin
		p.Views[v].BlurP = 0
	}
	return p
}
