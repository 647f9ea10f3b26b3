package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawFile builds a safetensors file by hand: length, header, data.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// f32le encodes float32 values little-endian.
func f32le(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func sampleFile() *File {
	return &File{
		Metadata: map[string]string{"format": "pt", "step": "12"},
		Tensors: []*Tensor{
			{Name: "w", DType: "F32", Shape: []int{2, 3}, F32: []float32{1, -2.5, 3, float32(math.Inf(1)), 0, -0}},
			{Name: "cov", DType: "F64", Shape: []int{2, 2}, F64: []float64{1, 1e-300, math.Pi, -7}},
			{Name: "step", DType: "I64", Shape: []int{}, I64: []int64{-(1 << 62)}},
			{Name: "empty", DType: "F32", Shape: []int{0, 4}},
			{Name: "b", DType: "F32", Shape: []int{1}, F32: []float32{float32(math.NaN())}},
		},
	}
}

// sameFile compares two files bit-exactly.
func sameFile(t *testing.T, got, want *File) {
	t.Helper()
	if len(got.Metadata) != len(want.Metadata) {
		t.Fatalf("metadata %v, want %v", got.Metadata, want.Metadata)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Fatalf("metadata[%q] = %q, want %q", k, got.Metadata[k], v)
		}
	}
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for i, w := range want.Tensors {
		g := got.Tensors[i]
		if g.Name != w.Name || g.DType != w.DType || len(g.Shape) != len(w.Shape) {
			t.Fatalf("tensor %d: got %s %s %v, want %s %s %v", i, g.Name, g.DType, g.Shape, w.Name, w.DType, w.Shape)
		}
		for j := range w.Shape {
			if g.Shape[j] != w.Shape[j] {
				t.Fatalf("tensor %s: shape %v, want %v", w.Name, g.Shape, w.Shape)
			}
		}
		if len(g.F32) != len(w.F32) || len(g.F64) != len(w.F64) || len(g.I64) != len(w.I64) {
			t.Fatalf("tensor %s: data lengths differ", w.Name)
		}
		for j := range w.F32 {
			if math.Float32bits(g.F32[j]) != math.Float32bits(w.F32[j]) {
				t.Fatalf("tensor %s[%d] = %v, want %v", w.Name, j, g.F32[j], w.F32[j])
			}
		}
		for j := range w.F64 {
			if math.Float64bits(g.F64[j]) != math.Float64bits(w.F64[j]) {
				t.Fatalf("tensor %s[%d] = %v, want %v", w.Name, j, g.F64[j], w.F64[j])
			}
		}
		for j := range w.I64 {
			if g.I64[j] != w.I64[j] {
				t.Fatalf("tensor %s[%d] = %v, want %v", w.Name, j, g.I64[j], w.I64[j])
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.safetensors")
	want := sampleFile()
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, got, want)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(b); (8+n)%8 != 0 {
		t.Errorf("data section starts at %d, not 8-byte aligned", 8+n)
	}
	got2, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, got2, want)
	if tt, ok := got.Get("cov"); !ok || tt.F64[2] != math.Pi {
		t.Errorf("Get(cov) = %v, %v", tt, ok)
	}
	if _, ok := got.Get("missing"); ok {
		t.Error("Get(missing) found a tensor")
	}
}

// TestDecodeHandBuilt checks the reader against a file laid out by hand,
// including tensors listed out of offset order and trailing padding.
func TestDecodeHandBuilt(t *testing.T) {
	hdr := `{"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},` +
		`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}`
	f, err := Decode(rawFile(hdr, append(f32le(1.5, -2, 7), 0, 0, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	want := &File{Metadata: map[string]string{"k": "v"}, Tensors: []*Tensor{
		{Name: "a", DType: "F32", Shape: []int{2}, F32: []float32{1.5, -2}},
		{Name: "b", DType: "F32", Shape: []int{1}, F32: []float32{7}},
	}}
	sameFile(t, f, want)
}

func TestWriteLayout(t *testing.T) {
	// The writer's bytes must equal an independently built layout.
	path := filepath.Join(t.TempDir(), "x.safetensors")
	err := Write(path, &File{Tensors: []*Tensor{{Name: "a", DType: "F32", Shape: []int{2}, F32: []float32{1.5, -2}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	if want := rawFile(hdr, f32le(1.5, -2)); !bytes.Equal(got, want) {
		t.Errorf("file bytes\n%q\nwant\n%q", got, want)
	}
}

func TestDecodeMalformed(t *testing.T) {
	huge := binary.LittleEndian.AppendUint64(nil, 200_000_000)
	huge = append(huge, make([]byte, 16)...)
	longLen := binary.LittleEndian.AppendUint64(nil, 100)
	longLen = append(longLen, `{}`...)
	ent := func(name, body string) string { return `{"` + name + `":` + body + `}` }
	cases := []struct {
		name   string
		file   []byte
		tensor string // must appear in the error
		msg    string // must appear in the error
	}{
		{"short", []byte{1, 2, 3}, "", "shorter than"},
		{"header too long for file", longLen, "", "exceeds the"},
		{"header over 100MB", huge, "", "byte limit"},
		{"bad json", rawFile(`{"a":`, nil), "a", "header entry"},
		{"bad json key", rawFile(`{"a`, nil), "", "header JSON"},
		{"not object", rawFile(`[1,2]`, nil), "", "not a JSON object"},
		{"trailing json", rawFile(`{} {}`, nil), "", "trailing data"},
		{"metadata not strings", rawFile(`{"__metadata__":{"a":1}}`, nil), "", "__metadata__"},
		{"unknown dtype", rawFile(ent("t", `{"dtype":"X7","shape":[1],"data_offsets":[0,4]}`), f32le(1)), "t", "unknown dtype"},
		{"unsupported dtype", rawFile(ent("t", `{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}`), f32le(1)), "t", "unsupported dtype"},
		{"missing key", rawFile(ent("t", `{"dtype":"F32","shape":[1]}`), f32le(1)), "t", "needs dtype"},
		{"negative shape", rawFile(ent("t", `{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}`), f32le(1)), "t", "negative"},
		{"shape overflow", rawFile(ent("t", `{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}`), f32le(1)), "t", "overflow"},
		{"byte size overflow", rawFile(ent("t", `{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}`), f32le(1)), "t", "overflow"},
		{"non-integer shape", rawFile(ent("t", `{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}`), f32le(1)), "t", "header entry"},
		{"size mismatch", rawFile(ent("t", `{"dtype":"F32","shape":[2],"data_offsets":[0,4]}`), f32le(1, 2)), "t", "needs 8"},
		{"outside data", rawFile(ent("t", `{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`), f32le(1)), "t", "outside"},
		{"begin after end", rawFile(ent("t", `{"dtype":"F32","shape":[0],"data_offsets":[4,0]}`), f32le(1)), "t", "begin > end"},
		{"negative offset", rawFile(ent("t", `{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}`), f32le(1)), "t", "header entry"},
		{"three offsets", rawFile(ent("t", `{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}`), f32le(1)), "t", "want 2"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32le(1, 2, 3)), "b", "overlaps"},
		{"gap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, f32le(1, 2, 3)), "b", "uncovered"},
		{"not from zero", rawFile(ent("a", `{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`), f32le(1, 2)), "a", "uncovered"},
		{"duplicate", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32le(1, 2)), "a", "duplicate"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.file)
			checkErr(t, err, memorySource, c.tensor, c.msg)
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = Read(path)
			checkErr(t, err, path, c.tensor, c.msg)
		})
	}
}

func checkErr(t *testing.T, err error, src, tensor, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %q does not wrap ErrInvalid", err)
	}
	s := err.Error()
	if !strings.Contains(s, src) || !strings.Contains(s, msg) || (tensor != "" && !strings.Contains(s, `"`+tensor+`"`)) {
		t.Errorf("error %q should name %q, tensor %q and say %q", s, src, tensor, msg)
	}
}

func TestWriteRejectsInvalid(t *testing.T) {
	dir := t.TempDir()
	bad := []*File{
		{Tensors: []*Tensor{{Name: "a", DType: "F32", Shape: []int{3}, F32: []float32{1}}}},
		{Tensors: []*Tensor{{Name: "a", DType: "F16", Shape: []int{1}}}},
		{Tensors: []*Tensor{{Name: "a", DType: "F32", Shape: []int{1}, F32: []float32{1}}, {Name: "a", DType: "F32", Shape: []int{1}, F32: []float32{1}}}},
		{Tensors: []*Tensor{{Name: "__metadata__", DType: "F32", Shape: []int{}, F32: []float32{1}}}},
		{Tensors: []*Tensor{{Name: "a", DType: "F32", Shape: []int{1}, F32: []float32{1}, I64: []int64{1}}}},
		{Tensors: []*Tensor{nil}},
	}
	for i, f := range bad {
		path := filepath.Join(dir, "bad.safetensors")
		if err := Write(path, f); err == nil {
			t.Errorf("case %d: Write accepted an invalid file", i)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("case %d: file created despite the error", i)
		}
	}
	assertNoTemp(t, dir)
}

// failAfter is a writer that fails after n bytes.
type failAfter struct {
	w io.Writer
	n int
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k, _ := f.w.Write(p[:f.n])
		f.n = 0
		return k, errors.New("injected write failure")
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestTornWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")
	old := sampleFile()
	if err := Write(path, old); err != nil {
		t.Fatal(err)
	}
	big := &File{Tensors: []*Tensor{{Name: "w", DType: "F32", Shape: []int{100000}, F32: make([]float32, 100000)}}}

	// A write that fails half-way through the data.
	err := write(path, big, func(w io.Writer) io.Writer { return &failAfter{w: w, n: 200000} })
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("write error = %v, want the injected failure", err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatalf("old file unreadable after a torn write: %v", err)
	}
	sameFile(t, got, old)
	assertNoTemp(t, dir)

	// A write whose rename fails: the target is a non-empty directory.
	target := filepath.Join(dir, "isdir")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(target, big); err == nil {
		t.Error("Write over a directory succeeded")
	}
	assertNoTemp(t, dir)

	// A write into a missing directory.
	if err := Write(filepath.Join(dir, "missing", "a.safetensors"), old); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
	got, err = Read(path)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, got, old)
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestReadMissingFile(t *testing.T) {
	if _, err := Read(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Read of a missing file succeeded")
	}
}
