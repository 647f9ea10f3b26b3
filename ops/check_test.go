package ops

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// checkArg is one argument of a checker call.
type checkArg struct {
	name  string
	n     int  // the valid length
	nilOK bool // nil is accepted: an output skipped when nil, or an absent bias
	// ref marks the argument the others are measured against (x of ReLU):
	// a wrong length of it is reported on another argument.
	ref bool
	// noBias marks a bias argument of a spec without bias: any value is
	// reported as given to a bias-free spec.
	noBias bool
}

// checkCase is a checker with valid argument lengths.
type checkCase struct {
	name    string
	op      string // the operator the errors name
	args    []checkArg
	wsBytes int // the workspace length; -1 when the checker takes none
	call    func(a [][]float32, ws []byte) error
}

var (
	testConv    = ConvSpec{N: 2, H: 5, W: 4, C: 3, K: 4, KH: 3, KW: 3, Stride: 2, Pad: 1} // 3x2 output
	testBN      = BNSpec{N: 2, Spatial: 3, C: 4, Eps: 1e-5}
	testPool    = PoolSpec{N: 2, H: 5, W: 6, C: 3, Kernel: 3, Stride: 2, Pad: 1} // 3x3 output
	testLinear  = LinearSpec{N: 2, In: 3, Out: 5}
	testWSBytes = 7
)

