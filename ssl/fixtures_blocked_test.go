package ssl

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/corinfomax/corinfomax/checkpoint"
)

// splitmix64 is the generator the fixture script
// tools/pytorch/gen_corinfomax_fixtures.py draws its inputs from.
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	z := x
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// fixtureU is u(seed, k) of the fixture script: a multiple of 2^-15 in [-1, 1).
func fixtureU(seed, k uint64) float64 {
	return (float64(splitmix64(seed<<32+k)>>48) - 32768) / 32768
}

// fixtureViews returns the inputs of one step of the fixture script (see
// its docstring); every value is exact in float32.
func fixtureViews(t *testing.T, seed uint64, step, n, d int) (z1, z2 []float32) {
	t.Helper()
	z1, z2 = make([]float32, n*d), make([]float32, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			idx := uint64((step*n+i)*d + j)
			a := fixtureU(seed, 4*idx)
			lat := fixtureU(seed, 4*uint64((step*n+i)*d+j%4)+2)
			v1 := a + lat + (float64(j%8)-3.5)/8
			v2 := v1 + 0.5*fixtureU(seed, 4*idx+1)
			z1[i*d+j], z2[i*d+j] = float32(v1), float32(v2)
			if float64(z1[i*d+j]) != v1 || float64(z2[i*d+j]) != v2 {
				t.Fatalf("input (%d, %d) not exact in float32", i, j)
			}
		}
	}
	return z1, z2
}

// fixtureCheck is the script's z_check: sum_k z[k] (k % 7 + 1).
func fixtureCheck(z []float32) float64 {
	s := 0.0
	for k, v := range z {
		s += float64(v) * float64(k%7+1)
	}
	return s
}

// TestCorInfoMaxBlockedAgainstPyTorch runs CorInfoMax at D = 64 and D = 128
// (the blocked Gram path of gramUpper, which the D = 8 and 10 cases of
// TestAgainstPyTorch never reach) for 3 consecutive steps and compares with
// the PyTorch float64 autograd reference of
// tools/pytorch/gen_corinfomax_fixtures.py, with TestAgainstPyTorch's
// tolerances: loss to 1e-6 relative, components to 1e-6 relative to the
// loss, gradients to 1e-5 relative to the largest gradient entry (the
// fixture's gradients are float32, as ours). After the last step the
// running covariances (which must be exactly symmetric) and means must
// match to 1e-6 relative to their largest entry (the fixture stores them as
// float32: 6e-8 relative rounding).
func TestCorInfoMaxBlockedAgainstPyTorch(t *testing.T) {
	for _, d := range []int{64, 128} {
		t.Run(fmt.Sprintf("d%d", d), func(t *testing.T) { checkBlockedFixture(t, d) })
	}
}

