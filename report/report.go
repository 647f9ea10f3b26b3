// Package report draws training and evaluation figures as PNG files with
// gonum.org/v1/plot, and formats Markdown tables.
//
// Every PNG is written to a temporary file in the target directory and
// renamed into place, so a reader never sees a half-written image. Points
// with NaN or infinite coordinates are skipped (a diverged loss does not
// prevent the rest of the figure). On log axes, values <= 0 (eigenvalues
// that are numerically zero or slightly negative) are clamped to
// EigenFloor.
package report

import (
	"errors"
	"fmt"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/corinfomax/corinfomax/internal/atomicfile"
)

// Series is one named curve. When X is nil the points are plotted against
// their index (0, 1, 2, ... for curves, 1, 2, 3, ... for spectra).
type Series struct {
	Name string
	X, Y []float64
}

// EigenFloor is the value that eigenvalues <= 0 are clamped to on log axes.
const EigenFloor = 1e-12

// Figure sizes, in inches at dpi dots per inch.
const (
	dpi         = 96
	singleW     = 8 // LossCurves and Spectra: 768 x 480 pixels
	singleH     = 5
	reportW     = 18 // TrainingReport: 1728 x 480 pixels
	reportH     = 5
	reportPanes = 3
)

// points converts s to plotter points, dropping non-finite ones. With
// logY, y values <= 0 are clamped to EigenFloor. first is the index of the
// first point when s.X is nil.
func points(s Series, logY bool, first int) (plotter.XYs, error) {
	if s.X != nil && len(s.X) != len(s.Y) {
		return nil, fmt.Errorf("series %q: %d x values for %d y values", s.Name, len(s.X), len(s.Y))
	}
	xys := make(plotter.XYs, 0, len(s.Y))
	for i, y := range s.Y {
		x := float64(first + i)
		if s.X != nil {
			x = s.X[i]
		}
		if logY && y <= 0 {
			y = EigenFloor
		}
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
			continue
		}
		xys = append(xys, plotter.XY{X: x, Y: y})
	}
	return xys, nil
}

// linePlot returns a plot with one coloured line per series and the legend
// in the top (legendTop) or bottom right corner. With logY the y axis is
// logarithmic (and its range is set so it stays positive).
func linePlot(title, xLabel, yLabel string, series []Series, logY, legendTop bool, first int) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	yMin, yMax := math.Inf(1), math.Inf(-1)
	for i, s := range series {
		xys, err := points(s, logY, first)
		if err != nil {
			return nil, err
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("series %q: %w", s.Name, err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
		l.Width = vg.Points(1.5)
		p.Add(l)
		if s.Name != "" {
			p.Legend.Add(s.Name, l)
		}
		for _, xy := range xys {
			yMin, yMax = min(yMin, xy.Y), max(yMax, xy.Y)
		}
	}
	p.Legend.Top = legendTop
	if logY && yMin <= yMax {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: 1}
		if yMin == yMax {
			yMin, yMax = yMin/10, yMax*10
		}
		p.Y.Min, p.Y.Max = yMin, yMax
	}
	return p, nil
}

// savePNG renders draw onto a w x h inch canvas and writes it to path via a
// temporary file and a rename. Panics of the plotting library are returned
// as errors.
func savePNG(path string, w, h vg.Length, render func(dc draw.Canvas)) (err error) {
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))
	if err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("drawing: %v", r)
			}
		}()
		dc := draw.New(c)
		dc.SetColor(plotBackground)
		dc.Fill(dc.Rectangle.Path())
		render(dc)
		return nil
	}(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}

	if err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w)
		return err
	}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// errNoData is returned when a figure would have no curve at all.
var errNoData = errors.New("no data to plot")
