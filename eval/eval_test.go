package eval

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// clusters draws n rows of dimension dim around one of classes well-separated
// means (random directions of length sep) with unit-variance noise scaled by
// noise.
func clusters(rng *rand.Rand, n, dim, classes int, sep, noise float64, means [][]float64) ([]float32, []int, [][]float64) {
	if means == nil {
		for range classes {
			m := make([]float64, dim)
			var ss float64
			for j := range m {
				m[j] = rng.NormFloat64()
				ss += m[j] * m[j]
			}
			for j := range m {
				m[j] *= sep / math.Sqrt(ss)
			}
			means = append(means, m)
		}
	}
	x := make([]float32, n*dim)
	y := make([]int, n)
	for i := range n {
		y[i] = rng.IntN(classes)
		for j := range dim {
			x[i*dim+j] = float32(means[y[i]][j] + noise*rng.NormFloat64())
		}
	}
	return x, y, means
}

func TestKNNHandComputed(t *testing.T) {
	// Train rows (unnormalised) and labels.
	train := []float32{1, 0, 0, 1, 1, 1, -1, 0}
	trainLabels := []int{0, 1, 1, 2}
	// Query q = (1, 0.2), label 1. Cosine similarities by hand:
	//   t0: 1/sqrt(1.04) = 0.98058, t1: 0.2/sqrt(1.04) = 0.19612,
	//   t2: 1.2/(sqrt(1.04) sqrt(2)) = 0.83205, t3: -0.98058.
	// k=1: t0 -> class 0 (wrong).
	// k=3, T=1: class 0 gets e^0.98058 = 2.666, class 1 gets
	//   e^0.83205 + e^0.19612 = 2.298 + 1.217 = 3.515 -> class 1 (right).
	// k=3, T=0.07: class 0 gets e^14.008 = 1.21e6, class 1 gets
	//   e^11.886 + e^2.802 = 1.45e5 + 16.5 -> class 0 (wrong).
	s0, s1, s2 := 1/math.Sqrt(1.04), 0.2/math.Sqrt(1.04), 1.2/(math.Sqrt(1.04)*math.Sqrt2)
	if !(math.Exp(s0) < math.Exp(s2)+math.Exp(s1)) || !(math.Exp(s0/0.07) > math.Exp(s2/0.07)+math.Exp(s1/0.07)) {
		t.Fatal("hand computation of the test's premise is wrong")
	}
	q := []float32{1, 0.2}
	for _, c := range []struct {
		temp float64
		k    int
		want float64
	}{{1, 1, 0}, {1, 3, 100}, {0.07, 3, 0}, {0.07, 1, 0}, {1, 4, 100}, {1, 50, 100}} {
		res, err := KNN(train, trainLabels, q, []int{1}, 2, KNNConfig{Ks: []int{c.k}, Temperature: c.temp, NumClasses: 3})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].K != c.k || res[0].Top1 != c.want {
			t.Errorf("T=%v k=%d: got %+v, want top-1 %v", c.temp, c.k, res[0], c.want)
		}
	}
	// k=4 at T=1 adds t3 (class 2, weight e^-0.98 = 0.375): still class 1, checked above.

	// Ties: query (0, -1) has similarity exactly 0 to t0 (class 0) and t3
	// (class 2). k=1 takes the lower training index t0 -> class 0; k=2
	// gives equal votes e^0 to classes 0 and 2 -> the lower class 0.
	q2 := []float32{0, -1}
	for _, label := range []int{0, 2} {
		res, err := KNN(train, trainLabels, q2, []int{label}, 2, KNNConfig{Ks: []int{1, 2}, Temperature: 0.5, NumClasses: 3})
		if err != nil {
			t.Fatal(err)
		}
		want := 0.0
		if label == 0 {
			want = 100
		}
		if res[0].Top1 != want || res[1].Top1 != want {
			t.Errorf("tie case, label %d: got %+v, want top-1 %v for k=1 and k=2", label, res, want)
		}
	}
}

