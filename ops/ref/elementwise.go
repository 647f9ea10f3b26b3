package ref

import "github.com/corinfomax/corinfomax/ops"

// ReLU writes y = max(x, 0); y may alias x.
func (*Backend) ReLU(x, y []float32) error { return ReLU(x, y) }

// ReLUBackward writes dx = dy where y > 0, else 0; dx may alias dy.
func (*Backend) ReLUBackward(y, dy, dx []float32) error { return ReLUBackward(y, dy, dx) }

// Add writes y = a + b; y may alias a or b.
func (*Backend) Add(a, b, y []float32) error { return Add(a, b, y) }

// GlobalAvgPool averages NHWC x (n*hw*c) over hw into y (n*c).
func (*Backend) GlobalAvgPool(x []float32, n, hw, c int, y []float32) error {
	return GlobalAvgPool(x, n, hw, c, y)
}

// GlobalAvgPoolBackward spreads dy (n*c) evenly into dx (n*hw*c).
func (*Backend) GlobalAvgPoolBackward(dy []float32, n, hw, c int, dx []float32) error {
	return GlobalAvgPoolBackward(dy, n, hw, c, dx)
}

// ReLU writes y[i] = max(x[i], 0); y may alias x. A NaN input gives NaN,
// as in PyTorch.
func ReLU[T Float](x, y []T) error {
	if err := ops.CheckReLU(x, y); err != nil {
		return err
	}
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
	return nil
}

// ReLUBackward writes dx[i] = dy[i] where the forward output y[i] > 0 and 0
// elsewhere; dx may alias dy.
func ReLUBackward[T Float](y, dy, dx []T) error {
	if err := ops.CheckReLUBackward(y, dy, dx); err != nil {
		return err
	}
	for i, v := range y {
		if v > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
	}
	return nil
}

// Add writes y[i] = a[i] + b[i]; y may alias a or b.
func Add[T Float](a, b, y []T) error {
	if err := ops.CheckAdd(a, b, y); err != nil {
		return err
	}
	for i := range a {
		y[i] = a[i] + b[i]
	}
	return nil
}

// GlobalAvgPool writes y[n,c] = sum_p x[n,p,c] / hw for NHWC x (n*hw*c).
func GlobalAvgPool[T Float](x []T, n, hw, c int, y []T) error {
	if err := ops.CheckGlobalAvgPool(x, n, hw, c, y); err != nil {
		return err
	}
	acc := make([]float64, c)
	for i := range n {
		clear(acc)
		for p := range hw {
			for j, v := range x[(i*hw+p)*c:][:c] {
				acc[j] += float64(v)
			}
		}
		for j, v := range acc {
			y[i*c+j] = T(v / float64(hw))
		}
	}
	return nil
}

// GlobalAvgPoolBackward writes dx[n,p,c] = dy[n,c] / hw.
func GlobalAvgPoolBackward[T Float](dy []T, n, hw, c int, dx []T) error {
	if err := ops.CheckGlobalAvgPoolBackward(dy, n, hw, c, dx); err != nil {
		return err
	}
	for i := range n {
		for p := range hw {
			dst := dx[(i*hw+p)*c:][:c]
			for j := range dst {
				dst[j] = T(float64(dy[i*c+j]) / float64(hw))
			}
		}
	}
	return nil
}
