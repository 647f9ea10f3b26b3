package dnnl

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

// convSpecs lists fixed shapes covering the brief (odd sizes, batch 1,
// stride 2, padding 0/1/3, kernels 1/3/7, channels 3, 5, 17, 24) plus a few
// random ones drawn with a fixed seed.
func convSpecs() []ops.ConvSpec {
	specs := []ops.ConvSpec{
		{N: 1, H: 5, W: 7, C: 3, K: 5, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true},
		{N: 2, H: 8, W: 8, C: 5, K: 24, KH: 3, KW: 3, Stride: 2, Pad: 1},
		{N: 3, H: 9, W: 9, C: 24, K: 16, KH: 1, KW: 1, Stride: 2, Pad: 0, Bias: true},
		{N: 2, H: 15, W: 13, C: 3, K: 8, KH: 7, KW: 7, Stride: 2, Pad: 3},
		{N: 2, H: 6, W: 6, C: 16, K: 32, KH: 3, KW: 3, Stride: 1, Pad: 0},
		{N: 1, H: 4, W: 4, C: 17, K: 3, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true},
		// ResNet downsample convolutions at small widths: 1x1, stride 2,
		// fewer input channels than oneDNN's channel block (gd_conv.c's
		// bwd_weights_pd: oneDNN issue #6035).
		{N: 10, H: 12, W: 12, C: 4, K: 8, KH: 1, KW: 1, Stride: 2, Pad: 0},
		{N: 16, H: 16, W: 16, C: 8, K: 16, KH: 1, KW: 1, Stride: 2, Pad: 0},
		{N: 16, H: 8, W: 8, C: 12, K: 16, KH: 1, KW: 1, Stride: 2, Pad: 0},
	}
	r := rand.New(rand.NewSource(7))
	kernels := []int{1, 3, 5}
	for len(specs) < 13 {
		k := kernels[r.Intn(len(kernels))]
		s := ops.ConvSpec{N: 1 + r.Intn(3), H: 1 + r.Intn(10), W: 1 + r.Intn(10), C: 1 + r.Intn(20),
			K: 1 + r.Intn(20), KH: k, KW: k, Stride: 1 + r.Intn(2), Pad: r.Intn(k/2 + 1), Bias: r.Intn(2) == 0}
		if s.Validate() == nil {
			specs = append(specs, s)
		}
	}
	return specs
}

// convCase holds random inputs for one spec.
type convCase struct {
	x, w, b, dy []float32
}

func newConvCase(r *rand.Rand, s ops.ConvSpec) convCase {
	oh, ow := s.OutHW()
	c := convCase{
		x:  randn(r, s.N*s.H*s.W*s.C, 1, 0),
		w:  randn(r, s.K*s.C*s.KH*s.KW, 0.3, 0),
		dy: randn(r, s.N*oh*ow*s.K, 1, 0),
	}
	if s.Bias {
		c.b = randn(r, s.K, 1, 0)
	}
	return c
}

// checkConv runs forward and backward of op on c and compares every output
// with want, the reference operator.
func checkConv(t *testing.T, name string, s ops.ConvSpec, op, want ops.Conv, c convCase) {
	t.Helper()
	checkConvAgainst(t, name, s, op, want, c, c)
}

// checkConvAgainst runs op on c and the reference want on rc (c itself, or
// c with its inputs rounded as op rounds them) and compares every output.
func checkConvAgainst(t *testing.T, name string, s ops.ConvSpec, op, want ops.Conv, c, rc convCase) {
	t.Helper()
	oh, ow := s.OutHW()
	ny, nw := s.N*oh*ow*s.K, s.K*s.C*s.KH*s.KW
	y, yRef := garbage(ny), make([]float32, ny)
	mustNoErr(t, "dnnl forward", op.Forward(c.x, c.w, c.b, y))
	mustNoErr(t, "ref forward", want.Forward(rc.x, rc.w, rc.b, yRef))
	assertClose(t, name+" y", y, yRef)

	dx, dw := garbage(len(c.x)), garbage(nw)
	dxRef, dwRef := make([]float32, len(c.x)), make([]float32, nw)
	var db, dbRef []float32
	if s.Bias {
		db, dbRef = garbage(s.K), make([]float32, s.K)
	}
	mustNoErr(t, "dnnl backward", op.Backward(c.x, c.w, c.dy, dx, dw, db))
	mustNoErr(t, "ref backward", want.Backward(rc.x, rc.w, rc.dy, dxRef, dwRef, dbRef))
	assertClose(t, name+" dx", dx, dxRef)
	assertClose(t, name+" dw", dw, dwRef)
	if s.Bias {
		assertClose(t, name+" db", db, dbRef)
	}

	// Without dx and db (the first layer, or a caller not needing db).
	dw2 := garbage(nw)
	mustNoErr(t, "dnnl backward without dx, db", op.Backward(c.x, c.w, c.dy, nil, dw2, nil))
	assertClose(t, name+" dw (no dx, db)", dw2, dwRef)
}

