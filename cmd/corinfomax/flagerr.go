package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/corinfomax/corinfomax/ssl"
	"github.com/corinfomax/corinfomax/train"
)

// FlagError is a command-line error attributable to one flag: exit status
// 2, and the message names the flag.
type FlagError struct {
	Flag string
	Msg  string
}

func (e *FlagError) Error() string { return fmt.Sprintf("--%s: %s", e.Flag, e.Msg) }

// fieldFlags are the settings whose flag is not their JSON name with "-"
// for "_".
var fieldFlags = map[string]string{"checkpoint_every_steps": "checkpoint-every"}

// flagOfField returns the flag that sets the train.Config field (its JSON
// name).
func flagOfField(field string) string {
	if f, ok := fieldFlags[field]; ok {
		return f
	}
	return strings.ReplaceAll(field, "_", "-")
}

// asFlagError turns the library's typed setting errors into errors naming
// the flag the user typed: a *train.ConfigError names its setting, an
// *ssl.OptionError its option (whose flag the option declares).
func asFlagError(err error) error {
	var ce *train.ConfigError
	if errors.As(err, &ce) {
		msg := ce.Msg
		if err != error(ce) {
			msg = strings.Replace(err.Error(), ce.Error(), ce.Msg, 1)
		}
		return &FlagError{Flag: flagOfField(ce.Field), Msg: msg}
	}
	var oe *ssl.OptionError
	if errors.As(err, &oe) {
		if _, opt, ok := ssl.OptionOf(oe.Option); ok {
			return &FlagError{Flag: opt.Flag, Msg: oe.Error()}
		}
		return &FlagError{Flag: "method", Msg: oe.Error()}
	}
	return err
}
