package tlv_test

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
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// Shared fixtures (lwm2m/internal/codectest) and comparisons.
var (
	deviceRecords = codectest.DeviceRecords
	deviceTypes   = codectest.DeviceTypes
	equalValues   = lwm2m.Value.Equal
	equalRecords  = lwm2m.RecordsEqual
)

// testTypes gives every resource ID a type: the ID modulo the number of
// types, so that resource 0 is unknown (opaque), 1 a string, 2 an integer
// and so on up to 9, a core link.
func testTypes(p lwm2m.Path) lwm2m.Type {
	return lwm2m.Type(p.Res() % 10)
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deviceHex is the TLV of the Device object instance /3/0 from Core TS 1.1
// §7.4.3.2 (single object instance request example).
const deviceHex = "" +
	"C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65" +
	"C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74" +
	"C8 02 09 33 34 35 30 30 30 31 32 33" +
	"C3 03 31 2E 30" +
	"86 06 41 00 01 41 01 05" +
	"88 07 08 42 00 0E D8 42 01 13 88" +
	"87 08 41 00 7D 42 01 03 84" +
	"C1 09 64" +
	"C1 0A 0F" +
	"83 0B 41 00 00" +
	"C4 0D 51 82 42 8F" +
	"C6 0E 2B 30 32 3A 30 30" +
	"C1 10 55"

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		base lwm2m.Path
		recs []lwm2m.Record
		want string
	}{
		{name: "spec device instance", base: lwm2m.P(3, 0), recs: deviceRecords(), want: deviceHex},
		{
			name: "spec device object",
			base: lwm2m.P(3),
			recs: deviceRecords(),
			want: "08 00 79" + deviceHex,
		},
		{
			name: "records sorted",
			base: lwm2m.P(3, 0),
			recs: []lwm2m.Record{
				{Path: lwm2m.P(3, 0, 10), Value: lwm2m.Int(15)},
				{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(100)},
			},
			want: "C1 09 64 C1 0A 0F",
		},
		{name: "no records", base: lwm2m.P(3, 0), want: ""},
		{name: "single resource", base: lwm2m.P(3, 0, 9), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(100)}}, want: "C1 09 64"},
		{
			name: "multiple resource",
			base: lwm2m.P(3, 0, 6),
			recs: []lwm2m.Record{
				{Path: lwm2m.P(3, 0, 6, 1), Value: lwm2m.Int(5)},
				{Path: lwm2m.P(3, 0, 6, 0), Value: lwm2m.Int(1)},
			},
			want: "86 06 41 00 01 41 01 05",
		},
		{name: "resource instance", base: lwm2m.P(3, 0, 6, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 6, 1), Value: lwm2m.Int(5)}}, want: "41 01 05"},
		{
			name: "two object instances",
			base: lwm2m.P(1),
			recs: []lwm2m.Record{
				{Path: lwm2m.P(1, 1, 0), Value: lwm2m.Uint(2)},
				{Path: lwm2m.P(1, 0, 0), Value: lwm2m.Uint(1)},
				{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Uint(86400)},
			},
			want: "08 00 09 C1 00 01 C4 01 00 01 51 80 03 01 C1 00 02",
		},
		{name: "16-bit id", base: lwm2m.P(3, 0), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 300), Value: lwm2m.Bool(true)}}, want: "E1 01 2C 01"},
		{name: "16-bit length", base: lwm2m.P(3, 0), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Opaque(make([]byte, 256))}}, want: "D0 01 01 00" + strings.Repeat("00", 256)},
		{name: "24-bit length", base: lwm2m.P(3, 0), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Opaque(make([]byte, 65536))}}, want: "D8 01 01 00 00" + strings.Repeat("00", 65536)},
		{name: "int8", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Int(-128)}}, want: "C1 01 80"},
		{name: "int16", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Int(128)}}, want: "C2 01 00 80"},
		{name: "int32", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Int(-32769)}}, want: "C4 01 FF FF 7F FF"},
		{name: "int64", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Int(math.MinInt64)}}, want: "C8 01 08 80 00 00 00 00 00 00 00"},
		{name: "time", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Value{Type: lwm2m.TypeTime, Int: 1 << 31}}}, want: "C8 01 08 00 00 00 00 80 00 00 00"},
		{name: "uint8", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Uint(255)}}, want: "C1 01 FF"},
		{name: "uint16", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Uint(65535)}}, want: "C2 01 FF FF"},
		{name: "uint32", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Uint(1 << 16)}}, want: "C4 01 00 01 00 00"},
		{name: "uint64", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Uint(math.MaxUint64)}}, want: "C8 01 08 FF FF FF FF FF FF FF FF"},
		{name: "float32", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Float(-1.5)}}, want: "C4 01 BF C0 00 00"},
		{name: "float32 nan", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Float(float64(math.Float32frombits(0xFFFF3030)))}}, want: "C4 01 FF FF 30 30"},
		{name: "float64", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Float(0.1)}}, want: "C8 01 08 3F B9 99 99 99 99 99 9A"},
		{name: "boolean", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Bool(false)}}, want: "C1 01 00"},
		{name: "empty string", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.String("")}}, want: "C0 01"},
		{name: "objlnk", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Link(3, 65535)}}, want: "C4 01 00 03 FF FF"},
		{name: "corelnk", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: "</3>"}}}, want: "C4 01 3C 2F 33 3E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tlv.Encode(tt.base, tt.recs)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("Encode = % X\nwant     % X", got, want)
			}
		})
	}
}

