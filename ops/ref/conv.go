package ref

import (
	"fmt"

	"github.com/corinfomax/corinfomax/ops"
)

// conv is the reference ops.Conv.
type conv struct {
	spec    ops.ConvSpec
	threads int
}

// Conv returns a convolution operator for spec.
func (b *Backend) Conv(spec ops.ConvSpec) (ops.Conv, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("ref: conv: %w", err)
	}
	return &conv{spec: spec, threads: b.Threads()}, nil
}

// Forward computes y = conv(x, w) + b.
func (c *conv) Forward(x, w, b, y []float32) error {
	return ConvForward(c.spec, c.threads, x, w, b, y)
}

// Backward writes dx (when non-nil), dw and db (when non-nil).
func (c *conv) Backward(x, w, dy, dx, dw, db []float32) error {
	return ConvBackward(c.spec, c.threads, x, w, dy, dx, dw, db)
}

// hwio returns the OIHW weights w rearranged as [KH][KW][C][K] in float64,
// so that the innermost loops of the kernels run over contiguous output
// channels.
func hwio[T Float](s ops.ConvSpec, w []T) []float64 {
	t := make([]float64, len(w))
	for k := range s.K {
		for c := range s.C {
			for kh := range s.KH {
				for kw := range s.KW {
					t[((kh*s.KW+kw)*s.C+c)*s.K+k] = float64(w[((k*s.C+c)*s.KH+kh)*s.KW+kw])
				}
			}
		}
	}
	return t
}

// ConvForward computes the convolution y = conv(x, w) + b described by s
// with NHWC x and y, OIHW w and b of length K (nil when s.Bias is false),
// splitting the batch over threads goroutines:
//
//	y[n,i,j,k] = b[k] + sum_{c,kh,kw} x[n, i*S-P+kh, j*S-P+kw, c] * w[k,c,kh,kw]
//
// where positions outside the input are zero.
func ConvForward[T Float](s ops.ConvSpec, threads int, x, w, b, y []T) error {
	if err := ops.CheckConvForward(s, x, w, b, y); err != nil {
		return err
	}
	oh, ow := s.OutHW()
	wt := hwio(s, w)
	parallelFor(s.N, threads, func(_, lo, hi int) {
		acc := make([]float64, s.K)
		for n := lo; n < hi; n++ {
			for i := range oh {
				for j := range ow {
					for k := range acc {
						acc[k] = 0
						if s.Bias {
							acc[k] = float64(b[k])
						}
					}
					for kh := range s.KH {
						ih := i*s.Stride - s.Pad + kh
						if ih < 0 || ih >= s.H {
							continue
						}
						for kw := range s.KW {
							iw := j*s.Stride - s.Pad + kw
							if iw < 0 || iw >= s.W {
								continue
							}
							xrow := x[((n*s.H+ih)*s.W+iw)*s.C:][:s.C]
							wbase := (kh*s.KW + kw) * s.C * s.K
							for c, xv := range xrow {
								xf := float64(xv)
								wrow := wt[wbase+c*s.K:][:s.K]
								for k, wv := range wrow {
									acc[k] += xf * wv
								}
							}
						}
					}
					yrow := y[((n*oh+i)*ow+j)*s.K:][:s.K]
					for k, v := range acc {
						yrow[k] = T(v)
					}
				}
			}
		}
	})
	return nil
}

// ConvBackward computes the gradients of the convolution described by s
// from the output gradient dy (NHWC): dx (NHWC, skipped when nil), dw
// (OIHW) and db (length K, skipped when nil; must be nil when s.Bias is
// false). Outputs are overwritten. Work is split over threads goroutines by
// batch; dw and db are reduced from per-goroutine partial sums in a fixed
// order.
func ConvBackward[T Float](s ops.ConvSpec, threads int, x, w, dy, dx, dw, db []T) error {
	if err := ops.CheckConvBackward(s, x, w, dy, dx, dw, db); err != nil {
		return err
	}
	oh, ow := s.OutHW()
	wt := hwio(s, w)
	g := chunks(s.N, threads)
	dwPart := make([][]float64, g)
	dbPart := make([][]float64, g)
	parallelFor(s.N, threads, func(part, lo, hi int) {
		pw := make([]float64, len(wt))
		pb := make([]float64, s.K)
		dyf := make([]float64, s.K)
		var dxa []float64
		if dx != nil {
			dxa = make([]float64, s.H*s.W*s.C)
		}
		for n := lo; n < hi; n++ {
			clear(dxa)
			for i := range oh {
				for j := range ow {
					dyrow := dy[((n*oh+i)*ow+j)*s.K:][:s.K]
					for k, v := range dyrow {
						dyf[k] = float64(v)
						pb[k] += dyf[k]
					}
					for kh := range s.KH {
						ih := i*s.Stride - s.Pad + kh
						if ih < 0 || ih >= s.H {
							continue
						}
						for kw := range s.KW {
							iw := j*s.Stride - s.Pad + kw
							if iw < 0 || iw >= s.W {
								continue
							}
							pix := (ih*s.W + iw) * s.C
							xrow := x[n*s.H*s.W*s.C+pix:][:s.C]
							wbase := (kh*s.KW + kw) * s.C * s.K
							for c, xv := range xrow {
								xf := float64(xv)
								prow := pw[wbase+c*s.K:][:s.K]
								for k, d := range dyf {
									prow[k] += xf * d
								}
							}
							if dxa != nil {
								dst := dxa[pix:][:s.C]
								for c := range dst {
									wrow := wt[wbase+c*s.K:][:s.K]
									sum := 0.0
									for k, d := range dyf {
										sum += wrow[k] * d
									}
									dst[c] += sum
								}
							}
						}
					}
				}
			}
			if dx != nil {
				img := dx[n*s.H*s.W*s.C:][:s.H*s.W*s.C]
				for p, v := range dxa {
					img[p] = T(v)
				}
			}
		}
		dwPart[part] = pw
		dbPart[part] = pb
	})
	for p := 1; p < g; p++ {
		for i, v := range dwPart[p] {
			dwPart[0][i] += v
		}
		for k, v := range dbPart[p] {
			dbPart[0][k] += v
		}
	}
	for k := range s.K {
		for c := range s.C {
			for kh := range s.KH {
				for kw := range s.KW {
					dw[((k*s.C+c)*s.KH+kh)*s.KW+kw] = T(dwPart[0][((kh*s.KW+kw)*s.C+c)*s.K+k])
				}
			}
		}
	}
	for k := range db {
		db[k] = T(dbPart[0][k])
	}
	return nil
}
