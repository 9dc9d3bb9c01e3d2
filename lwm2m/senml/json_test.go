package senml_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/internal/codectest"
	"github.com/avc-agent/avc/lwm2m/senml"
)

// Shared fixtures (lwm2m/internal/codectest) and comparisons.
var (
	deviceRecords = codectest.DeviceRecords
	deviceTypes   = codectest.DeviceTypes
	rec           = codectest.Rec
	equalValues   = lwm2m.Value.Equal
	equalRecords  = lwm2m.RecordsEqual
)

// testTypes gives every resource ID a type: the ID modulo the number of
// types, so that resource 0 is unknown, 1 a string, 2 an integer and so on
// up to 9, a core link.
func testTypes(p lwm2m.Path) lwm2m.Type {
	return lwm2m.Type(p.Res() % 10)
}

// deviceJSON is the SenML-JSON of the Device object instance /3/0 from Core
// TS 1.1 §7.4.4 (without its white space).
const deviceJSON = `[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},` +
	`{"n":"1","vs":"Lightweight M2M Client"},` +
	`{"n":"2","vs":"345000123"},` +
	`{"n":"3","vs":"1.0"},` +
	`{"n":"6/0","v":1},` +
	`{"n":"6/1","v":5},` +
	`{"n":"7/0","v":3800},` +
	`{"n":"7/1","v":5000},` +
	`{"n":"8/0","v":125},` +
	`{"n":"8/1","v":900},` +
	`{"n":"9","v":100},` +
	`{"n":"10","v":15},` +
	`{"n":"11/0","v":0},` +
	`{"n":"13","v":1367491215},` +
	`{"n":"14","vs":"+02:00"},` +
	`{"n":"16","vs":"U"}]`

