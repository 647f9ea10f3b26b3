// Package checkpoint reads and writes tensors in the safetensors format.
//
// A safetensors file is an 8-byte little-endian header length n, then n bytes
// of JSON header, then the raw little-endian tensor data. The header maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the start of the data section) and may hold a "__metadata__"
// object of string to string.
//
// Why not github.com/nlpodyssey/safetensors: that library validates offsets,
// shape overflow and the 100 MB header cap, but it decodes the header into a Go
// map, so a duplicated tensor name in a hostile file is silently dropped; it
// returns tensors in map order (not stable); it exposes raw byte views only,
// so the typed conversion is ours anyway; its errors do not name the file; and
// it does not write atomically. The format is small enough that a
// self-written reader and writer on encoding/json (about 600 lines with docs) is simpler
// to audit than an extra dependency, and it is fuzzed (FuzzDecode).
//
// The reader validates everything before allocating tensor storage: the
// header length against the file size and a 100 MB cap, the JSON syntax,
// duplicate names, dtypes, shapes (non-negative, element count without
// overflow), data_offsets (begin <= end, end inside the data section, size
// equal to dtype size times element count), and that the tensors tile the
// data section from offset 0 without overlap or holes, as the format
// requires. Trailing bytes after the last tensor (padding) are tolerated and
// ignored.
//
// Supported dtypes are F32, F64 and I64. The other safetensors dtypes (F16,
// BF16, I32, U8, ...) are reported as unsupported.
package checkpoint

import (
	"fmt"
)

// Tensor is one named tensor of a checkpoint. Exactly one of F32, F64 and I64
// holds the data, selected by DType ("F32", "F64" or "I64"), with
// product(Shape) elements in row-major order. An empty Shape is a scalar.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	F32   []float32
	F64   []float64
	I64   []int64
}

// File is the content of a safetensors file: string metadata and tensors.
// Write stores tensors in slice order; Read returns them in file order (by
// data offset), so a round trip preserves the order.
type File struct {
	Metadata map[string]string
	Tensors  []*Tensor
}

// Get returns the tensor called name and whether it exists.
func (f *File) Get(name string) (*Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return nil, false
}

// Supported dtype names.
const (
	dtF32 = "F32"
	dtF64 = "F64"
	dtI64 = "I64"
)

// dtypeSize returns the element size of a supported dtype, or an error that
// distinguishes known-but-unsupported dtypes from unknown strings.
func dtypeSize(dtype string) (int, error) {
	switch dtype {
	case dtF32:
		return 4, nil
	case dtF64, dtI64:
		return 8, nil
	case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "U64":
		return 0, fmt.Errorf("unsupported dtype %q (supported: F32, F64, I64)", dtype)
	default:
		return 0, fmt.Errorf("unknown dtype %q", dtype)
	}
}

// numel returns the element count of shape, or an error for negative
// dimensions or a count that overflows int.
func numel(shape []int) (int, error) {
	n := 1
	for _, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if s != 0 && n > maxInt/s {
			return 0, fmt.Errorf("element count of shape %v overflows", shape)
		}
		n *= s
	}
	return n, nil
}

const maxInt = int(^uint(0) >> 1)

// dataLen returns the number of elements t holds in the slice its DType
// selects, and an error when the other slices are non-empty.
func (t *Tensor) dataLen() (int, error) {
	switch t.DType {
	case dtF32:
		if len(t.F64) != 0 || len(t.I64) != 0 {
			return 0, fmt.Errorf("dtype F32 but F64 or I64 data set")
		}
		return len(t.F32), nil
	case dtF64:
		if len(t.F32) != 0 || len(t.I64) != 0 {
			return 0, fmt.Errorf("dtype F64 but F32 or I64 data set")
		}
		return len(t.F64), nil
	case dtI64:
		if len(t.F32) != 0 || len(t.F64) != 0 {
			return 0, fmt.Errorf("dtype I64 but F32 or F64 data set")
		}
		return len(t.I64), nil
	}
	_, err := dtypeSize(t.DType)
	return 0, err
}
