package nn

import (
	"math"
	"math/rand"
	"sync"
	"testing"

	"github.com/corinfomax/corinfomax/ops/ref"
	"github.com/corinfomax/corinfomax/tensor"
)

// TestSyncBatchNormGrad checks the synchronised path's own arithmetic on
// one worker (Sync the identity) against finite differences.
func TestSyncBatchNormGrad(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, shape := range [][]int{{3, 4, 3, 5}, {6, 5}} {
		b, err := NewBatchNorm(ref.New(), "bn", 5)
		if err != nil {
			t.Fatal(err)
		}
		b.Sync = func([]float64) error { return nil }
		randomiseBN(b.Params(), rng)
		gradCheck(t, b, randTensor(rng, shape...), true, 15, rng)
	}
}

// sumComm is an all-reduce among k goroutines: each calls sum with its
// buffer; all return once every buffer holds the element-wise sum.
type sumComm struct {
	k     int
	mu    sync.Mutex
	cond  *sync.Cond
	acc   []float64
	in    int
	round int
	out   []float64
}

func newSumComm(k int) *sumComm {
	c := &sumComm{k: k}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *sumComm) sum(buf []float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.in == 0 {
		c.acc = make([]float64, len(buf))
	}
	for i, v := range buf {
		c.acc[i] += v
	}
	c.in++
	round := c.round
	if c.in == c.k {
		c.out, c.in = c.acc, 0
		c.round++
		c.cond.Broadcast()
	} else {
		for c.round == round {
			c.cond.Wait()
		}
	}
	copy(buf, c.out)
	return nil
}

// TestSyncBatchNormEqualsBigBatch runs a batch split over two workers with
// synchronised batch norm and compares their outputs, input gradients,
// summed parameter gradients and running statistics with one batch norm
// (the backend's own training path) on the whole batch.
func TestSyncBatchNormEqualsBigBatch(t *testing.T) {
	for _, shape := range [][]int{{6, 3, 2, 4}, {10, 4}} {
		rng := rand.New(rand.NewSource(6))
		x := randTensor(rng, shape...)
		dy := randTensor(rng, shape...)
		c := shape[len(shape)-1]
		whole, err := NewBatchNorm(ref.New(), "bn", c)
		if err != nil {
			t.Fatal(err)
		}
		randomiseBN(whole.Params(), rng)
		y, err := whole.Forward(0, x)
		if err != nil {
			t.Fatal(err)
		}
		dx, err := whole.Backward(0, dy)
		if err != nil {
			t.Fatal(err)
		}
		half := shape[0] / 2
		per := x.Len() / shape[0]
		comm := newSumComm(2)
		parts := make([]*BatchNorm, 2)
		ys, dxs := make([][]float32, 2), make([][]float32, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			b, err := NewBatchNorm(ref.New(), "bn", c)
			if err != nil {
				t.Fatal(err)
			}
			copy(b.Weight.Value.Data, whole.Weight.Value.Data)
			copy(b.Bias.Value.Data, whole.Bias.Value.Data)
			b.Sync = comm.sum
			parts[w] = b
			sub := append([]int{half}, shape[1:]...)
			xw, _ := tensor.FromData(append([]float32(nil), x.Data[w*half*per:(w+1)*half*per]...), sub...)
			dyw, _ := tensor.FromData(append([]float32(nil), dy.Data[w*half*per:(w+1)*half*per]...), sub...)
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				yw, err := b.Forward(0, xw)
				if err != nil {
					errs[w] = err
					return
				}
				ys[w] = append([]float32(nil), yw.Data...)
				dxw, err := b.Backward(0, dyw)
				if err != nil {
					errs[w] = err
					return
				}
				dxs[w] = append([]float32(nil), dxw.Data...)
			}(w)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		near := func(what string, got, want []float32) {
			t.Helper()
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%v %s[%d] = %v, want %v", shape, what, i, got[i], want[i])
				}
			}
		}
		near("y", append(ys[0], ys[1]...), y.Data)
		near("dx", append(dxs[0], dxs[1]...), dx.Data)
		for i, p := range whole.Params() {
			sum := make([]float32, p.Grad.Len())
			for _, b := range parts {
				for j, v := range b.Params()[i].Grad.Data {
					sum[j] += v
				}
			}
			near(p.Name+" gradient (sum of the workers')", sum, p.Grad.Data)
		}
		for _, b := range parts {
			near("running mean", b.RunningMean.Value.Data, whole.RunningMean.Value.Data)
			near("running var", b.RunningVar.Value.Data, whole.RunningVar.Value.Data)
		}
	}
}
