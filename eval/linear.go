package eval

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/corinfomax/corinfomax/optim"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// LinearConfig configures the linear probe. Zero fields take the defaults
// of the evaluation protocol, except WeightDecay, Seed and Standardize.
type LinearConfig struct {
	Epochs      int     // default 100
	Batch       int     // default 256; the last partial batch is kept
	LR          float64 // initial learning rate, default 0.2
	MinLR       float64 // final learning rate of the cosine schedule, default 2e-3
	WeightDecay float64 // L2 penalty on weights and bias, default 0
	Momentum    float64 // SGD momentum, default 0.9
	Seed        int64   // seed of the minibatch shuffling
	NumClasses  int     // 0 infers 1 + the largest label
	Standardize bool    // standardise features with the training mean and std
}

// LinearResult is the outcome of a linear probe: test top-1 and top-5
// accuracy in percent and the mean training cross-entropy of the last epoch.
type LinearResult struct {
	Top1, Top5 float64
	TrainLoss  float64
}

func (c *LinearConfig) defaults() {
	if c.Epochs == 0 {
		c.Epochs = 100
	}
	if c.Batch == 0 {
		c.Batch = 256
	}
	if c.LR == 0 {
		c.LR = 0.2
	}
	if c.MinLR == 0 {
		c.MinLR = 2e-3
	}
	if c.Momentum == 0 {
		c.Momentum = 0.9
	}
}

// LinearProbe trains a softmax regression logits = W x + b (W is
// classes x dim, zero-initialised, float64) on frozen features and reports
// its accuracy on the test features.
//
// Training minimises the mean cross-entropy of shuffled minibatches (order
// drawn from cfg.Seed) with SGD as PyTorch defines it: g += wd * w;
// v = momentum * v + g; w -= lr * v. The learning rate follows a cosine
// schedule stepped once per epoch, lr_e = MinLR + (LR - MinLR) *
// (1 + cos(pi e / Epochs)) / 2 for e = 0 .. Epochs-1. progress, when not
// nil, is called after each epoch with the 1-based epoch number and that
// epoch's mean training loss. Cancelling ctx stops training between
// minibatches and returns ctx's error.
//
// LinearProbe is LinearProbeEpochs with the same training features in
// every epoch.
func LinearProbe(ctx context.Context, train []float32, trainLabels []int, test []float32, testLabels []int, dim int, cfg LinearConfig, progress func(epoch int, loss float64)) (LinearResult, error) {
	same := func(context.Context, int) ([]float32, []int, error) { return train, trainLabels, nil }
	return LinearProbeEpochs(ctx, same, test, testLabels, dim, cfg, progress)
}

