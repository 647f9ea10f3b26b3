package ssl

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// SimCLR is the NT-Xent contrastive objective of Chen et al., "A Simple
// Framework for Contrastive Learning of Visual Representations" (ICML 2020),
// as solo-learn's simclr_loss_func computes it: with z the 2N rows of both
// views, each L2-normalised, s_ij = z_i·z_j / T and p(i) the other view of
// the same image,
//
//	L = (1/2N) sum_i [ -s_{i,p(i)} + log sum_{j != i} exp(s_ij) ]
//
// Component: "nce". Default temperature 0.2 (solo-learn's CIFAR config).
type SimCLR struct {
	opts Options
}

// NewSimCLR validates opts and returns a SimCLR.
func NewSimCLR(opts Options) (*SimCLR, error) {
	if !(opts.Temperature > 0) || math.IsInf(opts.Temperature, 0) {
		return nil, optErr(NameSimCLR, "temperature", opts.Temperature, "finite and > 0")
	}
	return &SimCLR{opts: opts}, nil
}

// Name returns "simclr".
func (s *SimCLR) Name() string { return NameSimCLR }

// Loss implements Method.
func (s *SimCLR) Loss(step int, z1, z2 []float32, n, d int, g1, g2 []float32) (Result, error) {
	return runLoss(NameSimCLR, step, z1, z2, n, d, g1, g2, s.opts.Gather, s.eval)
}

// eval is the float64 core of Loss.
func (s *SimCLR) eval(z1, z2 []float64, n, d int, g1, g2 []float64) (Result, error) {
	m := 2 * n
	x := make([]float64, 0, m*d)
	x = append(append(x, z1...), z2...)
	y, norms := normalizeRows(x, m, d)
	invT := 1 / s.opts.Temperature

	// S = y y^T / T.
	sm := make([]float64, m*m)
	blas64.Gemm(blas.NoTrans, blas.Trans, invT, gen(y, m, d), gen(y, m, d), 0, gen(sm, m, m))

	// Row-wise log-softmax over j != i; dS = (P - onehot(p(i))) / 2N.
	loss := 0.0
	ds := make([]float64, m*m)
	for i := 0; i < m; i++ {
		row := sm[i*m : (i+1)*m]
		pos := (i + n) % m
		mx := math.Inf(-1)
		for j, v := range row {
			if j != i && v > mx {
				mx = v
			}
		}
		sum := 0.0
		for j, v := range row {
			if j != i {
				sum += math.Exp(v - mx)
			}
		}
		lse := mx + math.Log(sum)
		loss += lse - row[pos]
		for j, v := range row {
			if j != i {
				ds[i*m+j] = math.Exp(v-lse) / float64(m)
			}
		}
		ds[i*m+pos] -= 1 / float64(m)
	}
	loss /= float64(m)

	// dL/dy = (dS + dS^T) y / T.
	for i := 0; i < m; i++ {
		for j := i + 1; j < m; j++ {
			t := ds[i*m+j] + ds[j*m+i]
			ds[i*m+j], ds[j*m+i] = t, t
		}
	}
	gy := make([]float64, m*d)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, invT, gen(ds, m, m), gen(y, m, d), 0, gen(gy, m, d))
	normalizeRowsBackward(y, norms, gy, m, d, gy)
	copy(g1, gy[:n*d])
	copy(g2, gy[n*d:])
	return Result{Loss: loss, Components: []Component{{Name: "nce", Value: loss}}}, nil
}
