package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawNPY builds a .npy stream by hand (independently of Write).
func rawNPY(major byte, dict string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(dict)))
	}
	b.WriteString(dict)
	b.Write(data)
	return b.Bytes()
}

func TestReadHandBuiltVersions(t *testing.T) {
	data := make([]byte, 12)
	for i, v := range []float32{1.5, -2, 3.25} {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	for _, major := range []byte{1, 2, 3} {
		b := rawNPY(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }   \n", data)
		a, err := Read(bytes.NewReader(b), int64(len(b)), "x.npy")
		if err != nil {
			t.Fatalf("v%d: %v", major, err)
		}
		f, err := a.Float32()
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != 3 || f[0] != 1.5 || f[1] != -2 || f[2] != 3.25 || len(a.Shape) != 1 || a.Shape[0] != 3 {
			t.Fatalf("v%d: got %v shape %v", major, f, a.Shape)
		}
	}
}

func TestBigEndianAndInts(t *testing.T) {
	data := []byte{0xff, 0xfe, 0x00, 0x02} // >i2: -2, 2
	b := rawNPY(1, "{'shape': (2,), 'fortran_order': False, 'descr': '>i2'}\n", data)
	a, err := Read(bytes.NewReader(b), int64(len(b)), "be.npy")
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.Int64()
	if err != nil {
		t.Fatal(err)
	}
	if v[0] != -2 || v[1] != 2 {
		t.Fatalf("got %v, want [-2 2]", v)
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.npy")
	want := []float32{0, 1, -1.5, 3e10, float32(math.Inf(1)), 7}
	if err := WriteFloat32(p, []int{2, 3}, want); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	if (len(raw)-len(want)*4)%64 != 0 || raw[len(raw)-len(want)*4-1] != '\n' {
		t.Fatalf("header not padded to 64 bytes ending in newline (file %d bytes)", len(raw))
	}
	a, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := a.Float32()
	if a.Descr != "<f4" || len(a.Shape) != 2 || a.Shape[0] != 2 || a.Shape[1] != 3 {
		t.Fatalf("header %+v", a.Header)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d: %v != %v", i, got[i], want[i])
		}
	}
	if err := WriteInt64(p, []int{3}, []int64{-1, 5, 1 << 40}); err != nil {
		t.Fatal(err)
	}
	a, err = ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	iv, _ := a.Int64()
	if iv[0] != -1 || iv[1] != 5 || iv[2] != 1<<40 {
		t.Fatalf("int64 round trip %v", iv)
	}
	if err := WriteInt32(p, []int{2}, []int32{-7, 9}); err != nil {
		t.Fatal(err)
	}
	a, _ = ReadFile(p)
	iv, _ = a.Int64()
	if a.Descr != "<i4" || iv[0] != -7 || iv[1] != 9 {
		t.Fatalf("int32 round trip %s %v", a.Descr, iv)
	}
	if err := WriteUint8(p, []int{1, 2, 2}, []uint8{1, 2, 3, 255}); err != nil {
		t.Fatal(err)
	}
	a, _ = ReadFile(p)
	u, err := a.Uint8()
	if err != nil || u[3] != 255 || len(a.Shape) != 3 {
		t.Fatalf("uint8 round trip %v %v %v", u, a.Shape, err)
	}
	if err := WriteFloat64(p, []int{}, []float64{2.5}); err != nil {
		t.Fatal(err)
	}
	a, _ = ReadFile(p)
	f, _ := a.Float32()
	if len(a.Shape) != 0 || f[0] != 2.5 {
		t.Fatalf("scalar round trip %v %v", a.Shape, f)
	}
}

func TestRejects(t *testing.T) {
	ok := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n"
	cases := map[string][]byte{
		"bad magic":     append([]byte("\x93NUMPX\x01\x00"), 0, 0),
		"version":       rawNPY(9, ok, make([]byte, 16)),
		"truncated":     rawNPY(1, ok, make([]byte, 15)),
		"extra data":    rawNPY(1, ok, make([]byte, 17)),
		"fortran":       rawNPY(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", make([]byte, 16)),
		"dtype":         rawNPY(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n", make([]byte, 16)),
		"object":        rawNPY(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n", make([]byte, 16)),
		"missing shape": rawNPY(1, "{'descr': '<f4', 'fortran_order': False}\n", make([]byte, 4)),
		"huge shape":    rawNPY(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 100000000000), }\n", nil),
		"neg":           rawNPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", nil),
		"header short":  []byte("\x93NUMPY\x01\x00\xff\x00{'descr'"),
		"empty":         nil,
	}
	for name, b := range cases {
		if _, err := Read(bytes.NewReader(b), int64(len(b)), "bad.npy"); err == nil {
			t.Errorf("%s: expected an error", name)
		} else if !strings.Contains(err.Error(), "bad.npy") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
		// Unknown size: the data is read incrementally.
		if _, err := Read(bytes.NewReader(b), -1, "bad.npy"); err == nil && name != "extra data" {
			t.Errorf("%s (streamed): expected an error", name)
		}
	}
	a, err := Read(bytes.NewReader(rawNPY(1, ok, make([]byte, 16))), -1, "ok.npy")
	if err != nil || len(a.Data) != 16 {
		t.Fatalf("streamed valid read: %v", err)
	}
	if _, err := a.Uint8(); err == nil {
		t.Error("Uint8 of a float array should fail")
	}
	if _, err := a.Int64(); err == nil {
		t.Error("Int64 of a float array should fail")
	}
}

func FuzzNPY(f *testing.F) {
	f.Add(rawNPY(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", []byte{0, 0, 128, 63}))
	f.Add(rawNPY(2, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1), }\n", []byte{1, 2}))
	f.Add(rawNPY(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }\n", make([]byte, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, size := range []int64{int64(len(b)), -1} {
			a, err := Read(bytes.NewReader(b), size, "fuzz.npy")
			if err != nil {
				continue
			}
			n, err := a.DataLen()
			if err != nil || n != int64(len(a.Data)) {
				t.Fatalf("accepted array with %d bytes for header %+v (%v)", len(a.Data), a.Header, err)
			}
			a.Float32()
			a.Int64()
			a.Uint8()
		}
	})
}
