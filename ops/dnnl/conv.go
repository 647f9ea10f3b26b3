package dnnl

/*
#include "gd.h"
*/
import "C"

import (
	"fmt"

	"github.com/corinfomax/corinfomax/ops"
)

// conv is a convolution whose forward, backward-data and backward-weights
// primitives, weight reorders and layout buffers were created once for its
// spec.
type conv struct {
	b    *Backend
	p    *C.gd_conv
	spec ops.ConvSpec
}

// Conv returns the convolution operator for s, creating it on first use.
func (b *Backend) Conv(s ops.ConvSpec) (ops.Conv, error) {
	if b.ctx == nil {
		return nil, errClosed
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("dnnl: %w", err)
	}
	if c, ok := b.convs[s]; ok {
		return c, nil
	}
	bias := 0
	if s.Bias {
		bias = 1
	}
	var p *C.gd_conv
	st := C.gd_conv_create(&p, b.ctx, C.int(s.N), C.int(s.H), C.int(s.W), C.int(s.C), C.int(s.K),
		C.int(s.KH), C.int(s.KW), C.int(s.Stride), C.int(s.Pad), C.int(bias))
	if st != C.dnnl_success {
		return nil, b.fail(fmt.Sprintf("create convolution %+v", s), st)
	}
	c := &conv{b: b, p: p, spec: s}
	b.convs[s] = c
	return c, nil
}

func (c *conv) destroy() {
	C.gd_conv_destroy(c.p)
	c.p = nil
}

// impl names the oneDNN implementations chosen for forward, backward data
// and backward weights.
func (c *conv) impl() [3]string {
	if c.p == nil {
		return [3]string{}
	}
	return [3]string{C.GoString(C.gd_conv_impl(c.p, 0)), C.GoString(C.gd_conv_impl(c.p, 1)),
		C.GoString(C.gd_conv_impl(c.p, 2))}
}

// Forward computes y = conv(x, w) + b with x, y NHWC and w OIHW.
func (c *conv) Forward(x, w, b, y []float32) error {
	if c.p == nil {
		return errClosed
	}
	if err := ops.CheckConvForward(c.spec, x, w, b, y); err != nil {
		return err
	}
	c.b.yield()
	if st := C.gd_conv_forward(c.p, fp(x), fp(w), fp(b), fp(y)); st != C.dnnl_success {
		return c.b.fail("convolution forward", st)
	}
	return nil
}

// Backward writes dx (skipped when nil), dw, and db (skipped when nil).
func (c *conv) Backward(x, w, dy, dx, dw, db []float32) error {
	if c.p == nil {
		return errClosed
	}
	if err := ops.CheckConvBackward(c.spec, x, w, dy, dx, dw, db); err != nil {
		return err
	}
	c.b.yield()
	if st := C.gd_conv_backward(c.p, fp(x), fp(w), fp(dy), fp(dx), fp(dw), fp(db)); st != C.dnnl_success {
		return c.b.fail("convolution backward", st)
	}
	return nil
}
