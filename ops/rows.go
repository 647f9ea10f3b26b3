package ops

import (
	"fmt"
	"math"
)

// normEps is the lower clamp of the row norm in L2NormalizeRows, as in
// torch.nn.functional.normalize.
const normEps = 1e-12

// checkRows validates a row operator's sizes and slice lengths.
func checkRows[T Float](op string, n, d int, named map[string][]T, norms []float64) error {
	if n < 1 || d < 1 {
		return fmt.Errorf("ops: %s: invalid sizes n=%d d=%d", op, n, d)
	}
	for _, name := range []string{"x", "y", "dy", "dx"} {
		if v, ok := named[name]; ok && len(v) != n*d {
			return fmt.Errorf("ops: %s: %s has %d values, want %d", op, name, len(v), n*d)
		}
	}
	if len(norms) != n {
		return fmt.Errorf("ops: %s: norms has %d values, want %d", op, len(norms), n)
	}
	return nil
}

// L2NormalizeRows writes y = x / max(||x||, 1e-12) for each of the n rows of
// the n x d matrix x, as torch.nn.functional.normalize(x, dim=1), and the
// unclamped row norms ||x|| (computed in float64) to norms.
func L2NormalizeRows(x []float32, n, d int, y []float32, norms []float64) error {
	return l2NormalizeRows("l2 normalize rows", x, n, d, y, norms)
}

// L2NormalizeRows64 is L2NormalizeRows in float64.
func L2NormalizeRows64(x []float64, n, d int, y []float64, norms []float64) error {
	return l2NormalizeRows("l2 normalize rows", x, n, d, y, norms)
}

func l2NormalizeRows[T Float](op string, x []T, n, d int, y []T, norms []float64) error {
	if err := checkRows(op, n, d, map[string][]T{"x": x, "y": y}, norms); err != nil {
		return err
	}
	for r := range n {
		xr := x[r*d:][:d]
		sum := 0.0
		for _, v := range xr {
			sum += float64(v) * float64(v)
		}
		norm := math.Sqrt(sum)
		norms[r] = norm
		den := max(norm, normEps)
		yr := y[r*d:][:d]
		for i, v := range xr {
			yr[i] = T(float64(v) / den)
		}
	}
	return nil
}

// L2NormalizeRowsBackward writes dx, the gradient through L2NormalizeRows,
// given its output y, the saved row norms and the output gradient dy. It is
// the exact Jacobian of torch.nn.functional.normalize: for a row with
// ||x|| >= 1e-12,
//
//	dx = (dy - y * <y, dy>) / ||x||,
//
// and for a clamped row (||x|| < 1e-12, where y = x / 1e-12) dx = dy / 1e-12.
// dx may alias dy.
func L2NormalizeRowsBackward(y []float32, norms []float64, n, d int, dy, dx []float32) error {
	return l2NormalizeRowsBackward("l2 normalize rows backward", y, norms, n, d, dy, dx)
}

// L2NormalizeRowsBackward64 is L2NormalizeRowsBackward in float64.
func L2NormalizeRowsBackward64(y []float64, norms []float64, n, d int, dy, dx []float64) error {
	return l2NormalizeRowsBackward("l2 normalize rows backward", y, norms, n, d, dy, dx)
}

func l2NormalizeRowsBackward[T Float](op string, y []T, norms []float64, n, d int, dy, dx []T) error {
	if err := checkRows(op, n, d, map[string][]T{"y": y, "dy": dy, "dx": dx}, norms); err != nil {
		return err
	}
	for r := range n {
		yr := y[r*d:][:d]
		dyr := dy[r*d:][:d]
		dxr := dx[r*d:][:d]
		norm := norms[r]
		if norm < normEps {
			for i, g := range dyr {
				dxr[i] = T(float64(g) / normEps)
			}
			continue
		}
		dot := 0.0
		for i, v := range yr {
			dot += float64(v) * float64(dyr[i])
		}
		for i, v := range yr {
			dxr[i] = T((float64(dyr[i]) - float64(v)*dot) / norm)
		}
	}
	return nil
}

// SoftmaxCrossEntropy returns the mean cross-entropy over the n rows of the
// n x k logits against labels (values in [0, k)), computed stably in
// float64 (log-sum-exp with the row maximum subtracted), and writes
// dlogits = (softmax(logits) - onehot(labels)) / n, the gradient of the
// mean loss (skipped when dlogits is nil).
func SoftmaxCrossEntropy(logits []float32, n, k int, labels []int, dlogits []float32) (float64, error) {
	return softmaxCrossEntropy(logits, n, k, labels, dlogits)
}

// SoftmaxCrossEntropy64 is SoftmaxCrossEntropy in float64.
func SoftmaxCrossEntropy64(logits []float64, n, k int, labels []int, dlogits []float64) (float64, error) {
	return softmaxCrossEntropy(logits, n, k, labels, dlogits)
}

func softmaxCrossEntropy[T Float](logits []T, n, k int, labels []int, dlogits []T) (float64, error) {
	const op = "softmax cross-entropy"
	if n < 1 || k < 1 {
		return 0, fmt.Errorf("ops: %s: invalid sizes n=%d k=%d", op, n, k)
	}
	if len(logits) != n*k {
		return 0, fmt.Errorf("ops: %s: logits has %d values, want %d", op, len(logits), n*k)
	}
	if len(labels) != n {
		return 0, fmt.Errorf("ops: %s: labels has %d values, want %d", op, len(labels), n)
	}
	if dlogits != nil && len(dlogits) != n*k {
		return 0, fmt.Errorf("ops: %s: dlogits has %d values, want %d", op, len(dlogits), n*k)
	}
	for r, l := range labels {
		if l < 0 || l >= k {
			return 0, fmt.Errorf("ops: %s: row %d has label %d outside [0, %d)", op, r, l, k)
		}
	}
	p := make([]float64, k)
	loss := 0.0
	for r := range n {
		row := logits[r*k:][:k]
		m := math.Inf(-1)
		for _, v := range row {
			m = max(m, float64(v))
		}
		sum := 0.0
		for i, v := range row {
			p[i] = math.Exp(float64(v) - m)
			sum += p[i]
		}
		lse := m + math.Log(sum)
		loss += lse - float64(row[labels[r]])
		if dlogits != nil {
			dr := dlogits[r*k:][:k]
			for i := range p {
				g := p[i] / sum
				if i == labels[r] {
					g--
				}
				dr[i] = T(g / float64(n))
			}
		}
	}
	return loss / float64(n), nil
}
