package train

import (
	"encoding/json"
	"fmt"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/ssl"
)

// HasCheckpoint reports whether the run directory dir holds a checkpoint to
// resume from. A run killed before its first checkpoint has none: Run with
// resume then starts from scratch.
func HasCheckpoint(dir string) bool { return model.RunDir(dir).HasCheckpoint() }

// save writes the whole training state (weights, running statistics,
// optimizer state, method state, position, configuration) atomically.
func (t *Trainer) save() error {
	return t.saveAt(model.Position{Epoch: t.epoch, StepInEpoch: t.stepInEpoch, Step: t.step, Skipped: t.skipped})
}

// saveAt writes the checkpoint recording the position pos (rank 0 only:
// the other ranks of a data-parallel run hold the same state).
func (t *Trainer) saveAt(pos model.Position) error {
	if !t.lead {
		return nil
	}
	cfg, err := json.Marshal(t.cfg)
	if err != nil {
		return fmt.Errorf("encoding the configuration: %w", err)
	}
	st := &model.State{Spec: t.spec, Size: t.cfg.Size, Data: t.cfg.Data, Norm: t.norm, Method: t.cfg.Method,
		Recipe: t.cfg.Recipe, Config: cfg, Position: pos, Optimizer: t.opt.State()}
	if s, ok := t.method.(ssl.Stateful); ok {
		st.MethodState = s.State()
	}
	if t.probe != nil {
		st.Probe = t.probe.State()
	}
	if t.momentum != nil {
		st.Momentum = t.momentum.Net
	}
	if err := model.Save(t.dir.Checkpoint(), t.net, st); err != nil {
		return fmt.Errorf("saving the checkpoint at step %d (the previous checkpoint, if any, is intact; "+
			"resume from it with --resume once the disk has room): %w", t.step, err)
	}
	return nil
}

// runState is a checkpoint read back for --resume.
type runState struct {
	Config Config
	Pos    model.Position
	Ck     *model.Checkpoint
}

func readRunState(path string) (*runState, error) {
	ck, err := model.Read(path)
	if err != nil {
		return nil, err
	}
	if ck.Config == nil {
		return nil, fmt.Errorf("%s: no training configuration in the metadata: not a pretraining checkpoint", ck.Path)
	}
	rs := &runState{Pos: ck.Position, Ck: ck}
	if err := json.Unmarshal(ck.Config, &rs.Config); err != nil {
		return nil, fmt.Errorf("%s: metadata %s: %w", ck.Path, model.MetaConfig, err)
	}
	// Configurations written before the option declarations hold every
	// method's options; keep the run's method's.
	opts, err := ssl.Declared(rs.Config.Method, rs.Config.MethodOpts)
	if err == nil {
		opts, err = ssl.Resolved(rs.Config.Method, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: method options: %w", ck.Path, err)
	}
	rs.Config.MethodOpts = opts
	return rs, nil
}

// restore puts the checkpoint's state into t (built from the same config).
func (rs *runState) restore(t *Trainer) error {
	ck := rs.Ck
	if ck.Spec != t.spec {
		return fmt.Errorf("%s: the checkpoint's model %+v differs from the run's %+v (a resumed run keeps its "+
			"model: drop the --arch/--stem/--width/--projector flags, or start a new run with --init)", ck.Path, ck.Spec, t.spec)
	}
	if err := ck.LoadWeights(t.net, model.LoadOptions{}); err != nil {
		return err
	}
	if t.momentum != nil {
		if err := ck.LoadMomentum(t.momentum.Net); err != nil {
			return err
		}
	}
	if err := t.opt.SetState(ck.Optimizer); err != nil {
		return fmt.Errorf("%s: optimizer state: %w", ck.Path, err)
	}
	if st, ok := t.method.(ssl.Stateful); ok && len(ck.MethodState) > 0 { // none before the first step
		if err := st.SetState(ck.MethodState); err != nil {
			return fmt.Errorf("%s: %s state: %w", ck.Path, t.cfg.Method, err)
		}
	}
	if t.probe != nil {
		if ck.Probe == nil {
			fmt.Fprintf(t.log, "the checkpoint has no online probe (the run started without --online-probe): a new probe starts now\n")
		} else if err := t.probe.SetState(ck.Probe); err != nil {
			return fmt.Errorf("%s: %w", ck.Path, err)
		}
	}
	t.epoch, t.stepInEpoch, t.step, t.skipped = rs.Pos.Epoch, rs.Pos.StepInEpoch, rs.Pos.Step, rs.Pos.Skipped
	return nil
}

// loadWeights starts a run from the weights of another file (--init): the
// backbone must match exactly; a missing projector keeps its random
// initialisation; foreign extras (fc.*, num_batches_tracked) are ignored.
// A foreign file (no corinfomax metadata) is accepted.
func loadWeights(path string, t *Trainer) error {
	f, err := checkpoint.Read(path)
	if err != nil {
		return err
	}
	return model.LoadWeights(f, path, t.net, model.LoadOptions{AllowMissingProjector: true, AllowUnknown: true})
}

// StoredConfig returns the configuration saved in the checkpoint of the run
// directory dir: the base of a --resume.
func StoredConfig(dir string) (Config, error) {
	rs, err := readRunState(model.RunDir(dir).Checkpoint())
	if err != nil {
		return Config{}, fmt.Errorf("resuming %s: %w", dir, err)
	}
	return rs.Config, nil
}
