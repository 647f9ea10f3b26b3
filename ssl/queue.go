package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Queue is a first-in first-out ring buffer of Size() rows of dimension
// Dim(), held in float32 (the precision of the network that produced them,
// as solo-learn's queue buffer): MoCo's dictionary of negative keys. Rows
// are meant to be L2-normalised; NewQueue draws them so, and Enqueue stores
// what its caller gives (MoCo enqueues normalised keys).
//
// Enqueue writes its rows at the write pointer Ptr(), advancing it by one
// per row modulo Size(), so a batch that reaches the end of the buffer
// wraps to its start. Rows are kept in storage order (row i at index i),
// not in age order: the row written last is at Ptr()-1.
type Queue struct {
	size, dim, ptr int
	rows           []float32 // size x dim, row-major
}

// NewQueue returns a queue of size rows of dimension dim, each drawn from
// N(0, I) with the PCG generator seeded with (seed1, seed2) (row by row,
// rand.NormFloat64) and L2-normalised in float64 before rounding to
// float32. The write pointer starts at 0.
func NewQueue(size, dim int, seed1, seed2 uint64) (*Queue, error) {
	if size < 1 || dim < 1 {
		return nil, fmt.Errorf("queue: invalid shape %d x %d", size, dim)
	}
	rng := rand.New(rand.NewPCG(seed1, seed2))
	q := &Queue{size: size, dim: dim, rows: make([]float32, size*dim)}
	row := make([]float64, dim)
	for i := 0; i < size; i++ {
		ss := 0.0
		for j := range row {
			row[j] = rng.NormFloat64()
			ss += row[j] * row[j]
		}
		den := math.Max(math.Sqrt(ss), 1e-12)
		for j, v := range row {
			q.rows[i*dim+j] = float32(v / den)
		}
	}
	return q, nil
}

// Size returns the number of rows the queue holds.
func (q *Queue) Size() int { return q.size }

// Dim returns the dimension of a row.
func (q *Queue) Dim() int { return q.dim }

// Ptr returns the write pointer: the index of the row the next Enqueue
// overwrites first.
func (q *Queue) Ptr() int { return q.ptr }

// At returns a copy of row i (storage order), or nil when i is out of
// range.
func (q *Queue) At(i int) []float32 {
	if i < 0 || i >= q.size {
		return nil
	}
	return append([]float32(nil), q.rows[i*q.dim:(i+1)*q.dim]...)
}

// Rows returns a copy of all rows, Size() x Dim() row-major, in storage
// order.
func (q *Queue) Rows() []float32 { return append([]float32(nil), q.rows...) }

// Enqueue overwrites the n oldest rows, those at Ptr(), Ptr()+1, ... (modulo
// Size()), with the n x Dim() rows given (rounded to float32) and advances
// the pointer by n. It refuses, leaving the queue unchanged, a batch of
// more than Size() rows (it would overwrite its own rows), a slice of the
// wrong length and non-finite values.
func (q *Queue) Enqueue(rows []float64, n int) error {
	if n < 1 || n > q.size {
		return fmt.Errorf("queue: cannot enqueue %d rows into a queue of %d", n, q.size)
	}
	if len(rows) != n*q.dim {
		return fmt.Errorf("queue: %d values for %d rows of dimension %d, want %d", len(rows), n, q.dim, n*q.dim)
	}
	for i, v := range rows {
		if !finite(v) {
			return fmt.Errorf("queue: row %d, column %d to enqueue is %v", i/q.dim, i%q.dim, v)
		}
	}
	for r := 0; r < n; r++ {
		at := (q.ptr + r) % q.size
		copy32(q.rows[at*q.dim:(at+1)*q.dim], rows[r*q.dim:(r+1)*q.dim])
	}
	q.ptr = (q.ptr + n) % q.size
	return nil
}

// Clone returns a deep copy of q.
func (q *Queue) Clone() *Queue {
	c := *q
	c.rows = append([]float32(nil), q.rows...)
	return &c
}

// StateTensor returns a copy of the rows as a float64 StateTensor called
// name, of shape [Size(), Dim()]. The pointer is not in it: see
// QueueFromState.
func (q *Queue) StateTensor(name string) StateTensor {
	return StateTensor{Name: name, Shape: []int{q.size, q.dim}, Data: to64(q.rows)}
}

// QueueFromState returns a queue holding the rows of t (shape [size, dim],
// the values rounded to float32) with its write pointer at ptr. It checks
// the shape, the number of values, their finiteness and 0 <= ptr < size.
func QueueFromState(t StateTensor, ptr int) (*Queue, error) {
	if len(t.Shape) != 2 || t.Shape[0] < 1 || t.Shape[1] < 1 {
		return nil, fmt.Errorf("queue %s: shape %v, want [size, dim]", t.Name, t.Shape)
	}
	size, dim := t.Shape[0], t.Shape[1]
	if len(t.Data) != size*dim {
		return nil, fmt.Errorf("queue %s: %d values for shape %v", t.Name, len(t.Data), t.Shape)
	}
	if ptr < 0 || ptr >= size {
		return nil, fmt.Errorf("queue %s: write pointer %d out of range [0, %d)", t.Name, ptr, size)
	}
	q := &Queue{size: size, dim: dim, ptr: ptr, rows: make([]float32, size*dim)}
	for i, v := range t.Data {
		if !finite(v) {
			return nil, fmt.Errorf("queue %s: row %d, column %d is %v", t.Name, i/dim, i%dim, v)
		}
		q.rows[i] = float32(v)
	}
	return q, nil
}

// pointerTensor is a write pointer as a one-value StateTensor.
func pointerTensor(name string, ptr int) StateTensor {
	return StateTensor{Name: name, Shape: []int{1}, Data: []float64{float64(ptr)}}
}

// pointerFromState reads a write pointer stored by pointerTensor: one
// integer value in [0, size).
func pointerFromState(t StateTensor, size int) (int, error) {
	if len(t.Shape) != 1 || t.Shape[0] != 1 || len(t.Data) != 1 {
		return 0, fmt.Errorf("%s has shape %v and %d values, want [1]", t.Name, t.Shape, len(t.Data))
	}
	v := t.Data[0]
	if v != math.Trunc(v) || v < 0 || v >= float64(size) {
		return 0, fmt.Errorf("%s = %v: want an integer in [0, %d)", t.Name, v, size)
	}
	return int(v), nil
}
