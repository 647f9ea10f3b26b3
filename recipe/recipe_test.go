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
