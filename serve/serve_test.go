package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/internal/testutil"
	"github.com/corinfomax/corinfomax/train"
)

// fixture is a tiny finished run (40 random 12x12 images, 2 epochs, online
// kNN every epoch), trained once for all the tests of the package.
var fixture struct {
	once sync.Once
	root string // holds the run "tiny"
	spec string
	err  error
}

// tinyRun returns a fresh copy of the tiny run inside a new root folder.
func tinyRun(t *testing.T) (root, dir string) {
	t.Helper()
	fixture.once.Do(func() {
		fixture.root, fixture.err = os.MkdirTemp("", "serve-test-")
		if fixture.err != nil {
			return
		}
		rng := rand.New(rand.NewSource(7))
		img := make([]uint8, 40*12*12)
		for i := range img {
			img[i] = uint8(rng.Intn(256))
		}
		lab := make([]int64, 40)
		for i := range lab {
			lab[i] = int64(i % 3)
		}
		fixture.spec = testutil.WriteNPY(t, fixture.root, img, []int{40, 12, 12}, lab)
		cfg, err := train.FromRecipe("fashionmnist", "corinfomax")
		if err != nil {
			fixture.err = err
			return
		}
		cfg.Data, cfg.Out = fixture.spec, filepath.Join(fixture.root, "tiny")
		cfg.Width, cfg.Projector, cfg.Batch, cfg.Size = 2, "16-8", 8, 12
		cfg.Epochs, cfg.WarmupEpochs, cfg.LR = 2, 1, 0.1
		cfg.KNNEvery, cfg.KNNTrain, cfg.KNNTest, cfg.LogEvery, cfg.Threads, cfg.Workers = 1, 40, 40, 1, 1, 2
		_, fixture.err = train.Run(context.Background(), cfg, false, io.Discard)
	})
	if fixture.err != nil {
		t.Fatalf("training the tiny run: %v", fixture.err)
	}
	root = t.TempDir()
	dir = filepath.Join(root, "tiny")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(fixture.root, "tiny"))); err != nil {
		t.Fatal(err)
	}
	return root, dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.root != "" {
		os.RemoveAll(fixture.root)
	}
	os.Exit(code)
}

func newTestServer(t *testing.T, log io.Writer, roots ...string) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(Options{Roots: roots, Threads: 1, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close() })
	return s, ts
}

// get fetches path and decodes the JSON answer.
func get(t *testing.T, ts *httptest.Server, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %d, not JSON: %q", path, resp.StatusCode, b)
	}
	return resp.StatusCode, v
}

