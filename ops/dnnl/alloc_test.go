package dnnl

import (
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

// TestSteadyStateAllocatesNothing checks that, once operators exist, a
// training-step sequence of calls makes no Go allocation (C-side buffers are
// created with the primitives, so none are made per call either).
func TestSteadyStateAllocatesNothing(t *testing.T) {
	d, _ := backends(t)
	r := rand.New(rand.NewSource(11))
	cs := ops.ConvSpec{N: 2, H: 6, W: 6, C: 3, K: 8, KH: 3, KW: 3, Stride: 1, Pad: 1}
	bs := ops.BNSpec{N: 2, Spatial: 36, C: 8, Eps: 1e-5}
	ps := ops.PoolSpec{N: 2, H: 6, W: 6, C: 8, Kernel: 3, Stride: 2, Pad: 1}
	ls := ops.LinearSpec{N: 2, In: 8, Out: 4, Bias: true}
	conv, err := d.Conv(cs)
	mustNoErr(t, "Conv", err)
	bn, err := d.BatchNorm(bs)
	mustNoErr(t, "BatchNorm", err)
	pool, err := d.MaxPool(ps)
	mustNoErr(t, "MaxPool", err)
	lin, err := d.Linear(ls)
	mustNoErr(t, "Linear", err)

	x, w, dw := randn(r, 2*36*3, 1, 0), randn(r, 8*3*9, 1, 0), make([]float32, 8*3*9)
	h, g, dh, dg := make([]float32, 2*36*8), make([]float32, 2*36*8), make([]float32, 2*36*8), make([]float32, 2*36*8)
	gamma, beta, mean, variance := randn(r, 8, 1, 1), randn(r, 8, 1, 0), make([]float32, 8), make([]float32, 8)
	dgamma, dbeta := make([]float32, 8), make([]float32, 8)
	p, dp, ws := make([]float32, 2*9*8), randn(r, 2*9*8, 1, 0), make([]byte, pool.WorkspaceBytes())
	f, df := make([]float32, 2*8), make([]float32, 2*8)
	lw, lb, ly, dlw, dlb := randn(r, 32, 1, 0), randn(r, 4, 1, 0), make([]float32, 8), make([]float32, 32), make([]float32, 4)
	step := func() {
		mustNoErr(t, "conv forward", conv.Forward(x, w, nil, h))
		mustNoErr(t, "bn forward", bn.ForwardTrain(h, gamma, beta, g, mean, variance))
		mustNoErr(t, "relu", d.ReLU(g, g))
		mustNoErr(t, "pool forward", pool.Forward(g, p, ws))
		mustNoErr(t, "gap", d.GlobalAvgPool(p, 2, 9, 8, f))
		mustNoErr(t, "linear forward", lin.Forward(f, lw, lb, ly))
		mustNoErr(t, "linear backward", lin.Backward(f, lw, ly, df, dlw, dlb))
		mustNoErr(t, "gap backward", d.GlobalAvgPoolBackward(df, 2, 9, 8, dp))
		mustNoErr(t, "pool backward", pool.Backward(dp, ws, dg))
		mustNoErr(t, "relu backward", d.ReLUBackward(g, dg, dg))
		mustNoErr(t, "bn backward", bn.Backward(h, gamma, mean, variance, dg, dh, dgamma, dbeta))
		mustNoErr(t, "conv backward", conv.Backward(x, w, dh, nil, dw, nil))
		mustNoErr(t, "add", d.Add(dw, dw, dw))
	}
	step() // creates the cached element-wise primitives
	if n := testing.AllocsPerRun(5, step); n != 0 {
		t.Errorf("a step allocates %v times", n)
	}
}
