package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// IDX magic numbers (unsigned byte data, 1 or 3 dimensions).
const (
	idxLabelsMagic = 0x00000801
	idxImagesMagic = 0x00000803
)

// maxIDXBytes bounds the data an IDX header may declare (4 GiB).
const maxIDXBytes = 1 << 32

// idxFile finds the IDX file base (e.g. "train-images-idx3-ubyte") in dir,
// accepting the plain name, the ".gz" name and the "images.idx3" spelling.
func idxFile(dir, base string) (string, error) {
	alt := strings.Replace(base, "-idx", ".idx", 1)
	var tried []string
	for _, b := range []string{base, alt} {
		for _, ext := range []string{"", ".gz"} {
			p := filepath.Join(dir, b+ext)
			tried = append(tried, p)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("IDX file not found (tried %s)", strings.Join(tried, ", "))
}

// readIDXFile opens path (gunzipping ".gz") and parses it with readIDX.
func readIDXFile(path string, wantMagic uint32, limit int) ([]int, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
	size := st.Size()
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: gzip: %w", path, err)
		}
		defer zr.Close()
		r, size = zr, -1
	}
	return readIDX(r, size, path, wantMagic, limit)
}

// readIDX parses an unsigned-byte IDX stream: a big-endian magic number
// (0x801 labels, 0x803 images), the dimensions, then the data. size is the
// total stream length when known (-1 otherwise: the data is then read
// incrementally, so a lying header costs only the bytes present). With
// limit > 0 only the first limit items are returned. It returns the
// declared dimensions (the first is the declared item count, whatever the
// limit) and the data of the items read.
func readIDX(r io.Reader, size int64, name string, wantMagic uint32, limit int) ([]int, []byte, error) {
	var m [4]byte
	if _, err := io.ReadFull(r, m[:]); err != nil {
		return nil, nil, fmt.Errorf("%s: reading IDX magic: %w", name, err)
	}
	magic := binary.BigEndian.Uint32(m[:])
	if magic != wantMagic {
		return nil, nil, fmt.Errorf("%s: IDX magic 0x%08x, expected 0x%08x", name, magic, wantMagic)
	}
	ndim := int(magic & 0xff)
	hdr := make([]byte, 4*ndim)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, nil, fmt.Errorf("%s: reading %d IDX dimensions: %w", name, ndim, err)
	}
	dims := make([]int, ndim)
	total := int64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(hdr[4*i:])
		dims[i] = int(d)
		if d != 0 && total > maxIDXBytes/int64(d) {
			return nil, nil, fmt.Errorf("%s: IDX dimensions %v declare more than %d bytes", name, dims[:i+1], int64(maxIDXBytes))
		}
		total *= int64(d)
	}
	hlen := int64(4 + 4*ndim)
	if size >= 0 && size != hlen+total {
		return nil, nil, fmt.Errorf("%s: IDX dimensions %v need %d bytes, file has %d", name, dims, hlen+total, size)
	}
	item := int64(1)
	for _, d := range dims[1:] {
		item *= int64(d)
	}
	n := applyLimit(dims[0], limit)
	want := int64(n) * item
	var data []byte
	if size >= 0 {
		data = make([]byte, want)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, nil, fmt.Errorf("%s: reading %d IDX data bytes: %w", name, want, err)
		}
	} else {
		var err error
		data, err = readAtMost(r, want)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: reading IDX data: %w", name, err)
		}
		if int64(len(data)) != want {
			k := int64(len(data))
			rec := k
			if item > 0 {
				rec = k / item
			}
			return nil, nil, fmt.Errorf("%s: truncated: IDX dimensions %v need %d data bytes, found %d (item %d incomplete)", name, dims, total, k, rec)
		}
		if n == dims[0] {
			var one [1]byte
			if k, _ := io.ReadFull(r, one[:]); k > 0 {
				return nil, nil, fmt.Errorf("%s: IDX dimensions %v need %d data bytes, stream has more", name, dims, total)
			}
		}
	}
	return dims, data, nil
}

// readAtMost reads up to n bytes, growing the buffer as data arrives, so that
// the allocation is bounded by the bytes actually present.
func readAtMost(r io.Reader, n int64) ([]byte, error) {
	const chunk = 1 << 20
	c := n
	if c > 16*chunk {
		c = 16 * chunk
	}
	buf := make([]byte, 0, c)
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		end := cap(buf)
		if int64(end) > n {
			end = int(n)
		}
		k, err := r.Read(buf[len(buf):end])
		buf = buf[:len(buf)+k]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// openIDX opens MNIST-format IDX files from dir.
func openIDX(kind, dir string, split Split, opt OpenOptions) (Dataset, error) {
	prefix := "train"
	if split == Test {
		prefix = "t10k"
	}
	ipath, err := idxFile(dir, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	lpath, err := idxFile(dir, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	idims, pix, err := readIDXFile(ipath, idxImagesMagic, opt.Limit)
	if err != nil {
		return nil, err
	}
	ldims, lab, err := readIDXFile(lpath, idxLabelsMagic, opt.Limit)
	if err != nil {
		return nil, err
	}
	return newIDXDataset(specName(kind, dir, split), ipath, lpath, idims, pix, ldims, lab, 10)
}

// newIDXDataset validates parsed IDX images and labels and wraps them.
func newIDXDataset(name, ipath, lpath string, idims []int, pix []byte, ldims []int, lab []byte, classes int) (*memDataset, error) {
	if idims[0] != ldims[0] {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", ipath, idims[0], lpath, ldims[0])
	}
	if idims[0] == 0 || len(lab) == 0 {
		return nil, fmt.Errorf("%s: %w", ipath, errNoImages)
	}
	if idims[1] == 0 || idims[2] == 0 {
		return nil, fmt.Errorf("%s: empty image size %dx%d", ipath, idims[1], idims[2])
	}
	if n := len(lab); len(pix) != n*idims[1]*idims[2] {
		return nil, fmt.Errorf("%s: read %d bytes for %d images of %dx%d", ipath, len(pix), n, idims[1], idims[2])
	}
	labels := make([]int32, len(lab))
	for i, l := range lab {
		if int(l) >= classes {
			return nil, fmt.Errorf("%s: label %d of record %d out of range [0, %d)", lpath, l, i, classes)
		}
		labels[i] = int32(l)
	}
	return &memDataset{name: name, n: len(lab), h: idims[1], w: idims[2], c: 1, pix: pix, labels: labels, classes: classes}, nil
}
