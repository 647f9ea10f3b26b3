package dnnl

/*
#include "gd.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/corinfomax/corinfomax/ops"
)

// batchNorm is batch normalisation with its training, inference and
// backward primitives created once for its spec.
type batchNorm struct {
	b    *Backend
	p    *C.gd_bn
	spec ops.BNSpec
}

// BatchNorm returns the batch normalisation operator for s, creating it on
// first use. Spatial > 1 normalises NHWC activations (N*Spatial*C values),
// Spatial == 1 normalises N x C features.
func (b *Backend) BatchNorm(s ops.BNSpec) (ops.BatchNorm, error) {
	if b.ctx == nil {
		return nil, errClosed
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("dnnl: %w", err)
	}
	if n, ok := b.bns[s]; ok {
		return n, nil
	}
	var p *C.gd_bn
	st := C.gd_bn_create(&p, b.ctx, C.int(s.N), C.int(s.Spatial), C.int(s.C), C.float(s.Eps))
	if st != C.dnnl_success {
		return nil, b.fail(fmt.Sprintf("create batch norm %+v", s), st)
	}
	n := &batchNorm{b: b, p: p, spec: s}
	b.bns[s] = n
	return n, nil
}

func (n *batchNorm) destroy() {
	C.gd_bn_destroy(n.p)
	n.p = nil
}

// ForwardTrain normalises with the batch statistics and writes them (the
// biased variance) to mean and variance.
func (n *batchNorm) ForwardTrain(x, gamma, beta, y, mean, variance []float32) error {
	if n.p == nil {
		return errClosed
	}
	if err := ops.CheckBNForwardTrain(n.spec, x, gamma, beta, y, mean, variance); err != nil {
		return err
	}
	st := C.gd_bn_forward_train(n.p, fp(x), fp(gamma), fp(beta), fp(y), fp(mean), fp(variance))
	if st != C.dnnl_success {
		return n.b.fail("batch norm training forward", st)
	}
	return nil
}

// ForwardInfer normalises with the given running statistics.
func (n *batchNorm) ForwardInfer(x, gamma, beta, runMean, runVar, y []float32) error {
	if n.p == nil {
		return errClosed
	}
	if err := ops.CheckBNForwardInfer(n.spec, x, gamma, beta, runMean, runVar, y); err != nil {
		return err
	}
	st := C.gd_bn_forward_infer(n.p, fp(x), fp(gamma), fp(beta), fp(runMean), fp(runVar), fp(y))
	if st != C.dnnl_success {
		return n.b.fail("batch norm inference forward", st)
	}
	return nil
}

// Backward writes dx, dgamma and dbeta (each skipped when nil) of the
// training-mode forward pass whose statistics are mean and variance.
func (n *batchNorm) Backward(x, gamma, mean, variance, dy, dx, dgamma, dbeta []float32) error {
	if n.p == nil {
		return errClosed
	}
	if err := ops.CheckBNBackward(n.spec, x, gamma, mean, variance, dy, dx, dgamma, dbeta); err != nil {
		return err
	}
	st := C.gd_bn_backward(n.p, fp(x), fp(gamma), fp(mean), fp(variance), fp(dy), fp(dx), fp(dgamma),
		fp(dbeta))
	if st != C.dnnl_success {
		return n.b.fail("batch norm backward", st)
	}
	return nil
}

// dp is the C pointer of a float64 slice (nil for an empty one).
func dp(x []float64) *C.double {
	if len(x) == 0 {
		return nil
	}
	return (*C.double)(unsafe.Pointer(&x[0]))
}

// Sums writes the shifted channel sums of x: s1 = sum(x - shift), s2 =
// sum((x - shift)^2), in float64.
func (n *batchNorm) Sums(x, shift []float32, s1, s2 []float64) error {
	if n.p == nil {
		return errClosed
	}
	if err := ops.CheckBNSums(n.spec, x, shift, s1, s2); err != nil {
		return err
	}
	if st := C.gd_bn_sums(n.p, fp(x), fp(shift), dp(s1), dp(s2)); st != C.dnnl_success {
		return n.b.fail("batch norm sums", st)
	}
	return nil
}

// GradSums writes sdy = sum(dy) and sdyx = sum(dy * (x - mean)) per
// channel, in float64.
func (n *batchNorm) GradSums(x, mean, dy []float32, sdy, sdyx []float64) error {
	if n.p == nil {
		return errClosed
	}
	if err := ops.CheckBNGradSums(n.spec, x, mean, dy, sdy, sdyx); err != nil {
		return err
	}
	if st := C.gd_bn_grad_sums(n.p, fp(x), fp(mean), fp(dy), dp(sdy), dp(sdyx)); st != C.dnnl_success {
		return n.b.fail("batch norm gradient sums", st)
	}
	return nil
}

// BackwardGiven writes the training-mode dx from sums over m values per
// channel; dx may alias dy.
func (n *batchNorm) BackwardGiven(x, gamma, mean, variance, dy []float32, sdy, sdyx []float64, m int, dx []float32) error {
	if n.p == nil {
		return errClosed
	}
	if err := ops.CheckBNBackwardGiven(n.spec, x, gamma, mean, variance, dy, sdy, sdyx, m, dx); err != nil {
		return err
	}
	st := C.gd_bn_backward_given(n.p, fp(x), fp(gamma), fp(mean), fp(variance), fp(dy), dp(sdy), dp(sdyx), C.long(m), fp(dx))
	if st != C.dnnl_success {
		return n.b.fail("batch norm backward from given sums", st)
	}
	return nil
}
