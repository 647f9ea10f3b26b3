package ssl

import (
	"fmt"
	"math"
	"testing"
)

// cimRef is an independent float64 CorInfoMax written straight from the
// formula of docs/design.md section 1, with plain loops only (no BLAS, no
// LAPACK, no code shared with corinfomax.go):
//
//	y   = rows of z divided by max(||row||, 1e-12) when Normalize
//	mu' = LamMu mu + (1 - LamMu) colmean(y);  zc = y - mu'
//	R'  = LamR R + (1 - LamR) zc^T zc / N
//	L   = Alpha sum (y1 - y2)^2 / (N D) - logdet(R1' + Eps I)/D - logdet(R2' + Eps I)/D
//
// after which R <- R', mu <- mu'. R starts as InitScale I, mu as 0.
type cimRef struct {
	o    CorInfoMaxConfig
	d    int
	r    [2][]float64
	mu   [2][]float64
	init bool
}

// step returns the loss and the components sim, cov1, cov2 of one step and
// advances the running state.
func (c *cimRef) step(z1, z2 []float32, n, d int) (loss float64, comps [3]float64, err error) {
	if !c.init {
		c.d, c.init = d, true
		for b := 0; b < 2; b++ {
			c.r[b] = make([]float64, d*d)
			for i := 0; i < d; i++ {
				c.r[b][i*d+i] = c.o.InitScale
			}
			c.mu[b] = make([]float64, d)
		}
	}
	var y [2][]float64
	for b, z := range [][]float32{z1, z2} {
		y[b] = make([]float64, n*d)
		for i := 0; i < n; i++ {
			norm := 1.0
			if c.o.Normalize {
				s := 0.0
				for j := 0; j < d; j++ {
					v := float64(z[i*d+j])
					s += v * v
				}
				norm = math.Max(math.Sqrt(s), 1e-12)
			}
			for j := 0; j < d; j++ {
				y[b][i*d+j] = float64(z[i*d+j]) / norm
			}
		}
	}
	for i := range y[0] {
		e := y[0][i] - y[1][i]
		comps[0] += e * e
	}
	comps[0] *= c.o.Alpha / float64(n*d)
	var newR, newMu [2][]float64
	for b := 0; b < 2; b++ {
		mu := make([]float64, d)
		for j := 0; j < d; j++ {
			m := 0.0
			for i := 0; i < n; i++ {
				m += y[b][i*d+j]
			}
			mu[j] = c.o.LamMu*c.mu[b][j] + (1-c.o.LamMu)*m/float64(n)
		}
		r := make([]float64, d*d)
		for j := 0; j < d; j++ {
			for k := 0; k < d; k++ {
				s := 0.0
				for i := 0; i < n; i++ {
					s += (y[b][i*d+j] - mu[j]) * (y[b][i*d+k] - mu[k])
				}
				r[j*d+k] = c.o.LamR*c.r[b][j*d+k] + (1-c.o.LamR)*s/float64(n)
			}
		}
		m := append([]float64(nil), r...)
		for j := 0; j < d; j++ {
			m[j*d+j] += c.o.Eps
		}
		ld, err := logdetChol(m, d)
		if err != nil {
			return 0, comps, fmt.Errorf("view %d: %w", b+1, err)
		}
		comps[1+b] = -ld / float64(d)
		newR[b], newMu[b] = r, mu
	}
	c.r, c.mu = newR, newMu
	return comps[0] + comps[1] + comps[2], comps, nil
}

// logdetChol returns log det of the symmetric positive definite d x d
// matrix a (overwritten) by an unblocked lower Cholesky factorisation.
func logdetChol(a []float64, d int) (float64, error) {
	ld := 0.0
	for j := 0; j < d; j++ {
		s := a[j*d+j]
		for k := 0; k < j; k++ {
			s -= a[j*d+k] * a[j*d+k]
		}
		if !(s > 0) {
			return 0, fmt.Errorf("not positive definite at pivot %d (%g)", j, s)
		}
		l := math.Sqrt(s)
		a[j*d+j] = l
		ld += 2 * math.Log(l)
		for i := j + 1; i < d; i++ {
			s := a[i*d+j]
			for k := 0; k < j; k++ {
				s -= a[i*d+k] * a[j*d+k]
			}
			a[i*d+j] = s / l
		}
	}
	return ld, nil
}

// checkAgainstRef compares a CorInfoMax step (res, and c's running state
// after it) with the reference's loss, components and state.
func checkAgainstRef(t *testing.T, label string, c *CorInfoMax, ref *cimRef, res Result, want float64, comps [3]float64) {
	t.Helper()
	scale := math.Max(math.Abs(want), 1)
	if e := math.Abs(res.Loss-want) / scale; e > 1e-9 {
		t.Errorf("%s: loss %.15g, reference %.15g (error %.2g of max(|loss|, 1))", label, res.Loss, want, e)
	}
	for i, name := range []string{"sim", "cov1", "cov2"} {
		if res.Components[i].Name != name {
			t.Fatalf("%s: component %d is %q, want %q", label, i, res.Components[i].Name, name)
		}
		if e := math.Abs(res.Components[i].Value-comps[i]) / scale; e > 1e-9 {
			t.Errorf("%s: %s = %.15g, reference %.15g", label, name, res.Components[i].Value, comps[i])
		}
	}
	st := map[string][]float64{}
	for _, s := range c.State() {
		st[s.Name] = s.Data
	}
	for b := 0; b < 2; b++ {
		for _, p := range []struct {
			name      string
			got, want []float64
		}{{fmt.Sprintf("R%d", b+1), st[fmt.Sprintf("R%d", b+1)], ref.r[b]}, {fmt.Sprintf("mu%d", b+1), st[fmt.Sprintf("mu%d", b+1)], ref.mu[b]}} {
			if len(p.got) != len(p.want) {
				t.Fatalf("%s: %s has %d values, reference %d", label, p.name, len(p.got), len(p.want))
			}
			m := 0.0
			for _, v := range p.want {
				m = math.Max(m, math.Abs(v))
			}
			for i := range p.want {
				if e := math.Abs(p.got[i]-p.want[i]) / math.Max(m, 1e-300); e > 1e-12 {
					t.Errorf("%s: %s[%d] = %.15g, reference %.15g", label, p.name, i, p.got[i], p.want[i])
					break
				}
			}
		}
	}
}
