package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/corinfomax/corinfomax/train"
)

// TestStepRunsTheTrainingStep times a tiny SSL step and a tiny supervised
// step, and checks the configuration errors name their setting.
func TestStepRunsTheTrainingStep(t *testing.T) {
	for _, method := range []string{"corinfomax", "supervised"} {
		c := StepConfig{Arch: "resnet18", Stem: "cifar", Width: 2, Batch: 4, Size: 8, Channels: 1, Method: method,
			Projector: "16-8", Steps: 2, Warmup: 1, Threads: 1, Backend: "ref", Precision: "fp32"}
		r, err := Step(context.Background(), c)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if !(r.ImagesPerSec > 0) || !(r.StepSecondsMed > 0) {
			t.Errorf("%s: %+v", method, r)
		}
		if method != "supervised" && !(r.ObjectiveSecMed > 0) {
			t.Errorf("%s: objective time %v", method, r.ObjectiveSecMed)
		}
	}
	_, err := Step(context.Background(), StepConfig{Arch: "vgg", Stem: "cifar", Width: 2, Batch: 4, Size: 8, Channels: 1,
		Method: "corinfomax", Steps: 1, Backend: "ref"})
	var ce *train.ConfigError
	if !errors.As(err, &ce) || ce.Field != "arch" {
		t.Errorf("bad arch: want a ConfigError naming arch, got %v", err)
	}
}
