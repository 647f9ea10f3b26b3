package main

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/checkpoint"
	"github.com/corinfomax/corinfomax/npy"
)

// TestFlagErrorsExitTwo runs every command with out-of-range flag values:
// each must exit with status 2 and a message naming the flag, before any
// work (no dataset or checkpoint is needed except where noted).
func TestFlagErrorsExitTwo(t *testing.T) {
	spec := tinyData(t, 40)
	out := filepath.Join(t.TempDir(), "run")
	pre := func(extra ...string) []string {
		return tinyArgs(spec, out, append([]string{"--epochs", "1"}, extra...)...)
	}
	cases := []struct {
		flag string // must appear as --flag in stderr
		args []string
	}{
		{"epochs", pre("--epochs", "-1")},
		{"epochs", pre("--epochs", "0")},
		{"epochs", pre("--epochs", "many")},
		{"batch", pre("--batch", "1")},
		{"batch", pre("--batch", "41")}, // larger than the 40 images
		{"width", pre("--width", "0")},
		{"size", pre("--size", "4")},
		{"arch", pre("--arch", "vgg16")},
		{"stem", pre("--stem", "tiny")},
		{"method", pre("--method", "dino")},
		{"recipe", pre("--recipe", "mnist-huge")},
		{"lr", pre("--lr", "0")},
		{"lr", pre("--lr", "-0.1")},
		{"min-lr", pre("--min-lr", "1")},
		{"warmup-epochs", pre("--warmup-epochs", "-1")},
		{"warmup-start-lr", pre("--warmup-start-lr", "-1")},
		{"momentum", pre("--momentum", "1")},
		{"weight-decay", pre("--weight-decay", "-1e-4")},
		{"optimizer", pre("--optimizer", "rmsprop")},
		{"schedule", pre("--schedule", "step")},
		{"schedule-unit", pre("--schedule-unit", "batch")},
		{"augment", pre("--augment", "heavy")},
		{"crop-scale-min", pre("--crop-scale-min", "0")},
		{"crop-scale-min", pre("--crop-scale-min", "1.5")},
		{"projector", pre("--projector", "16-x")},
		{"on-nan", pre("--on-nan", "ignore")},
		{"backend", pre("--backend", "cuda")},
		{"precision", pre("--precision", "fp16")},
		{"precision", pre("--precision", "bf16", "--backend", "ref")},
		{"workers", pre("--workers", "0")},
		{"threads", pre("--threads", "-1")},
		{"limit", pre("--limit", "-1")},
		{"max-steps", pre("--max-steps", "-1")},
		{"log-every", pre("--log-every", "0")},
		{"knn-every", pre("--knn-every", "-1")},
		{"knn-train", pre("--knn-train", "-5")},
		{"checkpoint-every", pre("--checkpoint-every", "-1")},
		{"mean", pre("--mean", "0.5,0.5", "--std", "0.2,0.2")}, // one channel
		{"lam-r", pre("--lam-r", "1")},
		{"lam-r", pre("--lam-r", "-0.01")},
		{"lam-mu", pre("--lam-mu", "1.5")},
		{"eps", pre("--eps", "0")},
		{"eps", pre("--eps", "-1e-8")},
		{"alpha", pre("--alpha", "-1")},
		{"init-scale", pre("--init-scale", "0")},
		{"temperature", pre("--method", "simclr", "--temperature", "0")},
		{"scale-loss", pre("--method", "barlowtwins", "--scale-loss", "0")},
		{"lambda", pre("--method", "barlowtwins", "--lambda", "-1")},
		{"sim-coeff", pre("--method", "vicreg", "--sim-coeff", "-1")},
		{"w-size", pre("--method", "wmse", "--w-size", "1")},
		{"w-iter", pre("--method", "wmse", "--w-iter", "0")},
		{"out", []string{"pretrain", "--data", spec, "--epochs", "1"}},
		{"out", []string{"pretrain", "--resume"}},
		{"bogus", pre("--bogus", "1")},

		{"batch", []string{"bench", "step", "--batch", "0"}},
		{"width", []string{"bench", "step", "--width", "0"}},
		{"size", []string{"bench", "step", "--size", "2"}},
		{"channels", []string{"bench", "step", "--channels", "0"}},
		{"steps", []string{"bench", "step", "--steps", "0"}},
		{"warmup", []string{"bench", "step", "--warmup", "-1"}},
		{"arch", []string{"bench", "step", "--arch", "vgg"}},
		{"stem", []string{"bench", "step", "--stem", "x"}},
		{"method", []string{"bench", "step", "--method", "dino"}},
		{"precision", []string{"bench", "step", "--precision", "int8"}},
		{"batch", []string{"bench", "objective", "--batch", "1"}},
		{"dim", []string{"bench", "objective", "--dim", "0"}},
		{"method", []string{"bench", "objective", "--method", "dino"}},
		{"batch", []string{"bench", "loader", "--data", spec, "--batch", "0"}},
		{"batch", []string{"bench", "loader", "--data", spec, "--batch", "41"}},
		{"batches", []string{"bench", "loader", "--data", spec, "--batch", "8", "--batches", "0"}},

		{"checkpoint", []string{"knn"}},
		{"k", []string{"knn", "--checkpoint", out, "--k", "0"}},
		{"k", []string{"knn", "--checkpoint", out, "--k", "20,x"}},
		{"k", []string{"knn", "--checkpoint", out, "--k", ""}},
		{"temperature", []string{"knn", "--checkpoint", out, "--temperature", "0"}},
		{"limit", []string{"knn", "--checkpoint", out, "--limit", "-1"}},
		{"threads", []string{"knn", "--checkpoint", out, "--threads", "x"}},

		{"checkpoint", []string{"linear"}},
		{"epochs", []string{"linear", "--checkpoint", out, "--epochs", "0"}},
		{"batch", []string{"linear", "--checkpoint", out, "--batch", "0"}},
		{"lr", []string{"linear", "--checkpoint", out, "--lr", "-1"}},
		{"min-lr", []string{"linear", "--checkpoint", out, "--min-lr", "5"}},
		{"momentum", []string{"linear", "--checkpoint", out, "--momentum", "1.5"}},
		{"weight-decay", []string{"linear", "--checkpoint", out, "--weight-decay", "-1"}},

		{"split", []string{"embed", "--checkpoint", out, "--out", "f.npy", "--split", "dev"}},
		{"layer", []string{"embed", "--checkpoint", out, "--out", "f.npy", "--layer", "head"}},
		{"out", []string{"embed", "--checkpoint", out}},
		{"checkpoint", []string{"embed", "--out", "f.npy"}},

		{"split", []string{"data", "inspect", spec, "--split", "holdout"}},
		{"limit", []string{"data", "inspect", spec, "--limit", "x"}},
		{"n", []string{"data", "preview", spec, "--n", "0"}},
	}
	for _, tc := range cases {
		res := run(t, tc.args...)
		if res.code != 2 || !strings.Contains(res.stderr, "--"+tc.flag) {
			t.Errorf("%v: exit %d, want 2 and a message naming --%s:\n%s", tc.args, res.code, tc.flag, res.stderr)
		}
		if strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine ") {
			t.Errorf("%v panicked:\n%s", tc.args, res.stderr)
		}
	}
	// The errors in range are named with their allowed range.
	res := run(t, pre("--lam-r", "1")...)
	if !strings.Contains(res.stderr, "[0, 1)") {
		t.Errorf("--lam-r 1: message lacks the allowed range:\n%s", res.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		if _, err := os.Stat(ckptPath(out)); err == nil {
			t.Errorf("a rejected command line trained and wrote %s", ckptPath(out))
		}
	}
}

