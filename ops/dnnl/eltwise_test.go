package dnnl

import (
	"fmt"
	"math/rand"
	"testing"
)

func TestReLUMatchesRef(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(8))
	for _, n := range []int{1, 7, 1000, 4099} {
		x, dy := randn(r, n, 1, 0), randn(r, n, 1, 0)
		y, yRef := garbage(n), make([]float32, n)
		mustNoErr(t, "dnnl ReLU", d.ReLU(x, y))
		mustNoErr(t, "ref ReLU", rb.ReLU(x, yRef))
		assertClose(t, fmt.Sprintf("n=%d y", n), y, yRef)

		dx, dxRef := garbage(n), make([]float32, n)
		mustNoErr(t, "dnnl ReLUBackward", d.ReLUBackward(yRef, dy, dx))
		mustNoErr(t, "ref ReLUBackward", rb.ReLUBackward(yRef, dy, dxRef))
		assertClose(t, fmt.Sprintf("n=%d dx", n), dx, dxRef)

		// In place: y aliases x, dx aliases dy.
		xi := append([]float32(nil), x...)
		mustNoErr(t, "dnnl ReLU in place", d.ReLU(xi, xi))
		assertClose(t, fmt.Sprintf("n=%d y in place", n), xi, yRef)
		dyi := append([]float32(nil), dy...)
		mustNoErr(t, "dnnl ReLUBackward in place", d.ReLUBackward(yRef, dyi, dyi))
		assertClose(t, fmt.Sprintf("n=%d dx in place", n), dyi, dxRef)
	}
	if err := d.ReLU(make([]float32, 3), make([]float32, 4)); err == nil {
		t.Errorf("ReLU accepted lengths 3 and 4")
	}
}

func TestAddMatchesRef(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(9))
	for _, n := range []int{1, 13, 4099} {
		a, b := randn(r, n, 1, 0), randn(r, n, 1, 0)
		y, yRef := garbage(n), make([]float32, n)
		mustNoErr(t, "dnnl Add", d.Add(a, b, y))
		mustNoErr(t, "ref Add", rb.Add(a, b, yRef))
		assertClose(t, fmt.Sprintf("n=%d y", n), y, yRef)

		ya := append([]float32(nil), a...)
		mustNoErr(t, "dnnl Add into a", d.Add(ya, b, ya))
		assertClose(t, fmt.Sprintf("n=%d y=a", n), ya, yRef)
		yb := append([]float32(nil), b...)
		mustNoErr(t, "dnnl Add into b", d.Add(a, yb, yb))
		assertClose(t, fmt.Sprintf("n=%d y=b", n), yb, yRef)
	}
	if err := d.Add(make([]float32, 3), make([]float32, 3), make([]float32, 2)); err == nil {
		t.Errorf("Add accepted a short y")
	}
}

func TestGlobalAvgPoolMatchesRef(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(10))
	for _, sh := range [][3]int{{3, 16, 5}, {2, 1, 7}, {4, 49, 24}, {1, 9, 3}} {
		n, hw, c := sh[0], sh[1], sh[2]
		x, dy := randn(r, n*hw*c, 1, 0), randn(r, n*c, 1, 0)
		y, yRef := garbage(n*c), make([]float32, n*c)
		mustNoErr(t, "dnnl GlobalAvgPool", d.GlobalAvgPool(x, n, hw, c, y))
		mustNoErr(t, "ref GlobalAvgPool", rb.GlobalAvgPool(x, n, hw, c, yRef))
		assertClose(t, fmt.Sprintf("%v y", sh), y, yRef)
		dx, dxRef := garbage(n*hw*c), make([]float32, n*hw*c)
		mustNoErr(t, "dnnl GlobalAvgPoolBackward", d.GlobalAvgPoolBackward(dy, n, hw, c, dx))
		mustNoErr(t, "ref GlobalAvgPoolBackward", rb.GlobalAvgPoolBackward(dy, n, hw, c, dxRef))
		assertClose(t, fmt.Sprintf("%v dx", sh), dx, dxRef)
	}
	if err := d.GlobalAvgPool(make([]float32, 10), 2, 3, 2, make([]float32, 4)); err == nil {
		t.Errorf("GlobalAvgPool accepted 10 values for 2x3x2")
	}
}
