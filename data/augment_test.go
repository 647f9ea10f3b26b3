package data

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/draw"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func floatImg(h, w, c int, f func(y, x, k int) float32) *FloatImage {
	im := &FloatImage{}
	im.Resize(h, w, c)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for k := 0; k < c; k++ {
				im.Pix[(y*w+x)*c+k] = f(y, x, k)
			}
		}
	}
	return im
}

func TestFlip(t *testing.T) {
	im := floatImg(2, 3, 2, func(y, x, k int) float32 { return float32(100*y + 10*x + k) })
	FlipHorizontal(im)
	for y := 0; y < 2; y++ {
		for x := 0; x < 3; x++ {
			for k := 0; k < 2; k++ {
				if got, want := im.Pix[(y*3+x)*2+k], float32(100*y+10*(2-x)+k); got != want {
					t.Fatalf("(%d,%d,%d) = %v want %v", y, x, k, got, want)
				}
			}
		}
	}
}

func TestCropIdentityResize(t *testing.T) {
	src := floatImg(6, 7, 3, func(y, x, k int) float32 { return float32(y*7+x) / 100 * float32(k+1) / 3 })
	var rs Resampler
	var dst FloatImage
	rs.ResizedCrop(src, 2, 1, 3, 4, 3, 4, &dst)
	for y := 0; y < 3; y++ {
		for x := 0; x < 4; x++ {
			for k := 0; k < 3; k++ {
				if got, want := dst.Pix[(y*4+x)*3+k], src.Pix[((y+2)*7+x+1)*3+k]; got != want {
					t.Fatalf("(%d,%d,%d) = %v want %v", y, x, k, got, want)
				}
			}
		}
	}
}

func TestBicubicProperties(t *testing.T) {
	// Catmull-Rom (a = -0.5): 1 at 0, 0 at 1 and 2, 9/16 at 0.5, -1/16 at 1.5.
	for x, want := range map[float64]float64{0: 1, 1: 0, 2: 0, 0.5: 0.5625, -1.5: -0.0625, 3: 0} {
		if got := cubic(x); !near(got, want, 1e-12) {
			t.Fatalf("cubic(%v) = %v want %v", x, got, want)
		}
	}
	var rs Resampler
	var dst FloatImage
	// A constant image stays constant at any scale.
	c := floatImg(5, 9, 1, func(y, x, k int) float32 { return 0.375 })
	for _, sz := range [][2]int{{13, 4}, {2, 30}, {5, 9}} {
		rs.ResizedCrop(c, 0, 0, 5, 9, sz[0], sz[1], &dst)
		for i, v := range dst.Pix {
			if !near(float64(v), 0.375, 1e-6) {
				t.Fatalf("constant %v: pixel %d = %v", sz, i, v)
			}
		}
	}
	// Catmull-Rom reproduces linear functions away from the borders: a
	// horizontal ramp v(x) = 0.1 + 0.05 x upscaled 2x samples v at
	// source coordinate (X + 0.5) / 2 - 0.5.
	ramp := floatImg(1, 12, 1, func(y, x, k int) float32 { return 0.1 + 0.05*float32(x) })
	rs.ResizedCrop(ramp, 0, 0, 1, 12, 1, 24, &dst)
	for X := 4; X < 20; X++ {
		sx := (float64(X)+0.5)/2 - 0.5
		if want := 0.1 + 0.05*sx; !near(float64(dst.Pix[X]), want, 1e-5) {
			t.Fatalf("ramp x=%d: %v want %v", X, dst.Pix[X], want)
		}
	}
	// Downscaling by 2 with the stretched kernel (PIL antialias): output 0
	// has centre 1 and support 4, so taps x = 0..4 with weights
	// cubic((x - 1 + 0.5) / 2), renormalised; an impulse at x = 0 gives
	// the first weight.
	step := floatImg(1, 8, 1, func(y, x, k int) float32 {
		if x == 0 {
			return 1
		}
		return 0
	})
	rs.ResizedCrop(step, 0, 0, 1, 8, 1, 4, &dst)
	sum := 0.0
	for x := 0; x <= 4; x++ {
		sum += cubic((float64(x) - 0.5) / 2)
	}
	if want := cubic(-0.25) / sum; !near(float64(dst.Pix[0]), want, 1e-6) {
		t.Fatalf("downscale tap: %v want %v", dst.Pix[0], want)
	}
}

