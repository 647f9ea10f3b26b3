package ref

import (
	"fmt"

	"github.com/corinfomax/corinfomax/ops"
)

// linear is the reference ops.Linear.
type linear struct {
	spec    ops.LinearSpec
	threads int
}

// Linear returns a fully connected operator for spec.
func (b *Backend) Linear(spec ops.LinearSpec) (ops.Linear, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("ref: linear: %w", err)
	}
	return &linear{spec: spec, threads: b.Threads()}, nil
}

// Forward computes y = x w^T + b.
func (l *linear) Forward(x, w, b, y []float32) error {
	return LinearForward(l.spec, l.threads, x, w, b, y)
}

// Backward writes dx (when non-nil), dw and db (when non-nil).
func (l *linear) Backward(x, w, dy, dx, dw, db []float32) error {
	return LinearBackward(l.spec, l.threads, x, w, dy, dx, dw, db)
}

// LinearForward computes y[n,o] = b[o] + sum_i x[n,i] * w[o,i] with x N*In,
// w Out*In, b Out (nil when s.Bias is false) and y N*Out, splitting the
// batch over threads goroutines.
func LinearForward[T Float](s ops.LinearSpec, threads int, x, w, b, y []T) error {
	if err := ops.CheckLinearForward(s, x, w, b, y); err != nil {
		return err
	}
	parallelFor(s.N, threads, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			xr := x[n*s.In:][:s.In]
			for o := range s.Out {
				wr := w[o*s.In:][:s.In]
				sum := 0.0
				if s.Bias {
					sum = float64(b[o])
				}
				for i, v := range xr {
					sum += float64(v) * float64(wr[i])
				}
				y[n*s.Out+o] = T(sum)
			}
		}
	})
	return nil
}

// LinearBackward computes, from dy (N*Out),
//
//	dx[n,i] = sum_o dy[n,o] * w[o,i]   (skipped when dx is nil)
//	dw[o,i] = sum_n dy[n,o] * x[n,i]
//	db[o]   = sum_n dy[n,o]            (skipped when db is nil)
//
// overwriting the outputs. dx is split over threads goroutines by batch,
// dw and db by output feature, so every goroutine writes disjoint outputs.
func LinearBackward[T Float](s ops.LinearSpec, threads int, x, w, dy, dx, dw, db []T) error {
	if err := ops.CheckLinearBackward(s, x, w, dy, dx, dw, db); err != nil {
		return err
	}
	if dx != nil {
		parallelFor(s.N, threads, func(_, lo, hi int) {
			acc := make([]float64, s.In)
			for n := lo; n < hi; n++ {
				clear(acc)
				for o := range s.Out {
					d := float64(dy[n*s.Out+o])
					for i, v := range w[o*s.In:][:s.In] {
						acc[i] += d * float64(v)
					}
				}
				for i, v := range acc {
					dx[n*s.In+i] = T(v)
				}
			}
		})
	}
	parallelFor(s.Out, threads, func(_, lo, hi int) {
		acc := make([]float64, s.In)
		for o := lo; o < hi; o++ {
			clear(acc)
			sum := 0.0
			for n := range s.N {
				d := float64(dy[n*s.Out+o])
				sum += d
				for i, v := range x[n*s.In:][:s.In] {
					acc[i] += d * float64(v)
				}
			}
			for i, v := range acc {
				dw[o*s.In+i] = T(v)
			}
			if len(db) != 0 {
				db[o] = T(sum)
			}
		}
	})
	return nil
}