// refKNN is a brute-force float64 reference: full sort, no heaps, no GEMM.
func refKNN(train []float32, trainLabels []int, test []float32, testLabels []int, dim, classes, k int, temp float64) float64 {
	norm := func(x []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		out := make([]float64, len(x))
		for j, v := range x {
			out[j] = float64(v) / math.Sqrt(ss)
		}
		return out
	}
	nTrain := len(trainLabels)
	correct := 0
	for i, label := range testLabels {
		q := norm(test[i*dim : (i+1)*dim])
		type nb struct {
			s float64
			i int
		}
		all := make([]nb, nTrain)
		for r := range nTrain {
			tr := norm(train[r*dim : (r+1)*dim])
			var s float64
			for j := range dim {
				s += q[j] * tr[j]
			}
			all[r] = nb{s, r}
		}
		sort.SliceStable(all, func(a, b int) bool { return all[a].s > all[b].s })
		votes := make([]float64, classes)
		for _, n := range all[:min(k, nTrain)] {
			votes[trainLabels[n.i]] += math.Exp(n.s / temp)
		}
		best := 0
		for c := range votes {
			if votes[c] > votes[best] {
				best = c
			}
		}
		if best == label {
			correct++
		}
	}
	return 100 * float64(correct) / float64(len(testLabels))
}

func TestKNNMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const dim, classes = 8, 5
	train, trainLabels, means := clusters(rng, 300, dim, classes, 1.5, 1, nil)
	test, testLabels, _ := clusters(rng, 80, dim, classes, 1.5, 1, means)
	res, err := KNN(train, trainLabels, test, testLabels, dim, KNNConfig{Ks: []int{1, 20, 200, 1000}, NumClasses: classes})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		want := refKNN(train, trainLabels, test, testLabels, dim, classes, r.K, 0.07)
		if r.Top1 != want {
			t.Errorf("k=%d: top-1 %v, reference %v", r.K, r.Top1, want)
		}
	}
}

func TestKNNSeparableAndRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const dim, classes = 16, 10
	train, trainLabels, means := clusters(rng, 2000, dim, classes, 8, 0.5, nil)
	test, testLabels, _ := clusters(rng, 500, dim, classes, 8, 0.5, means)
	res, err := KNN(train, trainLabels, test, testLabels, dim, KNNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].K != 20 || res[1].K != 200 {
		t.Fatalf("default Ks: got %+v", res)
	}
	for _, r := range res {
		if r.Top1 < 99 {
			t.Errorf("separable clusters, k=%d: top-1 %.2f%%, want >= 99", r.K, r.Top1)
		}
	}
	// Random labels: chance is 10%; 500 test rows give a std of 1.3 points.
	for i := range trainLabels {
		trainLabels[i] = rng.IntN(classes)
	}
	for i := range testLabels {
		testLabels[i] = rng.IntN(classes)
	}
	res, err = KNN(train, trainLabels, test, testLabels, dim, KNNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Top1 < 4 || r.Top1 > 17 {
			t.Errorf("random labels, k=%d: top-1 %.2f%%, want near 10", r.K, r.Top1)
		}
	}
}

