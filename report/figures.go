package report

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var plotBackground = color.White

// LossCurves writes a 768 x 480 PNG of loss components against the training
// step, one line per series, with a legend.
func LossCurves(path string, title string, series []Series) error {
	if len(series) == 0 {
		return fmt.Errorf("report %s: %w", path, errNoData)
	}
	p, err := linePlot(title, "step", "loss", series, false, true, 0)
	if err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return savePNG(path, singleW*vg.Inch, singleH*vg.Inch, p.Draw)
}

// TrainingReport writes one 1728 x 480 PNG with three panels side by side:
// the loss curves against the step, the online kNN top-1 accuracy against
// the epoch (knn may be empty: the panel then says so), and the eigenvalue
// spectrum of the embedding covariance, by index (1-based) on a log y axis,
// with values <= 0 clamped to EigenFloor (spectrum may be empty).
func TrainingReport(path string, loss []Series, knn []Series, spectrum []float64) error {
	lossP, err := linePlot("training loss", "step", "loss", loss, false, true, 0)
	if err != nil {
		return fmt.Errorf("report %s: loss panel: %w", path, err)
	}
	knnTitle := "online top-1 (kNN, linear probe)"
	if len(knn) == 0 {
		knnTitle += " (no data)"
	}
	knnP, err := linePlot(knnTitle, "epoch", "top-1 (%)", knn, false, false, 0)
	if err != nil {
		return fmt.Errorf("report %s: kNN panel: %w", path, err)
	}
	specTitle := "covariance spectrum"
	if len(spectrum) == 0 {
		specTitle += " (no data)"
	}
	specP, err := linePlot(specTitle, "index", "eigenvalue", []Series{{Y: spectrum}}, true, true, 1)
	if err != nil {
		return fmt.Errorf("report %s: spectrum panel: %w", path, err)
	}
	plots := [][]*plot.Plot{{lossP, knnP, specP}}
	tiles := draw.Tiles{
		Rows: 1, Cols: reportPanes,
		PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3,
		PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3,
	}
	return savePNG(path, reportW*vg.Inch, reportH*vg.Inch, func(dc draw.Canvas) {
		canvases := plot.Align(plots, tiles, dc)
		for j, p := range plots[0] {
			p.Draw(canvases[0][j])
		}
	})
}

// Spectra writes a 768 x 480 PNG comparing several eigenvalue spectra (one
// line per map entry, named by its key, drawn in sorted key order) by index
// (1-based) on a log y axis, with values <= 0 clamped to EigenFloor.
func Spectra(path string, title string, spectra map[string][]float64) error {
	p, err := spectraPlot(title, spectra)
	if err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return savePNG(path, singleW*vg.Inch, singleH*vg.Inch, p.Draw)
}

// SpectraPanel is one panel of SpectraFigure: a title and the spectra it
// compares, keyed by the name its legend gives them.
type SpectraPanel struct {
	Title   string
	Spectra map[string][]float64
}

// SpectraFigure writes one PNG with the panels side by side (768 x 480
// pixels each), every panel drawn as Spectra draws its figure but with a
// logarithmic index axis, so that spectra of different dimensions (a
// 64-wide and a 512-wide projector, say) both span their panel, and the
// legend in the lower left corner: e.g. the
// projector outputs' and the backbone features' spectra of several runs.
func SpectraFigure(path string, panels []SpectraPanel) error {
	if len(panels) == 0 {
		return fmt.Errorf("report %s: %w", path, errNoData)
	}
	plots := [][]*plot.Plot{make([]*plot.Plot, len(panels))}
	for i, pan := range panels {
		p, err := spectraPlot(pan.Title, pan.Spectra)
		if err != nil {
			return fmt.Errorf("report %s: panel %q: %w", path, pan.Title, err)
		}
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.X.Label.Text = "index (log scale)"
		// Spectra fall to the right: the lower left stays free for the legend.
		p.Legend.Top, p.Legend.Left = false, true
		plots[0][i] = p
	}
	tiles := draw.Tiles{
		Rows: 1, Cols: len(panels),
		PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3,
		PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3,
	}
	return savePNG(path, vg.Length(len(panels))*singleW*vg.Inch, singleH*vg.Inch, func(dc draw.Canvas) {
		canvases := plot.Align(plots, tiles, dc)
		for j, p := range plots[0] {
			p.Draw(canvases[0][j])
		}
	})
}

// spectraPlot is the plot of Spectra: the non-empty spectra in sorted name order.
func spectraPlot(title string, spectra map[string][]float64) (*plot.Plot, error) {
	names := make([]string, 0, len(spectra))
	for name, s := range spectra {
		if len(s) > 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, errNoData
	}
	slices.Sort(names)
	series := make([]Series, len(names))
	for i, name := range names {
		series[i] = Series{Name: name, Y: spectra[name]}
	}
	return linePlot(title, "index", "eigenvalue", series, true, true, 1)
}
