package tensor

import "testing"

func TestEnsureReusesStorage(t *testing.T) {
	a := New(2, 3)
	if a.Len() != 6 || len(a.Shape) != 2 {
		t.Fatalf("New(2,3): %v", a)
	}
	a.Data[0] = 7
	if b := Ensure(a, 2, 3); b != a || b.Data[0] != 7 {
		t.Fatal("Ensure with the same shape must return the tensor unchanged")
	}
	p := &a.Data[0]
	b := Ensure(a, 3, 1)
	if &b.Data[0] != p || b.Len() != 3 || b.Shape[0] != 3 {
		t.Fatalf("Ensure to a smaller shape must reuse the storage: %v", b)
	}
	c := Ensure(b, 4, 4)
	if c.Len() != 16 {
		t.Fatalf("Ensure to a larger shape: %v", c)
	}
	if Ensure(nil, 5).Len() != 5 {
		t.Fatal("Ensure(nil)")
	}
	if _, err := FromData(make([]float32, 5), 2, 3); err == nil {
		t.Fatal("FromData accepted 5 values for a 2x3 shape")
	}
	d := New(2, 2)
	d.Data[3] = 1
	e := d.Clone()
	e.Data[3] = 2
	if d.Data[3] != 1 || !d.SameShape(e) || d.SameShape(New(4)) {
		t.Fatal("Clone / SameShape")
	}
}