func TestSolarizeGreyNormalizeJitter(t *testing.T) {
	im := floatImg(1, 4, 1, func(y, x, k int) float32 { return []float32{0, 127.0 / 255, 128.0 / 255, 1}[x] })
	Solarize(im, 128.0/255)
	want := []float32{0, 127.0 / 255, 1 - float32(128.0/255), 0}
	for i := range want {
		if im.Pix[i] != want[i] {
			t.Fatalf("solarize %d: %v want %v", i, im.Pix[i], want[i])
		}
	}
	rgb := floatImg(1, 2, 3, func(y, x, k int) float32 { return [][]float32{{1, 0, 0}, {0.2, 0.4, 0.6}}[x][k] })
	g1 := 0.299*0.2 + 0.587*0.4 + 0.114*0.6
	Grayscale(rgb)
	for k := 0; k < 3; k++ {
		if !near(float64(rgb.Pix[k]), 0.299, 1e-6) || !near(float64(rgb.Pix[3+k]), g1, 1e-6) {
			t.Fatalf("grayscale %v", rgb.Pix)
		}
	}
	n := Norm{Mean: []float32{0.5, 0.25, 0}, Std: []float32{0.5, 0.25, 2}}
	x := floatImg(1, 1, 3, func(y, x, k int) float32 { return 1 })
	out := make([]float32, 3)
	Normalize(x, n, out)
	if out[0] != 1 || out[1] != 3 || out[2] != 0.5 {
		t.Fatalf("normalize %v", out)
	}
	b := floatImg(1, 2, 1, func(y, x, k int) float32 { return []float32{0.5, 0.9}[x] })
	AdjustBrightness(b, 1.25)
	if !near(float64(b.Pix[0]), 0.625, 1e-6) || b.Pix[1] != 1 {
		t.Fatalf("brightness %v", b.Pix)
	}
	// Contrast of a grey image: mean 0.5, factor 0.5 -> halfway to mean.
	cimg := floatImg(1, 2, 1, func(y, x, k int) float32 { return []float32{0.2, 0.8}[x] })
	AdjustContrast(cimg, 0.5)
	if !near(float64(cimg.Pix[0]), 0.35, 1e-6) || !near(float64(cimg.Pix[1]), 0.65, 1e-6) {
		t.Fatalf("contrast %v", cimg.Pix)
	}
	// Saturation 0 gives the grey image; saturation of pure red by 2 clamps.
	s := floatImg(1, 1, 3, func(y, x, k int) float32 { return []float32{0.2, 0.4, 0.6}[k] })
	AdjustSaturation(s, 0)
	for k := 0; k < 3; k++ {
		if !near(float64(s.Pix[k]), g1, 1e-6) {
			t.Fatalf("saturation 0: %v", s.Pix)
		}
	}
}

func TestHue(t *testing.T) {
	// Pure red shifted by a third of a turn is pure green; by -1/3 blue.
	for _, c := range []struct {
		f    float32
		want [3]float32
	}{{1.0 / 3, [3]float32{0, 1, 0}}, {-1.0 / 3, [3]float32{0, 0, 1}}, {0, [3]float32{1, 0, 0}}} {
		im := floatImg(1, 1, 3, func(y, x, k int) float32 { return []float32{1, 0, 0}[k] })
		AdjustHue(im, c.f)
		for k := 0; k < 3; k++ {
			if !near(float64(im.Pix[k]), float64(c.want[k]), 1e-5) {
				t.Fatalf("hue %v: %v want %v", c.f, im.Pix, c.want)
			}
		}
	}
	// Shift 0 is the identity on random colours (HSV round trip).
	rng := rand.New(rand.NewPCG(1, 2))
	im := floatImg(4, 4, 3, func(y, x, k int) float32 { return rng.Float32() })
	orig := append([]float32(nil), im.Pix...)
	AdjustHue(im, 0)
	for i := range orig {
		if !near(float64(im.Pix[i]), float64(orig[i]), 1e-5) {
			t.Fatalf("hue 0 changed pixel %d: %v -> %v", i, orig[i], im.Pix[i])
		}
	}
}

