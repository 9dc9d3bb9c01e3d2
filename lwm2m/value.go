package lwm2m

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Type is an LwM2M resource data type (Core TS Appendix C).
type Type uint8

// Resource data types.
const (
	TypeNone Type = iota // executable resources and unknown types
	TypeString
	TypeInteger
	TypeUnsigned
	TypeFloat
	TypeBoolean
	TypeOpaque
	TypeTime
	TypeObjlnk
	TypeCoreLink
)

var typeNames = [...]string{"none", "string", "integer", "unsigned", "float", "boolean", "opaque", "time", "objlnk", "corelnk"}

// String returns the type's name as used in the OMA registry.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Objlnk is an object link value: an object ID and an instance ID.
type Objlnk struct {
	Obj, Inst uint16
}

// String formats the link as "3:0".
func (o Objlnk) String() string { return fmt.Sprintf("%d:%d", o.Obj, o.Inst) }

// Value is a typed resource value. Exactly the field that matches Type is
// meaningful; the zero Value has TypeNone.
type Value struct {
	Type   Type
	Int    int64   // TypeInteger, TypeTime (Unix seconds)
	Uint   uint64  // TypeUnsigned
	Float  float64 // TypeFloat
	Bool   bool    // TypeBoolean
	Str    string  // TypeString, TypeCoreLink
	Bytes  []byte  // TypeOpaque
	Objlnk Objlnk  // TypeObjlnk
}

// String makes a string value.
func String(s string) Value { return Value{Type: TypeString, Str: s} }

// Int makes an integer value.
func Int(i int64) Value { return Value{Type: TypeInteger, Int: i} }

// Uint makes an unsigned integer value.
func Uint(u uint64) Value { return Value{Type: TypeUnsigned, Uint: u} }

// Float makes a float value.
func Float(f float64) Value { return Value{Type: TypeFloat, Float: f} }

// Bool makes a boolean value.
func Bool(b bool) Value { return Value{Type: TypeBoolean, Bool: b} }

// Opaque makes an opaque value; it keeps b without copying.
func Opaque(b []byte) Value { return Value{Type: TypeOpaque, Bytes: b} }

// Time makes a time value with one-second resolution.
func Time(t time.Time) Value { return Value{Type: TypeTime, Int: t.Unix()} }

// Link makes an object link value.
func Link(obj, inst uint16) Value { return Value{Type: TypeObjlnk, Objlnk: Objlnk{obj, inst}} }

// Convert returns v as type t when the conversion loses nothing (for example
// an integer 5 as unsigned 5, or a float 3.0 as integer 3). Opaque, string
// and core-link values convert only to themselves, except string to corelnk
// and back.
func (v Value) Convert(t Type) (Value, error) {
	if v.Type == t {
		return v, nil
	}
	bad := fmt.Errorf("lwm2m: cannot convert %s %s to %s", v.Type, v.String(), t)
	switch t {
	case TypeInteger, TypeTime:
		var i int64
		switch v.Type {
		case TypeInteger, TypeTime:
			i = v.Int
		case TypeUnsigned:
			if v.Uint > math.MaxInt64 {
				return Value{}, bad
			}
			i = int64(v.Uint)
		case TypeFloat:
			if v.Float != math.Trunc(v.Float) || v.Float < -(1<<63) || v.Float >= 1<<63 {
				return Value{}, bad
			}
			i = int64(v.Float)
		default:
			return Value{}, bad
		}
		return Value{Type: t, Int: i}, nil
	case TypeUnsigned:
		switch v.Type {
		case TypeInteger, TypeTime:
			if v.Int < 0 {
				return Value{}, bad
			}
			return Uint(uint64(v.Int)), nil
		case TypeFloat:
			if v.Float != math.Trunc(v.Float) || v.Float < 0 || v.Float >= 1<<64 {
				return Value{}, bad
			}
			return Uint(uint64(v.Float)), nil
		}
	case TypeFloat:
		switch v.Type {
		case TypeInteger, TypeTime:
			return Float(float64(v.Int)), nil
		case TypeUnsigned:
			return Float(float64(v.Uint)), nil
		}
	case TypeString:
		if v.Type == TypeCoreLink {
			return String(v.Str), nil
		}
	case TypeCoreLink:
		if v.Type == TypeString {
			return Value{Type: TypeCoreLink, Str: v.Str}, nil
		}
	}
	return Value{}, bad
}

// String formats the value the way the text/plain content format does
// (opaque values are shown as hex here; text/plain uses base64).
func (v Value) String() string {
	switch v.Type {
	case TypeString, TypeCoreLink:
		return v.Str
	case TypeInteger, TypeTime:
		return strconv.FormatInt(v.Int, 10)
	case TypeUnsigned:
		return strconv.FormatUint(v.Uint, 10)
	case TypeFloat:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case TypeBoolean:
		if v.Bool {
			return "1"
		}
		return "0"
	case TypeOpaque:
		return fmt.Sprintf("%x", v.Bytes)
	case TypeObjlnk:
		return v.Objlnk.String()
	}
	return ""
}

// Record is one value at a full resource or resource-instance path. Content
// format codecs encode and decode lists of records.
type Record struct {
	Path  Path
	Value Value
}

// CheckSorted rejects, in records sorted by path, a path given twice and a
// resource given both as a single value and as resource instances.
func CheckSorted(rs []Record) error {
	for i := 1; i < len(rs); i++ {
		prev, p := rs[i-1].Path, rs[i].Path
		if prev == p {
			return fmt.Errorf("duplicate path %s", p)
		}
		if prev.Len == 3 && prev.Contains(p) {
			return fmt.Errorf("%s is both a single and a multiple resource", prev)
		}
	}
	return nil
}

// Equal reports whether v and w are the same value of the same type:
// floats compare by their bits (so NaN equals the same NaN, and 0 differs
// from -0), opaque values by content.
func (v Value) Equal(w Value) bool {
	if v.Type == TypeFloat || w.Type == TypeFloat {
		return v.Type == w.Type && math.Float64bits(v.Float) == math.Float64bits(w.Float)
	}
	return v.Type == w.Type && v.Int == w.Int && v.Uint == w.Uint && v.Bool == w.Bool &&
		v.Str == w.Str && bytes.Equal(v.Bytes, w.Bytes) && v.Objlnk == w.Objlnk
}

// RecordsEqual reports whether a and b hold the same paths with Equal
// values, in the same order.
func RecordsEqual(a, b []Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || !a[i].Value.Equal(b[i].Value) {
			return false
		}
	}
	return true
}
