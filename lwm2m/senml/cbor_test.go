package senml_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/senml"
)

// unhex decodes hex with optional spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad test hex %q: %v", s, err)
	}
	return b
}

// obj and list build CBOR test payloads with cb.
type (
	obj  = map[any]any
	list = []any
)

// testEnc encodes test payloads deterministically (map keys sorted by
// their encoding, so "bn" (-2) comes after "n" (0)).
var testEnc, testEncErr = cbor.EncOptions{Sort: cbor.SortCoreDeterministic}.EncMode()

// cb encodes a test payload.
func cb(t testing.TB, v any) []byte {
	t.Helper()
	if testEncErr != nil {
		t.Fatal(testEncErr)
	}
	b, err := testEnc.Marshal(v)
	if err != nil {
		t.Fatalf("cannot encode test payload %v: %v", v, err)
	}
	return b
}

// deviceCBOR is the SenML-CBOR of the Device object instance /3/0 from
// Core TS 1.1 §7.4.4, Table 7.4.4-2:
//
//	[{-2: "/3/0/", 0: "0", 3: "Open Mobile Alliance"},
//	 {0: "1", 3: "Lightweight M2M Client"}, {0: "2", 3: "345000123"},
//	 {0: "3", 3: "1.0"}, {0: "6/0", 2: 1}, {0: "6/1", 2: 5},
//	 {0: "7/0", 2: 3800}, {0: "7/1", 2: 5000}, {0: "8/0", 2: 125},
//	 {0: "8/1", 2: 900}, {0: "9", 2: 100}, {0: "10", 2: 15},
//	 {0: "11/0", 2: 0}, {0: "13", 2: 1367491215}, {0: "14", 3: "+02:00"},
//	 {0: "16", 3: "U"}]
const deviceCBOR = "90" +
	"a3 21 65 2f332f302f 00 61 30 03 74 4f70656e204d6f62696c6520416c6c69616e6365" +
	"a2 00 61 31 03 76 4c69676874776569676874204d324d20436c69656e74" +
	"a2 00 61 32 03 69 333435303030313233" +
	"a2 00 61 33 03 63 312e30" +
	"a2 00 63 362f30 02 01" +
	"a2 00 63 362f31 02 05" +
	"a2 00 63 372f30 02 190ed8" +
	"a2 00 63 372f31 02 191388" +
	"a2 00 63 382f30 02 187d" +
	"a2 00 63 382f31 02 190384" +
	"a2 00 61 39 02 1864" +
	"a2 00 62 3130 02 0f" +
	"a2 00 64 31312f30 02 00" +
	"a2 00 62 3133 02 1a5182428f" +
	"a2 00 62 3134 03 66 2b30323a3030" +
	"a2 00 62 3136 03 61 55"

