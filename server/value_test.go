package server_test

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

func TestParseJSONValue(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		typ     lwm2m.Type
		want    lwm2m.Value
		wantErr bool
	}{
		{"string", `"avc"`, lwm2m.TypeString, lwm2m.String("avc"), false},
		{"integer", `-5`, lwm2m.TypeInteger, lwm2m.Int(-5), false},
		{"integer as string", `"42"`, lwm2m.TypeInteger, lwm2m.Int(42), false},
		{"integer with fraction", `1.5`, lwm2m.TypeInteger, lwm2m.Value{}, true},
		{"unsigned", `18446744073709551615`, lwm2m.TypeUnsigned, lwm2m.Uint(math.MaxUint64), false},
		{"negative unsigned", `-1`, lwm2m.TypeUnsigned, lwm2m.Value{}, true},
		{"float", `2.5`, lwm2m.TypeFloat, lwm2m.Float(2.5), false},
		{"boolean", `true`, lwm2m.TypeBoolean, lwm2m.Bool(true), false},
		{"boolean as 0", `0`, lwm2m.TypeBoolean, lwm2m.Bool(false), false},
		{"boolean from string", `"yes"`, lwm2m.TypeBoolean, lwm2m.Value{}, true},
		{"opaque", `"AQID"`, lwm2m.TypeOpaque, lwm2m.Opaque([]byte{1, 2, 3}), false},
		{"opaque not base64", `"!!"`, lwm2m.TypeOpaque, lwm2m.Value{}, true},
		{"objlnk", `"3:0"`, lwm2m.TypeObjlnk, lwm2m.Link(3, 0), false},
		{"bad objlnk", `"3"`, lwm2m.TypeObjlnk, lwm2m.Value{}, true},
		{"time as seconds", `1700000000`, lwm2m.TypeTime, lwm2m.Time(time.Unix(1700000000, 0)), false},
		{"time as RFC 3339", `"2023-11-14T22:13:20Z"`, lwm2m.TypeTime, lwm2m.Time(time.Unix(1700000000, 0)), false},
		{"untyped string", `"x"`, lwm2m.TypeNone, lwm2m.String("x"), false},
		{"untyped integer", `7`, lwm2m.TypeNone, lwm2m.Int(7), false},
		{"untyped float", `7.25`, lwm2m.TypeNone, lwm2m.Float(7.25), false},
		{"untyped boolean", `false`, lwm2m.TypeNone, lwm2m.Bool(false), false},
		{"null", `null`, lwm2m.TypeNone, lwm2m.Value{}, true},
		{"object", `{}`, lwm2m.TypeString, lwm2m.Value{}, true},
		{"string for integer", `"soon"`, lwm2m.TypeInteger, lwm2m.Value{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := server.ParseJSONValue(json.RawMessage(tt.json), tt.typ)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseJSONValue(%s, %s) error %v, want error %v", tt.json, tt.typ, err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseJSONValue(%s, %s) = %+v, want %+v", tt.json, tt.typ, got, tt.want)
			}
		})
	}
}

func TestJSONValue(t *testing.T) {
	tests := []struct {
		name string
		v    lwm2m.Value
		want string
	}{
		{"string", lwm2m.String("avc"), `"avc"`},
		{"integer", lwm2m.Int(-5), `-5`},
		{"unsigned", lwm2m.Uint(7), `7`},
		{"float", lwm2m.Float(2.5), `2.5`},
		{"infinite float", lwm2m.Float(math.Inf(1)), `"+Inf"`},
		{"boolean", lwm2m.Bool(true), `true`},
		{"opaque", lwm2m.Opaque([]byte{1, 2, 3}), `"AQID"`},
		{"objlnk", lwm2m.Link(3, 0), `"3:0"`},
		{"time", lwm2m.Time(time.Unix(1700000000, 0)), `1700000000`},
		{"none", lwm2m.Value{}, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(server.JSONValue(tt.v))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("JSONValue(%+v) = %s, want %s", tt.v, b, tt.want)
			}
		})
	}
}

// FuzzParseJSONValue checks that whatever ParseJSONValue accepts renders
// back (JSONValue) to JSON that parses to the same value.
func FuzzParseJSONValue(f *testing.F) {
	seeds := []struct {
		json string
		typ  lwm2m.Type
	}{
		{`"avc"`, lwm2m.TypeString}, {`300`, lwm2m.TypeInteger}, {`"42"`, lwm2m.TypeInteger},
		{`18446744073709551615`, lwm2m.TypeUnsigned}, {`2.5e3`, lwm2m.TypeFloat},
		{`true`, lwm2m.TypeBoolean}, {`1`, lwm2m.TypeBoolean}, {`"AQID"`, lwm2m.TypeOpaque},
		{`"3:0"`, lwm2m.TypeObjlnk}, {`"2023-11-14T22:13:20Z"`, lwm2m.TypeTime},
		{`7.0`, lwm2m.TypeNone}, {`"</3/0>"`, lwm2m.TypeCoreLink}, {`null`, lwm2m.TypeNone},
	}
	for _, s := range seeds {
		f.Add(s.json, uint8(s.typ))
	}
	f.Fuzz(func(t *testing.T, in string, typ uint8) {
		v, err := server.ParseJSONValue(json.RawMessage(in), lwm2m.Type(typ%10))
		if err != nil {
			return
		}
		if v.Type == lwm2m.TypeFloat && math.IsNaN(v.Float) {
			return
		}
		b, err := json.Marshal(server.JSONValue(v))
		if err != nil {
			t.Fatalf("render %+v: %v", v, err)
		}
		back, err := server.ParseJSONValue(b, v.Type)
		if err != nil {
			t.Fatalf("%s parsed to %+v, rendered as %s, which does not parse: %v", in, v, b, err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("%s parsed to %+v, rendered as %s, parsed back to %+v", in, v, b, back)
		}
	})
}
