package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/report"
	"github.com/corinfomax/corinfomax/train"
	"github.com/spf13/cobra"
)

func newIndentEncoder(w io.Writer) *json.Encoder {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e
}

// lastEpochRecord returns the last "epoch" record of RUNDIR/metrics.jsonl.
func lastEpochRecord(runDir string) map[string]any {
	f, err := os.Open(filepath.Join(runDir, "metrics.jsonl"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var last map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["type"] == "epoch" {
			last = rec
		}
	}
	return last
}

func fmtNum(v any) string {
	if f, ok := v.(float64); ok {
		return fmt.Sprintf("%.2f", f)
	}
	return "-"
}

func newCompareCmd() *cobra.Command {
	var out string
	var limit, threads int
	cmd := &cobra.Command{
		Use:   "compare RUNDIR...",
		Short: "One markdown table and one spectrum figure for several runs",
		Long: `Summarise runs side by side: method, recipe, settings, kNN and linear results (from
RUNDIR/eval.json, written by knn, linear and demo) and the effective rank of the
normalised projector outputs, and plot their spectra in one figure.`,
		Example: `  corinfomax compare runs/corinfomax runs/barlowtwins runs/vicreg runs/simclr --out spectra.png`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, runs []string) error {
			var rows [][]string
			series := map[string][]float64{}
			for _, run := range runs {
				var cfg train.Config
				if err := readJSON(filepath.Join(run, "config.json"), &cfg); err != nil {
					return fmt.Errorf("%s is not a run directory: %w", run, err)
				}
				ev := map[string]any{}
				_ = readJSON(filepath.Join(run, "eval.json"), &ev)
				rec := lastEpochRecord(run)
				epochs := "-"
				if rec != nil {
					epochs = fmt.Sprint(rec["epoch"])
				}
				erank := "-"
				enc, err := encoder.Load(run, encoder.Options{Threads: threads})
				if err != nil {
					return err
				}
				ds, err := data.Open(cfg.Data, data.Train, data.OpenOptions{Limit: limit, Log: os.Stderr})
				if err == nil {
					size, norm := evalGeometry(enc, cfg.Data, ds)
					feats, _, dim, ferr := model.Features(cmd.Context(), enc.Net, ds, size, norm, model.Projector, limit, 256)
					if ferr == nil {
						if sp, serr := spectrumOf(feats, len(feats)/dim, dim, true); serr == nil {
							erank = fmt.Sprintf("%.1f / %d", sp.EffectiveRank, dim)
							series[fmt.Sprintf("%s %s (erank %.1f)", runLabel(run), cfg.Method, sp.EffectiveRank)] = sp.Eigenvalues
						}
					} else {
						err = ferr
					}
				}
				enc.Close()
				if err != nil {
					return err
				}
				rows = append(rows, []string{runLabel(run), cfg.Method, cfg.Recipe, fmt.Sprintf("%s w%d", cfg.Arch, cfg.Width),
					epochs, fmt.Sprint(cfg.Batch), fmt.Sprint(cfg.LR), cfg.Projector, fmtNum(ev["knn_k20"]), fmtNum(ev["knn_k200"]),
					fmtNum(ev["linear_top1"]), fmtNum(ev["linear_top5"]), erank})
			}
			fmt.Println(report.MarkdownTable([]string{"run", "method", "recipe", "backbone", "epochs", "batch", "lr",
				"projector", "kNN k=20", "kNN k=200", "linear top-1", "linear top-5", "effective rank"}, rows))
			if out != "" && len(series) > 0 {
				if err := report.Spectra(out, "eigenvalues of the normalised projector covariance", series); err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "wrote %s\n", out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "compare_spectra.png", "figure with the runs' spectra")
	cmd.Flags().IntVar(&limit, "limit", 10000, "training images used for the spectra")
	cmd.Flags().IntVar(&threads, "threads", 0, "compute threads (0: all cores)")
	return cmd
}
