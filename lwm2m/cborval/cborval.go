package cborval

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/avc-agent/avc/lwm2m"
)

// MaxSize is the largest payload, in bytes, that [Decode] accepts.
const MaxSize = 64 << 10

// ErrFormat reports a malformed or unsupported CBOR value; every error
// [Decode] returns wraps it.
var ErrFormat = errors.New("cborval: malformed")

// ErrTooLarge reports a payload larger than [MaxSize]; it wraps [ErrFormat].
var ErrTooLarge = fmt.Errorf("%w: payload too large", ErrFormat)

// ErrEncode reports a value that [Encode] cannot represent: no type or an
// unknown one, a non-finite float or a string that is not UTF-8.
var ErrEncode = errors.New("cborval: cannot encode")

// Tags accepted at the top level (RFC 8949 §3.4).
const (
	tagEpochTime       = 1 // seconds since 1970 as an integer or float
	tagDecimalFraction = 4 // [exponent, mantissa]
)

// decOptions are shared by both decoding modes. A value needs at most two
// levels (tag 4 and its array); indefinite-length strings are allowed as
// their chunks count against MaxSize like any other byte.
var decOptions = cbor.DecOptions{
	DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	MaxNestedLevels:  4,
	MaxArrayElements: 16,
	MaxMapPairs:      16,
	IndefLength:      cbor.IndefLengthAllowed,
	IntDec:           cbor.IntDecConvertNone,
	MapKeyByteString: cbor.MapKeyByteStringForbidden,
	UTF8:             cbor.UTF8RejectInvalid,
	NaN:              cbor.NaNDecodeForbidden,
	Inf:              cbor.InfDecodeForbidden,
	BignumTag:        cbor.BignumTagForbidden,
}

// plainDec decodes untagged items; tagDec reads the one tag at the top.
var (
	plainDec, plainDecErr = withTags(decOptions, cbor.TagsForbidden).DecMode()
	tagDec, tagDecErr     = withTags(decOptions, cbor.TagsAllowed).DecMode()
)

// enc encodes deterministically.
var enc, encErr = cbor.EncOptions{
	Sort:          cbor.SortCoreDeterministic,
	ShortestFloat: cbor.ShortestFloat16,
	NaNConvert:    cbor.NaNConvertReject,
	InfConvert:    cbor.InfConvertReject,
	IndefLength:   cbor.IndefLengthForbidden,
	NilContainers: cbor.NilContainerAsEmpty,
	TagsMd:        cbor.TagsAllowed,
}.EncMode()

func withTags(o cbor.DecOptions, m cbor.TagsMode) cbor.DecOptions {
	o.TagsMd = m
	return o
}

// Encode encodes v as one CBOR data item.
//
// # Notes
//
//   - Integers and times are CBOR integers, times wrapped in tag 1;
//     unsigned integers are major type 0; floats take the shortest of half,
//     single or double precision that holds them exactly; strings and core
//     links are text strings; opaque values byte strings (nil is the empty
//     byte string); object links the text "obj:inst".
//   - Errors wrap [ErrEncode].
//
// See RFC 8949 §3 and §3.4.2.
func Encode(v lwm2m.Value) ([]byte, error) {
	if err := encErr; err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	var x any
	switch v.Type {
	case lwm2m.TypeInteger:
		x = v.Int
	case lwm2m.TypeUnsigned:
		x = v.Uint
	case lwm2m.TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return nil, fmt.Errorf("%w: float %v", ErrEncode, v.Float)
		}
		x = v.Float
	case lwm2m.TypeBoolean:
		x = v.Bool
	case lwm2m.TypeString, lwm2m.TypeCoreLink:
		if !utf8.ValidString(v.Str) {
			return nil, fmt.Errorf("%w: %s is not valid UTF-8", ErrEncode, v.Type)
		}
		x = v.Str
	case lwm2m.TypeOpaque:
		b := v.Bytes
		if b == nil {
			b = []byte{}
		}
		x = b
	case lwm2m.TypeTime:
		x = cbor.Tag{Number: tagEpochTime, Content: v.Int}
	case lwm2m.TypeObjlnk:
		x = v.Objlnk.String()
	default:
		return nil, fmt.Errorf("%w: value of type %s", ErrEncode, v.Type)
	}
	b, err := enc.Marshal(x)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return b, nil
}

