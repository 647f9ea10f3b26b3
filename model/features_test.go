package model_test

import (
	"context"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/npy"
	"github.com/corinfomax/corinfomax/ops/backends"
	"github.com/corinfomax/corinfomax/tensor"
)

func TestAugmentedFeatures(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(5))
	const n, side, classes = 10, 12, 3
	img := make([]uint8, n*side*side)
	for i := range img {
		img[i] = uint8(rng.Intn(256))
	}
	lab := make([]int64, n)
	for i := range lab {
		lab[i] = int64(i % classes)
	}
	ip, lp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := npy.WriteUint8(ip, []int{n, side, side}, img); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteInt64(lp, []int{n}, lab); err != nil {
		t.Fatal(err)
	}
	ds, err := data.Open("npy:"+ip+","+lp, data.Train, data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	be, err := backends.New("dnnl", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	net, err := model.NewNetwork(be, model.Spec{Arch: "resnet18", Stem: "cifar", Width: 2, InChannels: 1,
		Projector: "16-8", ZeroInit: true}, rng)
	if err != nil {
		t.Fatal(err)
	}
	norm := data.Norm{Mean: []float32{0.5}, Std: []float32{0.25}}
	const size, seed = 8, 7
	ctx := context.Background()
	feats := func(epoch, batch int) []float32 {
		t.Helper()
		f, y, dim, err := model.AugmentedFeatures(ctx, net, ds, size, norm, epoch, seed, batch)
		if err != nil {
			t.Fatal(err)
		}
		if want := net.Backbone.FeatureDim(); dim != want || len(f) != n*dim {
			t.Fatalf("dim %d with %d values, want dim %d and %d values", dim, len(f), want, n*want)
		}
		if len(y) != n {
			t.Fatalf("%d labels, want %d", len(y), n)
		}
		for i, l := range y {
			if int64(l) != lab[i] {
				t.Fatalf("label %d is %d, want %d (images in order)", i, l, lab[i])
			}
		}
		return f
	}
	dim := net.Backbone.FeatureDim()

	// Training mode before the call must not matter: inference mode is set.
	net.SetTraining(true)
	e0 := feats(0, 4) // batches of 4, 4 and 2
	e0again := feats(0, 4)
	for i := range e0 {
		if e0[i] != e0again[i] {
			t.Fatalf("epoch 0 twice differs at %d: %v vs %v", i, e0[i], e0again[i])
		}
	}
	e1 := feats(1, 4)
	differ := 0
	for i := range n {
		for j := range dim {
			if e0[i*dim+j] != e1[i*dim+j] {
				differ++
				break
			}
		}
	}
	if differ < n-1 {
		t.Errorf("epochs 0 and 1 differ in %d of %d images, want nearly all", differ, n)
	}

	// Inference mode: each row is independent of the batch it is in, so
	// one batch of all images gives the same features (up to rounding).
	whole := feats(0, n)
	if d := maxRelDiff(whole, e0); d > 1e-4 {
		t.Errorf("batch 10 vs batch 4: max relative difference %g", d)
	}

	// Independent composition: the augmented pixels (nil net) run through
	// the backbone by hand give the same features.
	pix, _, pdim, err := model.AugmentedFeatures(ctx, nil, ds, size, norm, 1, seed, 4)
	if err != nil {
		t.Fatal(err)
	}
	if pdim != size*size {
		t.Fatalf("pixel dim %d, want %d", pdim, size*size)
	}
	x, err := tensor.FromData(pix, n, size, size, 1)
	if err != nil {
		t.Fatal(err)
	}
	net.SetTraining(false)
	h, err := net.Backbone.Forward(0, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(h.Data, e1); d > 1e-4 {
		t.Errorf("backbone on augmented pixels vs AugmentedFeatures: max relative difference %g", d)
	}

	// Augmentation is applied: the plain evaluation features differ.
	plain, _, _, err := model.Features(ctx, net, ds, size, norm, model.Backbone, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(plain, e0); d < 1e-3 {
		t.Errorf("augmented features equal the unaugmented ones (max relative difference %g)", d)
	}

	if _, _, _, err := model.AugmentedFeatures(ctx, net, ds, 0, norm, 0, seed, 4); err == nil {
		t.Error("size 0 accepted")
	}
}

// maxRelDiff returns max |a-b| / (1 + max |b|) over the two slices, or +Inf
// when their lengths differ.
func maxRelDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d, m float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = max(m, math.Abs(float64(b[i])))
	}
	return d / (1 + m)
}

// TestRecalibrateBN checks that the first batch norm's running mean moves
// from its initial 0 towards the batch mean of its input, and that the
// network is left in inference mode (two identical batches of different
// sizes give identical features).
func TestRecalibrateBN(t *testing.T) {
	dir := t.TempDir()
	const n, side = 16, 12
	img := make([]uint8, n*side*side)
	for i := range img {
		img[i] = uint8(100 + i%50)
	}
	ip := filepath.Join(dir, "x.npy")
	if err := npy.WriteUint8(ip, []int{n, side, side}, img); err != nil {
		t.Fatal(err)
	}
	ds, err := data.Open("npy:"+ip, data.Train, data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	be, err := backends.New("dnnl", 1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	net, err := model.NewNetwork(be, model.Spec{Arch: "resnet18", Stem: "cifar", Width: 2, InChannels: 1,
		Projector: "16-8", ZeroInit: true}, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	norm := data.Norm{Mean: []float32{0.5}, Std: []float32{0.25}}
	rm := net.Backbone.BN1.RunningMean.Value.Data
	before := append([]float32(nil), rm...)
	if err := model.RecalibrateBN(context.Background(), net, ds, side, norm, 4, 4); err != nil {
		t.Fatal(err)
	}
	moved := false
	for i := range rm {
		if rm[i] != before[i] {
			moved = true
		}
	}
	if !moved {
		t.Fatal("RecalibrateBN left bn1.running_mean unchanged")
	}
	a, _, _, err := model.Features(context.Background(), net, ds, side, norm, model.Backbone, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _, err := model.Features(context.Background(), net, ds, side, norm, model.Backbone, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("features depend on the batch size after RecalibrateBN: %v vs %v", a[i], b[i])
		}
	}
}
