package ops

import (
	"errors"
	"strings"
	"testing"
)

type binderStub struct {
	Backend
	calls int
}

func (b *binderStub) BindThreads() string { b.calls++; return "bound 1 thread to CPU 0" }

func TestOnComputeThreadBindsRunsAndReturns(t *testing.T) {
	b := &binderStub{}
	ran, binding := false, ""
	err := OnComputeThread(b, func(got string) error { ran, binding = true, got; return nil })
	if err != nil || !ran || b.calls != 1 || binding != "bound 1 thread to CPU 0" {
		t.Fatalf("binding %q err %v ran %v calls %d", binding, err, ran, b.calls)
	}
	want := errors.New("step failed")
	if err := OnComputeThread(b, func(string) error { return want }); !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	if err := OnComputeThread(b, func(string) error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic came back as %v", err)
	}
	// A backend that cannot bind runs f all the same.
	var plain Backend
	binding = "unset"
	if err := OnComputeThread(plain, func(got string) error { ran, binding = false, got; return nil }); err != nil || ran || binding != "" {
		t.Fatalf("plain backend: binding %q err %v", binding, err)
	}
}