func TestRunsRunAndMetrics(t *testing.T) {
	root, dir := tinyRun(t)
	_, ts := newTestServer(t, nil, root)
	code, v := get(t, ts, "/api/runs")
	runs, _ := v["runs"].([]any)
	if code != 200 || len(runs) != 1 {
		t.Fatalf("/api/runs: %d %v", code, v)
	}
	r := runs[0].(map[string]any)
	if r["id"] != "tiny" || r["state"] != "finished" || r["epochs_done"] != 2.0 || r["epochs_total"] != 2.0 ||
		r["method"] != "corinfomax" || r["backbone"] != "resnet18 w2" {
		t.Fatalf("run summary: %v", r)
	}
	if knn, _ := r["knn"].(map[string]any); knn["k20"] == nil {
		t.Fatalf("run summary lacks the online kNN: %v", r)
	}
	code, v = get(t, ts, "/api/run?run=tiny")
	if cfg, _ := v["config"].(map[string]any); code != 200 || cfg["width"] != 2.0 {
		t.Fatalf("/api/run: %d %v", code, v)
	}
	code, v = get(t, ts, "/api/metrics?run=tiny")
	recs, _ := v["records"].([]any)
	if code != 200 || len(recs) != 12 { // 40 images / batch 8 = 5 steps per epoch, plus an epoch record each
		t.Fatalf("/api/metrics: %d, %d records, want 12", code, len(recs))
	}
	cursor := v["cursor"].(string)
	// The trainer is writing a line: nothing new until it ends.
	f, err := os.OpenFile(filepath.Join(dir, "metrics.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(`{"type":"step","epoch":3,"step":11,"lo`)
	_, v = get(t, ts, "/api/metrics?run=tiny&cursor="+cursor)
	if recs, _ := v["records"].([]any); len(recs) != 0 || v["cursor"] != cursor {
		t.Fatalf("a partial line gave records %v, cursor %v (was %s)", recs, v["cursor"], cursor)
	}
	if code, v = get(t, ts, "/api/runs"); code != 200 {
		t.Fatalf("/api/runs with a partial metrics line: %d %v", code, v)
	}
	f.WriteString(`ss":1.5}` + "\n")
	_, v = get(t, ts, "/api/metrics?run=tiny&cursor="+cursor)
	if recs, _ := v["records"].([]any); len(recs) != 1 || recs[0].(map[string]any)["loss"] != 1.5 {
		t.Fatalf("the completed line: records %v", v["records"])
	}
	code, v = get(t, ts, "/api/compare?run=tiny")
	rows, _ := v["rows"].([]any)
	if code != 200 || len(rows) != 1 || len(v["header"].([]any)) != len(rows[0].([]any)) {
		t.Fatalf("/api/compare: %d %v", code, v)
	}
}

func TestBadRequestsAndEscapes(t *testing.T) {
	root, _ := tinyRun(t)
	_, ts := newTestServer(t, nil, root)
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/api/run", 400, "missing parameter run"},
		{"/api/run?run=../tiny", 404, "not one of the served runs"},
		{"/api/run?run=" + root, 404, "not one of the served runs"},
		{"/api/run?run=tiny/../../etc", 404, "not one of the served runs"},
		{"/api/metrics?run=tiny&cursor=abc", 400, "parameter cursor"},
		{"/api/metrics?run=tiny&cursor=1--5", 400, "parameter cursor"},
		{"/api/compare", 400, "missing parameter run"},
		{"/api/compare?run=tiny&run=nope", 404, "nope"},
		{"/api/images?run=tiny&split=val2", 400, "parameter split"},
		{"/api/images?run=tiny&per_page=0", 400, "per_page"},
		{"/api/images?run=tiny&page=-1", 400, "parameter page"},
		{"/api/image?run=tiny&index=x", 400, "parameter index"},
		{"/api/image?run=tiny&index=40", 400, "past the 40"},
		{"/api/image?run=tiny&index=99999999999999999999", 400, "parameter index"},
		{"/api/neighbours?run=tiny", 400, "parameter index"},
		{"/api/neighbours?run=tiny&index=0&k=0", 400, "parameter k"},
		{"/api/neighbours?run=tiny&index=0&k=1e3", 400, "parameter k"},
	} {
		code, v := get(t, ts, tc.path)
		if msg, _ := v["error"].(string); code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("GET %s: %d %q, want %d and a message with %q", tc.path, code, msg, tc.code, tc.msg)
		}
	}
	// Files: only the embedded assets, never a path of the machine.
	for _, p := range []string{"/static/../../go.mod", "/static/%2e%2e/%2e%2e/go.mod", "/static/..%2fserve.go", "/tiny/config.json"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && (bytes.Contains(b, []byte("module github.com")) || bytes.Contains(b, []byte("package serve")) ||
			bytes.Contains(b, []byte(`"arch"`))) {
			t.Errorf("GET %s served a file outside the assets", p)
		}
	}
	for _, p := range []string{"/", "/run?run=tiny", "/neighbours?run=tiny", "/static/app.js", "/static/charts.js", "/static/style.css"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(b) < 100 {
			t.Errorf("GET %s: %d, %d bytes", p, resp.StatusCode, len(b))
		}
		b = bytes.ReplaceAll(b, []byte("http://www.w3.org/2000/svg"), nil) // the SVG namespace, not a URL fetched
		if bytes.Contains(b, []byte("https://")) || bytes.Contains(b, []byte("http://")) {
			t.Errorf("GET %s refers to an external URL (the page must work offline)", p)
		}
	}
	resp, err := http.Post(ts.URL+"/api/runs", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/runs: %d, want 405", resp.StatusCode)
	}
}

