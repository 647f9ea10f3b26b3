package optim

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/corinfomax/corinfomax/nn"
)

// larsFixtures is optim/testdata/lars_fixtures.json, written by
// tools/pytorch/gen_lars_fixtures.py (solo-learn's LARS step re-implemented
// in PyTorch).
type larsFixtures struct {
	Generator string `json:"generator"`
	Torch     string `json:"torch"`
	Cases     []struct {
		Name             string  `json:"name"`
		ClipLR           bool    `json:"clip_lr"`
		ExcludeBiasAndBN bool    `json:"exclude_bias_n_norm"`
		Mom              float64 `json:"momentum"`
		WD               float64 `json:"weight_decay"`
		Eta              float64 `json:"eta"`
		Eps              float64 `json:"eps"`
		Params           []struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Shape []int  `json:"shape"`
		} `json:"params"`
		Init  [][]float32 `json:"init"`
		Steps []struct {
			LR        float64         `json:"lr"`
			Grads     [][]float32     `json:"grads"`
			After     [][]float64     `json:"after"`
			ClipBound map[string]bool `json:"clip_bound"`
		} `json:"steps"`
	} `json:"cases"`
}

var fixtureKinds = map[string]nn.ParamKind{
	"weight": nn.KindWeight, "bias": nn.KindBias, "bn_weight": nn.KindBNWeight, "bn_bias": nn.KindBNBias,
}

// TestLARSMatchesPyTorch runs our LARS through the fixture's steps (changing
// learning rates, clip_lr on and off, the bias/BN exclusion on and off,
// momentum 0.9, weight decay) and compares every parameter after every step
// with solo-learn's step re-implemented in PyTorch, to 1e-6 relative
// (1e-6 * max(1, |w|)). Without the clip the clip cases fail, and the
// other way round.
func TestLARSMatchesPyTorch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "lars_fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx larsFixtures
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx.Cases) < 4 {
		t.Fatalf("%d cases in the fixture, want 4", len(fx.Cases))
	}
	for _, c := range fx.Cases {
		t.Run(c.Name, func(t *testing.T) {
			ps := make([]*nn.Param, len(c.Params))
			for i, pp := range c.Params {
				kind, ok := fixtureKinds[pp.Kind]
				if !ok {
					t.Fatalf("unknown kind %q", pp.Kind)
				}
				ps[i] = nn.NewParam(pp.Name, kind, pp.Shape...)
				if len(c.Init[i]) != ps[i].Value.Len() {
					t.Fatalf("%s: %d initial values for %d elements", pp.Name, len(c.Init[i]), ps[i].Value.Len())
				}
				copy(ps[i].Value.Data, c.Init[i])
			}
			o := NewLARS(ps, c.Mom, c.WD, c.Eta, c.ExcludeBiasAndBN)
			o.Eps = c.Eps
			o.ClipLR = c.ClipLR
			bound, free := 0, 0
			for s, st := range c.Steps {
				for i, p := range ps {
					copy(p.Grad.Data, st.Grads[i])
				}
				if err := o.Step(st.LR); err != nil {
					t.Fatal(err)
				}
				for i, p := range ps {
					worst := 0.0
					for j, want := range st.After[i] {
						e := math.Abs(float64(p.Value.Data[j])-want) / math.Max(1, math.Abs(want))
						worst = math.Max(worst, e)
					}
					if worst > 1e-6 {
						t.Errorf("step %d (lr %g): %s differs from PyTorch by %.3g relative (clip bound: %v)",
							s+1, st.LR, p.Name, worst, st.ClipBound)
					}
				}
				for _, b := range st.ClipBound {
					if b {
						bound++
					} else {
						free++
					}
				}
			}
			if c.ClipLR && (bound == 0 || free == 0) {
				t.Errorf("the clip binds in %d and not in %d parameter-steps: the fixture should have both", bound, free)
			}
		})
	}
}

// TestLARSClipState checks that the clip leaves the checkpoint state as it
// was (one momentum buffer per parameter, same names), so that a run
// checkpointed before ClipLR existed resumes.
func TestLARSClipState(t *testing.T) {
	a, b := testParams(), testParams()
	oa := NewLARS(a, 0.9, 1e-4, 0.02, true)
	ob := NewLARS(b, 0.9, 1e-4, 0.02, true)
	ob.ClipLR = true
	if err := oa.Step(0.1); err != nil {
		t.Fatal(err)
	}
	if err := ob.Step(0.1); err != nil {
		t.Fatal(err)
	}
	sa, sb := oa.State(), ob.State()
	if len(sa) != len(sb) {
		t.Fatalf("%d state tensors without the clip, %d with", len(sa), len(sb))
	}
	for i := range sa {
		if sa[i].Name != sb[i].Name || len(sa[i].Data) != len(sb[i].Data) {
			t.Errorf("state %d: %s[%d] without the clip, %s[%d] with", i, sa[i].Name, len(sa[i].Data), sb[i].Name, len(sb[i].Data))
		}
	}
	if err := ob.SetState(sa); err != nil {
		t.Errorf("the clipped optimizer refuses the unclipped one's state: %v", err)
	}
}