func TestBlur(t *testing.T) {
	k := GaussianKernel(5, 1.0)
	sum := 0.0
	for _, v := range k {
		sum += float64(v)
	}
	if !near(sum, 1, 1e-6) || !near(float64(k[0]/k[2]), math.Exp(-2), 1e-6) {
		t.Fatalf("kernel %v", k)
	}
	if BlurKernelSize(224) != 23 || BlurKernelSize(32) != 3 || BlurKernelSize(28) != 3 || BlurKernelSize(96) != 9 {
		t.Fatal("kernel sizes")
	}
	for i, want := range map[int]int{-1: 1, -2: 2, 5: 3, 4: 4, 0: 0} {
		if got := reflect(i, 5); got != want {
			t.Fatalf("reflect(%d, 5) = %d want %d", i, got, want)
		}
	}
	// A 1x1 impulse in the corner of a 3x3 image with kernel 3: with
	// reflect padding the corner gets k1*k1, its neighbour k0*k1 + k2*k1
	// reflected... check against the direct 2-D sum.
	kk := GaussianKernel(3, 0.8)
	im := floatImg(3, 3, 1, func(y, x, c int) float32 {
		if y == 0 && x == 0 {
			return 1
		}
		return 0
	})
	src := append([]float32(nil), im.Pix...)
	GaussianBlur(im, kk, nil)
	for y := 0; y < 3; y++ {
		for x := 0; x < 3; x++ {
			var want float64
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					want += float64(kk[dy+1]*kk[dx+1]) * float64(src[reflect(y+dy, 3)*3+reflect(x+dx, 3)])
				}
			}
			if !near(float64(im.Pix[y*3+x]), want, 1e-6) {
				t.Fatalf("blur (%d,%d) = %v want %v", y, x, im.Pix[y*3+x], want)
			}
		}
	}
}

func TestRandomResizedCropStatistics(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	scale := [2]float64{0.08, 1}
	ratio := [2]float64{3.0 / 4, 4.0 / 3}
	const H, W = 96, 128
	var small, large int
	for i := 0; i < 5000; i++ {
		top, left, h, w := RandomResizedCropParams(rng, H, W, scale, ratio)
		if top < 0 || left < 0 || h <= 0 || w <= 0 || top+h > H || left+w > W {
			t.Fatalf("box %d %d %d %d outside %dx%d", top, left, h, w, H, W)
		}
		// Rounding of w and h to integers moves area and ratio a little.
		a := float64(h*w) / (H * W)
		r := float64(w) / float64(h)
		tolA := (float64(h+w) + 1) / (H * W)
		if a < scale[0]-tolA || a > scale[1]+tolA {
			t.Fatalf("area fraction %v outside %v", a, scale)
		}
		tolR := 1/float64(h) + float64(w)/float64(h*h)
		if r < ratio[0]-tolR || r > ratio[1]+tolR {
			t.Fatalf("ratio %v (%dx%d) outside %v", r, w, h, ratio)
		}
		if a < 0.3 {
			small++
		} else if a > 0.7 {
			large++
		}
	}
	// Accepted areas are roughly uniform on [0.08, 1] (large ones are
	// rejected more often when they do not fit): both ends are populated.
	if small < 1000 || large < 500 {
		t.Fatalf("area distribution: %d below 0.3, %d above 0.7 of 5000", small, large)
	}
	// Fallback: a 10 x 100 strip can never fit a crop with ratio <= 4/3 of
	// area >= 0.9, so the centre crop clamped to ratio 4/3 is returned.
	top, left, h, w := RandomResizedCropParams(rng, 10, 100, [2]float64{0.9, 1}, ratio)
	if h != 10 || w != 13 || top != 0 || left != (100-13)/2 {
		t.Fatalf("fallback %d %d %d %d", top, left, h, w)
	}
}