// neighbours asks until the features are computed.
func neighbours(t *testing.T, ts *httptest.Server, path string, body []byte) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var resp *http.Response
		var err error
		if body != nil {
			resp, err = http.Post(ts.URL+path, "image/png", bytes.NewReader(body))
		} else {
			resp, err = http.Get(ts.URL + path)
		}
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		switch {
		case resp.StatusCode == 200:
			return v
		case resp.StatusCode != 202:
			t.Fatalf("%s: %d %v", path, resp.StatusCode, v)
		case time.Now().After(deadline):
			t.Fatalf("%s: features still computing after 60 s: %v", path, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func first(t *testing.T, v map[string]any, key string) map[string]any {
	t.Helper()
	l, _ := v[key].([]any)
	if len(l) == 0 {
		t.Fatalf("no %s neighbours in %v", key, v)
	}
	return l[0].(map[string]any)
}

func TestNeighboursCachedAndUpload(t *testing.T) {
	root, dir := tinyRun(t)
	var log bytes.Buffer
	_, ts := newTestServer(t, &log, root)
	// The npy dataset's test split is its training split: image 7's
	// nearest training image is itself, in features and in pixels.
	v := neighbours(t, ts, "/api/neighbours?run=tiny&index=7&k=5", nil)
	if l := v["features"].([]any); len(l) != 5 {
		t.Fatalf("k=5 gave %d neighbours", len(l))
	}
	for _, key := range []string{"features", "pixels"} {
		nb := first(t, v, key)
		if nb["index"] != 7.0 || nb["similarity"].(float64) < 0.999 || nb["label"] != 1.0 {
			t.Errorf("%s: the nearest training image of test image 7 is %v, want itself (label 1, similarity 1)", key, nb)
		}
	}
	if q := v["query"].(map[string]any); q["label"] != 1.0 {
		t.Errorf("query %v, want label 7 %% 3 = 1", q)
	}
	cached, _ := filepath.Glob(filepath.Join(dir, CacheDir, "features-*-train.npy"))
	if len(cached) != 1 || !strings.Contains(log.String(), "features of 40 train images") {
		t.Fatalf("want one cached train feature file and the computation logged, got %v, log %q", cached, log.String())
	}
	// A new server reads the cache instead of computing.
	var log2 bytes.Buffer
	_, ts2 := newTestServer(t, &log2, root)
	v2 := neighbours(t, ts2, "/api/neighbours?run=tiny&index=7&k=5", nil)
	if strings.Contains(log2.String(), "features of") {
		t.Errorf("the second server recomputed the features: %q", log2.String())
	}
	if fmt.Sprint(v2["features"]) != fmt.Sprint(v["features"]) {
		t.Errorf("cached features give other neighbours:\n%v\n%v", v2["features"], v["features"])
	}
	// An uploaded image: training image 11 as a PNG finds itself in pixels.
	ds, err := data.Open(fixture.spec, data.Train, data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var im data.Image
	if err := ds.Image(11, &im); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	png.Encode(&buf, toImage(im))
	up := neighbours(t, ts, "/api/neighbours?run=tiny&k=3", buf.Bytes())
	if nb := first(t, up, "pixels"); nb["index"] != 11.0 || nb["similarity"].(float64) < 0.99 {
		t.Errorf("upload of training image 11: nearest in pixels %v", nb)
	}
	if nb := first(t, up, "features"); nb["similarity"].(float64) < 0.9 {
		t.Errorf("upload of training image 11: nearest in features %v", nb)
	}
	resp, err := http.Post(ts.URL+"/api/neighbours?run=tiny", "image/png", strings.NewReader("not an image"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("upload of garbage: %d, want 400", resp.StatusCode)
	}
	// The image endpoint serves the dataset's pixels.
	r, err := http.Get(ts.URL + "/api/image?run=tiny&split=train&index=11")
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(r.Body)
	r.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := got.(*image.Gray); !ok || g.Bounds().Dx() != 12 || !bytes.Equal(g.Pix, im.Pix) {
		t.Errorf("/api/image gave %T %v, want the 12x12 grey training image 11", got, got.Bounds())
	}
	code, pg := get(t, ts, "/api/images?run=tiny&split=test&page=1&per_page=16")
	if items := pg["images"].([]any); code != 200 || pg["total"] != 40.0 || pg["pages"] != 3.0 || len(items) != 16 ||
		items[0].(map[string]any)["index"] != 16.0 {
		t.Errorf("/api/images page 1: %d %v", code, pg)
	}
}

func TestCheckpointReplacedWhileServed(t *testing.T) {
	root, dir := tinyRun(t)
	_, ts := newTestServer(t, nil, root)
	neighbours(t, ts, "/api/neighbours?run=tiny&index=0", nil)
	ck := filepath.Join(dir, "checkpoint.safetensors")
	b, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	// The trainer writes a new checkpoint: a temporary file renamed over
	// the old one, a few times while the page asks.
	for i := 0; i < 3; i++ {
		tmp := filepath.Join(dir, fmt.Sprintf(".checkpoint.safetensors.tmp-%d", i))
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(tmp, time.Now(), time.Now().Add(time.Duration(i+1)*time.Second))
		if err := os.Rename(tmp, ck); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(ts.URL + "/api/neighbours?run=tiny&index=0")
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode != 200 || v["stale"] != true {
			t.Fatalf("while a new checkpoint is read: %d %v, want 200 with the previous one's neighbours (stale)", resp.StatusCode, v)
		}
	}
	v := neighbours(t, ts, "/api/neighbours?run=tiny&index=0", nil)
	for deadline := time.Now().Add(60 * time.Second); v["stale"] == true; {
		if time.Now().After(deadline) {
			t.Fatal("the new checkpoint was not read in 60 s")
		}
		time.Sleep(100 * time.Millisecond)
		v = neighbours(t, ts, "/api/neighbours?run=tiny&index=0", nil)
	}
	// Only the current checkpoint's features stay cached.
	if cached, _ := filepath.Glob(filepath.Join(dir, CacheDir, "*-train.npy")); len(cached) != 2 {
		t.Errorf("after the new checkpoint, the cache holds %v, want one features and one labels file", cached)
	}
	// No checkpoint (renamed away): a message, not a failure.
	os.Rename(ck, ck+".away")
	code, e := get(t, ts, "/api/neighbours?run=tiny&index=0")
	if code != 409 || !strings.Contains(e["error"].(string), "no checkpoint yet") {
		t.Fatalf("without a checkpoint: %d %v, want 409", code, e)
	}
}
