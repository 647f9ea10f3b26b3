package nn

import (
	"fmt"

	"github.com/corinfomax/corinfomax/tensor"
)

// Network is the self-supervised model: backbone f and projector g, so that
// h = f(x) and z = g(h). The projector may be nil (z = h). A fine-tuned
// classifier has a Head instead (torchvision's "fc" Linear): z = fc(h), the
// logits; a network has a projector or a head, not both. BYOL and SimSiam
// add a Predictor q on the projector: p = q(z) (Predict).
type Network struct {
	Backbone  *ResNet
	Projector *MLP
	Head      *Linear
	Predictor *MLP
}

// top is the layer after the backbone: the head, the projector, or nil.
func (n *Network) top() Layer {
	switch {
	case n.Head != nil:
		return n.Head
	case n.Projector != nil:
		return n.Projector
	}
	return nil
}

// Forward returns the backbone features h [N, FeatureDim] and the projector
// output z [N, OutDim] of slot's view. Both are owned by the network and
// valid until the slot's next Forward.
func (n *Network) Forward(slot int, x *tensor.Tensor) (h, z *tensor.Tensor, err error) {
	if n.Backbone == nil {
		return nil, nil, fmt.Errorf("nn: network without a backbone")
	}
	if h, err = n.Backbone.Forward(slot, x); err != nil {
		return nil, nil, fmt.Errorf("network backbone: %w", err)
	}
	if n.Head != nil && n.Projector != nil {
		return nil, nil, fmt.Errorf("nn: network with both a projector and a head")
	}
	top := n.top()
	if top == nil {
		return h, h, nil
	}
	if z, err = top.Forward(slot, h); err != nil {
		return nil, nil, fmt.Errorf("network %s: %w", n.topName(), err)
	}
	return h, z, nil
}

// Backward takes dL/dz of slot's view and adds every parameter gradient.
func (n *Network) Backward(slot int, dz *tensor.Tensor) error {
	dh := dz
	if top := n.top(); top != nil {
		var err error
		if dh, err = top.Backward(slot, dz); err != nil {
			return fmt.Errorf("network %s: %w", n.topName(), err)
		}
	}
	if _, err := n.Backbone.Backward(slot, dh); err != nil {
		return fmt.Errorf("network backbone: %w", err)
	}
	return nil
}

// Predict returns the predictor's output p [N, OutDim] for slot's
// projector output z (from Forward); valid until the slot's next Predict.
func (n *Network) Predict(slot int, z *tensor.Tensor) (*tensor.Tensor, error) {
	if n.Predictor == nil {
		return nil, fmt.Errorf("nn: network without a predictor")
	}
	p, err := n.Predictor.Forward(slot, z)
	if err != nil {
		return nil, fmt.Errorf("network predictor: %w", err)
	}
	return p, nil
}

// BackwardPredicted takes dL/dp of slot's view (p from Predict) and adds
// every parameter gradient of the predictor, the projector and the
// backbone.
func (n *Network) BackwardPredicted(slot int, dp *tensor.Tensor) error {
	if n.Predictor == nil {
		return fmt.Errorf("nn: network without a predictor")
	}
	dz, err := n.Predictor.Backward(slot, dp)
	if err != nil {
		return fmt.Errorf("network predictor: %w", err)
	}
	return n.Backward(slot, dz)
}

// Params lists the backbone's parameters (torchvision names), then the
// projector's or the head's, then the predictor's.
func (n *Network) Params() []*Param {
	ps := n.Backbone.Params()
	if top := n.top(); top != nil {
		ps = append(ps, top.Params()...)
	}
	if n.Predictor != nil {
		ps = append(ps, n.Predictor.Params()...)
	}
	return ps
}

func (n *Network) topName() string {
	if n.Head != nil {
		return "head"
	}
	return "projector"
}

// Buffers lists the backbone's buffers, then the projector's, then the
// predictor's.
func (n *Network) Buffers() []*Buffer {
	bs := n.Backbone.Buffers()
	if top := n.top(); top != nil {
		bs = append(bs, top.Buffers()...)
	}
	if n.Predictor != nil {
		bs = append(bs, n.Predictor.Buffers()...)
	}
	return bs
}

// SetTraining sets the mode of backbone, projector (or head) and predictor.
func (n *Network) SetTraining(training bool) {
	n.Backbone.SetTraining(training)
	if top := n.top(); top != nil {
		top.SetTraining(training)
	}
	if n.Predictor != nil {
		n.Predictor.SetTraining(training)
	}
}

// ZeroGrad sets every parameter gradient to zero.
func (n *Network) ZeroGrad() {
	n.Backbone.ZeroGrad()
	if n.Projector != nil {
		n.Projector.ZeroGrad()
	}
	if n.Head != nil {
		ZeroGrad(n.Head.Params())
	}
	if n.Predictor != nil {
		n.Predictor.ZeroGrad()
	}
}

// BatchNorms lists every batch normalisation of the network: the
// backbone's in torchvision's order (bn1, then each block's bn1, bn2, bn3
// and downsample), then the projector's, then the predictor's.
func (n *Network) BatchNorms() []*BatchNorm {
	var bns []*BatchNorm
	if r := n.Backbone; r != nil {
		if r.BN1 != nil {
			bns = append(bns, r.BN1)
		}
		for _, stage := range r.Stages {
			for _, l := range stage {
				switch b := l.(type) {
				case *BasicBlock:
					bns = append(bns, b.BN1, b.BN2)
					if b.DownBN != nil {
						bns = append(bns, b.DownBN)
					}
				case *Bottleneck:
					bns = append(bns, b.BN1, b.BN2, b.BN3)
					if b.DownBN != nil {
						bns = append(bns, b.DownBN)
					}
				}
			}
		}
	}
	if n.Projector != nil {
		bns = append(bns, n.Projector.BNs...)
	}
	if n.Predictor != nil {
		bns = append(bns, n.Predictor.BNs...)
	}
	return bns
}