// Decode decodes b, which must be exactly one CBOR data item, as a value of
// type t.
//
// # Notes
//
//   - Without a type (t is [lwm2m.TypeNone] or unknown) the item decides:
//     an integer that fits int64 is [lwm2m.TypeInteger] and a larger one
//     [lwm2m.TypeUnsigned]; a float of any width or a decimal fraction
//     (tag 4) is [lwm2m.TypeFloat]; tag 1 is [lwm2m.TypeTime]; a text
//     string is [lwm2m.TypeString] and a byte string [lwm2m.TypeOpaque].
//   - With a type the value is then converted with [lwm2m.Value.Convert],
//     which keeps only lossless conversions; [lwm2m.TypeObjlnk] needs a
//     text string "obj:inst" with IDs 0..65535 and [lwm2m.TypeOpaque] a
//     byte string.
//   - Tag 1 must hold an integer, or a float without a fraction, within
//     int64. Tag 4 must hold two integers within int64 and uint64.
//   - Errors wrap [ErrFormat]; input over [MaxSize] yields [ErrTooLarge].
//
// See RFC 8949 §3, §3.4.2 and §3.4.4.
func Decode(b []byte, t lwm2m.Type) (lwm2m.Value, error) {
	if len(b) > MaxSize {
		return lwm2m.Value{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	v, err := decodeItem(b)
	if err != nil {
		return lwm2m.Value{}, err
	}
	return convert(v, t)
}

// decodeItem decodes b to the value type its CBOR item suggests.
func decodeItem(b []byte) (lwm2m.Value, error) {
	if err := errors.Join(plainDecErr, tagDecErr); err != nil {
		return lwm2m.Value{}, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	const majorTag = 6
	if len(b) == 0 || b[0]>>5 != majorTag {
		x, err := plain(b)
		if err != nil {
			return lwm2m.Value{}, err
		}
		return natural(x)
	}
	var tag cbor.RawTag
	if err := tagDec.Unmarshal(b, &tag); err != nil {
		return lwm2m.Value{}, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	x, err := plain(tag.Content)
	if err != nil {
		return lwm2m.Value{}, fmt.Errorf("tag %d: %w", tag.Number, err)
	}
	switch tag.Number {
	case tagEpochTime:
		return epochTime(x)
	case tagDecimalFraction:
		return decimalFraction(x)
	}
	return lwm2m.Value{}, fmt.Errorf("%w: tag %d not supported", ErrFormat, tag.Number)
}

// plain decodes one untagged CBOR item.
func plain(b []byte) (any, error) {
	var x any
	if err := plainDec.Unmarshal(b, &x); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return x, nil
}

// natural maps a decoded untagged item to a value.
func natural(x any) (lwm2m.Value, error) {
	switch x := x.(type) {
	case uint64:
		if x <= math.MaxInt64 {
			return lwm2m.Int(int64(x)), nil
		}
		return lwm2m.Uint(x), nil
	case int64:
		return lwm2m.Int(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return lwm2m.Value{}, fmt.Errorf("%w: float %v", ErrFormat, x)
		}
		return lwm2m.Float(x), nil
	case bool:
		return lwm2m.Bool(x), nil
	case string:
		return lwm2m.String(x), nil
	case []byte:
		return lwm2m.Opaque(x), nil
	case big.Int, *big.Int:
		return lwm2m.Value{}, fmt.Errorf("%w: integer out of range", ErrFormat)
	}
	return lwm2m.Value{}, fmt.Errorf("%w: %s is not a value", ErrFormat, describe(x))
}

// epochTime converts the content of tag 1.
func epochTime(x any) (lwm2m.Value, error) {
	var sec int64
	switch x := x.(type) {
	case uint64:
		if x > math.MaxInt64 {
			return lwm2m.Value{}, fmt.Errorf("%w: time %d out of range", ErrFormat, x)
		}
		sec = int64(x)
	case int64:
		sec = x
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return lwm2m.Value{}, fmt.Errorf("%w: time %v is not whole seconds within int64", ErrFormat, x)
		}
		sec = int64(x)
	default:
		return lwm2m.Value{}, fmt.Errorf("%w: time is %s, not a number", ErrFormat, describe(x))
	}
	return lwm2m.Value{Type: lwm2m.TypeTime, Int: sec}, nil
}

// decimalFraction converts the content of tag 4, [exponent, mantissa], to
// the nearest float.
func decimalFraction(x any) (lwm2m.Value, error) {
	a, ok := x.([]any)
	if !ok || len(a) != 2 {
		return lwm2m.Value{}, fmt.Errorf("%w: decimal fraction is not [exponent, mantissa]", ErrFormat)
	}
	var s [2]string
	for i, e := range a {
		switch e := e.(type) {
		case uint64:
			s[i] = strconv.FormatUint(e, 10)
		case int64:
			s[i] = strconv.FormatInt(e, 10)
		default:
			return lwm2m.Value{}, fmt.Errorf("%w: decimal fraction with %s", ErrFormat, describe(e))
		}
	}
	f, err := strconv.ParseFloat(s[1]+"e"+s[0], 64)
	if err != nil || math.IsInf(f, 0) {
		return lwm2m.Value{}, fmt.Errorf("%w: decimal fraction %se%s out of range", ErrFormat, s[1], s[0])
	}
	return lwm2m.Float(f), nil
}

// convert converts v to type t (see [Decode]).
func convert(v lwm2m.Value, t lwm2m.Type) (lwm2m.Value, error) {
	switch {
	case t == lwm2m.TypeNone || t > lwm2m.TypeCoreLink || t == v.Type:
		return v, nil
	case t == lwm2m.TypeObjlnk:
		if v.Type != lwm2m.TypeString {
			return lwm2m.Value{}, fmt.Errorf("%w: %s is not an object link", ErrFormat, v.Type)
		}
		l, err := parseObjlnk(v.Str)
		if err != nil {
			return lwm2m.Value{}, err
		}
		return lwm2m.Value{Type: lwm2m.TypeObjlnk, Objlnk: l}, nil
	}
	c, err := v.Convert(t)
	if err != nil {
		return lwm2m.Value{}, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return c, nil
}

// parseObjlnk parses "obj:inst" with both IDs in 0..65535.
func parseObjlnk(s string) (lwm2m.Objlnk, error) {
	o, i, ok := strings.Cut(s, ":")
	obj, err1 := parseID(o)
	inst, err2 := parseID(i)
	if !ok || err1 != nil || err2 != nil {
		return lwm2m.Objlnk{}, fmt.Errorf("%w: object link %q", ErrFormat, s)
	}
	return lwm2m.Objlnk{Obj: obj, Inst: inst}, nil
}

// parseID parses 1 to 5 decimal digits with a value up to 65535.
func parseID(s string) (uint16, error) {
	if len(s) == 0 || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// describe names the kind of a decoded CBOR item for error messages.
func describe(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case map[any]any:
		return "map"
	case cbor.SimpleValue:
		return fmt.Sprintf("simple value %d", x)
	case uint64, int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case string:
		return "text string"
	case []byte:
		return "byte string"
	}
	return fmt.Sprintf("%T", x)
}
