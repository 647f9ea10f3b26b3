package data

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"

	"github.com/corinfomax/corinfomax/internal/atomicfile"
)

// Preview writes a PNG grid of n rows, each (original, view 1, view 2) of
// one image of ds under pipeline p, to out (via a temporary file and a
// rename). The images are spread evenly over the dataset; the
// augmentations are seeded by seed. Small images are enlarged by an integer
// factor (nearest neighbour) so that a cell is at least 96 pixels wide.
func Preview(ds Dataset, p Pipeline, n int, seed int64, out string) error {
	if n <= 0 {
		return fmt.Errorf("data: preview needs a positive row count, got %d", n)
	}
	if ds.Len() == 0 {
		return fmt.Errorf("data: preview: %s is empty", ds.Name())
	}
	n = min(n, ds.Len())
	size := p.Views[0].Size
	var im Image
	if size <= 0 {
		if err := ds.Image(0, &im); err != nil {
			return fmt.Errorf("data: preview: %w", err)
		}
		size = max(im.H, im.W)
	}
	scale := max(1, (96+size-1)/size)
	cell := size * scale
	const gap = 4
	W := 3*cell + 4*gap
	H := n*cell + (n+1)*gap
	grid := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range grid.Pix {
		grid.Pix[i] = 128
	}
	aug := NewAugmenter()
	pcg := rand.NewPCG(0, 0)
	rng := rand.New(pcg)
	for r := 0; r < n; r++ {
		idx := r * ds.Len() / n
		if err := ds.Image(idx, &im); err != nil {
			return fmt.Errorf("data: preview: %w", err)
		}
		pcg.Seed(streamSeed(seed, 0, r, saltSample))
		y0 := gap + r*(cell+gap)
		orig, err := aug.ViewFloat(rng, ViewConfig{Size: size, Identity: true}, &im)
		if err != nil {
			return fmt.Errorf("data: preview image %d: %w", idx, err)
		}
		paste(grid, orig, gap, y0, scale)
		for v := 0; v < 2; v++ {
			view, err := aug.ViewFloat(rng, p.Views[v], &im)
			if err != nil {
				return fmt.Errorf("data: preview image %d view %d: %w", idx, v+1, err)
			}
			paste(grid, view, gap+(v+1)*(cell+gap), y0, scale)
		}
	}
	return writePNG(out, grid)
}

// paste draws im (values in [0, 1]) into dst at (x0, y0), enlarged by scale.
func paste(dst *image.RGBA, im *FloatImage, x0, y0, scale int) {
	for y := 0; y < im.H*scale; y++ {
		for x := 0; x < im.W*scale; x++ {
			o := ((y/scale)*im.W + x/scale) * im.C
			var c color.RGBA
			if im.C == 1 {
				g := to8(im.Pix[o])
				c = color.RGBA{g, g, g, 255}
			} else {
				c = color.RGBA{to8(im.Pix[o]), to8(im.Pix[o+1]), to8(im.Pix[o+2]), 255}
			}
			dst.SetRGBA(x0+x, y0+y, c)
		}
	}
}

func to8(v float32) uint8 { return uint8(clamp01(v)*255 + 0.5) }

// writePNG encodes img to path atomically.
func writePNG(path string, img image.Image) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
		return fmt.Errorf("data: preview: %w", err)
	}
	return nil
}
