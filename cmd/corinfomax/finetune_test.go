package main

import (
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/internal/testutil"
	"github.com/corinfomax/corinfomax/npy"
)

// pretrained returns a tiny pretrained run on spec (2 epochs).
func pretrained(t *testing.T, spec string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pre")
	if r := run(t, tinyArgs(spec, dir, "--epochs", "2")...); r.code != 0 {
		t.Fatalf("pretrain: exit %d\n%s", r.code, r.stderr)
	}
	return dir
}

func ftArgs(ck, spec, out string, extra ...string) []string {
	return append([]string{"finetune", "--checkpoint", ck, "--data", spec, "--out", out, "--batch", "8",
		"--threads", "1", "--workers", "2", "--seed", "1"}, extra...)
}

func labelledIndices(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "labelled.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Indices []int `json:"indices"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.Indices
}

// TestFinetuneSubsetAndOutputs: the labelled subset is balanced, written
// down and fixed by --seed; every epoch logs test top-1 and top-5; the
// saved network has torchvision's fc.weight and fc.bias and no projector.
func TestFinetuneSubsetAndOutputs(t *testing.T) {
	spec := tinyData(t, 60) // labels i % 3
	pre := pretrained(t, spec)
	base := t.TempDir()
	a, b, c := filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")
	r := run(t, append(ftArgs(pre, spec, a, "--labels", "4-per-class", "--epochs", "2"), "--json")...)
	if r.code != 0 {
		t.Fatalf("finetune: exit %d\n%s", r.code, r.stderr)
	}
	var sum struct {
		Labelled   int     `json:"labelled_images"`
		TestImages int     `json:"test_images"`
		Top1       float64 `json:"top1"`
		Top5       float64 `json:"top5"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Labelled != 12 || sum.TestImages != 60 || sum.Top5 != 100 {
		t.Fatalf("summary %s (%v): want 12 labelled, 60 test images, top-5 100 with 3 classes", r.stdout, err)
	}
	idx := labelledIndices(t, a)
	count := map[int]int{}
	for _, i := range idx {
		count[i%3]++
	}
	if len(idx) != 12 || count[0] != 4 || count[1] != 4 || count[2] != 4 {
		t.Fatalf("labelled indices %v: want 4 of each class", idx)
	}
	if r := run(t, ftArgs(pre, spec, b, "--labels", "4-per-class", "--epochs", "1")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := run(t, append(ftArgs(pre, spec, c, "--labels", "4-per-class", "--epochs", "1"), "--seed", "2")...); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if got := labelledIndices(t, b); !equalInts(got, idx) {
		t.Fatalf("the same seed drew %v, then %v", idx, got)
	}
	if got := labelledIndices(t, c); equalInts(got, idx) {
		t.Fatalf("seeds 1 and 2 drew the same subset %v", got)
	}
	f, err := checkpoint.Read(ckptPath(a))
	if err != nil {
		t.Fatal(err)
	}
	w, ok1 := f.Get("fc.weight")
	bias, ok2 := f.Get("fc.bias")
	if !ok1 || !ok2 || len(w.F32) != 3*16 || len(bias.F32) != 3 {
		t.Fatalf("fc.weight %v, fc.bias %v: want 3x16 and 3", w, bias)
	}
	for _, tt := range f.Tensors {
		if strings.HasPrefix(tt.Name, "projector.") {
			t.Fatalf("the fine-tuned network keeps %s", tt.Name)
		}
	}
	n := 0
	for _, l := range strings.Split(readFile(t, filepath.Join(a, "metrics.jsonl")), "\n") {
		if strings.Contains(l, `"type":"epoch"`) && strings.Contains(l, `"top1"`) && strings.Contains(l, `"top5"`) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d epoch records with top1 and top5, want 2", n)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFinetuneInterruptResume: SIGINT mid-run saves a checkpoint and exits
// 0 with the resume command; --resume then ends bit for bit where an
// uninterrupted run ends.
func TestFinetuneInterruptResume(t *testing.T) {
	spec := tinyData(t, 40)
	pre := pretrained(t, spec)
	base := t.TempDir()
	whole, split := filepath.Join(base, "whole"), filepath.Join(base, "split")
	args := func(out string) []string { return ftArgs(pre, spec, out, "--labels", "8-per-class", "--epochs", "60") }
	if r := run(t, args(whole)...); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	p := start(t, nil, args(split)...)
	waitFor(t, time.Minute, "two epochs", func() bool {
		b, _ := os.ReadFile(filepath.Join(split, "metrics.jsonl"))
		return strings.Count(string(b), `"type":"epoch"`) >= 2
	})
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	res := p.wait(t, time.Minute)
	if res.code != 0 || !strings.Contains(res.stderr, "--out "+split+" --resume") {
		t.Fatalf("exit %d after SIGINT, want 0 and the resume command:\n%s", res.code, res.stderr)
	}
	if pos := position(t, split); pos >= 60*3 {
		t.Fatalf("the run finished (step %d) instead of stopping", pos)
	}
	if r := run(t, "finetune", "--out", split, "--resume", "--threads", "1"); r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	sameBits(t, whole, split, "")
}

// TestFinetuneBadInput: clear errors naming the flag for unlabelled data,
// a budget that leaves a class without images, and a checkpoint for images
// of another channel count.
func TestFinetuneBadInput(t *testing.T) {
	spec := tinyData(t, 40)
	pre := pretrained(t, spec)
	out := filepath.Join(t.TempDir(), "ft")
	images := strings.SplitN(strings.TrimPrefix(spec, "npy:"), ",", 2)[0]
	rgb := filepath.Join(t.TempDir(), "rgb.npy")
	if err := npy.WriteUint8(rgb, []int{40, 12, 12, 3}, make([]uint8, 40*12*12*3)); err != nil {
		t.Fatal(err)
	}
	labels := strings.SplitN(spec, ",", 2)[1]
	for _, c := range []struct {
		args []string
		want []string
	}{
		{ftArgs(pre, "npy:"+images, out, "--labels", "2-per-class"), []string{"--data", "no labels"}},
		{ftArgs(pre, spec, out, "--labels", "1%"), []string{"--labels", "no labelled image"}},
		{ftArgs(pre, spec, out, "--labels", "20-per-class"), []string{"--labels", "class 0 has 14 images"}},
		{ftArgs(pre, "npy:"+rgb+","+labels, out, "--labels", "2-per-class"), []string{"--checkpoint", "1-channel", "3 channels"}},
		{ftArgs(filepath.Join(out, "absent"), spec, out, "--labels", "2-per-class"), []string{"--checkpoint"}},
	} {
		r := run(t, c.args...)
		ok := r.code != 0
		for _, w := range c.want {
			ok = ok && strings.Contains(r.stderr, w)
		}
		if !ok {
			t.Fatalf("%v: exit %d, want a failure saying %q:\n%s", c.args, r.code, c.want, r.stderr)
		}
	}
}

// stripes writes n learnable 12x12 greyscale images in 3 classes
// (horizontal stripes, vertical stripes, a checkerboard; random phase,
// Gaussian noise) and returns the dataset spec.
func stripes(t *testing.T, n int) string {
	t.Helper()
	rng := rand.New(rand.NewSource(0))
	img, lab := make([]uint8, n*144), make([]int64, n)
	for i := 0; i < n; i++ {
		c, ph := i%3, rng.Intn(4)
		lab[i] = int64(c)
		for y := 0; y < 12; y++ {
			for x := 0; x < 12; x++ {
				var p int
				switch c {
				case 0:
					p = ((y + ph) / 2) % 2
				case 1:
					p = ((x + ph) / 2) % 2
				default:
					p = ((y+ph)/2 + (x+ph)/2) % 2
				}
				v := float64(p*160+48) + 30*rng.NormFloat64()
				img[i*144+y*12+x] = uint8(math.Max(0, math.Min(255, v)))
			}
		}
	}
	return testutil.WriteNPY(t, t.TempDir(), img, []int{n, 12, 12}, lab)
}

// TestFinetunePretrainedBeatsRandomInit: on a small learnable dataset,
// fine-tuning a CorInfoMax-pretrained network on 2 labels per class beats
// the same fine-tuning from random weights by 10 points (mean over three
// label draws). Measured when written (AMD EPYC Zen 4): 65.0, 70.8, 80.0%
// against 36.2, 35.8, 55.8%.
func TestFinetunePretrainedBeatsRandomInit(t *testing.T) {
	spec := stripes(t, 240)
	base := t.TempDir()
	pre := filepath.Join(base, "pre")
	if r := run(t, "pretrain", "--data", spec, "--width", "4", "--projector", "32-16", "--batch", "24", "--size", "12",
		"--knn-every", "0", "--epochs", "12", "--threads", "1", "--lr", "0.1", "--warmup-epochs", "1", "--out", pre); r.code != 0 {
		t.Fatalf("pretrain: exit %d\n%s", r.code, r.stderr)
	}
	top1 := func(out string, extra ...string) float64 {
		r := run(t, append(ftArgs(pre, spec, out, "--labels", "2-per-class", "--epochs", "10", "--json"), extra...)...)
		if r.code != 0 {
			t.Fatalf("finetune %v: exit %d\n%s", extra, r.code, r.stderr)
		}
		var s struct {
			Top1 float64 `json:"top1"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatal(err)
		}
		return s.Top1
	}
	var pretrainedSum, randomSum float64
	for _, seed := range []string{"1", "2", "3"} {
		p := top1(filepath.Join(base, "ft"+seed), "--seed", seed)
		q := top1(filepath.Join(base, "rand"+seed), "--seed", seed, "--random-init")
		t.Logf("labels drawn with seed %s: pretrained %.1f%%, random init %.1f%%", seed, p, q)
		pretrainedSum, randomSum = pretrainedSum+p, randomSum+q
	}
	if pretrainedSum/3 < randomSum/3+10 {
		t.Fatalf("pretrained %.1f%% against random init %.1f%% (means): pretraining should pay by 10 points here", pretrainedSum/3, randomSum/3)
	}
}