func TestEncodeCBOR(t *testing.T) {
	tests := []struct {
		name string
		base lwm2m.Path
		recs []lwm2m.Record
		want string
	}{
		{name: "spec device instance", base: lwm2m.P(3, 0), recs: deviceRecords(), want: deviceCBOR},
		{name: "no records", base: lwm2m.P(3, 0), want: "80"},
		{
			// At the root names are absolute:
			// [{0: "/1/0/1", 2: 86400}, {0: "/3/0/9", 2: 100}]
			name: "root",
			base: lwm2m.P(),
			recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 9), lwm2m.Int(100)), rec(lwm2m.P(1, 0, 1), lwm2m.Uint(86400))},
			want: "82 a2 00 66 2f312f302f31 02 1a00015180 a2 00 66 2f332f302f39 02 1864",
		},
		{
			// [{0: "/3/0/6/0", 2: 1}, {0: "/3/0/6/1", 2: 5}]
			name: "resource",
			base: lwm2m.P(3, 0, 6),
			recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 6, 1), lwm2m.Int(5)), rec(lwm2m.P(3, 0, 6, 0), lwm2m.Int(1))},
			want: "82 a2 00 68 2f332f302f362f30 02 01 a2 00 68 2f332f302f362f31 02 05",
		},
		{name: "half float", base: lwm2m.P(1, 0, 4), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 4), lwm2m.Float(1.5))}, want: "81 a2 00 66 2f312f302f34 02 f93e00"},
		{name: "integral float", base: lwm2m.P(1, 0, 4), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 4), lwm2m.Float(3))}, want: "81 a2 00 66 2f312f302f34 02 f94200"},
		{name: "negative zero", base: lwm2m.P(1, 0, 4), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 4), lwm2m.Float(math.Copysign(0, -1)))}, want: "81 a2 00 66 2f312f302f34 02 f98000"},
		{name: "single float", base: lwm2m.P(1, 0, 4), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 4), lwm2m.Float(100000))}, want: "81 a2 00 66 2f312f302f34 02 fa47c35000"},
		{name: "double float", base: lwm2m.P(1, 0, 4), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 4), lwm2m.Float(-0.1))}, want: "81 a2 00 66 2f312f302f34 02 fbbfb999999999999a"},
		{name: "unsigned", base: lwm2m.P(1, 0, 3), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 3), lwm2m.Uint(math.MaxUint64))}, want: "81 a2 00 66 2f312f302f33 02 1bffffffffffffffff"},
		{name: "integer", base: lwm2m.P(1, 0, 2), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 2), lwm2m.Int(math.MinInt64))}, want: "81 a2 00 66 2f312f302f32 02 3b7fffffffffffffff"},
		{name: "time", base: lwm2m.P(1, 0, 7), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 7), lwm2m.Value{Type: lwm2m.TypeTime, Int: 1700000000})}, want: "81 a2 00 66 2f312f302f37 02 1a6553f100"},
		{name: "boolean", base: lwm2m.P(1, 0, 5), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 5), lwm2m.Bool(false))}, want: "81 a2 00 66 2f312f302f35 04 f4"},
		{name: "opaque", base: lwm2m.P(1, 0, 6), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 6), lwm2m.Opaque([]byte{0xFB, 0xFF}))}, want: "81 a2 00 66 2f312f302f36 08 42fbff"},
		{name: "empty opaque", base: lwm2m.P(1, 0, 6), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 6), lwm2m.Opaque(nil))}, want: "81 a2 00 66 2f312f302f36 08 40"},
		{name: "objlnk", base: lwm2m.P(1, 0, 8), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 8), lwm2m.Link(3, 65535))}, want: "81 a2 00 66 2f312f302f38 63 766c6f 67 333a3635353335"},
		{name: "string", base: lwm2m.P(1, 0, 1), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 1), lwm2m.String("a\"\x00é"))}, want: "81 a2 00 66 2f312f302f31 03 65 612200c3a9"},
		{name: "corelnk", base: lwm2m.P(1, 0, 9), recs: []lwm2m.Record{rec(lwm2m.P(1, 0, 9), lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: "</3>"})}, want: "81 a2 00 66 2f312f302f39 03 64 3c2f333e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := senml.EncodeCBOR(tt.base, tt.recs)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("EncodeCBOR =\n%x\nwant\n%x", got, want)
			}
		})
	}
}

func TestEncodeCBORError(t *testing.T) {
	tests := []struct {
		name string
		base lwm2m.Path
		recs []lwm2m.Record
	}{
		{name: "reserved base id", base: lwm2m.P(65535)},
		{name: "not under base", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 1, 1), lwm2m.Int(1))}},
		{name: "instance record", base: lwm2m.P(3), recs: []lwm2m.Record{rec(lwm2m.P(3, 0), lwm2m.Int(1))}},
		{name: "reserved id", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1, 65535), lwm2m.Int(1))}},
		{name: "duplicate", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Int(1)), rec(lwm2m.P(3, 0, 1), lwm2m.Int(2))}},
		{name: "single and multiple", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1, 0), lwm2m.Int(1)), rec(lwm2m.P(3, 0, 1), lwm2m.Int(2))}},
		{name: "no type", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Value{})}},
		{name: "unknown type", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Value{Type: 42})}},
		{name: "nan", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Float(math.NaN()))}},
		{name: "inf", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Float(math.Inf(1)))}},
		{name: "invalid utf-8", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.String("\xff"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := senml.EncodeCBOR(tt.base, tt.recs)
			if !errors.Is(err, senml.ErrEncode) {
				t.Fatalf("EncodeCBOR = %x, %v; want ErrEncode", b, err)
			}
		})
	}
}

