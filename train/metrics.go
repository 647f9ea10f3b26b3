package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/corinfomax/corinfomax/ssl"
)

// metricsLog appends JSON records, one per line, to RUNDIR/metrics.jsonl.
type metricsLog struct {
	path string
	recs []map[string]any // records of this run so far (for the report)
}

// openMetrics starts metrics.jsonl afresh, or, when resuming from ck, keeps
// only the records the checkpoint covers (a run killed after logging steps
// past its last checkpoint repeats those steps). A line that is not JSON
// (a torn last line) is dropped; a step or epoch record whose fields have
// the wrong type is an error naming the file and the line, and leaves the
// file as it was.
func openMetrics(path string, ck *runState) (*metricsLog, error) {
	m := &metricsLog{path: path}
	if ck == nil {
		return m, writeFileAtomic(path, nil)
	}
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue // a torn last line from a killed process
		}
		if err := checkRecord(rec); err != nil {
			return nil, fmt.Errorf("%s line %d: %w (fix or delete the line to resume)", path, line, err)
		}
		step, _ := rec["step"].(float64)
		epoch, _ := rec["epoch"].(float64)
		switch rec["type"] {
		case "step":
			if int(step) > ck.Pos.Step {
				continue
			}
		case "epoch":
			if int(epoch) > ck.Pos.Epoch {
				continue
			}
		}
		m.recs = append(m.recs, rec)
		keep.Write(sc.Bytes())
		keep.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return m, writeFileAtomic(path, keep.Bytes())
}

// checkRecord reports a step or epoch record that history and openMetrics
// cannot read: "epoch" and "step" must be numbers, and an epoch record's
// "knn", when present, an object of numbers. Other records pass.
func checkRecord(rec map[string]any) error {
	typ, _ := rec["type"].(string)
	if typ != "step" && typ != "epoch" {
		return nil
	}
	for _, key := range []string{"epoch", "step"} {
		v, ok := rec[key]
		if !ok {
			return fmt.Errorf("%s record without the field %q (want a number)", typ, key)
		}
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%s record: field %q is %s, want a number", typ, key, jsonKind(v))
		}
	}
	if typ == "epoch" {
		if v, ok := rec["knn"]; ok {
			knn, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf(`epoch record: field "knn" is %s, want an object such as {"k20": 0.5, "k200": 0.5}`, jsonKind(v))
			}
			for k, a := range knn {
				if _, ok := a.(float64); !ok {
					return fmt.Errorf(`epoch record: field "knn.%s" is %s, want a number`, k, jsonKind(a))
				}
			}
		}
	}
	return nil
}

// jsonKind names the JSON type of a decoded value, with the value.
func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("a boolean (%v)", v)
	case float64:
		return fmt.Sprintf("a number (%v)", v)
	case string:
		return fmt.Sprintf("a string (%q)", v)
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// write appends rec to the file; a log without a path (the ranks other
// than 0 of a data-parallel run) only keeps it.
func (m *metricsLog) write(rec map[string]any) error {
	if m.path == "" {
		m.recs = append(m.recs, rec)
		return nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding a metrics record: %w", err)
	}
	f, err := os.OpenFile(m.path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", m.path, err)
	}
	if _, err = f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", m.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", m.path, err)
	}
	m.recs = append(m.recs, rec)
	return nil
}

func stepRecord(epoch, step int, lr float64, res ssl.Result, ips float64, skipped int) map[string]any {
	rec := map[string]any{"type": "step", "epoch": epoch, "step": step, "lr": lr, "loss": jsonFloat(res.Loss),
		"images_per_sec": ips}
	for _, c := range res.Components {
		rec[c.Name] = jsonFloat(c.Value)
	}
	if skipped > 0 {
		rec["skipped_steps"] = skipped
	}
	return rec
}

// jsonFloat keeps NaN and Inf (which JSON cannot hold) readable as strings.
func jsonFloat(v float64) any {
	if v != v || v > 1e308 || v < -1e308 {
		return fmt.Sprint(v)
	}
	return v
}

// jsonFloats is jsonFloat of every element.
func jsonFloats(v []float64) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = jsonFloat(x)
	}
	return out
}

// history is what the report plots: loss components per logged step, the
// online kNN accuracy per epoch and the last spectrum.
type history struct {
	Steps    []float64
	Comps    map[string][]float64
	Order    []string
	KNN      []knnPoint
	Probe    []probePoint
	Spectrum []float64
}

// probePoint is the online probe's test top-1 after an epoch.
type probePoint struct {
	Epoch int
	Top1  float64
}

type knnPoint struct {
	Epoch int
	Ks    []int
	Top1  []float64
}

func (m *metricsLog) history() history {
	h := history{Comps: map[string][]float64{}}
	for _, rec := range m.recs {
		switch rec["type"] {
		case "step":
			step, _ := rec["step"].(float64)
			res := ssl.Result{}
			if l, ok := rec["loss"].(float64); ok {
				res.Loss = l
			}
			for k, v := range rec {
				switch k {
				case "type", "epoch", "step", "lr", "loss", "images_per_sec", "skipped_steps":
					continue
				}
				if f, ok := v.(float64); ok {
					res.Components = append(res.Components, ssl.Component{Name: k, Value: f})
				}
			}
			h.addStep(int(step), res)
		case "epoch":
			if knn, ok := rec["knn"].(map[string]any); ok {
				epoch, _ := rec["epoch"].(float64) // checked by openMetrics
				p := knnPoint{Epoch: int(epoch)}
				for _, k := range []int{20, 200} {
					if v, ok := knn[fmt.Sprintf("k%d", k)].(float64); ok {
						p.Ks = append(p.Ks, k)
						p.Top1 = append(p.Top1, v)
					}
				}
				h.KNN = append(h.KNN, p)
			}
			if pr, ok := rec["online_probe"].(map[string]any); ok {
				epoch, _ := rec["epoch"].(float64)
				if v, ok := pr["top1"].(float64); ok {
					h.Probe = append(h.Probe, probePoint{Epoch: int(epoch), Top1: v})
				}
			}
		}
	}
	return h
}

func (h *history) addStep(step int, res ssl.Result) {
	h.Steps = append(h.Steps, float64(step))
	add := func(name string, v float64) {
		if _, ok := h.Comps[name]; !ok {
			h.Order = append(h.Order, name)
			h.Comps[name] = make([]float64, len(h.Steps)-1)
		}
		h.Comps[name] = append(h.Comps[name], v)
	}
	add("loss", res.Loss)
	for _, c := range res.Components {
		add(c.Name, c.Value)
	}
	for _, name := range h.Order { // keep series aligned when a component is absent
		if len(h.Comps[name]) < len(h.Steps) {
			h.Comps[name] = append(h.Comps[name], res.Loss*0)
		}
	}
}
