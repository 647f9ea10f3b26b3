package dnnl

/*
#include "gd.h"
*/
import "C"

import (
	"fmt"

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
	if s.N < 1 || s.Spatial < 1 || s.C < 1 || s.Eps < 0 {
		return nil, fmt.Errorf("dnnl: invalid batch norm %+v", s)
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

// check checks that the data tensors have N*Spatial*C values and the
// per-channel ones C values.
func (n *batchNorm) check(op string, data, perChannel []named) error {
	if n.p == nil {
		return errClosed
	}
	s := n.spec
	if err := checkLens(op, s.N*s.Spatial*s.C, data...); err != nil {
		return err
	}
	return checkLens(op, s.C, perChannel...)
}

// ForwardTrain normalises with the batch statistics and writes them (the
// biased variance) to mean and variance.
func (n *batchNorm) ForwardTrain(x, gamma, beta, y, mean, variance []float32) error {
	err := n.check("BatchNorm.ForwardTrain", []named{{"x", x}, {"y", y}},
		[]named{{"gamma", gamma}, {"beta", beta}, {"mean", mean}, {"variance", variance}})
	if err != nil {
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
	err := n.check("BatchNorm.ForwardInfer", []named{{"x", x}, {"y", y}},
		[]named{{"gamma", gamma}, {"beta", beta}, {"runMean", runMean}, {"runVar", runVar}})
	if err != nil {
		return err
	}
	st := C.gd_bn_forward_infer(n.p, fp(x), fp(gamma), fp(beta), fp(runMean), fp(runVar), fp(y))
	if st != C.dnnl_success {
		return n.b.fail("batch norm inference forward", st)
	}
	return nil
}

// Backward writes dx, dgamma and dbeta of the training-mode forward pass
// whose statistics are mean and variance.
func (n *batchNorm) Backward(x, gamma, mean, variance, dy, dx, dgamma, dbeta []float32) error {
	err := n.check("BatchNorm.Backward", []named{{"x", x}, {"dy", dy}, {"dx", dx}},
		[]named{{"gamma", gamma}, {"mean", mean}, {"variance", variance}, {"dgamma", dgamma}, {"dbeta", dbeta}})
	if err != nil {
		return err
	}
	st := C.gd_bn_backward(n.p, fp(x), fp(gamma), fp(mean), fp(variance), fp(dy), fp(dx), fp(dgamma),
		fp(dbeta))
	if st != C.dnnl_success {
		return n.b.fail("batch norm backward", st)
	}
	return nil
}
