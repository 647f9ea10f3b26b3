package model

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/tensor"
)

// Metadata keys of a checkpoint. Every checkpoint has MetaFormat and
// MetaModel; a pretraining checkpoint has all of them.
const (
	MetaFormat   = "corinfomax.format"   // "1"
	MetaModel    = "corinfomax.model"    // JSON of Spec
	MetaSize     = "corinfomax.size"     // training crop size in pixels
	MetaData     = "corinfomax.data"     // the --data the run trained on
	MetaNorm     = "corinfomax.norm"     // JSON of data.Norm
	MetaConfig   = "corinfomax.config"   // JSON of the trainer's configuration
	MetaPosition = "corinfomax.position" // JSON of Position
	MetaMethod   = "corinfomax.method"   // the SSL method's name
	MetaRecipe   = "corinfomax.recipe"   // the recipe the run started from
)

// Name prefixes of the training-state tensors stored beside the weights.
const (
	OptimizerPrefix = "optimizer."    // float32 optimizer state (momentum buffers, ...)
	MethodPrefix    = "method."       // float64 running state of the SSL method
	ProbePrefix     = "online_probe." // float32 weights and momentum of the online linear probe
	MomentumPrefix  = "momentum."     // the momentum network's weights and buffers (BYOL, MoCo), under their own names
)

// FormatVersion is the value of MetaFormat this code writes.
const FormatVersion = "1"

// ModelTensors returns the network's parameters and buffers as checkpoint
// tensors under their torchvision / projector names (sharing no memory with
// the network).
func ModelTensors(net *nn.Network) []*checkpoint.Tensor {
	var out []*checkpoint.Tensor
	add := func(name string, v *tensor.Tensor) {
		out = append(out, &checkpoint.Tensor{Name: name, DType: "F32", Shape: append([]int(nil), v.Shape...),
			F32: append([]float32(nil), v.Data...)})
	}
	for _, p := range net.Params() {
		add(p.Name, p.Value)
	}
	for _, b := range net.Buffers() {
		add(b.Name, b.Value)
	}
	return out
}

// slot is one tensor of a network to load: its name and value.
type slot struct {
	name string
	v    *tensor.Tensor
}

// tensorSlots lists the parameters, then the buffers, as slots.
func tensorSlots(ps []*nn.Param, bs []*nn.Buffer) []slot {
	slots := make([]slot, 0, len(ps)+len(bs))
	for _, p := range ps {
		slots = append(slots, slot{p.Name, p.Value})
	}
	for _, b := range bs {
		slots = append(slots, slot{b.Name, b.Value})
	}
	return slots
}

// LoadMomentum copies the momentum network's tensors of f (saved under
// MomentumPrefix) into target, checking every name, dtype and shape.
func LoadMomentum(f *checkpoint.File, path string, target *nn.Network) error {
	return loadAll(f, path, tensorSlots(target.Params(), target.Buffers()), MomentumPrefix, "the momentum network",
		"a checkpoint of a run without a momentum network?", "")
}

// loadAll copies, for every slot, f's tensor prefix+name into it, after
// checking that all exist with dtype F32 and the slot's shape; who and the
// hints word the errors ("the backbone needs tensor ..., which the file
// lacks (missingHint)"; a shape error adds " (shapeHint)" when given).
func loadAll(f *checkpoint.File, path string, slots []slot, prefix, who, missingHint, shapeHint string) error {
	for _, s := range slots {
		name := prefix + s.name
		t, ok := f.Get(name)
		if !ok {
			return fmt.Errorf("%s: %s needs tensor %s, which the file lacks (%s)", path, who, name, missingHint)
		}
		if t.DType != "F32" {
			return fmt.Errorf("%s: tensor %s has dtype %s, want F32", path, name, t.DType)
		}
		if !tensor.SameShape(t.Shape, s.v.Shape) {
			if shapeHint != "" {
				return fmt.Errorf("%s: tensor %s has shape %v, %s needs %v (%s)", path, name, t.Shape, who, s.v.Shape, shapeHint)
			}
			return fmt.Errorf("%s: tensor %s has shape %v, %s needs %v", path, name, t.Shape, who, s.v.Shape)
		}
	}
	for _, s := range slots {
		t, _ := f.Get(prefix + s.name)
		copy(s.v.Data, t.F32)
	}
	return nil
}

