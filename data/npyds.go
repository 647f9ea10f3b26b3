package data

import (
	"fmt"
	"strings"

	"github.com/corinfomax/corinfomax/npy"
)

// openNPY opens "IMAGES.npy[,LABELS.npy]": uint8 images of shape N x H x W
// or N x H x W x C (C = 1 or 3), and optional integer labels of shape N.
// The same files serve every split.
func openNPY(spec string, split Split, opt OpenOptions) (Dataset, error) {
	ipath, lpath, _ := strings.Cut(spec, ",")
	arr, err := npy.ReadFile(ipath)
	if err != nil {
		return nil, err
	}
	var lab []int64
	if lpath != "" {
		la, err := npy.ReadFile(lpath)
		if err != nil {
			return nil, err
		}
		if len(la.Shape) != 1 {
			return nil, fmt.Errorf("%s: labels must have shape (N,), got %v", lpath, la.Shape)
		}
		if lab, err = la.Int64(); err != nil {
			return nil, fmt.Errorf("%s: %w", lpath, err)
		}
	}
	return newNPYDataset(specName("npy", spec, split), ipath, arr, lpath, lab, opt.Limit)
}

// newNPYDataset validates a decoded image array and labels.
func newNPYDataset(name, ipath string, arr *npy.Array, lpath string, lab []int64, limit int) (*memDataset, error) {
	pix, err := arr.Uint8()
	if err != nil {
		return nil, fmt.Errorf("%s: images: %w", ipath, err)
	}
	s := arr.Shape
	c := 1
	switch {
	case len(s) == 3:
	case len(s) == 4 && (s[3] == 1 || s[3] == 3):
		c = s[3]
	default:
		return nil, fmt.Errorf("%s: images must have shape (N, H, W) or (N, H, W, C) with C 1 or 3, got %v", ipath, s)
	}
	n, h, w := s[0], s[1], s[2]
	if n == 0 {
		return nil, fmt.Errorf("%s: %w", ipath, errNoImages)
	}
	if h == 0 || w == 0 {
		return nil, fmt.Errorf("%s: empty image size %dx%d", ipath, h, w)
	}
	if lab != nil && len(lab) != n {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", ipath, n, lpath, len(lab))
	}
	n = applyLimit(n, limit)
	pix = pix[:n*h*w*c]
	if n < s[0] {
		pix = append([]uint8(nil), pix...) // release the rest of the file
	}
	ds := &memDataset{name: name, n: n, h: h, w: w, c: c, pix: pix}
	if lab != nil {
		ds.labels = make([]int32, n)
		maxL := int64(-1)
		for i, l := range lab {
			if l < 0 || l >= 1<<24 {
				return nil, fmt.Errorf("%s: record %d: label %d out of range [0, %d)", lpath, i, l, 1<<24)
			}
			if l > maxL {
				maxL = l
			}
			if i < n {
				ds.labels[i] = int32(l)
			}
		}
		ds.classes = int(maxL) + 1
	}
	return ds, nil
}
