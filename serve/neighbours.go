package serve

import (
	"errors"
	"fmt"
	"image"
	_ "image/gif" // uploads
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/npy"
	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/runinfo"
	_ "golang.org/x/image/bmp" // uploads
	_ "golang.org/x/image/webp"
)

// CacheDir is the folder of a run directory where the server keeps the
// features of its checkpoint.
const CacheDir = "serve-cache"

// rawBudget caps the raw-pixel matrices (floats) of one run: large images
// search fewer training images in pixel space.
const rawBudget = 64 << 20

// featSet is n rows of dim L2-normalised features and their labels.
type featSet struct {
	x      []float32
	labels []int
	n, dim int
}

// index is the neighbour index of one checkpoint of a run.
type index struct {
	key                 string
	epoch, step         int
	train, test         featSet // backbone features
	rawTrain, rawTest   featSet // normalised pixels
	encMu               sync.Mutex
	enc                 *encoder.Encoder // embeds uploads; encMu held
	trainSpec, testSpec dsKey
}

// runIndex is the state of a run's neighbour index: the last one built
// and the one being built.
type runIndex struct {
	mu       sync.Mutex
	ready    *index
	building string // key in progress ("" when none)
	failed   string // key whose build failed
	err      error
	progress string
}

func (ix *runIndex) close() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.ready != nil && ix.ready.enc != nil {
		ix.ready.enc.Close()
		ix.ready.enc = nil
	}
}

// checkpointKey identifies the checkpoint in dir by size and modification
// time, with the image limits the features are computed on.
func (s *Server) checkpointKey(dir string) (string, error) {
	st, err := os.Stat(model.RunDir(dir).Checkpoint())
	if errors.Is(err, os.ErrNotExist) {
		return "", &apiError{http.StatusConflict, "the run has no checkpoint yet (the first one is written at the end of epoch 1)"}
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x-%x-n%d-t%d", st.Size(), st.ModTime().UnixNano(), s.opts.NeighboursLimit, s.opts.TestLimit), nil
}

// neighbourIndex returns the run's current index, starting its build in
// the background when the checkpoint changed. While the new one is built
// the previous one is returned (stale is then true); before any is built,
// nil and the progress.
func (s *Server) neighbourIndex(dir string) (ix *index, stale bool, progress string, err error) {
	key, err := s.checkpointKey(dir)
	if err != nil {
		return nil, false, "", err
	}
	s.mu.Lock()
	ri := s.indexes[dir]
	if ri == nil {
		ri = &runIndex{}
		s.indexes[dir] = ri
	}
	s.mu.Unlock()
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if ri.ready != nil && ri.ready.key == key {
		return ri.ready, false, "", nil
	}
	if ri.failed == key {
		if ri.ready != nil {
			return ri.ready, true, "", nil
		}
		return nil, false, "", fmt.Errorf("computing the features of %s: %w", dir, ri.err)
	}
	if ri.building == "" && s.ctx.Err() == nil {
		ri.building, ri.progress = key, "loading the checkpoint"
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			built, err := s.build(dir, key, func(p string) {
				ri.mu.Lock()
				ri.progress = p
				ri.mu.Unlock()
			})
			ri.mu.Lock()
			defer ri.mu.Unlock()
			ri.building = ""
			if err != nil {
				fmt.Fprintf(s.opts.Log, "serve: %s: %v\n", dir, err)
				ri.failed, ri.err = key, err
				return
			}
			if ri.ready != nil && ri.ready.enc != nil {
				old := ri.ready
				go func() { // after the searches that use it
					old.encMu.Lock()
					old.enc.Close()
					old.encMu.Unlock()
				}()
			}
			ri.ready = built
		}()
	}
	return ri.ready, ri.ready != nil, ri.progress, nil
}

