package data

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// cifarRecord builds one record: label bytes then planar R, G, B where
// channel c of pixel p is (p + 50c + seed) mod 256.
func cifarRecord(labels []byte, seed int) []byte {
	r := append([]byte(nil), labels...)
	for c := 0; c < 3; c++ {
		for p := 0; p < 1024; p++ {
			r = append(r, byte(p+50*c+seed))
		}
	}
	return r
}

func TestCIFAR10(t *testing.T) {
	dir := t.TempDir()
	for i := 1; i <= 5; i++ {
		var b []byte
		for k := 0; k < 2; k++ {
			b = append(b, cifarRecord([]byte{byte(i + k)}, 10*i+k)...)
		}
		writeFile(t, filepath.Join(dir, "data_batch_"+string(rune('0'+i))+".bin"), b)
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), cifarRecord([]byte{9}, 3))
	ds, err := Open("cifar10:"+dir, Train, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 10 || ds.Channels() != 3 || ds.NumClasses() != 10 {
		t.Fatalf("len %d", ds.Len())
	}
	// Image 3 is record 1 of batch 2: label 3, seed 21.
	var im Image
	if err := ds.Image(3, &im); err != nil {
		t.Fatal(err)
	}
	if ds.Label(3) != 3 {
		t.Fatalf("label %d", ds.Label(3))
	}
	y, x := 5, 7
	p := y*32 + x
	for c := 0; c < 3; c++ {
		if got, want := im.Pix[(y*32+x)*3+c], byte(p+50*c+21); got != want {
			t.Fatalf("pixel (5,7,%d) = %d want %d", c, got, want)
		}
	}
	te, err := Open("cifar10:"+dir, Test, OpenOptions{})
	if err != nil || te.Len() != 1 || te.Label(0) != 9 {
		t.Fatalf("test: %v", err)
	}
	lim, err := Open("cifar10:"+dir, Train, OpenOptions{Limit: 3})
	if err != nil || lim.Len() != 3 || lim.Label(2) != 2 {
		t.Fatalf("limit: %v", err)
	}
	// A truncated batch and an out-of-range label.
	writeFile(t, filepath.Join(dir, "data_batch_3.bin"), cifarRecord([]byte{1}, 0)[:3000])
	if _, err := Open("cifar10:"+dir, Train, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "data_batch_3.bin") {
		t.Fatalf("truncated: %v", err)
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), append(cifarRecord([]byte{1}, 0), cifarRecord([]byte{10}, 0)...))
	if _, err := Open("cifar10:"+dir, Test, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "record 1") {
		t.Fatalf("label range: %v", err)
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), nil)
	if _, err := Open("cifar10:"+dir, Test, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "no images") {
		t.Fatalf("empty: %v", err)
	}
}

func TestCIFAR100(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x")
	sub := filepath.Join(dir, "cifar-100-binary")
	writeFile(t, filepath.Join(sub, "train.bin"), append(cifarRecord([]byte{19, 99}, 0), cifarRecord([]byte{3, 42}, 1)...))
	writeFile(t, filepath.Join(sub, "test.bin"), cifarRecord([]byte{0, 5}, 2))
	fine, err := Open("cifar100:"+dir, Train, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	coarse, err := Open("cifar100-coarse:"+dir, Train, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fine.NumClasses() != 100 || fine.Label(0) != 99 || fine.Label(1) != 42 {
		t.Fatalf("fine labels %d %d", fine.Label(0), fine.Label(1))
	}
	if coarse.NumClasses() != 20 || coarse.Label(0) != 19 || coarse.Label(1) != 3 {
		t.Fatalf("coarse labels %d %d", coarse.Label(0), coarse.Label(1))
	}
	var im Image
	fine.Image(1, &im)
	if im.Pix[0] != 1 || im.Pix[1] != 51 || im.Pix[2] != 101 {
		t.Fatalf("pixel 0 = %v", im.Pix[:3])
	}
	writeFile(t, filepath.Join(sub, "test.bin"), cifarRecord([]byte{20, 5}, 2))
	if _, err := Open("cifar100-coarse:"+dir, Test, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "label 20") {
		t.Fatalf("coarse out of range: %v", err)
	}
}

func FuzzCIFAR(f *testing.F) {
	f.Add(cifarRecord([]byte{3}, 0), false)
	f.Add(cifarRecord([]byte{3, 99}, 0), true)
	f.Add(cifarRecord([]byte{12}, 0)[:100], false)
	f.Fuzz(func(t *testing.T, b []byte, hundred bool) {
		fm := cifarFormat{1, 0, 10}
		if hundred {
			fm = cifarFormat{2, 1, 100}
		}
		n := len(b) / fm.recLen()
		ds := &memDataset{h: 32, w: 32, c: 3, classes: fm.classes, pix: make([]uint8, n*cifarPixels), labels: make([]int32, n)}
		err := readCIFAR(bytes.NewReader(b), int64(len(b)), "fuzz", fm, ds, n)
		if err != nil {
			return
		}
		if ds.n != n || len(b)%fm.recLen() != 0 {
			t.Fatalf("accepted %d bytes as %d records", len(b), ds.n)
		}
		for i := 0; i < ds.n; i++ {
			if l := ds.Label(i); l < 0 || l >= fm.classes {
				t.Fatalf("label %d", l)
			}
		}
	})
}
