package ssl

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// TestNewQueue checks the initial rows: unit norm, reproducible from the
// seeds, different for different seeds, and not degenerate.
func TestNewQueue(t *testing.T) {
	q, err := NewQueue(50, 7, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if q.Size() != 50 || q.Dim() != 7 || q.Ptr() != 0 || len(q.Rows()) != 350 {
		t.Fatalf("queue %d x %d, ptr %d, %d values", q.Size(), q.Dim(), q.Ptr(), len(q.Rows()))
	}
	mean := 0.0
	for i := 0; i < q.Size(); i++ {
		ss := 0.0
		for _, v := range q.At(i) {
			ss += float64(v) * float64(v)
			mean += float64(v)
		}
		if math.Abs(math.Sqrt(ss)-1) > 1e-6 {
			t.Errorf("row %d has norm %v", i, math.Sqrt(ss))
		}
	}
	if mean /= 350; math.Abs(mean) > 0.1 {
		t.Errorf("mean entry %v: not drawn from N(0, I)", mean)
	}
	same, _ := NewQueue(50, 7, 1, 2)
	other, _ := NewQueue(50, 7, 1, 3)
	if !slices.Equal(q.Rows(), same.Rows()) {
		t.Error("the same seeds gave different rows")
	}
	if slices.Equal(q.Rows(), other.Rows()) {
		t.Error("different seeds gave the same rows")
	}
	for _, sh := range [][2]int{{0, 3}, {3, 0}, {-1, 2}} {
		if _, err := NewQueue(sh[0], sh[1], 1, 1); err == nil {
			t.Errorf("NewQueue(%d, %d) accepted", sh[0], sh[1])
		}
	}
	if q.At(-1) != nil || q.At(50) != nil {
		t.Error("At out of range returned a row")
	}
}

// TestQueueEnqueueWraps enqueues batches into a small ring and checks
// every row and the pointer against a plain FIFO model.
func TestQueueEnqueueWraps(t *testing.T) {
	const k, d = 5, 2
	q, _ := NewQueue(k, d, 9, 9)
	model := q.Rows()
	ptr := 0
	next := 0.0
	for _, n := range []int{2, 2, 2, 5, 1, 3, 4} {
		rows := make([]float64, n*d)
		for i := range rows {
			next++
			rows[i] = next
		}
		if err := q.Enqueue(rows, n); err != nil {
			t.Fatal(err)
		}
		for r := 0; r < n; r++ {
			at := (ptr + r) % k
			for j := 0; j < d; j++ {
				model[at*d+j] = float32(rows[r*d+j])
			}
		}
		ptr = (ptr + n) % k
		if q.Ptr() != ptr || !slices.Equal(q.Rows(), model) {
			t.Fatalf("after enqueueing %d rows: ptr %d rows %v, want ptr %d rows %v", n, q.Ptr(), q.Rows(), ptr, model)
		}
	}
	// The row written last sits just before the pointer.
	if got := q.At((q.Ptr() + k - 1) % k); got[d-1] != float32(next) {
		t.Errorf("last row %v, want it to end with %v", got, next)
	}
	// Refused batches leave the queue unchanged.
	before := q.Clone()
	for _, tc := range []struct {
		rows []float64
		n    int
		want string
	}{
		{make([]float64, (k+1)*d), k + 1, "cannot enqueue 6 rows into a queue of 5"},
		{nil, 0, "cannot enqueue 0 rows"},
		{make([]float64, 3), 2, "3 values for 2 rows"},
		{[]float64{1, math.Inf(1)}, 1, "row 0, column 1"},
	} {
		if err := q.Enqueue(tc.rows, tc.n); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Enqueue(%d rows): want an error containing %q, got %v", tc.n, tc.want, err)
		}
	}
	if q.Ptr() != before.Ptr() || !slices.Equal(q.Rows(), before.Rows()) {
		t.Error("a refused Enqueue changed the queue")
	}
	// Clone, Rows and At are copies.
	c := q.Clone()
	c.rows[0] = 42
	q.Rows()[1] = 42
	q.At(0)[0] = 42
	if q.rows[0] == 42 || q.rows[1] == 42 {
		t.Error("Clone, Rows or At shares memory with the queue")
	}
}

