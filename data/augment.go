package data

import (
	"math"
	"math/rand/v2"
)

// FloatImage is an HWC float32 image, pixels nominally in [0, 1].
type FloatImage struct {
	H, W, C int
	Pix     []float32
}

// Resize makes im an h x w x c image, reusing the capacity of im.Pix
// (contents are not preserved).
func (im *FloatImage) Resize(h, w, c int) {
	im.H, im.W, im.C = h, w, c
	n := h * w * c
	if cap(im.Pix) < n {
		im.Pix = make([]float32, n)
	}
	im.Pix = im.Pix[:n]
}

// ToFloat converts src's uint8 pixels to float32 in [0, 1] (x / 255).
func ToFloat(src *Image, dst *FloatImage) {
	dst.Resize(src.H, src.W, src.C)
	for i, v := range src.Pix {
		dst.Pix[i] = float32(v) / 255
	}
}

// RandomResizedCropParams samples a crop box (top, left, height, width) of an
// h x w image exactly as torchvision 0.14's RandomResizedCrop.get_params:
// up to 10 attempts with area fraction ~ U[scale] and log-uniform aspect
// ratio (width/height) in [ratio]; w and h rounded half to even as Python's
// round; on failure a centre crop with the ratio clamped to [ratio].
func RandomResizedCropParams(rng *rand.Rand, h, w int, scale, ratio [2]float64) (top, left, ch, cw int) {
	area := float64(h * w)
	logLo, logHi := math.Log(ratio[0]), math.Log(ratio[1])
	for attempt := 0; attempt < 10; attempt++ {
		target := area * (scale[0] + (scale[1]-scale[0])*rng.Float64())
		ar := math.Exp(logLo + (logHi-logLo)*rng.Float64())
		cw = int(math.RoundToEven(math.Sqrt(target * ar)))
		ch = int(math.RoundToEven(math.Sqrt(target / ar)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			top = rng.IntN(h - ch + 1)
			left = rng.IntN(w - cw + 1)
			return top, left, ch, cw
		}
	}
	in := float64(w) / float64(h)
	switch {
	case in < math.Min(ratio[0], ratio[1]):
		cw = w
		ch = int(math.RoundToEven(float64(cw) / math.Min(ratio[0], ratio[1])))
	case in > math.Max(ratio[0], ratio[1]):
		ch = h
		cw = int(math.RoundToEven(float64(ch) * math.Max(ratio[0], ratio[1])))
	default:
		cw, ch = w, h
	}
	return (h - ch) / 2, (w - cw) / 2, ch, cw
}

// cubic is the Catmull-Rom (a = -0.5) bicubic kernel used by PIL.
func cubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// resampleWeights computes PIL-style separable resampling taps mapping in
// source samples to out: for output i the taps start at first[i] and have
// weights w[i*taps : i*taps+count[i]]. When downscaling the kernel is
// stretched by the scale factor (antialiasing), as PIL does.
type resampleWeights struct {
	taps         int
	first, count []int
	w            []float32
}

func (rw *resampleWeights) compute(in, out int) {
	scale := float64(in) / float64(out)
	fs := math.Max(scale, 1)
	support := 2 * fs
	rw.taps = int(math.Ceil(support))*2 + 1
	rw.first = growInts(rw.first, out)
	rw.count = growInts(rw.count, out)
	rw.w = growFloats(rw.w, out*rw.taps)
	for i := 0; i < out; i++ {
		center := (float64(i) + 0.5) * scale
		lo := int(center - support + 0.5)
		if lo < 0 {
			lo = 0
		}
		hi := int(center + support + 0.5)
		if hi > in {
			hi = in
		}
		n := hi - lo
		if n > rw.taps {
			n = rw.taps
		}
		ws := rw.w[i*rw.taps : i*rw.taps+rw.taps]
		sum := 0.0
		for k := 0; k < n; k++ {
			v := cubic((float64(k+lo) - center + 0.5) / fs)
			ws[k] = float32(v)
			sum += v
		}
		if sum != 0 {
			for k := 0; k < n; k++ {
				ws[k] = float32(float64(ws[k]) / sum)
			}
		}
		rw.first[i], rw.count[i] = lo, n
	}
}

func growInts(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

func growFloats(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// Resampler resizes float images with PIL's bicubic filter (Catmull-Rom,
// a = -0.5, antialiased when downscaling), horizontal pass then vertical,
// clamping the result of each pass to [0, 1] as PIL does (its intermediate
// image is uint8; only the rounding to 1/255 is not reproduced). This is what torchvision 0.14 applies when
// its transforms run on PIL images, as in the reference implementation; on
// tensors torchvision uses a = -0.75 without antialiasing instead (a small
// difference in edge sharpness). It agrees with golang.org/x/image/draw's
// CatmullRom to within that library's uint8 rounding (see the tests) at the
// same speed, without the RGBA conversions. It keeps scratch buffers between
// calls (the zero value is ready to use) and is not safe for concurrent use.
type Resampler struct {
	wx, wy resampleWeights
	tmp    []float32
}

// ResizedCrop resamples the box (top, left, ch, cw) of src to an oh x ow
// image in dst. A box of the output size is copied exactly.
func (r *Resampler) ResizedCrop(src *FloatImage, top, left, ch, cw, oh, ow int, dst *FloatImage) {
	c := src.C
	dst.Resize(oh, ow, c)
	if ch == oh && cw == ow {
		for y := 0; y < oh; y++ {
			o := ((top+y)*src.W + left) * c
			copy(dst.Pix[y*ow*c:(y+1)*ow*c], src.Pix[o:o+ow*c])
		}
		return
	}
	r.wx.compute(cw, ow)
	r.wy.compute(ch, oh)
	// Horizontal pass: ch rows x ow columns, clamped to [0, 1] as PIL's
	// uint8 intermediate image is (the kernel's lobes overshoot at edges).
	r.tmp = growFloats(r.tmp, ch*ow*c)
	for y := 0; y < ch; y++ {
		row := src.Pix[((top+y)*src.W+left)*c : ((top+y)*src.W+left+cw)*c]
		out := r.tmp[y*ow*c : (y+1)*ow*c]
		for x := 0; x < ow; x++ {
			f, n := r.wx.first[x], r.wx.count[x]
			ws := r.wx.w[x*r.wx.taps : x*r.wx.taps+n]
			px := row[f*c : (f+n)*c]
			if c == 3 {
				var s0, s1, s2 float32
				for k, w := range ws {
					p := px[3*k : 3*k+3]
					s0 += w * p[0]
					s1 += w * p[1]
					s2 += w * p[2]
				}
				out[3*x], out[3*x+1], out[3*x+2] = clamp01(s0), clamp01(s1), clamp01(s2)
				continue
			}
			for ch := 0; ch < c; ch++ {
				var s float32
				for k, w := range ws {
					s += w * px[k*c+ch]
				}
				out[x*c+ch] = clamp01(s)
			}
		}
	}
	// Vertical pass: each output row is a weighted sum of intermediate rows.
	rowLen := ow * c
	for y := 0; y < oh; y++ {
		f, n := r.wy.first[y], r.wy.count[y]
		ws := r.wy.w[y*r.wy.taps : y*r.wy.taps+n]
		out := dst.Pix[y*rowLen : (y+1)*rowLen]
		for i := range out {
			out[i] = 0
		}
		for k, w := range ws {
			in := r.tmp[(f+k)*rowLen : (f+k+1)*rowLen]
			for i, v := range in {
				out[i] += w * v
			}
		}
		for i, v := range out {
			out[i] = clamp01(v)
		}
	}
}

func clamp01(v float32) float32 {
	return min(max(v, 0), 1)
}

// FlipHorizontal mirrors im left-right in place.
func FlipHorizontal(im *FloatImage) {
	c := im.C
	for y := 0; y < im.H; y++ {
		row := im.Pix[y*im.W*c : (y+1)*im.W*c]
		for l, r := 0, im.W-1; l < r; l, r = l+1, r-1 {
			for k := 0; k < c; k++ {
				row[l*c+k], row[r*c+k] = row[r*c+k], row[l*c+k]
			}
		}
	}
}

// Grey weights of ITU-R 601-2 luma, as PIL's convert("L").
const (
	lumaR = 0.299
	lumaG = 0.587
	lumaB = 0.114
)

// luma returns the grey value of pixel i of a 3-channel image.
func luma(p []float32, i int) float32 {
	return lumaR*p[3*i] + lumaG*p[3*i+1] + lumaB*p[3*i+2]
}

// AdjustBrightness multiplies every pixel by f and clamps to [0, 1].
func AdjustBrightness(im *FloatImage, f float32) {
	for i, v := range im.Pix {
		im.Pix[i] = clamp01(v * f)
	}
}

// AdjustContrast blends im with the mean of its grey image:
// x' = clamp(f x + (1 - f) mean).
func AdjustContrast(im *FloatImage, f float32) {
	var sum float64
	n := im.H * im.W
	if im.C == 3 {
		for i := 0; i < n; i++ {
			sum += float64(luma(im.Pix, i))
		}
	} else {
		for _, v := range im.Pix {
			sum += float64(v)
		}
	}
	mean := float32(sum / float64(n))
	for i, v := range im.Pix {
		im.Pix[i] = clamp01(f*v + (1-f)*mean)
	}
}

// AdjustSaturation blends each RGB pixel with its grey value:
// x' = clamp(f x + (1 - f) grey). Grey images are unchanged.
func AdjustSaturation(im *FloatImage, f float32) {
	if im.C != 3 {
		return
	}
	for i := 0; i < im.H*im.W; i++ {
		g := luma(im.Pix, i)
		for k := 0; k < 3; k++ {
			im.Pix[3*i+k] = clamp01(f*im.Pix[3*i+k] + (1-f)*g)
		}
	}
}

// AdjustHue shifts the hue of each RGB pixel by f (in turns, f in
// [-0.5, 0.5]) through HSV, as torchvision's tensor adjust_hue. Grey images
// are unchanged.
func AdjustHue(im *FloatImage, f float32) {
	if im.C != 3 {
		return
	}
	for i := 0; i < im.H*im.W; i++ {
		p := im.Pix[3*i : 3*i+3]
		h, s, v := rgbToHSV(p[0], p[1], p[2])
		h += f
		h -= float32(math.Floor(float64(h))) // Python's (h + f) % 1
		if h >= 1 {
			h = 0
		}
		p[0], p[1], p[2] = hsvToRGB(h, s, v)
	}
}

// rgbToHSV follows torchvision's _rgb2hsv.
func rgbToHSV(r, g, b float32) (h, s, v float32) {
	maxc := max(r, g, b)
	minc := min(r, g, b)
	if maxc == minc {
		return 0, 0, maxc
	}
	cr := maxc - minc
	s = cr / maxc
	rc := (maxc - r) / cr
	gc := (maxc - g) / cr
	bc := (maxc - b) / cr
	switch {
	case maxc == r:
		h = bc - gc
	case maxc == g:
		h = 2 + rc - bc
	default:
		h = 4 + gc - rc
	}
	h = h/6 + 1 // in [0, 2): fmod(h, 1) for positive h
	h -= float32(int(h))
	return h, s, maxc
}

// hsvToRGB follows torchvision's _hsv2rgb.
func hsvToRGB(h, s, v float32) (r, g, b float32) {
	i := float32(math.Floor(float64(h * 6)))
	f := h*6 - i
	p := clamp01(v * (1 - s))
	q := clamp01(v * (1 - s*f))
	t := clamp01(v * (1 - s*(1-f)))
	switch ((int(i) % 6) + 6) % 6 {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	default:
		return v, p, q
	}
}

// Grayscale replaces each RGB pixel by its luma (0.299, 0.587, 0.114),
// keeping 3 channels. Grey images are unchanged.
func Grayscale(im *FloatImage) {
	if im.C != 3 {
		return
	}
	for i := 0; i < im.H*im.W; i++ {
		g := luma(im.Pix, i)
		im.Pix[3*i], im.Pix[3*i+1], im.Pix[3*i+2] = g, g, g
	}
}

// Solarize inverts pixels at or above threshold: x >= t -> 1 - x.
func Solarize(im *FloatImage, threshold float32) {
	for i, v := range im.Pix {
		if v >= threshold {
			im.Pix[i] = 1 - v
		}
	}
}

// BlurKernelSize returns the Gaussian blur kernel size for images of the
// given side: an odd size close to 10% of it (23 for 224, 3 for 32), at
// least 3.
func BlurKernelSize(side int) int {
	k := side / 10
	if k%2 == 0 {
		k++
	}
	if k < 3 {
		k = 3
	}
	return k
}

// GaussianKernel returns torchvision's 1-D Gaussian kernel: size points on
// [-(size-1)/2, (size-1)/2], exp(-x^2 / (2 sigma^2)), normalised to sum 1.
func GaussianKernel(size int, sigma float64) []float32 {
	k := make([]float32, size)
	half := float64(size-1) / 2
	sum := 0.0
	for i := range k {
		x := -half + float64(i)
		v := math.Exp(-0.5 * (x / sigma) * (x / sigma))
		k[i] = float32(v)
		sum += v
	}
	for i := range k {
		k[i] = float32(float64(k[i]) / sum)
	}
	return k
}

// reflect maps index i into [0, n) by reflection without repeating the
// edge sample (numpy/PyTorch "reflect" padding).
func reflect(i, n int) int {
	if n == 1 {
		return 0
	}
	period := 2 * (n - 1)
	i %= period
	if i < 0 {
		i += period
	}
	if i >= n {
		i = period - i
	}
	return i
}

// GaussianBlur convolves im with the separable kernel (from GaussianKernel)
// using reflect padding; tmp is scratch (grown as needed) and returned.
func GaussianBlur(im *FloatImage, kernel []float32, tmp []float32) []float32 {
	h, w, c := im.H, im.W, im.C
	half := len(kernel) / 2
	// Layout of tmp: the horizontally blurred image, then one reflect-padded
	// row, then the reflected source row of every vertical tap position.
	n := len(im.Pix)
	padW := (w + 2*half) * c
	tmp = growFloats(tmp, n+padW)
	out, pad := tmp[:n], tmp[n:n+padW]
	for y := 0; y < h; y++ {
		row := im.Pix[y*w*c : (y+1)*w*c]
		for x := -half; x < w+half; x++ {
			copy(pad[(x+half)*c:(x+half+1)*c], row[reflect(x, w)*c:(reflect(x, w)+1)*c])
		}
		o := out[y*w*c : (y+1)*w*c]
		for i := range o {
			var s float32
			for t, kv := range kernel {
				s += kv * pad[i+t*c]
			}
			o[i] = s
		}
	}
	rowLen := w * c
	for y := 0; y < h; y++ {
		dst := im.Pix[y*rowLen : (y+1)*rowLen]
		for i := range dst {
			dst[i] = 0
		}
		for t, kv := range kernel {
			sy := reflect(y+t-half, h)
			src := out[sy*rowLen : (sy+1)*rowLen]
			for i, v := range src {
				dst[i] += kv * v
			}
		}
	}
	return tmp
}

// Normalize writes (x - Mean[c]) / Std[c] of im into out (len H*W*C).
func Normalize(im *FloatImage, n Norm, out []float32) {
	c := im.C
	out = out[:len(im.Pix)]
	if c == 3 {
		m0, m1, m2 := n.Mean[0], n.Mean[1], n.Mean[2]
		s0, s1, s2 := n.Std[0], n.Std[1], n.Std[2]
		for i := 0; i+2 < len(out); i += 3 {
			p := im.Pix[i : i+3]
			o := out[i : i+3]
			o[0] = (p[0] - m0) / s0
			o[1] = (p[1] - m1) / s1
			o[2] = (p[2] - m2) / s2
		}
		return
	}
	for i, v := range im.Pix {
		k := i % c
		out[i] = (v - n.Mean[k]) / n.Std[k]
	}
}