func TestViewDeterministicAndShapes(t *testing.T) {
	src := &Image{H: 20, W: 30, C: 3, Pix: make([]uint8, 20*30*3)}
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	p := PaperPipeline(16, DefaultNorm("folder:x", 3))
	a := NewAugmenter()
	out1 := make([]float32, 16*16*3)
	out2 := make([]float32, 16*16*3)
	h, w, err := a.View(rand.New(rand.NewPCG(9, 9)), p.Views[1], p.Norm, src, out1)
	if err != nil || h != 16 || w != 16 {
		t.Fatalf("view: %v %dx%d", err, h, w)
	}
	NewAugmenter().View(rand.New(rand.NewPCG(9, 9)), p.Views[1], p.Norm, src, out2)
	for i := range out1 {
		if out1[i] != out2[i] {
			t.Fatal("same seed, different view")
		}
	}
	// Eval of a 20x30 image at 14: resize shorter side to 16 (16x24), crop
	// the centre 14x14.
	e, err := a.EvalFloat(14, src)
	if err != nil || e.H != 14 || e.W != 14 {
		t.Fatalf("eval: %v", err)
	}
	// Eval at native size is the identity.
	e, _ = a.EvalFloat(0, src)
	if e.H != 20 || e.Pix[5] != float32(src.Pix[5])/255 {
		t.Fatal("eval identity")
	}
}

// TestResampleMatchesXImageDraw compares the float resampler with an
// independent implementation of the same filter, golang.org/x/image/draw's
// CatmullRom (uint8 RGBA, antialiased when downscaling), run as PIL runs
// it: a horizontal pass into a uint8 image (which clamps the kernel's
// overshoot at edges), then a vertical pass. They must agree to within the
// reference's two conversions to uint8, which truncate: below 1 after the
// vertical pass plus 1 times the vertical taps' sum of |weights| (at most
// about 1.15) after the horizontal one, 2.2 levels in all (measured 1.9).
// Without the clamp between the passes (x/image/draw in one pass, or our
// resampler before it clamped) they differ by 17 levels at the edges.
func TestResampleMatchesXImageDraw(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 32, 32))
	im := &Image{H: 32, W: 32, C: 3, Pix: make([]uint8, 32*32*3)}
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			for k := 0; k < 3; k++ {
				v := byte((y*y + 3*x*k + x) % 256)
				src.Pix[(y*32+x)*4+k] = v
				im.Pix[(y*32+x)*3+k] = v
			}
			src.Pix[(y*32+x)*4+3] = 255
		}
	}
	var f FloatImage
	ToFloat(im, &f)
	var rs Resampler
	var d FloatImage
	for _, box := range [][4]int{{3, 4, 17, 20}, {0, 0, 32, 32}, {2, 2, 30, 28}, {10, 0, 5, 9}} {
		for _, out := range []int{32, 16, 48, 7} {
			mid := image.NewRGBA(image.Rect(0, 0, out, box[2]))
			draw.CatmullRom.Scale(mid, mid.Bounds(), src, image.Rect(box[1], box[0], box[1]+box[3], box[0]+box[2]), draw.Src, nil)
			ref := image.NewRGBA(image.Rect(0, 0, out, out))
			draw.CatmullRom.Scale(ref, ref.Bounds(), mid, mid.Bounds(), draw.Src, nil)
			rs.ResizedCrop(&f, box[0], box[1], box[2], box[3], out, out, &d)
			for p := 0; p < out*out; p++ {
				for k := 0; k < 3; k++ {
					if diff := math.Abs(float64(d.Pix[3*p+k])*255 - float64(ref.Pix[4*p+k])); diff > 2.2 {
						t.Fatalf("box %v out %d pixel %d channel %d: %v vs x/image/draw %d", box, out, p, k, d.Pix[3*p+k]*255, ref.Pix[4*p+k])
					}
				}
			}
		}
	}
}
