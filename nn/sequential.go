package nn

import (
	"fmt"

	"github.com/corinfomax/corinfomax/tensor"
)

// Sequential chains layers: Forward runs them in order, Backward in
// reverse order.
type Sequential struct {
	Layers []Layer

	pool *gradPool // gives back the gradients passed between the layers
}

// NewSequential returns a chain of the given layers.
func NewSequential(layers ...Layer) *Sequential { return &Sequential{Layers: layers} }

// Forward runs every layer in order.
func (q *Sequential) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	for i, l := range q.Layers {
		var err error
		if x, err = l.Forward(slot, x); err != nil {
			return nil, fmt.Errorf("sequential layer %d: %w", i, err)
		}
	}
	return x, nil
}

// Backward runs every layer's Backward in reverse order. Only the first
// layer may return a nil input gradient (a skipped image gradient).
// With a gradient pool, each gradient passed between two layers is given
// back once its consumer has returned (the caller's dy and the returned
// gradient are not).
func (q *Sequential) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	g := dy
	for i := len(q.Layers) - 1; i >= 0; i-- {
		dx, err := q.Layers[i].Backward(slot, g)
		if err != nil {
			return nil, fmt.Errorf("sequential layer %d: %w", i, err)
		}
		if dx == nil && i > 0 {
			return nil, fmt.Errorf("nn: sequential layer %d returned no input gradient", i)
		}
		if g != dy && g != dx {
			q.pool.release(g)
		}
		g = dx
	}
	return g, nil
}

// Params concatenates the layers' parameters in order.
func (q *Sequential) Params() []*Param {
	var ps []*Param
	for _, l := range q.Layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Buffers concatenates the layers' buffers in order.
func (q *Sequential) Buffers() []*Buffer {
	var bs []*Buffer
	for _, l := range q.Layers {
		bs = append(bs, l.Buffers()...)
	}
	return bs
}

// SetTraining sets the mode of every layer.
func (q *Sequential) SetTraining(training bool) {
	for _, l := range q.Layers {
		l.SetTraining(training)
	}
}
