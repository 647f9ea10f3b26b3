package data

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// LabelBudget is how many labelled images a few-label run takes: a
// fraction of the dataset ("1%", "10%") split equally among the classes, or
// a number per class ("60-per-class").
type LabelBudget struct {
	Fraction float64 // in (0, 1], when PerClass is 0
	PerClass int
}

// String is the budget as ParseLabelBudget reads it.
func (b LabelBudget) String() string {
	if b.PerClass > 0 {
		return fmt.Sprintf("%d-per-class", b.PerClass)
	}
	return strconv.FormatFloat(100*b.Fraction, 'g', -1, 64) + "%"
}

// ParseLabelBudget reads "P%" (0 < P <= 100) or "N-per-class" (N >= 1).
func ParseLabelBudget(s string) (LabelBudget, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || !(f > 0 && f <= 100) {
			return LabelBudget{}, fmt.Errorf("label budget %q: want a percentage in (0, 100], such as 1%% or 10%%", s)
		}
		return LabelBudget{Fraction: f / 100}, nil
	}
	if n, ok := strings.CutSuffix(s, "-per-class"); ok {
		k, err := strconv.Atoi(n)
		if err != nil || k < 1 {
			return LabelBudget{}, fmt.Errorf("label budget %q: want a positive count of images per class, such as 60-per-class", s)
		}
		return LabelBudget{PerClass: k}, nil
	}
	return LabelBudget{}, fmt.Errorf("label budget %q: want P%% (1%%, 10%%) or N-per-class (60-per-class)", s)
}

// BalancedSubset returns the dataset indices of a class-balanced labelled
// subset of ds: the same number of images from every class (b.PerClass, or
// b.Fraction of the dataset divided equally among the classes, rounded
// down), each class's images drawn by a permutation seeded by seed. The
// indices come sorted. A dataset without labels, a class with fewer images
// than the budget asks, and a budget that leaves a class no image are
// errors naming the dataset.
func BalancedSubset(ds Dataset, b LabelBudget, seed int64) ([]int, error) {
	k := ds.NumClasses()
	if k < 1 {
		return nil, fmt.Errorf("%s has no labels: a labelled subset needs a labelled dataset", ds.Name())
	}
	per := b.PerClass
	if per == 0 {
		per = int(b.Fraction * float64(ds.Len()) / float64(k))
		if per < 1 {
			return nil, fmt.Errorf("%s of %s (%d images, %d classes) leaves each class with no labelled image: use a larger fraction or N-per-class",
				b, ds.Name(), ds.Len(), k)
		}
	}
	byClass := make([][]int, k)
	for i := 0; i < ds.Len(); i++ {
		l := ds.Label(i)
		if l < 0 || l >= k {
			return nil, fmt.Errorf("%s image %d has label %d, outside [0, %d)", ds.Name(), i, l, k)
		}
		byClass[l] = append(byClass[l], i)
	}
	var out []int
	for c, idx := range byClass {
		if len(idx) < per {
			return nil, fmt.Errorf("%s: class %d has %d images, the budget %s needs %d of each class", ds.Name(), c, len(idx), b, per)
		}
		s1 := uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(c+1)
		rng := rand.New(rand.NewPCG(splitmix64(s1), splitmix64(s1^0x6c6162656c)))
		perm := rng.Perm(len(idx))
		for _, p := range perm[:per] {
			out = append(out, idx[p])
		}
	}
	sort.Ints(out)
	return out, nil
}

// Subset is the view of ds holding only the images of indices, in that
// order.
func Subset(ds Dataset, indices []int) Dataset { return &subsetDS{ds: ds, idx: indices} }

type subsetDS struct {
	ds  Dataset
	idx []int
}

func (s *subsetDS) Name() string {
	return fmt.Sprintf("%s, subset of %d", s.ds.Name(), len(s.idx))
}
func (s *subsetDS) Len() int                      { return len(s.idx) }
func (s *subsetDS) Channels() int                 { return s.ds.Channels() }
func (s *subsetDS) NumClasses() int               { return s.ds.NumClasses() }
func (s *subsetDS) Label(i int) int               { return s.ds.Label(s.idx[i]) }
func (s *subsetDS) Image(i int, dst *Image) error { return s.ds.Image(s.idx[i], dst) }
