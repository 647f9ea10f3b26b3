// Package serve is the local web page of `corinfomax serve`: the runs of
// one or more run directories with their state and latest results, a
// comparison table, each run's curves (updated while it trains) and a
// browser of nearest neighbours in the backbone's feature space beside the
// nearest neighbours in raw pixels.
//
// Every asset (HTML, CSS, the plain-JS SVG charts) is embedded in the
// binary. The JSON API the page uses is documented in the README
// ("Looking at runs: corinfomax serve"). The server only reads the run
// directories, except for RUNDIR/serve-cache/, where it keeps the
// features of each checkpoint (written atomically); it never takes a run's
// lock. Runs are named by an ID (their path relative to the directory
// given), never by a file path, so a request cannot reach outside the
// served directories.
package serve

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/runinfo"
)

//go:embed assets
var assets embed.FS

// Options configures a Server.
type Options struct {
	// Roots are the directories served: run directories, or folders of
	// them (two levels deep).
	Roots []string
	// NeighboursLimit is how many training images the neighbour browser
	// searches (the first ones of the split; default 10000).
	NeighboursLimit int
	// TestLimit is how many test images it offers as queries (default 10000).
	TestLimit int
	// Threads are the compute threads of feature extraction (0: all cores).
	Threads int
	// Backend is the operator backend ("" for the default).
	Backend string
	// Log receives one line per feature computation and error (nil: none).
	Log io.Writer
}

// Server serves the pages and the JSON API. Its methods are safe for
// concurrent use.
type Server struct {
	opts Options
	ctx  context.Context // cancelled by Close: stops feature computations
	stop context.CancelFunc

	mu       sync.Mutex
	runs     map[string]string // ID -> run directory
	indexes  map[string]*runIndex
	datasets map[dsKey]data.Dataset
	wg       sync.WaitGroup
}

type dsKey struct {
	spec  string
	split data.Split
	limit int
}

// New checks the roots and returns a server over them.
func New(opts Options) (*Server, error) {
	if len(opts.Roots) == 0 {
		return nil, errors.New("serve: no run directory given")
	}
	if opts.NeighboursLimit < 0 || opts.TestLimit < 0 {
		return nil, errors.New("serve: the image limits must be >= 0")
	}
	if opts.NeighboursLimit == 0 {
		opts.NeighboursLimit = 10000
	}
	if opts.TestLimit == 0 {
		opts.TestLimit = 10000
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if _, err := runinfo.Find(opts.Roots); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Server{opts: opts, ctx: ctx, stop: stop, runs: map[string]string{},
		indexes: map[string]*runIndex{}, datasets: map[dsKey]data.Dataset{}}, nil
}

// Close stops the feature computations in progress, waits for them and
// releases the encoders and datasets.
func (s *Server) Close() error {
	s.stop()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ix := range s.indexes {
		ix.close()
	}
	for _, ds := range s.datasets {
		if c, ok := ds.(io.Closer); ok {
			c.Close()
		}
	}
	s.indexes, s.datasets = map[string]*runIndex{}, map[dsKey]data.Dataset{}
	return nil
}

// Serve answers HTTP requests on ln until ctx is cancelled, then shuts
// the server down (requests in flight get 5 s to finish).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutting down: %w", err)
	}
	return nil
}

// Handler is the server's HTTP handler: the pages, /static/ and /api/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// The three pages are one shell (assets/page.html) that app.js fills
	// according to its body's data-page.
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := assets.ReadFile("assets/page.html")
			if err != nil {
				httpError(w, http.StatusInternalServerError, err.Error())
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(bytes.Replace(b, []byte(`data-page="runs"`), []byte(`data-page="`+name+`"`), 1))
		}
	}
	mux.HandleFunc("GET /{$}", page("runs"))
	mux.HandleFunc("GET /run", page("run"))
	mux.HandleFunc("GET /neighbours", page("neighbours"))
	static, _ := fs.Sub(assets, "assets") // "assets" exists: it is embedded
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /api/runs", s.handleRuns)
	mux.HandleFunc("GET /api/run", s.handleRun)
	mux.HandleFunc("GET /api/metrics", s.handleMetrics)
	mux.HandleFunc("GET /api/compare", s.handleCompare)
	mux.HandleFunc("GET /api/images", s.handleImages)
	mux.HandleFunc("GET /api/image", s.handleImage)
	mux.HandleFunc("GET /api/neighbours", s.handleNeighbours)
	mux.HandleFunc("POST /api/neighbours", s.handleUpload)
	return recoverer(s.opts.Log, mux)
}

