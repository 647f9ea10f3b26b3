package ops

import "fmt"

// Float is the set of element types the argument checkers and the row
// operators' generic kernels accept: the float32 of the interfaces and the
// float64 of the reference backend's gradient checks.
type Float interface {
	~float32 | ~float64
}

// The checkers below validate the spec and the length of every argument of
// one operator call, in argument order, and return the first error. Every
// backend calls exactly one of them per method, so that all backends accept
// and refuse the same calls. Length errors read
//
//	ops: <Operator.Method>: <argument> has N values, want M
//
// A nil output that the interfaces call optional ("skipped when nil") is
// not checked; an empty but non-nil one must have the full length. An
// optional bias (b, db) must be empty when the spec has no bias.

// checkLen returns an error naming op and arg when len(x) != want.
func checkLen[T Float](op, arg string, x []T, want int) error {
	if len(x) != want {
		return fmt.Errorf("ops: %s: %s has %d values, want %d", op, arg, len(x), want)
	}
	return nil
}

// checkSkippable is checkLen for an output that may be nil ("not needed").
func checkSkippable[T Float](op, arg string, x []T, want int) error {
	if x == nil {
		return nil
	}
	return checkLen(op, arg, x, want)
}

// checkBias checks an argument that exists only when the spec has a bias:
// with a bias it must have want values, without one it must be empty.
func checkBias[T Float](op, arg string, x []T, bias bool, want int) error {
	if bias {
		return checkLen(op, arg, x, want)
	}
	if len(x) != 0 {
		return fmt.Errorf("ops: %s: %s given (%d values) but the spec has no bias", op, arg, len(x))
	}
	return nil
}

// checkSkippableBias is checkBias for a bias gradient that may be nil.
func checkSkippableBias[T Float](op, arg string, x []T, bias bool, want int) error {
	if x == nil {
		return nil
	}
	return checkBias(op, arg, x, bias, want)
}

// invalidSpec wraps the error of a spec's Validate with the operator.
func invalidSpec(op string, err error) error {
	return fmt.Errorf("ops: %s: %w", op, err)
}

// firstErr returns the first non-nil error of errs.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// CheckConvForward checks the arguments of Conv.Forward: s is valid, x has
// N*H*W*C values, w K*C*KH*KW, y N*OH*OW*K, and b K when s.Bias (empty
// otherwise).
func CheckConvForward[T Float](s ConvSpec, x, w, b, y []T) error {
	const op = "Conv.Forward"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	oh, ow := s.OutHW()
	return firstErr(
		checkLen(op, "x", x, s.N*s.H*s.W*s.C),
		checkLen(op, "w", w, s.K*s.C*s.KH*s.KW),
		checkBias(op, "b", b, s.Bias, s.K),
		checkLen(op, "y", y, s.N*oh*ow*s.K),
	)
}

// CheckConvBackward checks the arguments of Conv.Backward: s is valid, x
// and w as in CheckConvForward, dy has the output's N*OH*OW*K values, dw
// the weights' length, dx (skipped when nil) the input's, and db (skipped
// when nil) K values when s.Bias (empty otherwise).
func CheckConvBackward[T Float](s ConvSpec, x, w, dy, dx, dw, db []T) error {
	const op = "Conv.Backward"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	oh, ow := s.OutHW()
	nx, nw := s.N*s.H*s.W*s.C, s.K*s.C*s.KH*s.KW
	return firstErr(
		checkLen(op, "x", x, nx),
		checkLen(op, "w", w, nw),
		checkLen(op, "dy", dy, s.N*oh*ow*s.K),
		checkSkippable(op, "dx", dx, nx),
		checkLen(op, "dw", dw, nw),
		checkSkippableBias(op, "db", db, s.Bias, s.K),
	)
}

// CheckBNForwardTrain checks the arguments of BatchNorm.ForwardTrain: s is
// valid, x and y have N*Spatial*C values, gamma, beta, mean and variance C.
func CheckBNForwardTrain[T Float](s BNSpec, x, gamma, beta, y, mean, variance []T) error {
	const op = "BatchNorm.ForwardTrain"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	n := s.N * s.Spatial * s.C
	return firstErr(
		checkLen(op, "x", x, n),
		checkLen(op, "gamma", gamma, s.C),
		checkLen(op, "beta", beta, s.C),
		checkLen(op, "y", y, n),
		checkLen(op, "mean", mean, s.C),
		checkLen(op, "variance", variance, s.C),
	)
}

