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

// maxPool is max pooling with forward and backward primitives created once
// for its spec; the argmax workspace is owned by the caller.
type maxPool struct {
	b       *Backend
	p       *C.gd_pool
	spec    ops.PoolSpec
	wsBytes int
}

// MaxPool returns the max pooling operator for s, creating it on first use.
func (b *Backend) MaxPool(s ops.PoolSpec) (ops.MaxPool, error) {
	if b.ctx == nil {
		return nil, errClosed
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("dnnl: %w", err)
	}
	if m, ok := b.pools[s]; ok {
		return m, nil
	}
	var p *C.gd_pool
	st := C.gd_pool_create(&p, b.ctx, 1, C.int(s.N), C.int(s.H), C.int(s.W), C.int(s.C), C.int(s.Kernel),
		C.int(s.Kernel), C.int(s.Stride), C.int(s.Pad))
	if st != C.dnnl_success {
		return nil, b.fail(fmt.Sprintf("create max pooling %+v", s), st)
	}
	m := &maxPool{b: b, p: p, spec: s, wsBytes: int(C.gd_pool_ws_bytes(p))}
	b.pools[s] = m
	return m, nil
}

func (m *maxPool) destroy() {
	C.gd_pool_destroy(m.p)
	m.p = nil
}

// WorkspaceBytes is the size of the workspace Forward fills and Backward
// reads (oneDNN's argmax indices, in the primitive's own format).
func (m *maxPool) WorkspaceBytes() int { return m.wsBytes }

// wsPtr returns a pointer to the workspace, or nil when it is empty.
func wsPtr(ws []byte) unsafe.Pointer {
	if len(ws) == 0 {
		return nil
	}
	return unsafe.Pointer(&ws[0])
}

// Forward writes y = maxpool(x) and records the argmax in ws.
func (m *maxPool) Forward(x, y []float32, ws []byte) error {
	if m.p == nil {
		return errClosed
	}
	if err := ops.CheckPoolForward(m.spec, x, y, ws, m.wsBytes); err != nil {
		return err
	}
	if st := C.gd_pool_forward(m.p, fp(x), fp(y), wsPtr(ws)); st != C.dnnl_success {
		return m.b.fail("max pooling forward", st)
	}
	return nil
}

// Backward routes dy to the argmax positions recorded in ws; it overwrites
// all of dx.
func (m *maxPool) Backward(dy []float32, ws []byte, dx []float32) error {
	if m.p == nil {
		return errClosed
	}
	if err := ops.CheckPoolBackward(m.spec, dy, ws, m.wsBytes, dx); err != nil {
		return err
	}
	if st := C.gd_pool_backward(m.p, fp(dy), wsPtr(ws), fp(dx)); st != C.dnnl_success {
		return m.b.fail("max pooling backward", st)
	}
	return nil
}