// recoverer turns a panic in a handler into a 500 with a message (the
// server goes on) instead of a dropped connection.
func recoverer(log io.Writer, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				fmt.Fprintf(log, "serve: %s %s: internal error: %v\n", r.Method, r.URL, v)
				httpError(w, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// apiError is an error with its HTTP status.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// fail answers err: its status when it is an apiError, else 500.
func fail(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		httpError(w, ae.code, ae.msg)
		return
	}
	httpError(w, http.StatusInternalServerError, err.Error())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// refresh rediscovers the runs under the roots and names each by an ID:
// its path relative to the root that holds it (the base name when the
// root is the run), with the root's name in front when several roots are
// served.
func (s *Server) refresh() (map[string]string, error) {
	dirs, err := runinfo.Find(s.opts.Roots)
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, dir := range dirs {
		id := s.idOf(dir)
		for base, n := id, 2; ids[id] != ""; n++ {
			id = fmt.Sprintf("%s-%d", base, n)
		}
		ids[id] = dir
	}
	s.mu.Lock()
	s.runs = ids
	s.mu.Unlock()
	return ids, nil
}

func (s *Server) idOf(dir string) string {
	best := filepath.Base(dir)
	for _, root := range s.opts.Roots {
		root = filepath.Clean(root)
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if rel == "." {
			rel = filepath.Base(dir)
		}
		if len(s.opts.Roots) > 1 && rel != filepath.Base(dir) {
			rel = filepath.Join(filepath.Base(root), rel)
		}
		best = filepath.ToSlash(rel)
		break
	}
	return best
}

// runDir resolves the run parameter of r to a served run directory; an ID
// that is not one of the served runs (a path, "..") is refused.
func (s *Server) runDir(r *http.Request) (string, string, error) {
	return s.lookup(r.URL.Query().Get("run"))
}

// lookup resolves a run ID to its directory.
func (s *Server) lookup(id string) (string, string, error) {
	if id == "" {
		return "", "", badRequest("missing parameter run: a run ID from /api/runs")
	}
	s.mu.Lock()
	dir, ok := s.runs[id]
	s.mu.Unlock()
	if !ok {
		ids, err := s.refresh()
		if err != nil {
			return "", "", err
		}
		dir, ok = ids[id]
	}
	if !ok {
		return "", "", &apiError{http.StatusNotFound, fmt.Sprintf("run %q is not one of the served runs (see /api/runs)", id)}
	}
	return id, dir, nil
}

// runJSON is a run's summary as the API gives it.
type runJSON struct {
	ID string `json:"id"`
	*runinfo.Summary
}

func (s *Server) handleRuns(w http.ResponseWriter, r *http.Request) {
	ids, err := s.refresh()
	if err != nil {
		fail(w, err)
		return
	}
	out := []runJSON{}
	for id, dir := range ids {
		sum, err := runinfo.Read(dir)
		if err != nil {
			fmt.Fprintf(s.opts.Log, "serve: %v\n", err)
			continue // a run directory being created
		}
		out = append(out, runJSON{id, sum})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, map[string]any{"runs": out})
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	id, dir, err := s.runDir(r)
	if err != nil {
		fail(w, err)
		return
	}
	sum, err := runinfo.Read(dir)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": runJSON{id, sum}, "config": sum.Config})
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	_, dir, err := s.runDir(r)
	if err != nil {
		fail(w, err)
		return
	}
	cur, err := runinfo.ParseCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		fail(w, badRequest("parameter cursor: %v", err))
		return
	}
	recs, next, reset, err := runinfo.ReadMetrics(model.RunDir(dir).Metrics(), cur)
	if err != nil {
		fail(w, err)
		return
	}
	if recs == nil {
		recs = []runinfo.Record{}
	}
	state := ""
	if sum, err := runinfo.Read(dir); err == nil {
		state = string(sum.State)
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs, "cursor": next.String(), "reset": reset, "state": state})
}

func (s *Server) handleCompare(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["run"]
	if len(ids) == 0 {
		fail(w, badRequest("missing parameter run: give one or more run IDs (run=a&run=b)"))
		return
	}
	var rows [][]string
	for _, id := range ids {
		_, dir, err := s.lookup(id)
		if err != nil {
			fail(w, err)
			return
		}
		sum, err := runinfo.Read(dir)
		if err != nil {
			fail(w, err)
			return
		}
		erank := "-"
		if sum.EffectiveRank != nil {
			erank = fmt.Sprintf("%.1f / %d", *sum.EffectiveRank, sum.Dim)
		}
		sum.Name = id
		rows = append(rows, sum.CompareRow(erank))
	}
	writeJSON(w, http.StatusOK, map[string]any{"header": runinfo.CompareHeader(), "rows": rows,
		"note": "effective rank: the last epoch's, as the trainer logged it (corinfomax compare recomputes it on the training images)"})
}
