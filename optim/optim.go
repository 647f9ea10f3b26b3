// Package optim holds the optimizers (SGD, LARS, AdamW) and the learning-rate
// schedule. Optimizers update nn.Param values in place from their gradients;
// updates are computed in float64 per element and stored as float32.
package optim

import (
	"fmt"

	"github.com/corinfomax/corinfomax/nn"
)

// Optimizer updates parameters from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr.
	Step(lr float64) error
	// ZeroGrad sets every parameter gradient to zero.
	ZeroGrad()
	// State returns copies of the optimizer's state tensors (for
	// checkpoints), named "<kind>.<parameter name>".
	State() []StateTensor
	// SetState restores tensors returned by State.
	SetState([]StateTensor) error
	// Name identifies the optimizer ("sgd", "lars", "adamw").
	Name() string
}

// StateTensor is one named state tensor of an optimizer, such as
// "momentum_buffer.layer1.0.conv1.weight".
type StateTensor struct {
	Name string
	Data []float32
}

// slots holds one optional state vector per parameter, by kind
// ("momentum_buffer", "exp_avg", ...).
type slots struct {
	params []*nn.Param
	kinds  []string
	data   map[string][][]float32 // kind -> per parameter (nil until used)
}

func newSlots(params []*nn.Param, kinds ...string) slots {
	s := slots{params: params, kinds: kinds, data: map[string][][]float32{}}
	for _, k := range kinds {
		s.data[k] = make([][]float32, len(params))
	}
	return s
}

// get returns the state vector kind of parameter i, allocating a zero one
// when there is none yet; ok reports whether it existed before.
func (s *slots) get(kind string, i int) (v []float32, ok bool) {
	v = s.data[kind][i]
	if v != nil {
		return v, true
	}
	v = make([]float32, s.params[i].Value.Len())
	s.data[kind][i] = v
	return v, false
}

func (s *slots) state() []StateTensor {
	var out []StateTensor
	for _, k := range s.kinds {
		for i, v := range s.data[k] {
			if v != nil {
				out = append(out, StateTensor{Name: k + "." + s.params[i].Name, Data: append([]float32(nil), v...)})
			}
		}
	}
	return out
}

// setState replaces the state: parameters absent from st start fresh.
func (s *slots) setState(st []StateTensor, extra func(StateTensor) (bool, error)) error {
	index := map[string]int{}
	for i, p := range s.params {
		index[p.Name] = i
	}
	fresh := map[string][][]float32{}
	for _, k := range s.kinds {
		fresh[k] = make([][]float32, len(s.params))
	}
	for _, t := range st {
		if extra != nil {
			handled, err := extra(t)
			if err != nil {
				return err
			}
			if handled {
				continue
			}
		}
		matched := false
		for _, k := range s.kinds {
			name, found := cutPrefix(t.Name, k+".")
			if !found {
				continue
			}
			i, ok := index[name]
			if !ok {
				return fmt.Errorf("optim: state %q names no parameter", t.Name)
			}
			if len(t.Data) != s.params[i].Value.Len() {
				return fmt.Errorf("optim: state %q has %d values, parameter has %d", t.Name, len(t.Data), s.params[i].Value.Len())
			}
			fresh[k][i] = append([]float32(nil), t.Data...)
			matched = true
			break
		}
		if !matched {
			return fmt.Errorf("optim: unknown state tensor %q", t.Name)
		}
	}
	s.data = fresh
	return nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

func checkParams(params []*nn.Param) error {
	seen := map[string]bool{}
	for i, p := range params {
		if p == nil || p.Value == nil || p.Grad == nil || p.Value.Len() != p.Grad.Len() {
			return fmt.Errorf("optim: parameter %d is nil or its gradient does not match", i)
		}
		if seen[p.Name] {
			return fmt.Errorf("optim: duplicate parameter name %q", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}
