package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/checkpoint"
)

// sameBits compares the tensors of two checkpoints bit for bit, leaving
// out those whose name starts with skip (when skip is not empty).
func sameBits(t *testing.T, a, b, skip string) {
	t.Helper()
	fa, fb := readCheckpoints(t, a, b)
	n := 0
	for _, ta := range fa.Tensors {
		if skip != "" && strings.HasPrefix(ta.Name, skip) {
			continue
		}
		tb, ok := fb.Get(ta.Name)
		if !ok {
			t.Fatalf("%s lacks %s", b, ta.Name)
		}
		va, vb := floats(ta), floats(tb)
		if len(va) != len(vb) {
			t.Fatalf("%s: %d values against %d", ta.Name, len(va), len(vb))
		}
		for i := range va {
			if math.Float64bits(va[i]) != math.Float64bits(vb[i]) {
				t.Fatalf("%s[%d] = %v against %v", ta.Name, i, va[i], vb[i])
			}
		}
		n++
	}
	if n == 0 {
		t.Fatal("no tensors compared")
	}
}

// probeRecords returns the online_probe objects of the epoch records.
func probeRecords(t *testing.T, dir string) []map[string]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var rec struct {
			Type  string             `json:"type"`
			Probe map[string]float64 `json:"online_probe"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Type == "epoch" && rec.Probe != nil {
			out = append(out, rec.Probe)
		}
	}
	return out
}

// TestOnlineProbeLeavesTrainingUnchanged: with --online-probe the network,
// optimizer and method state are bit for bit those of a run without it (no
// gradient reaches the backbone, no random number is taken from the run),
// every epoch logs the probe's test top-1, and the checkpoint holds it.
func TestOnlineProbeLeavesTrainingUnchanged(t *testing.T) {
	spec := tinyData(t, 40)
	base := t.TempDir()
	plain, probed := filepath.Join(base, "plain"), filepath.Join(base, "probed")
	if r := run(t, tinyArgs(spec, plain, "--epochs", "2")...); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	r := run(t, tinyArgs(spec, probed, "--epochs", "2", "--online-probe")...)
	if r.code != 0 {
		t.Fatalf("--online-probe: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "online probe top-1") {
		t.Fatalf("the run does not report the probe:\n%s", r.stderr)
	}
	sameBits(t, plain, probed, "online_probe.")
	recs := probeRecords(t, probed)
	if len(recs) != 2 {
		t.Fatalf("%d epoch records with online_probe, want 2", len(recs))
	}
	for _, p := range recs {
		if p["top1"] < 0 || p["top1"] > 100 || p["test_images"] != 40 {
			t.Fatalf("online_probe record %v", p)
		}
	}
	f, err := checkpoint.Read(ckptPath(probed))
	if err != nil {
		t.Fatal(err)
	}
	w, ok := f.Get("online_probe.weight")
	if !ok || len(w.F32) != 3*16 { // 3 classes x the width-2 ResNet-18's 16 features
		t.Fatalf("checkpoint online_probe.weight: %v", w)
	}
}

// TestOnlineProbeResumes: a probed run of 4 epochs stopped at step 12 (mid
// epoch 3) and resumed ends bit for bit where an uninterrupted one does,
// probe included.
func TestOnlineProbeResumes(t *testing.T) {
	spec := tinyData(t, 40)
	base := t.TempDir()
	whole, split := filepath.Join(base, "whole"), filepath.Join(base, "split")
	if r := run(t, tinyArgs(spec, whole, "--epochs", "4", "--online-probe")...); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, tinyArgs(spec, split, "--epochs", "4", "--online-probe", "--max-steps", "12")...); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, tinyArgs(spec, split, "--epochs", "4", "--online-probe", "--max-steps", "0", "--resume")...); r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	sameBits(t, whole, split, "")
	if n := len(probeRecords(t, split)); n != 4 {
		t.Fatalf("%d probe records after the resume, want 4", n)
	}
}

// TestOnlineProbeNeedsLabels: unlabelled data is refused, naming the flag.
func TestOnlineProbeNeedsLabels(t *testing.T) {
	spec := tinyData(t, 40)
	images := strings.SplitN(strings.TrimPrefix(spec, "npy:"), ",", 2)[0]
	r := run(t, tinyArgs("npy:"+images, filepath.Join(t.TempDir(), "run"), "--online-probe")...)
	if r.code != 2 || !strings.Contains(r.stderr, "--online-probe") || !strings.Contains(r.stderr, "no labels") {
		t.Fatalf("exit %d, want 2 and a message naming --online-probe:\n%s", r.code, r.stderr)
	}
}