func TestEncodeError(t *testing.T) {
	rec := func(p lwm2m.Path, v lwm2m.Value) lwm2m.Record { return lwm2m.Record{Path: p, Value: v} }
	tests := []struct {
		name string
		base lwm2m.Path
		recs []lwm2m.Record
	}{
		{name: "root", base: lwm2m.P(), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Int(1))}},
		{name: "reserved base id", base: lwm2m.P(3, 65535)},
		{name: "not under base", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 1, 1), lwm2m.Int(1))}},
		{name: "instance record", base: lwm2m.P(3), recs: []lwm2m.Record{rec(lwm2m.P(3, 0), lwm2m.Int(1))}},
		{name: "reserved id", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 65535), lwm2m.Int(1))}},
		{name: "duplicate", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Int(1)), rec(lwm2m.P(3, 0, 1), lwm2m.Int(2))}},
		{name: "single and multiple", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1, 0), lwm2m.Int(1)), rec(lwm2m.P(3, 0, 1), lwm2m.Int(2))}},
		{name: "no type", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Value{})}},
		{name: "unknown type", base: lwm2m.P(3, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Value{Type: 42})}},
		{name: "invalid utf-8", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.String("\xff"))}},
		{name: "instance value invalid", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1, 0), lwm2m.Value{})}},
		{name: "resource instance value invalid", base: lwm2m.P(3, 0, 1, 0), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1, 0), lwm2m.Value{})}},
		{name: "value too long", base: lwm2m.P(3, 0, 1), recs: []lwm2m.Record{rec(lwm2m.P(3, 0, 1), lwm2m.Opaque(make([]byte, 1<<24)))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tlv.Encode(tt.base, tt.recs)
			if !errors.Is(err, tlv.ErrEncode) {
				t.Fatalf("Encode = % X, %v; want ErrEncode", b, err)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name   string
		base   lwm2m.Path
		in     string
		typeOf func(lwm2m.Path) lwm2m.Type
		want   []lwm2m.Record
	}{
		{name: "spec device instance", base: lwm2m.P(3, 0), in: deviceHex, typeOf: deviceTypes, want: deviceRecords()},
		{name: "spec device instance wrapped", base: lwm2m.P(3, 0), in: "08 00 79" + deviceHex, typeOf: deviceTypes, want: deviceRecords()},
		{name: "spec device object", base: lwm2m.P(3), in: "08 00 79" + deviceHex, typeOf: deviceTypes, want: deviceRecords()},
		{name: "empty", base: lwm2m.P(3, 0), in: "", typeOf: deviceTypes},
		{name: "empty resource", base: lwm2m.P(3, 0, 1), in: "", typeOf: deviceTypes},
		{name: "empty instance wrapper", base: lwm2m.P(3, 0), in: "00 00", typeOf: deviceTypes},
		{name: "empty multiple resource", base: lwm2m.P(3, 0, 6), in: "80 06", typeOf: deviceTypes},
		{
			name: "multiple resource",
			base: lwm2m.P(3, 0, 7), in: "88 07 08 42 01 13 88 42 00 0E D8", typeOf: deviceTypes,
			want: []lwm2m.Record{{Path: lwm2m.P(3, 0, 7, 0), Value: lwm2m.Int(3800)}, {Path: lwm2m.P(3, 0, 7, 1), Value: lwm2m.Int(5000)}},
		},
		{name: "resource instance", base: lwm2m.P(3, 0, 7, 1), in: "42 01 13 88", typeOf: deviceTypes, want: []lwm2m.Record{{Path: lwm2m.P(3, 0, 7, 1), Value: lwm2m.Int(5000)}}},
		{name: "unknown type is opaque", base: lwm2m.P(3, 0, 5), in: "C2 05 01 02", typeOf: deviceTypes, want: []lwm2m.Record{{Path: lwm2m.P(3, 0, 5), Value: lwm2m.Opaque([]byte{1, 2})}}},
		{name: "nil typeOf is opaque", base: lwm2m.P(3, 0, 9), in: "C1 09 64", want: []lwm2m.Record{{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Opaque([]byte{100})}}},
		{name: "non-minimal id and length", base: lwm2m.P(3, 0, 9), in: "E8 00 09 01 64", typeOf: deviceTypes, want: []lwm2m.Record{{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(100)}}},
		{name: "int16", base: lwm2m.P(1, 0, 2), in: "C2 02 FF 7F", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 2), Value: lwm2m.Int(-129)}}},
		{name: "int32", base: lwm2m.P(1, 0, 2), in: "C4 02 80 00 00 00", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 2), Value: lwm2m.Int(math.MinInt32)}}},
		{name: "int64", base: lwm2m.P(1, 0, 2), in: "C8 02 08 7F FF FF FF FF FF FF FF", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 2), Value: lwm2m.Int(math.MaxInt64)}}},
		{name: "uint8", base: lwm2m.P(1, 0, 3), in: "C1 03 FF", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 3), Value: lwm2m.Uint(255)}}},
		{name: "uint16", base: lwm2m.P(1, 0, 3), in: "C2 03 FF FF", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 3), Value: lwm2m.Uint(65535)}}},
		{name: "uint32", base: lwm2m.P(1, 0, 3), in: "C4 03 FF FF FF FF", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 3), Value: lwm2m.Uint(math.MaxUint32)}}},
		{name: "uint64", base: lwm2m.P(1, 0, 3), in: "C8 03 08 FF FF FF FF FF FF FF FF", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 3), Value: lwm2m.Uint(math.MaxUint64)}}},
		{name: "float32", base: lwm2m.P(1, 0, 4), in: "C4 04 BF C0 00 00", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 4), Value: lwm2m.Float(-1.5)}}},
		{name: "float64", base: lwm2m.P(1, 0, 4), in: "C8 04 08 3F B9 99 99 99 99 99 9A", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 4), Value: lwm2m.Float(0.1)}}},
		{name: "boolean true", base: lwm2m.P(1, 0, 5), in: "C1 05 01", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 5), Value: lwm2m.Bool(true)}}},
		{name: "opaque empty", base: lwm2m.P(1, 0, 6), in: "C0 06", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 6), Value: lwm2m.Opaque([]byte{})}}},
		{name: "time", base: lwm2m.P(1, 0, 7), in: "C1 07 FF", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 7), Value: lwm2m.Value{Type: lwm2m.TypeTime, Int: -1}}}},
		{name: "objlnk", base: lwm2m.P(1, 0, 8), in: "C4 08 00 03 00 01", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 8), Value: lwm2m.Link(3, 1)}}},
		{name: "corelnk", base: lwm2m.P(1, 0, 9), in: "C4 09 3C 2F 33 3E", typeOf: testTypes, want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 9), Value: lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: "</3>"}}}},
		{
			name: "object instances sorted",
			base: lwm2m.P(1), in: "03 01 C1 03 02 03 00 C1 03 01", typeOf: testTypes,
			want: []lwm2m.Record{{Path: lwm2m.P(1, 0, 3), Value: lwm2m.Uint(1)}, {Path: lwm2m.P(1, 1, 3), Value: lwm2m.Uint(2)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tlv.Decode(tt.base, unhex(t, tt.in), tt.typeOf)
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
	}{
		// B22: lengths beyond the buffer.
		{name: "8-bit length beyond buffer", base: lwm2m.P(3, 0), in: "C8 00 05 41"},
		{name: "16-bit length beyond buffer", base: lwm2m.P(3, 0), in: "D0 00 01 00 41"},
		{name: "24-bit length beyond buffer", base: lwm2m.P(3, 0), in: "D8 00 FF FF FF 00"},
		{name: "3-bit length beyond buffer", base: lwm2m.P(3, 0), in: "C7 00 41"},
		{name: "nested length beyond container", base: lwm2m.P(3, 0), in: "83 06 42 00 01 00"},
		{name: "truncated header", base: lwm2m.P(3, 0), in: "C8"},
		{name: "truncated 16-bit id", base: lwm2m.P(3, 0), in: "E1 00"},
		{name: "truncated 16-bit length", base: lwm2m.P(3, 0), in: "D0 00 01"},
		{name: "truncated 24-bit length", base: lwm2m.P(3, 0), in: "D8 00 00 01"},
		{name: "trailing byte", base: lwm2m.P(3, 0), in: "C1 09 64 C1"},
		// B23: nesting.
		{name: "instance in instance", base: lwm2m.P(3), in: "02 00 00 01"},
		{name: "resource instance in instance", base: lwm2m.P(3, 0), in: "41 00 01"},
		{name: "resource in multiple resource", base: lwm2m.P(3, 0), in: "83 06 C1 00 01"},
		{name: "multiple in multiple resource", base: lwm2m.P(3, 0), in: "82 06 80 00"},
		{name: "instance in multiple resource", base: lwm2m.P(3, 0), in: "82 06 00 00"},
		{name: "resource at object", base: lwm2m.P(3), in: "C1 09 64"},
		{name: "instance at resource", base: lwm2m.P(3, 0, 9), in: "00 00"},
		{name: "resource instance at resource", base: lwm2m.P(3, 0, 9), in: "41 00 01"},
		{name: "resource at resource instance", base: lwm2m.P(3, 0, 6, 0), in: "C1 06 01"},
		{name: "multiple at resource instance", base: lwm2m.P(3, 0, 6, 0), in: "83 06 41 00 01"},
		// B24: value lengths.
		{name: "zero-length integer", base: lwm2m.P(3, 0), in: "C0 09"},
		{name: "3-byte integer", base: lwm2m.P(3, 0), in: "C3 09 00 00 01"},
		{name: "5-byte integer", base: lwm2m.P(3, 0), in: "C5 09 00 00 00 00 01"},
		{name: "6-byte integer", base: lwm2m.P(3, 0), in: "C6 09 00 00 00 00 00 01"},
		{name: "7-byte integer", base: lwm2m.P(3, 0), in: "C7 09 00 00 00 00 00 00 01"},
		{name: "9-byte integer", base: lwm2m.P(3, 0), in: "C8 09 09 00 00 00 00 00 00 00 00 01"},
		{name: "3-byte time", base: lwm2m.P(3, 0), in: "C3 0D 00 00 01"},
		{name: "3-byte unsigned", base: lwm2m.P(1, 0), in: "C3 03 00 00 01"},
		{name: "zero-length unsigned", base: lwm2m.P(1, 0), in: "C0 03"},
		{name: "2-byte float", base: lwm2m.P(1, 0), in: "C2 04 3F 80"},
		{name: "zero-length float", base: lwm2m.P(1, 0), in: "C0 04"},
		{name: "boolean 2", base: lwm2m.P(1, 0), in: "C1 05 02"},
		{name: "boolean 2 bytes", base: lwm2m.P(1, 0), in: "C2 05 00 01"},
		{name: "boolean empty", base: lwm2m.P(1, 0), in: "C0 05"},
		{name: "objlnk 2 bytes", base: lwm2m.P(1, 0), in: "C2 08 00 03"},
		{name: "string not utf-8", base: lwm2m.P(1, 0), in: "C2 01 C3 28"},
		{name: "corelnk not utf-8", base: lwm2m.P(1, 0), in: "C1 09 FF"},
		{name: "bad value in resource instance", base: lwm2m.P(3, 0), in: "85 06 43 00 00 00 01"},
		// B25: duplicates and reserved IDs.
		{name: "duplicate resource", base: lwm2m.P(3, 0), in: "C1 09 01 C1 09 02"},
		{name: "duplicate single and multiple", base: lwm2m.P(3, 0), in: "C1 06 01 83 06 41 00 01"},
		{name: "duplicate multiple resource", base: lwm2m.P(3, 0), in: "80 06 80 06"},
		{name: "duplicate resource instance", base: lwm2m.P(3, 0), in: "86 06 41 00 01 41 00 02"},
		{name: "duplicate object instance", base: lwm2m.P(3), in: "00 00 00 00"},
		{name: "resource id 65535", base: lwm2m.P(3, 0), in: "E1 FF FF 01"},
		{name: "instance id 65535", base: lwm2m.P(3), in: "20 FF FF"},
		// IDs that disagree with the base path.
		{name: "other resource", base: lwm2m.P(3, 0, 1), in: "C1 02 01"},
		{name: "other multiple resource", base: lwm2m.P(3, 0, 6), in: "83 07 41 00 01"},
		{name: "other instance wrapper", base: lwm2m.P(3, 0), in: "03 01 C1 09 01"},
		{name: "other resource instance", base: lwm2m.P(3, 0, 6, 1), in: "41 00 01"},
		{name: "two instance wrappers", base: lwm2m.P(3, 0), in: "00 00 00 00"},
		{name: "two resources at resource", base: lwm2m.P(3, 0, 1), in: "C1 01 01 C1 01 02"},
		// Bad base paths.
		{name: "root", base: lwm2m.P(), in: "C1 01 01"},
		{name: "reserved base id", base: lwm2m.P(3, 65535), in: "C1 01 01"},
		// Size.
		{name: "over 64 KiB", base: lwm2m.P(3, 0, 1), in: "D8 01 01 00 00" + strings.Repeat("00", 65536), tooBig: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := unhex(t, tt.in)
			recs, err := tlv.Decode(tt.base, in, func(p lwm2m.Path) lwm2m.Type {
				if p.Obj() == 3 {
					return deviceTypes(p)
				}
				return testTypes(p)
			})
			if !errors.Is(err, tlv.ErrFormat) {
				t.Fatalf("Decode = %v, %v; want ErrFormat", recs, err)
			}
			if got := errors.Is(err, tlv.ErrTooLarge); got != tt.tooBig {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooBig)
			}
		})
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	in := unhex(t, "C2 06 01 02")
	recs, err := tlv.Decode(lwm2m.P(1, 0), in, testTypes)
	if err != nil {
		t.Fatal(err)
	}
	in[2] = 0xFF
	if got := recs[0].Value.Bytes; !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("opaque value changed with the input: % X", got)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		base lwm2m.Path
		recs []lwm2m.Record
	}{
		{name: "device", base: lwm2m.P(3, 0), recs: deviceRecords()},
		{name: "device object", base: lwm2m.P(3), recs: deviceRecords()},
		{
			name: "every type",
			base: lwm2m.P(9, 1),
			recs: []lwm2m.Record{
				{Path: lwm2m.P(9, 1, 10), Value: lwm2m.Opaque([]byte{0, 1, 2})},
				{Path: lwm2m.P(9, 1, 11), Value: lwm2m.String("héllo")},
				{Path: lwm2m.P(9, 1, 12, 0), Value: lwm2m.Int(-1)},
				{Path: lwm2m.P(9, 1, 12, 65534), Value: lwm2m.Int(math.MaxInt64)},
				{Path: lwm2m.P(9, 1, 13), Value: lwm2m.Uint(math.MaxUint64)},
				{Path: lwm2m.P(9, 1, 14), Value: lwm2m.Float(math.Inf(-1))},
				{Path: lwm2m.P(9, 1, 24), Value: lwm2m.Float(math.Copysign(0, -1))},
				{Path: lwm2m.P(9, 1, 34), Value: lwm2m.Float(math.SmallestNonzeroFloat64)},
				{Path: lwm2m.P(9, 1, 15), Value: lwm2m.Bool(true)},
				{Path: lwm2m.P(9, 1, 17), Value: lwm2m.Value{Type: lwm2m.TypeTime, Int: 1700000000}},
				{Path: lwm2m.P(9, 1, 18), Value: lwm2m.Link(65535, 65535)},
				{Path: lwm2m.P(9, 1, 19), Value: lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: `</3/0>;ct=11543`}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tlv.Encode(tt.base, tt.recs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tlv.Decode(tt.base, b, func(p lwm2m.Path) lwm2m.Type {
				if p.Obj() == 3 {
					return deviceTypes(p)
				}
				return testTypes(p)
			})
			if err != nil {
				t.Fatal(err)
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
		{"08 00 79" + deviceHex, 1, [4]uint16{3}},
		{"08 00 79" + deviceHex, 2, [4]uint16{3, 0}},
		{"08 00 09 C1 00 01 C4 01 00 01 51 80 03 01 C1 00 02", 1, [4]uint16{1}},
		{"88 07 08 42 00 0E D8 42 01 13 88", 3, [4]uint16{3, 0, 7}},
		{"42 01 13 88", 4, [4]uint16{3, 0, 7, 1}},
		{"C4 04 BF C0 00 00 C8 14 08 3F B9 99 99 99 99 99 9A C1 05 01 C4 08 00 03 FF FF", 2, [4]uint16{1, 0}},
		{"E1 01 2C 01", 2, [4]uint16{3, 0}},
		{"D0 01 01 00", 2, [4]uint16{3, 0}},
		{"D8 00 FF FF FF 00", 2, [4]uint16{3, 0}},
		{"C8 00 05 41", 2, [4]uint16{3, 0}},
		{"02 00 00 01", 1, [4]uint16{3}},
		{"83 06 C1 00 01", 2, [4]uint16{3, 0}},
		{"C0 02", 2, [4]uint16{3, 0}},
		{"C3 02 00 00 01", 2, [4]uint16{3, 0}},
		{"C2 04 3F 80", 2, [4]uint16{1, 0}},
		{"C1 09 01 C1 09 02", 2, [4]uint16{3, 0}},
		{"E1 FF FF 01", 2, [4]uint16{3, 0}},
		{"80 06", 3, [4]uint16{3, 0, 6}},
		{"", 0, [4]uint16{}},
	}
	for _, s := range seeds {
		f.Add(unhex(f, s.in), s.depth, s.ids[0], s.ids[1], s.ids[2], s.ids[3])
	}
	f.Fuzz(func(t *testing.T, in []byte, depth uint8, o, i, r, ri uint16) {
		base := lwm2m.P([]uint16{o, i, r, ri}[:depth%5]...)
		recs, err := tlv.Decode(base, in, testTypes)
		if err != nil {
			if !errors.Is(err, tlv.ErrFormat) {
				t.Fatalf("Decode error %v does not wrap ErrFormat", err)
			}
			if len(in) > tlv.MaxSize && !errors.Is(err, tlv.ErrTooLarge) {
				t.Fatalf("Decode of %d bytes: %v, want ErrTooLarge", len(in), err)
			}
			return
		}
		// Each record costs at least a two-byte header.
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
		out, err := tlv.Encode(base, recs)
		if err != nil {
			t.Fatalf("Encode of decoded records: %v", err)
		}
		// The encoder is minimal: it never needs more bytes than the input.
		if len(out) > len(in) {
			t.Fatalf("re-encoded %d bytes into %d", len(in), len(out))
		}
		again, err := tlv.Decode(base, out, testTypes)
		if err != nil {
			t.Fatalf("Decode of re-encoded % X: %v", out, err)
		}
		if !equalRecords(recs, again) {
			t.Fatalf("round trip changed records:\n%v\n%v", recs, again)
		}
		out2, err := tlv.Encode(base, again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding not canonical: % X vs % X (%v)", out, out2, err)
		}
	})
}
