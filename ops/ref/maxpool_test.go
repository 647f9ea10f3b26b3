package ref

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

var poolSpecs = []ops.PoolSpec{
	{N: 2, H: 7, W: 6, C: 3, Kernel: 3, Stride: 2, Pad: 1}, // ImageNet stem
	{N: 1, H: 8, W: 8, C: 2, Kernel: 3, Stride: 2, Pad: 1},
	{N: 2, H: 4, W: 5, C: 1, Kernel: 2, Stride: 2, Pad: 0},
	{N: 1, H: 5, W: 3, C: 4, Kernel: 3, Stride: 1, Pad: 1},
}

// naivePool computes max pooling with explicit -inf padding in NCHW loop
// order, independently of MaxPoolForward.
func naivePool(s ops.PoolSpec, x []float64) []float64 {
	oh, ow := s.OutHW()
	y := make([]float64, s.N*oh*ow*s.C)
	for c := 0; c < s.C; c++ {
		for n := 0; n < s.N; n++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					m := math.Inf(-1)
					for u := i*s.Stride - s.Pad; u < i*s.Stride-s.Pad+s.Kernel; u++ {
						for v := j*s.Stride - s.Pad; v < j*s.Stride-s.Pad+s.Kernel; v++ {
							val := math.Inf(-1)
							if u >= 0 && u < s.H && v >= 0 && v < s.W {
								val = x[((n*s.H+u)*s.W+v)*s.C+c]
							}
							m = math.Max(m, val)
						}
					}
					y[((n*oh+i)*ow+j)*s.C+c] = m
				}
			}
		}
	}
	return y
}

func TestMaxPoolForward(t *testing.T) {
	// 4x4 input 1..16, 2x2 stride 2: maxima 6, 8, 14, 16 at positions 5, 7, 13, 15.
	s := ops.PoolSpec{N: 1, H: 4, W: 4, C: 1, Kernel: 2, Stride: 2}
	x := make([]float64, 16)
	for i := range x {
		x[i] = float64(i + 1)
	}
	y := make([]float64, 4)
	ws := make([]byte, MaxPoolWorkspaceBytes(s))
	must(t, MaxPoolForward(s, x, y, ws))
	assertClose(t, "y", y, []float64{6, 8, 14, 16}, 0)
	for i, want := range []int32{5, 7, 13, 15} {
		if got := int32(binary.LittleEndian.Uint32(ws[4*i:])); got != want {
			t.Errorf("ws[%d] = %d, want %d", i, got, want)
		}
	}

	// Negative inputs: padding must not win (it counts as -inf, not 0).
	rng := rand.New(rand.NewPCG(21, 22))
	for _, s := range poolSpecs {
		x := randSlice(rng, s.N*s.H*s.W*s.C)
		for i := range x {
			x[i] -= 2
		}
		oh, ow := s.OutHW()
		y := make([]float64, s.N*oh*ow*s.C)
		ws := make([]byte, MaxPoolWorkspaceBytes(s))
		must(t, MaxPoolForward(s, x, y, ws))
		assertClose(t, fmt.Sprintf("%+v y", s), y, naivePool(s, x), 0)
	}
}

func TestMaxPoolGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, s := range poolSpecs {
		name := fmt.Sprintf("%+v", s)
		// A random permutation keeps values at least 1e-2 apart, far from ties.
		x := make([]float64, s.N*s.H*s.W*s.C)
		for i, p := range rng.Perm(len(x)) {
			x[i] = float64(p)*1e-2 - 1
		}
		oh, ow := s.OutHW()
		r := randSlice(rng, s.N*oh*ow*s.C)
		y := make([]float64, len(r))
		ws := make([]byte, MaxPoolWorkspaceBytes(s))
		loss := func() float64 {
			must(t, MaxPoolForward(s, x, y, ws))
			return dot(r, y)
		}
		loss()
		dx := make([]float64, len(x))
		for i := range dx {
			dx[i] = 99 // Backward must overwrite
		}
		must(t, MaxPoolBackward(s, r, ws, dx))
		assertClose(t, name+" dx", dx, numGrad(x, 1e-6, loss), 1e-8)
	}
}

func TestMaxPoolBackendFloat32(t *testing.T) {
	be := New()
	rng := rand.New(rand.NewPCG(25, 26))
	for _, s := range poolSpecs {
		op, err := be.MaxPool(s)
		must(t, err)
		x := randSlice(rng, s.N*s.H*s.W*s.C)
		oh, ow := s.OutHW()
		y := make([]float32, s.N*oh*ow*s.C)
		ws := make([]byte, op.WorkspaceBytes())
		must(t, op.Forward(to32(x), y, ws))
		assertClose(t, "y32", to64(y), naivePool(s, to64(to32(x))), 0)
		dx := make([]float32, len(x))
		must(t, op.Backward(y, ws, dx))
		// Backward routes every dy element to one input: sum(dx) == sum(dy).
		sx, sy := 0.0, 0.0
		for _, v := range dx {
			sx += float64(v)
		}
		for _, v := range y {
			sy += float64(v)
		}
		if math.Abs(sx-sy) > 1e-4 {
			t.Errorf("%+v: sum dx %g != sum dy %g", s, sx, sy)
		}
		if err := op.Forward(to32(x), y, ws[1:]); err == nil {
			t.Error("short workspace accepted")
		}
	}
	bad := make([]byte, MaxPoolWorkspaceBytes(poolSpecs[2]))
	for i := range bad {
		bad[i] = 0xff // position -1
	}
	s := poolSpecs[2]
	oh, ow := s.OutHW()
	if err := MaxPoolBackward(s, make([]float32, s.N*oh*ow*s.C), bad, make([]float32, s.N*s.H*s.W*s.C)); err == nil {
		t.Error("corrupt workspace accepted")
	}
	if _, err := be.MaxPool(ops.PoolSpec{N: 1, H: 4, W: 4, C: 1, Kernel: 3, Stride: 1, Pad: 2}); err == nil {
		t.Error("padding larger than half the kernel accepted")
	}
}
