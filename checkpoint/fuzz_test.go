package checkpoint

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// encode serialises f in memory the way Write does.
func encode(f *File) ([]byte, error) {
	hdr, err := encodeHeader(f)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(hdr))))
	buf.Write(hdr)
	for _, t := range f.Tensors {
		if err := writeData(&buf, t); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// FuzzDecode checks that Decode never panics, and that whatever it accepts
// survives an encode/decode round trip unchanged. The seed corpus is in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	if b, err := encode(sampleFile()); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Decode(b)
		if err != nil {
			return
		}
		again, err := encode(file)
		if err != nil {
			t.Fatalf("accepted file does not re-encode: %v", err)
		}
		file2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		sameFile(t, file2, file)
	})
}
