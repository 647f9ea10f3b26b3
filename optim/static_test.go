package optim

import (
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/nn"
)

// TestStatic checks that Static steps its main parameters at the
// scheduled rate and its fixed ones at LR (against two plain SGDs over the
// same parameters), and that its state round-trips under StaticPrefix.
func TestStatic(t *testing.T) {
	a, ref := testParams(), testParams()
	o := &Static{Main: NewSGD(a[:1], 0.9, 1e-4, false), Fixed: NewSGD(a[1:], 0.9, 1e-4, false), LR: 0.3}
	refMain, refFixed := NewSGD(ref[:1], 0.9, 1e-4, false), NewSGD(ref[1:], 0.9, 1e-4, false)
	for step, lr := range []float64{0.1, 0.02} {
		if step == 1 {
			setGrad2(a)
			setGrad2(ref)
		}
		if err := o.Step(lr); err != nil {
			t.Fatal(err)
		}
		if err := refMain.Step(lr); err != nil {
			t.Fatal(err)
		}
		if err := refFixed.Step(0.3); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			for j, v := range a[i].Value.Data {
				if v != ref[i].Value.Data[j] {
					t.Fatalf("step %d: %s[%d] = %v, want %v", step+1, a[i].Name, j, v, ref[i].Value.Data[j])
				}
			}
		}
	}
	st := o.State()
	var fixed int
	for _, s := range st {
		if strings.HasPrefix(s.Name, StaticPrefix) {
			fixed++
			if s.Name != StaticPrefix+"momentum_buffer.b" {
				t.Errorf("fixed-rate state %q", s.Name)
			}
		}
	}
	if fixed != 1 || len(st) != 2 {
		t.Errorf("state %v: want the main buffer and one under %q", st, StaticPrefix)
	}
	b := testParams()
	for i := range b {
		copy(b[i].Value.Data, a[i].Value.Data)
	}
	ob := &Static{Main: NewSGD(b[:1], 0.9, 1e-4, false), Fixed: NewSGD(b[1:], 0.9, 1e-4, false), LR: 0.3}
	if err := ob.SetState(st); err != nil {
		t.Fatal(err)
	}
	for _, ps := range [][]*nn.Param{a, b} {
		setGrad2(ps)
	}
	if err := o.Step(0.05); err != nil {
		t.Fatal(err)
	}
	if err := ob.Step(0.05); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		for j, v := range b[i].Value.Data {
			if v != a[i].Value.Data[j] {
				t.Fatalf("restored: %s[%d] = %v, uninterrupted %v", b[i].Name, j, v, a[i].Value.Data[j])
			}
		}
	}
	if err := ob.SetState([]StateTensor{{Name: StaticPrefix + "momentum_buffer.w", Data: make([]float32, 4)}}); err == nil {
		t.Error("fixed-rate state for a main parameter accepted")
	}
}
