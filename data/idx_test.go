package data

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeIDXSet(t *testing.T, dir, prefix string, n, h, w int, labels []byte, gzipped bool) {
	img := idxBytes(idxImagesMagic, []uint32{uint32(n), uint32(h), uint32(w)}, synthImages(n, h, w))
	lab := idxBytes(idxLabelsMagic, []uint32{uint32(len(labels))}, labels)
	ext := ""
	if gzipped {
		img, lab, ext = gz(img), gz(lab), ".gz"
	}
	writeFile(t, filepath.Join(dir, prefix+"-images-idx3-ubyte"+ext), img)
	writeFile(t, filepath.Join(dir, prefix+"-labels-idx1-ubyte"+ext), lab)
}

func TestIDXOpen(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := t.TempDir()
		writeIDXSet(t, dir, "train", 5, 4, 3, []byte{0, 1, 9, 3, 4}, gzipped)
		writeIDXSet(t, dir, "t10k", 2, 4, 3, []byte{7, 8}, gzipped)
		ds, err := Open("mnist:"+dir, Train, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != 5 || ds.Channels() != 1 || ds.NumClasses() != 10 || ds.Label(2) != 9 {
			t.Fatalf("len %d ch %d classes %d label %d", ds.Len(), ds.Channels(), ds.NumClasses(), ds.Label(2))
		}
		if want := "mnist:" + dir + " (train)"; ds.Name() != want {
			t.Fatalf("name %q want %q", ds.Name(), want)
		}
		var im Image
		if err := ds.Image(3, &im); err != nil {
			t.Fatal(err)
		}
		// pixel (3, y=2, x=1) = 31*3 + 14 + 3
		if im.H != 4 || im.W != 3 || im.C != 1 || im.Pix[2*3+1] != byte(93+14+3) {
			t.Fatalf("image %dx%dx%d pix %d", im.H, im.W, im.C, im.Pix[7])
		}
		te, err := Open("fashion-mnist:"+dir, Test, OpenOptions{})
		if err != nil || te.Len() != 2 || te.Label(1) != 8 {
			t.Fatalf("test split: %v", err)
		}
		lim, err := Open("mnist:"+dir, Train, OpenOptions{Limit: 2})
		if err != nil || lim.Len() != 2 || lim.Label(1) != 1 {
			t.Fatalf("limit: %v", err)
		}
		un, err := Open("mnist:"+dir, Unlabeled, OpenOptions{})
		if err != nil || un.Len() != 5 || un.NumClasses() != 0 || un.Label(0) != -1 || !strings.HasSuffix(un.Name(), "(unlabeled)") {
			t.Fatalf("unlabeled: %v", err)
		}
	}
}

func TestIDXErrors(t *testing.T) {
	good := synthImages(3, 2, 2)
	cases := []struct {
		name      string
		img, lab  []byte
		wantInErr string
	}{
		{"wrong image magic", idxBytes(0x802, []uint32{3, 2}, good), idxBytes(idxLabelsMagic, []uint32{3}, []byte{0, 1, 2}), "magic"},
		{"wrong label magic", idxBytes(idxImagesMagic, []uint32{3, 2, 2}, good), idxBytes(0x803, []uint32{3, 1, 1}, []byte{0, 1, 2}), "magic"},
		{"truncated images", idxBytes(idxImagesMagic, []uint32{3, 2, 2}, good[:11]), idxBytes(idxLabelsMagic, []uint32{3}, []byte{0, 1, 2}), "bytes"},
		{"truncated header", []byte{0, 0, 8, 3, 0, 0}, idxBytes(idxLabelsMagic, []uint32{3}, []byte{0, 1, 2}), "dimensions"},
		{"label out of range", idxBytes(idxImagesMagic, []uint32{3, 2, 2}, good), idxBytes(idxLabelsMagic, []uint32{3}, []byte{0, 10, 2}), "record 1"},
		{"count mismatch", idxBytes(idxImagesMagic, []uint32{3, 2, 2}, good), idxBytes(idxLabelsMagic, []uint32{2}, []byte{0, 1}), "labels"},
		{"zero images", idxBytes(idxImagesMagic, []uint32{0, 2, 2}, nil), idxBytes(idxLabelsMagic, []uint32{0}, nil), "no images"},
		{"huge declared", idxBytes(idxImagesMagic, []uint32{1 << 30, 1 << 10, 1 << 10}, good), idxBytes(idxLabelsMagic, []uint32{3}, []byte{0, 1, 2}), "declare"},
		{"empty file", nil, idxBytes(idxLabelsMagic, []uint32{3}, []byte{0, 1, 2}), "magic"},
	}
	for _, c := range cases {
		for _, gzipped := range []bool{false, true} {
			dir := t.TempDir()
			img, lab, ext := c.img, c.lab, ""
			if gzipped {
				img, lab, ext = gz(img), gz(lab), ".gz"
			}
			ip := filepath.Join(dir, "train-images-idx3-ubyte"+ext)
			writeFile(t, ip, img)
			writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"+ext), lab)
			_, err := Open("mnist:"+dir, Train, OpenOptions{})
			if err == nil {
				t.Errorf("%s (gz %v): expected an error", c.name, gzipped)
				continue
			}
			if !strings.Contains(err.Error(), c.wantInErr) || !strings.Contains(err.Error(), dir) {
				t.Errorf("%s (gz %v): error %q lacks %q or the path", c.name, gzipped, err, c.wantInErr)
			}
		}
	}
	// A count mismatch is reported even when Limit reads fewer items.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte"), idxBytes(idxImagesMagic, []uint32{3, 2, 2}, good))
	writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), gz(idxBytes(idxLabelsMagic, []uint32{2}, []byte{0, 1})))
	if _, err := Open("mnist:"+dir, Train, OpenOptions{Limit: 1}); err == nil || !strings.Contains(err.Error(), "2 labels") {
		t.Errorf("count mismatch with limit: %v", err)
	}
	if _, err := Open("mnist:"+t.TempDir(), Train, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing files: %v", err)
	}
	if _, err := Open("mnist", Train, OpenOptions{}); err == nil {
		t.Error("mnist without a path should fail")
	}
	if _, err := Open("imagenet:/x", Train, OpenOptions{}); err == nil {
		t.Error("unknown kind should fail")
	}
}

