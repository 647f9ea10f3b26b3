// Package testutil makes the small datasets the tests of several packages
// train and evaluate on.
package testutil

import (
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/corinfomax/corinfomax/npy"
)

// TinyNPY writes n random 12x12 greyscale images (seed 7) with labels
// i % 3 as .npy files in a temporary directory and returns the dataset spec
// "npy:IMAGES,LABELS".
func TinyNPY(t testing.TB, n int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(7))
	img := make([]uint8, n*12*12)
	for i := range img {
		img[i] = uint8(rng.Intn(256))
	}
	lab := make([]int64, n)
	for i := range lab {
		lab[i] = int64(i % 3)
	}
	return WriteNPY(t, dir, img, []int{n, 12, 12}, lab)
}

// WriteNPY writes the images (uint8, of the given shape) and labels as
// x.npy and y.npy in dir and returns the dataset spec "npy:IMAGES,LABELS".
func WriteNPY(t testing.TB, dir string, img []uint8, shape []int, lab []int64) string {
	t.Helper()
	ip, lp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := npy.WriteUint8(ip, shape, img); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteInt64(lp, []int{len(lab)}, lab); err != nil {
		t.Fatal(err)
	}
	return "npy:" + ip + "," + lp
}
