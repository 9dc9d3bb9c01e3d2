package senml

import (
	"reflect"
	"testing"

	"github.com/avc-agent/avc/lwm2m"
)

// TestEncodePathsRoundTrip: what EncodePaths* write, DecodePaths* read
// back in order; the root and an empty list are refused.
func TestEncodePathsRoundTrip(t *testing.T) {
	paths := []lwm2m.Path{lwm2m.P(3, 0, 9), lwm2m.P(1, 0), lwm2m.P(5), lwm2m.P(3, 0, 11, 0)}
	for _, tc := range []struct {
		name   string
		encode func([]lwm2m.Path) ([]byte, error)
		decode func([]byte) ([]lwm2m.Path, error)
	}{
		{"json", EncodePathsJSON, DecodePathsJSON},
		{"cbor", EncodePathsCBOR, DecodePathsCBOR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.encode(paths)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.decode(b)
			if err != nil {
				t.Fatalf("decode %q: %v", b, err)
			}
			if !reflect.DeepEqual(got, paths) {
				t.Fatalf("round trip = %v, want %v", got, paths)
			}
			if _, err := tc.encode(nil); err == nil {
				t.Error("an empty list encoded")
			}
			if _, err := tc.encode([]lwm2m.Path{{}}); err == nil {
				t.Error("the root encoded")
			}
		})
	}
}
