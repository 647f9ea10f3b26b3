package data

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func collect(t *testing.T, l *Loader, epoch, start int) []Batch {
	t.Helper()
	it := l.Epoch(context.Background(), epoch, start)
	defer it.Close()
	var out []Batch
	for {
		b, err := it.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c := *b
		c.X[0] = append([]float32(nil), b.X[0]...)
		if b.X[1] != nil {
			c.X[1] = append([]float32(nil), b.X[1]...)
		}
		c.Labels = append([]int(nil), b.Labels...)
		c.Indices = append([]int(nil), b.Indices...)
		out = append(out, c)
	}
}

func testDS() *memDataset {
	return newMem(23, 12, 12, 3, 4, func() []byte {
		b := make([]byte, 23*12*12*3)
		for i := range b {
			b[i] = byte(i * 13)
		}
		return b
	}())
}

func sameBatches(a, b []Batch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].N != b[i].N || len(a[i].X[0]) != len(b[i].X[0]) {
			return false
		}
		for v := 0; v < 2; v++ {
			for k := range a[i].X[v] {
				if a[i].X[v][k] != b[i].X[v][k] {
					return false
				}
			}
		}
		for k := range a[i].Indices {
			if a[i].Indices[k] != b[i].Indices[k] || a[i].Labels[k] != b[i].Labels[k] {
				return false
			}
		}
	}
	return true
}

func TestLoaderDeterminism(t *testing.T) {
	ds := testDS()
	cfg := LoaderConfig{Batch: 5, Workers: 1, Seed: 42, Shuffle: true, Views: 2,
		Pipeline: PaperPipeline(8, DefaultNorm("cifar10", 3))}
	l1, err := NewLoader(ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Workers = 3
	l3, _ := NewLoader(ds, cfg)
	if l1.StepsPerEpoch() != 5 {
		t.Fatalf("steps %d want 5", l1.StepsPerEpoch())
	}
	a, b := collect(t, l1, 3, 0), collect(t, l3, 3, 0)
	if !sameBatches(a, b) {
		t.Fatal("batches differ between Workers 1 and 3")
	}
	if a[4].N != 3 || len(a[4].X[0]) != 3*8*8*3 || a[0].H != 8 || a[0].C != 3 {
		t.Fatalf("last batch N %d", a[4].N)
	}
	// Each index appears once per epoch; labels follow the dataset.
	seen := map[int]bool{}
	for _, bt := range a {
		for k, idx := range bt.Indices {
			if seen[idx] || bt.Labels[k] != ds.Label(idx) {
				t.Fatalf("index %d repeated or label wrong", idx)
			}
			seen[idx] = true
		}
	}
	if len(seen) != 23 {
		t.Fatalf("%d distinct indices", len(seen))
	}
	// Another epoch shuffles and augments differently; the two views differ.
	if sameBatches(a, collect(t, l1, 4, 0)) {
		t.Fatal("epochs 3 and 4 are identical")
	}
	diff := false
	for k := range a[0].X[0] {
		diff = diff || a[0].X[0][k] != a[0].X[1][k]
	}
	if !diff {
		t.Fatal("the two views are identical")
	}
	// Resuming at step 2 gives the tail of the epoch.
	if !sameBatches(a[2:], collect(t, l3, 3, 2)) {
		t.Fatal("resumed epoch differs from the tail")
	}
	// Drop-last.
	cfg.DropLast = true
	ld, _ := NewLoader(ds, cfg)
	if ld.StepsPerEpoch() != 4 || len(collect(t, ld, 0, 0)) != 4 {
		t.Fatal("drop-last steps")
	}
	cfg.Batch = 30
	if _, err := NewLoader(ds, cfg); err == nil {
		t.Fatal("a batch larger than the dataset with drop-last should fail")
	}
}

func TestLoaderEvalIdentity(t *testing.T) {
	ds := testDS()
	norm := Norm{Mean: []float32{0.1, 0.2, 0.3}, Std: []float32{0.5, 0.25, 2}}
	l, err := NewLoader(ds, LoaderConfig{Batch: 4, Workers: 2, Views: 1, Eval: true, Pipeline: IdentityPipeline(12, norm)})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, l, 0, 0)
	var im Image
	for _, b := range bs {
		if b.X[1] != nil {
			t.Fatal("one view requested, X[1] not nil")
		}
		for k, idx := range b.Indices {
			ds.Image(idx, &im)
			for i, v := range im.Pix {
				c := i % 3
				want := (float32(v)/255 - norm.Mean[c]) / norm.Std[c]
				if got := b.X[0][k*12*12*3+i]; got != want {
					t.Fatalf("image %d value %d: %v want %v", idx, i, got, want)
				}
			}
		}
	}
	// Identity views (no Eval) give the same.
	l2, _ := NewLoader(ds, LoaderConfig{Batch: 4, Workers: 2, Views: 2, Pipeline: IdentityPipeline(0, norm)})
	b2 := collect(t, l2, 0, 0)
	for i := range bs {
		for k := range bs[i].X[0] {
			if bs[i].X[0][k] != b2[i].X[0][k] || b2[i].X[1][k] != b2[i].X[0][k] {
				t.Fatal("identity pipeline differs from eval at native size")
			}
		}
	}
}

func TestLoaderCancelNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	ds := testDS()
	l, _ := NewLoader(ds, LoaderConfig{Batch: 2, Workers: 3, Views: 2, Shuffle: true, Pipeline: PaperPipeline(8, DefaultNorm("cifar10", 3))})
	ctx, cancel := context.WithCancel(context.Background())
	it := l.Epoch(ctx, 0, 0)
	if _, err := it.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := it.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
	it.Close()
	// Closing without reading anything.
	it = l.Epoch(context.Background(), 1, 0)
	it.Close()
	it.Close()
	if _, err := it.Next(); err == nil {
		t.Fatal("Next after Close should fail")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines before, %d after", before, n)
	}
}

func TestLoaderDecodeError(t *testing.T) {
	dir := t.TempDir()
	jp := jpegBytes(t, 96, 96)
	writeFile(t, filepath.Join(dir, "a.jpg"), jp)
	writeFile(t, filepath.Join(dir, "b.jpg"), jp[:len(jp)*3/4])
	ds, err := Open("folder:"+dir, Train, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(ds, LoaderConfig{Batch: 2, Workers: 1, Views: 1, Pipeline: PaperPipeline(16, DefaultNorm("folder", 3))})
	if err != nil {
		t.Fatal(err)
	}
	it := l.Epoch(context.Background(), 0, 0)
	defer it.Close()
	if _, err := it.Next(); err == nil {
		t.Fatal("a truncated JPEG should fail the batch")
	}
}

// BenchmarkLoaderCIFAR measures two-view 32x32x3 batches of 256 with the
// paper pipeline and 2 workers.
func BenchmarkLoaderCIFAR(b *testing.B) {
	const n = 2048
	pix := make([]byte, n*32*32*3)
	for i := range pix {
		pix[i] = byte(i*7 + i/97)
	}
	ds := newMem(n, 32, 32, 3, 10, pix)
	l, err := NewLoader(ds, LoaderConfig{Batch: 256, Workers: 2, Views: 2, Shuffle: true, DropLast: true,
		Pipeline: PaperPipeline(32, DefaultNorm("cifar10", 3))})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	images := 0
	for epoch := 0; images < b.N*256; epoch++ {
		it := l.Epoch(context.Background(), epoch, 0)
		for images < b.N*256 {
			bt, err := it.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			images += bt.N
		}
		it.Close()
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
}

// TestLoaderShards checks that the shards of a batch, put side by side, are
// the whole batch: same images, same augmentations, same order.
func TestLoaderShards(t *testing.T) {
	ds := testDS()
	cfg := LoaderConfig{Batch: 6, Workers: 2, Seed: 7, Shuffle: true, DropLast: true, Views: 2,
		Pipeline: PaperPipeline(8, DefaultNorm("cifar10", 3))}
	whole, err := NewLoader(ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := collect(t, whole, 2, 1)
	for _, shards := range []int{2, 3} {
		var parts [][]Batch
		for r := 0; r < shards; r++ {
			c := cfg
			c.Shard, c.Shards = r, shards
			l, err := NewLoader(ds, c)
			if err != nil {
				t.Fatal(err)
			}
			if l.ShardBatch() != 6/shards || l.StepsPerEpoch() != whole.StepsPerEpoch() {
				t.Fatalf("%d shards: %d images and %d steps", shards, l.ShardBatch(), l.StepsPerEpoch())
			}
			parts = append(parts, collect(t, l, 2, 1))
		}
		var got []Batch
		for s := range want {
			b := parts[0][s]
			for r := 1; r < shards; r++ {
				p := parts[r][s]
				b.N += p.N
				b.X[0] = append(append([]float32(nil), b.X[0]...), p.X[0]...)
				b.X[1] = append(append([]float32(nil), b.X[1]...), p.X[1]...)
				b.Labels = append(append([]int(nil), b.Labels...), p.Labels...)
				b.Indices = append(append([]int(nil), b.Indices...), p.Indices...)
			}
			got = append(got, b)
		}
		if !sameBatches(got, want) {
			t.Fatalf("%d shards side by side differ from the whole batches", shards)
		}
	}
	for _, bad := range []struct{ batch, shard, shards int }{{6, 0, 4}, {6, 2, 2}, {6, -1, 2}} {
		c := cfg
		c.Batch, c.Shard, c.Shards = bad.batch, bad.shard, bad.shards
		if _, err := NewLoader(ds, c); err == nil {
			t.Fatalf("batch %d shard %d of %d accepted", bad.batch, bad.shard, bad.shards)
		}
	}
}