// build loads the checkpoint and computes (or reads from RUNDIR/serve-cache)
// the backbone features of the first NeighboursLimit training and
// TestLimit test images, and their normalised pixels.
func (s *Server) build(dir, key string, progress func(string)) (*index, error) {
	ctx := s.ctx
	var enc *encoder.Encoder
	for try := 0; ; try++ {
		// A checkpoint replaced while it is read (the trainer renames the
		// new one over it) shows as a changed key: read again.
		var err error
		enc, err = encoder.Load(dir, encoder.Options{Threads: s.opts.Threads, Backend: s.opts.Backend})
		if err == nil {
			if k, kerr := s.checkpointKey(dir); kerr == nil && k == key {
				break
			}
			enc.Close()
			return nil, errors.New("the checkpoint changed while it was read (a new one will be read)")
		}
		if try == 2 || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(300 * time.Millisecond)
	}
	ok := false
	defer func() {
		if !ok {
			enc.Close()
		}
	}()
	sum, err := runinfo.Read(dir)
	if err != nil {
		return nil, err
	}
	spec := sum.Config.Data
	if spec == "" {
		spec = enc.Data
	}
	ix := &index{key: key, enc: enc, epoch: enc.Checkpoint.Position.Epoch, step: enc.Checkpoint.Position.Step,
		trainSpec: dsKey{spec, data.Train, s.opts.NeighboursLimit}, testSpec: dsKey{spec, data.Test, s.opts.TestLimit}}
	cache := filepath.Join(dir, CacheDir)
	for _, part := range []struct {
		name      string
		ds        dsKey
		feat, raw *featSet
	}{{"train", ix.trainSpec, &ix.train, &ix.rawTrain}, {"test", ix.testSpec, &ix.test, &ix.rawTest}} {
		ds, err := s.dataset(part.ds)
		if err != nil {
			return nil, err
		}
		if ds.Channels() != enc.Spec.InChannels {
			return nil, fmt.Errorf("%s has %d channels, the checkpoint's network takes %d", spec, ds.Channels(), enc.Spec.InChannels)
		}
		size, norm := enc.Geometry(spec, ds)
		fp := filepath.Join(cache, "features-"+key+"-"+part.name+".npy")
		lp := filepath.Join(cache, "labels-"+key+"-"+part.name+".npy")
		if fs, err := readCached(fp, lp); err == nil && fs.n == ds.Len() {
			*part.feat = fs
		} else {
			progress(fmt.Sprintf("computing the backbone features of %d %s images", ds.Len(), part.name))
			fmt.Fprintf(s.opts.Log, "serve: %s: features of %d %s images (epoch %d)\n", dir, ds.Len(), part.name, ix.epoch)
			x, labels, dim, err := model.Features(ctx, enc.Net, ds, size, norm, model.Backbone, 0, 256)
			if err != nil {
				return nil, err
			}
			if err := writeCached(fp, lp, x, labels, dim); err != nil {
				fmt.Fprintf(s.opts.Log, "serve: warning: caching the features: %v\n", err)
			}
			*part.feat = featSet{x: x, labels: labels, n: len(x) / dim, dim: dim}
		}
		progress(fmt.Sprintf("reading the pixels of the %s images", part.name))
		rawN := min(ds.Len(), max(1, rawBudget/(size*size*ds.Channels())))
		x, labels, dim, err := model.Features(ctx, nil, ds, size, norm, model.Backbone, rawN, 256)
		if err != nil {
			return nil, err
		}
		*part.raw = featSet{x: x, labels: labels, n: len(x) / dim, dim: dim}
		for _, f := range []*featSet{part.feat, part.raw} {
			if err := normalize(f); err != nil {
				return nil, err
			}
		}
	}
	removeStale(cache, key)
	ok = true
	return ix, nil
}

// normalize L2-normalises the rows of f in place.
func normalize(f *featSet) error {
	if f.n == 0 {
		return nil
	}
	return ops.L2NormalizeRows(f.x, f.n, f.dim, f.x, make([]float64, f.n))
}

func readCached(fp, lp string) (featSet, error) {
	a, err := npy.ReadFile(fp)
	if err != nil {
		return featSet{}, err
	}
	x, err := a.Float32()
	if err != nil || len(a.Shape) != 2 {
		return featSet{}, fmt.Errorf("%s: want a 2-d float32 array", fp)
	}
	b, err := npy.ReadFile(lp)
	if err != nil {
		return featSet{}, err
	}
	l64, err := b.Int64()
	if err != nil || len(l64) != a.Shape[0] {
		return featSet{}, fmt.Errorf("%s: want %d labels", lp, a.Shape[0])
	}
	fs := featSet{x: x, n: a.Shape[0], dim: a.Shape[1]}
	if len(l64) > 0 && l64[0] >= 0 {
		fs.labels = make([]int, len(l64))
		for i, v := range l64 {
			fs.labels[i] = int(v)
		}
	}
	return fs, nil
}

