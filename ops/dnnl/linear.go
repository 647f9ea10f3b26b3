package dnnl

/*
#include "gd.h"
*/
import "C"

import (
	"fmt"

	"github.com/corinfomax/corinfomax/ops"
)

// linear is a fully connected layer (oneDNN inner product, plain layouts)
// with forward, backward-data and backward-weights primitives created once
// for its spec.
type linear struct {
	b    *Backend
	p    *C.gd_linear
	spec ops.LinearSpec
}

// Linear returns the fully connected operator for s, creating it on first
// use.
func (b *Backend) Linear(s ops.LinearSpec) (ops.Linear, error) {
	if b.ctx == nil {
		return nil, errClosed
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("dnnl: %w", err)
	}
	if l, ok := b.linears[s]; ok {
		return l, nil
	}
	bias := 0
	if s.Bias {
		bias = 1
	}
	var p *C.gd_linear
	st := C.gd_linear_create(&p, b.ctx, C.int(s.N), C.int(s.In), C.int(s.Out), C.int(bias))
	if st != C.dnnl_success {
		return nil, b.fail(fmt.Sprintf("create linear %+v", s), st)
	}
	l := &linear{b: b, p: p, spec: s}
	b.linears[s] = l
	return l, nil
}

func (l *linear) destroy() {
	C.gd_linear_destroy(l.p)
	l.p = nil
}

// Forward computes y = x w^T + b.
func (l *linear) Forward(x, w, b, y []float32) error {
	if l.p == nil {
		return errClosed
	}
	if err := ops.CheckLinearForward(l.spec, x, w, b, y); err != nil {
		return err
	}
	if st := C.gd_linear_forward(l.p, fp(x), fp(w), fp(b), fp(y)); st != C.dnnl_success {
		return l.b.fail("linear forward", st)
	}
	return nil
}

// Backward writes dx (skipped when nil), dw, and db (skipped when nil).
func (l *linear) Backward(x, w, dy, dx, dw, db []float32) error {
	if l.p == nil {
		return errClosed
	}
	if err := ops.CheckLinearBackward(l.spec, x, w, dy, dx, dw, db); err != nil {
		return err
	}
	if st := C.gd_linear_backward(l.p, fp(x), fp(w), fp(dy), fp(dx), fp(dw), fp(db)); st != C.dnnl_success {
		return l.b.fail("linear backward", st)
	}
	return nil
}
