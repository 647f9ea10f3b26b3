package data

import "testing"

func TestParseSplit(t *testing.T) {
	for name, want := range map[string]Split{"train": Train, "test": Test, "val": Test, "Validation": Test,
		"unlabeled": Unlabeled} {
		got, err := ParseSplit(name)
		if err != nil || got != want {
			t.Errorf("ParseSplit(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := ParseSplit("dev"); err == nil {
		t.Error("ParseSplit accepted dev")
	}
}