func TestFashionMNISTInstalled(t *testing.T) {
	if _, err := os.Stat(DefaultFashionMNISTDir); err != nil {
		t.Skip("dataset-fashion-mnist not installed")
	}
	ds, err := Open("fashion-mnist", Test, OpenOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 100 || ds.Channels() != 1 || ds.NumClasses() != 10 {
		t.Fatalf("len %d ch %d classes %d", ds.Len(), ds.Channels(), ds.NumClasses())
	}
	if ds.Name() != "fashion-mnist:/usr/share/datasets/fashion-mnist (test)" {
		t.Fatalf("name %q", ds.Name())
	}
	var im Image
	if err := ds.Image(0, &im); err != nil || im.H != 28 || im.W != 28 {
		t.Fatalf("image: %v %dx%d", err, im.H, im.W)
	}
	// The first test image of Fashion-MNIST is an ankle boot (class 9).
	if ds.Label(0) != 9 {
		t.Fatalf("label 0 = %d, want 9", ds.Label(0))
	}
}

func FuzzIDX(f *testing.F) {
	f.Add(idxBytes(idxImagesMagic, []uint32{2, 2, 2}, synthImages(2, 2, 2)), idxBytes(idxLabelsMagic, []uint32{2}, []byte{1, 2}))
	f.Add(idxBytes(idxImagesMagic, []uint32{1, 1, 1}, []byte{5}), idxBytes(idxLabelsMagic, []uint32{1}, []byte{11}))
	f.Add([]byte{0, 0, 8, 3, 255, 255, 255, 255}, []byte{0, 0, 8, 1})
	f.Fuzz(func(t *testing.T, img, lab []byte) {
		for _, size := range []int{len(img), -1} {
			idims, pix, err := readIDX(bytes.NewReader(img), int64(size), "img", idxImagesMagic, 0)
			if err != nil {
				continue
			}
			if len(idims) != 3 || len(pix) != idims[0]*idims[1]*idims[2] {
				t.Fatalf("dims %v with %d bytes", idims, len(pix))
			}
			ldims, l, err := readIDX(bytes.NewReader(lab), int64(len(lab)), "lab", idxLabelsMagic, 0)
			if err != nil {
				continue
			}
			ds, err := newIDXDataset("fuzz", "img", "lab", idims, pix, ldims, l, 10)
			if err != nil {
				continue
			}
			var im Image
			for i := 0; i < ds.Len() && i < 4; i++ {
				if err := ds.Image(i, &im); err != nil {
					t.Fatal(err)
				}
				if ds.Label(i) < 0 || ds.Label(i) >= 10 {
					t.Fatalf("label %d", ds.Label(i))
				}
			}
		}
	})
}
