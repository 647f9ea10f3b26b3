package train

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/model"
)

// TestOpenMetricsDamagedRecord: resuming over a metrics.jsonl whose step or
// epoch record has a field of the wrong type (or lacks one) must fail with
// an error naming the file, the line and what was expected, and leave the
// file untouched; before, an epoch record with a "knn" object but a
// non-number "epoch" panicked in history (an unchecked type assertion).
func TestOpenMetricsDamagedRecord(t *testing.T) {
	good := []string{
		`{"type":"step","epoch":1,"step":1,"loss":3.5,"sim":0.5}`,
		`{"type":"step","epoch":1,"step":2,"loss":3.25,"sim":0.25}`,
	}
	ck := &runState{Pos: model.Position{Epoch: 1, Step: 2}}
	for _, tc := range []struct {
		name, line, want string
	}{
		{"epoch a string", `{"type":"epoch","epoch":"1","step":2,"knn":{"k20":0.5}}`,
			`line 3: epoch record: field "epoch" is a string ("1"), want a number`},
		{"epoch missing", `{"type":"epoch","step":2,"knn":{"k20":0.5}}`,
			`line 3: epoch record without the field "epoch" (want a number)`},
		{"knn a number", `{"type":"epoch","epoch":1,"step":2,"knn":5}`,
			`line 3: epoch record: field "knn" is a number (5), want an object such as {"k20": 0.5, "k200": 0.5}`},
		{"knn value a string", `{"type":"epoch","epoch":1,"step":2,"knn":{"k20":"high"}}`,
			`line 3: epoch record: field "knn.k20" is a string ("high"), want a number`},
		{"step null", `{"type":"step","epoch":1,"step":null,"loss":3}`,
			`line 3: step record: field "step" is null, want a number`},
		{"epoch an object", `{"type":"epoch","epoch":{"n":1},"step":2}`,
			`line 3: epoch record: field "epoch" is an object, want a number`},
	} {
		path := filepath.Join(t.TempDir(), "metrics.jsonl")
		content := strings.Join(append(append([]string(nil), good...), tc.line), "\n") + "\n"
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		var m *metricsLog
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			if m, err = openMetrics(path, ck); err == nil {
				m.history()
			}
		}()
		want := path + " " + tc.want
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, want)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("%s: the damaged file was rewritten:\n%s", tc.name, b)
		}
	}

	// A valid file with a torn last line: the records the checkpoint covers
	// are kept, the torn line and the step past the checkpoint dropped.
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	content := strings.Join(append(append([]string(nil), good...),
		`{"type":"epoch","epoch":1,"step":2,"knn":{"k20":0.5,"k200":0.25}}`,
		`{"type":"step","epoch":2,"step":3,"loss":3}`,
		`{"type":"step","epo`), "\n")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := openMetrics(path, ck)
	if err != nil {
		t.Fatal(err)
	}
	h := m.history()
	if len(h.Steps) != 2 || len(h.KNN) != 1 || h.KNN[0].Epoch != 1 || fmt.Sprint(h.KNN[0].Top1) != "[0.5 0.25]" {
		t.Fatalf("history %+v", h)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "\n"); got != 3 {
		t.Fatalf("kept %d lines, want 3:\n%s", got, b)
	}
}

// TestResumeOverDamagedMetrics: the same through Run: a resume whose
// metrics.jsonl has a damaged epoch record fails with the file and line.
func TestResumeOverDamagedMetrics(t *testing.T) {
	spec := tinyData(t, 40)
	cfg := tinyConfig(t, spec, filepath.Join(t.TempDir(), "run"))
	cfg.Epochs = 1
	if _, err := Run(context.Background(), cfg, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.Out, "metrics.jsonl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, `"type":"epoch"`) || !strings.Contains(last, `"epoch":1,`) {
		t.Fatalf("last record is not epoch 1's: %s", last)
	}
	lines[len(lines)-1] = strings.Replace(last, `"epoch":1,`, `"epoch":"one","knn":{"k20":0.5},`, 1)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stored, err := StoredConfig(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	stored.Epochs = 2
	_, err = Run(context.Background(), stored, true, io.Discard)
	want := fmt.Sprintf(`%s line %d: epoch record: field "epoch" is a string ("one"), want a number`, path, len(lines))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("resume over a damaged epoch record: error %v, want one containing %q", err, want)
	}
}
