package runinfo

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/train"
	"golang.org/x/sys/unix"
)

// State is where a run stands.
type State string

// The states of a run.
const (
	Running     State = "running"     // a process holds the run's lock
	Finished    State = "finished"    // all its epochs (or --max-steps) are done
	Interrupted State = "interrupted" // stopped before its end (Ctrl-C, killed): resumable
	Diverged    State = "diverged"    // stopped on a non-finite loss or gradient
)

// Summary is what a run directory says about its run.
type Summary struct {
	Name        string `json:"name"` // the directory's base name
	Dir         string `json:"dir"`
	Method      string `json:"method"`
	Recipe      string `json:"recipe"`
	Backbone    string `json:"backbone"` // "resnet18 w16"
	Data        string `json:"data"`
	EpochsDone  int    `json:"epochs_done"`
	EpochsTotal int    `json:"epochs_total"`
	Step        int    `json:"step"` // the last logged step
	MaxSteps    int    `json:"max_steps,omitempty"`
	State       State  `json:"state"`
	// StopError is the error a diverged or interrupted run recorded.
	StopError string `json:"stop_error,omitempty"`
	// KNN is the last online kNN top-1 per k ("k20": 83.1), Probe the
	// last online probe top-1, EffectiveRank and Dim the last epoch's
	// spectrum.
	KNN           map[string]float64 `json:"knn,omitempty"`
	Probe         *float64           `json:"online_probe,omitempty"`
	EffectiveRank *float64           `json:"effective_rank,omitempty"`
	Dim           int                `json:"dim,omitempty"`
	// Eval is RUNDIR/eval.json (knn, linear and demo results).
	Eval          map[string]any `json:"eval,omitempty"`
	HasCheckpoint bool           `json:"has_checkpoint"`
	// Updated is when metrics.jsonl last changed.
	Updated time.Time `json:"updated"`
	// Config is the run's config.json.
	Config train.Config `json:"-"`
}

// IsRun reports whether dir looks like a run directory (it has config.json).
func IsRun(dir string) bool {
	st, err := os.Stat(model.RunDir(dir).Config())
	return err == nil && st.Mode().IsRegular()
}

// Read summarises the run in dir from its config.json, metrics.jsonl,
// eval.json and lock. Only a missing or unreadable config.json is an error;
// a metrics line being written is ignored.
func Read(dir string) (*Summary, error) {
	d := model.RunDir(dir)
	b, err := os.ReadFile(d.Config())
	if err != nil {
		return nil, fmt.Errorf("%s is not a run directory: %w", dir, err)
	}
	var cfg train.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Config(), err)
	}
	s := &Summary{Name: filepath.Base(filepath.Clean(dir)), Dir: dir, Method: cfg.Method, Recipe: cfg.Recipe,
		Backbone: fmt.Sprintf("%s w%d", cfg.Arch, cfg.Width), Data: cfg.Data, EpochsTotal: cfg.Epochs,
		MaxSteps: cfg.MaxSteps, HasCheckpoint: d.HasCheckpoint(), Config: cfg}
	if eb, err := os.ReadFile(d.Eval()); err == nil {
		_ = json.Unmarshal(eb, &s.Eval) // a torn eval.json shows as none
	}
	if st, err := os.Stat(d.Metrics()); err == nil {
		s.Updated = st.ModTime()
	}
	recs, _, _, err := ReadMetrics(d.Metrics(), Cursor{})
	if err != nil {
		return nil, err
	}
	var lastStep Record
	var stop Record
	for _, rec := range recs {
		switch rec["type"] {
		case "step":
			lastStep, stop = rec, nil
			if v, ok := Num(rec, "step"); ok {
				s.Step = int(v)
			}
		case "epoch":
			stop = nil
			s.epoch(rec)
		case "stop":
			stop = rec
		}
	}
	running, err := Locked(dir)
	if err != nil {
		return nil, err
	}
	switch {
	case running:
		s.State = Running
	case s.EpochsDone >= cfg.Epochs || (cfg.MaxSteps > 0 && s.Step >= cfg.MaxSteps):
		s.State = Finished
	case stop != nil && stop["reason"] == "diverged", stop == nil && lastStep != nil && !finite(lastStep["loss"]):
		s.State = Diverged
	default:
		s.State = Interrupted
	}
	if stop != nil && s.State != Running && s.State != Finished {
		s.StopError, _ = stop["error"].(string)
	}
	return s, nil
}