// TestQueueState checks the StateTensor / QueueFromState round trip and
// QueueFromState's validation, and the pointer tensor helpers.
func TestQueueState(t *testing.T) {
	q, _ := NewQueue(6, 3, 4, 4)
	if err := q.Enqueue([]float64{1, 0, 0, 0, 1, 0, 0, 0, 1, 0.6, 0.8, 0}, 4); err != nil {
		t.Fatal(err)
	}
	st := q.StateTensor("keys")
	if st.Name != "keys" || !slices.Equal(st.Shape, []int{6, 3}) || len(st.Data) != 18 {
		t.Fatalf("StateTensor = %+v", st)
	}
	back, err := QueueFromState(st, q.Ptr())
	if err != nil {
		t.Fatal(err)
	}
	if back.Ptr() != 4 || !slices.Equal(back.Rows(), q.Rows()) {
		t.Error("round trip changed the queue")
	}
	st.Data[0] = 7 // a copy
	if q.rows[0] == 7 || back.rows[0] == 7 {
		t.Error("StateTensor or QueueFromState shares memory")
	}
	for _, tc := range []struct {
		t    StateTensor
		ptr  int
		want string
	}{
		{StateTensor{Name: "k", Shape: []int{18}, Data: st.Data}, 0, "want [size, dim]"},
		{StateTensor{Name: "k", Shape: []int{6, 3}, Data: st.Data[1:]}, 0, "17 values"},
		{StateTensor{Name: "k", Shape: []int{6, 3}, Data: st.Data}, 6, "pointer 6 out of range"},
		{StateTensor{Name: "k", Shape: []int{6, 3}, Data: st.Data}, -1, "pointer -1"},
		{StateTensor{Name: "k", Shape: []int{6, 3}, Data: append([]float64{math.NaN()}, st.Data[1:]...)}, 0, "row 0, column 0 is NaN"},
	} {
		if _, err := QueueFromState(tc.t, tc.ptr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("QueueFromState(%v, %d): want an error containing %q, got %v", tc.t.Shape, tc.ptr, tc.want, err)
		}
	}
	p := pointerTensor("ptr", 4)
	if v, err := pointerFromState(p, 6); err != nil || v != 4 {
		t.Errorf("pointer round trip: %d, %v", v, err)
	}
	for _, bad := range []StateTensor{
		{Name: "ptr", Shape: []int{1}, Data: []float64{6}},
		{Name: "ptr", Shape: []int{1}, Data: []float64{-1}},
		{Name: "ptr", Shape: []int{1}, Data: []float64{0.5}},
		{Name: "ptr", Shape: []int{1}, Data: []float64{math.NaN()}},
		{Name: "ptr", Shape: []int{2}, Data: []float64{1, 2}},
	} {
		if _, err := pointerFromState(bad, 6); err == nil {
			t.Errorf("pointer %v accepted", bad)
		}
	}
}

// TestExpNonPos checks the fast exponential of MoCo's float32 path against
// math.Exp on [-80, 0] (2e-7 relative) and its cut-off below.
func TestExpNonPos(t *testing.T) {
	worst := 0.0
	for x := -80.0; x <= 0; x += 0.000731 {
		want := math.Exp(x)
		if e := math.Abs(expNonPos(x)-want) / want; e > worst {
			worst = e
		}
	}
	if got := expNonPos(0); math.Abs(got-1) > 2e-7 {
		t.Errorf("expNonPos(0) = %v", got)
	}
	if worst > 2e-7 {
		t.Errorf("largest relative error %.3g on [-80, 0], want <= 2e-7", worst)
	}
	if expNonPos(-100) != 0 {
		t.Errorf("expNonPos(-100) = %v, want 0", expNonPos(-100))
	}
}
