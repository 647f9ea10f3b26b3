package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/corinfomax/corinfomax/data"
	"github.com/corinfomax/corinfomax/encoder"
	"github.com/corinfomax/corinfomax/model"
	"github.com/corinfomax/corinfomax/report"
	"github.com/corinfomax/corinfomax/runinfo"
	"github.com/spf13/cobra"
)

func newIndentEncoder(w io.Writer) *json.Encoder {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e
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
				sum, err := runinfo.Read(run)
				if err != nil {
					return err
				}
				sum.Name = runLabel(run)
				cfg := sum.Config
				erank := "-"
				enc, err := encoder.Load(run, encoder.Options{Threads: threads})
				if err != nil {
					return err
				}
				ds, err := data.Open(cfg.Data, data.Train, data.OpenOptions{Limit: limit, Log: os.Stderr})
				if err == nil {
					size, norm := enc.Geometry(cfg.Data, ds)
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
				rows = append(rows, sum.CompareRow(erank))
			}
			fmt.Println(report.MarkdownTable(runinfo.CompareHeader(), rows))
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
