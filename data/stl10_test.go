package data

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// stlImage builds one stored STL-10 image: channel-major, each channel
// column-major, with value(y, x, c) = (y + 2x + 60c + seed) mod 256.
func stlImage(seed int) []byte {
	b := make([]byte, 0, stlPixels)
	for c := 0; c < 3; c++ {
		for x := 0; x < 96; x++ {
			for y := 0; y < 96; y++ {
				b = append(b, byte(y+2*x+60*c+seed))
			}
		}
	}
	return b
}

func TestSTL10(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "train_X.bin"), append(stlImage(0), stlImage(5)...))
	writeFile(t, filepath.Join(dir, "train_y.bin"), []byte{1, 10})
	writeFile(t, filepath.Join(dir, "test_X.bin"), stlImage(1))
	writeFile(t, filepath.Join(dir, "test_y.bin"), []byte{11})
	writeFile(t, filepath.Join(dir, "unlabeled_X.bin"), append(append(stlImage(7), stlImage(8)...), stlImage(9)...))
	ds, err := Open("stl10:"+dir, Train, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 || ds.Label(0) != 0 || ds.Label(1) != 9 || ds.Channels() != 3 {
		t.Fatalf("len %d labels %d %d", ds.Len(), ds.Label(0), ds.Label(1))
	}
	var im Image
	ds.Image(1, &im)
	y, x, c := 10, 3, 2
	if got, want := im.Pix[(y*96+x)*3+c], byte(y+2*x+60*c+5); got != want {
		t.Fatalf("pixel = %d want %d", got, want)
	}
	if _, err := Open("stl10:"+dir, Test, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "record 0") {
		t.Fatalf("label 11: %v", err)
	}
	un, err := Open("stl10:"+dir, Unlabeled, OpenOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer un.(interface{ Close() error }).Close()
	if un.Len() != 2 || un.NumClasses() != 0 || un.Label(0) != -1 {
		t.Fatalf("unlabeled len %d", un.Len())
	}
	if err := un.Image(1, &im); err != nil {
		t.Fatal(err)
	}
	if got, want := im.Pix[(y*96+x)*3+c], byte(y+2*x+60*c+8); got != want {
		t.Fatalf("lazy pixel = %d want %d", got, want)
	}
	if err := un.Image(2, &im); err == nil {
		t.Fatal("index beyond limit should fail")
	}
	writeFile(t, filepath.Join(dir, "unlabeled_X.bin"), stlImage(7)[:1000])
	if _, err := Open("stl10:"+dir, Unlabeled, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "unlabeled_X.bin") {
		t.Fatalf("truncated unlabeled: %v", err)
	}
}

func FuzzSTL10(f *testing.F) {
	f.Add(stlImage(0), []byte{3})
	f.Add(stlImage(0)[:500], []byte{})
	f.Fuzz(func(t *testing.T, x, y []byte) {
		ds, err := readSTL(bytes.NewReader(x), int64(len(x)), "x", bytes.NewReader(y), int64(len(y)), "y", "fuzz", 0)
		if err == nil {
			for i := 0; i < ds.Len(); i++ {
				if l := ds.Label(i); l < 0 || l > 9 {
					t.Fatalf("label %d", l)
				}
			}
		}
		if lz, err := newSTLLazy("fuzz", "x", bytes.NewReader(x), int64(len(x)), 0); err == nil {
			var im Image
			if err := lz.Image(0, &im); err != nil {
				t.Fatal(err)
			}
		}
	})
}
