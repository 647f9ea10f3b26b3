package train

import (
	"context"
	"fmt"
	"strings"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/eval"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/report"
	"github.com/corinfomax/corinfomax/ssl"
)

// endEpoch logs the epoch's training time and throughput (secs and imgs:
// wall-clock seconds and two-view images of the epoch's steps, data loading
// included; only the part after the resume point for a resumed epoch), its
// covariance spectrum and online kNN accuracy, then writes the checkpoint
// and the report.
func (t *Trainer) endEpoch(ctx context.Context, secs float64, imgs int) error {
	epoch := t.epoch + 1
	rec := map[string]any{"type": "epoch", "epoch": epoch, "step": t.step, "skipped_steps": t.skipped,
		"train_seconds": secs}
	if secs > 0 {
		rec["images_per_sec"] = float64(imgs) / secs
	}
	if g := t.step1.Grads; g != nil && g.Calls > 0 {
		// Data-parallel: the gradient all-reduce of the epoch's steps.
		rec["allreduce"] = map[string]any{"ranks": t.comm.Size(), "bytes_per_step": g.Bytes / int64(g.Calls),
			"seconds_per_step": g.Seconds / float64(g.Calls)}
		g.Bytes, g.Seconds, g.Calls = 0, 0, 0
	}
	if sp, source, err := t.spectrum(); err == nil {
		rec["spectrum"] = map[string]any{"below_1e-8": sp.Below1e8, "above_1e-1": sp.Above1e1,
			"effective_rank": sp.EffectiveRank, "dim": len(sp.Eigenvalues), "source": source,
			"eigenvalues": jsonFloats(sp.Eigenvalues)}
		t.history.Spectrum = sp.Eigenvalues
	} else {
		fmt.Fprintf(t.log, "warning: epoch %d: spectrum: %v\n", epoch, err)
	}
	// The test features, computed once for the probe and the kNN.
	var test *testFeatures
	testSet := func() (*testFeatures, error) {
		if test == nil {
			f, err := t.testFeatures(ctx)
			if err != nil {
				return nil, err
			}
			test = f
		}
		return test, nil
	}
	if t.probe != nil {
		tf, err := testSet()
		var top1 float64
		if err == nil {
			top1, err = t.probe.Top1(tf.feats, len(tf.labels), tf.labels)
		}
		if err != nil {
			fmt.Fprintf(t.log, "warning: epoch %d: online probe evaluation skipped: %v\n", epoch, err)
		} else {
			rec["online_probe"] = map[string]any{"top1": top1, "test_images": len(tf.labels)}
			t.history.Probe = append(t.history.Probe, probePoint{Epoch: epoch, Top1: top1})
			t.prog.Note(fmt.Sprintf("epoch %d: online probe top-1 %.2f%% (%d test images)", epoch, top1, len(tf.labels)))
		}
	}
	if t.lead && t.cfg.KNNEvery > 0 && t.train.NumClasses() > 0 && (epoch%t.cfg.KNNEvery == 0 || epoch == t.cfg.Epochs) {
		res, err := t.onlineKNN(ctx, testSet)
		switch {
		case err != nil:
			fmt.Fprintf(t.log, "warning: epoch %d: online kNN skipped: %v\n", epoch, err)
		case len(res) > 0:
			knn := map[string]any{}
			p := knnPoint{Epoch: epoch}
			var parts []string
			for _, r := range res {
				knn[fmt.Sprintf("k%d", r.K)] = r.Top1
				p.Ks = append(p.Ks, r.K)
				p.Top1 = append(p.Top1, r.Top1)
				parts = append(parts, fmt.Sprintf("k=%d %.2f%%", r.K, r.Top1))
			}
			rec["knn"] = knn
			t.history.KNN = append(t.history.KNN, p)
			t.prog.Note(fmt.Sprintf("epoch %d: online kNN top-1 %s", epoch, strings.Join(parts, ", ")))
		}
	}
	if err := t.metrics.write(rec); err != nil {
		return err
	}
	if err := t.saveAt(model.Position{Epoch: t.epoch + 1, Step: t.step, Skipped: t.skipped}); err != nil {
		return err
	}
	if err := t.writeReport(); err != nil {
		fmt.Fprintf(t.log, "warning: writing report.png: %v\n", err)
	}
	return nil
}