func checkBlockedFixture(t *testing.T, d int) {
	f, err := checkpoint.Read(fmt.Sprintf("testdata/corinfomax_d%d.safetensors", d))
	if err != nil {
		t.Fatal(err)
	}
	meta := func(key string) int {
		v, err := strconv.Atoi(f.Metadata[key])
		if err != nil {
			t.Fatalf("metadata %s: %v", key, err)
		}
		return v
	}
	n, steps, seed := meta("n"), meta("steps"), meta("seed")
	if meta("d") != d {
		t.Fatalf("fixture has d=%s", f.Metadata["d"])
	}
	get := func(name string, shape ...int) *checkpoint.Tensor {
		ct, ok := f.Get(name)
		if !ok {
			t.Fatalf("fixture lacks %s", name)
		}
		if fmt.Sprint(ct.Shape) != fmt.Sprint(shape) {
			t.Fatalf("%s has shape %v, want %v", name, ct.Shape, shape)
		}
		return ct
	}
	opts, err := Defaults(NameCorInfoMax)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(f.Metadata["options"]), &opts); err != nil {
		t.Fatalf("options: %v", err)
	}
	m, err := New(NameCorInfoMax, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := m.(*CorInfoMax)
	loss, comps := get("loss", steps).F64, get("components", steps, 3).F64
	pg := [2][]float32{get("g1", steps, n, d).F32, get("g2", steps, n, d).F32}
	zCheck := get("z_check", steps, 2).F64
	for s := 0; s < steps; s++ {
		step := s + 1
		z1, z2 := fixtureViews(t, uint64(seed), s, n, d)
		for v, z := range [][]float32{z1, z2} {
			if got, want := fixtureCheck(z), zCheck[2*s+v]; got != want {
				t.Fatalf("step %d: view %d input checksum %v, the fixture's %v: the Go and Python input generators differ", step, v+1, got, want)
			}
		}
		g1, g2 := make([]float32, n*d), make([]float32, n*d)
		res, err := c.Loss(step, z1, z2, n, d, g1, g2)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if e := relErr(res.Loss, loss[s]); e > 1e-6 {
			t.Errorf("step %d: loss %.12g, PyTorch %.12g (rel. error %.2g)", step, res.Loss, loss[s], e)
		}
		for i, name := range []string{"sim", "cov1", "cov2"} {
			got, want := res.Components[i], comps[3*s+i]
			if got.Name != name {
				t.Fatalf("step %d: component %d is %q, want %q", step, i, got.Name, name)
			}
			if e := math.Abs(got.Value-want) / math.Abs(loss[s]); e > 1e-6 {
				t.Errorf("step %d: %s = %.12g, PyTorch %.12g", step, name, got.Value, want)
			}
		}
		off := s * n * d
		scale := 0.0
		for v := 0; v < 2; v++ {
			for _, x := range pg[v][off : off+n*d] {
				scale = math.Max(scale, math.Abs(float64(x)))
			}
		}
		for v, got := range [][]float32{g1, g2} {
			want := pg[v][off : off+n*d]
			worst, at := 0.0, 0
			for i := range want {
				if e := math.Abs(float64(got[i]-want[i])) / scale; e > worst {
					worst, at = e, i
				}
			}
			if worst > 1e-5 {
				t.Errorf("step %d: dL/dz%d[%d, %d] = %.8g, PyTorch %.8g (error %.2g of the largest entry)",
					step, v+1, at/d, at%d, got[at], want[at], worst)
			}
		}
	}
	state := map[string][]float64{}
	for _, st := range c.State() {
		state[st.Name] = st.Data
	}
	for v := 1; v <= 2; v++ {
		r := state[fmt.Sprintf("R%d", v)]
		upper := make([]float64, 0, d*(d+1)/2)
		for i := 0; i < d; i++ {
			for j := 0; j < i; j++ {
				if r[i*d+j] != r[j*d+i] {
					t.Fatalf("R%d is not symmetric at (%d, %d): %v vs %v", v, i, j, r[i*d+j], r[j*d+i])
				}
			}
			upper = append(upper, r[i*d+i:(i+1)*d]...)
		}
		compareState(t, fmt.Sprintf("R%d", v), upper, get(fmt.Sprintf("R%d", v), d*(d+1)/2).F32, d)
		compareState(t, fmt.Sprintf("mu%d", v), state[fmt.Sprintf("mu%d", v)], get(fmt.Sprintf("mu%d", v), d).F32, d)
	}
}

// compareState compares our running-state values with the fixture's (an
// upper triangle for R) to 1e-6 relative to the fixture's largest entry.
func compareState(t *testing.T, name string, got []float64, want []float32, d int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, fixture %d", name, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
	}
	for i := range want {
		if e := math.Abs(got[i]-float64(want[i])) / scale; e > 1e-6 {
			t.Errorf("%s: value %d (of %d, d=%d) is %.10g, PyTorch %.10g (error %.2g of the largest entry)",
				name, i, len(want), d, got[i], want[i], e)
			return
		}
	}
}
