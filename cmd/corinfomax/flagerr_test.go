package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/train"
	"github.com/spf13/cobra"
)

// TestEverySettingHasItsFlag checks that every setting a ConfigError can
// name maps to a pretrain flag, and every method option to its declared
// flag, so an error always names a flag the user can type.
func TestEverySettingHasItsFlag(t *testing.T) {
	cmd := newPretrainCmd()
	cfg, err := train.FromRecipe(defaultRecipe, defaultMethod)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfg)
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	notFlags := map[string]bool{"method_options": true, "version": true}
	for field := range fields {
		if notFlags[field] {
			continue
		}
		if cmd.Flags().Lookup(flagOfField(field)) == nil {
			t.Errorf("setting %s: no flag --%s", field, flagOfField(field))
		}
	}
	for _, m := range ssl.Methods() {
		for _, o := range m.Options {
			if cmd.Flags().Lookup(o.Flag) == nil {
				t.Errorf("%s option %s: no flag --%s", m.Name, o.Name, o.Flag)
			}
			fe := asFlagError(&ssl.OptionError{Method: m.Name, Option: o.Name, Value: 1, Allowed: "x"})
			var got *FlagError
			if !errors.As(fe, &got) || got.Flag != o.Flag {
				t.Errorf("option %s: error maps to %v, want --%s", o.Name, fe, o.Flag)
			}
		}
	}
}

// TestMethodFlagsOverrideOnlyTheirMethod checks the derived method-option
// flags: a flag of the run's method lands in its options, one of another
// method is refused naming the flag.
func TestMethodFlagsOverrideOnlyTheirMethod(t *testing.T) {
	resolve := func(args ...string) (train.Config, error) {
		f := &pretrainFlags{}
		cmd := &cobra.Command{Use: "x"}
		addPretrainFlags(cmd.Flags(), f)
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		return f.resolve(cmd.Flags())
	}
	cfg, err := resolve("--out", t.TempDir(), "--lam-r", "0.2", "--normalize=false", "--width", "8", "--mean", "0.5", "--std", "0.25")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cfg.MethodOpts.Get("lam_R"); v != 0.2 {
		t.Errorf("--lam-r 0.2 gave lam_R %v", v)
	}
	if v, _ := cfg.MethodOpts.Get("normalize"); v != 0 {
		t.Errorf("--normalize=false gave normalize %v", v)
	}
	if v, _ := cfg.MethodOpts.Get("alpha"); v != 250 {
		t.Errorf("an option not given changed: alpha %v", v)
	}
	if cfg.Width != 8 || len(cfg.Mean) != 1 || cfg.Mean[0] != 0.5 || cfg.Std[0] != 0.25 || cfg.Projector != "512-512-64" {
		t.Errorf("setting flags replayed wrongly: width %d mean %v std %v projector %s", cfg.Width, cfg.Mean, cfg.Std, cfg.Projector)
	}
	cfg, err = resolve("--out", t.TempDir(), "--method", "simclr", "--temperature", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cfg.MethodOpts.Get("temperature"); v != 0.5 || len(cfg.MethodOpts.Values) != 1 {
		t.Errorf("simclr options %v", cfg.MethodOpts.Values)
	}
	_, err = resolve("--out", t.TempDir(), "--temperature", "0.5")
	var fe *FlagError
	if !errors.As(err, &fe) || fe.Flag != "temperature" {
		t.Errorf("--temperature with corinfomax: want a FlagError naming it, got %v", err)
	}
}
