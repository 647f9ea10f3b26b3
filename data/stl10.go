package data

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// STL-10 binary layout: 96 x 96 x 3 images, each stored channel by channel,
// every channel column-major (pixel (y, x, c) at byte c*96*96 + x*96 + y);
// labels are bytes 1..10.
const (
	stlSide   = 96
	stlPixels = 3 * stlSide * stlSide
)

// stlDir returns dir, or dir/stl10_binary when the files live there.
func stlDir(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "test_X.bin")); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, "stl10_binary", "test_X.bin")); err2 == nil {
			return filepath.Join(dir, "stl10_binary")
		}
	}
	return dir
}

// stlToHWC converts one stored STL-10 image to HWC.
func stlToHWC(dst, src []uint8) {
	const plane = stlSide * stlSide
	for c := 0; c < 3; c++ {
		for x := 0; x < stlSide; x++ {
			col := src[c*plane+x*stlSide : c*plane+(x+1)*stlSide]
			for y, v := range col {
				dst[(y*stlSide+x)*3+c] = v
			}
		}
	}
}

// openSTL10 opens the STL-10 binary files from dir. Train and Test are read
// into memory; Unlabeled (100000 images, 2.7 GB) is read lazily with ReadAt.
func openSTL10(dir string, split Split, opt OpenOptions) (Dataset, error) {
	d := stlDir(dir)
	name := specName("stl10", dir, split)
	if split == Unlabeled {
		return openSTLLazy(name, filepath.Join(d, "unlabeled_X.bin"), opt)
	}
	prefix := "train"
	if split == Test {
		prefix = "test"
	}
	xpath := filepath.Join(d, prefix+"_X.bin")
	ypath := filepath.Join(d, prefix+"_y.bin")
	xs, err := os.Stat(xpath)
	if err != nil {
		return nil, err
	}
	ys, err := os.Stat(ypath)
	if err != nil {
		return nil, err
	}
	xf, err := os.Open(xpath)
	if err != nil {
		return nil, err
	}
	defer xf.Close()
	yf, err := os.Open(ypath)
	if err != nil {
		return nil, err
	}
	defer yf.Close()
	return readSTL(bufio.NewReaderSize(xf, 1<<20), xs.Size(), xpath, bufio.NewReader(yf), ys.Size(), ypath, name, opt.Limit)
}

// readSTL reads STL-10 images and labels from streams of known size.
func readSTL(xr io.Reader, xsize int64, xname string, yr io.Reader, ysize int64, yname, name string, limit int) (*memDataset, error) {
	if xsize%stlPixels != 0 {
		return nil, fmt.Errorf("%s: size %d is not a multiple of the %d-byte image (image %d is truncated)", xname, xsize, stlPixels, xsize/stlPixels)
	}
	count := int(xsize / stlPixels)
	if int64(count) != ysize {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", xname, count, yname, ysize)
	}
	n := applyLimit(count, limit)
	if n == 0 {
		return nil, fmt.Errorf("%s: %w", xname, errNoImages)
	}
	lab := make([]byte, n)
	if _, err := io.ReadFull(yr, lab); err != nil {
		return nil, fmt.Errorf("%s: reading %d labels: %w", yname, n, err)
	}
	ds := &memDataset{name: name, n: n, h: stlSide, w: stlSide, c: 3, classes: 10,
		pix: make([]uint8, n*stlPixels), labels: make([]int32, n)}
	for i, l := range lab {
		if l < 1 || l > 10 {
			return nil, fmt.Errorf("%s: record %d: label %d out of range [1, 10]", yname, i, l)
		}
		ds.labels[i] = int32(l) - 1
	}
	buf := make([]byte, stlPixels)
	for i := 0; i < n; i++ {
		if _, err := io.ReadFull(xr, buf); err != nil {
			return nil, fmt.Errorf("%s: image %d: expected %d bytes: %w", xname, i, stlPixels, err)
		}
		stlToHWC(ds.pix[i*stlPixels:(i+1)*stlPixels], buf)
	}
	return ds, nil
}

// stlLazy reads unlabelled STL-10 images on demand from an open file.
type stlLazy struct {
	name string
	path string
	f    io.ReaderAt
	cl   io.Closer
	n    int
	bufs sync.Pool // *[]byte scratch of stlPixels bytes
}

// openSTLLazy opens unlabeled_X.bin for on-demand reads.
func openSTLLazy(name, path string, opt OpenOptions) (Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	d, err := newSTLLazy(name, path, f, st.Size(), opt.Limit)
	if err != nil {
		f.Close()
		return nil, err
	}
	d.cl = f
	return d, nil
}

// newSTLLazy validates the size of an unlabelled STL-10 image file.
func newSTLLazy(name, path string, r io.ReaderAt, size int64, limit int) (*stlLazy, error) {
	if size%stlPixels != 0 {
		return nil, fmt.Errorf("%s: size %d is not a multiple of the %d-byte image (image %d is truncated)", path, size, stlPixels, size/stlPixels)
	}
	n := applyLimit(int(size/stlPixels), limit)
	if n == 0 {
		return nil, fmt.Errorf("%s: %w", path, errNoImages)
	}
	return &stlLazy{name: name, path: path, f: r, n: n}, nil
}

func (d *stlLazy) Name() string    { return d.name }
func (d *stlLazy) Len() int        { return d.n }
func (d *stlLazy) Channels() int   { return 3 }
func (d *stlLazy) NumClasses() int { return 0 }
func (d *stlLazy) Label(int) int   { return -1 }

func (d *stlLazy) Image(i int, dst *Image) error {
	if i < 0 || i >= d.n {
		return fmt.Errorf("data: %s: image index %d out of range [0, %d)", d.name, i, d.n)
	}
	bp, _ := d.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, stlPixels)
		bp = &b
	}
	defer d.bufs.Put(bp)
	if _, err := d.f.ReadAt(*bp, int64(i)*stlPixels); err != nil {
		return fmt.Errorf("data: %s: image %d at offset %d: %w", d.path, i, int64(i)*stlPixels, err)
	}
	dst.resize(stlSide, stlSide, 3)
	stlToHWC(dst.Pix, *bp)
	return nil
}

// Close closes the underlying file.
func (d *stlLazy) Close() error {
	if d.cl != nil {
		return d.cl.Close()
	}
	return nil
}
