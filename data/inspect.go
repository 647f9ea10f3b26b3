package data

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// ShapeCount is how many images of a dataset have one shape.
type ShapeCount struct {
	H, W, C, Count int
}

// Stats summarises a dataset: size, classes, image shapes and per-channel
// pixel statistics (pixels scaled to [0, 1], population std).
type Stats struct {
	Name        string
	Len         int
	Channels    int
	NumClasses  int
	ClassCounts []int        // images per class; nil when unlabelled
	Shapes      []ShapeCount // distinct shapes, most frequent first
	Mean, Std   []float64    // per channel
}

// Inspect reads every image of ds once and returns its Stats. Sums are
// accumulated exactly in integers, then converted to float64.
func Inspect(ds Dataset) (Stats, error) {
	st := Stats{Name: ds.Name(), Len: ds.Len(), Channels: ds.Channels(), NumClasses: ds.NumClasses()}
	c := st.Channels
	if st.NumClasses > 0 {
		st.ClassCounts = make([]int, st.NumClasses)
	}
	sum := make([]uint64, c)
	sq := make([]uint64, c)
	var count uint64
	shapes := map[[3]int]int{}
	var im Image
	for i := 0; i < st.Len; i++ {
		if err := ds.Image(i, &im); err != nil {
			return st, fmt.Errorf("data: inspect: %w", err)
		}
		if im.C != c {
			return st, fmt.Errorf("data: inspect: image %d has %d channels, dataset %d", i, im.C, c)
		}
		shapes[[3]int{im.H, im.W, im.C}]++
		for p := 0; p < len(im.Pix); p += c {
			for k := 0; k < c; k++ {
				v := uint64(im.Pix[p+k])
				sum[k] += v
				sq[k] += v * v
			}
		}
		count += uint64(im.H * im.W)
		if l := ds.Label(i); l >= 0 && l < st.NumClasses {
			st.ClassCounts[l]++
		}
	}
	st.Mean = make([]float64, c)
	st.Std = make([]float64, c)
	for k := 0; k < c; k++ {
		if count == 0 {
			break
		}
		m := float64(sum[k]) / float64(count)
		v := float64(sq[k])/float64(count) - m*m
		st.Mean[k] = m / 255
		st.Std[k] = math.Sqrt(math.Max(v, 0)) / 255
	}
	for s, n := range shapes {
		st.Shapes = append(st.Shapes, ShapeCount{H: s[0], W: s[1], C: s[2], Count: n})
	}
	sort.Slice(st.Shapes, func(i, j int) bool {
		a, b := st.Shapes[i], st.Shapes[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.H*a.W < b.H*b.W
	})
	return st, nil
}

// String formats the statistics for a terminal.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dataset   %s\nimages    %d\nchannels  %d\nclasses   %d\n", s.Name, s.Len, s.Channels, s.NumClasses)
	if s.ClassCounts != nil {
		fmt.Fprintf(&b, "per class %v\n", s.ClassCounts)
	}
	for i, sh := range s.Shapes {
		if i == 5 {
			fmt.Fprintf(&b, "shape     ... %d more\n", len(s.Shapes)-5)
			break
		}
		fmt.Fprintf(&b, "shape     %dx%dx%d: %d\n", sh.H, sh.W, sh.C, sh.Count)
	}
	fmt.Fprintf(&b, "mean      %s\nstd       %s\n", fmtFloats(s.Mean), fmtFloats(s.Std))
	return b.String()
}

func fmtFloats(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.4f", x)
	}
	return strings.Join(parts, " ")
}
