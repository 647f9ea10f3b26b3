// Package data provides the image datasets, the augmentation pipelines and
// the deterministic, prefetching batch loader used for self-supervised
// pretraining and evaluation.
//
// Datasets are opened from a spec "KIND:PATH" (see Open). Images are kept as
// raw uint8 HWC pixels, either in memory (IDX, CIFAR, STL-10 labelled splits,
// .npy) or read lazily (STL-10 unlabelled via ReadAt, image folders decoded on
// demand). Augmentations follow torchvision 0.14 semantics and run on float32
// HWC images in [0, 1]; the loader produces NHWC float32 batches.
package data

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// DefaultFashionMNISTDir is where the Debian dataset-fashion-mnist package
// installs the Fashion-MNIST IDX files; the spec "fashion-mnist" alone opens it.
const DefaultFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// Image is a decoded image: H rows of W pixels of C interleaved uint8
// channels (HWC, C = 1 or 3).
type Image struct {
	H, W, C int
	Pix     []uint8
}

// resize makes im an H x W x C image, reusing the capacity of im.Pix.
func (im *Image) resize(h, w, c int) {
	im.H, im.W, im.C = h, w, c
	n := h * w * c
	if cap(im.Pix) < n {
		im.Pix = make([]uint8, n)
	}
	im.Pix = im.Pix[:n]
}

// Dataset is an indexable set of images with optional integer labels. A
// Dataset's methods are safe for concurrent use by several goroutines.
// Datasets that hold open files also implement io.Closer.
type Dataset interface {
	// Name describes the dataset, e.g.
	// "fashion-mnist:/usr/share/datasets/fashion-mnist (train)".
	Name() string
	// Len is the number of images.
	Len() int
	// Channels is 1 (grey) or 3 (RGB).
	Channels() int
	// NumClasses is the number of classes, 0 when unlabelled.
	NumClasses() int
	// Label returns the class of image i, -1 when unlabelled.
	Label(i int) int
	// Image decodes image i into dst, reusing dst.Pix's capacity.
	Image(i int, dst *Image) error
}

// Split selects the part of a dataset to open.
type Split int

const (
	// Train is the labelled training split.
	Train Split = iota
	// Test is the held-out split (for image folders, DIR/val).
	Test
	// Unlabeled is the split for pretraining without labels: STL-10's
	// unlabeled_X.bin; for every other kind the training images with their
	// labels hidden.
	Unlabeled
)

// String returns "train", "test" or "unlabeled".
func (s Split) String() string {
	switch s {
	case Train:
		return "train"
	case Test:
		return "test"
	case Unlabeled:
		return "unlabeled"
	}
	return fmt.Sprintf("split(%d)", int(s))
}

// ParseSplit returns the split a user names: "train", "test", "val" or
// "validation" (the held-out split, which an image folder keeps in DIR/val),
// or "unlabeled".
func ParseSplit(name string) (Split, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "train":
		return Train, nil
	case "test", "val", "validation":
		return Test, nil
	case "unlabeled", "unlabelled":
		return Unlabeled, nil
	}
	return 0, fmt.Errorf("unknown split %q: want train, test (or val, an image folder's name for it) or unlabeled", name)
}

// DefaultMaxPixels is the largest image area (in pixels) an image folder
// accepts unless OpenOptions.MaxPixels says otherwise.
const DefaultMaxPixels = 64 << 20

// OpenOptions controls Open.
type OpenOptions struct {
	// Limit > 0 keeps only the first Limit images.
	Limit int
	// Strict turns skipped files of an image folder into an error.
	Strict bool
	// Log receives one line per skipped file (path and reason) and a
	// summary count; nil discards.
	Log io.Writer
	// MaxPixels is the largest image area accepted in image folders
	// (decompression-bomb guard); 0 means DefaultMaxPixels.
	MaxPixels int
	// Verify fully decodes every image of an image folder at Open time, so
	// that files with a valid header but a corrupt body are skipped (or
	// refused when Strict) up front instead of failing during training.
	Verify bool
}