// checkCases returns every checker with a spec (with and without bias where
// the spec has one) and the valid lengths of its arguments.
func checkCases() []checkCase {
	cs := testConv
	csb := cs
	csb.Bias = true
	nx, nw, ny := 2*5*4*3, 4*3*3*3, 2*3*2*4
	ls := testLinear
	lsb := ls
	lsb.Bias = true
	lx, lw, ly := 2*3, 5*3, 2*5
	bx, bc := 2*3*4, 4
	px, py := 2*5*6*3, 2*3*3*3
	arg := func(name string, n int) checkArg { return checkArg{name: name, n: n} }
	opt := func(name string, n int) checkArg { return checkArg{name: name, n: n, nilOK: true} }
	noBias := func(name string) checkArg { return checkArg{name: name, nilOK: true, noBias: true} }
	return []checkCase{
		{name: "conv forward with bias", op: "Conv.Forward", wsBytes: -1,
			args: []checkArg{arg("x", nx), arg("w", nw), arg("b", 4), arg("y", ny)},
			call: func(a [][]float32, _ []byte) error { return CheckConvForward(csb, a[0], a[1], a[2], a[3]) }},
		{name: "conv forward without bias", op: "Conv.Forward", wsBytes: -1,
			args: []checkArg{arg("x", nx), arg("w", nw), noBias("b"), arg("y", ny)},
			call: func(a [][]float32, _ []byte) error { return CheckConvForward(cs, a[0], a[1], a[2], a[3]) }},
		{name: "conv backward with bias", op: "Conv.Backward", wsBytes: -1,
			args: []checkArg{arg("x", nx), arg("w", nw), arg("dy", ny), opt("dx", nx), arg("dw", nw), opt("db", 4)},
			call: func(a [][]float32, _ []byte) error {
				return CheckConvBackward(csb, a[0], a[1], a[2], a[3], a[4], a[5])
			}},
		{name: "conv backward without bias", op: "Conv.Backward", wsBytes: -1,
			args: []checkArg{arg("x", nx), arg("w", nw), arg("dy", ny), opt("dx", nx), arg("dw", nw), noBias("db")},
			call: func(a [][]float32, _ []byte) error {
				return CheckConvBackward(cs, a[0], a[1], a[2], a[3], a[4], a[5])
			}},
		{name: "batch norm forward train", op: "BatchNorm.ForwardTrain", wsBytes: -1,
			args: []checkArg{arg("x", bx), arg("gamma", bc), arg("beta", bc), arg("y", bx), arg("mean", bc), arg("variance", bc)},
			call: func(a [][]float32, _ []byte) error {
				return CheckBNForwardTrain(testBN, a[0], a[1], a[2], a[3], a[4], a[5])
			}},
		{name: "batch norm forward infer", op: "BatchNorm.ForwardInfer", wsBytes: -1,
			args: []checkArg{arg("x", bx), arg("gamma", bc), arg("beta", bc), arg("runMean", bc), arg("runVar", bc), arg("y", bx)},
			call: func(a [][]float32, _ []byte) error {
				return CheckBNForwardInfer(testBN, a[0], a[1], a[2], a[3], a[4], a[5])
			}},
		{name: "batch norm backward", op: "BatchNorm.Backward", wsBytes: -1,
			args: []checkArg{arg("x", bx), arg("gamma", bc), arg("mean", bc), arg("variance", bc), arg("dy", bx),
				opt("dx", bx), opt("dgamma", bc), opt("dbeta", bc)},
			call: func(a [][]float32, _ []byte) error {
				return CheckBNBackward(testBN, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
			}},
		{name: "max pool forward", op: "MaxPool.Forward", wsBytes: testWSBytes,
			args: []checkArg{arg("x", px), arg("y", py)},
			call: func(a [][]float32, ws []byte) error { return CheckPoolForward(testPool, a[0], a[1], ws, testWSBytes) }},
		{name: "max pool backward", op: "MaxPool.Backward", wsBytes: testWSBytes,
			args: []checkArg{arg("dy", py), arg("dx", px)},
			call: func(a [][]float32, ws []byte) error {
				return CheckPoolBackward(testPool, a[0], ws, testWSBytes, a[1])
			}},
		{name: "linear forward with bias", op: "Linear.Forward", wsBytes: -1,
			args: []checkArg{arg("x", lx), arg("w", lw), arg("b", 5), arg("y", ly)},
			call: func(a [][]float32, _ []byte) error { return CheckLinearForward(lsb, a[0], a[1], a[2], a[3]) }},
		{name: "linear forward without bias", op: "Linear.Forward", wsBytes: -1,
			args: []checkArg{arg("x", lx), arg("w", lw), noBias("b"), arg("y", ly)},
			call: func(a [][]float32, _ []byte) error { return CheckLinearForward(ls, a[0], a[1], a[2], a[3]) }},
		{name: "linear backward with bias", op: "Linear.Backward", wsBytes: -1,
			args: []checkArg{arg("x", lx), arg("w", lw), arg("dy", ly), opt("dx", lx), arg("dw", lw), opt("db", 5)},
			call: func(a [][]float32, _ []byte) error {
				return CheckLinearBackward(lsb, a[0], a[1], a[2], a[3], a[4], a[5])
			}},
		{name: "linear backward without bias", op: "Linear.Backward", wsBytes: -1,
			args: []checkArg{arg("x", lx), arg("w", lw), arg("dy", ly), opt("dx", lx), arg("dw", lw), noBias("db")},
			call: func(a [][]float32, _ []byte) error {
				return CheckLinearBackward(ls, a[0], a[1], a[2], a[3], a[4], a[5])
			}},
		{name: "relu", op: "ReLU", wsBytes: -1,
			args: []checkArg{{name: "x", n: 6, ref: true}, arg("y", 6)},
			call: func(a [][]float32, _ []byte) error { return CheckReLU(a[0], a[1]) }},
		{name: "relu backward", op: "ReLUBackward", wsBytes: -1,
			args: []checkArg{{name: "y", n: 6, ref: true}, arg("dy", 6), arg("dx", 6)},
			call: func(a [][]float32, _ []byte) error { return CheckReLUBackward(a[0], a[1], a[2]) }},
		{name: "add", op: "Add", wsBytes: -1,
			args: []checkArg{{name: "a", n: 6, ref: true}, arg("b", 6), arg("y", 6)},
			call: func(a [][]float32, _ []byte) error { return CheckAdd(a[0], a[1], a[2]) }},
		{name: "global average pool", op: "GlobalAvgPool", wsBytes: -1,
			args: []checkArg{arg("x", 2*3*4), arg("y", 2*4)},
			call: func(a [][]float32, _ []byte) error { return CheckGlobalAvgPool(a[0], 2, 3, 4, a[1]) }},
		{name: "global average pool backward", op: "GlobalAvgPoolBackward", wsBytes: -1,
			args: []checkArg{arg("dy", 2*4), arg("dx", 2*3*4)},
			call: func(a [][]float32, _ []byte) error { return CheckGlobalAvgPoolBackward(a[0], 2, 3, 4, a[1]) }},
	}
}

// valid returns the arguments of c with their valid lengths and a valid
// workspace.
func (c checkCase) valid() ([][]float32, []byte) {
	a := make([][]float32, len(c.args))
	for i, g := range c.args {
		a[i] = make([]float32, g.n)
	}
	var ws []byte
	if c.wsBytes >= 0 {
		ws = make([]byte, c.wsBytes)
	}
	return a, ws
}

// with returns the valid arguments of c with argument i replaced by v.
func (c checkCase) with(i int, v []float32) ([][]float32, []byte) {
	a, ws := c.valid()
	a[i] = v
	return a, ws
}

// wantErr fails unless err is non-nil and contains want.
func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one containing %q", what, want)
	} else if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %q, want one containing %q", what, err, want)
	}
}

