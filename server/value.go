package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/avc-agent/avc/lwm2m"
)

// formatNames are the short content format names of the HTTP API.
var formatNames = map[lwm2m.ContentFormat]string{
	lwm2m.FormatText:       "text",
	lwm2m.FormatLinkFormat: "link-format",
	lwm2m.FormatOpaque:     "opaque",
	lwm2m.FormatCBOR:       "cbor",
	lwm2m.FormatSenMLJSON:  "senml-json",
	lwm2m.FormatSenMLCBOR:  "senml-cbor",
	lwm2m.FormatTLV:        "tlv",
	lwm2m.FormatJSON:       "lwm2m-json",
	lwm2m.FormatLwM2MCBOR:  "lwm2m-cbor",
}

// formatName returns the API name of f: a short name, its number for
// unknown formats, "" for FormatNone.
func formatName(f lwm2m.ContentFormat) string {
	if f == lwm2m.FormatNone {
		return ""
	}
	if n, ok := formatNames[f]; ok {
		return n
	}
	return strconv.Itoa(int(f))
}

// parseFormat parses a short name or a content format number.
func parseFormat(s string) (lwm2m.ContentFormat, error) {
	for f, n := range formatNames {
		if n == s {
			return f, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrFormat, s)
	}
	return lwm2m.ContentFormat(n), nil
}

// parseType parses a type name as printed by lwm2m.Type.String.
func parseType(s string) (lwm2m.Type, error) {
	for t := lwm2m.TypeNone; t <= lwm2m.TypeCoreLink; t++ {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown type %q", s)
}

// jsonValue renders v as a JSON-friendly Go value: strings, numbers and
// booleans as themselves, time as Unix seconds, opaque as base64, object
// links as "3:0". Non-finite floats become strings, which JSON lacks.
func jsonValue(v lwm2m.Value) any {
	switch v.Type {
	case lwm2m.TypeString, lwm2m.TypeCoreLink:
		return v.Str
	case lwm2m.TypeInteger, lwm2m.TypeTime:
		return v.Int
	case lwm2m.TypeUnsigned:
		return v.Uint
	case lwm2m.TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return strconv.FormatFloat(v.Float, 'g', -1, 64)
		}
		return v.Float
	case lwm2m.TypeBoolean:
		return v.Bool
	case lwm2m.TypeOpaque:
		return base64.StdEncoding.EncodeToString(v.Bytes)
	case lwm2m.TypeObjlnk:
		return v.Objlnk.String()
	}
	return nil
}

// parseJSONValue converts a JSON scalar to a value of type t. For
// TypeNone the type follows the JSON: string, boolean, integer or float.
func parseJSONValue(raw json.RawMessage, t lwm2m.Type) (lwm2m.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return lwm2m.Value{}, fmt.Errorf("bad value: %w", err)
	}
	bad := func() (lwm2m.Value, error) {
		return lwm2m.Value{}, fmt.Errorf("bad %s value %s", t, raw)
	}
	switch x := x.(type) {
	case string:
		switch t {
		case lwm2m.TypeString, lwm2m.TypeNone:
			return lwm2m.String(x), nil
		case lwm2m.TypeCoreLink:
			return lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: x}, nil
		case lwm2m.TypeOpaque:
			b, err := base64.StdEncoding.DecodeString(x)
			if err != nil {
				return bad()
			}
			return lwm2m.Opaque(b), nil
		case lwm2m.TypeObjlnk:
			o, i, ok := strings.Cut(x, ":")
			on, err1 := strconv.ParseUint(o, 10, 16)
			in, err2 := strconv.ParseUint(i, 10, 16)
			if !ok || err1 != nil || err2 != nil {
				return bad()
			}
			return lwm2m.Link(uint16(on), uint16(in)), nil
		case lwm2m.TypeTime:
			tm, err := time.Parse(time.RFC3339, x)
			if err != nil {
				return bad()
			}
			return lwm2m.Time(tm), nil
		case lwm2m.TypeInteger, lwm2m.TypeUnsigned, lwm2m.TypeFloat:
			return parseNumber(json.Number(x), t)
		}
	case json.Number:
		switch t {
		case lwm2m.TypeInteger, lwm2m.TypeTime, lwm2m.TypeUnsigned, lwm2m.TypeFloat:
			return parseNumber(x, t)
		case lwm2m.TypeBoolean:
			switch x {
			case "0":
				return lwm2m.Bool(false), nil
			case "1":
				return lwm2m.Bool(true), nil
			}
		case lwm2m.TypeNone:
			if i, err := x.Int64(); err == nil {
				return lwm2m.Int(i), nil
			}
			return parseNumber(x, lwm2m.TypeFloat)
		}
	case bool:
		if t == lwm2m.TypeBoolean || t == lwm2m.TypeNone {
			return lwm2m.Bool(x), nil
		}
	}
	return bad()
}

func parseNumber(n json.Number, t lwm2m.Type) (lwm2m.Value, error) {
	var (
		v   lwm2m.Value
		err error
	)
	switch t {
	case lwm2m.TypeInteger, lwm2m.TypeTime:
		var i int64
		i, err = strconv.ParseInt(string(n), 10, 64)
		v = lwm2m.Value{Type: t, Int: i}
	case lwm2m.TypeUnsigned:
		var u uint64
		u, err = strconv.ParseUint(string(n), 10, 64)
		v = lwm2m.Uint(u)
	case lwm2m.TypeFloat:
		var f float64
		f, err = strconv.ParseFloat(string(n), 64)
		v = lwm2m.Float(f)
	}
	if err != nil {
		return lwm2m.Value{}, fmt.Errorf("bad %s value %s", t, n)
	}
	return v, nil
}