func TestDecodeCBOR(t *testing.T) {
	tests := []struct {
		name   string
		base   lwm2m.Path
		in     []byte
		typeOf func(lwm2m.Path) lwm2m.Type
		want   []lwm2m.Record
	}{
		{name: "spec device instance", base: lwm2m.P(3, 0), in: unhex(t, deviceCBOR), typeOf: deviceTypes, want: deviceRecords()},
		{name: "spec device at root", base: lwm2m.P(), in: unhex(t, deviceCBOR), typeOf: deviceTypes, want: deviceRecords()},
		{
			// Core TS 1.1 Table 7.4.4-4 (in part): object links.
			name: "spec object links",
			base: lwm2m.P(),
			in: cb(t, list{
				obj{-2: "/", 0: "65/0/0/0", "vlo": "66:0"},
				obj{0: "65/0/0/1", "vlo": "66:1"},
				obj{0: "65/0/1", 3: "8613800755500"},
				obj{0: "65/0/2", 2: 1},
				obj{0: "66/1/2", "vlo": "65535:65535"},
			}),
			want: []lwm2m.Record{
				rec(lwm2m.P(65, 0, 0, 0), lwm2m.Link(66, 0)),
				rec(lwm2m.P(65, 0, 0, 1), lwm2m.Link(66, 1)),
				rec(lwm2m.P(65, 0, 1), lwm2m.String("8613800755500")),
				rec(lwm2m.P(65, 0, 2), lwm2m.Int(1)),
				rec(lwm2m.P(66, 1, 2), lwm2m.Link(65535, 65535)),
			},
		},
		{
			// Core TS 1.1 Table 7.4.4-5: a single resource.
			name: "spec single resource",
			base: lwm2m.P(3, 0, 0),
			in:   cb(t, list{obj{-2: "/3/0/0", 3: "Open Mobile Alliance"}}),
			want: []lwm2m.Record{rec(lwm2m.P(3, 0, 0), lwm2m.String("Open Mobile Alliance"))},
		},
		{
			// Core TS 1.1 Table 7.4.4-7: a Read-Composite response.
			name: "spec composite",
			base: lwm2m.P(),
			in:   cb(t, list{obj{0: "/3/0/0", 3: "Open Mobile Alliance"}, obj{0: "/3/0/9", 2: 95}, obj{0: "/1/0/1", 2: 86400}}),
			want: []lwm2m.Record{rec(lwm2m.P(1, 0, 1), lwm2m.Int(86400)), rec(lwm2m.P(3, 0, 0), lwm2m.String("Open Mobile Alliance")), rec(lwm2m.P(3, 0, 9), lwm2m.Int(95))},
		},
		{
			// Core TS 1.1 Table 7.4.4-8: a Write-Composite request.
			name: "spec write composite",
			base: lwm2m.P(),
			in: cb(t, list{
				obj{0: "/3311/0/5850", 4: false}, obj{0: "/3311/1/5850", 4: false},
				obj{0: "/3311/2/5851", 2: 20}, obj{0: "/3308/0/5900", 2: 18},
			}),
			want: []lwm2m.Record{
				rec(lwm2m.P(3308, 0, 5900), lwm2m.Int(18)), rec(lwm2m.P(3311, 0, 5850), lwm2m.Bool(false)),
				rec(lwm2m.P(3311, 1, 5850), lwm2m.Bool(false)), rec(lwm2m.P(3311, 2, 5851), lwm2m.Int(20)),
			},
		},
		{
			// Labels in any order, the base name after the name.
			name: "label order",
			base: lwm2m.P(65, 543),
			in:   unhex(t, "82 a3 02 18 64 00 61 31 21 68 2f36352f3534332f a2 04 f5 00 63 322f30"),
			want: []lwm2m.Record{rec(lwm2m.P(65, 543, 1), lwm2m.Int(100)), rec(lwm2m.P(65, 543, 2, 0), lwm2m.Bool(true))},
		},
		{name: "name joins base name", base: lwm2m.P(2, 3), in: cb(t, list{obj{-2: "/2/3", 0: "/0", 2: 1234}}), want: []lwm2m.Record{rec(lwm2m.P(2, 3, 0), lwm2m.Int(1234))}},
		{
			name: "times and units ignored",
			base: lwm2m.P(12, 0),
			in: cb(t, list{
				obj{0: "1", 2: 1234, -2: "/12/0/", -3: 1234567, -4: "s", -1: 10, -6: 0, -5: 0, 1: "%", 6: -5, 7: 60, "x-vendor": "y"},
				obj{0: "3", 2: 56.789, 6: 2.5},
				obj{0: "2/0", 2: 0.23, 6: uint64(math.MaxUint64)},
			}),
			want: []lwm2m.Record{rec(lwm2m.P(12, 0, 1), lwm2m.Int(1234)), rec(lwm2m.P(12, 0, 2, 0), lwm2m.Float(0.23)), rec(lwm2m.P(12, 0, 3), lwm2m.Float(56.789))},
		},
		{name: "empty array", base: lwm2m.P(3, 0), in: unhex(t, "80")},
		{name: "empty indefinite array", base: lwm2m.P(3, 0), in: unhex(t, "9f ff")},
		{
			name: "indefinite lengths",
			base: lwm2m.P(1, 0),
			in:   unhex(t, "9f bf 00 7f 64 2f312f30 62 2f31 ff 08 5f 41 01 41 02 ff ff bf 21 7f 65 2f312f302f ff 00 61 32 03 7f 61 78 ff ff ff"),
			want: []lwm2m.Record{rec(lwm2m.P(1, 0, 1), lwm2m.Opaque([]byte{1, 2})), rec(lwm2m.P(1, 0, 2), lwm2m.String("x"))},
		},
		{name: "non-preferred labels and values", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a2 18 00 66 2f312f302f30 19 0002 1b 0000000000000005"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Int(5))}},
		{name: "int64 max", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a2 00 66 2f312f302f30 02 1b7fffffffffffffff"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Int(math.MaxInt64))}},
		{name: "int64 min", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a2 00 66 2f312f302f30 02 3b7fffffffffffffff"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Int(math.MinInt64))}},
		{name: "uint64 max", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a2 00 66 2f312f302f30 02 1bffffffffffffffff"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Uint(math.MaxUint64))}},
		{name: "half float", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a2 00 66 2f312f302f30 02 f93e00"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Float(1.5))}},
		{name: "single float", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a2 00 66 2f312f302f30 02 fa3fc00000"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Float(1.5))}},
		{name: "integral float stays float", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a2 00 66 2f312f302f30 02 f94200"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Float(3))}},
		{name: "negative zero", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a2 00 66 2f312f302f30 02 f98000"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Float(math.Copysign(0, -1)))}},
		{name: "decimal fraction", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a2 00 66 2f312f302f30 02 c4 82 21 196ab3"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Float(273.15))}},
		{name: "decimal fraction time", base: lwm2m.P(1, 0, 0), in: unhex(t, "81 a3 00 66 2f312f302f30 02 01 06 c4 82 20 05"), want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Int(1))}},
		{name: "decimal fraction as integer", base: lwm2m.P(1, 0, 2), in: unhex(t, "81 a2 00 66 2f312f302f32 02 c4 82 01 05"), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 2), lwm2m.Int(50))}},
		{name: "integral float as integer", base: lwm2m.P(1, 0, 2), in: unhex(t, "81 a2 00 66 2f312f302f32 02 f94200"), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 2), lwm2m.Int(3))}},
		{name: "integer as unsigned", base: lwm2m.P(1, 0, 3), in: cb(t, list{obj{0: "/1/0/3", 2: 5}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 3), lwm2m.Uint(5))}},
		{name: "integer as float", base: lwm2m.P(1, 0, 4), in: cb(t, list{obj{0: "/1/0/4", 2: 5}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 4), lwm2m.Float(5))}},
		{name: "integer as time", base: lwm2m.P(1, 0, 7), in: cb(t, list{obj{0: "/1/0/7", 2: 1700000000}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 7), lwm2m.Value{Type: lwm2m.TypeTime, Int: 1700000000})}},
		{name: "string", base: lwm2m.P(1, 0, 1), in: cb(t, list{obj{0: "/1/0/1", 3: "é\n"}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 1), lwm2m.String("é\n"))}},
		{name: "corelnk", base: lwm2m.P(1, 0, 9), in: cb(t, list{obj{0: "/1/0/9", 3: "</3>"}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 9), lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: "</3>"})}},
		{name: "boolean", base: lwm2m.P(1, 0, 5), in: cb(t, list{obj{0: "/1/0/5", 4: true}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 5), lwm2m.Bool(true))}},
		{name: "opaque", base: lwm2m.P(1, 0, 6), in: cb(t, list{obj{0: "/1/0/6", 8: []byte{0xFB, 0xFF}}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 6), lwm2m.Opaque([]byte{0xFB, 0xFF}))}},
		{name: "opaque empty", base: lwm2m.P(1, 0, 6), in: cb(t, list{obj{0: "/1/0/6", 8: []byte{}}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 6), lwm2m.Opaque([]byte{}))}},
		{name: "objlnk", base: lwm2m.P(1, 0, 8), in: cb(t, list{obj{0: "/1/0/8", "vlo": "65535:0"}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 8), lwm2m.Link(65535, 0))}},
		{name: "unknown type keeps value", base: lwm2m.P(1, 0, 0), in: cb(t, list{obj{0: "/1/0/0", 3: "x"}}), typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.String("x"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := senml.DecodeCBOR(tt.base, tt.in, tt.typeOf)
			if err != nil {
				t.Fatal(err)
			}
			if !equalRecords(got, tt.want) {
				t.Errorf("DecodeCBOR =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestDecodeCBORError(t *testing.T) {
	// rec1 returns a one-record payload for /3/0/1 with the extra labels.
	rec1 := func(labels obj) []byte {
		m := obj{0: "/3/0/1"}
		for k, v := range labels {
			m[k] = v
		}
		return cb(t, list{m})
	}
	tests := []struct {
		name    string
		base    lwm2m.Path
		in      []byte
		untyped bool // decode without typeOf
		tooBig  bool
		path    bool // also wraps lwm2m.ErrBadPath
	}{
		// Framing.
		{name: "over 64 KiB", in: unhex(t, "81 a2 00 66 2f332f302f31 08 5a 00010000"+strings.Repeat("00", senml.MaxSize)), tooBig: true},
		{name: "empty input", in: nil},
		{name: "map", in: cb(t, obj{0: "/3/0/1", 2: 1})},
		{name: "integer", in: unhex(t, "00")},
		{name: "null", in: unhex(t, "f6")},
		{name: "record is an integer", in: unhex(t, "81 01")},
		{name: "record is null", in: unhex(t, "81 f6")},
		{name: "record is an array", in: unhex(t, "81 80")},
		{name: "trailing bytes", in: unhex(t, "80 80")},
		{name: "truncated", in: unhex(t, "81 a2 00 66 2f332f30")},
		{name: "reserved base id", base: lwm2m.P(65535), in: unhex(t, "80"), path: true},
		// B27: zero-length labels.
		{name: "empty text label", in: rec1(obj{"": 1, 2: 1})},
		{name: "empty text label with a text", in: rec1(obj{"": "", 2: 1})},
		// B29: nesting, indefinite lengths, declared lengths.
		{name: "nesting 10000 deep", in: unhex(t, strings.Repeat("81", 10000)+"00")},
		{name: "nesting 5 deep", in: unhex(t, "81 a2 00 66 2f332f302f31 02 c4 82 00 81 81 00")},
		{name: "nested array value", in: rec1(obj{2: list{1}})},
		{name: "nested map value", in: rec1(obj{2: obj{}})},
		{name: "nested unknown label", in: rec1(obj{"x": obj{"y": 1}, 2: 1})},
		{name: "indefinite array without break", in: unhex(t, "9f a2 00 66 2f332f302f31 02 01")},
		{name: "indefinite map without break", in: unhex(t, "81 bf 00 66 2f332f302f31 02 01")},
		{name: "indefinite string without break", in: unhex(t, "81 a2 00 66 2f332f302f31 03 7f 61 78")},
		{name: "array of 2^64-1", in: unhex(t, "9b ffffffffffffffff")},
		{name: "map of 2^64-1", in: unhex(t, "81 bb ffffffffffffffff")},
		{name: "map over the label limit", in: unhex(t, "81 b8 41")},
		{name: "bytes of 2^64-1", in: unhex(t, "81 a2 00 66 2f332f302f31 08 5b ffffffffffffffff")},
		// B30: labels.
		{name: "duplicate label", in: unhex(t, "81 a3 00 66 2f332f302f31 00 66 2f332f302f32 02 01")},
		{name: "duplicate value label", in: unhex(t, "81 a3 00 66 2f332f302f31 02 01 02 02")},
		{name: "duplicate non-preferred label", in: unhex(t, "81 a3 00 66 2f332f302f31 02 01 18 02 02")},
		{name: "unknown negative label", in: rec1(obj{-7: 1, 2: 1})},
		{name: "unknown positive label", in: rec1(obj{9: 1, 2: 1})},
		{name: "label 2^64-1", in: rec1(obj{uint64(math.MaxUint64): 1, 2: 1})},
		{name: "label below int64", in: unhex(t, "81 a3 00 66 2f332f302f31 02 01 3b ffffffffffffffff 01")},
		{name: "byte string label", in: rec1(obj{cbor.ByteString("v"): 1, 2: 1})},
		{name: "float label", in: rec1(obj{2.0: 1})},
		{name: "boolean label", in: rec1(obj{true: 1, 2: 1})},
		{name: "tagged label", in: unhex(t, "81 a3 00 66 2f332f302f31 02 01 c1 00 01")},
		{name: "json name v", in: rec1(obj{"v": 1})},
		{name: "json name bn", in: rec1(obj{"bn": "/", 2: 1})},
		{name: "must understand", in: rec1(obj{2: 1, "x_": 1})},
		// B30: tags, NaN, out-of-range integers.
		{name: "tag 1 value", in: rec1(obj{2: cbor.Tag{Number: 1, Content: 5}})},
		{name: "unknown tag value", in: rec1(obj{2: cbor.Tag{Number: 32, Content: 5}})},
		{name: "bignum value", in: unhex(t, "81 a2 00 66 2f332f302f31 02 c2 41 01")},
		{name: "tagged text", in: unhex(t, "81 a2 00 66 2f332f302f31 03 d8 20 61 78")},
		{name: "decimal fraction not an array", in: unhex(t, "81 a2 00 66 2f332f302f31 02 c4 00")},
		{name: "decimal fraction of three", in: unhex(t, "81 a2 00 66 2f332f302f31 02 c4 83 00 00 00")},
		{name: "decimal fraction with float", in: unhex(t, "81 a2 00 66 2f332f302f31 02 c4 82 00 f93e00")},
		{name: "decimal fraction overflow", in: unhex(t, "81 a2 00 66 2f332f302f31 02 c4 82 1901f4 01")},
		{name: "nan", in: unhex(t, "81 a2 00 66 2f332f302f31 02 f97e00")},
		{name: "inf", in: unhex(t, "81 a2 00 66 2f332f302f31 02 f97c00")},
		{name: "nan time", in: unhex(t, "81 a3 00 66 2f332f302f31 02 01 06 fb7ff8000000000000")},
		{name: "integer below int64", in: unhex(t, "81 a2 00 66 2f332f302f31 02 3bffffffffffffffff")},
		{name: "bt plus t overflows", in: rec1(obj{-3: 1.7e308, 2: 1, 6: 1.7e308})},
		{name: "invalid utf-8", in: unhex(t, "81 a2 00 66 2f332f302f31 03 61 ff")},
		{name: "null value", in: rec1(obj{2: nil})},
		{name: "undefined value", in: unhex(t, "81 a2 00 66 2f332f302f31 02 f7")},
		{name: "simple value", in: unhex(t, "81 a2 00 66 2f332f302f31 02 e0")},
		// Field types.
		{name: "integer name", in: cb(t, list{obj{0: 1, 2: 1}})},
		{name: "byte string name", in: cb(t, list{obj{0: []byte("/3/0/1"), 2: 1}})},
		{name: "boolean base name", in: rec1(obj{-2: true, 2: 1})},
		{name: "text v", in: rec1(obj{2: "1"})},
		{name: "integer vb", in: rec1(obj{4: 1})},
		{name: "integer vs", in: rec1(obj{3: 1})},
		{name: "bytes vs", in: rec1(obj{3: []byte("x")})},
		{name: "base64 vd", in: rec1(obj{8: "AA=="})},
		{name: "integer vlo", in: rec1(obj{"vlo": 1})},
		{name: "text t", in: rec1(obj{2: 1, 6: "1"})},
		{name: "text unit", in: rec1(obj{2: 1, 1: 1})},
		{name: "negative bver", in: rec1(obj{-1: -10, 2: 1})},
		{name: "float bver", in: rec1(obj{-1: 10.0, 2: 1})},
		{name: "objlnk out of range", in: rec1(obj{"vlo": "3:65536"})},
		{name: "objlnk one id", in: rec1(obj{"vlo": "3"})},
		// Values.
		{name: "no value", in: rec1(obj{})},
		{name: "two values", in: rec1(obj{2: 1, 3: "1"})},
		{name: "sum", in: rec1(obj{5: 1})},
		{name: "base value", in: rec1(obj{-5: 1, 2: 1})},
		{name: "boolean as integer", base: lwm2m.P(1, 0), in: cb(t, list{obj{0: "/1/0/2", 4: true}})},
		{name: "fraction as integer", base: lwm2m.P(1, 0), in: cb(t, list{obj{0: "/1/0/2", 2: 1.5}})},
		{name: "negative as unsigned", base: lwm2m.P(1, 0), in: cb(t, list{obj{0: "/1/0/3", 2: -1}})},
		{name: "number as string", base: lwm2m.P(1, 0), in: cb(t, list{obj{0: "/1/0/1", 2: 1}})},
		{name: "string as opaque", base: lwm2m.P(1, 0), in: cb(t, list{obj{0: "/1/0/6", 3: "AA=="}})},
		{name: "string as objlnk", base: lwm2m.P(1, 0), in: cb(t, list{obj{0: "/1/0/8", 3: "3:0"}})},
		// B28: names and paths.
		{name: "no name", in: cb(t, list{obj{2: 1}})},
		{name: "relative name without base name", in: cb(t, list{obj{0: "1", 2: 1}})},
		{name: "five levels", in: cb(t, list{obj{-2: "/3/0/", 0: "1/2/3", 2: 1}}), path: true},
		{name: "dot dot", in: cb(t, list{obj{-2: "/3/0/", 0: "../1", 2: 1}}), path: true},
		{name: "non-numeric", in: cb(t, list{obj{0: "/3/a/1", 2: 1}}), path: true},
		{name: "id 65535", in: cb(t, list{obj{0: "/3/0/65535", 2: 1}}), path: true},
		{name: "long name", in: cb(t, list{obj{0: "/3/0/" + strings.Repeat("1", 300), 2: 1}}), path: true},
		{name: "instance path", in: cb(t, list{obj{0: "/3/0", 2: 1}})},
		{name: "base name persists into bad path", in: cb(t, list{obj{-2: "/3/0/2/", 0: "0", 2: 1}, obj{0: "0/1", 2: 1}}), path: true},
		{name: "not under base", base: lwm2m.P(3, 0), in: cb(t, list{obj{0: "/3/1/1", 2: 1}})},
		{name: "duplicate path", in: cb(t, list{obj{0: "/3/0/1", 3: "a"}, obj{0: "/3/0/1", 3: "b"}})},
		{
			// Core TS 1.1 Table 7.4.4-3: a time series of one resource,
			// which records without time cannot hold.
			name: "spec time series", base: lwm2m.P(72), untyped: true, in: cb(t, list{
				obj{-2: "/72/", -3: 25462634, 0: "1/2", 2: 22.4, 6: -5},
				obj{0: "1/2", 2: 22.9, 6: -30},
				obj{0: "1/2", 2: 24.1, 6: -50},
			}),
		},
		{name: "single and multiple", in: cb(t, list{obj{0: "/3/0/1", 3: "a"}, obj{0: "/3/0/1/0", 3: "b"}})},
		{name: "read-composite request", in: cb(t, list{obj{0: "/3/0/0"}, obj{0: "/3/0/9"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typeOf := testTypes
			if tt.untyped {
				typeOf = nil
			}
			recs, err := senml.DecodeCBOR(tt.base, tt.in, typeOf)
			if !errors.Is(err, senml.ErrFormat) {
				t.Fatalf("DecodeCBOR(%x) = %v, %v; want ErrFormat", tt.in, recs, err)
			}
			if got := errors.Is(err, senml.ErrTooLarge); got != tt.tooBig {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooBig)
			}
			if got := errors.Is(err, lwm2m.ErrBadPath); got != tt.path {
				t.Errorf("errors.Is(%v, lwm2m.ErrBadPath) = %v, want %v", err, got, tt.path)
			}
		})
	}
}

func FuzzDecodeCBOR(f *testing.F) {
	seeds := []struct {
		in    string
		depth uint8
		ids   [4]uint16
	}{
		{deviceCBOR, 2, [4]uint16{3, 0}},
		{deviceCBOR, 0, [4]uint16{}},
		{"82 a3 21 61 2f 00 65 312f302f31 02 1a00015180 a2 00 65 332f302f39 02 1864", 0, [4]uint16{}},
		{"82 a3 02 18 64 00 61 31 21 68 2f36352f3534332f a2 04 f5 00 63 322f30", 2, [4]uint16{65, 543}},
		{"81 a2 00 66 2f312f302f34 02 f93e00", 3, [4]uint16{1, 0, 4}},
		{"81 a2 00 66 2f312f302f34 02 fbbfb999999999999a", 2, [4]uint16{1, 0}},
		{"81 a2 00 66 2f312f302f33 02 1bffffffffffffffff", 1, [4]uint16{1}},
		{"81 a2 00 66 2f312f302f36 08 42fbff", 1, [4]uint16{1}},
		{"81 a2 00 66 2f312f302f38 63 766c6f 67 333a3635353335", 1, [4]uint16{1}},
		{"81 a2 00 66 2f312f302f30 02 c4 82 21 196ab3", 1, [4]uint16{1}},
		{"9f bf 00 7f 64 2f312f30 62 2f31 ff 08 5f 41 01 41 02 ff ff bf 21 7f 65 2f312f302f ff 00 61 32 03 7f 61 78 ff ff ff", 2, [4]uint16{1, 0}},
		{"81 a3 00 66 2f332f302f31 02 01 18 02 02", 0, [4]uint16{}},
		{"81 a3 00 66 2f332f302f31 02 01 26 01", 0, [4]uint16{}},
		{"81 a3 00 66 2f332f302f31 02 01 60 01", 0, [4]uint16{}},
		{"81 a2 00 66 2f332f302f31 02 3bffffffffffffffff", 0, [4]uint16{}},
		{"81 a2 00 66 2f332f302f31 02 f97e00", 0, [4]uint16{}},
		{"9b ffffffffffffffff", 0, [4]uint16{}},
		{strings.Repeat("81", 100) + "00", 0, [4]uint16{}},
		{"", 0, [4]uint16{}},
	}
	for _, s := range seeds {
		f.Add(unhex(f, s.in), s.depth, s.ids[0], s.ids[1], s.ids[2], s.ids[3], true)
		f.Add(unhex(f, s.in), s.depth, s.ids[0], s.ids[1], s.ids[2], s.ids[3], false)
	}
	f.Fuzz(func(t *testing.T, in []byte, depth uint8, o, i, r, ri uint16, typed bool) {
		base := lwm2m.P([]uint16{o, i, r, ri}[:depth%5]...)
		typeOf := testTypes
		if !typed {
			typeOf = nil
		}
		recs, err := senml.DecodeCBOR(base, in, typeOf)
		if err != nil {
			if !errors.Is(err, senml.ErrFormat) {
				t.Fatalf("DecodeCBOR error %v does not wrap ErrFormat", err)
			}
			if len(in) > senml.MaxSize && !errors.Is(err, senml.ErrTooLarge) {
				t.Fatalf("DecodeCBOR of %d bytes: %v, want ErrTooLarge", len(in), err)
			}
			return
		}
		// Each record costs at least a map head, a label and a value.
		if len(recs) > len(in)/3 {
			t.Fatalf("%d records from %d bytes", len(recs), len(in))
		}
		for k, rec := range recs {
			if !base.Contains(rec.Path) || rec.Path.Len < 3 {
				t.Fatalf("record %s under %s", rec.Path, base)
			}
			if k > 0 && !recs[k-1].Path.Less(rec.Path) {
				t.Fatalf("records not sorted and unique: %s, %s", recs[k-1].Path, rec.Path)
			}
		}
		out, err := senml.EncodeCBOR(base, recs)
		if err != nil {
			t.Fatalf("EncodeCBOR of decoded records: %v", err)
		}
		if len(out) > senml.MaxSize {
			return // re-encoding can be longer (shorter names, decimal fractions)
		}
		again, err := senml.DecodeCBOR(base, out, typeOf)
		if err != nil {
			t.Fatalf("DecodeCBOR of re-encoded %x: %v", out, err)
		}
		if !equalRecords(recs, again) {
			t.Fatalf("round trip changed records:\n%v\n%v", recs, again)
		}
		out2, err := senml.EncodeCBOR(base, again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding not canonical:\n%x\n%x (%v)", out, out2, err)
		}
		// The JSON codec carries the same records.
		js, err := senml.EncodeJSON(base, recs)
		if err != nil {
			t.Fatalf("EncodeJSON of decoded records: %v", err)
		}
		if len(js) > senml.MaxSize {
			return // base64 makes opaque values longer
		}
		fromJSON, err := senml.DecodeJSON(base, js, typeOf)
		if err != nil {
			t.Fatalf("DecodeJSON of %s: %v", js, err)
		}
		if !equalRecords(recs, fromJSON) {
			t.Fatalf("JSON and CBOR disagree:\n%v\n%v", recs, fromJSON)
		}
	})
}

func TestEncodeCBORAt(t *testing.T) {
	at := time.Unix(1767225600, 0)
	recs := []lwm2m.Record{
		{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(80)},
		{Path: lwm2m.P(6, 0, 0), Value: lwm2m.Float(52.5)},
	}
	b, err := senml.EncodeCBORAt(lwm2m.Path{}, recs, at)
	if err != nil {
		t.Fatal(err)
	}
	var raw []map[any]any
	if err := cbor.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || raw[0][int64(-3)] == nil || raw[1][int64(-3)] != nil {
		t.Fatalf("records %v: want the base time on the first only", raw)
	}
	if bt, ok := raw[0][int64(-3)].(uint64); !ok || int64(bt) != at.Unix() {
		t.Errorf("base time = %v, want %d", raw[0][int64(-3)], at.Unix())
	}
	bn, _ := raw[0][int64(-2)].(string)
	if n0, n1 := bn+raw[0][uint64(0)].(string), bn+raw[1][uint64(0)].(string); n0 != "/3/0/9" || n1 != "/6/0/0" {
		t.Errorf("names = %q, %q; want /3/0/9 and /6/0/0", n0, n1)
	}
}
