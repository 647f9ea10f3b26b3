package dnnl

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
)

func TestBatchNormMatchesRef(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(3))
	specs := []ops.BNSpec{
		{N: 4, Spatial: 1, C: 5, Eps: 1e-5},   // BatchNorm1d
		{N: 7, Spatial: 1, C: 24, Eps: 1e-5},  // BatchNorm1d, projector-like
		{N: 2, Spatial: 12, C: 3, Eps: 1e-5},  // BatchNorm2d
		{N: 3, Spatial: 35, C: 24, Eps: 1e-5}, // odd spatial size
		{N: 1, Spatial: 9, C: 17, Eps: 1e-3},  // batch 1
		// Enough rows for every thread, and channel counts that take each
		// register block of gd_bnk.c (32, 16, 8, one at a time) and their
		// mixtures.
		{N: 3, Spatial: 50, C: 16, Eps: 1e-5},
		{N: 2, Spatial: 45, C: 32 + 16 + 8 + 3, Eps: 1e-5},
		{N: 4, Spatial: 33, C: 96 + 7, Eps: 1e-5},
		{N: 130, Spatial: 1, C: 40, Eps: 1e-5},
	}
	for _, s := range specs {
		name := fmt.Sprintf("%+v", s)
		op, err := d.BatchNorm(s)
		mustNoErr(t, "dnnl BatchNorm", err)
		want, err := rb.BatchNorm(s)
		mustNoErr(t, "ref BatchNorm", err)
		n := s.N * s.Spatial * s.C
		// A non-zero mean and a non-unit scale exercise the centring.
		x := randn(r, n, 2, 1.5)
		gamma, beta := randn(r, s.C, 0.5, 1), randn(r, s.C, 0.5, 0)
		dy := randn(r, n, 1, 0.2)

		y, mean, variance := garbage(n), garbage(s.C), garbage(s.C)
		yRef, meanRef, varRef := make([]float32, n), make([]float32, s.C), make([]float32, s.C)
		mustNoErr(t, "dnnl ForwardTrain", op.ForwardTrain(x, gamma, beta, y, mean, variance))
		mustNoErr(t, "ref ForwardTrain", want.ForwardTrain(x, gamma, beta, yRef, meanRef, varRef))
		assertClose(t, name+" train y", y, yRef)
		assertClose(t, name+" mean", mean, meanRef)
		assertClose(t, name+" variance", variance, varRef)

		runMean, runVar := randn(r, s.C, 1, 0), randn(r, s.C, 0.2, 1.5)
		yi, yiRef := garbage(n), make([]float32, n)
		mustNoErr(t, "dnnl ForwardInfer", op.ForwardInfer(x, gamma, beta, runMean, runVar, yi))
		mustNoErr(t, "ref ForwardInfer", want.ForwardInfer(x, gamma, beta, runMean, runVar, yiRef))
		assertClose(t, name+" infer y", yi, yiRef)

		dx, dgamma, dbeta := garbage(n), garbage(s.C), garbage(s.C)
		dxRef, dgRef, dbRef := make([]float32, n), make([]float32, s.C), make([]float32, s.C)
		mustNoErr(t, "dnnl Backward", op.Backward(x, gamma, meanRef, varRef, dy, dx, dgamma, dbeta))
		mustNoErr(t, "ref Backward", want.Backward(x, gamma, meanRef, varRef, dy, dxRef, dgRef, dbRef))
		assertClose(t, name+" dx", dx, dxRef)
		assertClose(t, name+" dgamma", dgamma, dgRef)
		assertClose(t, name+" dbeta", dbeta, dbRef)

		// The synchronised pieces: sums, gradient sums, and the input
		// gradient from given sums (here one worker's: it must equal
		// Backward's).
		shift := randn(r, s.C, 1, 2)
		s1, s2, s1Ref, s2Ref := make([]float64, s.C), make([]float64, s.C), make([]float64, s.C), make([]float64, s.C)
		mustNoErr(t, "dnnl Sums", op.Sums(x, shift, s1, s2))
		mustNoErr(t, "ref Sums", want.Sums(x, shift, s1Ref, s2Ref))
		assertClose64(t, name+" s1", s1, s1Ref)
		assertClose64(t, name+" s2", s2, s2Ref)
		g1, g2, g1Ref, g2Ref := make([]float64, s.C), make([]float64, s.C), make([]float64, s.C), make([]float64, s.C)
		mustNoErr(t, "dnnl GradSums", op.GradSums(x, meanRef, dy, g1, g2))
		mustNoErr(t, "ref GradSums", want.GradSums(x, meanRef, dy, g1Ref, g2Ref))
		assertClose64(t, name+" sum dy", g1, g1Ref)
		assertClose64(t, name+" sum dy*(x-mean)", g2, g2Ref)
		dxg := garbage(n)
		mustNoErr(t, "dnnl BackwardGiven", op.BackwardGiven(x, gamma, meanRef, varRef, dy, g1Ref, g2Ref, s.N*s.Spatial, dxg))
		assertClose(t, name+" dx from given sums", dxg, dxRef)
	}
}

