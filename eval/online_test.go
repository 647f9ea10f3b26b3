package eval

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// centres returns k well-separated centres in dim dimensions.
func centres(rng *rand.Rand, dim, k int) []float64 {
	c := make([]float64, k*dim)
	for i := range c {
		c[i] = 3 * rng.NormFloat64()
	}
	return c
}

// blobs returns n points of dim features around one of the k centres, and
// their labels.
func blobs(rng *rand.Rand, c []float64, n, dim, k int) ([]float32, []int) {
	x, y := make([]float32, n*dim), make([]int, n)
	for r := 0; r < n; r++ {
		y[r] = rng.Intn(k)
		for j := 0; j < dim; j++ {
			x[r*dim+j] = float32(c[y[r]*dim+j] + rng.NormFloat64())
		}
	}
	return x, y
}

func TestOnlineLinearLearns(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const dim, k = 6, 4
	c := centres(rng, dim, k)
	p, err := NewOnlineLinear(dim, k, rand.New(rand.NewSource(2)))
	if err != nil {
		t.Fatal(err)
	}
	testX, testY := blobs(rng, c, 400, dim, k)
	before, _ := p.Top1(testX, 400, testY)
	var first, last float64
	for s := 0; s < 200; s++ {
		x, y := blobs(rng, c, 32, dim, k)
		loss, err := p.Step(x, 32, y)
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = loss
		}
		last = loss
	}
	after, _ := p.Top1(testX, 400, testY)
	if !(after > 95 && after > before+20 && last < first/4) {
		t.Fatalf("top-1 %.1f%% -> %.1f%%, loss %.3f -> %.3f: the probe did not learn separable blobs", before, after, first, last)
	}
	// The state round-trips, and a probe of another size refuses it.
	q, _ := NewOnlineLinear(dim, k, rand.New(rand.NewSource(3)))
	if err := q.SetState(p.State()); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Top1(testX, 400, testY); got != after {
		t.Fatalf("restored probe: %.2f%%, want %.2f%%", got, after)
	}
	other, _ := NewOnlineLinear(dim+1, k, rand.New(rand.NewSource(3)))
	if err := other.SetState(p.State()); err == nil {
		t.Fatal("a probe of 7 features accepted the state of one of 6")
	}
	if _, err := p.Step(testX[:5], 2, testY[:2]); err == nil {
		t.Fatal("a step with the wrong feature count succeeded")
	}
	if _, err := NewOnlineLinear(dim, 1, rng); err == nil {
		t.Fatal("a one-class probe was created")
	}
}

// TestOnlineLinearGradient checks one step's update against finite
// differences of the loss (momentum starts at zero, so the first update is
// -lr * gradient).
func TestOnlineLinearGradient(t *testing.T) {
	const dim, k, n = 3, 3, 5
	rng := rand.New(rand.NewSource(4))
	x, y := blobs(rng, centres(rng, dim, k), n, dim, k)
	p, _ := NewOnlineLinear(dim, k, rand.New(rand.NewSource(5)))
	loss := func(q *OnlineLinear) float64 {
		c, _ := NewOnlineLinear(dim, k, rand.New(rand.NewSource(5)))
		copy(c.W, q.W)
		copy(c.B, q.B)
		c.LR = 0
		l, _ := c.Step(x, n, y)
		return l
	}
	w0 := append([]float32(nil), p.W...)
	p.LR = 1e-3
	if _, err := p.Step(x, n, y); err != nil {
		t.Fatal(err)
	}
	for i := range w0 {
		q, _ := NewOnlineLinear(dim, k, rand.New(rand.NewSource(5)))
		const h = 1e-2
		q.W[i] = w0[i] + h
		lp := loss(q)
		q.W[i] = w0[i] - h
		lm := loss(q)
		fd := (lp - lm) / (2 * h)
		got := float64(w0[i]-p.W[i]) / 1e-3
		if math.Abs(got-fd) > 1e-3+1e-2*math.Abs(fd) {
			t.Fatalf("weight %d: update says gradient %.5f, finite differences %.5f", i, got, fd)
		}
	}
}

// BenchmarkOnlineLinearStep is one probe step at the demo's shape: 256
// images of the width-16 ResNet-18's 128 features, 10 classes (and at
// width 64's 512 features).
func BenchmarkOnlineLinearStep(b *testing.B) {
	for _, dim := range []int{128, 512} {
		b.Run(fmt.Sprintf("n256_d%d_k10", dim), func(b *testing.B) {
			rng := rand.New(rand.NewSource(1))
			x, y := blobs(rng, centres(rng, dim, 10), 256, dim, 10)
			p, _ := NewOnlineLinear(dim, 10, rng)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := p.Step(x, 256, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
