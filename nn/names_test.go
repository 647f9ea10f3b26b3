package nn_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/ops/ref"
)

// TestTorchvisionNames builds the standard resnet18/34/50 (ImageNet stem,
// width 64, 1000 classes) and checks parameter and buffer names, shapes and
// order against torchvision's state_dict keys recorded in the fixture's
// metadata by tools/pytorch/gen_engine_fixtures.py (num_batches_tracked
// excepted: it is not kept).
func TestTorchvisionNames(t *testing.T) {
	f := readFixture(t, "testdata/resnet18_w8_cifar.safetensors")
	for _, arch := range []string{"resnet18", "resnet34", "resnet50"} {
		t.Run(arch, func(t *testing.T) {
			var keys [][2]json.RawMessage
			if err := json.Unmarshal([]byte(f.Metadata["keys."+arch]), &keys); err != nil {
				t.Fatalf("metadata keys.%s: %v", arch, err)
			}
			var wantParams, wantBuffers []string
			for _, k := range keys {
				var name string
				var shape []int
				if err := json.Unmarshal(k[0], &name); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(k[1], &shape); err != nil {
					t.Fatal(err)
				}
				entry := fmt.Sprintf("%s%v", name, shape)
				switch {
				case strings.HasSuffix(name, "num_batches_tracked"):
				case strings.HasSuffix(name, "running_mean"), strings.HasSuffix(name, "running_var"):
					wantBuffers = append(wantBuffers, entry)
				default:
					wantParams = append(wantParams, entry)
				}
			}
			r, err := nn.NewResNet(ref.New(), nn.ResNetConfig{Arch: arch, Width: 64, InChannels: 3, Stem: "imagenet", NumClasses: 1000}, rand.New(rand.NewSource(1)))
			if err != nil {
				t.Fatal(err)
			}
			var gotParams, gotBuffers []string
			for _, p := range r.Params() {
				gotParams = append(gotParams, fmt.Sprintf("%s%v", p.Name, p.Value.Shape))
			}
			for _, b := range r.Buffers() {
				gotBuffers = append(gotBuffers, fmt.Sprintf("%s%v", b.Name, b.Value.Shape))
			}
			compareLists(t, "parameters", gotParams, wantParams)
			compareLists(t, "buffers", gotBuffers, wantBuffers)
			wantDim := 512
			if arch == "resnet50" {
				wantDim = 2048
			}
			if r.FeatureDim() != wantDim {
				t.Errorf("FeatureDim = %d, want %d", r.FeatureDim(), wantDim)
			}
		})
	}
}

func compareLists(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s[%d] = %s, want %s", what, i, got[i], want[i])
			return
		}
	}
}

