package encoder_test

import (
	"context"
	"image"
	"image/color"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/npy"
	"github.com/corinfomax/corinfomax/train"
)

// tinyRun pretrains a tiny network for a few steps on random 12x12 images
// and returns the run directory and the dataset spec.
func tinyRun(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(3))
	const n = 24
	img := make([]uint8, n*12*12)
	for i := range img {
		img[i] = uint8(rng.Intn(256))
	}
	ip := filepath.Join(dir, "x.npy")
	if err := npy.WriteUint8(ip, []int{n, 12, 12}, img); err != nil {
		t.Fatal(err)
	}
	cfg, err := train.FromRecipe("fashionmnist", "corinfomax")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data, cfg.Out = "npy:"+ip, filepath.Join(dir, "run")
	cfg.Width, cfg.Projector, cfg.Batch, cfg.Size, cfg.Epochs, cfg.KNNEvery, cfg.Threads = 2, "16-8", 8, 12, 1, 0, 1
	if _, err := train.Run(context.Background(), cfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	return cfg.Out, cfg.Data
}

func TestLoadAndEmbedAgree(t *testing.T) {
	run, spec := tinyRun(t)
	enc, err := encoder.Load(run, encoder.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if enc.FeatureDim() != 16 || enc.Size != 12 || len(enc.Norm.Mean) != 1 {
		t.Fatalf("loaded encoder: dim %d size %d norm %v", enc.FeatureDim(), enc.Size, enc.Norm)
	}
	ds, err := data.Open(spec, data.Train, data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	feats, _, dim, err := model.Features(context.Background(), enc.Net, ds, enc.Size, enc.Norm, model.Backbone, 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	if dim != 16 || len(feats) != 5*16 {
		t.Fatalf("Features: dim %d, %d values", dim, len(feats))
	}
	// The image-at-a-time path gives the same features as the batch path.
	var im data.Image
	if err := ds.Image(3, &im); err != nil {
		t.Fatal(err)
	}
	g := image.NewGray(image.Rect(0, 0, im.W, im.H))
	for i, v := range im.Pix {
		g.Pix[i] = v
	}
	got, err := enc.EmbedImage(g)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - feats[3*16+i])); d > 1e-4*(1+math.Abs(float64(feats[3*16+i]))) {
			t.Fatalf("EmbedImage feature %d = %v, Features gives %v", i, got[i], feats[3*16+i])
		}
	}
	// A colour image is converted to grey for a one-channel network.
	c := image.NewNRGBA(image.Rect(0, 0, 20, 30))
	c.Set(3, 4, color.NRGBA{R: 200, G: 10, B: 30, A: 255})
	if _, err := enc.EmbedImage(c); err != nil {
		t.Fatalf("EmbedImage of a 20x30 colour image: %v", err)
	}
}

func TestLoadRefusesMismatchAndDamage(t *testing.T) {
	run, _ := tinyRun(t)
	path := filepath.Join(run, model.CheckpointFile)
	f, err := checkpoint.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// A checkpoint whose metadata claims another width: shapes disagree.
	wider := *f
	wider.Metadata = map[string]string{}
	for k, v := range f.Metadata {
		wider.Metadata[k] = v
	}
	wider.Metadata[model.MetaModel] = strings.Replace(f.Metadata[model.MetaModel], `"width":2`, `"width":4`, 1)
	p := filepath.Join(dir, "wider.safetensors")
	if err := checkpoint.Write(p, &wider); err != nil {
		t.Fatal(err)
	}
	if _, err := encoder.Load(p, encoder.Options{Threads: 1}); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Fatalf("width mismatch: want a shape error, got %v", err)
	}

	// A checkpoint missing one backbone tensor.
	missing := *f
	missing.Tensors = nil
	for _, ct := range f.Tensors {
		if ct.Name != "layer1.0.conv1.weight" {
			missing.Tensors = append(missing.Tensors, ct)
		}
	}
	p = filepath.Join(dir, "missing.safetensors")
	if err := checkpoint.Write(p, &missing); err != nil {
		t.Fatal(err)
	}
	if _, err := encoder.Load(p, encoder.Options{Threads: 1}); err == nil || !strings.Contains(err.Error(), "layer1.0.conv1.weight") {
		t.Fatalf("missing tensor: want an error naming it, got %v", err)
	}

	// A truncated file.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p = filepath.Join(dir, "truncated.safetensors")
	if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := encoder.Load(p, encoder.Options{Threads: 1}); err == nil {
		t.Fatal("truncated checkpoint loaded")
	}

	// A run directory without a checkpoint.
	if _, err := encoder.Load(t.TempDir(), encoder.Options{}); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Fatalf("empty run directory: want a clear error, got %v", err)
	}
}
