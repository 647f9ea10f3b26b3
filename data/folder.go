package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"  // register GIF
	_ "image/jpeg" // register JPEG
	_ "image/png"  // register PNG
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	_ "golang.org/x/image/bmp"  // register BMP
	_ "golang.org/x/image/webp" // register WebP
)

// folderDataset decodes images from files on demand.
type folderDataset struct {
	name      string
	files     []string
	labels    []int32 // nil when unlabelled
	classes   []string
	channels  int
	maxPixels int
}

func (d *folderDataset) Name() string    { return d.name }
func (d *folderDataset) Len() int        { return len(d.files) }
func (d *folderDataset) Channels() int   { return d.channels }
func (d *folderDataset) NumClasses() int { return len(d.classes) }

func (d *folderDataset) Label(i int) int {
	if d.labels == nil || i < 0 || i >= len(d.labels) {
		return -1
	}
	return int(d.labels[i])
}

// ClassNames returns the class folder names in label order.
func (d *folderDataset) ClassNames() []string { return append([]string(nil), d.classes...) }

func (d *folderDataset) Image(i int, dst *Image) error {
	if i < 0 || i >= len(d.files) {
		return fmt.Errorf("data: %s: image index %d out of range [0, %d)", d.name, i, len(d.files))
	}
	b, err := os.ReadFile(d.files[i])
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	img, err := decodeBounded(b, d.maxPixels)
	if err != nil {
		return fmt.Errorf("data: %s: %w", d.files[i], err)
	}
	toHWC(img, d.channels, dst)
	return nil
}

// checkConfig reads an image header and refuses empty or oversized images
// before any pixel memory is allocated. It reports whether the image is grey.
func checkConfig(r io.Reader, maxPixels int) (gray bool, err error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return false, errors.New("not a recognised image (jpeg, png, gif, bmp, webp)")
		}
		return false, fmt.Errorf("bad image header: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return false, fmt.Errorf("%s image has empty size %dx%d", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return false, fmt.Errorf("%s image %dx%d exceeds the %d-pixel limit", format, cfg.Width, cfg.Height, maxPixels)
	}
	gray = cfg.ColorModel == color.GrayModel || cfg.ColorModel == color.Gray16Model
	return gray, nil
}

// decodeBounded decodes an image held in b after checking its header.
func decodeBounded(b []byte, maxPixels int) (image.Image, error) {
	if _, err := checkConfig(bytes.NewReader(b), maxPixels); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	return img, nil
}

// toHWC converts img to an HWC uint8 image with c channels (1: luma with
// weights 0.299/0.587/0.114; 3: RGB, alpha dropped as PIL's convert("RGB")).
func toHWC(img image.Image, c int, dst *Image) {
	r := img.Bounds()
	h, w := r.Dy(), r.Dx()
	dst.resize(h, w, c)
	p := dst.Pix
	switch src := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := src.Pix[y*src.Stride : y*src.Stride+w]
			for x, v := range row {
				if c == 1 {
					p[y*w+x] = v
				} else {
					o := (y*w + x) * 3
					p[o], p[o+1], p[o+2] = v, v, v
				}
			}
		}
		return
	case *image.YCbCr:
		if c == 3 {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					yi := src.YOffset(r.Min.X+x, r.Min.Y+y)
					ci := src.COffset(r.Min.X+x, r.Min.Y+y)
					rr, gg, bb := color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
					o := (y*w + x) * 3
					p[o], p[o+1], p[o+2] = rr, gg, bb
				}
			}
			return
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			col := color.NRGBAModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA)
			if c == 1 {
				p[y*w+x] = lumaU8(col.R, col.G, col.B)
			} else {
				o := (y*w + x) * 3
				p[o], p[o+1], p[o+2] = col.R, col.G, col.B
			}
		}
	}
}

// lumaU8 is PIL's "L" conversion: (299 R + 587 G + 114 B) / 1000, rounded.
func lumaU8(r, g, b uint8) uint8 {
	return uint8((299*int(r) + 587*int(g) + 114*int(b) + 500) / 1000)
}

// folderScan collects the files of one directory tree without following
// directory symlinks (so symlink loops cannot hang the walk). Symlinks to
// regular files are kept.
func folderScan(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".") && p != root {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		if e.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() {
				return nil // dangling link or link to a directory: not followed
			}
		} else if !e.Type().IsRegular() {
			return nil
		}
		files = append(files, p)
		return nil
	})
	sort.Strings(files)
	return files, err
}

