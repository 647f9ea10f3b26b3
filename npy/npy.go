// Package npy reads and writes NumPy .npy files (format versions 1.0, 2.0 and
// 3.0) holding C-ordered arrays of fixed-size numeric types.
//
// The reader validates everything it is given before allocating: the magic
// string, the version, the header length, the header dictionary (descr,
// fortran_order, shape), and that the data length declared by the shape and
// dtype matches the bytes present. Fortran-ordered arrays are refused.
//
// Supported dtypes (descr strings, little- or big-endian where it matters):
// |b1 |u1 |i1 <u2 <i2 <u4 <i4 <u8 <i8 <f4 <f8 (and their '>' forms; '=' is
// read as little-endian). Writing always produces little-endian version 1.0
// files (version 2.0 if the header exceeds 65535 bytes).
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/corinfomax/corinfomax/internal/atomicfile"
)

// magic is the 6-byte prefix of every .npy file.
const magic = "\x93NUMPY"

// maxHeaderLen bounds the header dictionary we are willing to read.
const maxHeaderLen = 1 << 20

// maxDims bounds the number of dimensions of an array.
const maxDims = 32

// Header is the parsed header dictionary of a .npy file.
type Header struct {
	Descr        string // dtype string as stored, e.g. "<f4", "|u1"
	FortranOrder bool   // always false for arrays this package accepts
	Shape        []int  // dimensions; empty for a scalar
}

// Array is a decoded .npy array: its header and its raw data bytes in the
// byte order given by Header.Descr. Use the typed accessors to convert.
type Array struct {
	Header
	Data []byte
}

// dtype describes one element type.
type dtype struct {
	kind  byte // 'b' bool, 'u' unsigned, 'i' signed, 'f' float
	size  int  // bytes per element
	order binary.ByteOrder
}

// parseDescr decodes a descr string such as "<f4".
func parseDescr(s string) (dtype, error) {
	if len(s) < 3 {
		return dtype{}, fmt.Errorf("unsupported dtype %q", s)
	}
	var d dtype
	switch s[0] {
	case '<', '|', '=':
		d.order = binary.LittleEndian
	case '>':
		d.order = binary.BigEndian
	default:
		return dtype{}, fmt.Errorf("unsupported dtype %q: unknown byte order %q", s, s[0])
	}
	d.kind = s[1]
	n, err := strconv.Atoi(s[2:])
	if err != nil {
		return dtype{}, fmt.Errorf("unsupported dtype %q", s)
	}
	d.size = n
	ok := false
	switch d.kind {
	case 'b':
		ok = n == 1
	case 'u', 'i':
		ok = n == 1 || n == 2 || n == 4 || n == 8
	case 'f':
		ok = n == 4 || n == 8
	}
	if !ok {
		return dtype{}, fmt.Errorf("unsupported dtype %q", s)
	}
	return d, nil
}

// ElemSize returns the size in bytes of one element of the header's dtype,
// or an error when the dtype is not supported.
func (h Header) ElemSize() (int, error) {
	d, err := parseDescr(h.Descr)
	if err != nil {
		return 0, err
	}
	return d.size, nil
}

// Len returns the number of elements the shape describes.
func (h Header) Len() int {
	n := 1
	for _, s := range h.Shape {
		n *= s
	}
	return n
}

// ReadHeader reads the magic string, version and header dictionary from r and
// returns the header and the number of bytes consumed (the data offset).
func ReadHeader(r io.Reader) (Header, int64, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Header{}, 0, fmt.Errorf("npy: reading magic: %w", err)
	}
	if string(pre[:6]) != magic {
		return Header{}, 0, fmt.Errorf("npy: bad magic %q, want %q", pre[:6], magic)
	}
	major, minor := pre[6], pre[7]
	var hlen int64
	var off int64
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, 0, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen = int64(binary.LittleEndian.Uint16(b[:]))
		off = 10
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, 0, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen = int64(binary.LittleEndian.Uint32(b[:]))
		off = 12
	default:
		return Header{}, 0, fmt.Errorf("npy: unsupported format version %d.%d", major, minor)
	}
	if hlen > maxHeaderLen {
		return Header{}, 0, fmt.Errorf("npy: header length %d exceeds limit %d", hlen, maxHeaderLen)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Header{}, 0, fmt.Errorf("npy: reading %d-byte header: %w", hlen, err)
	}
	h, err := parseDict(string(buf))
	if err != nil {
		return Header{}, 0, fmt.Errorf("npy: header %q: %w", strings.TrimSpace(string(buf)), err)
	}
	return h, off + hlen, nil
}

