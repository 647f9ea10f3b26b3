package dist

import (
	"math"
	"slices"
	"testing"
)

func TestLocalIsIdentity(t *testing.T) {
	var c Comm = Local{}
	if c.Rank() != 0 || c.Size() != 1 {
		t.Fatalf("rank %d size %d", c.Rank(), c.Size())
	}
	buf := []float32{1, 2}
	if err := c.AllreduceSum32(buf); err != nil || buf[0] != 1 || buf[1] != 2 {
		t.Fatalf("all-reduce changed %v (%v)", buf, err)
	}
	all := make([]float32, 2)
	if err := c.Allgather32(buf, all); err != nil || all[1] != 2 {
		t.Fatalf("allgather %v (%v)", all, err)
	}
	if err := c.Allgather32(buf, make([]float32, 3)); err == nil {
		t.Fatal("allgather into a wrong length accepted")
	}
	if err := c.Bcast([]byte{1}, 1); err == nil {
		t.Fatal("broadcast from rank 1 of 1 accepted")
	}
	g := NewGradReducer(c, 0)
	if err := g.SumAll([][]float32{buf}); err != nil || buf[0] != 1 || g.Calls != 0 {
		t.Fatalf("one rank: SumAll did something (%v, %d calls)", err, g.Calls)
	}
	if err := CheckSame(c, [][]float32{buf}, "weights"); err != nil {
		t.Fatal(err)
	}
}

func TestChecksumSeesEveryBit(t *testing.T) {
	ts := [][]float32{{1, -2, 3.5}, {0, 7}}
	h := Checksum(ts)
	if Checksum([][]float32{{1, -2, 3.5}, {0, 7}}) != h {
		t.Fatal("the checksum of equal values differs")
	}
	for ti := range ts {
		for i := range ts[ti] {
			v := ts[ti][i]
			ts[ti][i] = math.Float32frombits(math.Float32bits(v) ^ 1) // the lowest mantissa bit
			if Checksum(ts) == h {
				t.Fatalf("flipping one bit of tensor %d value %d left the checksum", ti, i)
			}
			ts[ti][i] = v
		}
	}
}

// fakeComm is 2 ranks simulated by one caller that plays rank 0 and knows
// rank 1's values: its all-reduce adds other.
type fakeComm struct {
	Local
	other []float32
	sizes []int
}

func (f *fakeComm) Size() int { return 2 }
func (f *fakeComm) AllreduceSum32(buf []float32) error {
	f.sizes = append(f.sizes, len(buf))
	for i := range buf {
		buf[i] += f.other[0]
		f.other = f.other[1:]
	}
	return nil
}

func TestGradReducerBuckets(t *testing.T) {
	grads := [][]float32{{1, 2, 3}, {4}, {5, 6, 7, 8, 9}}
	var other []float32
	for _, g := range grads {
		for _, v := range g {
			other = append(other, 10*v)
		}
	}
	f := &fakeComm{other: other}
	r := NewGradReducer(f, 12) // 3 values per bucket
	if err := r.SumAll(grads); err != nil {
		t.Fatal(err)
	}
	want := [][]float32{{11, 22, 33}, {44}, {55, 66, 77, 88, 99}}
	for i := range want {
		for j := range want[i] {
			if grads[i][j] != want[i][j] {
				t.Fatalf("gradient %d[%d] = %v, want %v", i, j, grads[i][j], want[i][j])
			}
		}
	}
	if !slices.Equal(f.sizes, []int{3, 3, 3}) {
		t.Fatalf("bucket sizes %v, want 3,3,3", f.sizes)
	}
	if r.Bytes != 36 || r.Calls != 1 {
		t.Fatalf("%d bytes in %d calls, want 36 in 1", r.Bytes, r.Calls)
	}
}