func TestKNNErrors(t *testing.T) {
	x := []float32{1, 2, 3, 4}
	cases := []func() error{
		func() error { _, err := KNN(x, []int{0, 1}, x, []int{0}, 2, KNNConfig{}); return err },    // test size
		func() error { _, err := KNN(x, []int{0, 1}, x, []int{0, 1}, 0, KNNConfig{}); return err }, // dim
		func() error { _, err := KNN(x, []int{0, 5}, x, []int{0, 1}, 2, KNNConfig{NumClasses: 2}); return err },
		func() error { _, err := KNN(x, []int{0, 1}, x, []int{0, 1}, 2, KNNConfig{Ks: []int{0}}); return err },
		func() error { _, err := KNN(x, []int{0, -1}, x, []int{0, 1}, 2, KNNConfig{}); return err },
		func() error { _, err := KNN(x, []int{0, 1}, x, []int{0, 1}, 2, KNNConfig{Temperature: -1}); return err },
	}
	for i, c := range cases {
		if c() == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}

func TestLinearProbeSeparable(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const dim, classes = 16, 10
	train, trainLabels, means := clusters(rng, 1000, dim, classes, 6, 0.5, nil)
	test, testLabels, _ := clusters(rng, 400, dim, classes, 6, 0.5, means)
	var losses []float64
	res, err := LinearProbe(context.Background(), train, trainLabels, test, testLabels, dim,
		LinearConfig{Epochs: 10, Batch: 64, Seed: 1}, func(e int, l float64) {
			if e != len(losses)+1 {
				t.Errorf("progress epoch %d after %d calls", e, len(losses))
			}
			losses = append(losses, l)
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(losses) != 10 || !(losses[9] < losses[0]) || losses[9] != res.TrainLoss {
		t.Errorf("losses %v, TrainLoss %v", losses, res.TrainLoss)
	}
	if res.Top1 < 98 || res.Top5 != 100 {
		t.Errorf("separable clusters: %+v, want top-1 >= 98 and top-5 100", res)
	}

	// The same data shifted and scaled far from the origin, standardised
	// with the training statistics (applied to test rows too).
	shift := func(x []float32) []float32 {
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = 500 + 40*v
		}
		return out
	}
	res, err = LinearProbe(context.Background(), shift(train), trainLabels, shift(test), testLabels, dim,
		LinearConfig{Epochs: 10, Batch: 64, Seed: 1, Standardize: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Top1 < 98 {
		t.Errorf("standardised shifted clusters: %+v, want top-1 >= 98", res)
	}
}

func TestLinearProbeRandomLabels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const dim, classes = 8, 10
	train, _, means := clusters(rng, 500, dim, classes, 3, 1, nil)
	test, _, _ := clusters(rng, 500, dim, classes, 3, 1, means)
	trainLabels := make([]int, 500)
	testLabels := make([]int, 500)
	for i := range trainLabels {
		trainLabels[i] = rng.IntN(classes)
		testLabels[i] = rng.IntN(classes)
	}
	res, err := LinearProbe(context.Background(), train, trainLabels, test, testLabels, dim,
		LinearConfig{Epochs: 5, Batch: 50, Seed: 2, NumClasses: classes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Top1 < 4 || res.Top1 > 17 || res.Top5 < 40 || res.Top5 > 60 {
		t.Errorf("random labels: %+v, want top-1 near 10 and top-5 near 50", res)
	}
}

func TestLinearProbeFirstLoss(t *testing.T) {
	// One full-batch epoch reports the loss at the zero initialisation,
	// which is ln(classes) for every row.
	x := []float32{1, 2, 3, -1, 0.5, 2, 0, 0, 7, 1, 1, 1}
	y := []int{0, 2, 3, 1}
	res, err := LinearProbe(context.Background(), x, y, x, y, 3, LinearConfig{Epochs: 1, Batch: 4, NumClasses: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.TrainLoss-math.Log(4)) > 1e-12 {
		t.Errorf("first loss %v, want ln 4 = %v", res.TrainLoss, math.Log(4))
	}
}

func TestLinearProbeCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	x := []float32{1, 0, 0, 1}
	y := []int{0, 1}
	_, err := LinearProbe(ctx, x, y, x, y, 2, LinearConfig{Epochs: 1000}, func(e int, _ float64) {
		if e == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if _, err := LinearProbe(context.Background(), x, y, x, []int{0}, 2, LinearConfig{}, nil); err == nil {
		t.Error("mismatched test labels accepted")
	}
}

func TestAccuracyHelpers(t *testing.T) {
	if got := Accuracy([]int{1, 2, 3, 4}, []int{1, 0, 3, 0}); got != 50 {
		t.Errorf("Accuracy = %v, want 50", got)
	}
	// Row 0: label 2 has the 2nd largest score; row 1: all equal, label 1
	// ranks second by the lower-index tie rule; row 2: label 0 is the top.
	scores := []float64{0.1, 0.9, 0.5, 1, 1, 1, 3, 2, 1}
	labels := []int{2, 1, 0}
	if got := TopKAccuracy(scores, labels, 3, 1); math.Abs(got-100.0/3) > 1e-12 {
		t.Errorf("top-1 = %v, want 33.33", got)
	}
	if got := TopKAccuracy(scores, labels, 3, 2); got != 100 {
		t.Errorf("top-2 = %v, want 100", got)
	}
	if got := Argmax([]float64{1, 3, 3, 2}); got != 1 {
		t.Errorf("Argmax = %d, want 1", got)
	}
}

func TestCovarianceMatchesGonumStat(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const n, d = 3000, 7
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64()*float64(1+i%d) + 3)
	}
	got := Covariance(x, n, d)
	data := make([]float64, n*d)
	for i, v := range x {
		data[i] = float64(v)
	}
	var want mat.SymDense
	stat.CovarianceMatrix(&want, mat.NewDense(n, d, data), nil) // divides by n-1
	for i := range d {
		for j := range d {
			w := want.At(i, j) * float64(n-1) / float64(n)
			if math.Abs(got[i*d+j]-w) > 1e-9*math.Max(1, math.Abs(w)) {
				t.Fatalf("cov[%d,%d] = %v, want %v", i, j, got[i*d+j], w)
			}
		}
	}
	if Covariance(x, n, d+1) != nil || Covariance(nil, 0, 3) != nil {
		t.Error("invalid sizes should give nil")
	}
}

func TestCovarianceChunks(t *testing.T) {
	// d = 1024 gives a chunk of 1024 rows; 2500 rows span three chunks.
	// Rows are e_(i mod d) scaled by 2: the covariance is known in closed form.
	const n, d = 2500, 1024
	x := make([]float32, n*d)
	for i := range n {
		x[i*d+i%d] = 2
	}
	got := Covariance(x, n, d)
	count := func(j int) float64 { // rows with a 2 in column j
		c := n / d
		if j < n%d {
			c++
		}
		return float64(c)
	}
	for _, ij := range [][2]int{{0, 0}, {1000, 1000}, {3, 700}, {500, 500}, {1023, 5}} {
		i, j := ij[0], ij[1]
		mi, mj := 2*count(i)/n, 2*count(j)/n
		want := -mi * mj
		if i == j {
			want += 4 * count(i) / n
		}
		if math.Abs(got[i*d+j]-want) > 1e-12 {
			t.Errorf("cov[%d,%d] = %v, want %v", i, j, got[i*d+j], want)
		}
	}
}

func TestSpectrumAndEffectiveRank(t *testing.T) {
	// Q diag(4, 1, 0.25) Q^T with a rotation Q in the first two axes.
	c, s := math.Cos(0.3), math.Sin(0.3)
	q := mat.NewDense(3, 3, []float64{c, -s, 0, s, c, 0, 0, 0, 1})
	var a, m mat.Dense
	a.Mul(q, mat.NewDiagDense(3, []float64{1, 0.25, 4}))
	m.Mul(&a, q.T())
	vals, err := Spectrum(m.RawMatrix().Data, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []float64{4, 1, 0.25} {
		if math.Abs(vals[i]-w) > 1e-12 {
			t.Errorf("eigenvalue %d = %v, want %v", i, vals[i], w)
		}
	}
	if _, err := Spectrum([]float64{1, 2}, 2); err == nil {
		t.Error("wrong size accepted")
	}
	if r := EffectiveRank([]float64{2, 2, 2, 2, 0, -1e-17}); math.Abs(r-4) > 1e-12 {
		t.Errorf("EffectiveRank(uniform 4) = %v, want 4", r)
	}
	if r := EffectiveRank([]float64{5, 0, 0}); r != 1 {
		t.Errorf("EffectiveRank(one) = %v, want 1", r)
	}
	// Two eigenvalues 3:1: H = -(0.75 ln 0.75 + 0.25 ln 0.25).
	if r, want := EffectiveRank([]float64{3, 1}), math.Exp(-(0.75*math.Log(0.75) + 0.25*math.Log(0.25))); math.Abs(r-want) > 1e-12 {
		t.Errorf("EffectiveRank(3,1) = %v, want %v", r, want)
	}
}