// epoch takes the numbers of an epoch record.
func (s *Summary) epoch(rec Record) {
	if v, ok := Num(rec, "epoch"); ok {
		s.EpochsDone = int(v)
	}
	if v, ok := Num(rec, "step"); ok {
		s.Step = int(v)
	}
	if knn, ok := rec["knn"].(map[string]any); ok {
		s.KNN = map[string]float64{}
		for k, v := range knn {
			if f, ok := v.(float64); ok {
				s.KNN[k] = f
			}
		}
	}
	if pr, ok := rec["online_probe"].(map[string]any); ok {
		if v, ok := pr["top1"].(float64); ok {
			s.Probe = &v
		}
	}
	if sp, ok := rec["spectrum"].(map[string]any); ok {
		if v, ok := sp["effective_rank"].(float64); ok {
			s.EffectiveRank = &v
		}
		if v, ok := sp["dim"].(float64); ok {
			s.Dim = int(v)
		}
	}
}

// finite reports whether a logged value is a finite number (the trainer
// logs NaN and Inf as strings).
func finite(v any) bool {
	f, ok := v.(float64)
	return ok && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// Locked reports whether a process holds the flock of dir's .lock (a run
// is training into dir). It takes no lock itself: it looks the lock file's
// device and inode up in /proc/locks, and where that file cannot be read,
// checks that the process named in .lock is alive.
func Locked(dir string) (bool, error) {
	path := model.RunDir(dir).Lock()
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", path, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false, nil
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return pidAlive(path), nil
	}
	defer f.Close()
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(sys.Dev), unix.Minor(sys.Dev), sys.Ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 10164 fe:00:9979869 0 EOF"; a
		// waiter's line has "->" after the number.
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && fields[1] == "->" {
			continue
		}
		if len(fields) >= 6 && fields[1] == "FLOCK" && sameDevIno(fields[5], want) {
			return true, nil
		}
	}
	return false, nil
}

// sameDevIno compares /proc/locks's "MAJ:MIN:INODE" (hex, hex, decimal)
// with want, ignoring the zero padding of the device numbers.
func sameDevIno(got, want string) bool {
	norm := func(s string) string {
		p := strings.Split(s, ":")
		if len(p) != 3 {
			return s
		}
		a, _ := strconv.ParseUint(p[0], 16, 32)
		b, _ := strconv.ParseUint(p[1], 16, 32)
		return fmt.Sprintf("%x:%x:%s", a, b, p[2])
	}
	return norm(got) == norm(want)
}

// pidAlive reports whether the process of a lock file's "pid N" lives.
func pidAlive(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "pid")))
	if err != nil || pid < 1 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// CompareHeader is the header of the table `corinfomax compare` prints.
func CompareHeader() []string {
	return []string{"run", "method", "recipe", "backbone", "epochs", "batch", "lr",
		"projector", "kNN k=20", "kNN k=200", "linear top-1", "linear top-5", "effective rank"}
}

// CompareRow is the run's row of that table; erank is its effective-rank
// cell (compare computes it from the projector outputs of the training
// images; "-" when unknown).
func (s *Summary) CompareRow(erank string) []string {
	epochs := "-"
	if s.EpochsDone > 0 {
		epochs = strconv.Itoa(s.EpochsDone)
	}
	num := func(key string) string {
		if f, ok := s.Eval[key].(float64); ok {
			return fmt.Sprintf("%.2f", f)
		}
		return "-"
	}
	c := s.Config
	return []string{s.Name, c.Method, c.Recipe, s.Backbone, epochs, fmt.Sprint(c.Batch), fmt.Sprint(c.LR), c.Projector,
		num("knn_k20"), num("knn_k200"), num("linear_top1"), num("linear_top5"), erank}
}

// Find lists the run directories under each of roots: a root that is a run
// directory itself, else its subdirectories (to two levels) that are.
// The result is sorted, each directory once.
func Find(roots []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(d string) {
		if c := filepath.Clean(d); !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, root := range roots {
		st, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", root)
		}
		if IsRun(root) {
			add(root)
			continue
		}
		for _, d := range subdirs(root) {
			if IsRun(d) {
				add(d)
				continue
			}
			for _, dd := range subdirs(d) {
				if IsRun(dd) {
					add(dd)
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// subdirs lists the directories in dir (none when it cannot be read).
func subdirs(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			out = append(out, p)
		}
	}
	return out
}
