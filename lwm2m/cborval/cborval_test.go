package cborval_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/cborval"
)

// Shared fixtures (lwm2m/internal/codectest) and comparisons.
var (
	equalValues = lwm2m.Value.Equal
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

func timeValue(sec int64) lwm2m.Value { return lwm2m.Value{Type: lwm2m.TypeTime, Int: sec} }

func coreLink(s string) lwm2m.Value { return lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: s} }

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		v    lwm2m.Value
		want string
	}{
		{name: "zero", v: lwm2m.Int(0), want: "00"},
		{name: "small integer", v: lwm2m.Int(23), want: "17"},
		{name: "one-byte integer", v: lwm2m.Int(100), want: "18 64"},
		{name: "negative", v: lwm2m.Int(-1), want: "20"},
		{name: "int64 min", v: lwm2m.Int(math.MinInt64), want: "3b 7fffffffffffffff"},
		{name: "int64 max", v: lwm2m.Int(math.MaxInt64), want: "1b 7fffffffffffffff"},
		{name: "unsigned", v: lwm2m.Uint(5), want: "05"},
		{name: "uint64 max", v: lwm2m.Uint(math.MaxUint64), want: "1b ffffffffffffffff"},
		{name: "half float", v: lwm2m.Float(1.5), want: "f9 3e00"},
		{name: "integral float stays float", v: lwm2m.Float(3), want: "f9 4200"},
		{name: "negative zero", v: lwm2m.Float(math.Copysign(0, -1)), want: "f9 8000"},
		{name: "single float", v: lwm2m.Float(100000), want: "fa 47c35000"},
		{name: "double float", v: lwm2m.Float(22.4), want: "fb 4036666666666666"},
		{name: "max float", v: lwm2m.Float(math.MaxFloat64), want: "fb 7fefffffffffffff"},
		{name: "true", v: lwm2m.Bool(true), want: "f5"},
		{name: "false", v: lwm2m.Bool(false), want: "f4"},
		{name: "string", v: lwm2m.String("U"), want: "61 55"},
		{name: "empty string", v: lwm2m.String(""), want: "60"},
		{name: "utf-8 string", v: lwm2m.String("é"), want: "62 c3a9"},
		{name: "corelnk", v: coreLink("</3>"), want: "64 3c2f333e"},
		{name: "opaque", v: lwm2m.Opaque([]byte{1, 2}), want: "42 0102"},
		{name: "nil opaque", v: lwm2m.Opaque(nil), want: "40"},
		{name: "time", v: timeValue(1367491215), want: "c1 1a 5182428f"},
		{name: "negative time", v: timeValue(-1), want: "c1 20"},
		{name: "objlnk", v: lwm2m.Link(3, 0), want: "63 333a30"},
		{name: "objlnk max", v: lwm2m.Link(65535, 65535), want: "6b 36353533353a3635353335"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cborval.Encode(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("Encode(%v) = %x, want %x", tt.v, got, want)
			}
		})
	}
}

