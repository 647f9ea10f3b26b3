package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Write stores f at path in the safetensors format, atomically: it writes
// path+".tmp-*" in the same directory, fsyncs it, renames it over path and
// fsyncs the directory. On any error the previous file at path is left
// intact and the temporary file is removed. Tensors are stored in slice
// order; names must be unique, non-empty and not "__metadata__".
func Write(path string, f *File) error {
	return write(path, f, nil)
}

// write is Write with an optional wrapper around the temporary file's
// writer, which tests use to inject failures.
func write(path string, f *File, wrap func(io.Writer) io.Writer) (err error) {
	hdr, err := encodeHeader(f)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	if wrap != nil {
		w = wrap(w)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	if _, err := bw.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if _, err := bw.Write(hdr); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	for _, t := range f.Tensors {
		if err := writeData(bw, t); err != nil {
			return fmt.Errorf("checkpoint %s: tensor %q: %w", path, t.Name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("checkpoint %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	// The file is in place; a failed directory fsync is still reported.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("checkpoint %s: opening directory for fsync: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("checkpoint %s: fsync directory: %w", path, err)
	}
	return nil
}

// headerEntry is the JSON form of one tensor description.
type headerEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// encodeHeader validates f and returns its JSON header, padded with spaces
// so that the data section starts at a multiple of 8 bytes.
func encodeHeader(f *File) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			buf.WriteByte(',')
		}
		first = false
	}
	if len(f.Metadata) > 0 {
		m, err := json.Marshal(f.Metadata) // keys sorted
		if err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		sep()
		buf.WriteString(`"__metadata__":`)
		buf.Write(m)
	}
	seen := make(map[string]bool, len(f.Tensors))
	var offset int64
	for i, t := range f.Tensors {
		if t == nil {
			return nil, fmt.Errorf("tensor %d is nil", i)
		}
		if t.Name == "" || t.Name == "__metadata__" {
			return nil, fmt.Errorf("tensor %d: invalid name %q", i, t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("tensor %q: duplicate name", t.Name)
		}
		seen[t.Name] = true
		size, err := dtypeSize(t.DType)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		count, err := numel(t.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		have, err := t.dataLen()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if have != count {
			return nil, fmt.Errorf("tensor %q: shape %v needs %d values, got %d", t.Name, t.Shape, count, have)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		end := offset + int64(count)*int64(size)
		e, err := json.Marshal(headerEntry{DType: t.DType, Shape: shape, Offsets: [2]int64{offset, end}})
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		name, err := json.Marshal(t.Name)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		sep()
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(e)
		offset = end
	}
	buf.WriteByte('}')
	for buf.Len()%8 != 0 {
		buf.WriteByte(' ')
	}
	if buf.Len() > MaxHeaderSize {
		return nil, fmt.Errorf("header of %d bytes exceeds the %d byte limit", buf.Len(), MaxHeaderSize)
	}
	return buf.Bytes(), nil
}

// writeData writes t's elements little-endian.
func writeData(w io.Writer, t *Tensor) error {
	var b [8]byte
	switch t.DType {
	case dtF32:
		for _, v := range t.F32 {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			if _, err := w.Write(b[:4]); err != nil {
				return err
			}
		}
	case dtF64:
		for _, v := range t.F64 {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
			if _, err := w.Write(b[:]); err != nil {
				return err
			}
		}
	case dtI64:
		for _, v := range t.I64 {
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			if _, err := w.Write(b[:]); err != nil {
				return err
			}
		}
	}
	return nil
}