// writeCached writes the features and labels (-1 for unlabelled images)
// atomically.
func writeCached(fp, lp string, x []float32, labels []int, dim int) error {
	if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
		return err
	}
	n := len(x) / dim
	l64 := make([]int64, n)
	for i := range l64 {
		l64[i] = -1
		if labels != nil {
			l64[i] = int64(labels[i])
		}
	}
	if err := npy.WriteInt64(lp, []int{n}, l64); err != nil {
		return err
	}
	return npy.WriteFloat32(fp, []int{n, dim}, x)
}

// removeStale deletes the cached features of other checkpoints.
func removeStale(cache, key string) {
	ents, _ := os.ReadDir(cache)
	for _, e := range ents {
		n := e.Name()
		if (strings.HasPrefix(n, "features-") || strings.HasPrefix(n, "labels-")) && strings.HasSuffix(n, ".npy") &&
			!strings.Contains(n, "-"+key+"-") {
			os.Remove(filepath.Join(cache, n))
		}
	}
}

// neighbour is one result of a search.
type neighbour struct {
	Index      int     `json:"index"`
	Label      int     `json:"label"`
	Class      string  `json:"class,omitempty"`
	Similarity float64 `json:"similarity"`
}

// search returns the k rows of f most similar (cosine) to q (normalised).
func search(f featSet, q []float32, k int, classes []string) []neighbour {
	sims := make([]float32, f.n)
	for i := range sims {
		row := f.x[i*f.dim : (i+1)*f.dim]
		var s float32
		for j, v := range q {
			s += v * row[j]
		}
		sims[i] = s
	}
	order := make([]int, f.n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sims[order[a]] > sims[order[b]] })
	out := []neighbour{}
	for _, i := range order[:min(k, f.n)] {
		nb := neighbour{Index: i, Label: -1, Similarity: float64(sims[i])}
		if f.labels != nil {
			nb.Label = f.labels[i]
			nb.Class = className(classes, nb.Label)
		}
		out = append(out, nb)
	}
	return out
}

// params reads k (1..100, default 10).
func kParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("k")
	if v == "" {
		return 10, nil
	}
	k, err := strconv.Atoi(v)
	if err != nil || k < 1 || k > 100 {
		return 0, badRequest("parameter k: want an integer in [1, 100], got %q", v)
	}
	return k, nil
}

// ready answers the neighbour requests' common part: the run's index, or a
// 202 while the first one is computed. It returns nil when it answered.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) (string, *index, bool) {
	id, dir, err := s.runDir(r)
	if err != nil {
		fail(w, err)
		return "", nil, false
	}
	ix, stale, progress, err := s.neighbourIndex(dir)
	if err != nil {
		fail(w, err)
		return "", nil, false
	}
	if ix == nil {
		writeJSON(w, http.StatusAccepted, map[string]any{"status": "computing", "progress": progress,
			"message": "computing the features of the checkpoint; ask again in a few seconds"})
		return "", nil, false
	}
	return id, ix, stale
}

func (s *Server) answer(w http.ResponseWriter, id string, ix *index, stale bool, query map[string]any, q, raw []float32, k int) {
	classes := s.classes(ix.trainSpec)
	writeJSON(w, http.StatusOK, map[string]any{"run": id, "status": "ready", "stale": stale,
		"checkpoint": map[string]any{"epoch": ix.epoch, "step": ix.step},
		"query":      query, "k": k,
		"features": search(ix.train, q, k, classes),
		"pixels":   search(ix.rawTrain, raw, k, classes),
		"searched": map[string]int{"features": ix.train.n, "pixels": ix.rawTrain.n, "dim": ix.train.dim}})
}

