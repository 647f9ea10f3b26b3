package data

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func pngBytes(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bombPNG is a PNG signature and a valid IHDR chunk declaring w x h RGBA.
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	data := make([]byte, 13)
	binary.BigEndian.PutUint32(data[0:], w)
	binary.BigEndian.PutUint32(data[4:], h)
	data[8], data[9] = 8, 6 // 8-bit RGBA
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	chunk := append([]byte("IHDR"), data...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestFolderLabelled(t *testing.T) {
	dir := t.TempDir()
	rgb := image.NewRGBA(image.Rect(0, 0, 3, 2))
	rgb.Set(1, 0, color.RGBA{10, 20, 30, 255})
	nrgba := image.NewNRGBA(image.Rect(0, 0, 5, 4))
	nrgba.Set(4, 3, color.NRGBA{200, 100, 50, 7})
	writeFile(t, filepath.Join(dir, "train", "cat", "a.png"), pngBytes(t, rgb))
	writeFile(t, filepath.Join(dir, "train", "cat", "b.jpg"), jpegBytes(t, 16, 8))
	writeFile(t, filepath.Join(dir, "train", "dog", "c.png"), pngBytes(t, nrgba))
	writeFile(t, filepath.Join(dir, "train", "dog", "sub", "d.png"), pngBytes(t, rgb))
	writeFile(t, filepath.Join(dir, "train", "dog", "corrupt.jpg"), []byte("\xff\xd8\xff\xe0garbage that is not a jpeg"))
	writeFile(t, filepath.Join(dir, "train", "dog", "empty.png"), nil)
	writeFile(t, filepath.Join(dir, "train", "dog", "notes.txt"), []byte("hello"))
	writeFile(t, filepath.Join(dir, "train", "dog", "bomb.png"), bombPNG(100000, 100000))
	writeFile(t, filepath.Join(dir, "train", "dog", ".hidden"), []byte("x"))
	writeFile(t, filepath.Join(dir, "val", "dog", "e.png"), pngBytes(t, rgb))
	// A symlink loop must not hang the scan.
	if err := os.Symlink(filepath.Join(dir, "train", "dog"), filepath.Join(dir, "train", "dog", "sub", "loop")); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ds, err := Open("folder:"+dir, Train, OpenOptions{Log: &log})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 16<<20 {
		t.Fatalf("open allocated %d bytes (bomb not refused before decoding?)", d)
	}
	if ds.Len() != 4 || ds.NumClasses() != 2 || ds.Channels() != 3 {
		t.Fatalf("len %d classes %d ch %d", ds.Len(), ds.NumClasses(), ds.Channels())
	}
	if ds.Label(0) != 0 || ds.Label(1) != 0 || ds.Label(2) != 1 || ds.Label(3) != 1 {
		t.Fatalf("labels %d %d %d %d", ds.Label(0), ds.Label(1), ds.Label(2), ds.Label(3))
	}
	l := log.String()
	for _, want := range []string{"corrupt.jpg", "empty.png: empty file", "notes.txt", "bomb.png", "exceeds", "skipped 4 of 8 files"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	if strings.Contains(l, ".hidden") {
		t.Errorf("hidden file reported:\n%s", l)
	}
	var im Image
	if err := ds.Image(0, &im); err != nil {
		t.Fatal(err)
	}
	if im.H != 2 || im.W != 3 || im.C != 3 || im.Pix[3] != 10 || im.Pix[4] != 20 || im.Pix[5] != 30 {
		t.Fatalf("a.png decoded %dx%dx%d %v", im.H, im.W, im.C, im.Pix[:6])
	}
	if err := ds.Image(2, &im); err != nil {
		t.Fatal(err)
	}
	// NRGBA: colour kept, alpha dropped (PIL convert("RGB")).
	if o := (3*5 + 4) * 3; im.Pix[o] != 200 || im.Pix[o+1] != 100 || im.Pix[o+2] != 50 {
		t.Fatalf("nrgba pixel %v", im.Pix[o:o+3])
	}
	if _, err := Open("folder:"+dir, Train, OpenOptions{Strict: true}); err == nil {
		t.Fatal("strict open should fail on the corrupt files")
	}
	te, err := Open("folder:"+dir, Test, OpenOptions{})
	if err != nil || te.Len() != 1 || te.Label(0) != 1 || te.NumClasses() != 2 {
		t.Fatalf("val split: %v", err)
	}
}

func TestFolderFlatGreyAndVerify(t *testing.T) {
	dir := t.TempDir()
	g := image.NewGray(image.Rect(0, 0, 4, 4))
	g.Pix[5] = 77
	writeFile(t, filepath.Join(dir, "x.png"), pngBytes(t, g))
	writeFile(t, filepath.Join(dir, "deep", "y.png"), pngBytes(t, g))
	jp := jpegBytes(t, 96, 96)
	writeFile(t, filepath.Join(dir, "trunc.jpg"), jp[:len(jp)*3/4])
	// A symlink loop in a flat folder, opened through a symlinked path.
	if err := os.Symlink(dir, filepath.Join(dir, "deep", "loop")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	ds, err := Open("folder:"+link, Unlabeled, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The truncated JPEG has a valid header: kept without Verify (and then
	// failing at decode time), and the mixed set is 3-channel.
	if ds.Len() != 3 || ds.NumClasses() != 0 || ds.Label(0) != -1 || ds.Channels() != 3 {
		t.Fatalf("len %d classes %d ch %d", ds.Len(), ds.NumClasses(), ds.Channels())
	}
	var im Image
	if err := ds.Image(1, &im); err == nil || !strings.Contains(err.Error(), "trunc.jpg") {
		t.Fatalf("decoding the truncated JPEG: %v", err)
	}
	ds, err = Open("folder:"+dir, Train, OpenOptions{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 || ds.Channels() != 1 {
		t.Fatalf("verify: len %d ch %d", ds.Len(), ds.Channels())
	}
	if err := ds.Image(0, &im); err != nil || im.C != 1 || im.Pix[5] != 77 {
		t.Fatalf("grey decode: %v", err)
	}
	if _, err := Open("folder:"+dir, Train, OpenOptions{Verify: true, Strict: true}); err == nil || !strings.Contains(err.Error(), "trunc.jpg") {
		t.Fatalf("strict verify: %v", err)
	}
	if _, err := Open("folder:"+dir, Test, OpenOptions{}); err == nil {
		t.Fatal("a flat folder has no test split")
	}
	if _, err := Open("folder:"+t.TempDir(), Train, OpenOptions{}); err == nil {
		t.Fatal("an empty folder should fail")
	}
}
