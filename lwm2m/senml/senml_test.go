package senml_test

import (
	"math"
	"testing"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/senml"
)

// TestJSONAndCBORAgree decodes the same payload written in SenML-JSON and
// in SenML-CBOR and expects the same records.
func TestJSONAndCBORAgree(t *testing.T) {
	tests := []struct {
		name   string
		base   lwm2m.Path
		json   string
		cbor   []byte
		typeOf func(lwm2m.Path) lwm2m.Type
	}{
		{name: "spec device instance", base: lwm2m.P(3, 0), json: deviceJSON, cbor: unhex(t, deviceCBOR), typeOf: deviceTypes},
		{name: "spec device untyped", base: lwm2m.P(), json: deviceJSON, cbor: unhex(t, deviceCBOR)},
		{
			name: "base name changes",
			base: lwm2m.P(),
			json: `[{"bn":"/3/0/","n":"9","v":100},{"n":"10","v":15},{"bn":"/1/0/","n":"1","v":86400},{"n":"2","v":1}]`,
			cbor: cb(t, list{obj{-2: "/3/0/", 0: "9", 2: 100}, obj{0: "10", 2: 15}, obj{-2: "/1/0/", 0: "1", 2: 86400}, obj{0: "2", 2: 1}}),
		},
		{
			name: "numbers",
			base: lwm2m.P(1, 0),
			json: `[{"n":"/1/0/0","v":1.5},{"n":"/1/0/10","v":18446744073709551615},{"n":"/1/0/20","v":-0.0},{"n":"/1/0/30","v":-9223372036854775808},{"n":"/1/0/40","v":1e300}]`,
			cbor: cb(t, list{
				obj{0: "/1/0/0", 2: 1.5}, obj{0: "/1/0/10", 2: uint64(math.MaxUint64)}, obj{0: "/1/0/20", 2: math.Copysign(0, -1)},
				obj{0: "/1/0/30", 2: int64(math.MinInt64)}, obj{0: "/1/0/40", 2: 1e300},
			}),
		},
		{
			name:   "converted numbers",
			base:   lwm2m.P(1, 0),
			json:   `[{"n":"/1/0/2","v":1E2},{"n":"/1/0/3","v":5},{"n":"/1/0/4","v":5},{"n":"/1/0/7","v":1700000000}]`,
			cbor:   unhex(t, "84 a2 00 66 2f312f302f32 02 c4 82 02 01 a2 00 66 2f312f302f33 02 05 a2 00 66 2f312f302f34 02 05 a2 00 66 2f312f302f37 02 1a6553f100"),
			typeOf: testTypes,
		},
		{
			name:   "other types",
			base:   lwm2m.P(1),
			json:   `[{"bn":"/1/0/","n":"1","vs":"é"},{"n":"5","vb":true},{"n":"6","vd":"-_8"},{"n":"8","vlo":"3:0"},{"n":"9","vs":"</3>"}]`,
			cbor:   cb(t, list{obj{-2: "/1/0/", 0: "1", 3: "é"}, obj{0: "5", 4: true}, obj{0: "6", 8: []byte{0xFB, 0xFF}}, obj{0: "8", "vlo": "3:0"}, obj{0: "9", 3: "</3>"}}),
			typeOf: testTypes,
		},
		{
			name: "ignored fields",
			base: lwm2m.P(3, 0),
			json: `[{"bn":"/3/0/","bt":1.7e9,"bu":"s","bver":10,"bs":0,"bv":0,"n":"9","v":100,"t":-5,"u":"%","ut":60,"x-vendor":"y"}]`,
			cbor: cb(t, list{obj{-2: "/3/0/", -3: 1.7e9, -4: "s", -1: 10, -6: 0, -5: 0, 0: "9", 2: 100, 6: -5, 1: "%", 7: 60, "x-vendor": "y"}}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fromJSON, err := senml.DecodeJSON(tt.base, []byte(tt.json), tt.typeOf)
			if err != nil {
				t.Fatalf("DecodeJSON: %v", err)
			}
			fromCBOR, err := senml.DecodeCBOR(tt.base, tt.cbor, tt.typeOf)
			if err != nil {
				t.Fatalf("DecodeCBOR: %v", err)
			}
			if len(fromJSON) == 0 || !equalRecords(fromJSON, fromCBOR) {
				t.Errorf("JSON gives\n%v\nCBOR gives\n%v", fromJSON, fromCBOR)
			}
		})
	}
}

