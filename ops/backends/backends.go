// Package backends is the registry of operator backends: a name, a
// constructor and what each backend can do. Code that lets a user choose a
// backend (the trainer, the encoder, the commands) asks this package, so it
// does not import any backend itself; a new backend is one folder under ops
// and one entry in the table below.
package backends

import (
	"fmt"
	"strings"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/dnnl"
	"github.com/corinfomax/corinfomax/ops/ref"
)

// Default is the backend used when none is named.
const Default = "dnnl"

// Info describes one backend.
type Info struct {
	// Name is what --backend and Options.Backend spell.
	Name string
	// Summary is one line for help texts.
	Summary string
	// Precisions lists the precisions the backend runs on this machine (the
	// answer may depend on the CPU).
	Precisions func() []ops.Precision
	// New creates the backend.
	New func(ops.BackendOptions) (ops.Backend, error)
}

// table lists every backend, the default first.
func table() []Info {
	return []Info{
		{
			Name:       "dnnl",
			Summary:    "oneDNN through cgo, fast",
			Precisions: dnnl.Precisions,
			New: func(o ops.BackendOptions) (ops.Backend, error) {
				b, err := dnnl.NewWithOptions(o)
				if err != nil {
					return nil, fmt.Errorf("starting the oneDNN backend: %w", err)
				}
				return b, nil
			},
		},
		{
			Name:       "ref",
			Summary:    "plain Go with float64 sums, slow: the test oracle",
			Precisions: func() []ops.Precision { return []ops.Precision{ops.FP32} },
			New: func(o ops.BackendOptions) (ops.Backend, error) {
				return ref.New(), nil
			},
		},
	}
}

// All returns the description of every backend, the default first.
func All() []Info { return table() }

// Names lists the backends' names, the default first.
func Names() []string {
	var names []string
	for _, b := range table() {
		names = append(names, b.Name)
	}
	return names
}

// Lookup returns the backend called name ("" is Default).
func Lookup(name string) (Info, error) {
	if name == "" {
		name = Default
	}
	for _, b := range table() {
		if b.Name == name {
			return b, nil
		}
	}
	return Info{}, fmt.Errorf("unknown backend %q (want %s)", name, strings.Join(Names(), " or "))
}

// Supports reports whether the backend b runs precision p on this machine.
func (b Info) Supports(p ops.Precision) bool {
	for _, q := range b.Precisions() {
		if q == p {
			return true
		}
	}
	return false
}

// CheckPrecision returns an error saying why backend name cannot run
// precision here, or nil when it can. The precision is spelled as a user
// types it ("" means fp32).
func CheckPrecision(name, precision string) error {
	b, err := Lookup(name)
	if err != nil {
		return err
	}
	p, err := ops.ParsePrecision(precision)
	if err != nil {
		return err
	}
	if b.Supports(p) {
		return nil
	}
	var others []string
	for _, other := range table() {
		if other.Supports(p) {
			others = append(others, other.Name)
		}
	}
	switch {
	case len(others) > 0:
		return fmt.Errorf("precision %s needs the %s backend, not %s", p, strings.Join(others, " or "), b.Name)
	case p == ops.BF16:
		return fmt.Errorf("precision bf16 needs a CPU with AVX512-BF16 instructions, which this one lacks; use fp32")
	}
	return fmt.Errorf("no backend runs precision %s on this machine", p)
}

// New creates the backend called name ("" is Default) with the given
// threads (0: all cores) and precision ("" is fp32), after checking that
// it runs that precision on this machine.
func New(name string, threads int, precision string) (ops.Backend, error) {
	if err := CheckPrecision(name, precision); err != nil {
		return nil, err
	}
	b, _ := Lookup(name)
	p, _ := ops.ParsePrecision(precision)
	return b.New(ops.BackendOptions{Threads: threads, Precision: p})
}
