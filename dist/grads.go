package dist

import (
	"fmt"
	"math"
	"time"
)

// DefaultBucketBytes is the size of the all-reduce buckets of a
// GradReducer: large enough that the per-call latency (tens of
// microseconds over shared memory) is a small part of each call, small
// enough to stay in the caches of the copies in and out.
const DefaultBucketBytes = 4 << 20

// GradReducer sums gradients over the ranks of a communicator, packing the
// many small tensors of a network into buckets of one all-reduce each. It
// keeps its bucket between calls and counts the bytes and time it spent.
type GradReducer struct {
	comm   Comm
	bucket []float32
	// Bytes and Seconds accumulate the payload all-reduced and the time
	// the all-reduce calls took (the copies included).
	Bytes   int64
	Seconds float64
	Calls   int
}

// NewGradReducer returns a reducer over comm with buckets of bucketBytes
// (DefaultBucketBytes when <= 0).
func NewGradReducer(comm Comm, bucketBytes int) *GradReducer {
	if bucketBytes <= 0 {
		bucketBytes = DefaultBucketBytes
	}
	return &GradReducer{comm: comm, bucket: make([]float32, max(1, bucketBytes/4))}
}

// SumAll replaces every tensor of grads, on every rank, by its sum over
// the ranks. Every rank must pass tensors of the same lengths in the same
// order. On a single rank it does nothing.
func (g *GradReducer) SumAll(grads [][]float32) error {
	if g.comm.Size() == 1 {
		return nil
	}
	start := time.Now()
	defer func() { g.Seconds += time.Since(start).Seconds(); g.Calls++ }()
	b := g.bucket
	fill := 0
	// pending are the (tensor, offset, length) pieces packed in the bucket.
	type piece struct{ t, off, n int }
	var pending []piece
	flush := func() error {
		if fill == 0 {
			return nil
		}
		if err := g.comm.AllreduceSum32(b[:fill]); err != nil {
			return fmt.Errorf("dist: gradient all-reduce: %w", err)
		}
		g.Bytes += int64(4 * fill)
		at := 0
		for _, p := range pending {
			copy(grads[p.t][p.off:p.off+p.n], b[at:at+p.n])
			at += p.n
		}
		fill, pending = 0, pending[:0]
		return nil
	}
	for ti, t := range grads {
		for off := 0; off < len(t); {
			n := min(len(t)-off, len(b)-fill)
			copy(b[fill:fill+n], t[off:off+n])
			pending = append(pending, piece{ti, off, n})
			fill += n
			off += n
			if fill == len(b) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// Checksum is a hash of the exact bits of every value of ts (FNV-1a over
// the float32 bit patterns, in order): two ranks holding the same weights
// have the same checksum, and any differing bit changes it.
func Checksum(ts [][]float32) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, t := range ts {
		for _, v := range t {
			bits := math.Float32bits(v)
			for k := 0; k < 4; k++ {
				h ^= uint64(bits & 0xff)
				h *= prime
				bits >>= 8
			}
		}
	}
	return h
}

// CheckSame gathers every rank's checksum of ts and returns an error naming
// the ranks whose weights differ from rank 0's (the same error on every
// rank), or nil when all agree.
func CheckSame(comm Comm, ts [][]float32, what string) error {
	if comm.Size() == 1 {
		return nil
	}
	local := []uint64{Checksum(ts)}
	all := make([]uint64, comm.Size())
	if err := comm.AllgatherUint64(local, all); err != nil {
		return fmt.Errorf("dist: gathering %s checksums: %w", what, err)
	}
	var bad []int
	for r, h := range all {
		if h != all[0] {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("dist: the %s of rank(s) %v drifted from rank 0's (checksums %x); the ranks no longer train one model", what, bad, all)
	}
	return nil
}