// TestInitialisation checks torchvision's initialisation statistics on a
// width-64 ResNet-18: conv weights N(0, 2/fan_out), BN 1/0, zero-init of
// bn2 with ZeroInitResidual, fc U(-1/sqrt(512), 1/sqrt(512)).
func TestInitialisation(t *testing.T) {
	r, err := nn.NewResNet(ref.New(), nn.ResNetConfig{Arch: "resnet18", Width: 64, InChannels: 3, Stem: "cifar", ZeroInitResidual: true, NumClasses: 10}, rand.New(rand.NewSource(2)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Params() {
		v := p.Value
		switch {
		case p.Kind == nn.KindWeight && len(v.Shape) == 4:
			var ss float64
			for _, x := range v.Data {
				ss += float64(x) * float64(x)
			}
			fanOut := v.Shape[0] * v.Shape[2] * v.Shape[3]
			if got, want := ss/float64(len(v.Data)), 2/float64(fanOut); len(v.Data) > 10000 && (got < 0.95*want || got > 1.05*want) {
				t.Errorf("%s: variance %g, want %g", p.Name, got, want)
			}
		case p.Kind == nn.KindBNWeight:
			want := float32(1)
			if strings.HasSuffix(p.Name, "bn2.weight") {
				want = 0
			}
			for _, x := range v.Data {
				if x != want {
					t.Fatalf("%s = %g, want %g", p.Name, x, want)
				}
			}
		case p.Kind == nn.KindBNBias:
			for _, x := range v.Data {
				if x != 0 {
					t.Fatalf("%s = %g, want 0", p.Name, x)
				}
			}
		case p.Name == "fc.weight" || p.Name == "fc.bias":
			bound := float32(1 / 22.627416997969522) // 1/sqrt(512)
			var maxAbs float32
			for _, x := range v.Data {
				maxAbs = max(maxAbs, x, -x)
			}
			if maxAbs > bound || maxAbs < 0.5*bound {
				t.Errorf("%s: max |w| %g, want within (%g, %g]", p.Name, maxAbs, bound/2, bound)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	be := ref.New()
	ok := nn.ResNetConfig{Arch: "resnet18", Width: 4, InChannels: 3, Stem: "cifar"}
	for _, bad := range []func(c *nn.ResNetConfig){
		func(c *nn.ResNetConfig) { c.Arch = "resnet101" },
		func(c *nn.ResNetConfig) { c.Width = 0 },
		func(c *nn.ResNetConfig) { c.InChannels = 0 },
		func(c *nn.ResNetConfig) { c.Stem = "tiny" },
		func(c *nn.ResNetConfig) { c.NumClasses = -1 },
	} {
		c := ok
		bad(&c)
		if _, err := nn.NewResNet(be, c, rand.New(rand.NewSource(1))); err == nil {
			t.Errorf("NewResNet(%+v) succeeded", c)
		}
	}
	if _, err := nn.NewResNet(be, ok, rand.New(rand.NewSource(1))); err != nil {
		t.Errorf("NewResNet(%+v): %v", ok, err)
	}
	for _, spec := range []string{"", "64-", "a-4", "0-4", "4--4", "-3"} {
		if _, err := nn.ParseSpec(spec); err == nil {
			t.Errorf("ParseSpec(%q) succeeded", spec)
		}
	}
	if _, err := nn.NewMLP(be, nn.MLPConfig{In: 0, Spec: "4"}, rand.New(rand.NewSource(1))); err == nil {
		t.Error("NewMLP with In 0 succeeded")
	}
}

func TestParseSpec(t *testing.T) {
	got, err := nn.ParseSpec("2048-2048-64")
	if err != nil || fmt.Sprint(got) != "[2048 2048 64]" {
		t.Fatalf("ParseSpec = %v, %v", got, err)
	}
}

// TestMLPNames checks the nn.Sequential indices of the projector's names.
func TestMLPNames(t *testing.T) {
	for _, tc := range []struct {
		bn           bool
		params, bufs string
	}{
		{false, "projector.0.weight[16 8] projector.0.bias[16] projector.2.weight[16 16] projector.2.bias[16] projector.4.weight[4 16]", ""},
		{true, "projector.0.weight[16 8] projector.0.bias[16] projector.1.weight[16] projector.1.bias[16] projector.3.weight[16 16] projector.3.bias[16] projector.4.weight[16] projector.4.bias[16] projector.6.weight[4 16]",
			"projector.1.running_mean[16] projector.1.running_var[16] projector.4.running_mean[16] projector.4.running_var[16]"},
	} {
		m, err := nn.NewMLP(ref.New(), nn.MLPConfig{In: 8, Spec: "16-16-4", BN: tc.bn, Prefix: "projector"}, rand.New(rand.NewSource(1)))
		if err != nil {
			t.Fatal(err)
		}
		var ps, bs []string
		for _, p := range m.Params() {
			ps = append(ps, fmt.Sprintf("%s%v", p.Name, p.Value.Shape))
		}
		for _, b := range m.Buffers() {
			bs = append(bs, fmt.Sprintf("%s%v", b.Name, b.Value.Shape))
		}
		if got := strings.Join(ps, " "); got != tc.params {
			t.Errorf("BN %v params:\n got %s\nwant %s", tc.bn, got, tc.params)
		}
		if got := strings.Join(bs, " "); got != tc.bufs {
			t.Errorf("BN %v buffers:\n got %s\nwant %s", tc.bn, got, tc.bufs)
		}
		if m.OutDim() != 4 {
			t.Errorf("OutDim = %d", m.OutDim())
		}
	}
}