// CheckBNForwardInfer checks the arguments of BatchNorm.ForwardInfer: s is
// valid, x and y have N*Spatial*C values, gamma, beta, runMean and runVar C.
func CheckBNForwardInfer[T Float](s BNSpec, x, gamma, beta, runMean, runVar, y []T) error {
	const op = "BatchNorm.ForwardInfer"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	n := s.N * s.Spatial * s.C
	return firstErr(
		checkLen(op, "x", x, n),
		checkLen(op, "gamma", gamma, s.C),
		checkLen(op, "beta", beta, s.C),
		checkLen(op, "runMean", runMean, s.C),
		checkLen(op, "runVar", runVar, s.C),
		checkLen(op, "y", y, n),
	)
}

// CheckBNBackward checks the arguments of BatchNorm.Backward: s is valid, x
// and dy have N*Spatial*C values, gamma, mean and variance C, and the
// outputs dx (N*Spatial*C), dgamma and dbeta (C) are each skipped when nil.
func CheckBNBackward[T Float](s BNSpec, x, gamma, mean, variance, dy, dx, dgamma, dbeta []T) error {
	const op = "BatchNorm.Backward"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	n := s.N * s.Spatial * s.C
	return firstErr(
		checkLen(op, "x", x, n),
		checkLen(op, "gamma", gamma, s.C),
		checkLen(op, "mean", mean, s.C),
		checkLen(op, "variance", variance, s.C),
		checkLen(op, "dy", dy, n),
		checkSkippable(op, "dx", dx, n),
		checkSkippable(op, "dgamma", dgamma, s.C),
		checkSkippable(op, "dbeta", dbeta, s.C),
	)
}

// CheckBNSums checks the arguments of BatchNorm.Sums: s is valid, x has
// N*Spatial*C values, shift, s1 and s2 C.
func CheckBNSums[T Float](s BNSpec, x, shift []T, s1, s2 []float64) error {
	const op = "BatchNorm.Sums"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	return firstErr(
		checkLen(op, "x", x, s.N*s.Spatial*s.C),
		checkLen(op, "shift", shift, s.C),
		checkLen(op, "s1", s1, s.C),
		checkLen(op, "s2", s2, s.C),
	)
}

// CheckBNGradSums checks the arguments of BatchNorm.GradSums: s is valid, x
// and dy have N*Spatial*C values, mean, sdy and sdyx C.
func CheckBNGradSums[T Float](s BNSpec, x, mean, dy []T, sdy, sdyx []float64) error {
	const op = "BatchNorm.GradSums"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	n := s.N * s.Spatial * s.C
	return firstErr(
		checkLen(op, "x", x, n),
		checkLen(op, "mean", mean, s.C),
		checkLen(op, "dy", dy, n),
		checkLen(op, "sdy", sdy, s.C),
		checkLen(op, "sdyx", sdyx, s.C),
	)
}

// CheckBNBackwardGiven checks the arguments of BatchNorm.BackwardGiven: s
// is valid, x, dy and dx have N*Spatial*C values, gamma, mean, variance,
// sdy and sdyx C, and m is at least 1.
func CheckBNBackwardGiven[T Float](s BNSpec, x, gamma, mean, variance, dy []T, sdy, sdyx []float64, m int, dx []T) error {
	const op = "BatchNorm.BackwardGiven"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	if m < 1 {
		return fmt.Errorf("ops: %s: %d values per channel", op, m)
	}
	n := s.N * s.Spatial * s.C
	return firstErr(
		checkLen(op, "x", x, n),
		checkLen(op, "gamma", gamma, s.C),
		checkLen(op, "mean", mean, s.C),
		checkLen(op, "variance", variance, s.C),
		checkLen(op, "dy", dy, n),
		checkLen(op, "sdy", sdy, s.C),
		checkLen(op, "sdyx", sdyx, s.C),
		checkLen(op, "dx", dx, n),
	)
}

// checkWorkspace checks that ws has exactly wsBytes bytes.
func checkWorkspace(op string, ws []byte, wsBytes int) error {
	if len(ws) != wsBytes {
		return fmt.Errorf("ops: %s: workspace has %d bytes, want %d", op, len(ws), wsBytes)
	}
	return nil
}

// CheckPoolForward checks the arguments of MaxPool.Forward: s is valid, x
// has N*H*W*C values, y N*OH*OW*C, and the workspace ws exactly wsBytes
// bytes (the operator's WorkspaceBytes, which depends on the backend).
func CheckPoolForward[T Float](s PoolSpec, x, y []T, ws []byte, wsBytes int) error {
	const op = "MaxPool.Forward"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	oh, ow := s.OutHW()
	return firstErr(
		checkLen(op, "x", x, s.N*s.H*s.W*s.C),
		checkLen(op, "y", y, s.N*oh*ow*s.C),
		checkWorkspace(op, ws, wsBytes),
	)
}