func TestConvMatchesRef(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(1))
	for _, s := range convSpecs() {
		name := fmt.Sprintf("%+v", s)
		op, err := d.Conv(s)
		mustNoErr(t, "dnnl Conv", err)
		want, err := rb.Conv(s)
		mustNoErr(t, "ref Conv", err)
		checkConv(t, name, s, op, want, newConvCase(r, s))
	}
}

// TestConvNoHiddenState runs two forward passes on one operator before the
// two backward passes, in the order of the two SSL views.
func TestConvNoHiddenState(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(2))
	s := ops.ConvSpec{N: 2, H: 7, W: 7, C: 5, K: 6, KH: 3, KW: 3, Stride: 2, Pad: 1, Bias: true}
	op, err := d.Conv(s)
	mustNoErr(t, "dnnl Conv", err)
	want, err := rb.Conv(s)
	mustNoErr(t, "ref Conv", err)
	oh, ow := s.OutHW()
	ny := s.N * oh * ow * s.K
	c1, c2 := newConvCase(r, s), newConvCase(r, s)
	c2.w = c1.w // the same weights, as for two views in one step
	y1, y2 := garbage(ny), garbage(ny)
	mustNoErr(t, "forward 1", op.Forward(c1.x, c1.w, c1.b, y1))
	mustNoErr(t, "forward 2", op.Forward(c2.x, c2.w, c2.b, y2))
	for i, c := range []convCase{c1, c2} {
		yRef := make([]float32, ny)
		mustNoErr(t, "ref forward", want.Forward(c.x, c.w, c.b, yRef))
		assertClose(t, fmt.Sprintf("view %d y", i+1), []([]float32){y1, y2}[i], yRef)
	}
	for i, c := range []convCase{c1, c2} {
		dx, dw, db := garbage(len(c.x)), garbage(len(c.w)), garbage(s.K)
		dxRef, dwRef, dbRef := make([]float32, len(c.x)), make([]float32, len(c.w)), make([]float32, s.K)
		mustNoErr(t, "backward", op.Backward(c.x, c.w, c.dy, dx, dw, db))
		mustNoErr(t, "ref backward", want.Backward(c.x, c.w, c.dy, dxRef, dwRef, dbRef))
		assertClose(t, fmt.Sprintf("view %d dx", i+1), dx, dxRef)
		assertClose(t, fmt.Sprintf("view %d dw", i+1), dw, dwRef)
		assertClose(t, fmt.Sprintf("view %d db", i+1), db, dbRef)
	}
}

func TestConvCacheAndErrors(t *testing.T) {
	d, err := New(1)
	mustNoErr(t, "New", err)
	s := ops.ConvSpec{N: 1, H: 4, W: 4, C: 3, K: 4, KH: 3, KW: 3, Stride: 1, Pad: 1}
	a, err := d.Conv(s)
	mustNoErr(t, "Conv", err)
	b, err := d.Conv(s)
	mustNoErr(t, "Conv again", err)
	if a != b {
		t.Errorf("the same spec gave two operators")
	}
	if _, err := d.Conv(ops.ConvSpec{N: 1, H: 2, W: 2, C: 1, K: 1, KH: 5, KW: 5, Stride: 1}); err == nil {
		t.Errorf("a convolution with an empty output was accepted")
	}
	x, w := make([]float32, 48), make([]float32, 4*3*9)
	if err := a.Forward(x[:47], w, nil, make([]float32, 64)); err == nil {
		t.Errorf("a short x was accepted")
	}
	if err := a.Forward(x, w, make([]float32, 4), make([]float32, 64)); err == nil {
		t.Errorf("a bias for a convolution without bias was accepted")
	}
	mustNoErr(t, "Close", d.Close())
	if err := a.Forward(x, w, nil, make([]float32, 64)); err == nil {
		t.Errorf("Forward after Close succeeded")
	}
	if _, err := d.Conv(s); err == nil {
		t.Errorf("Conv after Close succeeded")
	}
	if err := d.ReLU(x, x); err == nil {
		t.Errorf("ReLU after Close succeeded")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewThreads(t *testing.T) {
	d, err := New(0)
	mustNoErr(t, "New", err)
	defer d.Close()
	if d.Threads() != runtime.GOMAXPROCS(0) {
		t.Errorf("New(0).Threads() = %d, want GOMAXPROCS %d", d.Threads(), runtime.GOMAXPROCS(0))
	}
	if d.Name() != "dnnl" {
		t.Errorf("Name() = %q", d.Name())
	}
}
