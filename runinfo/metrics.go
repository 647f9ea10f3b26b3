// Package runinfo reads pretraining run directories, also while a run is
// writing them: the records of metrics.jsonl (complete lines only, from a
// cursor), whether the run is running, finished, interrupted or diverged,
// and the summary row that `corinfomax compare` prints. It never writes
// into a run directory and never takes the run's lock.
package runinfo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Record is one record of metrics.jsonl, as decoded JSON.
type Record = map[string]any

// Cursor marks how far metrics.jsonl has been read: the file's identity
// (its inode: the trainer rewrites the file by renaming a new one over it
// when a run resumes) and the offset after the last complete line read.
type Cursor struct {
	Inode  uint64
	Offset int64
}

// String is the cursor as ParseCursor reads it: "INODE-OFFSET".
func (c Cursor) String() string { return fmt.Sprintf("%d-%d", c.Inode, c.Offset) }

// ParseCursor reads a cursor written by Cursor.String; "" is the start.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	ino, err1 := strconv.ParseUint(a, 10, 64)
	off, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || off < 0 {
		return Cursor{}, fmt.Errorf("cursor %q: want INODE-OFFSET as returned by an earlier read, two non-negative integers", s)
	}
	return Cursor{Inode: ino, Offset: off}, nil
}

// maxRead bounds what one ReadMetrics call reads (the rest comes with the
// next call, from the returned cursor).
const maxRead = 64 << 20

// ReadMetrics returns the records of the complete lines of the metrics file
// at path after cur, and the cursor to read on from. A last line without
// its newline (the trainer is writing it) is left for the next call; lines
// that are not JSON objects are skipped. When the file is not the one cur
// was taken on (it was replaced) or is shorter than cur's offset, reading
// restarts from the beginning and reset is true: the caller drops what it
// had. A missing file is no records and no error.
func ReadMetrics(path string, cur Cursor) (recs []Record, next Cursor, reset bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, Cursor{}, cur != Cursor{}, nil
	}
	if err != nil {
		return nil, cur, false, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, cur, false, fmt.Errorf("reading %s: %w", path, err)
	}
	var ino uint64
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = s.Ino
	}
	if (cur.Inode != 0 && cur.Inode != ino) || cur.Offset > st.Size() {
		cur, reset = Cursor{}, true
	}
	cur.Inode = ino
	n := min(st.Size()-cur.Offset, maxRead)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, cur.Offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, cur, reset, fmt.Errorf("reading %s: %w", path, err)
	}
	end := bytes.LastIndexByte(buf, '\n') + 1 // complete lines only
	for _, line := range bytes.Split(buf[:end], []byte{'\n'}) {
		var rec Record
		if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &rec) != nil || rec == nil {
			continue
		}
		recs = append(recs, rec)
	}
	cur.Offset += int64(end)
	return recs, cur, reset, nil
}

// Num returns rec[key] as a number, and whether it is one.
func Num(rec Record, key string) (float64, bool) {
	v, ok := rec[key].(float64)
	return v, ok
}