// LinearProbeEpochs is LinearProbe with training features that may change
// from epoch to epoch (train-time augmentation, docs/design.md section 3):
// trainEpoch(ctx, e) returns the features (rows x dim) and labels of the
// 0-based epoch e, and is called once per epoch, in order, before that
// epoch's minibatches. Every epoch must return the same number of rows;
// the minibatch order is a fresh seeded shuffle of the row positions each
// epoch, as in LinearProbe. With cfg.NumClasses = 0 the number of classes
// is inferred from the first epoch's and the test labels.
//
// With cfg.Standardize the mean and standard deviation come from the FIRST
// epoch's features only; that one transform is applied to every epoch and
// to the test set.
func LinearProbeEpochs(ctx context.Context, trainEpoch func(ctx context.Context, epoch int) (feats []float32, labels []int, err error), test []float32, testLabels []int, dim int, cfg LinearConfig, progress func(epoch int, loss float64)) (LinearResult, error) {
	if trainEpoch == nil {
		return LinearResult{}, fmt.Errorf("eval: linear probe: no training feature source")
	}
	nTest, err := checkData("linear probe test", test, testLabels, dim)
	if err != nil {
		return LinearResult{}, err
	}
	cfg.defaults()
	if cfg.Epochs < 0 || cfg.Batch < 0 || cfg.LR < 0 || cfg.MinLR < 0 || cfg.WeightDecay < 0 || cfg.Momentum < 0 {
		return LinearResult{}, fmt.Errorf("eval: linear probe: negative setting in %+v", cfg)
	}
	// epochData fetches and checks the training rows of epoch e.
	nTrain := -1
	epochData := func(e int) ([]float32, []int, error) {
		x, y, err := trainEpoch(ctx, e)
		if err != nil {
			return nil, nil, fmt.Errorf("eval: linear probe: training features of epoch %d: %w", e+1, err)
		}
		n, err := checkData(fmt.Sprintf("linear probe train (epoch %d)", e+1), x, y, dim)
		if err != nil {
			return nil, nil, err
		}
		if nTrain >= 0 && n != nTrain {
			return nil, nil, fmt.Errorf("eval: linear probe: epoch %d has %d training rows, epoch 1 had %d", e+1, n, nTrain)
		}
		return x, y, nil
	}
	train, trainLabels, err := epochData(0)
	if err != nil {
		return LinearResult{}, err
	}
	nTrain = len(trainLabels)
	classes, err := numClasses(cfg.NumClasses, trainLabels, testLabels)
	if err != nil {
		return LinearResult{}, fmt.Errorf("eval: linear probe: %w", err)
	}

	// Feature transform: identity, or standardisation with the first
	// epoch's training statistics.
	mean := make([]float64, dim)
	scale := make([]float64, dim)
	for j := range scale {
		scale[j] = 1
	}
	if cfg.Standardize {
		mean, scale = standardizer(train, nTrain, dim)
	}
	load := func(dst []float64, x []float32, row int) {
		for j, v := range x[row*dim : (row+1)*dim] {
			dst[j] = (float64(v) - mean[j]) * scale[j]
		}
	}

	w := make([]float64, classes*dim)
	b := make([]float64, classes)
	vw := make([]float64, classes*dim)
	vb := make([]float64, classes)
	gw := make([]float64, classes*dim)
	gb := make([]float64, classes)
	x := make([]float64, cfg.Batch*dim)
	logits := make([]float64, cfg.Batch*classes)
	W := blas64.General{Rows: classes, Cols: dim, Stride: dim, Data: w}
	GW := blas64.General{Rows: classes, Cols: dim, Stride: dim, Data: gw}

	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15))
	order := make([]int, nTrain)
	for i := range order {
		order[i] = i
	}
	var loss float64
	for epoch := range cfg.Epochs {
		if epoch > 0 {
			if train, trainLabels, err = epochData(epoch); err != nil {
				return LinearResult{}, err
			}
			if _, err := numClasses(classes, trainLabels); err != nil {
				return LinearResult{}, fmt.Errorf("eval: linear probe: epoch %d: %w", epoch+1, err)
			}
		}
		lr := optim.Schedule{Base: cfg.LR, WarmupStart: cfg.LR, Min: cfg.MinLR, TotalSteps: cfg.Epochs}.At(epoch)
		rng.Shuffle(nTrain, func(i, j int) { order[i], order[j] = order[j], order[i] })
		var sum float64
		for start := 0; start < nTrain; start += cfg.Batch {
			if err := ctx.Err(); err != nil {
				return LinearResult{}, fmt.Errorf("eval: linear probe cancelled in epoch %d: %w", epoch+1, err)
			}
			nb := min(cfg.Batch, nTrain-start)
			for r := range nb {
				load(x[r*dim:(r+1)*dim], train, order[start+r])
			}
			X := blas64.General{Rows: nb, Cols: dim, Stride: dim, Data: x[:nb*dim]}
			L := blas64.General{Rows: nb, Cols: classes, Stride: classes, Data: logits[:nb*classes]}
			forward(X, W, b, L)

			// Softmax cross-entropy; L becomes dLoss/dlogits = (p - y) / nb.
			for r := range nb {
				row := L.Data[r*classes : (r+1)*classes]
				y := trainLabels[order[start+r]]
				sum += softmaxInPlace(row, y)
				row[y] -= 1
				for c := range row {
					row[c] /= float64(nb)
				}
			}
			// gw = L^T X, gb = column sums of L.
			blas64.Gemm(blas.Trans, blas.NoTrans, 1, L, X, 0, GW)
			clear(gb)
			for r := range nb {
				for c := range classes {
					gb[c] += L.Data[r*classes+c]
				}
			}
			optim.SGDUpdate(w, gw, vw, true, lr, cfg.Momentum, cfg.WeightDecay, false)
			optim.SGDUpdate(b, gb, vb, true, lr, cfg.Momentum, cfg.WeightDecay, false)
		}
		loss = sum / float64(nTrain)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return LinearResult{}, fmt.Errorf("eval: linear probe: loss %v in epoch %d", loss, epoch+1)
		}
		if progress != nil {
			progress(epoch+1, loss)
		}
	}

	// Test scores in chunks of Batch rows.
	scores := make([]float64, nTest*classes)
	for start := 0; start < nTest; start += cfg.Batch {
		if err := ctx.Err(); err != nil {
			return LinearResult{}, fmt.Errorf("eval: linear probe cancelled during testing: %w", err)
		}
		nb := min(cfg.Batch, nTest-start)
		for r := range nb {
			load(x[r*dim:(r+1)*dim], test, start+r)
		}
		X := blas64.General{Rows: nb, Cols: dim, Stride: dim, Data: x[:nb*dim]}
		L := blas64.General{Rows: nb, Cols: classes, Stride: classes, Data: scores[start*classes : (start+nb)*classes]}
		forward(X, W, b, L)
	}
	return LinearResult{
		Top1:      TopKAccuracy(scores, testLabels, classes, 1),
		Top5:      TopKAccuracy(scores, testLabels, classes, 5),
		TrainLoss: loss,
	}, nil
}

// forward computes L = X W^T + b.
func forward(X, W blas64.General, b []float64, L blas64.General) {
	for r := range L.Rows {
		copy(L.Data[r*L.Stride:r*L.Stride+L.Cols], b)
	}
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, X, W, 1, L)
}

// softmaxInPlace replaces row by softmax(row) and returns the cross-entropy
// -log softmax(row)[y], computed with the max subtracted for stability.
func softmaxInPlace(row []float64, y int) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = max(m, v)
	}
	vy := row[y]
	var z float64
	for c, v := range row {
		row[c] = math.Exp(v - m)
		z += row[c]
	}
	loss := m + math.Log(z) - vy
	for c := range row {
		row[c] /= z
	}
	return loss
}

// standardizer returns the per-feature mean of x (n x d) and the inverse of
// its standard deviation (population, floored at 1e-12; constant features
// get scale 1).
func standardizer(x []float32, n, d int) (mean, inv []float64) {
	mean = make([]float64, d)
	inv = make([]float64, d)
	for i := range n {
		for j, v := range x[i*d : (i+1)*d] {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range n {
		for j, v := range x[i*d : (i+1)*d] {
			dv := float64(v) - mean[j]
			inv[j] += dv * dv
		}
	}
	for j := range inv {
		sd := math.Sqrt(inv[j] / float64(n))
		if sd < 1e-12 {
			inv[j] = 1
		} else {
			inv[j] = 1 / sd
		}
	}
	return mean, inv
}
