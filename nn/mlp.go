package nn

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/tensor"
)

// ParseSpec parses a projector specification such as "2048-2048-64" into
// its layer sizes; every size must be a positive integer.
func ParseSpec(spec string) ([]int, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("nn: empty MLP spec")
	}
	parts := strings.Split(spec, "-")
	sizes := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("nn: MLP spec %q: %w", spec, err)
		}
		if n < 1 {
			return nil, fmt.Errorf("nn: MLP spec %q: size %d < 1", spec, n)
		}
		sizes[i] = n
	}
	return sizes, nil
}

// MLPConfig describes a projector.
type MLPConfig struct {
	// In is the input size (the backbone's feature dimension).
	In int
	// Spec lists the output sizes of the linear layers, "2048-2048-64":
	// hidden sizes, then the output size.
	Spec string
	// BN inserts BatchNorm1d after every hidden linear layer.
	BN bool
	// Prefix names the parameters ("projector" gives "projector.0.weight").
	Prefix string
	// LastBias gives the last linear layer a bias (torch.nn.Linear's
	// default, as in BYOL's and MoCo's projectors and every predictor);
	// CorInfoMax's reference projector has none.
	LastBias bool
	// OutBN ends the MLP with BatchNorm1d(affine=False) on its output
	// (SimSiam's projector).
	OutBN bool
}

// MLP is a projector Linear-[BN]-ReLU-...-Linear, the last linear layer
// without bias. Parameter names use the index each layer has in the
// equivalent PyTorch nn.Sequential: without BN "2048-2048-64" gives
// Prefix.0 (Linear), .1 ReLU, .2 Linear, .3 ReLU, .4 Linear; with BN .0
// Linear, .1 BatchNorm1d, .2 ReLU, .3 Linear, .4 BatchNorm1d, .5 ReLU,
// .6 Linear (and with OutBN .7 BatchNorm1d(affine=False)). Hidden linear layers keep their bias even when followed by
// batch norm, as solo-learn's projectors do (nn.Linear's default bias=True;
// the bias is then redundant but harmless).
type MLP struct {
	Config  MLPConfig
	Linears []*Linear
	BNs     []*BatchNorm // one per hidden layer with BN, then OutBN's
	seq     *Sequential
	params  []*Param // cached for ZeroGrad
	outDim  int
	pool    *gradPool      // input gradients of all layers
	out     *tensor.Tensor // the gradient the last Backward returned
}

// NewMLP builds the projector with nn.Linear's default initialisation.
func NewMLP(be ops.Backend, cfg MLPConfig, rng *rand.Rand) (*MLP, error) {
	if cfg.In < 1 {
		return nil, fmt.Errorf("nn: MLP input size %d < 1", cfg.In)
	}
	sizes, err := ParseSpec(cfg.Spec)
	if err != nil {
		return nil, err
	}
	if be == nil || rng == nil {
		return nil, fmt.Errorf("nn: NewMLP needs a backend and a random source")
	}
	m := &MLP{Config: cfg, outDim: sizes[len(sizes)-1]}
	var layers []Layer
	in := cfg.In
	for i, out := range sizes {
		name := fmt.Sprintf("%s.%d", cfg.Prefix, len(layers))
		if cfg.Prefix == "" {
			name = strconv.Itoa(len(layers))
		}
		last := i == len(sizes)-1
		lin, err := NewLinear(be, name, in, out, !last || cfg.LastBias, rng)
		if err != nil {
			return nil, err
		}
		m.Linears = append(m.Linears, lin)
		layers = append(layers, lin)
		if !last {
			if cfg.BN {
				bnName := fmt.Sprintf("%s.%d", cfg.Prefix, len(layers))
				if cfg.Prefix == "" {
					bnName = strconv.Itoa(len(layers))
				}
				bn, err := NewBatchNorm(be, bnName, out)
				if err != nil {
					return nil, err
				}
				bn.InPlaceGrad = true // its dy is the ReLU's, which nothing else reads
				m.BNs = append(m.BNs, bn)
				layers = append(layers, bn)
			}
			layers = append(layers, &ReLU{InPlace: true, InPlaceGrad: true, be: be})
		}
		in = out
	}
	if cfg.OutBN {
		name := fmt.Sprintf("%s.%d", cfg.Prefix, len(layers))
		if cfg.Prefix == "" {
			name = strconv.Itoa(len(layers))
		}
		bn, err := NewBatchNorm(be, name, m.outDim)
		if err != nil {
			return nil, err
		}
		bn.NoAffine = true // its dy is the caller's: not overwritten (no InPlaceGrad)
		m.BNs = append(m.BNs, bn)
		layers = append(layers, bn)
	}
	m.seq = NewSequential(layers...)
	m.pool = newGradPool()
	useGradPool(m.seq, m.pool)
	m.params = m.seq.Params()
	return m, nil
}

// OutDim is the projector's output size.
func (m *MLP) OutDim() int { return m.outDim }

// Forward maps x [N, In] to [N, OutDim()].
func (m *MLP) Forward(slot int, x *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := m.seq.Forward(slot, x)
	if err != nil {
		return nil, fmt.Errorf("mlp %s: %w", m.Config.Prefix, err)
	}
	return y, nil
}

// Backward adds the parameter gradients and returns dL/dx, valid until
// the next Backward.
func (m *MLP) Backward(slot int, dy *tensor.Tensor) (*tensor.Tensor, error) {
	m.pool.release(m.out)
	m.out = nil
	dx, err := m.seq.Backward(slot, dy)
	if err != nil {
		return nil, fmt.Errorf("mlp %s: %w", m.Config.Prefix, err)
	}
	m.out = dx
	return dx, nil
}

// ZeroGrad sets every parameter gradient to zero (without allocating).
func (m *MLP) ZeroGrad() { ZeroGrad(m.params) }

// Params lists the parameters in nn.Sequential order.
func (m *MLP) Params() []*Param { return m.seq.Params() }

// Buffers lists the batch-norm running statistics.
func (m *MLP) Buffers() []*Buffer { return m.seq.Buffers() }

// SetTraining switches the batch norms between batch and running statistics.
func (m *MLP) SetTraining(training bool) { m.seq.SetTraining(training) }
