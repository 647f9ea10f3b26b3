// Command corinfomax pretrains image encoders with self-supervised learning
// (CorInfoMax, Barlow Twins, VICReg, SimCLR, W-MSE) on the CPU, evaluates
// them (kNN, linear probe, covariance spectrum) and exports their features.
// It is a thin layer over the packages of this module.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/corinfomax/corinfomax/ops/dnnl"
	"github.com/spf13/cobra"
	"gonum.org/v1/gonum/blas/blas32"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError marks an error in the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, restore the default action: a second
		// Ctrl-C quits at once (checkpoints are written atomically).
		<-ctx.Done()
		stop()
	}()
	// Float32 matrix products of the evaluators (kNN similarities) run on
	// oneDNN's sgemm instead of gonum's pure-Go kernel.
	blas32.Use(dnnl.BLAS32{})
	root := newRoot()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	err = asFlagError(err)
	fmt.Fprintln(os.Stderr, "corinfomax:", err)
	var fe *FlagError
	var ue usageError
	if errors.As(err, &fe) || errors.As(err, &ue) || isFlagParseError(err) {
		os.Exit(2)
	}
	os.Exit(1)
}

func isFlagParseError(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown flag") || strings.HasPrefix(s, "unknown shorthand flag") ||
		strings.HasPrefix(s, "invalid argument") || strings.Contains(s, "flag needs an argument") ||
		strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "accepts ") ||
		strings.HasPrefix(s, "requires at least")
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "corinfomax",
		Short: "Self-supervised learning of image encoders on the CPU (CorInfoMax and peers)",
		Long: `corinfomax trains image encoders without labels (CorInfoMax, Barlow Twins, VICReg,
SimCLR, W-MSE) on ordinary CPUs with a oneDNN engine, evaluates them (weighted kNN,
linear probe, covariance spectrum) and exports their features.

Start with "corinfomax demo" (pretrain on Fashion-MNIST, evaluate, compare with baselines).`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newPretrainCmd(), newFinetuneCmd(), newKNNCmd(), newLinearCmd(), newSpectrumCmd(), newEmbedCmd(),
		newCompareCmd(), newServeCmd(), newDemoCmd(), newBenchCmd(), newDataCmd())
	return root
}