// SpecOf reads the model spec from a checkpoint's metadata.
func SpecOf(f *checkpoint.File, path string) (Spec, error) {
	var spec Spec
	raw, ok := f.Metadata[MetaModel]
	if !ok {
		return spec, fmt.Errorf("%s: no %q metadata: not a corinfomax checkpoint (use --init to start from foreign weights)", path, MetaModel)
	}
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return spec, fmt.Errorf("%s: metadata %q: %w", path, MetaModel, err)
	}
	return spec, nil
}

// LoadOptions tells LoadWeights how strict to be.
type LoadOptions struct {
	// AllowMissingProjector accepts a file without projector (or
	// predictor) weights (a backbone exported from PyTorch); those keep
	// their values.
	AllowMissingProjector bool
	// AllowUnknown accepts tensors the network does not have (torchvision's
	// fc.* and num_batches_tracked, an optimizer's state).
	AllowUnknown bool
}

// LoadWeights copies the tensors of f into net's parameters and buffers,
// after checking every name, dtype and shape: it never loads part of a
// model silently.
func LoadWeights(f *checkpoint.File, path string, net *nn.Network, opt LoadOptions) error {
	slots := tensorSlots(net.Params(), net.Buffers())
	known := map[string]bool{}
	var missing []string
	for _, s := range slots {
		known[s.name] = true
		t, ok := f.Get(s.name)
		if !ok {
			if opt.AllowMissingProjector && (strings.HasPrefix(s.name, "projector.") || strings.HasPrefix(s.name, "predictor.")) {
				continue
			}
			missing = append(missing, s.name)
			continue
		}
		if t.DType != "F32" {
			return fmt.Errorf("%s: tensor %s has dtype %s, want F32", path, s.name, t.DType)
		}
		if !tensor.SameShape(t.Shape, s.v.Shape) {
			return fmt.Errorf("%s: tensor %s has shape %v, the model needs %v (different architecture or width?)",
				path, s.name, t.Shape, s.v.Shape)
		}
	}
	if len(missing) > 0 {
		more := ""
		if len(missing) > 5 {
			more = fmt.Sprintf(" and %d more", len(missing)-5)
			missing = missing[:5]
		}
		return fmt.Errorf("%s: the model needs tensors the file lacks: %s%s (different architecture?)",
			path, strings.Join(missing, ", "), more)
	}
	if !opt.AllowUnknown {
		for _, t := range f.Tensors {
			if !known[t.Name] && !strings.HasPrefix(t.Name, OptimizerPrefix) && !strings.HasPrefix(t.Name, MethodPrefix) &&
				!strings.HasPrefix(t.Name, ProbePrefix) && !strings.HasPrefix(t.Name, MomentumPrefix) {
				return fmt.Errorf("%s: tensor %s is not part of this model (different architecture?)", path, t.Name)
			}
		}
	}
	for _, s := range slots {
		if t, ok := f.Get(s.name); ok {
			copy(s.v.Data, t.F32)
		}
	}
	return nil
}

// LoadBackbone copies the backbone's parameters and buffers of f (a
// pretrained checkpoint) into net's backbone, checking every name, dtype
// and shape; the projector, the optimizer state and anything else of f are
// ignored, and net's head (or projector) keeps its own weights. A tensor
// the backbone needs and f lacks, or of another shape, is an error naming
// it (a checkpoint of another architecture).
func LoadBackbone(f *checkpoint.File, path string, net *nn.Network) error {
	return loadAll(f, path, tensorSlots(net.Backbone.Params(), net.Backbone.Buffers()), "", "the backbone",
		"a checkpoint of another architecture?", "a checkpoint of another architecture or width?")
}
