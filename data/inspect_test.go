package data

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	// Two 1x2 RGB images: channel 0 values {0, 255, 255, 255}, channel 1
	// all 51, channel 2 {0, 0, 0, 102}.
	pix := []byte{0, 51, 0, 255, 51, 0, 255, 51, 0, 255, 51, 102}
	ds := newMem(2, 1, 2, 3, 3, pix)
	st, err := Inspect(ds)
	if err != nil {
		t.Fatal(err)
	}
	wantMean := []float64{0.75, 0.2, 0.1}
	wantStd := []float64{math.Sqrt(0.75 * 0.25), 0, math.Sqrt(0.25*0.16 - 0.01)}
	for k := 0; k < 3; k++ {
		if !near(st.Mean[k], wantMean[k], 1e-12) || !near(st.Std[k], wantStd[k], 1e-12) {
			t.Fatalf("channel %d: mean %v std %v want %v %v", k, st.Mean[k], st.Std[k], wantMean[k], wantStd[k])
		}
	}
	if st.Len != 2 || len(st.Shapes) != 1 || st.Shapes[0] != (ShapeCount{1, 2, 3, 2}) || st.ClassCounts[0] != 1 || st.ClassCounts[1] != 1 || st.ClassCounts[2] != 0 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(st.String(), "0.7500 0.2000 0.1000") {
		t.Fatalf("String():\n%s", st)
	}
}

func TestPreview(t *testing.T) {
	ds := testDS()
	out := filepath.Join(t.TempDir(), "p.png")
	if err := Preview(ds, PaperPipeline(12, DefaultNorm("cifar10", 3)), 3, 1, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Cells of 12 px enlarged 8x to 96, 4 px gaps: 3*96+16 by 3*96+16.
	if b := img.Bounds(); b.Dx() != 304 || b.Dy() != 304 {
		t.Fatalf("preview %v", b)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".preview-*")); len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
}

func TestDefaultNorm(t *testing.T) {
	n := DefaultNorm("fashion-mnist:/x", 1)
	if n.Mean[0] != 0.2860 || n.Std[0] != 0.3530 {
		t.Fatal(n)
	}
	n = DefaultNorm("cifar100-coarse:/x", 3)
	if n.Mean[2] != 0.4409 || n.Std[0] != 0.2673 {
		t.Fatal(n)
	}
	n = DefaultNorm("folder:/x", 3)
	if n.Mean[0] != 0.485 || n.Std[2] != 0.225 {
		t.Fatal(n)
	}
	n = DefaultNorm("npy:/x.npy", 1)
	if n.Mean[0] != 0.5 || n.Std[0] != 0.25 {
		t.Fatal(n)
	}
	n = DefaultNorm("mnist", 3)
	if len(n.Mean) != 3 || n.Mean[2] != 0.1307 {
		t.Fatal(n)
	}
}
