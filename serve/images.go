package serve

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/runinfo"
)

// knownClasses are the class names of the datasets whose files do not
// carry them (nil for others).
func knownClasses(kind string) []string {
	switch kind {
	case "fashion-mnist":
		return []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	case "cifar10":
		return []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	case "stl10":
		return []string{"airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"}
	}
	return nil
}

// classes names the classes of a served split (nil when unknown: the
// labels show as numbers).
func (s *Server) classes(k dsKey) []string {
	ds, err := s.dataset(k)
	if err != nil {
		return nil
	}
	if n, ok := ds.(interface{ ClassNames() []string }); ok {
		return n.ClassNames()
	}
	kind, _, _ := strings.Cut(k.spec, ":")
	if c := knownClasses(strings.ToLower(kind)); len(c) == ds.NumClasses() && len(c) > 0 {
		return c
	}
	return nil
}

func className(classes []string, label int) string {
	if label >= 0 && label < len(classes) {
		return classes[label]
	}
	if label >= 0 {
		return strconv.Itoa(label)
	}
	return ""
}

// splitParam reads split (train or test, default test) and returns the
// served dataset of the run's data for it.
func (s *Server) splitParam(r *http.Request, dir string) (dsKey, error) {
	sum, err := runinfo.Read(dir)
	if err != nil {
		return dsKey{}, err
	}
	switch v := r.URL.Query().Get("split"); v {
	case "", "test":
		return dsKey{sum.Config.Data, data.Test, s.opts.TestLimit}, nil
	case "train":
		return dsKey{sum.Config.Data, data.Train, s.opts.NeighboursLimit}, nil
	default:
		return dsKey{}, badRequest("parameter split: want train or test, got %q", v)
	}
}

// indexParam reads the required parameter index, an image index >= 0
// (what names the images in the message: "an image", "a test image").
func indexParam(r *http.Request, what string) (int, error) {
	v := r.URL.Query().Get("index")
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return 0, badRequest("parameter index: want %s index >= 0, got %q", what, v)
	}
	return i, nil
}

// intParam reads a non-negative integer parameter (def when absent).
func intParam(r *http.Request, name string, def, max int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > max {
		return 0, badRequest("parameter %s: want an integer in [0, %d], got %q", name, max, v)
	}
	return n, nil
}

// handleImages lists a page of a split's images with their labels.
func (s *Server) handleImages(w http.ResponseWriter, r *http.Request) {
	_, dir, err := s.runDir(r)
	if err != nil {
		fail(w, err)
		return
	}
	k, err := s.splitParam(r, dir)
	if err != nil {
		fail(w, err)
		return
	}
	per, err := intParam(r, "per_page", 48, 500)
	if err == nil && per == 0 {
		err = badRequest("parameter per_page: want an integer in [1, 500], got 0")
	}
	if err != nil {
		fail(w, err)
		return
	}
	page, err := intParam(r, "page", 0, 1<<30)
	if err != nil {
		fail(w, err)
		return
	}
	ds, err := s.dataset(k)
	if err != nil {
		fail(w, err)
		return
	}
	classes := s.classes(k)
	pages := (ds.Len() + per - 1) / per
	type item struct {
		Index int    `json:"index"`
		Label int    `json:"label"`
		Class string `json:"class,omitempty"`
	}
	items := []item{}
	for i := page * per; i < min(ds.Len(), (page+1)*per); i++ {
		l := ds.Label(i)
		items = append(items, item{i, l, className(classes, l)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"split": k.split.String(), "total": ds.Len(), "page": page,
		"per_page": per, "pages": pages, "images": items, "classes": classes})
}

// handleImage answers one image of a split as PNG.
func (s *Server) handleImage(w http.ResponseWriter, r *http.Request) {
	_, dir, err := s.runDir(r)
	if err != nil {
		fail(w, err)
		return
	}
	k, err := s.splitParam(r, dir)
	if err != nil {
		fail(w, err)
		return
	}
	i, err := indexParam(r, "an image")
	if err != nil {
		fail(w, err)
		return
	}
	ds, err := s.dataset(k)
	if err != nil {
		fail(w, err)
		return
	}
	if i >= ds.Len() {
		fail(w, badRequest("parameter index: %d is past the %d %s images served", i, ds.Len(), k.split))
		return
	}
	var im data.Image
	if err := ds.Image(i, &im); err != nil {
		fail(w, fmt.Errorf("image %d of %s: %w", i, ds.Name(), err))
		return
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, toImage(im)); err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=3600")
	io.Copy(w, &buf)
}

// toImage wraps a dataset image as an image.Image.
func toImage(im data.Image) image.Image {
	r := image.Rect(0, 0, im.W, im.H)
	if im.C == 1 {
		return &image.Gray{Pix: im.Pix, Stride: im.W, Rect: r}
	}
	out := image.NewNRGBA(r)
	for p := 0; p < im.W*im.H; p++ {
		copy(out.Pix[4*p:4*p+3], im.Pix[3*p:3*p+3])
		out.Pix[4*p+3] = 255
	}
	return out
}
