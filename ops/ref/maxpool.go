package ref

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/corinfomax/corinfomax/ops"
)

// maxPool is the reference ops.MaxPool.
type maxPool struct {
	spec ops.PoolSpec
}

// MaxPool returns a max-pooling operator for spec. Its workspace holds, for
// every output element, the int32 (little-endian) spatial position ih*W+iw
// of the input element that was selected.
func (*Backend) MaxPool(spec ops.PoolSpec) (ops.MaxPool, error) {
	if err := validatePool(spec); err != nil {
		return nil, fmt.Errorf("ref: max pool: %w", err)
	}
	return &maxPool{spec: spec}, nil
}

// WorkspaceBytes returns MaxPoolWorkspaceBytes(spec).
func (p *maxPool) WorkspaceBytes() int { return MaxPoolWorkspaceBytes(p.spec) }

// Forward pools x into y and records the argmax positions in ws.
func (p *maxPool) Forward(x, y []float32, ws []byte) error {
	return MaxPoolForward(p.spec, x, y, ws)
}

// Backward routes dy to the recorded positions of dx.
func (p *maxPool) Backward(dy []float32, ws []byte, dx []float32) error {
	return MaxPoolBackward(p.spec, dy, ws, dx)
}

// validatePool reports an error when s is not a valid ops.PoolSpec or
// exceeds this backend's limits: as in PyTorch the padding may be at most
// half the kernel, and every spatial position must fit the workspace's
// int32.
func validatePool(s ops.PoolSpec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.Pad > s.Kernel/2 {
		return fmt.Errorf("ops: invalid max pool %+v: padding over half the kernel", s)
	}
	if s.H*s.W > math.MaxInt32 {
		return fmt.Errorf("ops: max pool %+v: image too large for int32 positions", s)
	}
	return nil
}

// MaxPoolWorkspaceBytes is the workspace size of a max pooling: 4 bytes (an
// int32 position) per output element.
func MaxPoolWorkspaceBytes(s ops.PoolSpec) int {
	oh, ow := s.OutHW()
	return 4 * s.N * oh * ow * s.C
}

// MaxPoolForward writes y[n,i,j,c] = max over the window of x (padding
// counts as -inf) and stores the position ih*W+iw of the maximum in ws as
// an int32, little-endian. Ties pick the first element in row-major window
// order and a NaN is selected (the last one in the window), as in
// PyTorch's CPU kernel.
func MaxPoolForward[T Float](s ops.PoolSpec, x, y []T, ws []byte) error {
	if err := validatePool(s); err != nil {
		return fmt.Errorf("ref: MaxPool.Forward: %w", err)
	}
	if err := ops.CheckPoolForward(s, x, y, ws, MaxPoolWorkspaceBytes(s)); err != nil {
		return err
	}
	oh, ow := s.OutHW()
	best := make([]float64, s.C)
	arg := make([]int32, s.C)
	for n := range s.N {
		for i := range oh {
			for j := range ow {
				for c := range best {
					best[c] = math.Inf(-1)
					arg[c] = -1
				}
				for kh := range s.Kernel {
					ih := i*s.Stride - s.Pad + kh
					if ih < 0 || ih >= s.H {
						continue
					}
					for kw := range s.Kernel {
						iw := j*s.Stride - s.Pad + kw
						if iw < 0 || iw >= s.W {
							continue
						}
						pos := int32(ih*s.W + iw)
						xrow := x[((n*s.H+ih)*s.W+iw)*s.C:][:s.C]
						for c, v := range xrow {
							f := float64(v)
							if arg[c] < 0 || f > best[c] || math.IsNaN(f) {
								best[c] = f
								arg[c] = pos
							}
						}
					}
				}
				o := ((n*oh+i)*ow + j) * s.C
				for c := range s.C {
					y[o+c] = T(best[c])
					binary.LittleEndian.PutUint32(ws[4*(o+c):], uint32(arg[c]))
				}
			}
		}
	}
	return nil
}

// MaxPoolBackward overwrites dx with zeros and adds every dy element to the
// input position recorded in ws by MaxPoolForward.
func MaxPoolBackward[T Float](s ops.PoolSpec, dy []T, ws []byte, dx []T) error {
	if err := validatePool(s); err != nil {
		return fmt.Errorf("ref: MaxPool.Backward: %w", err)
	}
	if err := ops.CheckPoolBackward(s, dy, ws, MaxPoolWorkspaceBytes(s), dx); err != nil {
		return err
	}
	oh, ow := s.OutHW()
	hw := s.H * s.W
	acc := make([]float64, hw*s.C)
	for n := range s.N {
		clear(acc)
		for q := range oh * ow {
			o := (n*oh*ow + q) * s.C
			for c := range s.C {
				pos := int32(binary.LittleEndian.Uint32(ws[4*(o+c):]))
				if pos < 0 || int(pos) >= hw {
					return fmt.Errorf("ops: MaxPool.Backward: workspace position %d at output %d is outside the %dx%d input", pos, o+c, s.H, s.W)
				}
				acc[int(pos)*s.C+c] += float64(dy[o+c])
			}
		}
		img := dx[n*hw*s.C:][:hw*s.C]
		for p, v := range acc {
			img[p] = T(v)
		}
	}
	return nil
}
