package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// f64Loss is a method's float64 core at one step, with gradients.
type f64Loss func(z1, z2 []float64, n, d int, g1, g2 []float64) (float64, error)

// coreOf returns the float64 core of m at the given step. For CorInfoMax
// it evaluates against the current running state without updating it.
func coreOf(t *testing.T, m Method, step int) f64Loss {
	t.Helper()
	wrap := func(f func(z1, z2 []float64, n, d int, g1, g2 []float64) (Result, error)) f64Loss {
		return func(z1, z2 []float64, n, d int, g1, g2 []float64) (float64, error) {
			clear(g1)
			clear(g2)
			r, err := f(z1, z2, n, d, g1, g2)
			return r.Loss, err
		}
	}
	switch m := m.(type) {
	case *CorInfoMax:
		return wrap(func(z1, z2 []float64, n, d int, g1, g2 []float64) (Result, error) {
			r, _, err := m.eval(z1, z2, n, d, g1, g2)
			return r, err
		})
	case *BarlowTwins:
		return wrap(m.eval)
	case *VICReg:
		return wrap(m.eval)
	case *SimCLR:
		m.exact = true // float64 products: finite differences need a loss free of float32 rounding
		return wrap(m.eval)
	case *WMSE:
		return wrap(func(z1, z2 []float64, n, d int, g1, g2 []float64) (Result, error) {
			return m.eval(step, z1, z2, n, d, g1, g2)
		})
	}
	t.Fatalf("no float64 core for %T", m)
	return nil
}

// checkFD compares the analytic gradient of f at (z1, z2) with central
// finite differences on all coordinates, or on maxCoords random ones per
// view for big inputs. Errors are measured relative to the largest
// gradient entry.
func checkFD(t *testing.T, label string, f f64Loss, z1, z2 []float64, n, d int, rng *rand.Rand, maxCoords int) {
	t.Helper()
	g1, g2 := make([]float64, n*d), make([]float64, n*d)
	if _, err := f(z1, z2, n, d, g1, g2); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	scale := 0.0
	for i := range g1 {
		scale = math.Max(scale, math.Max(math.Abs(g1[i]), math.Abs(g2[i])))
	}
	if scale == 0 {
		t.Fatalf("%s: gradient is identically zero", label)
	}
	s1, s2 := make([]float64, n*d), make([]float64, n*d)
	worst := 0.0
	for view, z := range [][]float64{z1, z2} {
		g := [][]float64{g1, g2}[view]
		coords := rng.Perm(n * d)
		if len(coords) > maxCoords {
			coords = coords[:maxCoords]
		}
		for _, i := range coords {
			h := 1e-5 * math.Max(1, math.Abs(z[i]))
			orig := z[i]
			z[i] = orig + h
			fp, err := f(z1, z2, n, d, s1, s2)
			if err != nil {
				t.Fatalf("%s: %v", label, err)
			}
			z[i] = orig - h
			fm, err := f(z1, z2, n, d, s1, s2)
			if err != nil {
				t.Fatalf("%s: %v", label, err)
			}
			z[i] = orig
			fd := (fp - fm) / (2 * h)
			e := math.Abs(fd-g[i]) / scale
			worst = math.Max(worst, e)
			if e > 1e-5 {
				t.Errorf("%s: view %d, row %d, col %d: analytic %.10g, finite difference %.10g (error %.2g of max |g| %.3g)",
					label, view+1, i/d, i%d, g[i], fd, e, scale)
			}
		}
	}
	t.Logf("%s: worst relative gradient error %.2g", label, worst)
}

func randn(rng *rand.Rand, n int, scale float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64() * scale
	}
	return x
}

// twoViews returns a correlated pair of views with per-column scales in
// [0.3, 2] (so that VICReg's hinge is active on some columns only).
func twoViews(rng *rand.Rand, n, d int) (z1, z2 []float64) {
	z1 = randn(rng, n*d, 1)
	z2 = randn(rng, n*d, 0.5)
	for i := range z1 {
		s := 0.3 + 1.7*float64(i%d)/float64(max(d-1, 1))
		z1[i] *= s
		z2[i] = z1[i] + z2[i]*s
	}
	return z1, z2
}

var gradShapes = []struct{ n, d int }{
	{2, 3}, {2, 16}, {2, 64}, {7, 3}, {7, 16}, {7, 64}, {64, 3}, {64, 16}, {64, 64},
}

func TestGradientsFiniteDifferences(t *testing.T) {
	for _, name := range []string{NameBarlowTwins, NameVICReg, NameSimCLR, NameWMSE} {
		for _, sh := range gradShapes {
			opts, err := Defaults(name)
			if err != nil {
				t.Fatal(err)
			}
			setOwn(&opts, "scale_loss", 0.1)
			// W-MSE: whole batch (or halves of 64) as sub-batches, two
			// splits; shrink the covariance where a sub-batch cannot
			// have full rank.
			wsize := sh.n
			if sh.n == 64 {
				wsize = 32
			}
			setOwn(&opts, "w_size", float64(wsize))
			setOwn(&opts, "w_iter", 2)
			setOwn(&opts, "w_eps", 0)
			if wsize <= sh.d+1 {
				setOwn(&opts, "w_eps", 0.1)
			}
			m, err := New(name, opts)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(sh.n), uint64(sh.d)))
			z1, z2 := twoViews(rng, sh.n, sh.d)
			label := fmt.Sprintf("%s n=%d d=%d", name, sh.n, sh.d)
			checkFD(t, label, coreOf(t, m, 3), z1, z2, sh.n, sh.d, rng, 24)
		}
	}
}

// TestCorInfoMaxGradientsOverSteps checks the gradient at each of four
// consecutive steps, the running state being updated between them.
func TestCorInfoMaxGradientsOverSteps(t *testing.T) {
	for _, normalize := range []bool{true, false} {
		for _, sh := range gradShapes {
			opts, _ := Defaults(NameCorInfoMax)
			// A small alpha keeps the covariance terms visible next to the
			// attraction term; distinct lam_R, lam_mu exercise the mean term.
			opts.Set("alpha", 2.5)
			opts.Set("lam_R", 0.3)
			opts.Set("lam_mu", 0.6)
			opts.Set("normalize", b2f(normalize))
			m, err := New(NameCorInfoMax, opts)
			if err != nil {
				t.Fatal(err)
			}
			c := m.(*CorInfoMax)
			rng := rand.New(rand.NewPCG(uint64(sh.n), uint64(sh.d)+100))
			for step := 1; step <= 4; step++ {
				z1, z2 := twoViews(rng, sh.n, sh.d)
				label := fmt.Sprintf("corinfomax normalize=%v n=%d d=%d step %d", normalize, sh.n, sh.d, step)
				checkFD(t, label, coreOf(t, c, step), z1, z2, sh.n, sh.d, rng, 16)
				// Advance the running state with this step's batch.
				g1, g2 := make([]float64, sh.n*sh.d), make([]float64, sh.n*sh.d)
				_, next, err := c.eval(z1, z2, sh.n, sh.d, g1, g2)
				if err != nil {
					t.Fatal(err)
				}
				c.d, c.r, c.mu = sh.d, next.r, next.mu
			}
		}
	}
}

// setOwn sets the option name when o (from Defaults) has it: loops over
// every method set each method's own options only.
func setOwn(o *Options, name string, v float64) {
	if _, ok := o.Get(name); ok {
		o.Set(name, v)
	}
}

// b2f is a boolean option's value.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
