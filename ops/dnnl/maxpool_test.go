package dnnl

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

func TestMaxPoolMatchesRef(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(5))
	specs := []ops.PoolSpec{
		{N: 2, H: 9, W: 9, C: 5, Kernel: 3, Stride: 2, Pad: 1}, // ImageNet stem pooling, odd size
		{N: 1, H: 8, W: 8, C: 16, Kernel: 3, Stride: 2, Pad: 1},
		{N: 3, H: 7, W: 6, C: 3, Kernel: 2, Stride: 2, Pad: 0},
		{N: 2, H: 5, W: 5, C: 24, Kernel: 3, Stride: 1, Pad: 1},
	}
	for _, s := range specs {
		name := fmt.Sprintf("%+v", s)
		op, err := d.MaxPool(s)
		mustNoErr(t, "dnnl MaxPool", err)
		want, err := rb.MaxPool(s)
		mustNoErr(t, "ref MaxPool", err)
		oh, ow := s.OutHW()
		nx, ny := s.N*s.H*s.W*s.C, s.N*oh*ow*s.C
		if op.WorkspaceBytes() <= 0 {
			t.Fatalf("%s: workspace of %d bytes", name, op.WorkspaceBytes())
		}
		// Two inputs through Forward before either Backward: the workspace,
		// not the operator, carries the argmax.
		xs := [][]float32{randn(r, nx, 1, 0), randn(r, nx, 1, 0)}
		wss := [][]byte{make([]byte, op.WorkspaceBytes()), make([]byte, op.WorkspaceBytes())}
		ys := [][]float32{garbage(ny), garbage(ny)}
		for i := range xs {
			mustNoErr(t, "dnnl Forward", op.Forward(xs[i], ys[i], wss[i]))
		}
		for i := range xs {
			yRef, wsRef := make([]float32, ny), make([]byte, want.WorkspaceBytes())
			mustNoErr(t, "ref Forward", want.Forward(xs[i], yRef, wsRef))
			assertClose(t, fmt.Sprintf("%s view %d y", name, i+1), ys[i], yRef)
			dy := randn(r, ny, 1, 0)
			dx, dxRef := garbage(nx), make([]float32, nx)
			mustNoErr(t, "dnnl Backward", op.Backward(dy, wss[i], dx))
			mustNoErr(t, "ref Backward", want.Backward(dy, wsRef, dxRef))
			assertClose(t, fmt.Sprintf("%s view %d dx", name, i+1), dx, dxRef)
		}
		if err := op.Forward(xs[0], ys[0], wss[0][:op.WorkspaceBytes()-1]); err == nil {
			t.Errorf("%s: a short workspace was accepted", name)
		}
	}
}
