package train

import (
	"context"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/encoder"
)

// targetedConfig is tinyConfig for one of the asymmetric methods on its
// own fashionmnist recipe (LARS for BYOL, the predictor's fixed rate for
// SimSiam, the momentum schedule), shrunk to the tiny network: projector
// 16-8 with the recipe's batch norms, predictor 16-8, MoCo's queue 24 rows.
func targetedConfig(t *testing.T, method, spec, out string) Config {
	t.Helper()
	cfg, err := FromRecipe("fashionmnist", method)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data, cfg.Out = spec, out
	cfg.Width, cfg.Projector, cfg.Batch, cfg.Size = 2, "16-8", 8, 12
	if cfg.Predictor != "" {
		cfg.Predictor = "16-8"
	}
	cfg.Epochs, cfg.WarmupEpochs, cfg.LR = 3, 1, 0.05
	cfg.KNNEvery, cfg.LogEvery, cfg.Threads, cfg.Workers = 0, 1, 1, 2
	if method == "mocov2" {
		cfg.MethodOpts = cfg.MethodOpts.Clone()
		cfg.MethodOpts.Set("queue_size", 24)
	}
	return cfg
}

// TestTargetedResumeEqualsUninterrupted trains BYOL, SimSiam and MoCo v2
// for 3 epochs, and again for 1 epoch then resumed to 3, and requires bit
// for bit the same checkpoint: online weights, predictor, the momentum
// network (saved under momentum.), MoCo's queues and pointer, the
// optimizer state (SimSiam's fixed-rate predictor optimizer under
// optim.StaticPrefix). The momentum network must also have moved away
// from its initial copy but stay close to the online weights it follows.
func TestTargetedResumeEqualsUninterrupted(t *testing.T) {
	spec := tinyData(t, 40)
	ctx := context.Background()
	for _, method := range []string{"byol", "simsiam", "mocov2"} {
		t.Run(method, func(t *testing.T) {
			full := targetedConfig(t, method, spec, filepath.Join(t.TempDir(), "full"))
			sum, err := Run(ctx, full, false, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if math.IsNaN(sum.FinalLoss) {
				t.Fatalf("final loss %v", sum.FinalLoss)
			}
			want := stateOf(t, full.Out)
			var momentum, predictor, static, queue int
			for name := range want {
				switch {
				case strings.HasPrefix(name, "momentum."):
					momentum++
				case strings.HasPrefix(name, "predictor."):
					predictor++
				case strings.HasPrefix(name, "optimizer.static."):
					static++
				case strings.HasPrefix(name, "method.queue"):
					queue++
				}
			}
			wantMomentum, wantPredictor := method != "simsiam", method != "mocov2"
			if (momentum > 0) != wantMomentum || (predictor > 0) != wantPredictor || (static > 0) != (method == "simsiam") ||
				(queue > 0) != (method == "mocov2") {
				t.Fatalf("checkpoint has %d momentum, %d predictor, %d fixed-rate optimizer and %d queue tensors", momentum, predictor, static, queue)
			}
			if wantMomentum {
				// The EMA moved the momentum copy, and it trails the online weights.
				on, mo := want["layer1.0.conv1.weight"], want["momentum.layer1.0.conv1.weight"]
				var diff, norm float64
				for i := range on {
					diff += (on[i] - mo[i]) * (on[i] - mo[i])
					norm += on[i] * on[i]
				}
				if diff == 0 || diff > norm {
					t.Errorf("momentum conv1 differs from the online one by %.3g (online norm^2 %.3g)", diff, norm)
				}
			}

			// Stopped mid-epoch (step 7 of 15) and resumed: the momentum
			// network's schedule runs over the 3 epochs in both.
			part := targetedConfig(t, method, spec, filepath.Join(t.TempDir(), "part"))
			part.MaxSteps = 7
			if _, err := Run(ctx, part, false, io.Discard); err != nil {
				t.Fatal(err)
			}
			cfg, err := StoredConfig(part.Out)
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxSteps = 0
			if _, err := Run(ctx, cfg, true, io.Discard); err != nil {
				t.Fatal(err)
			}
			sameState(t, want, stateOf(t, part.Out))

			// The encoder loads the checkpoint: the predictor is part of the
			// model, the momentum network is skipped.
			enc, err := encoder.Load(full.Out, encoder.Options{Threads: 1})
			if err == nil {
				defer enc.Close()
			}
			if err != nil {
				t.Fatalf("encoder.Load: %v", err)
			}
			if (enc.Net.Predictor != nil) != wantPredictor {
				t.Errorf("loaded network predictor %v, want %v", enc.Net.Predictor != nil, wantPredictor)
			}
			f, err := checkpoint.Read(filepath.Join(full.Out, "checkpoint.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if w, ok := f.Get("conv1.weight"); !ok || w.F32[0] != enc.Net.Backbone.Params()[0].Value.Data[0] {
				t.Error("the encoder's conv1.weight is not the checkpoint's")
			}
		})
	}
}
