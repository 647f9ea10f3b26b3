package data

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/npy"
)

func TestNPYDataset(t *testing.T) {
	dir := t.TempDir()
	ip := filepath.Join(dir, "x.npy")
	lp := filepath.Join(dir, "y.npy")
	if err := npy.WriteUint8(ip, []int{3, 2, 2, 3}, make([]uint8, 36)); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteInt32(lp, []int{3}, []int32{4, 0, 2}); err != nil {
		t.Fatal(err)
	}
	ds, err := Open("npy:"+ip+","+lp, Train, OpenOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 || ds.Channels() != 3 || ds.NumClasses() != 5 || ds.Label(0) != 4 {
		t.Fatalf("len %d ch %d classes %d", ds.Len(), ds.Channels(), ds.NumClasses())
	}
	grey, err := Open("npy:"+ip, Train, OpenOptions{})
	if err != nil || grey.NumClasses() != 0 || grey.Label(0) != -1 {
		t.Fatalf("unlabelled: %v", err)
	}
	npy.WriteInt64(lp, []int{3}, []int64{1, -1, 0})
	if _, err := Open("npy:"+ip+","+lp, Train, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "record 1") {
		t.Fatalf("negative label: %v", err)
	}
	npy.WriteInt64(lp, []int{2}, []int64{1, 1})
	if _, err := Open("npy:"+ip+","+lp, Train, OpenOptions{}); err == nil {
		t.Fatal("count mismatch should fail")
	}
	npy.WriteFloat32(ip, []int{1, 2, 2}, make([]float32, 4))
	if _, err := Open("npy:"+ip, Train, OpenOptions{}); err == nil {
		t.Fatal("float images should fail")
	}
	npy.WriteUint8(ip, []int{0, 2, 2}, nil)
	if _, err := Open("npy:"+ip, Train, OpenOptions{}); err == nil {
		t.Fatal("zero images should fail")
	}
	npy.WriteUint8(ip, []int{1, 2, 2, 2}, make([]uint8, 8))
	if _, err := Open("npy:"+ip, Train, OpenOptions{}); err == nil {
		t.Fatal("2-channel images should fail")
	}
}
