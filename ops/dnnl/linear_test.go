package dnnl

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

func TestLinearMatchesRef(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(6))
	specs := []ops.LinearSpec{
		{N: 1, In: 7, Out: 3, Bias: true},
		{N: 5, In: 24, Out: 10},
		{N: 17, In: 64, Out: 33, Bias: true},
		{N: 9, In: 5, Out: 128},
	}
	for _, s := range specs {
		name := fmt.Sprintf("%+v", s)
		op, err := d.Linear(s)
		mustNoErr(t, "dnnl Linear", err)
		again, err := d.Linear(s)
		mustNoErr(t, "dnnl Linear again", err)
		if op != again {
			t.Errorf("%s: the same spec gave two operators", name)
		}
		want, err := rb.Linear(s)
		mustNoErr(t, "ref Linear", err)
		w := randn(r, s.Out*s.In, 0.3, 0)
		var b []float32
		if s.Bias {
			b = randn(r, s.Out, 1, 0)
		}
		// Two forward passes before the two backward passes.
		xs := [][]float32{randn(r, s.N*s.In, 1, 0), randn(r, s.N*s.In, 1, 0.5)}
		ys := [][]float32{garbage(s.N * s.Out), garbage(s.N * s.Out)}
		for i := range xs {
			mustNoErr(t, "dnnl Forward", op.Forward(xs[i], w, b, ys[i]))
		}
		for i, x := range xs {
			yRef := make([]float32, s.N*s.Out)
			mustNoErr(t, "ref Forward", want.Forward(x, w, b, yRef))
			assertClose(t, fmt.Sprintf("%s view %d y", name, i+1), ys[i], yRef)

			dy := randn(r, s.N*s.Out, 1, 0)
			dx, dw := garbage(len(x)), garbage(len(w))
			dxRef, dwRef := make([]float32, len(x)), make([]float32, len(w))
			var db, dbRef []float32
			if s.Bias {
				db, dbRef = garbage(s.Out), make([]float32, s.Out)
			}
			mustNoErr(t, "dnnl Backward", op.Backward(x, w, dy, dx, dw, db))
			mustNoErr(t, "ref Backward", want.Backward(x, w, dy, dxRef, dwRef, dbRef))
			assertClose(t, fmt.Sprintf("%s view %d dx", name, i+1), dx, dxRef)
			assertClose(t, fmt.Sprintf("%s view %d dw", name, i+1), dw, dwRef)
			if s.Bias {
				assertClose(t, fmt.Sprintf("%s view %d db", name, i+1), db, dbRef)
			}
			dw2 := garbage(len(w))
			mustNoErr(t, "dnnl Backward without dx, db", op.Backward(x, w, dy, nil, dw2, nil))
			assertClose(t, fmt.Sprintf("%s view %d dw (no dx, db)", name, i+1), dw2, dwRef)
		}
	}
}
