package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/npy"
	"github.com/corinfomax/corinfomax/ssl"
)

// jsonOut decodes the single JSON object a --json command prints.
func jsonOut(t *testing.T, r result, what string) map[string]any {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\n%s", what, r.code, r.stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &m); err != nil {
		t.Fatalf("%s: stdout is not one JSON object: %v\n%q", what, err, r.stdout)
	}
	return m
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestCommandsEndToEnd runs every command on a tiny generated dataset:
// pretrain (two methods), knn, linear (precomputed and augmented), spectrum,
// embed, compare, data inspect and preview, and checks their outputs.
func TestCommandsEndToEnd(t *testing.T) {
	spec := tinyData(t, 40)
	dir := t.TempDir()
	runA, runB := filepath.Join(dir, "cim"), filepath.Join(dir, "vicreg")
	sum := jsonOut(t, run(t, append(tinyArgs(spec, runA, "--epochs", "2", "--knn-every", "1", "--knn-train", "40",
		"--knn-test", "40"), "--json")...), "pretrain")
	if sum["steps"].(float64) != 10 {
		t.Fatalf("pretrain: %v steps, want 10", sum["steps"])
	}
	for _, f := range []string{"config.json", "metrics.jsonl", "checkpoint.safetensors", "report.png"} {
		if _, err := os.Stat(filepath.Join(runA, f)); err != nil {
			t.Fatalf("pretrain did not write %s: %v", f, err)
		}
	}
	checkPNG(t, filepath.Join(runA, "report.png"))
	b, err := os.ReadFile(filepath.Join(runA, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"knn"`) || !strings.Contains(string(b), `"effective_rank"`) ||
		!strings.Contains(string(b), `"cov1"`) {
		t.Fatalf("metrics.jsonl lacks the kNN, spectrum or loss components:\n%s", b)
	}
	jsonOut(t, run(t, append(tinyArgs(spec, runB, "--method", "vicreg", "--epochs", "1"), "--json")...), "pretrain vicreg")

	knn := jsonOut(t, run(t, "knn", "--checkpoint", runA, "--k", "1,5", "--json", "--threads", "1"), "knn")
	for _, k := range []string{"knn_k1", "knn_k5"} {
		if v, ok := knn[k].(float64); !ok || v < 0 || v > 100 {
			t.Fatalf("knn: %s = %v", k, knn[k])
		}
	}
	// On the training images themselves, 1-NN finds each image: 100%.
	self := jsonOut(t, run(t, "knn", "--checkpoint", runA, "--data", spec, "--k", "1", "--json"), "knn self")
	if self["knn_k1"].(float64) != 100 {
		t.Fatalf("1-NN of the training set against itself: %v%%, want 100", self["knn_k1"])
	}
	lin := jsonOut(t, run(t, "linear", "--checkpoint", runA, "--epochs", "3", "--json"), "linear")
	if v, ok := lin["linear_top1"].(float64); !ok || v < 0 || v > 100 || lin["linear_top5"].(float64) != 100 {
		t.Fatalf("linear: %v (top-5 of 3 classes must be 100)", lin)
	}
	// knn and linear on a run directory record their results for compare.
	var ev map[string]any
	if raw, err := os.ReadFile(filepath.Join(runA, "eval.json")); err != nil {
		t.Fatalf("knn/linear on a run directory wrote no eval.json: %v", err)
	} else if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if ev["linear_top1"] != lin["linear_top1"] || ev["knn_k5"] != knn["knn_k5"] {
		t.Fatalf("eval.json %v does not hold the printed results (linear %v, knn k5 %v)", ev, lin["linear_top1"], knn["knn_k5"])
	}
	aug := jsonOut(t, run(t, "linear", "--checkpoint", runA, "--epochs", "2", "--no-augment=false", "--json"), "linear augmented")
	if aug["augment"] != true {
		t.Fatalf("linear --no-augment=false: %v", aug)
	}
	sp := jsonOut(t, run(t, "spectrum", "--checkpoint", runA, "--checkpoint", runB, "--out", filepath.Join(dir, "sp.png"),
		"--json"), "spectrum")
	if n := len(sp["spectra"].([]any)); n != 4 {
		t.Fatalf("spectrum: %d spectra, want 4 (2 checkpoints x projector/backbone)", n)
	}
	checkPNG(t, filepath.Join(dir, "sp.png"))
	checkPNG(t, filepath.Join(dir, "sp_backbone.png"))

	feat := filepath.Join(dir, "emb", "features.npy")
	if err := os.MkdirAll(filepath.Dir(feat), 0o755); err != nil {
		t.Fatal(err)
	}
	jsonOut(t, run(t, "embed", "--checkpoint", filepath.Join(runA, "checkpoint.safetensors"), "--data", spec,
		"--layer", "projector", "--out", feat, "--json"), "embed")
	a, err := npy.ReadFile(feat)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Shape) != 2 || a.Shape[0] != 40 || a.Shape[1] != 8 || a.Descr != "<f4" {
		t.Fatalf("embed wrote %s %v, want <f4 [40 8]", a.Descr, a.Shape)
	}
	l, err := npy.ReadFile(filepath.Join(dir, "emb", "labels.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if labels, _ := l.Int64(); len(labels) != 40 || labels[4] != 1 {
		t.Fatalf("labels.npy: %v", labels)
	}

	cmp := run(t, "compare", runA, runB, "--out", filepath.Join(dir, "cmp.png"))
	if cmp.code != 0 || !strings.Contains(cmp.stdout, "| corinfomax |") || !strings.Contains(cmp.stdout, "| vicreg |") {
		t.Fatalf("compare: exit %d\n%s\n%s", cmp.code, cmp.stdout, cmp.stderr)
	}
	checkPNG(t, filepath.Join(dir, "cmp.png"))

	ins := jsonOut(t, run(t, "data", "inspect", spec, "--json"), "data inspect")
	if ins["Len"].(float64) != 40 {
		t.Fatalf("data inspect: %v", ins)
	}
	pv := run(t, "data", "preview", spec, "--size", "12", "--n", "3", "--out", filepath.Join(dir, "views.png"))
	if pv.code != 0 {
		t.Fatalf("data preview: %s", pv.stderr)
	}
	checkPNG(t, filepath.Join(dir, "views.png"))
}

// TestDemoOnTinyData runs the main job on a tiny dataset: it pretrains,
// evaluates the three feature sets and writes its table.
func TestDemoOnTinyData(t *testing.T) {
	spec := tinyData(t, 40)
	out := filepath.Join(t.TempDir(), "demo")
	r := run(t, "demo", "--data", spec, "--out", out, "--width", "2", "--projector", "16-8", "--batch", "8",
		"--size", "12", "--epochs", "1", "--knn-every", "0", "--threads", "1", "--linear-epochs", "2")
	if r.code != 0 {
		t.Fatalf("demo: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"raw pixels", "random-init resnet18", "corinfomax resnet18", "kNN k=20"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("demo table lacks %q:\n%s", want, r.stdout)
		}
	}
	var d map[string]any
	b, err := os.ReadFile(filepath.Join(out, "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if len(d["scores"].([]any)) != 3 {
		t.Fatalf("demo.json: %v", d)
	}
	// Running it again reuses the finished run instead of training anew.
	r2 := run(t, "demo", "--data", spec, "--out", out, "--width", "2", "--projector", "16-8", "--batch", "8",
		"--size", "12", "--epochs", "1", "--knn-every", "0", "--threads", "1", "--linear-epochs", "2")
	if r2.code != 0 || !strings.Contains(r2.stderr, "resuming") {
		t.Fatalf("second demo: exit %d\n%s", r2.code, r2.stderr)
	}
}

// TestEveryMethodThroughEveryCommand pretrains every registered method on
// its own recipe (fitted to the tiny network by tinyMethodArgs) and runs each command that reads a checkpoint on it: knn, linear,
// spectrum, embed (backbone and projector), finetune and, over all of them,
// compare. A command that assumes one method's checkpoint layout (a
// fine-tune that kept BYOL's predictor did) fails here.
func TestEveryMethodThroughEveryCommand(t *testing.T) {
	spec := tinyData(t, 40)
	dir := t.TempDir()
	var runs []string
	for _, method := range ssl.Names() {
		out := filepath.Join(dir, method)
		runs = append(runs, out)
		args := append(tinyArgs(spec, out, "--method", method, "--epochs", "1", "--lr", "0.01"), tinyMethodArgs(method)...)
		if sum := jsonOut(t, run(t, append(args, "--json")...), method+": pretrain"); sum["steps"].(float64) != 5 {
			t.Fatalf("%s: pretrain ran %v steps, want 5", method, sum["steps"])
		}
		knn := jsonOut(t, run(t, "knn", "--checkpoint", out, "--k", "1,5", "--json", "--threads", "1"), method+": knn")
		if v, ok := knn["knn_k5"].(float64); !ok || v < 0 || v > 100 {
			t.Fatalf("%s: knn %v", method, knn)
		}
		lin := jsonOut(t, run(t, "linear", "--checkpoint", out, "--epochs", "1", "--threads", "1", "--json"), method+": linear")
		if lin["linear_top5"] != 100.0 {
			t.Fatalf("%s: linear %v (top-5 of 3 classes must be 100)", method, lin)
		}
		sp := jsonOut(t, run(t, "spectrum", "--checkpoint", out, "--out", filepath.Join(dir, method+"-sp.png"), "--threads", "1",
			"--json"), method+": spectrum")
		dims := map[string]float64{}
		for _, s := range sp["spectra"].([]any) {
			m := s.(map[string]any)
			dims[m["layer"].(string)] = m["dim"].(float64)
		}
		if dims["projector"] != 8 || dims["backbone"] != 16 {
			t.Fatalf("%s: spectrum dimensions %v, want projector 8, backbone 16", method, dims)
		}
		for layer, want := range map[string]int{"backbone": 16, "projector": 8} {
			feat := filepath.Join(dir, method+"-"+layer, "features.npy")
			if err := os.MkdirAll(filepath.Dir(feat), 0o755); err != nil {
				t.Fatal(err)
			}
			jsonOut(t, run(t, "embed", "--checkpoint", out, "--layer", layer, "--out", feat, "--threads", "1", "--json"),
				method+": embed "+layer)
			a, err := npy.ReadFile(feat)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Shape) != 2 || a.Shape[0] != 40 || a.Shape[1] != want {
				t.Fatalf("%s: embed --layer %s wrote %v, want [40 %d]", method, layer, a.Shape, want)
			}
		}
		ft := jsonOut(t, run(t, append(ftArgs(out, spec, filepath.Join(dir, method+"-ft"), "--labels", "2-per-class",
			"--epochs", "1"), "--json")...), method+": finetune")
		if ft["labelled_images"] != 6.0 || ft["top5"] != 100.0 {
			t.Fatalf("%s: finetune %v", method, ft)
		}
	}
	cmp := run(t, append(append([]string{"compare"}, runs...), "--out", filepath.Join(dir, "cmp.png"), "--threads", "1")...)
	if cmp.code != 0 {
		t.Fatalf("compare: exit %d\n%s", cmp.code, cmp.stderr)
	}
	for _, method := range ssl.Names() {
		if !strings.Contains(cmp.stdout, "| "+method+" ") {
			t.Fatalf("compare has no row for %s:\n%s", method, cmp.stdout)
		}
	}
}
