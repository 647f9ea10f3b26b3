package ops

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func randRows(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 2*rng.Float64() - 1
	}
	return v
}

// centralDiff returns the central-difference gradient of f at p.
func centralDiff(p []float64, h float64, f func() float64) []float64 {
	g := make([]float64, len(p))
	for i := range p {
		orig := p[i]
		p[i] = orig + h
		fp := f()
		p[i] = orig - h
		fm := f()
		p[i] = orig
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

func assertRowsClose(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(got[i] - want[i]); !(d <= tol*math.Max(1, math.Abs(want[i]))) {
			t.Fatalf("%s[%d] = %.12g, want %.12g", name, i, got[i], want[i])
		}
	}
}

func TestL2NormalizeRowsForward(t *testing.T) {
	x := []float32{3, 4, 0, 0, 0, 0, 1e-13, 0, 0, 0, -2, 0}
	y := make([]float32, len(x))
	norms := make([]float64, 3)
	if err := L2NormalizeRows(x, 3, 4, y, norms); err != nil {
		t.Fatal(err)
	}
	// Row 0: (3,4) has norm 5. Row 1 is clamped: y = x / 1e-12. Row 2: -e3.
	want := []float64{0.6, 0.8, 0, 0, 0, 0, 0.1, 0, 0, 0, -1, 0}
	for i, w := range want {
		if math.Abs(float64(y[i])-w) > 1e-6 {
			t.Errorf("y[%d] = %g, want %g", i, y[i], w)
		}
	}
	if math.Abs(norms[0]-5) > 1e-12 || math.Abs(norms[1]-1e-13) > 1e-19 || math.Abs(norms[2]-2) > 1e-12 {
		t.Errorf("norms = %v", norms)
	}
	if err := L2NormalizeRows(x, 3, 4, y, norms[:2]); err == nil {
		t.Error("short norms accepted")
	}
	if err := L2NormalizeRows(x[:11], 3, 4, y, norms); err == nil {
		t.Error("short x accepted")
	}
}

func TestL2NormalizeRowsGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, d = 4, 5
	x := randRows(rng, n*d)
	// Row 2 lies in the clamped region (norm < 1e-12) with room for the
	// finite-difference steps below.
	for i := 2 * d; i < 3*d; i++ {
		x[i] *= 1e-14
	}
	r := randRows(rng, n*d)
	y := make([]float64, n*d)
	norms := make([]float64, n)
	loss := func() float64 {
		if err := L2NormalizeRows64(x, n, d, y, norms); err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for i := range y {
			s += r[i] * y[i]
		}
		return s
	}
	loss()
	if norms[2] >= 1e-12 {
		t.Fatalf("row 2 not clamped: norm %g", norms[2])
	}
	dx := make([]float64, n*d)
	if err := L2NormalizeRowsBackward64(y, norms, n, d, r, dx); err != nil {
		t.Fatal(err)
	}
	// Finite differences row by row with a step matched to the row's scale.
	num := make([]float64, n*d)
	for row := 0; row < n; row++ {
		h := 1e-6
		if row == 2 {
			h = 1e-17
		}
		g := centralDiff(x[row*d:(row+1)*d], h, loss)
		copy(num[row*d:], g)
	}
	for i := range num {
		tol := 1e-7
		scale := math.Max(1, math.Abs(num[i]))
		if math.Abs(dx[i]-num[i]) > tol*scale {
			t.Fatalf("dx[%d] = %.12g, finite difference %.12g", i, dx[i], num[i])
		}
	}
	// The clamped row's gradient is dy / 1e-12.
	for i := 2 * d; i < 3*d; i++ {
		if math.Abs(dx[i]-r[i]*1e12) > 1e-3 {
			t.Fatalf("clamped dx[%d] = %g, want %g", i, dx[i], r[i]*1e12)
		}
	}

	// The float32 version agrees with the float64 one, in place included.
	x32, y32, dy32 := make([]float32, n*d), make([]float32, n*d), make([]float32, n*d)
	for i := range x32 {
		x32[i] = float32(x[i])
		dy32[i] = float32(r[i])
	}
	n32 := make([]float64, n)
	if err := L2NormalizeRows(x32, n, d, y32, n32); err != nil {
		t.Fatal(err)
	}
	if err := L2NormalizeRowsBackward(y32, n32, n, d, dy32, dy32); err != nil {
		t.Fatal(err)
	}
	for i := range dy32 {
		if math.Abs(float64(dy32[i])-dx[i]) > 1e-5*math.Max(1, math.Abs(dx[i])) {
			t.Fatalf("float32 dx[%d] = %g, want %g", i, dy32[i], dx[i])
		}
	}
}

