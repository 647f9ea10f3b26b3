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

// checkParams checks the weight and bias lengths against the spec.
func (c *conv) checkParams(op string, w, b []float32, bName string) error {
	s := c.spec
	if err := ops.CheckLen(op, "w", w, s.K*s.C*s.KH*s.KW); err != nil {
		return err
	}
	if s.Bias {
		if b == nil && bName == "db" {
			return nil
		}
		return ops.CheckLen(op, bName, b, s.K)
	}
	if len(b) != 0 {
		return fmt.Errorf("ops: %s: %s given but the convolution has no bias", op, bName)
	}
	return nil
}

// Forward computes y = conv(x, w) + b with x, y NHWC and w OIHW.
func (c *conv) Forward(x, w, b, y []float32) error {
	if c.p == nil {
		return errClosed
	}
	s := c.spec
	oh, ow := s.OutHW()
	if err := ops.CheckLen("Conv.Forward", "x", x, s.N*s.H*s.W*s.C); err != nil {
		return err
	}
	if err := ops.CheckLen("Conv.Forward", "y", y, s.N*oh*ow*s.K); err != nil {
		return err
	}
	if err := c.checkParams("Conv.Forward", w, b, "b"); err != nil {
		return err
	}
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
	s := c.spec
	oh, ow := s.OutHW()
	if err := ops.CheckLen("Conv.Backward", "x", x, s.N*s.H*s.W*s.C); err != nil {
		return err
	}
	if err := ops.CheckLen("Conv.Backward", "dy", dy, s.N*oh*ow*s.K); err != nil {
		return err
	}
	if dx != nil {
		if err := ops.CheckLen("Conv.Backward", "dx", dx, len(x)); err != nil {
			return err
		}
	}
	if err := c.checkParams("Conv.Backward", w, db, "db"); err != nil {
		return err
	}
	if err := ops.CheckLen("Conv.Backward", "dw", dw, len(w)); err != nil {
		return err
	}
	if st := C.gd_conv_backward(c.p, fp(x), fp(w), fp(dy), fp(dx), fp(dw), fp(db)); st != C.dnnl_success {
		return c.b.fail("convolution backward", st)
	}
	return nil
}
