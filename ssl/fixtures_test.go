package ssl

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// fixtureFile holds the reference values written by
// tools/pytorch/gen_ssl_fixtures.py.
type fixtureFile struct {
	Generator    string `json:"generator"`
	TorchVersion string `json:"torch_version"`
	Cases        []struct {
		Name    string          `json:"name"`
		Method  string          `json:"method"`
		Options json.RawMessage `json:"options"`
		N       int             `json:"n"`
		D       int             `json:"d"`
		Steps   []struct {
			Z1         []float64 `json:"z1"`
			Z2         []float64 `json:"z2"`
			Loss       float64   `json:"loss"`
			Components [][2]any  `json:"components"`
			G1         []float64 `json:"g1"`
			G2         []float64 `json:"g2"`
			Perms      [][]int   `json:"perms"`
		} `json:"steps"`
	} `json:"cases"`
}

func to32(x []float64) []float32 {
	z := make([]float32, len(x))
	for i, v := range x {
		z[i] = float32(v)
		if float64(z[i]) != v {
			panic("fixture input is not a float32 value")
		}
	}
	return z
}

func relErr(got, want float64) float64 {
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-300)
}

// TestAgainstPyTorch runs every fixture case for its consecutive steps
// through the public float32 API and compares with PyTorch (float64
// autograd): losses and components to 1e-6 relative, gradients to 1e-5
// relative to the largest gradient entry. It also checks that every
// registered method has a fixture, here or in targeted_fixtures.json.
func TestAgainstPyTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/ssl_fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx fixtureFile
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range fx.Cases {
		seen[c.Method] = true
		opts, err := Defaults(c.Method)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if err := json.Unmarshal(c.Options, &opts); err != nil {
			t.Fatalf("%s: options: %v", c.Name, err)
		}
		m, err := New(c.Method, opts)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		for si, st := range c.Steps {
			step := si + 1
			if w, ok := m.(*WMSE); ok {
				perms := st.Perms
				w.perm = func(_, iter, _ int) []int { return perms[iter] }
			}
			g1, g2 := make([]float32, c.N*c.D), make([]float32, c.N*c.D)
			res, err := m.Loss(step, to32(st.Z1), to32(st.Z2), c.N, c.D, g1, g2)
			if err != nil {
				t.Fatalf("%s step %d: %v", c.Name, step, err)
			}
			if e := relErr(res.Loss, st.Loss); e > 1e-6 {
				t.Errorf("%s step %d: loss %.12g, PyTorch %.12g (rel. error %.2g)", c.Name, step, res.Loss, st.Loss, e)
			}
			if len(res.Components) != len(st.Components) {
				t.Fatalf("%s step %d: %d components, PyTorch %d", c.Name, step, len(res.Components), len(st.Components))
			}
			for i, pc := range st.Components {
				name, want := pc[0].(string), pc[1].(float64)
				got := res.Components[i]
				if got.Name != name {
					t.Errorf("%s step %d: component %d is %q, PyTorch %q", c.Name, step, i, got.Name, name)
				}
				if e := math.Abs(got.Value-want) / math.Max(math.Abs(st.Loss), 1e-12); e > 1e-6 {
					t.Errorf("%s step %d: component %s = %.12g, PyTorch %.12g", c.Name, step, name, got.Value, want)
				}
			}
			scale := 0.0
			for i := range st.G1 {
				scale = math.Max(scale, math.Max(math.Abs(st.G1[i]), math.Abs(st.G2[i])))
			}
			for view, pair := range [][2]any{{g1, st.G1}, {g2, st.G2}} {
				got, want := pair[0].([]float32), pair[1].([]float64)
				for i := range want {
					if e := math.Abs(float64(got[i])-want[i]) / scale; e > 1e-5 {
						t.Errorf("%s step %d: dL/dz%d[%d] = %.8g, PyTorch %.8g", c.Name, step, view+1, i, got[i], want[i])
						break
					}
				}
			}
		}
	}
	// The targeted methods' fixtures (TestTargetedAgainstPyTorch) count
	// too: every registered method needs one in either file.
	for _, c := range loadTargetedFixtures(t).Cases {
		seen[c.Method] = true
	}
	for _, name := range Names() {
		if !seen[name] {
			t.Errorf("no PyTorch fixture for %s", name)
		}
	}
}
