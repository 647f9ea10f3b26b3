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
	if s.N < 1 || s.In < 1 || s.Out < 1 {
		return nil, fmt.Errorf("dnnl: invalid linear %+v", s)
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

// checkParams checks the weight and bias lengths against the spec.
func (l *linear) checkParams(op string, w, b []float32, bName string) error {
	s := l.spec
	if err := ops.CheckLen(op, "w", w, s.Out*s.In); err != nil {
		return err
	}
	if s.Bias {
		if b == nil && bName == "db" {
			return nil
		}
		return ops.CheckLen(op, bName, b, s.Out)
	}
	if len(b) != 0 {
		return fmt.Errorf("ops: %s: %s given but the linear layer has no bias", op, bName)
	}
	return nil
}

// Forward computes y = x w^T + b.
func (l *linear) Forward(x, w, b, y []float32) error {
	if l.p == nil {
		return errClosed
	}
	s := l.spec
	if err := checkLens("Linear.Forward", s.N*s.In, named{"x", x}); err != nil {
		return err
	}
	if err := checkLens("Linear.Forward", s.N*s.Out, named{"y", y}); err != nil {
		return err
	}
	if err := l.checkParams("Linear.Forward", w, b, "b"); err != nil {
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
	s := l.spec
	if err := checkLens("Linear.Backward", s.N*s.In, named{"x", x}); err != nil {
		return err
	}
	if dx != nil {
		if err := checkLens("Linear.Backward", s.N*s.In, named{"dx", dx}); err != nil {
			return err
		}
	}
	if err := checkLens("Linear.Backward", s.N*s.Out, named{"dy", dy}); err != nil {
		return err
	}
	if err := checkLens("Linear.Backward", s.Out*s.In, named{"dw", dw}); err != nil {
		return err
	}
	if err := l.checkParams("Linear.Backward", w, db, "db"); err != nil {
		return err
	}
	if st := C.gd_linear_backward(l.p, fp(x), fp(w), fp(dy), fp(dx), fp(dw), fp(db)); st != C.dnnl_success {
		return l.b.fail("linear backward", st)
	}
	return nil
}
