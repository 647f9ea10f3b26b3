// Command peersfig draws the spectra of the runs scripts/peers.sh keeps in
// one figure: the eigenvalues of the normalised projector outputs' and of
// the backbone features' covariance (as `corinfomax spectrum` computes them
// on the first 10,000 training images), one line per method, for one seed.
// It reads RESULTS/METHOD-sSEED/spectrum.json, so it needs no checkpoint:
//
//	go run ./tools/peersfig --results docs/runs/peers --seed 0 --out docs/results-peers-spectra.png
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/corinfomax/corinfomax/report"
)

type spectrumFile struct {
	Spectra []struct {
		Layer         string    `json:"layer"`
		Dim           int       `json:"dim"`
		EffectiveRank float64   `json:"effective_rank"`
		Eigenvalues   []float64 `json:"eigenvalues"`
	} `json:"spectra"`
}

func main() {
	results := flag.String("results", "docs/runs/peers", "directory of METHOD-sSEED result directories (scripts/peers.sh)")
	seed := flag.Int("seed", 0, "the seed whose runs are drawn")
	methods := flag.String("methods", "corinfomax,barlowtwins,vicreg,simclr,wmse,byol,simsiam,mocov2", "methods, in legend order")
	out := flag.String("out", "docs/results-peers-spectra.png", "the PNG to write")
	flag.Parse()
	if err := run(*results, *seed, strings.Split(*methods, ","), *out); err != nil {
		fmt.Fprintln(os.Stderr, "peersfig:", err)
		os.Exit(1)
	}
}

func run(results string, seed int, methods []string, out string) error {
	proj, back := map[string][]float64{}, map[string][]float64{}
	for i, m := range methods {
		path := filepath.Join(results, fmt.Sprintf("%s-s%d", m, seed), "spectrum.json")
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			fmt.Fprintf(os.Stderr, "peersfig: %s: not there, %s left out\n", path, m)
			continue
		}
		if err != nil {
			return err
		}
		var sf spectrumFile
		if err := json.Unmarshal(b, &sf); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, s := range sf.Spectra {
			// The index keeps the legend in the order of methods (the plot sorts by name).
			label := fmt.Sprintf("%d %s (erank %.1f / %d)", i+1, m, s.EffectiveRank, s.Dim)
			switch s.Layer {
			case "projector":
				proj[label] = s.Eigenvalues
			case "backbone":
				back[label] = s.Eigenvalues
			default:
				return fmt.Errorf("%s: layer %q, want projector or backbone", path, s.Layer)
			}
		}
	}
	if len(proj) == 0 && len(back) == 0 {
		return fmt.Errorf("%s: no METHOD-s%d/spectrum.json found", results, seed)
	}
	err := report.SpectraFigure(out, []report.SpectraPanel{
		{Title: fmt.Sprintf("normalised projector outputs (seed %d)", seed), Spectra: proj},
		{Title: fmt.Sprintf("backbone features (seed %d)", seed), Spectra: back},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "peersfig: wrote %s\n", out)
	return nil
}
