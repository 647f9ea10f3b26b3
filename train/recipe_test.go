package train

import (
	"testing"

	"github.com/corinfomax/corinfomax/recipe"
	"github.com/corinfomax/corinfomax/ssl"
)

// TestEveryRecipeAndMethodValidates builds the configuration of every
// recipe with every method and checks that it validates and carries the
// recipe's values (docs/design.md section 2 for the paper's recipes).
func TestEveryRecipeAndMethodValidates(t *testing.T) {
	for _, rn := range recipe.Names() {
		r, err := recipe.Lookup(rn)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ssl.Names() {
			r := r.For(m)
			cfg, err := FromRecipe(rn, m)
			if err != nil {
				t.Fatalf("%s/%s: %v", rn, m, err)
			}
			cfg.Out = t.TempDir()
			if err := cfg.Validate(); err != nil {
				t.Errorf("%s/%s: %v", rn, m, err)
			}
			_, own := r.Methods[m]
			if cfg.Batch != r.Batch || cfg.LR != r.LR || cfg.Projector != r.Projector || cfg.Epochs != r.Epochs ||
				(own && (cfg.Predictor != r.Predictor || cfg.FinalTau != r.FinalTau)) || cfg.Optimizer != r.Optimizer {
				t.Errorf("%s/%s: config %+v does not carry the recipe %+v", rn, m, cfg, r)
			}
		}
	}
	c10, _ := recipe.Lookup("cifar10")
	if c10.Batch != 512 || c10.LR != 0.5 || c10.WarmupEpochs != 10 || c10.Projector != "2048-2048-64" || c10.Epochs != 1000 {
		t.Errorf("cifar10 recipe differs from docs/design.md: %+v", c10)
	}
	in1k, _ := recipe.Lookup("imagenet1k")
	if !in1k.ProjectorBN || in1k.Batch != 1536 || in1k.LR != 0.2 {
		t.Errorf("imagenet1k recipe differs from docs/design.md: %+v", in1k)
	}
	if _, err := recipe.Lookup("cifar11"); err == nil {
		t.Error("unknown recipe accepted")
	}
}
