package report

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkPNG decodes path and checks its pixel size and that it is not blank.
func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("%s: size %dx%d, want %dx%d", path, b.Dx(), b.Dy(), w, h)
	}
	if nonWhite(img) < 1000 {
		t.Errorf("%s: only %d non-white pixels, the figure looks empty", path, nonWhite(img))
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func nonWhite(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				n++
			}
		}
	}
	return n
}

func lossSeries() []Series {
	steps := make([]float64, 200)
	sim := make([]float64, 200)
	cov := make([]float64, 200)
	for i := range steps {
		steps[i] = float64(10 * i)
		sim[i] = 2 * math.Exp(-float64(i)/40)
		cov[i] = 9.7 + 0.5*math.Exp(-float64(i)/60)
	}
	sim[50] = math.NaN() // skipped, not an error
	return []Series{{Name: "alpha*Lsim", X: steps, Y: sim}, {Name: "Lcov", X: steps, Y: cov}}
}

func spectrum(d int, decay float64) []float64 {
	s := make([]float64, d)
	for i := range s {
		s[i] = math.Pow(decay, float64(i)) * 0.1
	}
	s[d-1] = -1e-17 // numerical noise: clamped
	s[d-2] = 0
	return s
}

func TestLossCurves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loss.png")
	if err := LossCurves(path, "CorInfoMax loss", lossSeries()); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, singleW*dpi, singleH*dpi)
	if err := LossCurves(path, "x", []Series{{Name: "bad", X: []float64{1}, Y: []float64{1, 2}}}); err == nil {
		t.Error("mismatched X and Y accepted")
	}
	if err := LossCurves(path, "x", nil); err == nil {
		t.Error("no series accepted")
	}
	checkPNG(t, path, singleW*dpi, singleH*dpi) // the old figure survives failed calls
}

func TestTrainingReport(t *testing.T) {
	dir := t.TempDir()
	knn := []Series{{Name: "k=20", X: []float64{1, 2, 3, 4, 5}, Y: []float64{70, 75, 79, 81, 83}},
		{Name: "k=200", X: []float64{1, 2, 3, 4, 5}, Y: []float64{66, 72, 76, 79, 80.5}}}
	path := filepath.Join(dir, "report.png")
	if err := TrainingReport(path, lossSeries(), knn, spectrum(64, 0.8)); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, reportW*dpi, reportH*dpi)

	// Empty kNN and spectrum panels, and a flat spectrum, are allowed.
	for i, c := range []struct {
		knn  []Series
		spec []float64
	}{{nil, spectrum(8, 0.5)}, {nil, nil}, {knn, []float64{0.5, 0.5, 0.5}}, {nil, []float64{0, 0}}} {
		p := filepath.Join(dir, "r"+string(rune('a'+i))+".png")
		if err := TrainingReport(p, lossSeries(), c.knn, c.spec); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		checkPNG(t, p, reportW*dpi, reportH*dpi)
	}
}

func TestSpectra(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spectra.png")
	err := Spectra(path, "embedding spectra", map[string][]float64{
		"corinfomax": spectrum(64, 0.97), "simclr": spectrum(64, 0.8), "collapsed": spectrum(64, 0.3),
	})
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, singleW*dpi, singleH*dpi)
	if err := Spectra(path, "x", map[string][]float64{"a": nil}); err == nil {
		t.Error("empty spectra accepted")
	}
}

func TestSpectraFigure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "panels.png")
	err := SpectraFigure(path, []SpectraPanel{
		{Title: "projector", Spectra: map[string][]float64{"a": spectrum(64, 0.97), "b": spectrum(64, 0.8)}},
		{Title: "backbone", Spectra: map[string][]float64{"a": spectrum(128, 0.9), "b": spectrum(128, 0.5)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, 2*singleW*dpi, singleH*dpi)
	err = SpectraFigure(path, []SpectraPanel{{Title: "full", Spectra: map[string][]float64{"a": spectrum(8, 0.5)}},
		{Title: "empty", Spectra: map[string][]float64{"a": nil}}})
	if err == nil || !strings.Contains(err.Error(), `"empty"`) {
		t.Errorf("an empty panel: got %v, want an error naming it", err)
	}
	if err := SpectraFigure(path, nil); err == nil {
		t.Error("no panels accepted")
	}
}

func TestUnwritablePath(t *testing.T) {
	// A path below a regular file cannot be created, even by root.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(file, "out.png")
	if err := LossCurves(bad, "t", lossSeries()); err == nil {
		t.Error("LossCurves: no error for an unwritable path")
	}
	if err := TrainingReport(bad, lossSeries(), nil, spectrum(8, 0.5)); err == nil {
		t.Error("TrainingReport: no error for an unwritable path")
	}
	if err := Spectra(bad, "t", map[string][]float64{"a": spectrum(8, 0.5)}); err == nil {
		t.Error("Spectra: no error for an unwritable path")
	}
	// The target is a non-empty directory: the rename fails, no temp is left.
	dir := t.TempDir()
	target := filepath.Join(dir, "isdir")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := LossCurves(target, "t", lossSeries()); err == nil {
		t.Error("LossCurves over a directory: no error")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want 1", len(ents))
	}
}

func TestMarkdownTable(t *testing.T) {
	got := MarkdownTable([]string{"method", "kNN k=20"}, [][]string{{"raw pixels", "84.59"}, {"a|b"}})
	want := "" +
		"| method     | kNN k=20 |\n" +
		"|------------|----------|\n" +
		"| raw pixels | 84.59    |\n" +
		"| a\\|b       |          |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if MarkdownTable(nil, nil) != "" {
		t.Error("empty table should be empty")
	}
}
