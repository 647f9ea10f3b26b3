package dnnl

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/ref"
)

// roundBF16 rounds every value to the nearest bfloat16 (ties to even), the
// conversion oneDNN applies to a bfloat16 primitive's float32 inputs.
func roundBF16(x []float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		b := math.Float32bits(v)
		b += 0x7fff + (b>>16)&1
		out[i] = math.Float32frombits(b &^ 0xffff)
	}
	return out
}

// TestBF16ConvMatchesRefOnRoundedInputs checks the bfloat16 convolutions
// exactly where they can be checked: oneDNN rounds x, w and dy to bfloat16
// and accumulates in float32, so its results must equal the float64
// reference run on the rounded inputs up to float32 summation error (the
// float32 tolerance, tol). An indexing, layout or conversion mistake shows
// as an error of order 1; forgetting to round gives errors of order 1e-3.
// On a CPU without AVX512-BF16 the backend must refuse the option instead.
func TestBF16ConvMatchesRefOnRoundedInputs(t *testing.T) {
	if !BF16Supported() {
		_, err := NewWithOptions(ops.BackendOptions{Threads: 2, Precision: ops.BF16})
		if err == nil || !strings.Contains(err.Error(), "AVX512-BF16") {
			t.Fatalf("NewWithOptions(BF16) on a CPU without AVX512-BF16: err = %v, want a refusal naming AVX512-BF16", err)
		}
		t.Skip("CPU lacks AVX512-BF16: checked that the backend refuses BF16; the bfloat16 convolutions were not run")
	}
	d, err := NewWithOptions(ops.BackendOptions{Threads: 2, Precision: ops.BF16})
	mustNoErr(t, "NewWithOptions(BF16)", err)
	defer d.Close()
	if d.Precision() != "bf16" {
		t.Fatalf("Precision() = %q, want bf16", d.Precision())
	}
	rb := ref.New()
	r := rand.New(rand.NewSource(11))
	for _, s := range convSpecs() {
		name := fmt.Sprintf("bf16 %+v", s)
		op, err := d.Conv(s)
		mustNoErr(t, "dnnl Conv", err)
		want, err := rb.Conv(s)
		mustNoErr(t, "ref Conv", err)
		c := newConvCase(r, s)
		rc := convCase{x: roundBF16(c.x), w: roundBF16(c.w), b: c.b, dy: roundBF16(c.dy)}
		checkConvAgainst(t, name, s, op, want, c, rc)
	}
}

// TestBF16ConvDiffersFromFP32 guards against a bfloat16 flag that silently
// does nothing: on the same inputs the bfloat16 forward must differ from
// the float32 one by about bfloat16's rounding (relative 2^-8), not by 0.
func TestBF16ConvDiffersFromFP32(t *testing.T) {
	if !BF16Supported() {
		t.Skip("CPU lacks AVX512-BF16: bfloat16 convolutions not run (TestBF16ConvMatchesRefOnRoundedInputs checks the refusal)")
	}
	d32, _ := backends(t)
	d16, err := NewWithOptions(ops.BackendOptions{Threads: 2, Precision: ops.BF16})
	mustNoErr(t, "NewWithOptions(BF16)", err)
	defer d16.Close()
	s := convSpecs()[1]
	c := newConvCase(rand.New(rand.NewSource(3)), s)
	oh, ow := s.OutHW()
	y32, y16 := make([]float32, s.N*oh*ow*s.K), make([]float32, s.N*oh*ow*s.K)
	op32, err := d32.Conv(s)
	mustNoErr(t, "fp32 Conv", err)
	op16, err := d16.Conv(s)
	mustNoErr(t, "bf16 Conv", err)
	mustNoErr(t, "fp32 forward", op32.Forward(c.x, c.w, c.b, y32))
	mustNoErr(t, "bf16 forward", op16.Forward(c.x, c.w, c.b, y16))
	worst, scale := 0.0, 0.0
	for i := range y32 {
		worst = math.Max(worst, math.Abs(float64(y32[i]-y16[i])))
		scale = math.Max(scale, math.Abs(float64(y32[i])))
	}
	if rel := worst / scale; rel < 1e-4 || rel > 5e-2 {
		t.Fatalf("bf16 forward differs from fp32 by %.3g of the largest output; want bfloat16 rounding (1e-4 .. 5e-2)", rel)
	}
}

// TestBF16ConvKernels checks that bfloat16 convolutions of ResNet shapes run
// on oneDNN's avx512_core_bf16 kernels, not on its (slow) reference kernels:
// oneDNN silently falls back to "ref" for layout combinations its fast
// kernels do not take (it does for format "any" sources next to a float32
// NHWC output), which would make --precision bf16 many times slower.
func TestBF16ConvKernels(t *testing.T) {
	if !BF16Supported() {
		t.Skip("CPU lacks AVX512-BF16: bfloat16 convolutions not run (TestBF16ConvMatchesRefOnRoundedInputs checks the refusal)")
	}
	d, err := NewWithOptions(ops.BackendOptions{Threads: 2, Precision: ops.BF16})
	mustNoErr(t, "NewWithOptions(BF16)", err)
	defer d.Close()
	for _, s := range []ops.ConvSpec{
		{N: 8, H: 32, W: 32, C: 3, K: 16, KH: 3, KW: 3, Stride: 1, Pad: 1},  // CIFAR stem
		{N: 8, H: 32, W: 32, C: 16, K: 16, KH: 3, KW: 3, Stride: 1, Pad: 1}, // layer1
		{N: 8, H: 32, W: 32, C: 16, K: 32, KH: 3, KW: 3, Stride: 2, Pad: 1}, // layer2.0.conv1
		{N: 8, H: 32, W: 32, C: 16, K: 32, KH: 1, KW: 1, Stride: 2, Pad: 0}, // downsample
		{N: 8, H: 28, W: 28, C: 1, K: 16, KH: 3, KW: 3, Stride: 1, Pad: 1},  // Fashion-MNIST stem
		{N: 8, H: 64, W: 64, C: 3, K: 64, KH: 7, KW: 7, Stride: 2, Pad: 3},  // ImageNet stem
	} {
		op, err := d.Conv(s)
		mustNoErr(t, "Conv", err)
		for i, impl := range op.(*conv).impl() {
			if !strings.Contains(impl, "bf16") {
				t.Errorf("%+v: %s runs on %q, want an avx512_core_bf16 kernel", s, [...]string{"forward", "backward data", "backward weights"}[i], impl)
			}
		}
	}
}
