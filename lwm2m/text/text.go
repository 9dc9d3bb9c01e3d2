package text

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/avc-agent/avc/lwm2m"
)

// MaxSize is the largest payload, in bytes, that [Decode] accepts.
const MaxSize = 64 << 10

// ErrFormat reports a malformed plain text value; every error [Decode]
// returns wraps it.
var ErrFormat = errors.New("text: malformed")

// ErrTooLarge reports a payload larger than [MaxSize]; it wraps [ErrFormat].
var ErrTooLarge = fmt.Errorf("%w: payload too large", ErrFormat)

// ErrEncode reports a value that [Encode] cannot represent: a NaN or
// infinite float, a string that is not UTF-8 or holds a NUL, or a value of
// type none or of an unknown type.
var ErrEncode = errors.New("text: cannot encode")

// Encode returns the plain text form of v.
//
// # Notes
//
//   - Integers and times are decimal, unsigned integers decimal, floats the
//     shortest decimal that parses back to the same float64 (with an
//     exponent when that is shorter: "1e+21"), booleans "0" or "1",
//     strings and core links as they are, opaque values standard base64
//     with padding and object links "3:0".
//   - Errors wrap [ErrEncode]; they are the values [Decode] would reject.
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.1.
func Encode(v lwm2m.Value) ([]byte, error) {
	switch v.Type {
	case lwm2m.TypeInteger, lwm2m.TypeTime:
		return strconv.AppendInt(nil, v.Int, 10), nil
	case lwm2m.TypeUnsigned:
		return strconv.AppendUint(nil, v.Uint, 10), nil
	case lwm2m.TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return nil, fmt.Errorf("%w: float %v", ErrEncode, v.Float)
		}
		return strconv.AppendFloat(nil, v.Float, 'g', -1, 64), nil
	case lwm2m.TypeBoolean:
		if v.Bool {
			return []byte("1"), nil
		}
		return []byte("0"), nil
	case lwm2m.TypeString, lwm2m.TypeCoreLink:
		if err := checkString(v.Str); err != nil {
			return nil, fmt.Errorf("%w: %s %w", ErrEncode, v.Type, err)
		}
		return []byte(v.Str), nil
	case lwm2m.TypeOpaque:
		return base64.StdEncoding.AppendEncode(nil, v.Bytes), nil
	case lwm2m.TypeObjlnk:
		return []byte(v.Objlnk.String()), nil
	}
	return nil, fmt.Errorf("%w: value of type %s", ErrEncode, v.Type)
}

// Decode parses b as a plain text value of type t. [lwm2m.TypeNone] and
// types this package does not know decode as [lwm2m.TypeString].
//
// # Notes
//
//   - Integers and times: an optional "-" and decimal digits within int64.
//     Unsigned: decimal digits within uint64. Floats: an optional "-",
//     digits with an optional fraction and an optional exponent, within
//     float64 (no NaN, infinities or hexadecimal). Booleans: "0", "1",
//     "true" or "false". Opaque: standard base64 with padding. Object
//     links: "obj:inst" with IDs 0..65535. Strings and core links: valid
//     UTF-8 without NUL.
//   - Rejected with an error wrapping [ErrFormat]: anything else, including
//     white space or other bytes around a value, and payloads over
//     [MaxSize] ([ErrTooLarge]).
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.1.
func Decode(b []byte, t lwm2m.Type) (lwm2m.Value, error) {
	if len(b) > MaxSize {
		return lwm2m.Value{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	s := string(b)
	switch t {
	case lwm2m.TypeInteger, lwm2m.TypeTime:
		if !isDigits(strings.TrimPrefix(s, "-")) {
			return lwm2m.Value{}, fmt.Errorf("%w: %s %q", ErrFormat, t, trunc(s))
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return lwm2m.Value{}, fmt.Errorf("%w: %s %q out of range", ErrFormat, t, trunc(s))
		}
		return lwm2m.Value{Type: t, Int: i}, nil
	case lwm2m.TypeUnsigned:
		if !isDigits(s) {
			return lwm2m.Value{}, fmt.Errorf("%w: unsigned %q", ErrFormat, trunc(s))
		}
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return lwm2m.Value{}, fmt.Errorf("%w: unsigned %q out of range", ErrFormat, trunc(s))
		}
		return lwm2m.Uint(u), nil
	case lwm2m.TypeFloat:
		if !isDecimal(s) {
			return lwm2m.Value{}, fmt.Errorf("%w: float %q", ErrFormat, trunc(s))
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return lwm2m.Value{}, fmt.Errorf("%w: float %q out of range", ErrFormat, trunc(s))
		}
		return lwm2m.Float(f), nil
	case lwm2m.TypeBoolean:
		switch s {
		case "0", "false":
			return lwm2m.Bool(false), nil
		case "1", "true":
			return lwm2m.Bool(true), nil
		}
		return lwm2m.Value{}, fmt.Errorf("%w: boolean %q", ErrFormat, trunc(s))
	case lwm2m.TypeOpaque:
		// encoding/base64 skips CR and LF; they are not base64.
		if bytes.ContainsAny(b, "\r\n") {
			return lwm2m.Value{}, fmt.Errorf("%w: bad base64: line break", ErrFormat)
		}
		d, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return lwm2m.Value{}, fmt.Errorf("%w: bad base64: %w", ErrFormat, err)
		}
		return lwm2m.Opaque(d), nil
	case lwm2m.TypeObjlnk:
		o, i, ok := strings.Cut(s, ":")
		obj, err1 := parseID(o)
		inst, err2 := parseID(i)
		if !ok || err1 != nil || err2 != nil {
			return lwm2m.Value{}, fmt.Errorf("%w: objlnk %q", ErrFormat, trunc(s))
		}
		return lwm2m.Link(obj, inst), nil
	case lwm2m.TypeCoreLink:
		if err := checkString(s); err != nil {
			return lwm2m.Value{}, fmt.Errorf("%w: corelnk %w", ErrFormat, err)
		}
		return lwm2m.Value{Type: lwm2m.TypeCoreLink, Str: s}, nil
	}
	if err := checkString(s); err != nil {
		return lwm2m.Value{}, fmt.Errorf("%w: string %w", ErrFormat, err)
	}
	return lwm2m.String(s), nil
}

// checkString rejects strings that are not UTF-8 or hold a NUL, which C
// consumers would silently truncate at (reliability catalogue B26).
func checkString(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Errorf("holds a NUL at offset %d", i)
	}
	return nil
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isDecimal reports whether s is a decimal float: an optional "-", digits
// with an optional fraction (at least one digit in all) and an optional
// exponent.
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	mant := s
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		exp := s[i+1:]
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		if !isDigits(exp) {
			return false
		}
	}
	whole, frac, dot := strings.Cut(mant, ".")
	if !dot {
		return isDigits(whole)
	}
	return whole+frac != "" && (whole == "" || isDigits(whole)) && (frac == "" || isDigits(frac))
}

// parseID parses 1 to 5 decimal digits with a value up to 65535.
func parseID(s string) (uint16, error) {
	if len(s) > 5 || !isDigits(s) {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// trunc shortens s for an error message.
func trunc(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