// parseDict parses the Python dict literal of a .npy header.
func parseDict(s string) (Header, error) {
	p := &dictParser{s: s}
	var h Header
	seen := map[string]bool{}
	p.skipSpace()
	if !p.eat('{') {
		return h, errors.New("header does not start with '{'")
	}
	for {
		p.skipSpace()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("key: %w", err)
		}
		p.skipSpace()
		if !p.eat(':') {
			return h, fmt.Errorf("missing ':' after key %q", key)
		}
		p.skipSpace()
		if seen[key] {
			return h, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		switch key {
		case "descr":
			if h.Descr, err = p.str(); err != nil {
				return h, fmt.Errorf("descr: %w", err)
			}
		case "fortran_order":
			switch {
			case strings.HasPrefix(p.s[p.i:], "False"):
				p.i += 5
			case strings.HasPrefix(p.s[p.i:], "True"):
				p.i += 4
				h.FortranOrder = true
			default:
				return h, errors.New("fortran_order is not True or False")
			}
		case "shape":
			if h.Shape, err = p.tuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("unknown key %q", key)
		}
		p.skipSpace()
		if p.eat(',') {
			continue
		}
		p.skipSpace()
		if !p.eat('}') {
			return h, errors.New("expected ',' or '}'")
		}
		break
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("missing key %q", k)
		}
	}
	if rest := strings.TrimSpace(p.s[p.i:]); rest != "" {
		return h, fmt.Errorf("trailing characters %q", rest)
	}
	return h, nil
}

type dictParser struct {
	s string
	i int
}

func (p *dictParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n' || p.s[p.i] == '\t' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *dictParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *dictParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("expected a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

func (p *dictParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("expected '('")
	}
	shape := []int{}
	for {
		p.skipSpace()
		if p.eat(')') {
			return shape, nil
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		// Python 2 era files may write longs as "3L".
		num := p.s[start:p.i]
		p.eat('L')
		if num == "" {
			return nil, errors.New("expected a non-negative integer")
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v > math.MaxInt32*int64(1<<16) {
			return nil, fmt.Errorf("dimension %q out of range", num)
		}
		shape = append(shape, int(v))
		if len(shape) > maxDims {
			return nil, fmt.Errorf("more than %d dimensions", maxDims)
		}
		p.skipSpace()
		if p.eat(',') {
			continue
		}
		p.skipSpace()
		if !p.eat(')') {
			return nil, errors.New("expected ',' or ')'")
		}
		return shape, nil
	}
}

// DataLen returns the number of data bytes the header declares, or an error
// when the dtype is unsupported, the array is Fortran-ordered, or the size
// overflows.
func (h Header) DataLen() (int64, error) {
	d, err := parseDescr(h.Descr)
	if err != nil {
		return 0, err
	}
	if h.FortranOrder {
		return 0, errors.New("fortran_order=True arrays are not supported")
	}
	n := int64(d.size)
	for _, s := range h.Shape {
		if s < 0 {
			return 0, fmt.Errorf("negative dimension %d", s)
		}
		if s != 0 && n > math.MaxInt64/int64(s) {
			return 0, fmt.Errorf("shape %v overflows", h.Shape)
		}
		n *= int64(s)
	}
	return n, nil
}

// Read decodes a whole .npy stream of known total size (the file size; pass
// -1 when unknown, in which case the data is read incrementally and a lying
// header only costs the bytes actually present). name is used in errors.
func Read(r io.Reader, size int64, name string) (*Array, error) {
	h, off, err := ReadHeader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n, err := h.DataLen()
	if err != nil {
		return nil, fmt.Errorf("%s: npy: %w", name, err)
	}
	if size >= 0 {
		if got := size - off; got != n {
			return nil, fmt.Errorf("%s: npy: shape %v dtype %s needs %d data bytes, file has %d", name, h.Shape, h.Descr, n, got)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("%s: npy: reading %d data bytes: %w", name, n, err)
		}
		return &Array{Header: h, Data: data}, nil
	}
	var buf bytes.Buffer
	limit := n
	if limit < math.MaxInt64 {
		limit++
	}
	got, err := io.Copy(&buf, io.LimitReader(r, limit))
	if err != nil {
		return nil, fmt.Errorf("%s: npy: reading data: %w", name, err)
	}
	if got != n {
		return nil, fmt.Errorf("%s: npy: shape %v dtype %s needs %d data bytes, found %d", name, h.Shape, h.Descr, n, got)
	}
	return &Array{Header: h, Data: buf.Bytes()}, nil
}

// ReadFile reads and validates the .npy file at path.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	return Read(bufio.NewReader(f), st.Size(), path)
}

// Int64 converts the array's elements to int64. Integer and boolean dtypes
// are accepted; floats are refused. Unsigned 64-bit values above MaxInt64 are
// an error.
func (a *Array) Int64() ([]int64, error) {
	d, err := parseDescr(a.Descr)
	if err != nil {
		return nil, err
	}
	if d.kind == 'f' {
		return nil, fmt.Errorf("npy: dtype %s is not an integer type", a.Descr)
	}
	n := len(a.Data) / d.size
	out := make([]int64, n)
	for i := range out {
		b := a.Data[i*d.size : (i+1)*d.size]
		switch {
		case d.size == 1 && d.kind == 'i':
			out[i] = int64(int8(b[0]))
		case d.size == 1:
			out[i] = int64(b[0])
		case d.size == 2 && d.kind == 'i':
			out[i] = int64(int16(d.order.Uint16(b)))
		case d.size == 2:
			out[i] = int64(d.order.Uint16(b))
		case d.size == 4 && d.kind == 'i':
			out[i] = int64(int32(d.order.Uint32(b)))
		case d.size == 4:
			out[i] = int64(d.order.Uint32(b))
		case d.kind == 'i':
			out[i] = int64(d.order.Uint64(b))
		default:
			v := d.order.Uint64(b)
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("npy: element %d = %d overflows int64", i, v)
			}
			out[i] = int64(v)
		}
	}
	return out, nil
}

