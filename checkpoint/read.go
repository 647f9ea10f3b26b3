package checkpoint

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
)

// ErrInvalid is wrapped by every error Read and Decode return for a malformed
// file (as opposed to an I/O error).
var ErrInvalid = errors.New("invalid safetensors file")

// MaxHeaderSize is the largest JSON header accepted, in bytes (100 MB, the
// limit of the reference implementation).
const MaxHeaderSize = 100_000_000

// memorySource names the input of Decode in error messages.
const memorySource = "<memory>"

// entry is one validated tensor description of a header.
type entry struct {
	name       string
	dtype      string
	shape      []int
	begin, end int64
}

// rawEntry is a tensor description as it appears in the JSON header.
// Pointers distinguish missing keys from empty values.
type rawEntry struct {
	DType   *string   `json:"dtype"`
	Shape   *[]int    `json:"shape"`
	Offsets *[]uint64 `json:"data_offsets"`
}

// invalid returns an ErrInvalid error naming the source and, when non-empty,
// the tensor.
func invalid(src, tensor, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if tensor != "" {
		return fmt.Errorf("checkpoint %s: tensor %q: %w: %s", src, tensor, ErrInvalid, msg)
	}
	return fmt.Errorf("checkpoint %s: %w: %s", src, ErrInvalid, msg)
}

// Decode parses a whole safetensors file held in b. It validates the header
// completely before allocating any tensor storage.
func Decode(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, invalid(memorySource, "", "file is %d bytes, shorter than the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if err := checkHeaderLen(memorySource, n, int64(len(b))); err != nil {
		return nil, err
	}
	hdr := b[8 : 8+n]
	data := b[8+n:]
	meta, entries, err := parseHeader(memorySource, hdr, int64(len(data)))
	if err != nil {
		return nil, err
	}
	return readTensors(memorySource, bytes.NewReader(data), meta, entries)
}

// Read reads and validates the safetensors file at path. Only the header is
// read before validation; tensor data is then streamed into typed slices.
func Read(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	size := st.Size()
	if size < 8 {
		return nil, invalid(path, "", "file is %d bytes, shorter than the 8-byte header length", size)
	}
	r := bufio.NewReaderSize(fh, 1<<16)
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, fmt.Errorf("checkpoint %s: reading header length: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if err := checkHeaderLen(path, n, size); err != nil {
		return nil, err
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("checkpoint %s: reading header: %w", path, err)
	}
	meta, entries, err := parseHeader(path, hdr, size-8-int64(n))
	if err != nil {
		return nil, err
	}
	return readTensors(path, r, meta, entries)
}

// checkHeaderLen validates the header length n of a file of size bytes.
func checkHeaderLen(src string, n uint64, size int64) error {
	if n > MaxHeaderSize {
		return invalid(src, "", "header length %d exceeds the %d byte limit", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return invalid(src, "", "header length %d exceeds the %d bytes after the length field", n, size-8)
	}
	return nil
}

// parseHeader decodes and validates the JSON header hdr for a data section of
// dataLen bytes. The entries it returns are sorted by data offset and tile
// [0, end of last tensor] exactly.
func parseHeader(src string, hdr []byte, dataLen int64) (map[string]string, []entry, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, invalid(src, "", "header JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, invalid(src, "", "header is not a JSON object")
	}
	var meta map[string]string
	var entries []entry
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, invalid(src, "", "header JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, invalid(src, "", "header key is not a string")
		}
		if seen[name] {
			return nil, nil, invalid(src, name, "duplicate name in header")
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, invalid(src, "", "__metadata__ is not an object of strings: %v", err)
			}
			continue
		}
		var raw rawEntry
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, invalid(src, name, "header entry: %v", err)
		}
		e, err := checkEntry(name, raw, dataLen)
		if err != nil {
			return nil, nil, invalid(src, name, "%v", err)
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, invalid(src, "", "header JSON: %v", err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		return nil, nil, invalid(src, "", "trailing data after the header object (%v, %v)", tok, err)
	}

	// The tensors must tile the data section from offset 0: sorted by
	// offset, each begins where the previous one ends.
	slices.SortStableFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(a.begin, b.begin); c != 0 {
			return c
		}
		return cmp.Compare(a.end, b.end)
	})
	var next int64
	prev := ""
	for _, e := range entries {
		switch {
		case e.begin < next:
			return nil, nil, invalid(src, e.name, "data [%d, %d) overlaps tensor %q, which ends at %d", e.begin, e.end, prev, next)
		case e.begin > next:
			return nil, nil, invalid(src, e.name, "data begins at %d, leaving bytes [%d, %d) uncovered", e.begin, next, e.begin)
		}
		next, prev = e.end, e.name
	}
	return meta, entries, nil
}