// maxRSS bounds the peak memory of a command given hostile input: the
// declared sizes (a 2^30 x 2^30 PNG, a 10^15-byte array, a 2^62-byte
// header) would need far more.
const maxRSS = 256 << 20

// bombPNG is a PNG signature and a valid IHDR chunk declaring w x h RGBA
// pixels (a decompression bomb's header, without the data).
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	hdr := make([]byte, 13)
	binary.BigEndian.PutUint32(hdr[0:], w)
	binary.BigEndian.PutUint32(hdr[4:], h)
	hdr[8], hdr[9] = 8, 6
	binary.Write(&b, binary.BigEndian, uint32(len(hdr)))
	chunk := append([]byte("IHDR"), hdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostileDataCLI: bad datasets through the CLI give a clear error or a
// counted skip, never a panic or a large allocation.
func TestHostileDataCLI(t *testing.T) {
	dir := t.TempDir()
	var good bytes.Buffer
	if err := png.Encode(&good, image.NewGray(image.Rect(0, 0, 12, 12))); err != nil {
		t.Fatal(err)
	}
	// A folder of bombs, junk and a symlink loop, and no image: an error.
	bad := filepath.Join(dir, "bad")
	writeFile(t, filepath.Join(bad, "bomb.png"), bombPNG(1<<30, 1<<30))
	writeFile(t, filepath.Join(bad, "wide.png"), bombPNG(100000, 100000))
	writeFile(t, filepath.Join(bad, "empty.jpg"), nil)
	writeFile(t, filepath.Join(bad, "notes.txt"), []byte("not an image"))
	writeFile(t, filepath.Join(bad, "sub", "corrupt.png"), []byte("\x89PNG\r\n\x1a\ngarbage"))
	if err := os.Symlink(bad, filepath.Join(bad, "sub", "loop")); err != nil {
		t.Fatal(err)
	}
	// The same with two good images: they are used, the rest counted as skipped.
	mixed := filepath.Join(dir, "mixed")
	writeFile(t, filepath.Join(mixed, "a.png"), good.Bytes())
	writeFile(t, filepath.Join(mixed, "b.png"), good.Bytes())
	writeFile(t, filepath.Join(mixed, "bomb.png"), bombPNG(1<<30, 1<<30))
	writeFile(t, filepath.Join(mixed, "empty.png"), nil)
	if err := os.Symlink(mixed, filepath.Join(mixed, "loop")); err != nil {
		t.Fatal(err)
	}
	// .npy files: a header declaring a huge array, truncated data, zero
	// images, labels out of range, labels of the wrong count.
	hugeHdr := filepath.Join(dir, "huge.npy")
	hdr := "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000, 1000, 1000), }"
	hdr += strings.Repeat(" ", 127-(10+len(hdr))%128) + "\n"
	writeFile(t, hugeHdr, append(append([]byte("\x93NUMPY\x01\x00"), byte(len(hdr)), byte(len(hdr)>>8)), hdr...))
	ok := filepath.Join(dir, "ok.npy")
	if err := npy.WriteUint8(ok, []int{4, 12, 12}, make([]uint8, 4*144)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(ok)
	trunc := filepath.Join(dir, "trunc.npy")
	writeFile(t, trunc, b[:len(b)-100])
	zero := filepath.Join(dir, "zero.npy")
	if err := npy.WriteUint8(zero, []int{0, 12, 12}, nil); err != nil {
		t.Fatal(err)
	}
	labBig := filepath.Join(dir, "labbig.npy")
	if err := npy.WriteInt64(labBig, []int{4}, []int64{0, 1, 1 << 40, 2}); err != nil {
		t.Fatal(err)
	}
	labFew := filepath.Join(dir, "labfew.npy")
	if err := npy.WriteInt64(labFew, []int{3}, []int64{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	notNpy := filepath.Join(dir, "text.npy")
	writeFile(t, notNpy, []byte("hello, world"))
	// IDX with a wrong magic, CIFAR with a truncated batch.
	writeFile(t, filepath.Join(dir, "idx", "train-images-idx3-ubyte"), []byte{0, 0, 8, 1, 0, 0, 0, 1})
	writeFile(t, filepath.Join(dir, "idx", "train-labels-idx1-ubyte"), []byte{0, 0, 8, 1, 0, 0, 0, 1, 0})
	writeFile(t, filepath.Join(dir, "cifar", "data_batch_1.bin"), make([]byte, 3073+100))

	cases := []struct {
		spec string
		code int
		want []string // in stderr
	}{
		{"folder:" + bad, 1, []string{"no images", "files skipped"}},
		{"folder:" + mixed, 0, []string{"bomb.png", "skipped 2 of 4 files"}},
		{"npy:" + hugeHdr, 1, []string{"huge.npy"}},
		{"npy:" + trunc, 1, []string{"trunc.npy"}},
		{"npy:" + zero, 1, []string{"zero.npy"}},
		{"npy:" + ok + "," + labBig, 1, []string{"out of range"}},
		{"npy:" + ok + "," + labFew, 1, []string{"labels"}},
		{"npy:" + notNpy, 1, []string{"text.npy"}},
		{"npy:" + filepath.Join(dir, "missing.npy"), 1, []string{"missing.npy"}},
		{"mnist:" + filepath.Join(dir, "idx"), 1, []string{"magic"}},
		{"cifar10:" + filepath.Join(dir, "cifar"), 1, []string{"data_batch_1.bin"}},
		{"imagenet:" + dir, 1, []string{"imagenet"}},
	}
	for _, tc := range cases {
		res := run(t, "data", "inspect", tc.spec)
		if res.code != tc.code {
			t.Errorf("data inspect %s: exit %d, want %d:\n%s", tc.spec, res.code, tc.code, res.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("data inspect %s: stderr lacks %q:\n%s", tc.spec, w, res.stderr)
			}
		}
		if strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine ") {
			t.Errorf("data inspect %s panicked:\n%s", tc.spec, res.stderr)
		}
		if res.maxRSS > maxRSS {
			t.Errorf("data inspect %s: peak memory %d MB (a declared size was allocated?)", tc.spec, res.maxRSS>>20)
		}
	}
	// pretrain on the bomb folder fails cleanly before training.
	res := run(t, tinyArgs("folder:"+bad, filepath.Join(dir, "run"), "--epochs", "1")...)
	if res.code != 1 || !strings.Contains(res.stderr, "--data") || strings.Contains(res.stderr, "step 1") {
		t.Errorf("pretrain on a folder without images: exit %d\n%s", res.code, res.stderr)
	}
}

// TestDamagedCheckpointCLI: knn, embed and --resume on damaged checkpoints
// and on checkpoints of another architecture fail with a clear error and a
// non-zero exit.
func TestDamagedCheckpointCLI(t *testing.T) {
	spec := tinyData(t, 40)
	dir := t.TempDir()
	run2 := filepath.Join(dir, "w2")
	if r := run(t, tinyArgs(spec, run2, "--epochs", "1")...); r.code != 0 {
		t.Fatalf("training: exit %d\n%s", r.code, r.stderr)
	}
	good, err := os.ReadFile(ckptPath(run2))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, b)
		return p
	}
	truncated := write("truncated.safetensors", good[:len(good)*2/3])
	header := write("header.safetensors", good[:8+len(good)/100])
	garbage := write("garbage.safetensors", []byte("this is not a checkpoint at all"))
	empty := write("empty.safetensors", nil)
	hugeLen := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(hugeLen, 1<<62)
	huge := write("hugelen.safetensors", hugeLen)
	flipped := append([]byte(nil), good...)
	n := binary.LittleEndian.Uint64(flipped)
	copy(flipped[8+n/2:], "\x00\x00\x00\x00") // damage the JSON header
	damaged := write("damaged.safetensors", flipped)

	// A checkpoint whose metadata says width 4 while its tensors are width 2
	// (another architecture), and one without the model description.
	f, err := checkpoint.Read(ckptPath(run2))
	if err != nil {
		t.Fatal(err)
	}
	f.Metadata["corinfomax.model"] = strings.Replace(f.Metadata["corinfomax.model"], `"width":2`, `"width":4`, 1)
	if !strings.Contains(f.Metadata["corinfomax.model"], `"width":4`) {
		t.Fatalf("model metadata %q has no width 2", f.Metadata["corinfomax.model"])
	}
	wide := filepath.Join(dir, "wide.safetensors")
	if err := checkpoint.Write(wide, f); err != nil {
		t.Fatal(err)
	}
	delete(f.Metadata, "corinfomax.model")
	foreign := filepath.Join(dir, "foreign.safetensors")
	if err := checkpoint.Write(foreign, f); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		path string
		want string
	}{
		{truncated, "truncated.safetensors"},
		{header, "header.safetensors"},
		{garbage, "garbage.safetensors"},
		{empty, "empty.safetensors"},
		{huge, "hugelen.safetensors"},
		{damaged, "damaged.safetensors"},
		{wide, "shape"},
		{foreign, "not a corinfomax checkpoint"},
		{filepath.Join(dir, "missing.safetensors"), "missing.safetensors"},
	}
	for _, tc := range cases {
		for _, args := range [][]string{
			{"knn", "--checkpoint", tc.path, "--data", spec, "--threads", "1"},
			{"embed", "--checkpoint", tc.path, "--data", spec, "--out", filepath.Join(dir, "f.npy"), "--threads", "1"},
		} {
			res := run(t, args...)
			if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("%v: exit %d, want non-zero and %q in:\n%s", args, res.code, tc.want, res.stderr)
			}
			if strings.Contains(res.stderr, "panic") || strings.Contains(res.stderr, "goroutine ") {
				t.Errorf("%v panicked:\n%s", args, res.stderr)
			}
			if res.maxRSS > maxRSS {
				t.Errorf("%v: peak memory %d MB (a declared size was allocated?)", args, res.maxRSS>>20)
			}
		}
	}
	// --init with a checkpoint of width 2 into a width-4 network, and
	// --resume of a run whose checkpoint was truncated.
	res := run(t, tinyArgs(spec, filepath.Join(dir, "w4"), "--epochs", "1", "--width", "4", "--init", ckptPath(run2))...)
	if res.code == 0 || !strings.Contains(res.stderr, "--init") || !strings.Contains(res.stderr, "shape") {
		t.Errorf("--init from another width: exit %d\n%s", res.code, res.stderr)
	}
	res = run(t, tinyArgs(spec, run2, "--epochs", "2", "--resume", "--width", "4")...)
	if res.code == 0 || !strings.Contains(res.stderr, "differs") || !strings.Contains(res.stderr, "--init") {
		t.Errorf("--resume with another width: exit %d\n%s", res.code, res.stderr)
	}
	if err := os.WriteFile(ckptPath(run2), good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	res = run(t, tinyArgs(spec, run2, "--epochs", "2", "--resume")...)
	if res.code == 0 || !strings.Contains(res.stderr, "checkpoint.safetensors") {
		t.Errorf("--resume from a truncated checkpoint: exit %d\n%s", res.code, res.stderr)
	}
}
