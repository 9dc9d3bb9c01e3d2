package lwcbor_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/internal/codectest"
	"github.com/avc-agent/avc/lwm2m/lwcbor"
)

// Shared fixtures (lwm2m/internal/codectest) and comparisons.
var (
	deviceRecords = codectest.DeviceRecords
	deviceTypes   = codectest.DeviceTypes
	rec           = codectest.Rec
	equalValues   = lwm2m.Value.Equal
	equalRecords  = lwm2m.RecordsEqual
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

// testTypes gives every resource ID a type: the ID modulo the number of
// types, so that resource 0 is unknown, 1 a string, 2 an integer and so on
// up to 9, a core link.
func testTypes(p lwm2m.Path) lwm2m.Type {
	return lwm2m.Type(p.Res() % 10)
}

// deviceHex is the Device object instance /3/0 of Core TS 1.1 §7.4.4 as
// LwM2M-CBOR:
//
//	{3: {0: {0: "Open Mobile Alliance", 1: "Lightweight M2M Client",
//	  2: "345000123", 3: "1.0", 6: {0: 1, 1: 5}, 7: {0: 3800, 1: 5000},
//	  8: {0: 125, 1: 900}, 9: 100, 10: 15, 11: {0: 0}, 13: 1(1367491215),
//	  14: "+02:00", 16: "U"}}}
const deviceHex = "a1 03 a1 00 ad" +
	"00 74 4f70656e204d6f62696c6520416c6c69616e6365" +
	"01 76 4c69676874776569676874204d324d20436c69656e74" +
	"02 69 333435303030313233" +
	"03 63 312e30" +
	"06 a2 00 01 01 05" +
	"07 a2 00 190ed8 01 191388" +
	"08 a2 00 187d 01 190384" +
	"09 1864" +
	"0a 0f" +
	"0b a1 00 00" +
	"0d c1 1a5182428f" +
	"0e 66 2b30323a3030" +
	"10 61 55"

func TestEncodeError(t *testing.T) {
	tests := []struct {
		name string
		base lwm2m.Path
		recs []lwm2m.Record
	}{
		{name: "reserved base id", base: lwm2m.P(65535)},
		{name: "base too long", base: lwm2m.Path{Len: 5}},
		{name: "not under base", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 1, 1), lwm2m.Int(1))}},
		{name: "instance record", base: lwm2m.P(3), recs: []lwm2m.Record{rec(lwm2m.P(3, 0), lwm2m.Int(1))}},
		{name: "reserved id", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1, 65535), lwm2m.Int(1))}},
		{name: "duplicate", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Int(1)), rec(lwm2m.P(3, 0, 1), lwm2m.Int(2))}},
		{name: "single and multiple", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1, 0), lwm2m.Int(1)), rec(lwm2m.P(3, 0, 1), lwm2m.Int(2))}},
		{name: "no type", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Value{})}},
		{name: "unknown type", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Value{Type: 42})}},
		{name: "nan", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Float(math.NaN()))}},
		{name: "inf", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Float(math.Inf(-1)))}},
		{name: "invalid utf-8", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.String("\xff"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := lwcbor.Encode(tt.base, tt.recs)
			if !errors.Is(err, lwcbor.ErrEncode) {
				t.Fatalf("Encode = %x, %v; want ErrEncode", b, err)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	r13261 := []lwm2m.Record{rec(lwm2m.P(13, 26, 1), lwm2m.Int(42))}
	two := []lwm2m.Record{rec(lwm2m.P(13, 26, 1), lwm2m.Int(42)), rec(lwm2m.P(13, 26, 2), lwm2m.Int(21))}
	composite := []lwm2m.Record{rec(lwm2m.P(13, 26, 1), lwm2m.Int(1)), rec(lwm2m.P(14, 27, 2), lwm2m.Int(2))}
	tests := []struct {
		name   string
		base   lwm2m.Path
		in     string
		typeOf func(lwm2m.Path) lwm2m.Type
		want   []lwm2m.Record
	}{
		{name: "spec device instance", base: lwm2m.P(3, 0), in: deviceHex, typeOf: deviceTypes, want: deviceRecords()},
		{name: "spec device at root", base: lwm2m.P(), in: deviceHex, typeOf: deviceTypes, want: deviceRecords()},
		// Every way of writing /13/26/1 = 42 to the resource itself.
		{name: "array key", base: lwm2m.P(13, 26, 1), in: "a1 83 0d 181a 01 182a", want: r13261},
		{name: "array key indefinite", base: lwm2m.P(13, 26, 1), in: "bf 9f 0d 181a 01 ff 182a ff", want: r13261},
		{name: "nested maps", base: lwm2m.P(13, 26, 1), in: "a1 0d a1 181a a1 01 182a", want: r13261},
		{name: "nested maps indefinite", base: lwm2m.P(13, 26, 1), in: "bf 0d bf 181a bf 01 182a ff ff ff", want: r13261},
		{name: "nested one-element arrays", base: lwm2m.P(13, 26, 1), in: "a1 81 0d a1 81 181a a1 81 01 182a", want: r13261},
		{name: "non-preferred integers", base: lwm2m.P(13, 26, 1), in: "a1 18 0d a1 19 001a a1 1a 00000001 1b 000000000000002a", want: r13261},
		{
			// {[13]: {[26]: {[1]: {[2]: 4([-1, 45])}}}}: the deepest
			// nesting a valid payload needs.
			name: "deepest",
			base: lwm2m.P(13, 26, 1, 2),
			in:   "a1 81 0d a1 81 181a a1 81 01 a1 81 02 c4 82 20 182d",
			want: []lwm2m.Record{rec(lwm2m.P(13, 26, 1, 2), lwm2m.Float(4.5))},
		},
		{name: "prefix key", base: lwm2m.P(13, 26), in: "a1 82 0d 181a a2 01 182a 02 15", want: two},
		{name: "two full keys", base: lwm2m.P(13, 26), in: "a2 83 0d 181a 01 182a 83 0d 181a 02 15", want: two},
		{name: "prefix and full key", base: lwm2m.P(13, 26), in: "a2 82 0d 181a a1 01 182a 83 0d 181a 02 15", want: two},
		{name: "full and prefix key", base: lwm2m.P(13, 26), in: "a2 83 0d 181a 01 182a 82 0d 181a a1 81 02 15", want: two},
		{name: "composite", base: lwm2m.P(), in: "a2 0d a1 181a a1 01 01 0e a1 181b a1 02 02", want: composite},
		{
			name: "composite indefinite maps and arrays",
			base: lwm2m.P(),
			in:   "bf 9f 0d ff bf 9f 181a ff bf 9f 01 ff 01 ff ff 9f 0e ff bf 9f 181b ff bf 9f 02 ff 02 ff ff ff",
			want: composite,
		},
		{
			name: "mixed keys for one object",
			base: lwm2m.P(3),
			in:   "a2 03 a1 00 a1 01 01 82 03 01 a1 01 02",
			want: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Int(1)), rec(lwm2m.P(3, 1, 1), lwm2m.Int(2))},
		},
		{
			// {[13, 26]: {1: 1, 2: -1, 3: 2.5, 4: "test", 5: h'11223344',
			//  6: "12:34", 7: 1}}
			name: "typed values",
			base: lwm2m.P(13, 26),
			in:   "a1 82 0d 181a a7 01 01 02 20 03 f94100 04 6474657374 05 4411223344 06 6531323a3334 07 01",
			typeOf: func(p lwm2m.Path) lwm2m.Type {
				return []lwm2m.Type{0, lwm2m.TypeUnsigned, lwm2m.TypeInteger, lwm2m.TypeFloat, lwm2m.TypeString,
					lwm2m.TypeOpaque, lwm2m.TypeObjlnk, lwm2m.TypeTime}[p.Res()]
			},
			want: []lwm2m.Record{
				rec(lwm2m.P(13, 26, 1), lwm2m.Uint(1)),
				rec(lwm2m.P(13, 26, 2), lwm2m.Int(-1)),
				rec(lwm2m.P(13, 26, 3), lwm2m.Float(2.5)),
				rec(lwm2m.P(13, 26, 4), lwm2m.String("test")),
				rec(lwm2m.P(13, 26, 5), lwm2m.Opaque([]byte{0x11, 0x22, 0x33, 0x44})),
				rec(lwm2m.P(13, 26, 6), lwm2m.Link(12, 34)),
				rec(lwm2m.P(13, 26, 7), lwm2m.Value{Type: lwm2m.TypeTime, Int: 1}),
			},
		},
		{
			name: "untyped values",
			base: lwm2m.P(1),
			in:   "a1 83 01 00 01 a6 00 f5 01 1bffffffffffffffff 02 63 333a30 03 c1 20 04 5f 4101 4102 ff 05 7f 6161 6162 ff",
			want: []lwm2m.Record{
				rec(lwm2m.P(1, 0, 1, 0), lwm2m.Bool(true)),
				rec(lwm2m.P(1, 0, 1, 1), lwm2m.Uint(math.MaxUint64)),
				rec(lwm2m.P(1, 0, 1, 2), lwm2m.String("3:0")),
				rec(lwm2m.P(1, 0, 1, 3), lwm2m.Value{Type: lwm2m.TypeTime, Int: -1}),
				rec(lwm2m.P(1, 0, 1, 4), lwm2m.Opaque([]byte{1, 2})),
				rec(lwm2m.P(1, 0, 1, 5), lwm2m.String("ab")),
			},
		},
		{name: "empty map", base: lwm2m.P(3), in: "a0"},
		{name: "empty indefinite map", base: lwm2m.P(3), in: "bf ff"},
		{name: "empty object", base: lwm2m.P(3), in: "a1 03 a0"},
		{name: "empty multiple resource", base: lwm2m.P(3, 0, 6), in: "a1 83 03 00 06 a0"},
		{name: "unknown type keeps value", base: lwm2m.P(1, 0, 0), in: "a1 83 01 00 00 61 78", typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.String("x"))}},
		{name: "integer as float", base: lwm2m.P(1, 0, 4), in: "a1 83 01 00 04 05", typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 4), lwm2m.Float(5))}},
		{name: "text as corelnk", base: lwm2m.P(1, 0, 9), in: "a1 83 01 00 09 64 3c2f333e", typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 9), lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: "</3>"})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lwcbor.Decode(tt.base, unhex(t, tt.in), tt.typeOf)
			if err != nil {
				t.Fatal(err)
			}
			if !equalRecords(got, tt.want) {
				t.Errorf("Decode =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		name   string
		base   lwm2m.Path
		in     string
		tooBig bool
		path   bool // also wraps lwm2m.ErrBadPath
	}{
		// Framing.
		{name: "empty input", in: ""},
		{name: "array", in: "80"},
		{name: "integer", in: "00"},
		{name: "null", in: "f6"},
		{name: "undefined", in: "f7"},
		{name: "trailing bytes", in: "a0 00"},
		{name: "truncated", in: "a1 03 a1 00"},
		{name: "over 64 KiB", in: "a1 83 03 00 01 5a 00010000" + strings.Repeat("00", lwcbor.MaxSize), tooBig: true},
		{name: "reserved base id", base: lwm2m.P(65535), in: "a0", path: true},
		// B29: nesting, indefinite lengths, declared lengths.
		{name: "nesting 10000 deep", in: strings.Repeat("a1 00", 10000) + "00"},
		{name: "nesting 9 deep", in: strings.Repeat("a1 00", 8) + "81 00"},
		{name: "indefinite map without break", in: "bf 03 a0"},
		{name: "indefinite key without break", in: "a1 9f 03"},
		{name: "map of 2^64-1 pairs", in: "bb ffffffffffffffff"},
		{name: "map above the pair limit", in: "ba 00008001 00"},
		{name: "key array of 2^64-1", in: "a1 9b ffffffffffffffff"},
		{name: "key array of 17", in: "a1 91" + strings.Repeat("00", 17) + "00"},
		{name: "value of 2^64-1 bytes", in: "a1 83 03 00 01 5b ffffffffffffffff"},
		// Keys.
		{name: "negative key", in: "a1 20 a0"},
		{name: "text key", in: "a1 61 33 a0"},
		{name: "byte string key", in: "a1 41 03 a0"},
		{name: "float key", in: "a1 f9 4200 a0"},
		{name: "boolean key", in: "a1 f5 a0"},
		{name: "null key", in: "a1 f6 a0"},
		{name: "tagged key", in: "a1 c1 03 a0"},
		{name: "map key", in: "a1 a0 a0"},
		{name: "empty array key", in: "a1 80 a0"},
		{name: "negative in array key", in: "a1 82 03 20 a0"},
		{name: "text in array key", in: "a1 82 03 61 30 a0"},
		{name: "nested array key", in: "a1 81 81 03 a0"},
		{name: "id 65535", in: "a1 19 ffff a0", path: true},
		{name: "id 65536", in: "a1 1a 00010000 a0", path: true},
		{name: "id 2^64-1 in array", in: "a1 82 03 1b ffffffffffffffff a0", path: true},
		{name: "duplicate key", in: "a2 03 a0 03 a0"},
		{name: "duplicate key as array", in: "a2 03 a0 81 03 a0"},
		{name: "duplicate key non-preferred", in: "a2 03 a0 18 03 a0"},
		// B28: paths.
		{name: "five ids in a key", in: "a1 85 0d 181a 03 04 05 05", path: true},
		{name: "five ids over two keys", in: "a1 83 0d 181a 01 a2 02 61 78 82 03 04 05", path: true},
		{name: "map below a resource instance", in: "a1 0d a1 181a a1 01 a1 02 a1 03 04", path: true},
		{name: "value at an object", in: "a1 03 00"},
		{name: "value at an instance", in: "a1 82 03 00 00"},
		{name: "not under base", base: lwm2m.P(3, 0), in: "a1 03 a1 01 a1 00 01"},
		{name: "other object", base: lwm2m.P(3), in: "a1 04 a0"},
		{name: "above a resource base", base: lwm2m.P(3, 0, 1), in: "a1 82 03 00 a1 02 01"},
		{name: "duplicate path", in: "a2 83 03 00 01 61 61 03 a1 00 a1 01 61 62"},
		{name: "single and multiple", in: "a2 83 03 00 01 61 61 84 03 00 01 00 61 62"},
		// B30: values.
		{name: "null value", in: "a1 83 03 00 01 f6"},
		{name: "undefined value", in: "a1 83 03 00 01 f7"},
		{name: "array value", in: "a1 83 03 00 01 81 00"},
		{name: "nan", in: "a1 83 03 00 01 f9 7e00"},
		{name: "inf", in: "a1 83 03 00 01 f9 7c00"},
		{name: "below int64", in: "a1 83 03 00 01 3b ffffffffffffffff"},
		{name: "bignum", in: "a1 83 03 00 01 c2 41 01"},
		{name: "tag 0", in: "a1 83 03 00 01 c0 61 30"},
		{name: "unknown tag", in: "a1 83 03 00 01 d8 20 00"},
		{name: "simple value", in: "a1 83 03 00 01 e0"},
		{name: "invalid utf-8", in: "a1 83 03 00 01 61 ff"},
		{name: "string as integer", base: lwm2m.P(1), in: "a1 83 01 00 02 61 35"},
		{name: "negative as unsigned", base: lwm2m.P(1), in: "a1 83 01 00 03 20"},
		{name: "text as opaque", base: lwm2m.P(1), in: "a1 83 01 00 06 61 35"},
		{name: "bad objlnk", base: lwm2m.P(1), in: "a1 83 01 00 08 61 33"},
		{name: "fraction as time", base: lwm2m.P(1), in: "a1 83 01 00 07 f9 3e00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := lwcbor.Decode(tt.base, unhex(t, tt.in), testTypes)
			if !errors.Is(err, lwcbor.ErrFormat) {
				t.Fatalf("Decode = %v, %v; want ErrFormat", recs, err)
			}
			if got := errors.Is(err, lwcbor.ErrTooLarge); got != tt.tooBig {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooBig)
			}
			if got := errors.Is(err, lwm2m.ErrBadPath); got != tt.path {
				t.Errorf("errors.Is(%v, lwm2m.ErrBadPath) = %v, want %v", err, got, tt.path)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		base lwm2m.Path
		recs []lwm2m.Record
	}{
		{name: "device", base: lwm2m.P(3, 0), recs: deviceRecords()},
		{name: "device at root", base: lwm2m.P(), recs: deviceRecords()},
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
				rec(lwm2m.P(9, 1, 15), lwm2m.Bool(true)),
				rec(lwm2m.P(9, 2, 17), lwm2m.Value{Type: lwm2m.TypeTime, Int: -1}),
				rec(lwm2m.P(9, 2, 18), lwm2m.Link(65535, 65535)),
				rec(lwm2m.P(9, 2, 19), lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: `</3/0>;ct=11544`}),
				rec(lwm2m.P(9, 65534, 65532, 65534), lwm2m.Int(0)),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := lwcbor.Encode(tt.base, tt.recs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := lwcbor.Decode(tt.base, b, func(p lwm2m.Path) lwm2m.Type {
				if p.Obj() == 3 {
					return deviceTypes(p)
				}
				return testTypes(p)
			})
			if err != nil {
				t.Fatalf("Decode(%x): %v", b, err)
			}
			want := slices.Clone(tt.recs)
			slices.SortFunc(want, func(a, b lwm2m.Record) int {
				if a.Path.Less(b.Path) {
					return -1
				}
				return 1
			})
			if !equalRecords(got, want) {
				t.Errorf("round trip =\n%v\nwant\n%v", got, want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []struct {
		in    string
		depth uint8
		ids   [4]uint16
	}{
		{deviceHex, 2, [4]uint16{3, 0}},
		{deviceHex, 0, [4]uint16{}},
		{"a1 83 0d 181a 01 182a", 3, [4]uint16{13, 26, 1}},
		{"bf 9f 0d 181a 01 ff 182a ff", 0, [4]uint16{}},
		{"a1 81 0d a1 81 181a a1 81 01 a1 81 02 c4 82 20 182d", 4, [4]uint16{13, 26, 1, 2}},
		{"a2 82 0d 181a a1 01 182a 83 0d 181a 02 15", 2, [4]uint16{13, 26}},
		{"bf 9f 0d ff bf 9f 181a ff bf 9f 01 ff 01 ff ff 9f 0e ff bf 9f 181b ff bf 9f 02 ff 02 ff ff ff", 0, [4]uint16{}},
		{"a1 82 0d 181a a7 01 01 02 20 03 f94100 04 6474657374 05 4411223344 06 6531323a3334 07 01", 2, [4]uint16{13, 26}},
		{"a1 83 01 00 01 a6 00 f5 01 1bffffffffffffffff 02 63 333a30 03 c1 20 04 5f 4101 4102 ff 05 7f 6161 6162 ff", 1, [4]uint16{1}},
		{"a1 09 a1 01 a2 06 42 00ff 08 63 333a30", 1, [4]uint16{9}},
		{"a1 03 a0", 1, [4]uint16{3}},
		{"a2 03 a0 81 03 a0", 0, [4]uint16{}},
		{"a1 85 0d 181a 03 04 05 05", 0, [4]uint16{}},
		{"a2 83 03 00 01 01 84 03 00 01 00 02", 0, [4]uint16{}},
		{"a1 83 03 00 01 f6", 0, [4]uint16{}},
		{"bb ffffffffffffffff", 0, [4]uint16{}},
		{strings.Repeat("a1 00", 20) + "00", 0, [4]uint16{}},
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
		recs, err := lwcbor.Decode(base, in, typeOf)
		if err != nil {
			if !errors.Is(err, lwcbor.ErrFormat) {
				t.Fatalf("Decode error %v does not wrap ErrFormat", err)
			}
			if len(in) > lwcbor.MaxSize && !errors.Is(err, lwcbor.ErrTooLarge) {
				t.Fatalf("Decode of %d bytes: %v, want ErrTooLarge", len(in), err)
			}
			return
		}
		// Each record costs at least a one-byte key and a one-byte value.
		if len(recs) > len(in)/2 {
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
		out, err := lwcbor.Encode(base, recs)
		if err != nil {
			t.Fatalf("Encode of decoded records: %v", err)
		}
		if len(out) > lwcbor.MaxSize {
			return // re-encoding can be longer (shorter names, decimal fractions)
		}
		again, err := lwcbor.Decode(base, out, typeOf)
		if err != nil {
			t.Fatalf("Decode of re-encoded %x: %v", out, err)
		}
		if !equalRecords(recs, again) {
			t.Fatalf("round trip changed records:\n%v\n%v", recs, again)
		}
		out2, err := lwcbor.Encode(base, again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding not canonical:\n%x\n%x (%v)", out, out2, err)
		}
	})
}