func TestSoftmaxCrossEntropyKnown(t *testing.T) {
	const n, k = 3, 7
	logits := make([]float32, n*k)
	for i := range logits {
		logits[i] = 2.5 // uniform rows: loss ln k
	}
	labels := []int{0, 6, 3}
	dl := make([]float32, n*k)
	loss, err := SoftmaxCrossEntropy(logits, n, k, labels, dl)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss-math.Log(k)) > 1e-12 {
		t.Errorf("loss %g, want ln %d = %g", loss, k, math.Log(k))
	}
	for r := 0; r < n; r++ {
		for i := 0; i < k; i++ {
			want := 1.0 / k / n
			if i == labels[r] {
				want = (1.0/k - 1) / n
			}
			if math.Abs(float64(dl[r*k+i])-want) > 1e-7 {
				t.Errorf("dlogits[%d,%d] = %g, want %g", r, i, dl[r*k+i], want)
			}
		}
	}
	// Stability: huge logits neither overflow nor lose the answer.
	big := []float32{1000, 0, -1000, 0, 1000, 0}
	loss, err = SoftmaxCrossEntropy(big, 2, 3, []int{0, 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Row 0 (label 0): ln(1 + e^-1000 + e^-2000) ~ 0; row 1 (label 0):
	// 1000 + ln(1 + 2e^-1000) ~ 1000; the mean is 500.
	if math.Abs(loss-500) > 1e-9 {
		t.Errorf("loss %g, want 500", loss)
	}
}

func TestSoftmaxCrossEntropyGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, k = 5, 4
	logits := randRows(rng, n*k)
	for i := range logits {
		logits[i] *= 3
	}
	labels := []int{0, 3, 1, 1, 2}
	loss := func() float64 {
		l, err := SoftmaxCrossEntropy64(logits, n, k, labels, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	dl := make([]float64, n*k)
	if _, err := SoftmaxCrossEntropy64(logits, n, k, labels, dl); err != nil {
		t.Fatal(err)
	}
	assertRowsClose(t, "dlogits", dl, centralDiff(logits, 1e-6, loss), 1e-8)
	// Independent value: -mean log softmax computed directly.
	want := 0.0
	for r := 0; r < n; r++ {
		s := 0.0
		for i := 0; i < k; i++ {
			s += math.Exp(logits[r*k+i])
		}
		want -= math.Log(math.Exp(logits[r*k+labels[r]]) / s)
	}
	if got := loss(); math.Abs(got-want/n) > 1e-12 {
		t.Errorf("loss %g, want %g", got, want/n)
	}
}

func TestSoftmaxCrossEntropyErrors(t *testing.T) {
	logits := make([]float32, 6)
	_, err := SoftmaxCrossEntropy(logits, 2, 3, []int{1, 3}, nil)
	if err == nil || !strings.Contains(err.Error(), "row 1") || !strings.Contains(err.Error(), "label 3") {
		t.Errorf("out-of-range label: err = %v", err)
	}
	if _, err := SoftmaxCrossEntropy(logits, 2, 3, []int{-1, 0}, nil); err == nil {
		t.Error("negative label accepted")
	}
	if _, err := SoftmaxCrossEntropy(logits, 2, 3, []int{0}, nil); err == nil {
		t.Error("short labels accepted")
	}
	if _, err := SoftmaxCrossEntropy(logits, 2, 3, []int{0, 0}, make([]float32, 5)); err == nil {
		t.Error("short dlogits accepted")
	}
}
