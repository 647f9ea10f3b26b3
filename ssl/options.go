package ssl

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// Kind is the type of an option's value.
type Kind int

// The kinds of option values. Every value is held as a float64; Int and
// Bool restrict it to integers and to 0 or 1.
const (
	Float Kind = iota
	Int
	Bool
)

func (k Kind) String() string {
	switch k {
	case Int:
		return "int"
	case Bool:
		return "bool"
	}
	return "float"
}

// Option declares one hyper-parameter of a method, once: its name, its
// command-line flag, its default and its help. The commands derive their
// flags from these declarations and the recipes override them by name.
type Option struct {
	// Name is the option's key in Options, config.json, recipes and error
	// messages ("lam_R").
	Name string
	// Flag is the command-line flag that sets it ("lam-r"); unique across
	// all methods.
	Flag    string
	Kind    Kind
	Default float64
	Help    string
	// Legacy is the option's field name in configurations written before
	// options were declared ("LamR"), so old run directories still resume.
	Legacy string
}

// check validates v against the option's kind.
func (o Option) check(method string, v float64) error {
	switch o.Kind {
	case Int:
		if v != math.Trunc(v) || math.IsInf(v, 0) {
			return &OptionError{Method: method, Option: o.Name, Value: v, Allowed: "an integer"}
		}
	case Bool:
		if v != 0 && v != 1 {
			return &OptionError{Method: method, Option: o.Name, Value: v, Allowed: "0 or 1 (false or true)"}
		}
	}
	return nil
}

// OptionError reports an option value a method refuses, or an option the
// method does not have (Allowed then says so).
type OptionError struct {
	Method  string
	Option  string
	Value   any
	Allowed string
}

func (e *OptionError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("%s: option %s: %s", e.Method, e.Option, e.Allowed)
	}
	return fmt.Sprintf("%s: option %s = %v out of range: must be %s", e.Method, e.Option, e.Value, e.Allowed)
}

// optErr reports an invalid option value.
func optErr(method, option string, value any, allowed string) error {
	return &OptionError{Method: method, Option: option, Value: value, Allowed: allowed}
}

// Options are the hyper-parameters of one method by option name, plus what
// the trainer supplies. A name the method declares but Options lacks takes
// its default: the zero Options means every default.
type Options struct {
	// Values maps option names (Option.Name) to values.
	Values map[string]float64
	// Seed seeds the deterministic random splits of W-MSE (combined with
	// the step number, so a resumed run draws the same splits). The
	// trainer sets it from the run's seed; it is not stored with the
	// options.
	Seed int64
	// Gather gathers z across data-parallel workers; nil = single worker.
	Gather GatherFunc
}

// Set sets the option name to v.
func (o *Options) Set(name string, v float64) {
	if o.Values == nil {
		o.Values = map[string]float64{}
	}
	o.Values[name] = v
}

// Get returns the value of the option name and whether it is set.
func (o Options) Get(name string) (float64, bool) {
	v, ok := o.Values[name]
	return v, ok
}

// Clone returns a copy of o that shares no map with it.
func (o Options) Clone() Options {
	c := o
	c.Values = make(map[string]float64, len(o.Values))
	for k, v := range o.Values {
		c.Values[k] = v
	}
	return c
}

// Names returns the names of the options set, sorted.
func (o Options) Names() []string {
	names := make([]string, 0, len(o.Values))
	for k := range o.Values {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// MarshalJSON writes the values as one object, {"alpha": 250, ...}.
func (o Options) MarshalJSON() ([]byte, error) {
	if o.Values == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(o.Values)
}

// UnmarshalJSON reads an object of option values into o (merging with the
// values already there). It also reads configurations written before the
// options were declared, whose keys were Go field names ("LamR") and whose
// booleans were JSON booleans; those keys are translated to option names
// and "Seed" is ignored (the trainer sets it).
func (o *Options) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("method options: %w", err)
	}
	legacy := map[string]string{}
	for _, r := range registry() {
		for _, opt := range r.Options {
			if opt.Legacy != "" {
				legacy[opt.Legacy] = opt.Name
			}
		}
	}
	for k, v := range raw {
		if k == "Seed" {
			continue
		}
		if name, ok := legacy[k]; ok {
			k = name
		}
		switch x := v.(type) {
		case float64:
			o.Set(k, x)
		case bool:
			if x {
				o.Set(k, 1)
			} else {
				o.Set(k, 0)
			}
		default:
			return fmt.Errorf("method option %s: want a number or a boolean, got %v", k, v)
		}
	}
	return nil
}

// resolved is a method's options checked against its declarations, with
// defaults filled in.
type resolved struct {
	method string
	vals   map[string]float64
}

func (r resolved) float(name string) float64 { return r.vals[name] }
func (r resolved) int(name string) int       { return int(r.vals[name]) }
func (r resolved) bool(name string) bool     { return r.vals[name] != 0 }

// resolve checks o against the declarations of reg (every name declared,
// every value of the right kind) and fills in the defaults.
func resolve(reg Registration, o Options) (resolved, error) {
	r := resolved{method: reg.Name, vals: map[string]float64{}}
	decl := map[string]Option{}
	for _, opt := range reg.Options {
		decl[opt.Name] = opt
		r.vals[opt.Name] = opt.Default
	}
	for _, name := range o.Names() {
		opt, ok := decl[name]
		if !ok {
			return resolved{}, &OptionError{Method: reg.Name, Option: name,
				Allowed: fmt.Sprintf("not an option of %s (its options: %v)", reg.Name, optionNames(reg))}
		}
		v := o.Values[name]
		if err := opt.check(reg.Name, v); err != nil {
			return resolved{}, err
		}
		r.vals[name] = v
	}
	return r, nil
}

func optionNames(reg Registration) []string {
	var names []string
	for _, o := range reg.Options {
		names = append(names, o.Name)
	}
	return names
}
