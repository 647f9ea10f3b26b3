package main

import (
	"fmt"
	"net"
	"os"

	"github.com/corinfomax/corinfomax/serve"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	var addr, backend string
	var opts serve.Options
	cmd := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:8080] RUNDIR...",
		Short: "A local web page for runs in progress and the neighbours their features find",
		Long: `Serve a web page (every asset in the binary: it works offline) over run directories,
or folders of them: the runs with their state and latest kNN and linear results, a
sortable comparison of selected runs (the table of corinfomax compare), each run's
loss, learning rate, online kNN, throughput and covariance spectrum (updated while it
trains) and its config, and a neighbour browser: the nearest training images of a
test image (or an uploaded one) in the backbone's feature space beside the nearest in
raw pixels. The features are computed once per checkpoint and cached in
RUNDIR/serve-cache/. The JSON API under /api/ is documented in the README.

It listens on loopback by default. The page shows the datasets' images: binding
another address (--addr 0.0.0.0:8080) lets anyone who reaches the machine see them.`,
		Example: `  corinfomax serve runs/
  corinfomax serve --addr 127.0.0.1:9000 runs/fm runs/vicreg`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, dirs []string) error {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return usagef("--addr: want HOST:PORT, got %q: %v", addr, err)
			}
			if opts.NeighboursLimit < 1 || opts.TestLimit < 1 {
				return usagef("--neighbours-limit/--test-limit: must be >= 1")
			}
			opts.Roots, opts.Backend, opts.Log = dirs, backend, os.Stderr
			srv, err := serve.New(opts)
			if err != nil {
				return err
			}
			defer srv.Close()
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				fmt.Fprintf(os.Stderr, "warning: --addr %s is not a loopback address: anyone who can reach it sees these runs and their images\n", addr)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("--addr %s: %w", addr, err)
			}
			fmt.Fprintf(os.Stderr, "serving %d director%s on http://%s/ (Ctrl-C stops)\n", len(dirs),
				map[bool]string{true: "y", false: "ies"}[len(dirs) == 1], ln.Addr())
			return srv.Serve(cmd.Context(), ln)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (loopback unless you mean it)")
	fs.IntVar(&opts.NeighboursLimit, "neighbours-limit", 10000, "training images the neighbour browser searches (the first N)")
	fs.IntVar(&opts.TestLimit, "test-limit", 10000, "test images offered as queries (the first N)")
	fs.IntVar(&opts.Threads, "threads", 1, "compute threads of the feature extraction (0: all cores; 1 leaves the rest to training)")
	fs.StringVar(&backend, "backend", "dnnl", "operator backend: dnnl or ref")
	return cmd
}
