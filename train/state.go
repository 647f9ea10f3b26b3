package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/optim"
	"github.com/corinfomax/corinfomax/ssl"
)

// Metadata keys of the training state in a checkpoint.
const (
	metaConfig = "corinfomax.config"   // JSON of Config
	metaPos    = "corinfomax.position" // JSON of position
	metaMethod = "corinfomax.method"
	metaRecipe = "corinfomax.recipe"
)

// position is where a run stands: Epoch is the 0-based epoch in progress,
// StepInEpoch the steps of it already done, Step the global step count.
type position struct {
	Epoch       int `json:"epoch"`
	StepInEpoch int `json:"step_in_epoch"`
	Step        int `json:"step"`
	Skipped     int `json:"skipped_steps"`
}

func checkpointPath(dir string) string { return filepath.Join(dir, encoder.CheckpointFile) }

// HasCheckpoint reports whether the run directory dir holds a checkpoint to
// resume from. A run killed before its first checkpoint has none: Run with
// resume then starts from scratch.
func HasCheckpoint(dir string) bool {
	st, err := os.Stat(checkpointPath(dir))
	return err == nil && st.Mode().IsRegular()
}

// save writes the whole training state (weights, running statistics,
// optimizer state, method state, position, configuration) atomically.
func (t *Trainer) save() error {
	return t.saveAt(position{Epoch: t.epoch, StepInEpoch: t.stepInEpoch, Step: t.step, Skipped: t.skipped})
}

// saveAt writes the checkpoint recording the position pos.
func (t *Trainer) saveAt(pos position) error {
	f := &checkpoint.File{Metadata: map[string]string{}}
	f.Tensors = encoder.ModelTensors(t.net)
	for _, s := range t.opt.State() {
		f.Tensors = append(f.Tensors, &checkpoint.Tensor{Name: "optimizer." + s.Name, DType: "F32",
			Shape: []int{len(s.Data)}, F32: append([]float32(nil), s.Data...)})
	}
	if st, ok := t.method.(ssl.Stateful); ok {
		for _, s := range st.State() {
			f.Tensors = append(f.Tensors, &checkpoint.Tensor{Name: "method." + s.Name, DType: "F64",
				Shape: append([]int(nil), s.Shape...), F64: append([]float64(nil), s.Data...)})
		}
	}
	spec, _ := json.Marshal(t.spec)
	cfg, _ := json.Marshal(t.cfg)
	posJSON, _ := json.Marshal(pos)
	pipe, err := Pipeline(&t.cfg, t.train)
	if err != nil {
		return err
	}
	norm, _ := json.Marshal(pipe.Norm)
	f.Metadata[encoder.MetaFormat] = "1"
	f.Metadata[encoder.MetaModel] = string(spec)
	f.Metadata[encoder.MetaSize] = strconv.Itoa(t.cfg.Size)
	f.Metadata[encoder.MetaData] = t.cfg.Data
	f.Metadata[encoder.MetaNorm] = string(norm)
	f.Metadata[metaConfig] = string(cfg)
	f.Metadata[metaPos] = string(posJSON)
	f.Metadata[metaMethod] = t.cfg.Method
	f.Metadata[metaRecipe] = t.cfg.Recipe
	if err := checkpoint.Write(checkpointPath(t.cfg.Out), f); err != nil {
		return fmt.Errorf("saving the checkpoint at step %d (the previous checkpoint, if any, is intact; "+
			"resume from it with --resume once the disk has room): %w", t.step, err)
	}
	return nil
}

// runState is a checkpoint read back for --resume.
type runState struct {
	Config Config
	Pos    position
	File   *checkpoint.File
	Path   string
}

func readRunState(path string) (*runState, error) {
	f, err := checkpoint.Read(path)
	if err != nil {
		return nil, err
	}
	rs := &runState{File: f, Path: path}
	raw, ok := f.Metadata[metaConfig]
	if !ok {
		return nil, fmt.Errorf("%s: no training configuration in the metadata: not a pretraining checkpoint", path)
	}
	if err := json.Unmarshal([]byte(raw), &rs.Config); err != nil {
		return nil, fmt.Errorf("%s: metadata %s: %w", path, metaConfig, err)
	}
	if err := json.Unmarshal([]byte(f.Metadata[metaPos]), &rs.Pos); err != nil {
		return nil, fmt.Errorf("%s: metadata %s: %w", path, metaPos, err)
	}
	return rs, nil
}

// restore puts the checkpoint's state into t (built from the same config).
func (rs *runState) restore(t *Trainer) error {
	spec, err := encoder.SpecOf(rs.File, rs.Path)
	if err != nil {
		return err
	}
	if spec != t.spec {
		return fmt.Errorf("%s: the checkpoint's model %+v differs from the run's %+v (a resumed run keeps its "+
			"model: drop the --arch/--stem/--width/--projector flags, or start a new run with --init)", rs.Path, spec, t.spec)
	}
	if err := encoder.LoadWeights(rs.File, rs.Path, t.net, encoder.LoadOptions{}); err != nil {
		return err
	}
	var opt []optim.StateTensor
	var meth []ssl.StateTensor
	for _, ct := range rs.File.Tensors {
		switch {
		case strings.HasPrefix(ct.Name, "optimizer."):
			if ct.DType != "F32" {
				return fmt.Errorf("%s: tensor %s has dtype %s, want F32", rs.Path, ct.Name, ct.DType)
			}
			opt = append(opt, optim.StateTensor{Name: strings.TrimPrefix(ct.Name, "optimizer."), Data: ct.F32})
		case strings.HasPrefix(ct.Name, "method."):
			if ct.DType != "F64" {
				return fmt.Errorf("%s: tensor %s has dtype %s, want F64", rs.Path, ct.Name, ct.DType)
			}
			meth = append(meth, ssl.StateTensor{Name: strings.TrimPrefix(ct.Name, "method."), Shape: ct.Shape, Data: ct.F64})
		}
	}
	if err := t.opt.SetState(opt); err != nil {
		return fmt.Errorf("%s: optimizer state: %w", rs.Path, err)
	}
	if st, ok := t.method.(ssl.Stateful); ok && len(meth) > 0 { // none before the first step
		if err := st.SetState(meth); err != nil {
			return fmt.Errorf("%s: %s state: %w", rs.Path, t.cfg.Method, err)
		}
	}
	t.epoch, t.stepInEpoch, t.step, t.skipped = rs.Pos.Epoch, rs.Pos.StepInEpoch, rs.Pos.Step, rs.Pos.Skipped
	return nil
}

// loadWeights starts a run from the weights of another file (--init): the
// backbone must match exactly; a missing projector keeps its random
// initialisation; foreign extras (fc.*, num_batches_tracked) are ignored.
func loadWeights(path string, t *Trainer) error {
	f, err := checkpoint.Read(path)
	if err != nil {
		return err
	}
	return encoder.LoadWeights(f, path, t.net, encoder.LoadOptions{AllowMissingProjector: true, AllowUnknown: true})
}

// StoredConfig returns the configuration saved in the checkpoint of the run
// directory dir: the base of a --resume.
func StoredConfig(dir string) (Config, error) {
	rs, err := readRunState(checkpointPath(dir))
	if err != nil {
		return Config{}, fmt.Errorf("resuming %s: %w", dir, err)
	}
	return rs.Config, nil
}
