package data

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CIFAR binary record layout: label byte(s) then 3 x 32 x 32 channel-planar
// pixels (all red, then green, then blue, each row-major).
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide
)

// cifarFormat describes one of the CIFAR binary formats.
type cifarFormat struct {
	labelBytes int // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
	labelIndex int // which label byte to use
	classes    int
}

func (f cifarFormat) recLen() int { return f.labelBytes + cifarPixels }

// cifarDir returns dir, or dir/sub when the files live in the archive's
// top-level folder.
func cifarDir(dir, sub, probe string) string {
	if _, err := os.Stat(filepath.Join(dir, probe)); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, sub, probe)); err2 == nil {
			return filepath.Join(dir, sub)
		}
	}
	return dir
}

// openCIFAR10 opens the CIFAR-10 binary version from dir.
func openCIFAR10(dir string, split Split, opt OpenOptions) (Dataset, error) {
	d := cifarDir(dir, "cifar-10-batches-bin", "test_batch.bin")
	var files []string
	if split == Test {
		files = []string{filepath.Join(d, "test_batch.bin")}
	} else {
		for i := 1; i <= 5; i++ {
			files = append(files, filepath.Join(d, fmt.Sprintf("data_batch_%d.bin", i)))
		}
	}
	return openCIFAR(specName("cifar10", dir, split), files, cifarFormat{1, 0, 10}, opt)
}

// openCIFAR100 opens the CIFAR-100 binary version from dir (fine labels, or
// coarse labels when coarse is set).
func openCIFAR100(dir string, split Split, coarse bool, opt OpenOptions) (Dataset, error) {
	d := cifarDir(dir, "cifar-100-binary", "test.bin")
	file := filepath.Join(d, "train.bin")
	if split == Test {
		file = filepath.Join(d, "test.bin")
	}
	f := cifarFormat{2, 1, 100}
	kind := "cifar100"
	if coarse {
		f = cifarFormat{2, 0, 20}
		kind = "cifar100-coarse"
	}
	return openCIFAR(specName(kind, dir, split), []string{file}, f, opt)
}

// openCIFAR reads the record files in order into one in-memory dataset.
func openCIFAR(name string, files []string, f cifarFormat, opt OpenOptions) (Dataset, error) {
	rec := int64(f.recLen())
	sizes := make([]int64, len(files))
	total := 0
	for i, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if st.Size()%rec != 0 {
			return nil, fmt.Errorf("%s: size %d is not a multiple of the %d-byte record (record %d is truncated)", p, st.Size(), rec, st.Size()/rec)
		}
		sizes[i] = st.Size()
		total += int(st.Size() / rec)
	}
	n := applyLimit(total, opt.Limit)
	if n == 0 {
		return nil, fmt.Errorf("%s: %w", files[0], errNoImages)
	}
	ds := &memDataset{name: name, h: cifarSide, w: cifarSide, c: 3, classes: f.classes,
		pix: make([]uint8, n*cifarPixels), labels: make([]int32, n)}
	for i, p := range files {
		if ds.n == n {
			break
		}
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		err = readCIFAR(bufio.NewReaderSize(fh, 1<<20), sizes[i], p, f, ds, n)
		fh.Close()
		if err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// readCIFAR appends the records of one stream of the given size to ds (whose
// pix and labels are preallocated for max images), converting planar CHW to
// HWC and validating labels.
func readCIFAR(r io.Reader, size int64, name string, f cifarFormat, ds *memDataset, max int) error {
	rec := int64(f.recLen())
	if size%rec != 0 {
		return fmt.Errorf("%s: size %d is not a multiple of the %d-byte record (record %d is truncated)", name, size, rec, size/rec)
	}
	count := int(size / rec)
	buf := make([]byte, rec)
	const plane = cifarSide * cifarSide
	for k := 0; k < count && ds.n < max; k++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("%s: record %d: expected %d bytes: %w", name, k, rec, err)
		}
		l := int(buf[f.labelIndex])
		if l >= f.classes {
			return fmt.Errorf("%s: record %d: label %d out of range [0, %d)", name, k, l, f.classes)
		}
		ds.labels[ds.n] = int32(l)
		src := buf[f.labelBytes:]
		dst := ds.pix[ds.n*cifarPixels : (ds.n+1)*cifarPixels]
		for p := 0; p < plane; p++ {
			dst[3*p] = src[p]
			dst[3*p+1] = src[plane+p]
			dst[3*p+2] = src[2*plane+p]
		}
		ds.n++
	}
	return nil
}
