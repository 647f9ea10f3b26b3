package train

import (
	"context"
	"image"
	"image/color"
	"io"
	"path/filepath"
	"testing"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/model"
)

// TestFinetuneSavedNetworkClassifies: the fine-tuned checkpoint loads with
// encoder.Load, classifies the test split with exactly the accuracy the
// run reported, and classifies single images; a pretrained network refuses
// Classify.
func TestFinetuneSavedNetworkClassifies(t *testing.T) {
	spec := tinyData(t, 60)
	base := t.TempDir()
	pre := filepath.Join(base, "pre")
	cfg := tinyConfig(t, spec, pre)
	cfg.Epochs = 2
	if _, err := Run(context.Background(), cfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	fc := DefaultFinetune("5-per-class")
	fc.Checkpoint, fc.Data, fc.Out, fc.Epochs, fc.Batch, fc.Threads, fc.Seed = pre, spec, filepath.Join(base, "ft"), 3, 8, 1, 4
	sum, err := Finetune(context.Background(), fc, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Labelled != 15 || sum.TestImages != 60 || sum.Epochs != 3 {
		t.Fatalf("summary %+v", sum)
	}
	enc, err := encoder.Load(fc.Out, encoder.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if enc.Spec.NumClasses != 3 || enc.Net.Head == nil || enc.Net.Projector != nil {
		t.Fatalf("loaded spec %+v", enc.Spec)
	}
	test, err := data.Open(spec, data.Test, data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logits, labels, k, err := model.Features(context.Background(), enc.Net, test, enc.Size, enc.Norm, model.Projector, 0, 256)
	if err != nil {
		t.Fatal(err)
	}
	top1, top5 := TopK(logits, labels, k)
	if top1 != sum.Top1 || top5 != sum.Top5 {
		t.Fatalf("the saved network scores %.2f/%.2f, the run reported %.2f/%.2f", top1, top5, sum.Top1, sum.Top5)
	}
	img := image.NewGray(image.Rect(0, 0, 12, 12))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	class, lg, err := enc.Classify(img)
	if err != nil || len(lg) != 3 || class < 0 || class > 2 || lg[class] < lg[(class+1)%3] {
		t.Fatalf("Classify: class %d, logits %v, %v", class, lg, err)
	}
	preEnc, err := encoder.Load(pre, encoder.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer preEnc.Close()
	if _, _, err := preEnc.Classify(image.NewUniform(color.Gray{Y: 9})); err == nil {
		t.Fatal("a pretrained network without a head classified an image")
	}
}

// TestTopK checks top-1 and top-5 on hand-made logits.
func TestTopK(t *testing.T) {
	// 3 rows of 6 classes: label best, label 5th highest, label last.
	logits := []float32{
		9, 1, 2, 3, 4, 5,
		6, 5, 4, 3, 2, 1,
		6, 5, 4, 3, 2, 1,
	}
	t1, t5 := TopK(logits, []int{0, 4, 5}, 6)
	if t1 != 100.0/3 || t5 != 200.0/3 {
		t.Fatalf("top-1 %v, top-5 %v; want 33.3 and 66.7", t1, t5)
	}
}

// TestFinetuneFromPredictorRuns fine-tunes BYOL's and SimSiam's runs,
// whose checkpoints carry a predictor (and BYOL's a momentum network): the
// fine-tuned network is the backbone and a head, with neither the
// projector nor the predictor (a spec with both was refused, so these
// runs could not be fine-tuned at all).
func TestFinetuneFromPredictorRuns(t *testing.T) {
	spec := tinyData(t, 40)
	for _, method := range []string{"byol", "simsiam"} {
		t.Run(method, func(t *testing.T) {
			base := t.TempDir()
			cfg := targetedConfig(t, method, spec, filepath.Join(base, "pre"))
			cfg.Epochs = 1
			if _, err := Run(context.Background(), cfg, false, io.Discard); err != nil {
				t.Fatal(err)
			}
			fc := DefaultFinetune("5-per-class")
			fc.Checkpoint, fc.Data, fc.Out, fc.Epochs, fc.Batch, fc.Threads, fc.Seed = cfg.Out, spec, filepath.Join(base, "ft"), 1, 8, 1, 4
			if _, err := Finetune(context.Background(), fc, false, io.Discard); err != nil {
				t.Fatalf("fine-tuning a %s run: %v", method, err)
			}
			enc, err := encoder.Load(fc.Out, encoder.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			if enc.Spec.NumClasses != 3 || enc.Spec.Projector != "" || enc.Spec.Predictor != "" ||
				enc.Net.Head == nil || enc.Net.Projector != nil || enc.Net.Predictor != nil {
				t.Fatalf("fine-tuned spec %+v", enc.Spec)
			}
		})
	}
}
