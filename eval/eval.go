// Package eval holds the evaluation protocols run on frozen features:
// weighted k-nearest-neighbour classification (KNN), a linear probe
// (LinearProbe, softmax regression trained with SGD), and covariance
// spectrum statistics (Covariance, Spectrum, EffectiveRank).
//
// Features are N x D row-major float32 matrices, as the encoders produce
// them; sums, statistics and probe weights are kept in float64.
package eval

import "fmt"

// checkData validates a feature matrix and its labels and returns the row
// count.
func checkData(what string, x []float32, labels []int, dim int) (int, error) {
	if dim <= 0 {
		return 0, fmt.Errorf("eval: %s: dimension %d, want > 0", what, dim)
	}
	if len(labels) == 0 {
		return 0, fmt.Errorf("eval: %s: no rows", what)
	}
	if len(x) != len(labels)*dim {
		return 0, fmt.Errorf("eval: %s: %d feature values for %d labels of dimension %d, want %d",
			what, len(x), len(labels), dim, len(labels)*dim)
	}
	return len(labels), nil
}

// numClasses returns want when positive, and otherwise 1 + the largest
// label; it checks every label is in [0, classes).
func numClasses(want int, labelSets ...[]int) (int, error) {
	c := want
	if c <= 0 {
		for _, ls := range labelSets {
			for _, l := range ls {
				c = max(c, l+1)
			}
		}
	}
	if c <= 0 {
		return 0, fmt.Errorf("eval: cannot infer the number of classes")
	}
	for _, ls := range labelSets {
		for i, l := range ls {
			if l < 0 || l >= c {
				return 0, fmt.Errorf("eval: label %d at row %d outside [0, %d)", l, i, c)
			}
		}
	}
	return c, nil
}

// Accuracy returns the percentage of rows where pred equals labels. It
// returns 0 for empty or mismatched inputs.
func Accuracy(pred, labels []int) float64 {
	if len(pred) == 0 || len(pred) != len(labels) {
		return 0
	}
	n := 0
	for i := range pred {
		if pred[i] == labels[i] {
			n++
		}
	}
	return 100 * float64(n) / float64(len(pred))
}

// TopKAccuracy returns the percentage of rows whose label is among the k
// highest of its numClasses scores (scores is rows x numClasses,
// row-major). Ties are broken towards the lower class index, as Argmax
// does, so equal scores do not count every class as correct. It returns 0
// for inconsistent inputs.
func TopKAccuracy(scores []float64, labels []int, numClasses, k int) float64 {
	if numClasses <= 0 || len(labels) == 0 || len(scores) != len(labels)*numClasses {
		return 0
	}
	n := 0
	for i, l := range labels {
		if l < 0 || l >= numClasses {
			continue
		}
		row := scores[i*numClasses : (i+1)*numClasses]
		if rankOf(row, l) < k {
			n++
		}
	}
	return 100 * float64(n) / float64(len(labels))
}

// rankOf returns the 0-based position of class c when row is sorted by
// descending score, ties broken by ascending class index.
func rankOf(row []float64, c int) int {
	r := 0
	for j, s := range row {
		if s > row[c] || (s == row[c] && j < c) {
			r++
		}
	}
	return r
}

// Argmax returns the index of the largest value of row, the lowest index
// among ties, or -1 for an empty row.
func Argmax(row []float64) int {
	best := -1
	for j, v := range row {
		if best < 0 || v > row[best] {
			best = j
		}
	}
	return best
}
