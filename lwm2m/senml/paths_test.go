package senml_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/avc-agent/avc/lwm2m/senml"
)

func TestDecodePaths(t *testing.T) {
	tests := []struct {
		name, json string
		want       string
		wantErr    bool
	}{
		{name: "absolute names", json: `[{"n":"/3/0/0"},{"n":"/1/0/1"}]`, want: "[/3/0/0 /1/0/1]"},
		{name: "base name", json: `[{"bn":"/3/0/","n":"0"},{"n":"9"},{"bn":"/4/0"}]`, want: "[/3/0/0 /3/0/9 /4/0]"},
		{name: "object and instance", json: `[{"n":"/3"},{"n":"/6/0"}]`, want: "[/3 /6/0]"},
		{name: "value", json: `[{"n":"/3/0/0","v":1}]`, wantErr: true},
		{name: "string value", json: `[{"n":"/3/0/0","vs":"x"}]`, wantErr: true},
		{name: "relative", json: `[{"n":"3/0/0"}]`, wantErr: true},
		{name: "root", json: `[{"n":"/"}]`, wantErr: true},
		{name: "too deep", json: `[{"n":"/3/0/0/0/0"}]`, wantErr: true},
		{name: "duplicate", json: `[{"n":"/3/0"},{"n":"/3/0"}]`, wantErr: true},
		{name: "empty", json: `[]`, wantErr: true},
		{name: "not an array", json: `{"n":"/3"}`, wantErr: true},
		{name: "must understand", json: `[{"n":"/3","x_":1}]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := senml.DecodePathsJSON([]byte(tt.json))
			if (err != nil) != tt.wantErr || (err == nil && fmt.Sprint(got) != tt.want) {
				t.Fatalf("JSON = %v, %v; want %s (error %v)", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, senml.ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
		})
	}
	b, _ := cbor.Marshal([]map[int]string{{-2: "/3/0/", 0: "0"}, {0: "9"}})
	if got, err := senml.DecodePathsCBOR(b); err != nil || fmt.Sprint(got) != "[/3/0/0 /3/0/9]" {
		t.Errorf("CBOR = %v, %v", got, err)
	}
	b, _ = cbor.Marshal([]map[int]any{{0: "/3/0/0", 2: 1}})
	if _, err := senml.DecodePathsCBOR(b); !errors.Is(err, senml.ErrFormat) {
		t.Errorf("CBOR with a value: %v", err)
	}
}

func FuzzDecodePathsJSON(f *testing.F) {
	f.Add([]byte(`[{"bn":"/3/0/","n":"0"},{"n":"9"}]`))
	f.Add([]byte(`[{"n":"/3"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := senml.DecodePathsJSON(b)
		if err != nil {
			if !errors.Is(err, senml.ErrFormat) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, p := range ps {
			if p.Len < 1 || p.Len > 4 || seen[p.String()] {
				t.Fatalf("bad path list %v", ps)
			}
			seen[p.String()] = true
		}
	})
}
