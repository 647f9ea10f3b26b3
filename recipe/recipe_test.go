package recipe

import (
	"testing"

	"github.com/corinfomax/corinfomax/ssl"
)

// TestCorInfoMaxColumn checks CorInfoMax's options under every recipe
// against the paper's table (docs/design.md section 2), and that the other
// methods keep their declared defaults.
func TestCorInfoMaxColumn(t *testing.T) {
	want := map[string][3]float64{
		"cifar10": {250, 0.01, 1e-8}, "cifar100": {1000, 0.01, 1e-8}, "tinyimagenet": {500, 0.1, 1e-8},
		"imagenet100": {500, 0.01, 1e-8}, "imagenet1k": {2000, 0.1, 1e-8}, "fashionmnist": {250, 0.01, 1e-8},
	}
	if len(want) != len(Names()) {
		t.Errorf("Names() = %v, want the recipes of %v", Names(), want)
	}
	for _, rn := range Names() {
		r, err := Lookup(rn)
		if err != nil {
			t.Fatal(err)
		}
		o, err := r.MethodDefaults(ssl.NameCorInfoMax)
		if err != nil {
			t.Fatal(err)
		}
		w := want[rn]
		get := func(name string) float64 { v, _ := o.Get(name); return v }
		if get("alpha") != w[0] || get("lam_R") != w[1] || get("lam_mu") != w[1] || get("eps") != w[2] {
			t.Errorf("%s: corinfomax options %v, want alpha, lam, eps = %v", rn, o.Values, w)
		}
		for _, m := range ssl.Names()[1:] {
			got, err := r.MethodDefaults(m)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := ssl.Defaults(m)
			for name, v := range d.Values {
				if g, _ := got.Get(name); g != v {
					t.Errorf("%s/%s: %s = %g, want the default %g", rn, m, name, g, v)
				}
			}
		}
	}
}

// TestOverridesNameDeclaredOptions refuses a recipe override of an option
// the method does not declare.
func TestOverridesNameDeclaredOptions(t *testing.T) {
	r, _ := Lookup("cifar10")
	r.MethodOptions = map[string]map[string]float64{ssl.NameSimCLR: {"alpha": 1}}
	if _, err := r.MethodDefaults(ssl.NameSimCLR); err == nil {
		t.Error("an override of an undeclared option was accepted")
	}
}

// TestMethodRecipes checks the peers' own recipes against solo-learn's
// CIFAR configs (scripts/pretrain/cifar/*.yaml), their scaling to the
// fashionmnist backbone (widths / 4, outputs >= 64) and the linear lr
// scaling with the batch; CorInfoMax keeps the shared settings.
func TestMethodRecipes(t *testing.T) {
	fm, _ := Lookup("fashionmnist")
	c10, _ := Lookup("cifar10")
	cases := []struct {
		r                      Recipe
		method                 string
		proj, pred, optimizer  string
		lr, wd, baseTau, final float64
		bn, lastBias, outBN    bool
	}{
		{fm, "byol", "1024-64", "1024-64", "lars", 1.0, 1e-5, 0.99, 1.0, true, true, false},
		{c10, "byol", "4096-256", "4096-256", "lars", 2.0, 1e-5, 0.99, 1.0, true, true, false}, // batch 512
		{fm, "simsiam", "512-512-512", "128-512", "sgd", 0.5, 1e-5, 0, 0, true, false, true},
		{fm, "mocov2", "512-64", "", "sgd", 0.3, 1e-4, 0.99, 0.999, false, true, false},
		{fm, "vicreg", "512-512-512", "", "lars", 0.3, 1e-4, 0, 0, true, true, false},
		{fm, "barlowtwins", "512-512-512", "", "lars", 0.3, 1e-4, 0, 0, true, true, false},
		{fm, "simclr", "512-64", "", "lars", 0.4, 1e-4, 0, 0, false, true, false},
		{fm, "corinfomax", "512-512-64", "", "sgd", 0.5, 1e-4, 0, 0, false, false, false},
	}
	for _, c := range cases {
		g := c.r.For(c.method)
		if g.Projector != c.proj || g.Predictor != c.pred || g.Optimizer != c.optimizer || g.LR != c.lr ||
			g.WeightDecay != c.wd || g.BaseTau != c.baseTau || g.FinalTau != c.final || g.ProjectorBN != c.bn ||
			g.ProjectorLastBias != c.lastBias || g.ProjectorOutBN != c.outBN {
			t.Errorf("%s/%s: got %+v", c.r.Name, c.method, g)
		}
	}
	if !fm.For("simsiam").PredictorStaticLR || fm.For("byol").PredictorStaticLR {
		t.Error("fashionmnist: only simsiam's predictor trains at a fixed rate (solo-learn static_lr)")
	}
	if o, _ := fm.For("barlowtwins").MethodDefaults("barlowtwins"); func() float64 { v, _ := o.Get("scale_loss"); return v }() != 0.1 {
		t.Errorf("fashionmnist/barlowtwins: scale_loss %v, want solo-learn's 0.1", o.Values)
	}
	if o, _ := fm.MethodDefaults("barlowtwins"); func() float64 { v, _ := o.Get("scale_loss"); return v }() != 1 {
		t.Errorf("fashionmnist shared settings: barlowtwins scale_loss %v, want the default 1", o.Values)
	}
}
