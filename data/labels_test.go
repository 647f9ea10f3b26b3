package data

import (
	"slices"
	"strings"
	"testing"
)

func TestParseLabelBudget(t *testing.T) {
	for in, want := range map[string]LabelBudget{"1%": {Fraction: 0.01}, "10%": {Fraction: 0.1}, "100%": {Fraction: 1},
		"60-per-class": {PerClass: 60}, "0.5%": {Fraction: 0.005}} {
		got, err := ParseLabelBudget(in)
		if err != nil || got != want {
			t.Fatalf("%q: %+v, %v; want %+v", in, got, err, want)
		}
		if back, _ := ParseLabelBudget(got.String()); back != got {
			t.Fatalf("%q prints as %q, which reads back as %+v", in, got.String(), back)
		}
	}
	for _, bad := range []string{"", "0%", "101%", "x%", "0-per-class", "-3-per-class", "60", "ten-per-class"} {
		if _, err := ParseLabelBudget(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestBalancedSubset(t *testing.T) {
	// 60 images, 4 classes, unevenly: labels i%4 for i < 40, then class 1.
	labels := make([]int, 60)
	for i := range labels {
		labels[i] = i % 4
		if i >= 40 {
			labels[i] = 1
		}
	}
	ds := newMem(60, 2, 2, 1, 4, make([]byte, 60*4))
	for i, l := range labels {
		ds.labels[i] = int32(l)
	}
	count := func(idx []int) []int {
		c := make([]int, 4)
		for _, i := range idx {
			c[labels[i]]++
		}
		return c
	}
	a, err := BalancedSubset(ds, LabelBudget{PerClass: 7}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(count(a), []int{7, 7, 7, 7}) || !slices.IsSorted(a) {
		t.Fatalf("7 per class gave counts %v (indices %v)", count(a), a)
	}
	b, _ := BalancedSubset(ds, LabelBudget{PerClass: 7}, 3)
	c, _ := BalancedSubset(ds, LabelBudget{PerClass: 7}, 4)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Fatalf("seed 3 twice: %v and %v; seed 4: %v (want equal, then different)", a, b, c)
	}
	// 20% of 60 over 4 classes: 3 each.
	f, err := BalancedSubset(ds, LabelBudget{Fraction: 0.2}, 3)
	if err != nil || !slices.Equal(count(f), []int{3, 3, 3, 3}) {
		t.Fatalf("20%%: counts %v, %v", count(f), err)
	}
	if _, err := BalancedSubset(ds, LabelBudget{PerClass: 11}, 3); err == nil || !strings.Contains(err.Error(), "class 0 has 10 images") {
		t.Fatalf("11 per class with 10 images in class 0: %v", err)
	}
	if _, err := BalancedSubset(ds, LabelBudget{Fraction: 0.01}, 3); err == nil || !strings.Contains(err.Error(), "no labelled image") {
		t.Fatalf("1%% of 60 images: %v", err)
	}
	if _, err := BalancedSubset(newMem(8, 2, 2, 1, 0, make([]byte, 32)), LabelBudget{PerClass: 1}, 3); err == nil || !strings.Contains(err.Error(), "no labels") {
		t.Fatalf("unlabelled: %v", err)
	}
	sub := Subset(ds, a)
	if sub.Len() != 28 || sub.Label(5) != labels[a[5]] || sub.NumClasses() != 4 {
		t.Fatalf("subset view: len %d, label %d", sub.Len(), sub.Label(5))
	}
}