// Float32 converts the array's elements to float32 (any supported dtype).
func (a *Array) Float32() ([]float32, error) {
	d, err := parseDescr(a.Descr)
	if err != nil {
		return nil, err
	}
	if d.kind != 'f' {
		ints, err := a.Int64()
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(ints))
		for i, v := range ints {
			out[i] = float32(v)
		}
		return out, nil
	}
	n := len(a.Data) / d.size
	out := make([]float32, n)
	for i := range out {
		b := a.Data[i*d.size : (i+1)*d.size]
		if d.size == 4 {
			out[i] = math.Float32frombits(d.order.Uint32(b))
		} else {
			out[i] = float32(math.Float64frombits(d.order.Uint64(b)))
		}
	}
	return out, nil
}

// Uint8 returns the data of a |u1 (or |b1) array without copying.
func (a *Array) Uint8() ([]uint8, error) {
	if a.Descr != "|u1" && a.Descr != "<u1" && a.Descr != ">u1" && a.Descr != "=u1" && a.Descr != "|b1" {
		return nil, fmt.Errorf("npy: dtype %s is not uint8", a.Descr)
	}
	return a.Data, nil
}

// Write writes a version 1.0 (or 2.0 for very long headers) .npy stream with
// the given descr, shape and raw little-endian data.
func Write(w io.Writer, descr string, shape []int, data []byte) error {
	h := Header{Descr: descr, Shape: shape}
	n, err := h.DataLen()
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if n != int64(len(data)) {
		return fmt.Errorf("npy: shape %v dtype %s needs %d bytes, got %d", shape, descr, n, len(data))
	}
	var dims []string
	for _, s := range shape {
		dims = append(dims, strconv.Itoa(s))
	}
	tuple := "(" + strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	tuple += ")"
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, tuple)
	// Pad with spaces so that the data starts on a 64-byte boundary; the
	// header ends with '\n'.
	pre := 10
	if len(dict)+1+64 > 65535 {
		pre = 12
	}
	total := pre + len(dict) + 1
	pad := (64 - total%64) % 64
	hdr := dict + strings.Repeat(" ", pad) + "\n"
	var prefix []byte
	prefix = append(prefix, magic...)
	if pre == 10 {
		prefix = append(prefix, 1, 0)
		prefix = binary.LittleEndian.AppendUint16(prefix, uint16(len(hdr)))
	} else {
		prefix = append(prefix, 2, 0)
		prefix = binary.LittleEndian.AppendUint32(prefix, uint32(len(hdr)))
	}
	if _, err := w.Write(prefix); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if _, err := io.WriteString(w, hdr); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

// WriteFile writes a .npy file atomically (temporary file in the same
// directory, then rename).
func WriteFile(path, descr string, shape []int, data []byte) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return Write(w, descr, shape, data) }); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

// WriteFloat32 writes a little-endian float32 (<f4) array to path.
func WriteFloat32(path string, shape []int, data []float32) error {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return WriteFile(path, "<f4", shape, b)
}

// WriteFloat64 writes a little-endian float64 (<f8) array to path.
func WriteFloat64(path string, shape []int, data []float64) error {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return WriteFile(path, "<f8", shape, b)
}

// WriteUint8 writes a uint8 (|u1) array to path.
func WriteUint8(path string, shape []int, data []uint8) error {
	return WriteFile(path, "|u1", shape, data)
}

// WriteInt64 writes a little-endian int64 (<i8) array to path.
func WriteInt64(path string, shape []int, data []int64) error {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return WriteFile(path, "<i8", shape, b)
}

// WriteInt32 writes a little-endian int32 (<i4) array to path.
func WriteInt32(path string, shape []int, data []int32) error {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return WriteFile(path, "<i4", shape, b)
}
