package eval

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// jittered returns a feature source whose epoch e is x with fresh Gaussian
// noise of standard deviation sd (seeded by e), scaled by 1 + 0.1 e and
// shifted by 0.3 e, so every epoch differs in its rows and its statistics.
// calls records the epochs requested.
func jittered(x []float32, y []int, sd float64, calls *[]int) func(context.Context, int) ([]float32, []int, error) {
	return func(_ context.Context, e int) ([]float32, []int, error) {
		*calls = append(*calls, e)
		rng := rand.New(rand.NewPCG(uint64(e), 99))
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = float32((float64(v)+sd*rng.NormFloat64())*(1+0.1*float64(e)) + 0.3*float64(e))
		}
		return out, y, nil
	}
}

func TestLinearProbeEpochsJittered(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const dim, classes, epochs = 16, 10, 10
	train, trainLabels, means := clusters(rng, 800, dim, classes, 6, 0.5, nil)
	test, testLabels, _ := clusters(rng, 400, dim, classes, 6, 0.5, means)
	cfg := LinearConfig{Epochs: epochs, Batch: 64, Seed: 4, Standardize: true}
	var calls []int
	var losses []float64
	res, err := LinearProbeEpochs(context.Background(), jittered(train, trainLabels, 0.3, &calls), test, testLabels, dim, cfg,
		func(_ int, l float64) { losses = append(losses, l) })
	if err != nil {
		t.Fatal(err)
	}
	for e, c := range calls {
		if c != e {
			t.Fatalf("source called for epochs %v, want 0 .. %d once each in order", calls, epochs-1)
		}
	}
	if len(calls) != epochs || len(losses) != epochs || !(losses[epochs-1] < losses[0]) {
		t.Errorf("calls %v, losses %v", calls, losses)
	}
	if res.Top1 < 98 || res.Top5 != 100 {
		t.Errorf("jittered separable clusters: %+v, want top-1 >= 98 and top-5 100", res)
	}

	// Seeded: a second run gives the same result.
	calls = nil
	again, err := LinearProbeEpochs(context.Background(), jittered(train, trainLabels, 0.3, &calls), test, testLabels, dim, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again != res {
		t.Errorf("second run %+v, first %+v", again, res)
	}
}

func TestLinearProbeEpochsStandardizesWithFirstEpoch(t *testing.T) {
	// Reference: standardise every epoch and the test set by hand with the
	// first epoch's mean and population std, then train without
	// Standardize. The per-epoch scale and shift of the source make
	// per-epoch statistics give a visibly different run.
	rng := rand.New(rand.NewPCG(31, 32))
	const dim, classes = 6, 4
	train, trainLabels, means := clusters(rng, 300, dim, classes, 2, 1, nil)
	test, testLabels, _ := clusters(rng, 100, dim, classes, 2, 1, means)
	var calls []int
	src := jittered(train, trainLabels, 0.2, &calls)

	first, _, _ := src(context.Background(), 0)
	n := len(trainLabels)
	mu := make([]float64, dim)
	sd := make([]float64, dim)
	for i := range n {
		for j := range dim {
			mu[j] += float64(first[i*dim+j]) / float64(n)
		}
	}
	for i := range n {
		for j := range dim {
			d := float64(first[i*dim+j]) - mu[j]
			sd[j] += d * d / float64(n)
		}
	}
	std := func(x []float32) []float32 {
		out := make([]float32, len(x))
		for i, v := range x {
			j := i % dim
			out[i] = float32((float64(v) - mu[j]) / math.Sqrt(sd[j]))
		}
		return out
	}
	ref := func(ctx context.Context, e int) ([]float32, []int, error) {
		x, y, err := src(ctx, e)
		return std(x), y, err
	}

	cfg := LinearConfig{Epochs: 6, Batch: 32, Seed: 5}
	var want, got []float64
	wantRes, err := LinearProbeEpochs(context.Background(), ref, std(test), testLabels, dim, cfg,
		func(_ int, l float64) { want = append(want, l) })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Standardize = true
	gotRes, err := LinearProbeEpochs(context.Background(), src, test, testLabels, dim, cfg,
		func(_ int, l float64) { got = append(got, l) })
	if err != nil {
		t.Fatal(err)
	}
	for e := range want {
		if math.Abs(got[e]-want[e]) > 1e-5*want[e] {
			t.Errorf("epoch %d loss %v, want %v (first-epoch standardisation)", e+1, got[e], want[e])
		}
	}
	if math.Abs(gotRes.Top1-wantRes.Top1) > 1 || math.Abs(gotRes.Top5-wantRes.Top5) > 1 {
		t.Errorf("result %+v, want %+v", gotRes, wantRes)
	}
}

func TestLinearProbeEpochsErrors(t *testing.T) {
	x := []float32{1, 0, 0, 1, 1, 1}
	y := []int{0, 1, 1}
	boom := errors.New("boom")
	cases := map[string]func(context.Context, int) ([]float32, []int, error){
		"source error": func(_ context.Context, e int) ([]float32, []int, error) {
			if e == 2 {
				return nil, nil, boom
			}
			return x, y, nil
		},
		"rows change": func(_ context.Context, e int) ([]float32, []int, error) {
			if e == 1 {
				return x[:4], y[:2], nil
			}
			return x, y, nil
		},
		"label out of range": func(_ context.Context, e int) ([]float32, []int, error) {
			if e == 1 {
				return x, []int{0, 1, 2}, nil
			}
			return x, y, nil
		},
		"nil source": nil,
	}
	for name, src := range cases {
		_, err := LinearProbeEpochs(context.Background(), src, x, y, 2, LinearConfig{Epochs: 4}, nil)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if name == "source error" && !errors.Is(err, boom) {
			t.Errorf("source error not wrapped: %v", err)
		}
	}
}