func (s *Server) handleNeighbours(w http.ResponseWriter, r *http.Request) {
	k, err := kParam(r)
	if err != nil {
		fail(w, err)
		return
	}
	i, err := indexParam(r, "a test image")
	if err != nil {
		fail(w, err)
		return
	}
	id, ix, stale := s.ready(w, r)
	if ix == nil {
		return
	}
	if i >= ix.test.n {
		fail(w, badRequest("parameter index: %d is past the %d test images served", i, ix.test.n))
		return
	}
	if i >= ix.rawTest.n {
		fail(w, badRequest("parameter index: %d is past the %d test images kept as pixels", i, ix.rawTest.n))
		return
	}
	query := map[string]any{"split": "test", "index": i, "label": -1}
	if ix.test.labels != nil {
		query["label"] = ix.test.labels[i]
		query["class"] = className(s.classes(ix.testSpec), ix.test.labels[i])
	}
	s.answer(w, id, ix, stale, query, ix.test.x[i*ix.test.dim:(i+1)*ix.test.dim],
		ix.rawTest.x[i*ix.rawTest.dim:(i+1)*ix.rawTest.dim], k)
}

// maxUpload bounds an uploaded image file.
const maxUpload = 32 << 20

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	k, err := kParam(r)
	if err != nil {
		fail(w, err)
		return
	}
	id, ix, stale := s.ready(w, r)
	if ix == nil {
		return
	}
	img, err := uploadedImage(w, r)
	if err != nil {
		fail(w, err)
		return
	}
	ix.encMu.Lock()
	var q, raw []float32
	if ix.enc == nil {
		err = errors.New("the checkpoint's encoder was released (a newer checkpoint was read): try again")
	} else if q, err = ix.enc.EmbedImage(img); err == nil {
		raw, err = ix.enc.Pixels(img)
	}
	ix.encMu.Unlock()
	if err != nil {
		fail(w, err)
		return
	}
	fq := featSet{x: q, n: 1, dim: len(q)}
	fr := featSet{x: raw, n: 1, dim: len(raw)}
	if err := normalize(&fq); err != nil {
		fail(w, err)
		return
	}
	if err := normalize(&fr); err != nil {
		fail(w, err)
		return
	}
	if fq.dim != ix.train.dim || fr.dim != ix.rawTrain.dim {
		fail(w, fmt.Errorf("the uploaded image gives %d features and %d pixels, the index holds %d and %d",
			fq.dim, fr.dim, ix.train.dim, ix.rawTrain.dim))
		return
	}
	b := img.Bounds()
	s.answer(w, id, ix, stale, map[string]any{"split": "upload", "width": b.Dx(), "height": b.Dy()}, fq.x, fr.x, k)
}

// uploadedImage decodes the request body: a multipart form's "image" file,
// or the image file itself.
func uploadedImage(w http.ResponseWriter, r *http.Request) (image.Image, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	var body io.Reader = r.Body
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		f, _, err := r.FormFile("image")
		if err != nil {
			return nil, badRequest("upload: want a multipart form with an \"image\" file: %v", err)
		}
		defer f.Close()
		body = f
	}
	img, format, err := image.Decode(body)
	if err != nil {
		return nil, badRequest("upload: not an image (PNG, JPEG, GIF, BMP or WebP): %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 1 || b.Dy() < 1 || b.Dx()*b.Dy() > data.DefaultMaxPixels {
		return nil, badRequest("upload: a %s image of %d x %d pixels is refused", format, b.Dx(), b.Dy())
	}
	return img, nil
}

// dataset opens (once) the split of a run's data that the server shows.
func (s *Server) dataset(k dsKey) (data.Dataset, error) {
	s.mu.Lock()
	ds := s.datasets[k]
	s.mu.Unlock()
	if ds != nil {
		return ds, nil
	}
	ds, err := data.Open(k.spec, k.split, data.OpenOptions{Limit: k.limit, Log: s.opts.Log})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.datasets[k]; old != nil { // opened meanwhile
		if c, ok := ds.(io.Closer); ok {
			c.Close()
		}
		return old, nil
	}
	s.datasets[k] = ds
	return ds, nil
}
