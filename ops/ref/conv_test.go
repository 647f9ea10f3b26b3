package ref

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

var convSpecs = []ops.ConvSpec{
	{N: 2, H: 5, W: 4, C: 3, K: 4, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true},
	{N: 1, H: 7, W: 6, C: 2, K: 3, KH: 3, KW: 3, Stride: 2, Pad: 0},
	{N: 3, H: 4, W: 5, C: 3, K: 2, KH: 1, KW: 1, Stride: 1, Pad: 0, Bias: true},
	{N: 2, H: 9, W: 8, C: 2, K: 3, KH: 7, KW: 7, Stride: 2, Pad: 3, Bias: true},
	{N: 2, H: 6, W: 6, C: 1, K: 2, KH: 1, KW: 1, Stride: 2, Pad: 0},
	{N: 1, H: 5, W: 3, C: 5, K: 1, KH: 3, KW: 3, Stride: 2, Pad: 1},
	{N: 3, H: 3, W: 4, C: 2, K: 3, KH: 2, KW: 3, Stride: 1, Pad: 1, Bias: true},
}

// naiveConv computes the convolution with explicit zero padding and loops in
// output-channel-major order, independently of ConvForward.
func naiveConv(s ops.ConvSpec, x, w, b []float64) []float64 {
	hp, wp := s.H+2*s.Pad, s.W+2*s.Pad
	// padded[n][c][h][w] (NCHW)
	padded := make([]float64, s.N*s.C*hp*wp)
	for n := 0; n < s.N; n++ {
		for h := 0; h < s.H; h++ {
			for w := 0; w < s.W; w++ {
				for c := 0; c < s.C; c++ {
					padded[((n*s.C+c)*hp+h+s.Pad)*wp+w+s.Pad] = x[((n*s.H+h)*s.W+w)*s.C+c]
				}
			}
		}
	}
	oh, ow := s.OutHW()
	y := make([]float64, s.N*oh*ow*s.K)
	for k := 0; k < s.K; k++ {
		for n := 0; n < s.N; n++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					sum := 0.0
					if b != nil {
						sum = b[k]
					}
					for c := 0; c < s.C; c++ {
						for u := 0; u < s.KH; u++ {
							for v := 0; v < s.KW; v++ {
								sum += padded[((n*s.C+c)*hp+i*s.Stride+u)*wp+j*s.Stride+v] * w[((k*s.C+c)*s.KH+u)*s.KW+v]
							}
						}
					}
					y[((n*oh+i)*ow+j)*s.K+k] = sum
				}
			}
		}
	}
	return y
}

// convInputs returns random x, w, b (nil without bias) for s.
func convInputs(rng *rand.Rand, s ops.ConvSpec) (x, w, b []float64) {
	x = randSlice(rng, s.N*s.H*s.W*s.C)
	w = randSlice(rng, s.K*s.C*s.KH*s.KW)
	if s.Bias {
		b = randSlice(rng, s.K)
	}
	return x, w, b
}

func TestConvForwardHand(t *testing.T) {
	// 3x3 input 1..9, kernel [[1,0],[0,-1]]: y[i,j] = x[i,j] - x[i+1,j+1] = -4.
	s := ops.ConvSpec{N: 1, H: 3, W: 3, C: 1, K: 1, KH: 2, KW: 2, Stride: 1, Pad: 0}
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	w := []float64{1, 0, 0, -1}
	y := make([]float64, 4)
	must(t, ConvForward(s, 1, x, w, nil, y))
	assertClose(t, "y", y, []float64{-4, -4, -4, -4}, 0)

	// Same input, 3x3 all-ones kernel, padding 1, stride 2, bias 0.5:
	// corners sum their 2x2 neighbourhoods: 1+2+4+5, 2+3+5+6 (cols 2..3 of
	// padded), 4+5+7+8, 5+6+8+9.
	s = ops.ConvSpec{N: 1, H: 3, W: 3, C: 1, K: 1, KH: 3, KW: 3, Stride: 2, Pad: 1, Bias: true}
	w = []float64{1, 1, 1, 1, 1, 1, 1, 1, 1}
	y = make([]float64, 4)
	must(t, ConvForward(s, 1, x, w, []float64{0.5}, y))
	assertClose(t, "y", y, []float64{12.5, 16.5, 24.5, 28.5}, 0)
}