// checkEntry validates one tensor description against a data section of
// dataLen bytes.
func checkEntry(name string, raw rawEntry, dataLen int64) (entry, error) {
	if raw.DType == nil || raw.Shape == nil || raw.Offsets == nil {
		return entry{}, fmt.Errorf("entry needs dtype, shape and data_offsets")
	}
	size, err := dtypeSize(*raw.DType)
	if err != nil {
		return entry{}, err
	}
	count, err := numel(*raw.Shape)
	if err != nil {
		return entry{}, err
	}
	if count > maxInt/size {
		return entry{}, fmt.Errorf("byte size of shape %v overflows", *raw.Shape)
	}
	off := *raw.Offsets
	if len(off) != 2 {
		return entry{}, fmt.Errorf("data_offsets has %d values, want 2", len(off))
	}
	if off[0] > off[1] {
		return entry{}, fmt.Errorf("data_offsets [%d, %d] has begin > end", off[0], off[1])
	}
	if off[1] > uint64(dataLen) {
		return entry{}, fmt.Errorf("data_offsets [%d, %d] outside the %d-byte data section", off[0], off[1], dataLen)
	}
	if want := uint64(count) * uint64(size); off[1]-off[0] != want {
		return entry{}, fmt.Errorf("data_offsets [%d, %d] span %d bytes, shape %v of %s needs %d",
			off[0], off[1], off[1]-off[0], *raw.Shape, *raw.DType, want)
	}
	shape := append([]int{}, *raw.Shape...)
	return entry{name: name, dtype: *raw.DType, shape: shape, begin: int64(off[0]), end: int64(off[1])}, nil
}

// readTensors reads the data of the validated, offset-sorted entries from r,
// which is positioned at the start of the data section.
func readTensors(src string, r io.Reader, meta map[string]string, entries []entry) (*File, error) {
	f := &File{Metadata: meta, Tensors: make([]*Tensor, 0, len(entries))}
	buf := make([]byte, 1<<16)
	for _, e := range entries {
		size, _ := dtypeSize(e.dtype)
		count := int((e.end - e.begin) / int64(size))
		t := &Tensor{Name: e.name, DType: e.dtype, Shape: e.shape}
		switch e.dtype {
		case dtF32:
			t.F32 = make([]float32, count)
		case dtF64:
			t.F64 = make([]float64, count)
		case dtI64:
			t.I64 = make([]int64, count)
		}
		per := len(buf) / size
		for i := 0; i < count; i += per {
			m := min(per, count-i)
			b := buf[:m*size]
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, fmt.Errorf("checkpoint %s: tensor %q: reading data: %w", src, e.name, err)
			}
			for j := range m {
				switch e.dtype {
				case dtF32:
					t.F32[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
				case dtF64:
					t.F64[i+j] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*j:]))
				case dtI64:
					t.I64[i+j] = int64(binary.LittleEndian.Uint64(b[8*j:]))
				}
			}
		}
		f.Tensors = append(f.Tensors, t)
	}
	return f, nil
}