// spectrum is the eigenvalue spectrum of the first view's embedding
// covariance and where it came from: the method's running estimate when it
// keeps one ("running", CorInfoMax's R1), else the covariance of the last
// batch's L2-normalised projector outputs ("last_batch").
func (t *Trainer) spectrum() (eval.SpectrumSummary, string, error) {
	if c, ok := t.method.(ssl.CovarianceTracker); ok {
		if cov, d := c.RunningCovariance(1); d > 0 {
			sp, err := eval.SpectrumOf(cov, d)
			return sp, "running", err
		}
	}
	z := t.step1.Z(0)
	if z == nil {
		return eval.SpectrumSummary{}, "", fmt.Errorf("no projector output yet")
	}
	n, d := z.Shape[0], z.Shape[1]
	zn := make([]float32, n*d)
	norms := make([]float64, n)
	if err := ops.L2NormalizeRows(z.Data, n, d, zn, norms); err != nil {
		return eval.SpectrumSummary{}, "", err
	}
	sp, err := eval.SpectrumOf(eval.Covariance(zn, n, d), d)
	return sp, "last_batch", err
}

// testFeatures are the backbone features of the first KNNTest test images
// (normalised only), for the online kNN and probe.
type testFeatures struct {
	feats  []float32
	labels []int
}

func (t *Trainer) testFeatures(ctx context.Context) (*testFeatures, error) {
	defer t.net.SetTraining(true)
	test, err := data.Open(t.cfg.Data, data.Test, data.OpenOptions{Limit: t.cfg.KNNTest})
	if err != nil {
		return nil, fmt.Errorf("no labelled test split: %w", err)
	}
	f, l, _, err := model.Features(ctx, t.net, test, t.cfg.Size, t.norm, model.Backbone, t.cfg.KNNTest, 256)
	if err != nil {
		return nil, err
	}
	return &testFeatures{feats: f, labels: l}, nil
}

// onlineKNN measures weighted kNN top-1 of the backbone features: the first
// KNNTrain training images as the memory bank, the test features of
// testSet as queries.
func (t *Trainer) onlineKNN(ctx context.Context, testSet func() (*testFeatures, error)) ([]eval.KNNResult, error) {
	defer t.net.SetTraining(true)
	test, err := testSet()
	if err != nil {
		return nil, err
	}
	trF, trL, dim, err := model.Features(ctx, t.net, t.train, t.cfg.Size, t.norm, model.Backbone, t.cfg.KNNTrain, 256)
	if err != nil {
		return nil, err
	}
	return eval.KNN(trF, trL, test.feats, test.labels, dim, eval.KNNConfig{Ks: []int{20, 200}, Temperature: 0.07,
		NumClasses: t.train.NumClasses()})
}

// writeReport draws RUNDIR/report.png: loss curves, online kNN accuracy,
// and the last eigenvalue spectrum.
func (t *Trainer) writeReport() error {
	if !t.lead {
		return nil
	}
	h := t.history
	var loss, knn []report.Series
	for _, name := range h.Order {
		loss = append(loss, report.Series{Name: name, X: h.Steps, Y: h.Comps[name]})
	}
	for i, k := range []int{20, 200} {
		s := report.Series{Name: fmt.Sprintf("kNN k=%d", k)}
		for _, p := range h.KNN {
			if i < len(p.Top1) && p.Ks[i] == k {
				s.X = append(s.X, float64(p.Epoch))
				s.Y = append(s.Y, p.Top1[i])
			}
		}
		if len(s.X) > 0 {
			knn = append(knn, s)
		}
	}
	if len(h.Probe) > 0 {
		s := report.Series{Name: "online probe"}
		for _, p := range h.Probe {
			s.X = append(s.X, float64(p.Epoch))
			s.Y = append(s.Y, p.Top1)
		}
		knn = append(knn, s)
	}
	return report.TrainingReport(t.dir.Report(), loss, knn, h.Spectrum)
}
