package nn

import "github.com/corinfomax/corinfomax/tensor"

// gradPool lends input-gradient buffers to the layers of one network, so
// that a backward pass holds only the gradients still to be consumed
// instead of one buffer per layer (measured: peak memory of a two-view step
// no higher than PyTorch's, which frees gradients as autograd consumes
// them).
//
// Protocol. A layer with a pool takes its dL/dx from the pool. The
// container that passes that tensor on as the next layer's dy (Sequential,
// the residual blocks, ResNet, MLP) gives it back once the consumer has
// returned, unless the consumer returned the same tensor (in-place
// gradients, see BatchNorm.InPlaceGrad). ResNet and MLP give back the
// gradient they returned at their next Backward, so the tensor a network
// returns stays valid until then, as without a pool. Buffers are kept by
// length and reused across steps: steady-state steps allocate nothing.
//
// A layer without a pool (built on its own, as in the layer tests) keeps
// a private buffer per layer. A gradPool is not safe for concurrent use.
type gradPool struct {
	free map[int][]*tensor.Tensor
	lent map[*tensor.Tensor]bool
}

// newGradPool returns an empty pool.
func newGradPool() *gradPool {
	return &gradPool{free: map[int][]*tensor.Tensor{}, lent: map[*tensor.Tensor]bool{}}
}

// get lends a tensor of the given shape (contents undefined).
func (p *gradPool) get(shape ...int) *tensor.Tensor {
	n := tensor.Numel(shape)
	var t *tensor.Tensor
	if f := p.free[n]; len(f) > 0 {
		t = f[len(f)-1]
		p.free[n] = f[:len(f)-1]
		t.Shape = append(t.Shape[:0], shape...)
	} else {
		t = tensor.New(shape...)
	}
	p.lent[t] = true
	return t
}

// release takes back a tensor lent by get; anything else (nil, a private
// buffer, a caller's tensor, a tensor already given back) is ignored.
func (p *gradPool) release(t *tensor.Tensor) {
	if p == nil || t == nil || !p.lent[t] {
		return
	}
	delete(p.lent, t)
	p.free[len(t.Data)] = append(p.free[len(t.Data)], t)
}

// gradBuf returns a layer's input-gradient buffer: lent by pool when the
// layer has one, else the layer's private buffer, allocated on first use.
func gradBuf(pool *gradPool, private **tensor.Tensor, shape ...int) *tensor.Tensor {
	if pool != nil {
		return pool.get(shape...)
	}
	*private = tensor.Ensure(*private, shape...)
	return *private
}

// gradPooled is a layer that takes its input gradients from a pool (and,
// for containers, hands the pool to its children).
type gradPooled interface {
	setGradPool(*gradPool)
}

// useGradPool gives p to l and, through containers, to every layer below.
func useGradPool(l Layer, p *gradPool) {
	if g, ok := l.(gradPooled); ok {
		g.setGradPool(p)
	}
}

func (c *Conv2d) setGradPool(p *gradPool)        { c.pool = p }
func (b *BatchNorm) setGradPool(p *gradPool)     { b.pool = p }
func (r *ReLU) setGradPool(p *gradPool)          { r.pool = p }
func (l *Linear) setGradPool(p *gradPool)        { l.pool = p }
func (m *MaxPool2d) setGradPool(p *gradPool)     { m.pool = p }
func (g *GlobalAvgPool) setGradPool(p *gradPool) { g.pool = p }

func (q *Sequential) setGradPool(p *gradPool) {
	q.pool = p
	for _, l := range q.Layers {
		useGradPool(l, p)
	}
}

func (r *residual) setGradPool(p *gradPool) {
	r.pool = p
	useGradPool(r.main, p)
	if r.downsample != nil {
		useGradPool(r.downsample, p)
	}
	useGradPool(r.relu, p)
}
