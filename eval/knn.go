package eval

import (
	"container/heap"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/corinfomax/corinfomax/ops"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// KNNConfig configures weighted kNN classification.
type KNNConfig struct {
	// Ks are the neighbour counts to evaluate (default {20, 200}). A k larger
	// than the training set uses the whole training set.
	Ks []int
	// Temperature T of the vote weights exp(sim/T) (default 0.07).
	Temperature float64
	// NumClasses is the number of classes; 0 infers 1 + the largest label.
	NumClasses int
}

// KNNResult is the top-1 accuracy, in percent, for one k.
type KNNResult struct {
	K    int
	Top1 float64
}

// KNN classifies each test row by a temperature-weighted vote of its k
// nearest training rows, as in InstDisc and solo-learn: rows are
// L2-normalised (a copy; inputs are not modified), similarity is the cosine
// sim = <x, y>, the k most similar training rows are taken (ties by lower
// training index), each votes for its label with weight exp(sim/T), and the
// class with the largest summed weight wins (ties by lower class index).
// train and test are row-major N x dim matrices. It returns one result per
// k in cfg.Ks, in that order.
//
// The similarities are computed with a float32 GEMM in chunks of test rows
// (about 64 MB of similarities at a time); neighbour selection and voting
// run in parallel over test rows.
func KNN(train []float32, trainLabels []int, test []float32, testLabels []int, dim int, cfg KNNConfig) ([]KNNResult, error) {
	nTrain, err := checkData("kNN train", train, trainLabels, dim)
	if err != nil {
		return nil, err
	}
	nTest, err := checkData("kNN test", test, testLabels, dim)
	if err != nil {
		return nil, err
	}
	classes, err := numClasses(cfg.NumClasses, trainLabels, testLabels)
	if err != nil {
		return nil, fmt.Errorf("eval: kNN: %w", err)
	}
	ks := cfg.Ks
	if len(ks) == 0 {
		ks = []int{20, 200}
	}
	kMax := 0
	for _, k := range ks {
		if k < 1 {
			return nil, fmt.Errorf("eval: kNN: k = %d, want >= 1", k)
		}
		kMax = max(kMax, min(k, nTrain))
	}
	temp := cfg.Temperature
	if temp == 0 {
		temp = 0.07
	}
	if !(temp > 0) || math.IsInf(temp, 1) {
		return nil, fmt.Errorf("eval: kNN: temperature %v, want > 0", temp)
	}

	trainN, err := normalizeRows(train, dim)
	if err != nil {
		return nil, fmt.Errorf("eval: kNN: %w", err)
	}
	testN, err := normalizeRows(test, dim)
	if err != nil {
		return nil, fmt.Errorf("eval: kNN: %w", err)
	}
	trainM := blas32.General{Rows: nTrain, Cols: dim, Stride: dim, Data: trainN}

	chunk := max(1, min(nTest, (16<<20)/nTrain))
	sims := make([]float32, chunk*nTrain)
	workers := runtime.GOMAXPROCS(0)
	correct := make([][]int, workers) // per worker, per k
	for w := range correct {
		correct[w] = make([]int, len(ks))
	}
	for start := 0; start < nTest; start += chunk {
		rows := min(chunk, nTest-start)
		a := blas32.General{Rows: rows, Cols: dim, Stride: dim, Data: testN[start*dim : (start+rows)*dim]}
		s := blas32.General{Rows: rows, Cols: nTrain, Stride: nTrain, Data: sims[:rows*nTrain]}
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, trainM, 0, s)

		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				nb := make(neighbours, 0, kMax)
				votes := make([]float64, classes)
				for r := w; r < rows; r += workers {
					nb = topK(nb[:0], s.Data[r*nTrain:(r+1)*nTrain], kMax)
					for ki, k := range ks {
						clear(votes)
						for _, n := range nb[:min(k, len(nb))] {
							votes[trainLabels[n.idx]] += math.Exp(float64(n.sim) / temp)
						}
						if Argmax(votes) == testLabels[start+r] {
							correct[w][ki]++
						}
					}
				}
			}(w)
		}
		wg.Wait()
	}

	res := make([]KNNResult, len(ks))
	for ki, k := range ks {
		total := 0
		for w := range workers {
			total += correct[w][ki]
		}
		res[ki] = KNNResult{K: k, Top1: 100 * float64(total) / float64(nTest)}
	}
	return res, nil
}

// normalizeRows returns a copy of x (rows of length dim) with each row
// scaled to unit L2 norm by ops.L2NormalizeRows (the norm floored at 1e-12
// as in torch.nn.functional.normalize, so zero rows stay zero).
func normalizeRows(x []float32, dim int) ([]float32, error) {
	n := len(x) / dim
	out := make([]float32, len(x))
	if err := ops.L2NormalizeRows(x, n, dim, out, make([]float64, n)); err != nil {
		return nil, err
	}
	return out, nil
}

// neighbour is a training row and its similarity to a query.
type neighbour struct {
	sim float32
	idx int
}

// better reports whether a ranks before b: higher similarity, then lower
// index.
func better(a, b neighbour) bool {
	return a.sim > b.sim || (a.sim == b.sim && a.idx < b.idx)
}

// neighbours is a heap whose root is the worst kept neighbour.
type neighbours []neighbour

func (h neighbours) Len() int           { return len(h) }
func (h neighbours) Less(i, j int) bool { return better(h[j], h[i]) }
func (h neighbours) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *neighbours) Push(x any)        { *h = append(*h, x.(neighbour)) }
func (h *neighbours) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// topK returns the k best entries of sims (reusing dst's storage), sorted
// best first.
func topK(dst neighbours, sims []float32, k int) neighbours {
	h := dst[:0]
	for i, s := range sims {
		n := neighbour{sim: s, idx: i}
		if len(h) < k {
			h = append(h, n)
			if len(h) == k {
				heap.Init(&h)
			}
			continue
		}
		if better(n, h[0]) {
			h[0] = n
			heap.Fix(&h, 0)
		}
	}
	slices.SortFunc(h, func(a, b neighbour) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return h
}