// TestEncodersAgree encodes records in both formats and expects both
// decoders to give them back.
func TestEncodersAgree(t *testing.T) {
	tests := []struct {
		name string
		base lwm2m.Path
		recs []lwm2m.Record
	}{
		{name: "device", base: lwm2m.P(3, 0), recs: deviceRecords()},
		{name: "device at root", base: lwm2m.P(), recs: deviceRecords()},
		{name: "none", base: lwm2m.P(3)},
		{
			name: "every type",
			base: lwm2m.P(9),
			recs: []lwm2m.Record{
				rec(lwm2m.P(9, 1, 10), lwm2m.Opaque([]byte{0, 1, 2, 0xFF})),
				rec(lwm2m.P(9, 1, 11), lwm2m.String("h\u00e9llo\x00\"")),
				rec(lwm2m.P(9, 1, 12, 0), lwm2m.Int(-1)),
				rec(lwm2m.P(9, 1, 12, 65534), lwm2m.Int(math.MaxInt64)),
				rec(lwm2m.P(9, 1, 13), lwm2m.Uint(math.MaxUint64)),
				rec(lwm2m.P(9, 1, 14), lwm2m.Float(math.MaxFloat64)),
				rec(lwm2m.P(9, 1, 24), lwm2m.Float(math.Copysign(0, -1))),
				rec(lwm2m.P(9, 1, 34), lwm2m.Float(math.SmallestNonzeroFloat64)),
				rec(lwm2m.P(9, 1, 44), lwm2m.Float(123456789)),
				rec(lwm2m.P(9, 1, 54), lwm2m.Float(0.1)),
				rec(lwm2m.P(9, 1, 15), lwm2m.Bool(true)),
				rec(lwm2m.P(9, 2, 17), lwm2m.Value{Type: lwm2m.TypeTime, Int: -1}),
				rec(lwm2m.P(9, 2, 18), lwm2m.Link(65535, 65535)),
				rec(lwm2m.P(9, 2, 19), lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: `</3/0>;ct=11543`}),
			},
		},
	}
	typeOf := func(p lwm2m.Path) lwm2m.Type {
		if p.Obj() == 3 {
			return deviceTypes(p)
		}
		return testTypes(p)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := senml.EncodeJSON(tt.base, tt.recs)
			if err != nil {
				t.Fatal(err)
			}
			cbr, err := senml.EncodeCBOR(tt.base, tt.recs)
			if err != nil {
				t.Fatal(err)
			}
			if len(cbr) > len(js) {
				t.Errorf("CBOR takes %d bytes, JSON %d", len(cbr), len(js))
			}
			fromJSON, err := senml.DecodeJSON(tt.base, js, typeOf)
			if err != nil {
				t.Fatalf("DecodeJSON(%s): %v", js, err)
			}
			fromCBOR, err := senml.DecodeCBOR(tt.base, cbr, typeOf)
			if err != nil {
				t.Fatalf("DecodeCBOR(%x): %v", cbr, err)
			}
			if !equalRecords(fromJSON, fromCBOR) {
				t.Errorf("JSON gives\n%v\nCBOR gives\n%v", fromJSON, fromCBOR)
			}
			if len(fromCBOR) != len(tt.recs) {
				t.Errorf("%d records, want %d", len(fromCBOR), len(tt.recs))
			}
		})
	}
}