// assertClose64 compares float64 sums at float32 precision (the inputs
// are float32; the accumulation orders differ).
func assertClose64(t *testing.T, what string, got, want []float64) {
	t.Helper()
	g, w := make([]float32, len(got)), make([]float32, len(want))
	for i := range got {
		g[i], w[i] = float32(got[i]), float32(want[i])
	}
	assertClose(t, what, g, w)
}

// TestBatchNormNoHiddenState runs two training passes before both backward
// passes and checks each against the reference.
func TestBatchNormNoHiddenState(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(4))
	s := ops.BNSpec{N: 3, Spatial: 4, C: 6, Eps: 1e-5}
	op, err := d.BatchNorm(s)
	mustNoErr(t, "dnnl BatchNorm", err)
	again, err := d.BatchNorm(s)
	mustNoErr(t, "dnnl BatchNorm again", err)
	if op != again {
		t.Errorf("the same spec gave two operators")
	}
	want, err := rb.BatchNorm(s)
	mustNoErr(t, "ref BatchNorm", err)
	n := s.N * s.Spatial * s.C
	gamma, beta := randn(r, s.C, 0.5, 1), randn(r, s.C, 0.5, 0)
	xs := [][]float32{randn(r, n, 1, 0), randn(r, n, 3, -2)}
	means, vars := [][]float32{garbage(s.C), garbage(s.C)}, [][]float32{garbage(s.C), garbage(s.C)}
	for i, x := range xs {
		mustNoErr(t, "ForwardTrain", op.ForwardTrain(x, gamma, beta, garbage(n), means[i], vars[i]))
	}
	for i, x := range xs {
		dy := randn(r, n, 1, 0)
		dx, dg, db := garbage(n), garbage(s.C), garbage(s.C)
		mustNoErr(t, "Backward", op.Backward(x, gamma, means[i], vars[i], dy, dx, dg, db))
		meanRef, varRef := make([]float32, s.C), make([]float32, s.C)
		mustNoErr(t, "ref ForwardTrain", want.ForwardTrain(x, gamma, beta, make([]float32, n), meanRef, varRef))
		dxRef, dgRef, dbRef := make([]float32, n), make([]float32, s.C), make([]float32, s.C)
		mustNoErr(t, "ref Backward", want.Backward(x, gamma, meanRef, varRef, dy, dxRef, dgRef, dbRef))
		assertClose(t, fmt.Sprintf("view %d mean", i+1), means[i], meanRef)
		assertClose(t, fmt.Sprintf("view %d variance", i+1), vars[i], varRef)
		assertClose(t, fmt.Sprintf("view %d dx", i+1), dx, dxRef)
		assertClose(t, fmt.Sprintf("view %d dgamma", i+1), dg, dgRef)
		assertClose(t, fmt.Sprintf("view %d dbeta", i+1), db, dbRef)
	}
	if err := op.ForwardTrain(xs[0][:n-1], gamma, beta, garbage(n), means[0], vars[0]); err == nil {
		t.Errorf("a short x was accepted")
	}
}

// TestBatchNormBackwardSkipsNilOutputs checks that each of dx, dgamma and
// dbeta may be nil (not needed), as in the reference, and that the others
// are still written correctly.
func TestBatchNormBackwardSkipsNilOutputs(t *testing.T) {
	d, rb := backends(t)
	r := rand.New(rand.NewSource(5))
	s := ops.BNSpec{N: 3, Spatial: 4, C: 6, Eps: 1e-5}
	op, err := d.BatchNorm(s)
	mustNoErr(t, "dnnl BatchNorm", err)
	want, err := rb.BatchNorm(s)
	mustNoErr(t, "ref BatchNorm", err)
	n := s.N * s.Spatial * s.C
	x, dy := randn(r, n, 1, 0.5), randn(r, n, 1, 0)
	gamma, beta := randn(r, s.C, 0.5, 1), randn(r, s.C, 0.5, 0)
	mean, variance := make([]float32, s.C), make([]float32, s.C)
	mustNoErr(t, "ref ForwardTrain", want.ForwardTrain(x, gamma, beta, make([]float32, n), mean, variance))
	dxRef, dgRef, dbRef := make([]float32, n), make([]float32, s.C), make([]float32, s.C)
	mustNoErr(t, "ref Backward", want.Backward(x, gamma, mean, variance, dy, dxRef, dgRef, dbRef))
	for skip := range 3 {
		outs := [][]float32{garbage(n), garbage(s.C), garbage(s.C)}
		outs[skip] = nil
		mustNoErr(t, fmt.Sprintf("Backward without output %d", skip),
			op.Backward(x, gamma, mean, variance, dy, outs[0], outs[1], outs[2]))
		for i, ref := range [][]float32{dxRef, dgRef, dbRef} {
			if i != skip {
				assertClose(t, fmt.Sprintf("skip %d: output %d", skip, i), outs[i], ref)
			}
		}
	}
}
