package model

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
)

// Position is where a run stands: Epoch is the 0-based epoch in progress,
// StepInEpoch the steps of it already done, Step the global step count,
// Skipped the steps skipped by --on-nan skip.
type Position struct {
	Epoch       int `json:"epoch"`
	StepInEpoch int `json:"step_in_epoch"`
	Step        int `json:"step"`
	Skipped     int `json:"skipped_steps"`
}

// State is everything a pretraining checkpoint holds besides the
// network's weights.
type State struct {
	Spec Spec
	// Size, Data and Norm are what inference needs to feed the network as
	// it was trained: the crop size, the --data spec and the normalisation.
	Size int
	Data string
	Norm data.Norm
	// Method and Recipe name the objective and the recipe of the run.
	Method, Recipe string
	// Config is the trainer's configuration as JSON (opaque here); nil in a
	// weights-only checkpoint.
	Config   json.RawMessage
	Position Position
	// Optimizer and MethodState are the optimizer's and the SSL method's
	// running state.
	Optimizer   []optim.StateTensor
	MethodState []ssl.StateTensor
	// Probe is the online linear probe's state by name (nil without one).
	Probe map[string][]float32
	// Momentum is the momentum network of BYOL and MoCo (nil without
	// one), saved under MomentumPrefix; Checkpoint.LoadMomentum restores it.
	Momentum *nn.Network
}

// Save writes net's weights and st to path atomically: a crash leaves the
// previous file intact.
func Save(path string, net *nn.Network, st *State) error {
	f := &checkpoint.File{Metadata: map[string]string{}}
	f.Tensors = ModelTensors(net)
	if st.Momentum != nil {
		for _, t := range ModelTensors(st.Momentum) {
			t.Name = MomentumPrefix + t.Name
			f.Tensors = append(f.Tensors, t)
		}
	}
	for _, s := range st.Optimizer {
		f.Tensors = append(f.Tensors, &checkpoint.Tensor{Name: OptimizerPrefix + s.Name, DType: "F32",
			Shape: []int{len(s.Data)}, F32: append([]float32(nil), s.Data...)})
	}
	for _, s := range st.MethodState {
		f.Tensors = append(f.Tensors, &checkpoint.Tensor{Name: MethodPrefix + s.Name, DType: "F64",
			Shape: append([]int(nil), s.Shape...), F64: append([]float64(nil), s.Data...)})
	}
	for _, name := range sortedKeys(st.Probe) {
		d := st.Probe[name]
		f.Tensors = append(f.Tensors, &checkpoint.Tensor{Name: ProbePrefix + name, DType: "F32",
			Shape: []int{len(d)}, F32: append([]float32(nil), d...)})
	}
	spec, err := json.Marshal(st.Spec)
	if err != nil {
		return fmt.Errorf("encoding the model spec: %w", err)
	}
	norm, err := json.Marshal(st.Norm)
	if err != nil {
		return fmt.Errorf("encoding the normalisation: %w", err)
	}
	pos, err := json.Marshal(st.Position)
	if err != nil {
		return fmt.Errorf("encoding the position: %w", err)
	}
	f.Metadata[MetaFormat] = FormatVersion
	f.Metadata[MetaModel] = string(spec)
	f.Metadata[MetaSize] = strconv.Itoa(st.Size)
	f.Metadata[MetaData] = st.Data
	f.Metadata[MetaNorm] = string(norm)
	f.Metadata[MetaPosition] = string(pos)
	f.Metadata[MetaMethod] = st.Method
	f.Metadata[MetaRecipe] = st.Recipe
	if st.Config != nil {
		f.Metadata[MetaConfig] = string(st.Config)
	}
	return checkpoint.Write(path, f)
}

// Checkpoint is a checkpoint file read back: its tensors and what its
// metadata says.
type Checkpoint struct {
	Path string
	File *checkpoint.File
	// State is the decoded metadata and training state. Fields the file
	// lacks are zero: a weights-only file has no Config, Size or Norm.
	State
}

// Read reads the checkpoint at path (a .safetensors file or a run
// directory) and decodes its metadata. The model spec is required; the
// training state is decoded when present.
func Read(path string) (*Checkpoint, error) {
	p, err := ResolveCheckpoint(path)
	if err != nil {
		return nil, err
	}
	f, err := checkpoint.Read(p)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Path: p, File: f}
	if c.Spec, err = SpecOf(f, p); err != nil {
		return nil, err
	}
	m := f.Metadata
	if s, ok := m[MetaSize]; ok {
		if c.Size, err = strconv.Atoi(s); err != nil {
			return nil, fmt.Errorf("%s: metadata %s = %q: want an integer", p, MetaSize, s)
		}
	}
	if s, ok := m[MetaNorm]; ok {
		if err := json.Unmarshal([]byte(s), &c.Norm); err != nil {
			return nil, fmt.Errorf("%s: metadata %s: %w", p, MetaNorm, err)
		}
	}
	if s, ok := m[MetaPosition]; ok {
		if err := json.Unmarshal([]byte(s), &c.Position); err != nil {
			return nil, fmt.Errorf("%s: metadata %s: %w", p, MetaPosition, err)
		}
	}
	if s, ok := m[MetaConfig]; ok {
		c.Config = json.RawMessage(s)
	}
	c.Data, c.Method, c.Recipe = m[MetaData], m[MetaMethod], m[MetaRecipe]
	for _, ct := range f.Tensors {
		switch {
		case strings.HasPrefix(ct.Name, OptimizerPrefix):
			if ct.DType != "F32" {
				return nil, fmt.Errorf("%s: tensor %s has dtype %s, want F32", p, ct.Name, ct.DType)
			}
			c.Optimizer = append(c.Optimizer, optim.StateTensor{Name: strings.TrimPrefix(ct.Name, OptimizerPrefix), Data: ct.F32})
		case strings.HasPrefix(ct.Name, ProbePrefix):
			if ct.DType != "F32" {
				return nil, fmt.Errorf("%s: tensor %s has dtype %s, want F32", p, ct.Name, ct.DType)
			}
			if c.Probe == nil {
				c.Probe = map[string][]float32{}
			}
			c.Probe[strings.TrimPrefix(ct.Name, ProbePrefix)] = ct.F32
		case strings.HasPrefix(ct.Name, MethodPrefix):
			if ct.DType != "F64" {
				return nil, fmt.Errorf("%s: tensor %s has dtype %s, want F64", p, ct.Name, ct.DType)
			}
			c.MethodState = append(c.MethodState, ssl.StateTensor{Name: strings.TrimPrefix(ct.Name, MethodPrefix),
				Shape: ct.Shape, Data: ct.F64})
		}
	}
	return c, nil
}

// LoadMomentum copies the checkpoint's momentum network into target (see
// LoadMomentum).
func (c *Checkpoint) LoadMomentum(target *nn.Network) error {
	return LoadMomentum(c.File, c.Path, target)
}

// LoadWeights copies the checkpoint's weights into net (see LoadWeights).
func (c *Checkpoint) LoadWeights(net *nn.Network, opt LoadOptions) error {
	return LoadWeights(c.File, c.Path, net, opt)
}

// sortedKeys returns the keys of m in order (tensors are written in a
// fixed order).
func sortedKeys(m map[string][]float32) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
