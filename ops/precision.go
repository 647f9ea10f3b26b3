package ops

import "fmt"

// Precision is the arithmetic a backend's heavy operators compute in. The
// network's weights, batch norm, the projector and the objectives stay
// float32/float64 whatever the precision; only what a backend documents for
// a precision changes.
type Precision string

// The precisions a backend may offer.
const (
	// FP32 computes every operator in float32 (the default).
	FP32 Precision = "fp32"
	// BF16 rounds the convolutions' inputs to bfloat16 and accumulates in
	// float32; every output and gradient stays float32.
	BF16 Precision = "bf16"
)

// ParsePrecision returns the precision named s ("" means FP32).
func ParsePrecision(s string) (Precision, error) {
	switch Precision(s) {
	case "", FP32:
		return FP32, nil
	case BF16:
		return BF16, nil
	}
	return "", fmt.Errorf("unknown precision %q (want fp32 or bf16)", s)
}

// BackendOptions configure a backend when it is created.
type BackendOptions struct {
	// Threads is the number of threads of the kernels (all cores when <= 0).
	Threads int
	// Precision is the arithmetic of the heavy operators ("" means FP32).
	Precision Precision
}
