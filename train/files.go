package train

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/corinfomax/corinfomax/internal/atomicfile"
	"github.com/corinfomax/corinfomax/model"
)

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic writes b to a temporary file next to path, syncs it and
// renames it into place, so a crash never leaves a partial file at path.
func writeFileAtomic(path string, b []byte) error { return atomicfile.WriteBytes(path, b) }

// removeStaleTemps deletes the temporary files that a process killed while
// writing a run file leaves behind (the caller holds the run directory's
// lock, so no writer is active).
func removeStaleTemps(dir string, log io.Writer) {
	for _, pat := range model.TempPatterns() {
		names, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, name := range names {
			if err := os.Remove(name); err == nil {
				fmt.Fprintf(log, "removed %s, left by an interrupted write\n", name)
			}
		}
	}
}

// openRunDir prepares the run directory dir for a writer: creates it,
// checks it is writable, takes its lock (released by the returned
// function) and removes the temporary files a killed writer left.
func openRunDir(dir string, log io.Writer) (func(), error) {
	if err := ensureWritable(dir); err != nil {
		return nil, err
	}
	unlock, err := lockRunDir(dir)
	if err != nil {
		return nil, err
	}
	removeStaleTemps(dir, log)
	return unlock, nil
}

func ensureWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cfgErr("out", "cannot create the run directory: %v", err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return cfgErr("out", "the run directory %s is not writable: %v", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