// Open opens a dataset from a spec "KIND:PATH":
//
//	fashion-mnist:DIR, mnist:DIR    IDX files (plain or .gz)
//	cifar10:DIR                     CIFAR-10 binary version
//	cifar100:DIR                    CIFAR-100 binary, fine labels
//	cifar100-coarse:DIR             CIFAR-100 binary, coarse labels
//	stl10:DIR                       STL-10 binary (train/test/unlabeled)
//	folder:DIR                      DIR/train/CLASS/*, DIR/val/CLASS/* (Test),
//	                                or a flat folder of unlabelled images
//	npy:IMAGES.npy[,LABELS.npy]     uint8 N x H x W [x C] images, int labels
//
// "fashion-mnist" alone opens DefaultFashionMNISTDir. For the Unlabeled split
// every kind but stl10 returns its training images with labels hidden.
func Open(spec string, split Split, opt OpenOptions) (Dataset, error) {
	kind, path, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	if split < Train || split > Unlabeled {
		return nil, fmt.Errorf("data: open %q: invalid split %d", spec, int(split))
	}
	if opt.Limit < 0 {
		return nil, fmt.Errorf("data: open %q: negative limit %d", spec, opt.Limit)
	}
	var ds Dataset
	switch kind {
	case "fashion-mnist", "mnist":
		ds, err = openIDX(kind, path, split, opt)
	case "cifar10":
		ds, err = openCIFAR10(path, split, opt)
	case "cifar100", "cifar100-coarse":
		ds, err = openCIFAR100(path, split, kind == "cifar100-coarse", opt)
	case "stl10":
		ds, err = openSTL10(path, split, opt)
	case "folder":
		ds, err = openFolder(path, split, opt)
	case "npy":
		ds, err = openNPY(path, split, opt)
	default:
		return nil, fmt.Errorf("data: open %q: unknown dataset kind %q (want fashion-mnist, mnist, cifar10, cifar100, cifar100-coarse, stl10, folder or npy)", spec, kind)
	}
	if err != nil {
		return nil, fmt.Errorf("data: open %q (%s): %w", spec, split, err)
	}
	if split == Unlabeled && ds.NumClasses() > 0 {
		ds = &unlabeled{ds}
	}
	return ds, nil
}

// parseSpec splits "KIND:PATH" and applies the fashion-mnist default.
func parseSpec(spec string) (kind, path string, err error) {
	kind, path, ok := strings.Cut(spec, ":")
	kind = strings.ToLower(strings.TrimSpace(kind))
	if !ok || path == "" {
		if kind == "fashion-mnist" {
			return kind, DefaultFashionMNISTDir, nil
		}
		return "", "", fmt.Errorf("data: dataset spec %q: want KIND:PATH", spec)
	}
	return kind, path, nil
}

// specName builds the Name() string of a dataset.
func specName(kind, path string, split Split) string {
	return fmt.Sprintf("%s:%s (%s)", kind, filepath.Clean(path), split)
}

// unlabeled hides the labels of a dataset.
type unlabeled struct{ Dataset }

func (u *unlabeled) Name() string {
	n := u.Dataset.Name()
	if i := strings.LastIndex(n, " ("); i >= 0 {
		n = n[:i]
	}
	return n + " (unlabeled)"
}
func (u *unlabeled) NumClasses() int { return 0 }
func (u *unlabeled) Label(int) int   { return -1 }

// Close closes the wrapped dataset when it holds files.
func (u *unlabeled) Close() error {
	if c, ok := u.Dataset.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// memDataset holds n images of identical shape as raw HWC uint8 in memory.
type memDataset struct {
	name       string
	n, h, w, c int
	pix        []uint8 // n*h*w*c, image i at i*h*w*c
	labels     []int32 // nil when unlabelled
	classes    int
}

func (d *memDataset) Name() string    { return d.name }
func (d *memDataset) Len() int        { return d.n }
func (d *memDataset) Channels() int   { return d.c }
func (d *memDataset) NumClasses() int { return d.classes }

func (d *memDataset) Label(i int) int {
	if d.labels == nil || i < 0 || i >= d.n {
		return -1
	}
	return int(d.labels[i])
}

func (d *memDataset) Image(i int, dst *Image) error {
	if i < 0 || i >= d.n {
		return fmt.Errorf("data: %s: image index %d out of range [0, %d)", d.name, i, d.n)
	}
	sz := d.h * d.w * d.c
	dst.resize(d.h, d.w, d.c)
	copy(dst.Pix, d.pix[i*sz:(i+1)*sz])
	return nil
}

// errNoImages is returned by readers that find zero images.
var errNoImages = errors.New("dataset has no images")

// applyLimit returns min(n, limit) when limit > 0.
func applyLimit(n, limit int) int {
	if limit > 0 && limit < n {
		return limit
	}
	return n
}
