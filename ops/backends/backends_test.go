package backends

import (
	"strings"
	"testing"

	"github.com/corinfomax/corinfomax/ops"
	"github.com/corinfomax/corinfomax/ops/dnnl"
)

func TestRegistry(t *testing.T) {
	if names := Names(); len(names) < 2 || names[0] != Default {
		t.Fatalf("Names() = %v, want the default %s first", names, Default)
	}
	for _, b := range All() {
		if !b.Supports(ops.FP32) {
			t.Errorf("%s does not run fp32", b.Name)
		}
		be, err := New(b.Name, 1, "")
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		if be.Name() != b.Name || be.Precision() != ops.FP32 {
			t.Errorf("%s: built %s at %s", b.Name, be.Name(), be.Precision())
		}
		be.Close()
	}
	if _, err := New("cuda", 1, ""); err == nil || !strings.Contains(err.Error(), "dnnl or ref") {
		t.Errorf("unknown backend: want an error listing the known ones, got %v", err)
	}
	// On a CPU with AVX512-BF16 the error names the backend that runs
	// bf16; on one without (an AVX2 EPYC), no backend does, and it says why.
	want := "dnnl"
	if !dnnl.BF16Supported() {
		want = "AVX512-BF16"
	}
	if err := CheckPrecision("ref", "bf16"); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("bf16 on ref: want an error containing %q, got %v", want, err)
	}
	if err := CheckPrecision("dnnl", "fp16"); err == nil {
		t.Error("an unknown precision was accepted")
	}
	err := CheckPrecision("dnnl", "bf16")
	if dnnl.BF16Supported() != (err == nil) {
		t.Errorf("bf16 on dnnl: BF16Supported %v, CheckPrecision %v", dnnl.BF16Supported(), err)
	}
	if err == nil {
		be, err := New("dnnl", 1, "bf16")
		if err != nil {
			t.Fatal(err)
		}
		if be.Precision() != ops.BF16 {
			t.Errorf("dnnl bf16 backend reports %s", be.Precision())
		}
		be.Close()
	}
}
