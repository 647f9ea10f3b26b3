package train

import (
	"testing"

	"github.com/corinfomax/corinfomax/nn"
	"github.com/corinfomax/corinfomax/optim"
)

// TestNewOptimizerLARSIsSoloLearns checks that "lars" is solo-learn's LARS
// as its recipes configure it: eta 0.02, exclude_bias_n_norm and clip_lr.
func TestNewOptimizerLARSIsSoloLearns(t *testing.T) {
	cfg := &Config{Optimizer: "lars", Momentum: 0.9, WeightDecay: 1e-4}
	o, err := NewOptimizer(cfg, []*nn.Param{nn.NewParam("w", nn.KindWeight, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	l, ok := o.(*optim.LARS)
	if !ok {
		t.Fatalf("lars gives a %T", o)
	}
	if !l.ClipLR || !l.ExcludeBiasAndBN || l.Eta != 0.02 || l.Momentum != 0.9 || l.WeightDecay != 1e-4 {
		t.Errorf("lars is %+v, want clip_lr, exclude_bias_n_norm, eta 0.02, momentum 0.9, weight decay 1e-4", *l)
	}
}
