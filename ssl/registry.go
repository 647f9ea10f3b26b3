package ssl

import "fmt"

// Registration is how a method joins the toolkit: its name, a one-line
// summary, its declared options and its constructor. Adding a method is one
// file holding the method and its Registration, plus one line in registry.
type Registration struct {
	Name    string
	Summary string
	Options []Option
	// New builds a symmetric method from options already checked against
	// Options and completed with their defaults.
	New func(opts Options) (Method, error)
	// NewTargeted builds an asymmetric method (targeted.go) instead; a
	// registration sets exactly one of New and NewTargeted.
	NewTargeted func(opts Options) (Targeted, error)
	// Branches are the parts of the network NewTargeted's method needs.
	Branches Branches
}

// registry lists every method in a fixed order, the flagship first, the
// symmetric methods before the asymmetric (targeted) ones.
func registry() []Registration {
	return []Registration{
		corInfoMaxRegistration,
		barlowTwinsRegistration,
		vicRegRegistration,
		simCLRRegistration,
		wmseRegistration,
		byolRegistration,
		simSiamRegistration,
		mocoV2Registration,
	}
}

// Methods returns the registration of every method in a fixed order.
func Methods() []Registration { return registry() }

// Names returns the names of all methods in a fixed order.
func Names() []string {
	var names []string
	for _, r := range registry() {
		names = append(names, r.Name)
	}
	return names
}

// Lookup returns the registration of the method called name.
func Lookup(name string) (Registration, error) {
	for _, r := range registry() {
		if r.Name == name {
			return r, nil
		}
	}
	return Registration{}, fmt.Errorf("ssl: unknown method %q (known: %v)", name, Names())
}

// Defaults returns every option of method set to its declared default.
func Defaults(method string) (Options, error) {
	r, err := Lookup(method)
	if err != nil {
		return Options{}, err
	}
	var o Options
	for _, opt := range r.Options {
		o.Set(opt.Name, opt.Default)
	}
	return o, nil
}

// New returns the named method with the given options after validating
// them: an option the method does not declare is refused with an
// *OptionError, a declared option that opts lacks takes its default.
func New(method string, opts Options) (Method, error) {
	r, err := Lookup(method)
	if err != nil {
		return nil, err
	}
	if r.New == nil {
		return nil, fmt.Errorf("ssl: %s is an asymmetric method (a momentum network or a predictor): build it with ssl.NewTargeted", method)
	}
	res, err := resolve(r, opts)
	if err != nil {
		return nil, err
	}
	full := opts.Clone()
	full.Values = res.vals
	return r.New(full)
}

// Resolved returns opts restricted to the options of method, with the
// defaults filled in; an option the method does not declare is refused.
func Resolved(method string, opts Options) (Options, error) {
	r, err := Lookup(method)
	if err != nil {
		return Options{}, err
	}
	res, err := resolve(r, opts)
	if err != nil {
		return Options{}, err
	}
	out := opts.Clone()
	out.Values = res.vals
	return out, nil
}

// Declared returns the options of opts that method declares, dropping the
// others: configurations written before the declarations hold every
// method's options. Resolved then checks the values.
func Declared(method string, opts Options) (Options, error) {
	r, err := Lookup(method)
	if err != nil {
		return Options{}, err
	}
	out := opts.Clone()
	out.Values = map[string]float64{}
	for _, o := range r.Options {
		if v, ok := opts.Get(o.Name); ok {
			out.Values[o.Name] = v
		}
	}
	return out, nil
}

// OptionOf returns the method that declares the option called name, and
// the declaration.
func OptionOf(name string) (string, Option, bool) {
	for _, r := range registry() {
		for _, o := range r.Options {
			if o.Name == name {
				return r.Name, o, true
			}
		}
	}
	return "", Option{}, false
}

// Stateful is implemented by methods that carry running state between steps
// (CorInfoMax's running mean and covariance, MoCo v2's queues). State returns deep copies;
// SetState validates names and shapes and copies the data in. The trainer
// saves the state in checkpoints and rolls it back when it skips a step.
type Stateful interface {
	State() []StateTensor
	SetState([]StateTensor) error
}

// CovarianceTracker is implemented by methods that keep a running estimate
// of the embedding covariance of each view (CorInfoMax's R). The trainer
// reports its spectrum.
type CovarianceTracker interface {
	// RunningCovariance returns a copy of view's (1 or 2) running
	// covariance (d x d, row-major) and d; d is 0 before the first step.
	RunningCovariance(view int) ([]float64, int)
}
