package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// idxBytes builds an IDX stream by hand: magic, big-endian dims, data.
func idxBytes(magic uint32, dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// synthImages returns n h x w images whose pixel (i, y, x) is (31i + 7y + 3x) mod 256.
func synthImages(n, h, w int) []byte {
	b := make([]byte, n*h*w)
	for i := 0; i < n; i++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				b[(i*h+y)*w+x] = byte(31*i + 7*y + 3*x)
			}
		}
	}
	return b
}

// newMem builds an in-memory dataset for tests.
func newMem(n, h, w, c, classes int, pix []byte) *memDataset {
	d := &memDataset{name: "mem", n: n, h: h, w: w, c: c, pix: pix, classes: classes}
	if classes > 0 {
		d.labels = make([]int32, n)
		for i := range d.labels {
			d.labels[i] = int32(i % classes)
		}
	}
	return d
}

func mustErr(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: expected an error", what)
	}
}