func TestConv1x1IsMatmul(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := ops.ConvSpec{N: 2, H: 3, W: 5, C: 4, K: 3, KH: 1, KW: 1, Stride: 1, Pad: 0, Bias: true}
	x, w, b := convInputs(rng, s)
	y := make([]float64, s.N*s.H*s.W*s.K)
	must(t, ConvForward(s, 2, x, w, b, y))
	// Every pixel p: y[p,:] = W (K x C) x[p,:] + b.
	want := make([]float64, len(y))
	for p := 0; p < s.N*s.H*s.W; p++ {
		for k := 0; k < s.K; k++ {
			v := b[k]
			for c := 0; c < s.C; c++ {
				v += w[k*s.C+c] * x[p*s.C+c]
			}
			want[p*s.K+k] = v
		}
	}
	assertClose(t, "y", y, want, 1e-13)
}

func TestConvForwardNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range convSpecs {
		x, w, b := convInputs(rng, s)
		oh, ow := s.OutHW()
		y := make([]float64, s.N*oh*ow*s.K)
		must(t, ConvForward(s, 2, x, w, b, y))
		assertClose(t, fmt.Sprintf("%+v y", s), y, naiveConv(s, x, w, b), 1e-12)
	}
}

func TestConvGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range convSpecs {
		name := fmt.Sprintf("%+v", s)
		x, w, b := convInputs(rng, s)
		oh, ow := s.OutHW()
		r := randSlice(rng, s.N*oh*ow*s.K)
		y := make([]float64, len(r))
		loss := func() float64 {
			must(t, ConvForward(s, 2, x, w, b, y))
			return dot(r, y)
		}
		dx := make([]float64, len(x))
		dw := make([]float64, len(w))
		var db []float64
		if s.Bias {
			db = make([]float64, s.K)
		}
		must(t, ConvBackward(s, 2, x, w, r, dx, dw, db))
		const h, tol = 1e-6, 1e-7
		assertClose(t, name+" dx", dx, numGrad(x, h, loss), tol)
		assertClose(t, name+" dw", dw, numGrad(w, h, loss), tol)
		if s.Bias {
			assertClose(t, name+" db", db, numGrad(b, h, loss), tol)
		}
		// Skipped outputs leave the others unchanged; thread counts agree.
		for _, threads := range []int{1, 3, 8} {
			dw2 := make([]float64, len(w))
			must(t, ConvBackward(s, threads, x, w, r, nil, dw2, nil))
			assertClose(t, name+" dw threads", dw2, dw, 1e-12)
		}
	}
}

func TestConvBackendFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	be := New()
	for _, s := range convSpecs {
		name := fmt.Sprintf("%+v", s)
		x, w, b := convInputs(rng, s)
		oh, ow := s.OutHW()
		r := randSlice(rng, s.N*oh*ow*s.K)
		op, err := be.Conv(s)
		must(t, err)
		y32 := make([]float32, len(r))
		must(t, op.Forward(to32(x), to32(w), to32(b), y32))
		assertClose(t, name+" y32", to64(y32), naiveConv(s, x, w, b), 1e-5)

		dx, dw := make([]float64, len(x)), make([]float64, len(w))
		var db []float64
		var db32 []float32
		if s.Bias {
			db, db32 = make([]float64, s.K), make([]float32, s.K)
		}
		must(t, ConvBackward(s, 1, x, w, r, dx, dw, db))
		dx32, dw32 := make([]float32, len(x)), make([]float32, len(w))
		must(t, op.Backward(to32(x), to32(w), to32(r), dx32, dw32, db32))
		assertClose(t, name+" dx32", to64(dx32), dx, 1e-5)
		assertClose(t, name+" dw32", to64(dw32), dw, 1e-5)
		if s.Bias {
			assertClose(t, name+" db32", to64(db32), db, 1e-5)
		}
	}
}

func TestConvErrors(t *testing.T) {
	be := New()
	if _, err := be.Conv(ops.ConvSpec{N: 1, H: 2, W: 2, C: 1, K: 1, KH: 3, KW: 3, Stride: 1}); err == nil {
		t.Error("empty-output conv accepted")
	}
	s := ops.ConvSpec{N: 1, H: 3, W: 3, C: 2, K: 2, KH: 3, KW: 3, Stride: 1, Pad: 1}
	op, err := be.Conv(s)
	must(t, err)
	x, w, y := make([]float32, 18), make([]float32, 36), make([]float32, 18)
	if err := op.Forward(x[:17], w, nil, y); err == nil {
		t.Error("short x accepted")
	}
	if err := op.Forward(x, w, make([]float32, 2), y); err == nil {
		t.Error("bias accepted for a spec without bias")
	}
	if err := op.Backward(x, w, y, x, w[:35], nil); err == nil {
		t.Error("short dw accepted")
	}
	if err := op.Backward(x, w, y, x[:3], w, nil); err == nil {
		t.Error("short dx accepted")
	}
	must(t, op.Forward(x, w, nil, y))
	if math.IsNaN(float64(y[0])) {
		t.Error("NaN output")
	}
}
