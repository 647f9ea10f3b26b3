package nn_test

import (
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/dnnl"
)

// The PyTorch parity tests also run on the oneDNN backend (2 threads).
func init() {
	extraBackends = append(extraBackends, func() (ops.Backend, error) { return dnnl.New(2) })
}