func TestEncodeError(t *testing.T) {
	tests := []struct {
		name string
		v    lwm2m.Value
	}{
		{name: "no type", v: lwm2m.Value{}},
		{name: "unknown type", v: lwm2m.Value{Type: 42}},
		{name: "nan", v: lwm2m.Float(math.NaN())},
		{name: "inf", v: lwm2m.Float(math.Inf(1))},
		{name: "minus inf", v: lwm2m.Float(math.Inf(-1))},
		{name: "invalid utf-8", v: lwm2m.String("\xff")},
		{name: "invalid utf-8 corelnk", v: coreLink("<\xc3>")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := cborval.Encode(tt.v)
			if !errors.Is(err, cborval.ErrEncode) {
				t.Fatalf("Encode = %x, %v; want ErrEncode", b, err)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		t    lwm2m.Type
		want lwm2m.Value
	}{
		// The item's own type.
		{name: "integer", in: "18 64", want: lwm2m.Int(100)},
		{name: "non-preferred integer", in: "19 0005", want: lwm2m.Int(5)},
		{name: "negative", in: "38 63", want: lwm2m.Int(-100)},
		{name: "int64 min", in: "3b 7fffffffffffffff", want: lwm2m.Int(math.MinInt64)},
		{name: "int64 max", in: "1b 7fffffffffffffff", want: lwm2m.Int(math.MaxInt64)},
		{name: "beyond int64 is unsigned", in: "1b 8000000000000000", want: lwm2m.Uint(1 << 63)},
		{name: "half float", in: "f9 3e00", want: lwm2m.Float(1.5)},
		{name: "single float", in: "fa 3fc00000", want: lwm2m.Float(1.5)},
		{name: "double float", in: "fb 3ff8000000000000", want: lwm2m.Float(1.5)},
		{name: "half subnormal", in: "f9 0001", want: lwm2m.Float(math.Ldexp(1, -24))},
		{name: "negative zero", in: "f9 8000", want: lwm2m.Float(math.Copysign(0, -1))},
		{name: "decimal fraction", in: "c4 82 20 18 2d", want: lwm2m.Float(4.5)},
		{name: "decimal fraction positive exponent", in: "c4 82 02 03", want: lwm2m.Float(300)},
		{name: "true", in: "f5", want: lwm2m.Bool(true)},
		{name: "false", in: "f4", want: lwm2m.Bool(false)},
		{name: "text", in: "61 55", want: lwm2m.String("U")},
		{name: "empty text", in: "60", want: lwm2m.String("")},
		{name: "indefinite text", in: "7f 6155 6156 ff", want: lwm2m.String("UV")},
		{name: "bytes", in: "42 0102", want: lwm2m.Opaque([]byte{1, 2})},
		{name: "empty bytes", in: "40", want: lwm2m.Opaque([]byte{})},
		{name: "indefinite bytes", in: "5f 4101 4102 ff", want: lwm2m.Opaque([]byte{1, 2})},
		{name: "tag 1", in: "c1 1a 5182428f", want: timeValue(1367491215)},
		{name: "tag 1 negative", in: "c1 20", want: timeValue(-1)},
		{name: "tag 1 whole float", in: "c1 fa 4f800000", want: timeValue(1 << 32)},
		// Converted to the resource type.
		{name: "integer as integer", in: "05", t: lwm2m.TypeInteger, want: lwm2m.Int(5)},
		{name: "integer as unsigned", in: "05", t: lwm2m.TypeUnsigned, want: lwm2m.Uint(5)},
		{name: "unsigned as unsigned", in: "1b ffffffffffffffff", t: lwm2m.TypeUnsigned, want: lwm2m.Uint(math.MaxUint64)},
		{name: "integer as float", in: "05", t: lwm2m.TypeFloat, want: lwm2m.Float(5)},
		{name: "whole float as integer", in: "f9 4200", t: lwm2m.TypeInteger, want: lwm2m.Int(3)},
		{name: "decimal fraction as integer", in: "c4 82 00 18 2d", t: lwm2m.TypeInteger, want: lwm2m.Int(45)},
		{name: "integer as time", in: "1a 5182428f", t: lwm2m.TypeTime, want: timeValue(1367491215)},
		{name: "tag 1 as time", in: "c1 1a 5182428f", t: lwm2m.TypeTime, want: timeValue(1367491215)},
		{name: "text as string", in: "61 55", t: lwm2m.TypeString, want: lwm2m.String("U")},
		{name: "text as corelnk", in: "64 3c2f333e", t: lwm2m.TypeCoreLink, want: coreLink("</3>")},
		{name: "bytes as opaque", in: "41 ff", t: lwm2m.TypeOpaque, want: lwm2m.Opaque([]byte{0xFF})},
		{name: "boolean", in: "f5", t: lwm2m.TypeBoolean, want: lwm2m.Bool(true)},
		{name: "objlnk", in: "63 333a30", t: lwm2m.TypeObjlnk, want: lwm2m.Link(3, 0)},
		{name: "objlnk max", in: "6b 36353533353a3635353335", t: lwm2m.TypeObjlnk, want: lwm2m.Link(65535, 65535)},
		{name: "unknown type keeps value", in: "61 55", t: 42, want: lwm2m.String("U")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cborval.Decode(unhex(t, tt.in), tt.t)
			if err != nil {
				t.Fatal(err)
			}
			if !equalValues(got, tt.want) {
				t.Errorf("Decode(%s, %s) = %s %v, want %s %v", tt.in, tt.t, got.Type, got, tt.want.Type, tt.want)
			}
		})
	}
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		t      lwm2m.Type
		tooBig bool
	}{
		// Framing.
		{name: "empty", in: ""},
		{name: "trailing bytes", in: "00 00"},
		{name: "truncated integer", in: "19 01"},
		{name: "truncated text", in: "62 41"},
		{name: "break alone", in: "ff"},
		{name: "reserved additional information", in: "1c"},
		{name: "over 64 KiB", in: "5a 00010001" + strings.Repeat("00", cborval.MaxSize+1), tooBig: true},
		// B29: declared lengths, nesting, indefinite lengths.
		{name: "bytes of 2^64-1", in: "5b ffffffffffffffff"},
		{name: "array of 2^64-1", in: "9b ffffffffffffffff"},
		{name: "map of 2^64-1", in: "bb ffffffffffffffff"},
		{name: "indefinite array without break", in: "9f 00"},
		{name: "indefinite text without break", in: "7f 6141"},
		{name: "indefinite text with byte chunk", in: "7f 4141 ff"},
		{name: "nested indefinite chunk", in: "7f 7f6141ff ff"},
		{name: "deep nesting", in: strings.Repeat("81", 10000) + "00"},
		// B30: kinds of items.
		{name: "array", in: "81 00"},
		{name: "empty array", in: "80"},
		{name: "map", in: "a1 00 00"},
		{name: "null", in: "f6"},
		{name: "undefined", in: "f7"},
		{name: "simple value", in: "e0"},
		{name: "one-byte simple value", in: "f8 20"},
		{name: "nan", in: "f9 7e00"},
		{name: "double nan", in: "fb 7ff8000000000001"},
		{name: "inf", in: "f9 7c00"},
		{name: "minus inf", in: "fa ff800000"},
		{name: "below int64", in: "3b ffffffffffffffff"},
		{name: "just below int64", in: "3b 8000000000000000"},
		{name: "invalid utf-8", in: "61 ff"},
		// Tags.
		{name: "tag 0", in: "c0 74 323031332d30332d32315432303a30343a30305a"},
		{name: "bignum", in: "c2 41 01"},
		{name: "negative bignum", in: "c3 41 01"},
		{name: "unknown tag", in: "d8 20 61 55"},
		{name: "self-described", in: "d9 d9f7 00"},
		{name: "tag without content", in: "c1"},
		{name: "nested tags", in: "c1 c1 00"},
		{name: "tag 1 text", in: "c1 61 30"},
		{name: "tag 1 fraction", in: "c1 f9 3e00"},
		{name: "tag 1 beyond int64", in: "c1 1b ffffffffffffffff"},
		{name: "tag 1 huge float", in: "c1 fb 43e0000000000000"},
		{name: "tag 4 not an array", in: "c4 00"},
		{name: "tag 4 three elements", in: "c4 83 00 00 00"},
		{name: "tag 4 float mantissa", in: "c4 82 00 f9 3e00"},
		{name: "tag 4 bignum mantissa", in: "c4 82 00 c2 41 01"},
		{name: "tag 4 overflow", in: "c4 82 19 01f4 01"},
		{name: "tag 4 huge exponent", in: "c4 82 1b ffffffffffffffff 01"},
		// Conversions.
		{name: "text as integer", in: "61 35", t: lwm2m.TypeInteger},
		{name: "fraction as integer", in: "f9 3e00", t: lwm2m.TypeInteger},
		{name: "negative as unsigned", in: "20", t: lwm2m.TypeUnsigned},
		{name: "unsigned beyond int64 as integer", in: "1b ffffffffffffffff", t: lwm2m.TypeInteger},
		{name: "integer as boolean", in: "01", t: lwm2m.TypeBoolean},
		{name: "boolean as integer", in: "f5", t: lwm2m.TypeInteger},
		{name: "bytes as string", in: "41 55", t: lwm2m.TypeString},
		{name: "text as opaque", in: "61 55", t: lwm2m.TypeOpaque},
		{name: "fraction as time", in: "f9 3e00", t: lwm2m.TypeTime},
		{name: "text as time", in: "61 31", t: lwm2m.TypeTime},
		{name: "integer as objlnk", in: "03", t: lwm2m.TypeObjlnk},
		{name: "objlnk one id", in: "61 33", t: lwm2m.TypeObjlnk},
		{name: "objlnk out of range", in: "67 333a3635353336", t: lwm2m.TypeObjlnk},
		{name: "objlnk negative", in: "64 2d313a30", t: lwm2m.TypeObjlnk},
		{name: "objlnk three ids", in: "65 333a303a31", t: lwm2m.TypeObjlnk},
		{name: "objlnk empty", in: "61 3a", t: lwm2m.TypeObjlnk},
		{name: "bytes as objlnk", in: "43 333a30", t: lwm2m.TypeObjlnk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := cborval.Decode(unhex(t, tt.in), tt.t)
			if !errors.Is(err, cborval.ErrFormat) {
				t.Fatalf("Decode = %s %v, %v; want ErrFormat", v.Type, v, err)
			}
			if got := errors.Is(err, cborval.ErrTooLarge); got != tt.tooBig {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooBig)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	values := []lwm2m.Value{
		lwm2m.Int(0), lwm2m.Int(-24), lwm2m.Int(-25), lwm2m.Int(math.MinInt64), lwm2m.Int(math.MaxInt64),
		lwm2m.Uint(0), lwm2m.Uint(math.MaxUint64),
		lwm2m.Float(0), lwm2m.Float(math.Copysign(0, -1)), lwm2m.Float(65504), lwm2m.Float(65505),
		lwm2m.Float(math.SmallestNonzeroFloat64), lwm2m.Float(-math.MaxFloat64), lwm2m.Float(0.1),
		lwm2m.Float(math.Float64frombits(0x3f800001)), lwm2m.Float(float64(math.SmallestNonzeroFloat32)),
		lwm2m.Bool(true), lwm2m.Bool(false),
		lwm2m.String(""), lwm2m.String("h\u00e9llo\x00"), lwm2m.String(strings.Repeat("x", 300)),
		coreLink(`</3/0>;ct=11544`),
		lwm2m.Opaque([]byte{}), lwm2m.Opaque(bytes.Repeat([]byte{0xAB}, 70000)),
		timeValue(0), timeValue(math.MinInt64), timeValue(math.MaxInt64),
		lwm2m.Link(0, 0), lwm2m.Link(65535, 1),
	}
	for _, v := range values {
		b, err := cborval.Encode(v)
		if err != nil {
			t.Fatalf("Encode(%s %v): %v", v.Type, v, err)
		}
		if len(b) > cborval.MaxSize {
			continue
		}
		got, err := cborval.Decode(b, v.Type)
		if err != nil {
			t.Fatalf("Decode(%x, %s): %v", b, v.Type, err)
		}
		if !equalValues(got, v) {
			t.Errorf("round trip of %s %v = %s %v", v.Type, v, got.Type, got)
		}
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []struct {
		in string
		t  lwm2m.Type
	}{
		{"18 64", lwm2m.TypeInteger},
		{"1b ffffffffffffffff", lwm2m.TypeUnsigned},
		{"3b 7fffffffffffffff", lwm2m.TypeNone},
		{"f9 3e00", lwm2m.TypeFloat},
		{"fa 47c35000", lwm2m.TypeNone},
		{"fb 4036666666666666", lwm2m.TypeFloat},
		{"f9 4200", lwm2m.TypeInteger},
		{"c4 82 20 18 2d", lwm2m.TypeFloat},
		{"f5", lwm2m.TypeBoolean},
		{"61 55", lwm2m.TypeString},
		{"64 3c2f333e", lwm2m.TypeCoreLink},
		{"7f 6155 6156 ff", lwm2m.TypeString},
		{"42 0102", lwm2m.TypeOpaque},
		{"5f 4101 4102 ff", lwm2m.TypeNone},
		{"c1 1a 5182428f", lwm2m.TypeTime},
		{"1a 5182428f", lwm2m.TypeTime},
		{"63 333a30", lwm2m.TypeObjlnk},
		{"f9 7e00", lwm2m.TypeFloat},
		{"5b ffffffffffffffff", lwm2m.TypeOpaque},
		{"9f 00", lwm2m.TypeNone},
		{"c2 41 01", lwm2m.TypeInteger},
		{"00 00", lwm2m.TypeInteger},
		{"", lwm2m.TypeNone},
	}
	for _, s := range seeds {
		f.Add(unhex(f, s.in), uint8(s.t))
	}
	f.Fuzz(func(t *testing.T, in []byte, typ uint8) {
		typ %= uint8(lwm2m.TypeCoreLink) + 2 // every type and one unknown
		v, err := cborval.Decode(in, lwm2m.Type(typ))
		if err != nil {
			if !errors.Is(err, cborval.ErrFormat) {
				t.Fatalf("Decode error %v does not wrap ErrFormat", err)
			}
			if len(in) > cborval.MaxSize && !errors.Is(err, cborval.ErrTooLarge) {
				t.Fatalf("Decode of %d bytes: %v, want ErrTooLarge", len(in), err)
			}
			return
		}
		if known := typ != 0 && typ <= uint8(lwm2m.TypeCoreLink); known && v.Type != lwm2m.Type(typ) {
			t.Fatalf("Decode as %s gave a %s", lwm2m.Type(typ), v.Type)
		}
		if len(v.Bytes) > len(in) || len(v.Str) > len(in) {
			t.Fatalf("%d bytes decoded to a value of %d+%d bytes", len(in), len(v.Bytes), len(v.Str))
		}
		out, err := cborval.Encode(v)
		if err != nil {
			t.Fatalf("Encode of decoded %s %v: %v", v.Type, v, err)
		}
		again, err := cborval.Decode(out, lwm2m.Type(typ))
		if err != nil {
			t.Fatalf("Decode of re-encoded %x: %v", out, err)
		}
		if !equalValues(v, again) {
			t.Fatalf("round trip changed %s %v to %s %v", v.Type, v, again.Type, again)
		}
		out2, err := cborval.Encode(again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding not canonical: %x, %x (%v)", out, out2, err)
		}
	})
}
