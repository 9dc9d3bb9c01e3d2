package text_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/text"
)

// Shared fixtures (lwm2m/internal/codectest) and comparisons.
var (
	equalValues = lwm2m.Value.Equal
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		in   lwm2m.Value
		want string
	}{
		{name: "integer", in: lwm2m.Int(-42), want: "-42"},
		{name: "integer min", in: lwm2m.Int(math.MinInt64), want: "-9223372036854775808"},
		{name: "time", in: lwm2m.Value{Type: lwm2m.TypeTime, Int: 1367491215}, want: "1367491215"},
		{name: "unsigned max", in: lwm2m.Uint(math.MaxUint64), want: "18446744073709551615"},
		{name: "float", in: lwm2m.Float(0.1), want: "0.1"},
		{name: "float integral", in: lwm2m.Float(3), want: "3"},
		{name: "float large", in: lwm2m.Float(1e21), want: "1e+21"},
		{name: "float small", in: lwm2m.Float(1.5e-7), want: "1.5e-07"},
		{name: "float max", in: lwm2m.Float(math.MaxFloat64), want: "1.7976931348623157e+308"},
		{name: "float negative zero", in: lwm2m.Float(math.Copysign(0, -1)), want: "-0"},
		{name: "true", in: lwm2m.Bool(true), want: "1"},
		{name: "false", in: lwm2m.Bool(false), want: "0"},
		{name: "string", in: lwm2m.String("Open Mobile Alliance"), want: "Open Mobile Alliance"},
		{name: "empty string", in: lwm2m.String(""), want: ""},
		{name: "utf-8 string", in: lwm2m.String("+02:00 é\n"), want: "+02:00 é\n"},
		{name: "opaque", in: lwm2m.Opaque([]byte{0xFB, 0xFF}), want: "+/8="},
		{name: "empty opaque", in: lwm2m.Opaque(nil), want: ""},
		{name: "objlnk", in: lwm2m.Link(3, 0), want: "3:0"},
		{name: "objlnk null", in: lwm2m.Link(65535, 65535), want: "65535:65535"},
		{name: "corelnk", in: lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: `</3/0>;ct=11543`}, want: `</3/0>;ct=11543`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := text.Encode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Encode = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncodeError(t *testing.T) {
	tests := []struct {
		name string
		in   lwm2m.Value
	}{
		{name: "none", in: lwm2m.Value{}},
		{name: "unknown type", in: lwm2m.Value{Type: 42}},
		{name: "nan", in: lwm2m.Float(math.NaN())},
		{name: "inf", in: lwm2m.Float(math.Inf(-1))},
		{name: "string not utf-8", in: lwm2m.String("\xff")},
		{name: "string with nul", in: lwm2m.String("a\x00b")},
		{name: "corelnk with nul", in: lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: "\x00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := text.Encode(tt.in)
			if !errors.Is(err, text.ErrEncode) {
				t.Fatalf("Encode = %q, %v; want ErrEncode", b, err)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		typ  lwm2m.Type
		want lwm2m.Value
	}{
		{name: "integer", in: "-42", typ: lwm2m.TypeInteger, want: lwm2m.Int(-42)},
		{name: "integer leading zeros", in: "007", typ: lwm2m.TypeInteger, want: lwm2m.Int(7)},
		{name: "integer max", in: "9223372036854775807", typ: lwm2m.TypeInteger, want: lwm2m.Int(math.MaxInt64)},
		{name: "integer min", in: "-9223372036854775808", typ: lwm2m.TypeInteger, want: lwm2m.Int(math.MinInt64)},
		{name: "time", in: "1367491215", typ: lwm2m.TypeTime, want: lwm2m.Value{Type: lwm2m.TypeTime, Int: 1367491215}},
		{name: "unsigned max", in: "18446744073709551615", typ: lwm2m.TypeUnsigned, want: lwm2m.Uint(math.MaxUint64)},
		{name: "float", in: "0.1", typ: lwm2m.TypeFloat, want: lwm2m.Float(0.1)},
		{name: "float integral", in: "3", typ: lwm2m.TypeFloat, want: lwm2m.Float(3)},
		{name: "float exponent", in: "1e+21", typ: lwm2m.TypeFloat, want: lwm2m.Float(1e21)},
		{name: "float upper exponent", in: "-2.5E-3", typ: lwm2m.TypeFloat, want: lwm2m.Float(-2.5e-3)},
		{name: "float bare exponent", in: "1e5", typ: lwm2m.TypeFloat, want: lwm2m.Float(1e5)},
		{name: "float trailing dot", in: "1.", typ: lwm2m.TypeFloat, want: lwm2m.Float(1)},
		{name: "float leading dot", in: ".5", typ: lwm2m.TypeFloat, want: lwm2m.Float(0.5)},
		{name: "float negative zero", in: "-0", typ: lwm2m.TypeFloat, want: lwm2m.Float(math.Copysign(0, -1))},
		{name: "float underflow", in: "1e-400", typ: lwm2m.TypeFloat, want: lwm2m.Float(0)},
		{name: "boolean 1", in: "1", typ: lwm2m.TypeBoolean, want: lwm2m.Bool(true)},
		{name: "boolean 0", in: "0", typ: lwm2m.TypeBoolean, want: lwm2m.Bool(false)},
		{name: "boolean true", in: "true", typ: lwm2m.TypeBoolean, want: lwm2m.Bool(true)},
		{name: "boolean false", in: "false", typ: lwm2m.TypeBoolean, want: lwm2m.Bool(false)},
		{name: "string", in: " Open Mobile Alliance\n", typ: lwm2m.TypeString, want: lwm2m.String(" Open Mobile Alliance\n")},
		{name: "empty string", in: "", typ: lwm2m.TypeString, want: lwm2m.String("")},
		{name: "none is string", in: "é", typ: lwm2m.TypeNone, want: lwm2m.String("é")},
		{name: "unknown type is string", in: "x", typ: 42, want: lwm2m.String("x")},
		{name: "opaque", in: "+/8=", typ: lwm2m.TypeOpaque, want: lwm2m.Opaque([]byte{0xFB, 0xFF})},
		{name: "opaque empty", in: "", typ: lwm2m.TypeOpaque, want: lwm2m.Opaque([]byte{})},
		{name: "objlnk", in: "3:0", typ: lwm2m.TypeObjlnk, want: lwm2m.Link(3, 0)},
		{name: "objlnk max", in: "65535:65535", typ: lwm2m.TypeObjlnk, want: lwm2m.Link(65535, 65535)},
		{name: "corelnk", in: `</3/0>;ct=11543`, typ: lwm2m.TypeCoreLink, want: lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: `</3/0>;ct=11543`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := text.Decode([]byte(tt.in), tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if !equalValues(got, tt.want) {
				t.Errorf("Decode = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		typ    lwm2m.Type
		tooBig bool
	}{
		{name: "over 64 KiB", in: strings.Repeat("a", text.MaxSize+1), typ: lwm2m.TypeString, tooBig: true},
		{name: "integer empty", in: "", typ: lwm2m.TypeInteger},
		{name: "integer minus only", in: "-", typ: lwm2m.TypeInteger},
		{name: "integer plus", in: "+1", typ: lwm2m.TypeInteger},
		{name: "integer space", in: " 1", typ: lwm2m.TypeInteger},
		{name: "integer newline", in: "1\n", typ: lwm2m.TypeInteger},
		{name: "integer trailing garbage", in: "12abc", typ: lwm2m.TypeInteger},
		{name: "integer nul", in: "1\x00", typ: lwm2m.TypeInteger},
		{name: "integer underscore", in: "1_000", typ: lwm2m.TypeInteger},
		{name: "integer hex", in: "0x10", typ: lwm2m.TypeInteger},
		{name: "integer fraction", in: "1.0", typ: lwm2m.TypeInteger},
		{name: "integer overflow", in: "9223372036854775808", typ: lwm2m.TypeInteger},
		{name: "integer underflow", in: "-9223372036854775809", typ: lwm2m.TypeInteger},
		{name: "time overflow", in: "99999999999999999999", typ: lwm2m.TypeTime},
		{name: "unsigned negative", in: "-1", typ: lwm2m.TypeUnsigned},
		{name: "unsigned overflow", in: "18446744073709551616", typ: lwm2m.TypeUnsigned},
		{name: "unsigned empty", in: "", typ: lwm2m.TypeUnsigned},
		{name: "float empty", in: "", typ: lwm2m.TypeFloat},
		{name: "float dot", in: ".", typ: lwm2m.TypeFloat},
		{name: "float minus dot", in: "-.", typ: lwm2m.TypeFloat},
		{name: "float nan", in: "NaN", typ: lwm2m.TypeFloat},
		{name: "float inf", in: "Inf", typ: lwm2m.TypeFloat},
		{name: "float infinity", in: "-infinity", typ: lwm2m.TypeFloat},
		{name: "float hex", in: "0x1p-2", typ: lwm2m.TypeFloat},
		{name: "float underscore", in: "1_0.5", typ: lwm2m.TypeFloat},
		{name: "float plus", in: "+1.5", typ: lwm2m.TypeFloat},
		{name: "float two dots", in: "1.2.3", typ: lwm2m.TypeFloat},
		{name: "float empty exponent", in: "1e", typ: lwm2m.TypeFloat},
		{name: "float signed empty exponent", in: "1e+", typ: lwm2m.TypeFloat},
		{name: "float double exponent", in: "1e5e5", typ: lwm2m.TypeFloat},
		{name: "float exponent only", in: "e5", typ: lwm2m.TypeFloat},
		{name: "float trailing garbage", in: "1.5x", typ: lwm2m.TypeFloat},
		{name: "float space", in: "1.5 ", typ: lwm2m.TypeFloat},
		{name: "float overflow", in: "1e309", typ: lwm2m.TypeFloat},
		{name: "float negative overflow", in: "-1e309", typ: lwm2m.TypeFloat},
		{name: "boolean 2", in: "2", typ: lwm2m.TypeBoolean},
		{name: "boolean empty", in: "", typ: lwm2m.TypeBoolean},
		{name: "boolean upper", in: "TRUE", typ: lwm2m.TypeBoolean},
		{name: "boolean trailing", in: "1 ", typ: lwm2m.TypeBoolean},
		{name: "boolean 01", in: "01", typ: lwm2m.TypeBoolean},
		{name: "string not utf-8", in: "\xc3\x28", typ: lwm2m.TypeString},
		{name: "string nul", in: "http://a\x00.example", typ: lwm2m.TypeString},
		{name: "none nul", in: "\x00", typ: lwm2m.TypeNone},
		{name: "corelnk not utf-8", in: "</\xff>", typ: lwm2m.TypeCoreLink},
		{name: "opaque bad character", in: "A*==", typ: lwm2m.TypeOpaque},
		{name: "opaque no padding", in: "+/8", typ: lwm2m.TypeOpaque},
		{name: "opaque url alphabet", in: "-_8=", typ: lwm2m.TypeOpaque},
		{name: "opaque trailing bits", in: "+/9=", typ: lwm2m.TypeOpaque},
		{name: "opaque line break", in: "QQ==\n", typ: lwm2m.TypeOpaque},
		{name: "opaque inner line break", in: "Q\r\nQ==", typ: lwm2m.TypeOpaque},
		{name: "opaque data after padding", in: "QQ==QQ==", typ: lwm2m.TypeOpaque},
		{name: "objlnk one id", in: "3", typ: lwm2m.TypeObjlnk},
		{name: "objlnk out of range", in: "65536:0", typ: lwm2m.TypeObjlnk},
		{name: "objlnk instance out of range", in: "3:99999", typ: lwm2m.TypeObjlnk},
		{name: "objlnk long", in: "000003:0", typ: lwm2m.TypeObjlnk},
		{name: "objlnk negative", in: "-1:0", typ: lwm2m.TypeObjlnk},
		{name: "objlnk space", in: "3: 0", typ: lwm2m.TypeObjlnk},
		{name: "objlnk three ids", in: "3:0:1", typ: lwm2m.TypeObjlnk},
		{name: "objlnk empty", in: ":", typ: lwm2m.TypeObjlnk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := text.Decode([]byte(tt.in), tt.typ)
			if !errors.Is(err, text.ErrFormat) {
				t.Fatalf("Decode = %#v, %v; want ErrFormat", v, err)
			}
			if got := errors.Is(err, text.ErrTooLarge); got != tt.tooBig {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.tooBig)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   lwm2m.Value
	}{
		{name: "integer", in: lwm2m.Int(math.MinInt64)},
		{name: "unsigned", in: lwm2m.Uint(math.MaxUint64)},
		{name: "float smallest", in: lwm2m.Float(math.SmallestNonzeroFloat64)},
		{name: "float max", in: lwm2m.Float(-math.MaxFloat64)},
		{name: "float third", in: lwm2m.Float(1.0 / 3)},
		{name: "float negative zero", in: lwm2m.Float(math.Copysign(0, -1))},
		{name: "float large integer", in: lwm2m.Float(123456789012345678)},
		{name: "boolean", in: lwm2m.Bool(true)},
		{name: "string", in: lwm2m.String("h\u00e9llo, world\n")},
		{name: "opaque", in: lwm2m.Opaque([]byte{0, 1, 2, 0xFF, 0xFE})},
		{name: "time", in: lwm2m.Value{Type: lwm2m.TypeTime, Int: -1}},
		{name: "objlnk", in: lwm2m.Link(1, 65534)},
		{name: "corelnk", in: lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: `</1/0>,</3/0>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := text.Encode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := text.Decode(b, tt.in.Type)
			if err != nil {
				t.Fatalf("Decode(%q): %v", b, err)
			}
			if !equalValues(got, tt.in) {
				t.Errorf("round trip = %#v, want %#v", got, tt.in)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	seeds := []struct {
		in  string
		typ lwm2m.Type
	}{
		{"-42", lwm2m.TypeInteger},
		{"9223372036854775808", lwm2m.TypeInteger},
		{"12abc", lwm2m.TypeInteger},
		{"1367491215", lwm2m.TypeTime},
		{"18446744073709551615", lwm2m.TypeUnsigned},
		{"-1", lwm2m.TypeUnsigned},
		{"0.1", lwm2m.TypeFloat},
		{"-2.5E-3", lwm2m.TypeFloat},
		{"1e309", lwm2m.TypeFloat},
		{"NaN", lwm2m.TypeFloat},
		{"0x1p-2", lwm2m.TypeFloat},
		{"-0", lwm2m.TypeFloat},
		{"1", lwm2m.TypeBoolean},
		{"true", lwm2m.TypeBoolean},
		{"2", lwm2m.TypeBoolean},
		{"Open Mobile Alliance", lwm2m.TypeString},
		{"http://a\x00.example", lwm2m.TypeString},
		{"\xc3\x28", lwm2m.TypeString},
		{"+/8=", lwm2m.TypeOpaque},
		{"QQ==\n", lwm2m.TypeOpaque},
		{"+/9=", lwm2m.TypeOpaque},
		{"3:0", lwm2m.TypeObjlnk},
		{"65536:0", lwm2m.TypeObjlnk},
		{"</3/0>;ct=11543", lwm2m.TypeCoreLink},
		{"x", lwm2m.TypeNone},
		{"", lwm2m.TypeOpaque},
	}
	for _, s := range seeds {
		f.Add([]byte(s.in), uint8(s.typ))
	}
	f.Fuzz(func(t *testing.T, in []byte, typ uint8) {
		ty := lwm2m.Type(typ % 11) // 10 is an unknown type
		v, err := text.Decode(in, ty)
		if err != nil {
			if !errors.Is(err, text.ErrFormat) {
				t.Fatalf("Decode error %v does not wrap ErrFormat", err)
			}
			if len(in) > text.MaxSize && !errors.Is(err, text.ErrTooLarge) {
				t.Fatalf("Decode of %d bytes: %v, want ErrTooLarge", len(in), err)
			}
			return
		}
		out, err := text.Encode(v)
		if err != nil {
			t.Fatalf("Encode of decoded %#v: %v", v, err)
		}
		again, err := text.Decode(out, v.Type)
		if err != nil {
			t.Fatalf("Decode of re-encoded %q: %v", out, err)
		}
		if !equalValues(v, again) {
			t.Fatalf("round trip changed the value: %#v, %#v", v, again)
		}
		// Strings, core links and opaque values have one encoding only.
		switch v.Type {
		case lwm2m.TypeString, lwm2m.TypeCoreLink, lwm2m.TypeOpaque:
			if !bytes.Equal(in, out) {
				t.Fatalf("re-encoded %q as %q", in, out)
			}
		}
		if out2, err := text.Encode(again); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding not canonical: %q vs %q (%v)", out, out2, err)
		}
	})
}