// isDir reports whether p is a directory (following a symlink at p itself).
func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// openFolder opens an image folder: DIR/train/CLASS/* and DIR/val/CLASS/*
// (Test), or a flat tree of images (unlabelled, Train or Unlabeled only).
func openFolder(dir string, split Split, opt OpenOptions) (Dataset, error) {
	maxPix := opt.MaxPixels
	if maxPix <= 0 {
		maxPix = DefaultMaxPixels
	}
	if !isDir(dir) {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	ds := &folderDataset{name: specName("folder", dir, split), maxPixels: maxPix}
	// Scan from the resolved path so that a symlinked DIR works; nothing
	// below it is followed except class folders.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var cands []string
	var candLabels []int32
	trainDir := filepath.Join(dir, "train")
	if isDir(trainDir) {
		classes, err := classDirs(trainDir)
		if err != nil {
			return nil, err
		}
		ds.classes = classes
		root := trainDir
		if split == Test {
			root = filepath.Join(dir, "val")
			if !isDir(root) {
				return nil, fmt.Errorf("%s: no val folder for the test split", dir)
			}
			vc, err := classDirs(root)
			if err != nil {
				return nil, err
			}
			known := map[string]bool{}
			for _, c := range classes {
				known[c] = true
			}
			for _, c := range vc {
				if !known[c] {
					return nil, fmt.Errorf("%s: class folder %q has no counterpart in %s", root, c, trainDir)
				}
			}
		}
		for li, c := range classes {
			cdir := filepath.Join(root, c)
			if !isDir(cdir) {
				continue
			}
			// Resolve a symlinked class folder once; nothing below it is followed.
			real, err := filepath.EvalSymlinks(cdir)
			if err != nil {
				return nil, err
			}
			files, err := folderScan(real)
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				if real != cdir {
					rel, _ := filepath.Rel(real, f)
					f = filepath.Join(cdir, rel)
				}
				cands = append(cands, f)
				candLabels = append(candLabels, int32(li))
			}
		}
	} else {
		if split == Test {
			return nil, fmt.Errorf("%s: a flat image folder has no test split (want DIR/train/CLASS and DIR/val/CLASS)", dir)
		}
		files, err := folderScan(dir)
		if err != nil {
			return nil, err
		}
		cands = files
	}
	skipped := 0
	grey := true
	for i, p := range cands {
		if opt.Limit > 0 && len(ds.files) == opt.Limit {
			break
		}
		g, err := checkFile(p, maxPix, opt.Verify)
		if err != nil {
			if opt.Strict {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			skipped++
			if opt.Log != nil {
				fmt.Fprintf(opt.Log, "data: skipping %s: %v\n", p, err)
			}
			continue
		}
		grey = grey && g
		ds.files = append(ds.files, p)
		if ds.classes != nil {
			ds.labels = append(ds.labels, candLabels[i])
		}
	}
	if skipped > 0 && opt.Log != nil {
		fmt.Fprintf(opt.Log, "data: %s: skipped %d of %d files\n", ds.name, skipped, len(ds.files)+skipped)
	}
	if len(ds.files) == 0 {
		return nil, fmt.Errorf("%s: %w (%d files skipped)", dir, errNoImages, skipped)
	}
	ds.channels = 3
	if grey {
		ds.channels = 1
	}
	return ds, nil
}

// classDirs lists the class folder names (sorted) under root; symlinks to
// folders count as classes.
func classDirs(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if isDir(filepath.Join(root, e.Name())) {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no class folders", root)
	}
	sort.Strings(out)
	return out, nil
}

// checkFile validates one image file's header (and its body when verify).
func checkFile(p string, maxPixels int, verify bool) (gray bool, err error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st.Size() == 0 {
		return false, errors.New("empty file")
	}
	if !verify {
		return checkConfig(f, maxPixels)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return false, err
	}
	gray, err = checkConfig(bytes.NewReader(b), maxPixels)
	if err != nil {
		return false, err
	}
	if _, _, err := image.Decode(bytes.NewReader(b)); err != nil {
		return false, fmt.Errorf("decoding: %w", err)
	}
	return gray, nil
}