// CheckPoolBackward checks the arguments of MaxPool.Backward: s is valid,
// dy has N*OH*OW*C values, the workspace ws exactly wsBytes bytes and dx
// N*H*W*C values.
func CheckPoolBackward[T Float](s PoolSpec, dy []T, ws []byte, wsBytes int, dx []T) error {
	const op = "MaxPool.Backward"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	oh, ow := s.OutHW()
	return firstErr(
		checkLen(op, "dy", dy, s.N*oh*ow*s.C),
		checkWorkspace(op, ws, wsBytes),
		checkLen(op, "dx", dx, s.N*s.H*s.W*s.C),
	)
}

// CheckLinearForward checks the arguments of Linear.Forward: s is valid, x
// has N*In values, w Out*In, y N*Out, and b Out when s.Bias (empty
// otherwise).
func CheckLinearForward[T Float](s LinearSpec, x, w, b, y []T) error {
	const op = "Linear.Forward"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	return firstErr(
		checkLen(op, "x", x, s.N*s.In),
		checkLen(op, "w", w, s.Out*s.In),
		checkBias(op, "b", b, s.Bias, s.Out),
		checkLen(op, "y", y, s.N*s.Out),
	)
}

// CheckLinearBackward checks the arguments of Linear.Backward: s is valid,
// x and w as in CheckLinearForward, dy has N*Out values, dw Out*In, dx
// (skipped when nil) N*In, and db (skipped when nil) Out when s.Bias (empty
// otherwise).
func CheckLinearBackward[T Float](s LinearSpec, x, w, dy, dx, dw, db []T) error {
	const op = "Linear.Backward"
	if err := s.Validate(); err != nil {
		return invalidSpec(op, err)
	}
	return firstErr(
		checkLen(op, "x", x, s.N*s.In),
		checkLen(op, "w", w, s.Out*s.In),
		checkLen(op, "dy", dy, s.N*s.Out),
		checkSkippable(op, "dx", dx, s.N*s.In),
		checkLen(op, "dw", dw, s.Out*s.In),
		checkSkippableBias(op, "db", db, s.Bias, s.Out),
	)
}

// CheckReLU checks the arguments of Backend.ReLU: y has len(x) values.
func CheckReLU[T Float](x, y []T) error {
	return checkLen("ReLU", "y", y, len(x))
}

// CheckReLUBackward checks the arguments of Backend.ReLUBackward: dy and dx
// have len(y) values.
func CheckReLUBackward[T Float](y, dy, dx []T) error {
	const op = "ReLUBackward"
	return firstErr(
		checkLen(op, "dy", dy, len(y)),
		checkLen(op, "dx", dx, len(y)),
	)
}

// CheckAdd checks the arguments of Backend.Add: b and y have len(a) values.
func CheckAdd[T Float](a, b, y []T) error {
	const op = "Add"
	return firstErr(
		checkLen(op, "b", b, len(a)),
		checkLen(op, "y", y, len(a)),
	)
}

// checkGAPSizes checks the sizes of a global average pooling.
func checkGAPSizes(op string, n, hw, c int) error {
	if n < 1 || hw < 1 || c < 1 {
		return fmt.Errorf("ops: %s: invalid sizes n=%d hw=%d c=%d", op, n, hw, c)
	}
	return nil
}

// CheckGlobalAvgPool checks the arguments of Backend.GlobalAvgPool: n, hw
// and c are at least 1, x has n*hw*c values and y n*c.
func CheckGlobalAvgPool[T Float](x []T, n, hw, c int, y []T) error {
	const op = "GlobalAvgPool"
	if err := checkGAPSizes(op, n, hw, c); err != nil {
		return err
	}
	return firstErr(
		checkLen(op, "x", x, n*hw*c),
		checkLen(op, "y", y, n*c),
	)
}

// CheckGlobalAvgPoolBackward checks the arguments of
// Backend.GlobalAvgPoolBackward: n, hw and c are at least 1, dy has n*c
// values and dx n*hw*c.
func CheckGlobalAvgPoolBackward[T Float](dy []T, n, hw, c int, dx []T) error {
	const op = "GlobalAvgPoolBackward"
	if err := checkGAPSizes(op, n, hw, c); err != nil {
		return err
	}
	return firstErr(
		checkLen(op, "dy", dy, n*c),
		checkLen(op, "dx", dx, n*hw*c),
	)
}