func TestEncodeJSONError(t *testing.T) {
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
			b, err := senml.EncodeJSON(tt.base, tt.recs)
			if !errors.Is(err, senml.ErrEncode) {
				t.Fatalf("EncodeJSON = %s, %v; want ErrEncode", b, err)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name   string
		base   lwm2m.Path
		in     string
		typeOf func(lwm2m.Path) lwm2m.Type
		want   []lwm2m.Record
	}{
		{name: "spec device instance", base: lwm2m.P(3, 0), in: deviceJSON, typeOf: deviceTypes, want: deviceRecords()},
		{name: "spec device at root", base: lwm2m.P(), in: deviceJSON, typeOf: deviceTypes, want: deviceRecords()},
		{name: "empty array", base: lwm2m.P(3, 0), in: ` [ ] `},
		{
			name: "white space and unsorted",
			base: lwm2m.P(3, 0),
			in:   "[\n {\"bn\" : \"/3/0/\", \"n\":\"9\", \"v\":100},\r\n\t{\"n\":\"6/0\",\"v\":1}\n]\n",
			want: []lwm2m.Record{rec(lwm2m.P(3, 0, 6, 0), lwm2m.Int(1)), rec(lwm2m.P(3, 0, 9), lwm2m.Int(100))},
		},
		{
			name: "base name changes",
			base: lwm2m.P(),
			in:   `[{"bn":"/3/0/","n":"9","v":100},{"n":"10","v":15},{"bn":"/1/0/","n":"1","v":86400},{"n":"2","v":1}]`,
			want: []lwm2m.Record{rec(lwm2m.P(1, 0, 1), lwm2m.Int(86400)), rec(lwm2m.P(1, 0, 2), lwm2m.Int(1)), rec(lwm2m.P(3, 0, 9), lwm2m.Int(100)), rec(lwm2m.P(3, 0, 10), lwm2m.Int(15))},
		},
		{name: "base name only", base: lwm2m.P(3, 0, 9), in: `[{"bn":"/3/0/9","v":100}]`, want: []lwm2m.Record{rec(lwm2m.P(3, 0, 9), lwm2m.Int(100))}},
		{name: "full name", base: lwm2m.P(3), in: `[{"n":"/3/0/9","v":100}]`, want: []lwm2m.Record{rec(lwm2m.P(3, 0, 9), lwm2m.Int(100))}},
		{
			name: "times and units ignored",
			base: lwm2m.P(3, 0),
			in:   `[{"bn":"/3/0/","bt":1.7e9,"bu":"s","bver":10,"bs":0,"bv":0,"n":"9","v":100,"t":-5,"u":"%","ut":60,"x-vendor":"y"}]`,
			want: []lwm2m.Record{rec(lwm2m.P(3, 0, 9), lwm2m.Int(100))},
		},
		{name: "int64 max", base: lwm2m.P(1, 0, 0), in: `[{"n":"/1/0/0","v":9223372036854775807}]`, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Int(math.MaxInt64))}},
		{name: "int64 min", base: lwm2m.P(1, 0, 0), in: `[{"n":"/1/0/0","v":-9223372036854775808}]`, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Int(math.MinInt64))}},
		{name: "uint64 max", base: lwm2m.P(1, 0, 0), in: `[{"n":"/1/0/0","v":18446744073709551615}]`, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Uint(math.MaxUint64))}},
		{name: "beyond uint64 is float", base: lwm2m.P(1, 0, 0), in: `[{"n":"/1/0/0","v":18446744073709551616}]`, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Float(1<<64))}},
		{name: "fraction is float", base: lwm2m.P(1, 0, 0), in: `[{"n":"/1/0/0","v":1.5}]`, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Float(1.5))}},
		{name: "negative zero float", base: lwm2m.P(1, 0, 0), in: `[{"n":"/1/0/0","v":-0.0}]`, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.Float(math.Copysign(0, -1)))}},
		{name: "exponent as integer", base: lwm2m.P(1, 0, 2), in: `[{"n":"/1/0/2","v":1E2}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 2), lwm2m.Int(100))}},
		{name: "integer as unsigned", base: lwm2m.P(1, 0, 3), in: `[{"n":"/1/0/3","v":5}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 3), lwm2m.Uint(5))}},
		{name: "integer as float", base: lwm2m.P(1, 0, 4), in: `[{"n":"/1/0/4","v":5}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 4), lwm2m.Float(5))}},
		{name: "integer as time", base: lwm2m.P(1, 0, 7), in: `[{"n":"/1/0/7","v":1700000000}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 7), lwm2m.Value{Type: lwm2m.TypeTime, Int: 1700000000})}},
		{name: "string", base: lwm2m.P(1, 0, 1), in: `[{"n":"/1/0/1","vs":"\u00e9\n"}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 1), lwm2m.String("é\n"))}},
		{name: "corelnk", base: lwm2m.P(1, 0, 9), in: `[{"n":"/1/0/9","vs":"</3>"}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 9), lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: "</3>"})}},
		{name: "boolean", base: lwm2m.P(1, 0, 5), in: `[{"n":"/1/0/5","vb":false}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 5), lwm2m.Bool(false))}},
		{name: "opaque base64url", base: lwm2m.P(1, 0, 6), in: `[{"n":"/1/0/6","vd":"-_8"}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 6), lwm2m.Opaque([]byte{0xFB, 0xFF}))}},
		{name: "opaque standard padded", base: lwm2m.P(1, 0, 6), in: `[{"n":"/1/0/6","vd":"+/8="}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 6), lwm2m.Opaque([]byte{0xFB, 0xFF}))}},
		{name: "opaque two pads", base: lwm2m.P(1, 0, 6), in: `[{"n":"/1/0/6","vd":"AA=="}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 6), lwm2m.Opaque([]byte{0}))}},
		{name: "opaque empty", base: lwm2m.P(1, 0, 6), in: `[{"n":"/1/0/6","vd":""}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 6), lwm2m.Opaque([]byte{}))}},
		{name: "objlnk", base: lwm2m.P(1, 0, 8), in: `[{"n":"/1/0/8","vlo":"65535:0"}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 8), lwm2m.Link(65535, 0))}},
		{name: "unknown type keeps value", base: lwm2m.P(1, 0, 0), in: `[{"n":"/1/0/0","vs":"x"}]`, typeOf: testTypes, want: []lwm2m.Record{rec(lwm2m.P(1, 0, 0), lwm2m.String("x"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := senml.DecodeJSON(tt.base, []byte(tt.in), tt.typeOf)
			if err != nil {
				t.Fatal(err)
			}
			if !equalRecords(got, tt.want) {
				t.Errorf("DecodeJSON =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestDecodeJSONError(t *testing.T) {
	tests := []struct {
		name   string
		base   lwm2m.Path
		in     string
		tooBig bool
		path   bool // also wraps lwm2m.ErrBadPath
	}{
		// B31: size, truncation, unterminated strings.
		{name: "over 64 KiB", in: `[` + strings.Repeat(" ", senml.MaxSize) + `]`, tooBig: true},
		{name: "empty input", in: ``},
		{name: "unterminated array", in: `[{"n":"/3/0/1","v":1}`},
		{name: "unterminated object", in: `[{"n":"/3/0/1","v":1`},
		{name: "unterminated string", in: `[{"n":"/3/0/1`},
		{name: "missing colon", in: `[{"n" "/3/0/1","v":1}]`},
		{name: "trailing comma", in: `[{"n":"/3/0/1","v":1},]`},
		{name: "data after array", in: `[] []`},
		{name: "garbage after array", in: `[]x`},
		{name: "not utf-8", in: "[{\"n\":\"/3/0/1\",\"vs\":\"\xff\"}]"},
		// Shape.
		{name: "object", in: `{"n":"/3/0/1","v":1}`},
		{name: "string", in: `"x"`},
		{name: "number element", in: `[1]`},
		{name: "array element", in: `[[]]`},
		{name: "nested object value", in: `[{"n":"/3/0/1","v":{}}]`},
		{name: "nested array value", in: `[{"n":"/3/0/1","v":[1]}]`},
		{name: "nested unknown field", in: `[{"x":{"y":1},"n":"/3/0/1","v":1}]`},
		{name: "deep nesting", in: strings.Repeat("[", 10000)},
		// Field types.
		{name: "number name", in: `[{"n":1,"v":1}]`},
		{name: "boolean base name", in: `[{"bn":true,"n":"/3/0/1","v":1}]`},
		{name: "string v", in: `[{"n":"/3/0/1","v":"1"}]`},
		{name: "null v", in: `[{"n":"/3/0/1","v":null}]`},
		{name: "number vb", in: `[{"n":"/3/0/1","vb":1}]`},
		{name: "number vs", in: `[{"n":"/3/0/1","vs":1}]`},
		{name: "number vd", in: `[{"n":"/3/0/1","vd":1}]`},
		{name: "number vlo", in: `[{"n":"/3/0/1","vlo":1}]`},
		{name: "string t", in: `[{"n":"/3/0/1","v":1,"t":"1"}]`},
		{name: "null bt", in: `[{"bt":null,"n":"/3/0/1","v":1}]`},
		{name: "number unit", in: `[{"n":"/3/0/1","v":1,"u":1}]`},
		{name: "string bver", in: `[{"bver":"10","n":"/3/0/1","v":1}]`},
		// B30: duplicates, out-of-range numbers, bad base64.
		{name: "duplicate field", in: `[{"n":"/3/0/1","n":"/3/0/2","v":1}]`},
		{name: "duplicate value field", in: `[{"n":"/3/0/1","v":1,"v":2}]`},
		{name: "duplicate path", in: `[{"n":"/3/0/1","v":1},{"n":"/3/0/1","v":2}]`},
		{name: "single and multiple", in: `[{"n":"/3/0/1","v":1},{"n":"/3/0/1/0","v":2}]`},
		{name: "number too large", in: `[{"n":"/3/0/1","v":1e400}]`},
		{name: "negative number too large", in: `[{"n":"/3/0/1","v":-1e400}]`},
		{name: "time too large", in: `[{"n":"/3/0/1","v":1,"t":1e400}]`},
		{name: "bt plus t overflows", in: `[{"bt":1.7e308,"n":"/3/0/1","v":1,"t":1.7e308}]`},
		{name: "base64 bad character", in: `[{"n":"/3/0/1","vd":"A*=="}]`},
		{name: "base64 bad length", in: `[{"n":"/3/0/1","vd":"A"}]`},
		{name: "base64 three pads", in: `[{"n":"/3/0/1","vd":"A==="}]`},
		{name: "base64 short padded", in: `[{"n":"/3/0/1","vd":"QQ="}]`},
		{name: "base64 inner pad", in: `[{"n":"/3/0/1","vd":"QQ==QQ=="}]`},
		{name: "base64 line break", in: `[{"n":"/3/0/1","vd":"QQ\n=="}]`},
		{name: "base64 trailing bits", in: `[{"n":"/3/0/1","vd":"QR"}]`},
		{name: "objlnk one id", in: `[{"n":"/3/0/1","vlo":"3"}]`},
		{name: "objlnk out of range", in: `[{"n":"/3/0/1","vlo":"3:65536"}]`},
		{name: "objlnk negative", in: `[{"n":"/3/0/1","vlo":"-1:0"}]`},
		{name: "objlnk plus", in: `[{"n":"/3/0/1","vlo":"+1:0"}]`},
		{name: "objlnk three ids", in: `[{"n":"/3/0/1","vlo":"3:0:1"}]`},
		{name: "objlnk empty", in: `[{"n":"/3/0/1","vlo":":"}]`},
		// Values.
		{name: "no value", in: `[{"n":"/3/0/1"}]`},
		{name: "two values", in: `[{"n":"/3/0/1","v":1,"vs":"1"}]`},
		{name: "sum", in: `[{"n":"/3/0/1","s":1}]`},
		{name: "sum and value", in: `[{"n":"/3/0/1","v":1,"s":1}]`},
		{name: "base value", in: `[{"bv":1,"n":"/3/0/1","v":1}]`},
		{name: "must understand", in: `[{"n":"/3/0/1","v":1,"x_":1}]`},
		{name: "must understand base", in: `[{"bn_":"/","n":"/3/0/1","v":1}]`},
		{name: "boolean as integer", base: lwm2m.P(1, 0), in: `[{"n":"/1/0/2","vb":true}]`},
		{name: "fraction as integer", base: lwm2m.P(1, 0), in: `[{"n":"/1/0/2","v":1.5}]`},
		{name: "negative as unsigned", base: lwm2m.P(1, 0), in: `[{"n":"/1/0/3","v":-1}]`},
		{name: "number as string", base: lwm2m.P(1, 0), in: `[{"n":"/1/0/1","v":1}]`},
		{name: "string as opaque", base: lwm2m.P(1, 0), in: `[{"n":"/1/0/6","vs":"AA=="}]`},
		{name: "string as objlnk", base: lwm2m.P(1, 0), in: `[{"n":"/1/0/8","vs":"3:0"}]`},
		{name: "float as time", base: lwm2m.P(1, 0), in: `[{"n":"/1/0/7","v":1.5}]`},
		// B28: names and paths.
		{name: "no name", in: `[{"v":1}]`},
		{name: "relative name without base name", in: `[{"n":"1","v":1}]`},
		{name: "relative path", in: `[{"n":"3/0/1","v":1}]`},
		{name: "five levels", in: `[{"bn":"/3/0/","n":"1/2/3","v":1}]`, path: true},
		{name: "dot dot", in: `[{"bn":"/3/0/","n":"../1","v":1}]`, path: true},
		{name: "dot dot inside", in: `[{"n":"/3/../0/1","v":1}]`, path: true},
		{name: "non-numeric", in: `[{"n":"/3/a/1","v":1}]`, path: true},
		{name: "trailing slash", in: `[{"n":"/3/0/1/","v":1}]`, path: true},
		{name: "double slash", in: `[{"n":"//3/0/1","v":1}]`, path: true},
		{name: "leading zero", in: `[{"n":"/3/00/1","v":1}]`, path: true},
		{name: "id 65535", in: `[{"n":"/3/0/65535","v":1}]`, path: true},
		{name: "id too large", in: `[{"n":"/3/0/99999999999","v":1}]`, path: true},
		{name: "long name", in: `[{"n":"/3/0/` + strings.Repeat("1", 300) + `","v":1}]`, path: true},
		{name: "instance path", in: `[{"n":"/3/0","v":1}]`},
		{name: "object path", in: `[{"n":"/3","v":1}]`},
		{name: "base name persists into bad path", in: `[{"bn":"/3/0/2/","n":"0","v":1},{"n":"0/1","v":1}]`, path: true},
		{name: "not under base", base: lwm2m.P(3, 0), in: `[{"n":"/3/1/1","v":1}]`},
		{name: "reserved base id", base: lwm2m.P(65535), in: `[]`, path: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := senml.DecodeJSON(tt.base, []byte(tt.in), testTypes)
			if !errors.Is(err, senml.ErrFormat) {
				t.Fatalf("DecodeJSON = %v, %v; want ErrFormat", recs, err)
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
				rec(lwm2m.P(9, 2, 19), lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: `</3/0>;ct=11543`}),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := senml.EncodeJSON(tt.base, tt.recs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := senml.DecodeJSON(tt.base, b, func(p lwm2m.Path) lwm2m.Type {
				if p.Obj() == 3 {
					return deviceTypes(p)
				}
				return testTypes(p)
			})
			if err != nil {
				t.Fatalf("DecodeJSON(%s): %v", b, err)
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

func FuzzDecodeJSON(f *testing.F) {
	seeds := []struct {
		in    string
		depth uint8
		ids   [4]uint16
	}{
		{deviceJSON, 2, [4]uint16{3, 0}},
		{deviceJSON, 0, [4]uint16{}},
		{`[{"bn":"/3/0/","n":"9","v":100},{"bn":"/1/0/","n":"1","v":86400}]`, 0, [4]uint16{}},
		{`[{"bn":"/1/0/","bt":1.7e9,"bu":"s","bver":10,"n":"1","vs":"x","t":-5,"x":"y"}]`, 1, [4]uint16{1}},
		{`[{"n":"/1/0/4","v":-0.0},{"n":"/1/0/14","v":1e+21},{"n":"/1/0/24","v":18446744073709551615}]`, 2, [4]uint16{1, 0}},
		{`[{"n":"/1/0/6","vd":"+/8="},{"n":"/1/0/16","vd":"-_8"},{"n":"/1/0/26","vd":""}]`, 2, [4]uint16{1, 0}},
		{`[{"n":"/1/0/8","vlo":"3:0"},{"n":"/1/0/5","vb":true},{"n":"/1/0/9","vs":"</3>"}]`, 2, [4]uint16{1, 0}},
		{`[{"n":"/1/0/7/0","v":1700000000},{"n":"/1/0/7/1","v":-1}]`, 3, [4]uint16{1, 0, 7}},
		{`[{"n":"/1/0/3/1","v":5}]`, 4, [4]uint16{1, 0, 3, 1}},
		{`[{"n":"/3/0/1","v":1e400}]`, 0, [4]uint16{}},
		{`[{"bt":1.7e308,"n":"/3/0/1","v":1,"t":1.7e308}]`, 0, [4]uint16{}},
		{`[{"n":"/3/0/1","v":1,"v":2}]`, 0, [4]uint16{}},
		{`[{"bn":"/3/0/","n":"../1","v":1}]`, 0, [4]uint16{}},
		{`[{"bn":"/3/0/","n":"1/2/3","v":1}]`, 0, [4]uint16{}},
		{`[{"n":"/3/0/1","vd":"QR"}]`, 0, [4]uint16{}},
		{`[{"n":"/3/0/1","v":1,"x_":1}]`, 0, [4]uint16{}},
		{`[{"n":"/3/0/1","v":{}}]`, 0, [4]uint16{}},
		{`[{"n":"/3/0/1`, 0, [4]uint16{}},
		{`[{"v":1}]`, 0, [4]uint16{}},
		{strings.Repeat("[", 100), 0, [4]uint16{}},
		{``, 0, [4]uint16{}},
	}
	for _, s := range seeds {
		f.Add([]byte(s.in), s.depth, s.ids[0], s.ids[1], s.ids[2], s.ids[3], true)
		f.Add([]byte(s.in), s.depth, s.ids[0], s.ids[1], s.ids[2], s.ids[3], false)
	}
	f.Fuzz(func(t *testing.T, in []byte, depth uint8, o, i, r, ri uint16, typed bool) {
		base := lwm2m.P([]uint16{o, i, r, ri}[:depth%5]...)
		typeOf := testTypes
		if !typed {
			typeOf = nil
		}
		recs, err := senml.DecodeJSON(base, in, typeOf)
		if err != nil {
			if !errors.Is(err, senml.ErrFormat) {
				t.Fatalf("DecodeJSON error %v does not wrap ErrFormat", err)
			}
			if len(in) > senml.MaxSize && !errors.Is(err, senml.ErrTooLarge) {
				t.Fatalf("DecodeJSON of %d bytes: %v, want ErrTooLarge", len(in), err)
			}
			return
		}
		// Each record costs at least `{"v":0}` and a separator.
		if len(recs) > len(in)/8 {
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
		out, err := senml.EncodeJSON(base, recs)
		if err != nil {
			t.Fatalf("EncodeJSON of decoded records: %v", err)
		}
		again, err := senml.DecodeJSON(base, out, typeOf)
		if err != nil {
			t.Fatalf("DecodeJSON of re-encoded %s: %v", out, err)
		}
		if !equalRecords(recs, again) {
			t.Fatalf("round trip changed records:\n%v\n%v", recs, again)
		}
		out2, err := senml.EncodeJSON(base, again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding not canonical:\n%s\n%s (%v)", out, out2, err)
		}
	})
}
