package runinfo

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// writeRun makes a run directory with config.json and the given metrics.
func writeRun(t *testing.T, dir, metrics string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"data":"npy:x","arch":"resnet18","width":16,"method":"corinfomax","recipe":"fashionmnist","epochs":2,"batch":64,"lr":0.5,"projector":"512-512-64"}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(metrics), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const (
	step1  = `{"type":"step","epoch":1,"step":1,"loss":2.5,"lr":0.1}` + "\n"
	epoch1 = `{"type":"epoch","epoch":1,"step":1,"knn":{"k20":40.5},"spectrum":{"effective_rank":7.5,"dim":64}}` + "\n"
	step2  = `{"type":"step","epoch":2,"step":2,"loss":2.0,"lr":0.1}` + "\n"
	epoch2 = `{"type":"epoch","epoch":2,"step":2,"knn":{"k20":50.25}}` + "\n"
)

func TestReadMetricsCompleteLinesOnly(t *testing.T) {
	dir := writeRun(t, t.TempDir(), step1+`{"type":"step","epoch":1,"st`)
	path := filepath.Join(dir, "metrics.jsonl")
	recs, cur, reset, err := ReadMetrics(path, Cursor{})
	if err != nil || reset || len(recs) != 1 || cur.Offset != int64(len(step1)) {
		t.Fatalf("want the one complete record and a cursor after it, got %v %v %v %v", recs, cur, reset, err)
	}
	// The trainer finishes the line and adds a junk line: only the new record.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`ep":2,"loss":1}` + "\nnot json\n")
	f.Close()
	recs, cur2, reset, err := ReadMetrics(path, cur)
	if err != nil || reset || len(recs) != 1 || recs[0]["loss"] != 1.0 {
		t.Fatalf("want the completed record only, got %v %v %v", recs, reset, err)
	}
	// A resume rewrites the file by rename: the cursor resets.
	tmp := path + ".new"
	os.WriteFile(tmp, []byte(step1), 0o644)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	recs, _, reset, err = ReadMetrics(path, cur2)
	if err != nil || !reset || len(recs) != 1 {
		t.Fatalf("after a rewrite want a reset and the file's record, got %v %v %v", recs, reset, err)
	}
	c, err := ParseCursor(cur2.String())
	if err != nil || c != cur2 {
		t.Fatalf("cursor round trip: %v %v", c, err)
	}
	for _, bad := range []string{"x", "1-", "-1", "1--2", "a-b"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}

func TestReadStates(t *testing.T) {
	root := t.TempDir()
	cases := []struct {
		name, metrics string
		want          State
	}{
		{"finished", step1 + epoch1 + step2 + epoch2, Finished},
		{"interrupted", step1 + epoch1 + step2, Interrupted},
		{"diverged", step1 + epoch1 + `{"type":"stop","reason":"diverged","epoch":2,"step":1,"error":"boom"}` + "\n", Diverged},
		{"nanloss", step1 + `{"type":"step","epoch":1,"step":2,"loss":"NaN"}` + "\n", Diverged},
		// Interrupted, then resumed and trained on: the stop is history.
		{"resumed", step1 + `{"type":"stop","reason":"diverged","epoch":1,"step":1}` + "\n" + step2, Interrupted},
	}
	for _, tc := range cases {
		s, err := Read(writeRun(t, filepath.Join(root, tc.name), tc.metrics))
		if err != nil {
			t.Fatal(err)
		}
		if s.State != tc.want {
			t.Errorf("%s: state %s, want %s", tc.name, s.State, tc.want)
		}
	}
	s, _ := Read(filepath.Join(root, "finished"))
	if s.EpochsDone != 2 || s.EpochsTotal != 2 || s.KNN["k20"] != 50.25 || s.EffectiveRank == nil || *s.EffectiveRank != 7.5 {
		t.Fatalf("finished run summary: %+v", s)
	}
	d, _ := Read(filepath.Join(root, "diverged"))
	if d.StopError != "boom" {
		t.Fatalf("diverged run: stop error %q, want boom", d.StopError)
	}
	row := s.CompareRow("-")
	if len(row) != len(CompareHeader()) || row[0] != "finished" || row[3] != "resnet18 w16" || row[4] != "2" {
		t.Fatalf("compare row %v", row)
	}
	if _, err := Read(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a run directory") {
		t.Fatalf("want an error for a directory without config.json, got %v", err)
	}
}

func TestLockedSeesTheTrainersFlock(t *testing.T) {
	dir := writeRun(t, t.TempDir(), step1)
	if ok, err := Locked(dir); ok || err != nil {
		t.Fatalf("no lock file: locked %v, %v", ok, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("pid 1\n")
	if ok, _ := Locked(dir); ok {
		t.Fatal("a lock file nobody holds reads as locked")
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if ok, err := Locked(dir); !ok || err != nil {
		t.Fatalf("held lock: locked %v, %v", ok, err)
	}
	if s, _ := Read(dir); s.State != Running {
		t.Fatalf("a locked run is %s, want running", s.State)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if ok, _ := Locked(dir); ok {
		t.Fatal("released lock still reads as locked")
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	writeRun(t, filepath.Join(root, "a"), "")
	writeRun(t, filepath.Join(root, "group", "b"), "")
	os.MkdirAll(filepath.Join(root, "empty"), 0o755)
	got, err := Find([]string{root, filepath.Join(root, "a")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, "a"), filepath.Join(root, "group", "b")}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Find: %v, want %v", got, want)
	}
	if _, err := Find([]string{filepath.Join(root, "missing")}); err == nil {
		t.Fatal("Find of a missing directory: no error")
	}
}