func TestCheckersAcceptValidCalls(t *testing.T) {
	for _, c := range checkCases() {
		a, ws := c.valid()
		if err := c.call(a, ws); err != nil {
			t.Errorf("%s: valid call: %v", c.name, err)
		}
	}
}

func TestCheckersNameTheWrongArgument(t *testing.T) {
	for _, c := range checkCases() {
		for i, g := range c.args {
			if g.ref {
				continue
			}
			lengths := []int{g.n + 1}
			if g.n > 0 {
				lengths = append(lengths, g.n-1)
			}
			for _, n := range lengths {
				what := fmt.Sprintf("%s: %s of length %d", c.name, g.name, n)
				err := c.call(c.with(i, make([]float32, n)))
				if g.noBias {
					wantErr(t, what, err, fmt.Sprintf("ops: %s: %s given (%d values) but the spec has no bias", c.op, g.name, n))
				} else {
					wantErr(t, what, err, fmt.Sprintf("ops: %s: %s has %d values, want %d", c.op, g.name, n, g.n))
				}
			}
		}
	}
}

func TestCheckersNilArguments(t *testing.T) {
	for _, c := range checkCases() {
		for i, g := range c.args {
			if g.ref {
				continue
			}
			what := fmt.Sprintf("%s: nil %s", c.name, g.name)
			err := c.call(c.with(i, nil))
			switch {
			case g.nilOK && err != nil:
				t.Errorf("%s: %v, want success (nil means not needed)", what, err)
			case !g.nilOK:
				wantErr(t, what, err, fmt.Sprintf("ops: %s: %s has 0 values, want %d", c.op, g.name, g.n))
			}
			if g.nilOK && !g.noBias {
				// Only nil skips an output: an empty one must have the full length.
				wantErr(t, c.name+": empty "+g.name, c.call(c.with(i, []float32{})),
					fmt.Sprintf("ops: %s: %s has 0 values, want %d", c.op, g.name, g.n))
			}
		}
	}
}

func TestCheckersWorkspace(t *testing.T) {
	for _, c := range checkCases() {
		if c.wsBytes < 0 {
			continue
		}
		for _, n := range []int{0, c.wsBytes - 1, c.wsBytes + 1} {
			a, _ := c.valid()
			wantErr(t, fmt.Sprintf("%s: workspace of %d bytes", c.name, n), c.call(a, make([]byte, n)),
				fmt.Sprintf("ops: %s: workspace has %d bytes, want %d", c.op, n, c.wsBytes))
		}
	}
}

