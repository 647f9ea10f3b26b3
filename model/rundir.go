package model

import (
	"fmt"
	"os"
	"path/filepath"
)

// The files of a run directory.
const (
	CheckpointFile = "checkpoint.safetensors" // weights and training state
	ConfigFile     = "config.json"            // the run's effective configuration
	MetricsFile    = "metrics.jsonl"          // one JSON record per logged step and epoch
	ReportFile     = "report.png"             // loss curves, online kNN, spectrum
	EvalFile       = "eval.json"              // results of knn, linear and demo on the run
	LockFile       = ".lock"                  // flocked by the process training into the run
)

// RunDir is a pretraining run's directory.
type RunDir string

// Checkpoint is the path of the run's checkpoint.
func (d RunDir) Checkpoint() string { return d.file(CheckpointFile) }

// Config is the path of the run's config.json.
func (d RunDir) Config() string { return d.file(ConfigFile) }

// Metrics is the path of the run's metrics.jsonl.
func (d RunDir) Metrics() string { return d.file(MetricsFile) }

// Report is the path of the run's report.png.
func (d RunDir) Report() string { return d.file(ReportFile) }

// Eval is the path of the run's eval.json.
func (d RunDir) Eval() string { return d.file(EvalFile) }

// Lock is the path of the run's lock file.
func (d RunDir) Lock() string { return d.file(LockFile) }

func (d RunDir) file(name string) string { return filepath.Join(string(d), name) }

// HasCheckpoint reports whether the run holds a checkpoint to resume from.
// A run killed before its first checkpoint has none.
func (d RunDir) HasCheckpoint() bool {
	st, err := os.Stat(d.Checkpoint())
	return err == nil && st.Mode().IsRegular()
}

// TempPatterns are the glob patterns, relative to the run directory, of the
// temporary files an interrupted atomic write of a run file leaves behind.
func TempPatterns() []string {
	pats := []string{".write-test-*"}
	for _, name := range []string{CheckpointFile, ConfigFile, MetricsFile, ReportFile, EvalFile} {
		pats = append(pats, name+".tmp-*", "."+name+".tmp-*")
	}
	return pats
}

// ResolveCheckpoint turns a run directory into its checkpoint path; a file
// path is returned as is.
func ResolveCheckpoint(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if st.IsDir() {
		d := RunDir(path)
		if _, err := os.Stat(d.Checkpoint()); err != nil {
			return "", fmt.Errorf("run directory %s has no %s yet: %w", path, CheckpointFile, err)
		}
		return d.Checkpoint(), nil
	}
	return path, nil
}