func TestCheckersRefuseInvalidSpecs(t *testing.T) {
	var x []float32
	badConv := testConv
	badConv.Stride = 0
	emptyConv := testConv
	emptyConv.KH = 10 // (5+2-10)/2+1 = 0 output rows
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"conv forward stride 0", CheckConvForward(badConv, x, x, x, x), "ops: Conv.Forward: ops: invalid convolution"},
		{"conv backward empty output", CheckConvBackward(emptyConv, x, x, x, x, x, x), "ops: Conv.Backward: ops: convolution"},
		{"bn train no channels", CheckBNForwardTrain(BNSpec{N: 1, Spatial: 1, Eps: 1e-5}, x, x, x, x, x, x),
			"ops: BatchNorm.ForwardTrain: ops: invalid batch norm"},
		{"bn infer negative eps", CheckBNForwardInfer(BNSpec{N: 1, Spatial: 1, C: 1, Eps: -1}, x, x, x, x, x, x),
			"ops: BatchNorm.ForwardInfer: ops: invalid batch norm"},
		{"bn backward NaN eps", CheckBNBackward(BNSpec{N: 1, Spatial: 1, C: 1, Eps: float32(math.NaN())}, x, x, x, x, x, x, x, x),
			"ops: BatchNorm.Backward: ops: invalid batch norm"},
		{"pool forward stride 0", CheckPoolForward(PoolSpec{N: 1, H: 4, W: 4, C: 1, Kernel: 2}, x, x, nil, 0),
			"ops: MaxPool.Forward: ops: invalid max pool"},
		{"pool backward padding of a kernel", CheckPoolBackward(PoolSpec{N: 1, H: 4, W: 4, C: 1, Kernel: 2, Stride: 1, Pad: 2}, x, nil, 0, x),
			"ops: MaxPool.Backward: ops: invalid max pool"},
		{"pool forward empty output", CheckPoolForward(PoolSpec{N: 1, H: 2, W: 2, C: 1, Kernel: 5, Stride: 1, Pad: 1}, x, x, nil, 0),
			"ops: MaxPool.Forward: ops: max pool"},
		{"linear forward no inputs", CheckLinearForward(LinearSpec{N: 1, Out: 1}, x, x, x, x),
			"ops: Linear.Forward: ops: invalid linear"},
		{"linear backward no batch", CheckLinearBackward(LinearSpec{In: 1, Out: 1}, x, x, x, x, x, x),
			"ops: Linear.Backward: ops: invalid linear"},
		{"global average pool hw 0", CheckGlobalAvgPool(x, 1, 0, 1, x), "ops: GlobalAvgPool: invalid sizes"},
		{"global average pool backward c 0", CheckGlobalAvgPoolBackward(x, 1, 1, 0, x),
			"ops: GlobalAvgPoolBackward: invalid sizes"},
	} {
		wantErr(t, tc.name, tc.err, tc.want)
	}
}

func TestPoolSpecValidateAllowsPaddingBelowTheKernel(t *testing.T) {
	// ops allows every padding below the kernel (each window still holds an
	// input element); package ref refuses more than half a kernel itself.
	s := PoolSpec{N: 1, H: 4, W: 4, C: 1, Kernel: 3, Stride: 1, Pad: 2}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	oh, ow := s.OutHW()
	if err := CheckPoolForward(s, make([]float32, 16), make([]float32, oh*ow), nil, 0); err != nil {
		t.Fatal(err)
	}
}

// named64 is a float64 under another name; the checkers accept ~float64.
type named64 float64

func TestCheckersFloat64(t *testing.T) {
	s := testLinear
	x, w, y := make([]float64, 6), make([]float64, 15), make([]float64, 10)
	if err := CheckLinearForward(s, x, w, nil, y); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "float64 linear backward", CheckLinearBackward(s, x, w, y, x[:5], w, nil),
		"ops: Linear.Backward: dx has 5 values, want 6")
	a := make([]named64, 4)
	if err := CheckAdd(a, a, a); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "named64 add", CheckAdd(a, a, a[:3]), "ops: Add: y has 3 values, want 4")
}
