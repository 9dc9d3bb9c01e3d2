package senml

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/avc-agent/avc/lwm2m"
)

// SenML-CBOR labels (RFC 8428 §6, Table 6) and the LwM2M object link label
// (OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.5), which has no integer label.
const (
	labelBaseVersion = -1 // bver
	labelBaseName    = -2 // bn
	labelBaseTime    = -3 // bt
	labelBaseUnit    = -4 // bu
	labelBaseValue   = -5 // bv
	labelBaseSum     = -6 // bs
	labelName        = 0  // n
	labelUnit        = 1  // u
	labelValue       = 2  // v
	labelString      = 3  // vs
	labelBool        = 4  // vb
	labelSum         = 5  // s
	labelTime        = 6  // t
	labelUpdateTime  = 7  // ut
	labelData        = 8  // vd
	labelObjlnk      = "vlo"
)

// intLabels maps the SenML-JSON names that have a CBOR integer label to it.
var intLabels = map[string]int64{
	"bver": labelBaseVersion, "bn": labelBaseName, "bt": labelBaseTime,
	"bu": labelBaseUnit, "bv": labelBaseValue, "bs": labelBaseSum,
	"n": labelName, "u": labelUnit, "v": labelValue, "vs": labelString,
	"vb": labelBool, "s": labelSum, "t": labelTime, "ut": labelUpdateTime,
	"vd": labelData,
}

// tagDecimalFraction is the CBOR tag of a decimal fraction [exponent,
// mantissa] (RFC 8949 §3.4.4), which RFC 8428 §6 allows for numbers.
const tagDecimalFraction = 4

// cborMaxLabels bounds the labels of one SenML-CBOR record: the 16 known
// ones and a few extensions.
const cborMaxLabels = 64

// cborDec decodes SenML-CBOR. A payload is an array (level 1) of maps
// (level 2); a decimal fraction adds an array (level 3). 4 is the smallest
// nesting limit the library accepts. Indefinite lengths are allowed, because constrained encoders stream
// them, and bounded like definite ones by the element and pair limits and
// by MaxSize. Only tag 4 is accepted, by cborNumber; other tags decode to
// values that no field accepts.
var cborDec, cborDecErr = cbor.DecOptions{
	DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	MaxNestedLevels:  4,
	MaxArrayElements: MaxSize,
	MaxMapPairs:      cborMaxLabels,
	IndefLength:      cbor.IndefLengthAllowed,
	TagsMd:           cbor.TagsAllowed,
	IntDec:           cbor.IntDecConvertNone,
	MapKeyByteString: cbor.MapKeyByteStringForbidden,
	UTF8:             cbor.UTF8RejectInvalid,
	NaN:              cbor.NaNDecodeForbidden,
	Inf:              cbor.InfDecodeForbidden,
	BignumTag:        cbor.BignumTagForbidden,
}.DecMode()

// cborEnc encodes SenML-CBOR: definite lengths, struct fields in their
// declared order (bn, n, then the value), floats in the shortest form that
// keeps their value.
var cborEnc, cborEncErr = cbor.EncOptions{
	Sort:          cbor.SortNone,
	ShortestFloat: cbor.ShortestFloat16,
	NaNConvert:    cbor.NaNConvertReject,
	InfConvert:    cbor.InfConvertReject,
	IndefLength:   cbor.IndefLengthForbidden,
	NilContainers: cbor.NilContainerAsEmpty,
	TagsMd:        cbor.TagsForbidden,
}.EncMode()

// cborRecord is one SenML-CBOR record as written by [EncodeCBOR]; exactly
// one of the value fields is set.
type cborRecord struct {
	BaseName *string         `cbor:"-2,keyasint,omitempty"`
	BaseTime *int64          `cbor:"-3,keyasint,omitempty"`
	Name     string          `cbor:"0,keyasint"`
	Value    cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	String   *string         `cbor:"3,keyasint,omitempty"`
	Bool     *bool           `cbor:"4,keyasint,omitempty"`
	Data     *[]byte         `cbor:"8,keyasint,omitempty"`
	Objlnk   *string         `cbor:"vlo,omitempty"`
}

// EncodeCBOR encodes recs, which must be values at resource paths (Len 3) or
// resource-instance paths (Len 4) under base, as a SenML-CBOR array.
//
// # Notes
//
//   - Names, base name and order are those of [EncodeJSON]: the first
//     record carries the base name (label -2) when base is shorter than a
//     resource, and records are sorted by path.
//   - Each record is a map with the base name first, then the name (0),
//     then one value: integers, unsigned integers and times as CBOR
//     integers and floats as CBOR floats in the shortest of half, single
//     or double precision that keeps the value exactly, all in "v" (2);
//     strings and core links in "vs" (3), booleans in "vb" (4), opaque
//     values as a byte string in "vd" (8) and object links as text "3:0"
//     under the text label "vlo".
//   - Lengths are definite. Errors wrap [ErrEncode].
//
// See RFC 8428 §6 and OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.5.
func EncodeCBOR(base lwm2m.Path, recs []lwm2m.Record) ([]byte, error) {
	return encodeCBOR(base, recs, nil)
}

// EncodeCBORAt is EncodeCBOR with a timestamp: the first record carries
// the base time (label -3) at, in whole Unix seconds, so that every value
// is dated at (RFC 8428 §4.5.3). The LwM2M Send operation uses it.
func EncodeCBORAt(base lwm2m.Path, recs []lwm2m.Record, at time.Time) ([]byte, error) {
	bt := at.Unix()
	return encodeCBOR(base, recs, &bt)
}

func encodeCBOR(base lwm2m.Path, recs []lwm2m.Record, bt *int64) ([]byte, error) {
	if err := cborEncErr; err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	rs, bn, err := prepare(base, recs)
	if err != nil {
		return nil, err
	}
	out := make([]cborRecord, len(rs))
	for i, r := range rs {
		c := &out[i]
		if i == 0 && bn != "" {
			c.BaseName = &bn
		}
		if i == 0 {
			c.BaseTime = bt
		}
		c.Name = strings.TrimPrefix(r.Path.String(), bn)
		if err := c.setValue(r.Value); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Path, err)
		}
	}
	b, err := cborEnc.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return b, nil
}

// setValue sets the value field of c from v.
func (c *cborRecord) setValue(v lwm2m.Value) error {
	var num any
	switch v.Type {
	case lwm2m.TypeInteger, lwm2m.TypeTime:
		num = v.Int
	case lwm2m.TypeUnsigned:
		num = v.Uint
	case lwm2m.TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return fmt.Errorf("%w: float %v", ErrEncode, v.Float)
		}
		num = v.Float
	case lwm2m.TypeBoolean:
		c.Bool = &v.Bool
	case lwm2m.TypeString, lwm2m.TypeCoreLink:
		if !utf8.ValidString(v.Str) {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrEncode, v.Type)
		}
		c.String = &v.Str
	case lwm2m.TypeOpaque:
		d := v.Bytes
		if d == nil {
			d = []byte{}
		}
		c.Data = &d
	case lwm2m.TypeObjlnk:
		s := v.Objlnk.String()
		c.Objlnk = &s
	default:
		return fmt.Errorf("%w: value of type %s", ErrEncode, v.Type)
	}
	if num != nil {
		b, err := cborEnc.Marshal(num)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrEncode, err)
		}
		c.Value = b
	}
	return nil
}

// DecodeCBOR decodes a SenML-CBOR payload addressed to base into records
// sorted by path, with the semantics of [DecodeJSON]: the same names, base
// names, paths, type conversions with typeOf, and the same fields ignored
// or rejected.
//
// # Notes
//
//   - Numbers ("v", 2) are CBOR integers, floats of any width or decimal
//     fractions (tag 4, RFC 8949 §3.4.4, integer exponent and mantissa).
//     Integers that fit int64 decode as [lwm2m.TypeInteger], larger
//     unsigned ones as [lwm2m.TypeUnsigned], floats and decimal fractions
//     as [lwm2m.TypeFloat]. "vd" (8) is a byte string, not base64, and
//     "vlo" a text label holding "obj:inst". "bver" (-1) must be an
//     unsigned integer.
//   - Indefinite-length arrays, maps and strings are accepted within the
//     same limits as definite ones.
//   - Rejected with an error wrapping [ErrFormat], besides the rejections of
//     [DecodeJSON]: input that is not exactly one well-formed CBOR item;
//     nesting deeper than 4 levels; records with more than 64 labels;
//     duplicate labels; integer labels not in RFC 8428 Table 6 (the table
//     "is conclusive", so an unknown one cannot be ignored safely); empty
//     text labels; text labels that name a field with an integer label
//     ("v", "bn", ...); labels of other types; tags other than a decimal
//     fraction in a numeric field; NaN and infinities; integers that fit
//     neither int64 nor uint64; null, undefined and simple values; arrays
//     or maps as field values.
//   - Unknown text labels are ignored unless they end in "_".
//
// See RFC 8428 §4 and §6 and OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.5.
func DecodeCBOR(base lwm2m.Path, b []byte, typeOf func(lwm2m.Path) lwm2m.Type) ([]lwm2m.Record, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	if err := base.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if err := cborDecErr; err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	var doc any
	if err := cborDec.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	items, ok := doc.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: payload is %s, not an array", ErrFormat, describe(doc))
	}
	var (
		st   state
		recs = make([]lwm2m.Record, 0, len(items))
	)
	for i, item := range items {
		m, ok := item.(map[any]any)
		if !ok {
			return nil, fmt.Errorf("record %d: %w: %s is not a map", i, ErrFormat, describe(item))
		}
		r, err := st.cborRecord(m)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if err := st.resolve(&r, base, typeOf); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		recs = append(recs, r.rec)
	}
	slices.SortStableFunc(recs, func(a, b lwm2m.Record) int { return a.Path.Compare(b.Path) })
	if err := lwm2m.CheckSorted(recs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return recs, nil
}

// cborLabel is one label of a SenML-CBOR record and its value.
type cborLabel struct {
	num    int64  // integer label
	text   string // text label, when isText
	isText bool
	val    any
}

// cborRecord reads one record. It updates the base fields in st. Labels
// are applied in a fixed order (integer labels ascending, then text labels)
// so that the error reported for a bad record does not depend on Go's map
// iteration order.
func (st *state) cborRecord(m map[any]any) (record, error) {
	var r record
	labels := make([]cborLabel, 0, len(m))
	for k, v := range m {
		switch k := k.(type) {
		case uint64:
			if k > math.MaxInt64 {
				return r, fmt.Errorf("%w: unknown label %d", ErrFormat, k)
			}
			labels = append(labels, cborLabel{num: int64(k), val: v})
		case int64:
			labels = append(labels, cborLabel{num: k, val: v})
		case string:
			labels = append(labels, cborLabel{text: k, isText: true, val: v})
		default:
			return r, fmt.Errorf("%w: label of type %s", ErrFormat, describe(k))
		}
	}
	slices.SortFunc(labels, func(a, b cborLabel) int {
		if a.isText != b.isText {
			if a.isText {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.num, b.num), strings.Compare(a.text, b.text))
	})
	for _, l := range labels {
		switch v := l.val.(type) {
		case []any, map[any]any:
			return r, fmt.Errorf("label %s: %w: nested %s", l, ErrFormat, describe(v))
		}
		var err error
		if l.isText {
			err = st.cborTextField(&r, l.text, l.val)
		} else {
			err = st.cborField(&r, l.num, l.val)
		}
		if err != nil {
			return r, fmt.Errorf("label %s: %w", l, err)
		}
	}
	return r, nil
}

// String formats the label for error messages: 2 ("v") or "vlo".
func (l cborLabel) String() string {
	if l.isText {
		return fmt.Sprintf("%q", l.text)
	}
	for name, n := range intLabels {
		if n == l.num {
			return fmt.Sprintf("%d (%q)", n, name)
		}
	}
	return fmt.Sprint(l.num)
}

// cborField applies one field with an integer label.
func (st *state) cborField(r *record, label int64, val any) error {
	switch label {
	case labelBaseVersion:
		// RFC 8428 §6: "For the version number, only an unsigned integer
		// is allowed."
		if _, ok := val.(uint64); !ok {
			return fmt.Errorf("%w: %s is not an unsigned integer", ErrFormat, describe(val))
		}
	case labelBaseName:
		s, err := cborText(val)
		st.bn = s
		return err
	case labelName:
		s, err := cborText(val)
		r.name, r.hasName = s, true
		return err
	case labelBaseUnit, labelUnit:
		_, err := cborText(val)
		return err
	case labelBaseTime:
		f, err := cborFloat(val)
		st.bt = f
		return err
	case labelTime:
		f, err := cborFloat(val)
		r.t = f
		return err
	case labelBaseSum, labelUpdateTime:
		_, err := cborFloat(val)
		return err
	case labelBaseValue:
		f, err := cborFloat(val)
		if err == nil && f != 0 {
			return fmt.Errorf("%w: base value not supported", ErrFormat)
		}
		return err
	case labelSum:
		return fmt.Errorf("%w: sum not supported", ErrFormat)
	case labelValue:
		v, err := cborNumber(val)
		r.setValue(v)
		return err
	case labelString:
		s, err := cborText(val)
		r.setValue(lwm2m.String(s))
		return err
	case labelBool:
		bv, ok := val.(bool)
		if !ok {
			return fmt.Errorf("%w: %s is not a boolean", ErrFormat, describe(val))
		}
		r.setValue(lwm2m.Bool(bv))
	case labelData:
		d, ok := val.([]byte)
		if !ok {
			return fmt.Errorf("%w: %s is not a byte string", ErrFormat, describe(val))
		}
		r.setValue(lwm2m.Opaque(d))
	default:
		// RFC 8428 §6: the integer labels of Table 6 are conclusive, "any
		// extensions will use strings as their labels".
		return fmt.Errorf("%w: unknown integer label", ErrFormat)
	}
	return nil
}

// cborTextField applies one field with a text label.
func (st *state) cborTextField(r *record, label string, val any) error {
	switch {
	case label == labelObjlnk:
		s, err := cborText(val)
		if err != nil {
			return err
		}
		l, err := parseObjlnk(s)
		r.setValue(lwm2m.Value{Type: lwm2m.TypeObjlnk, Objlnk: l})
		return err
	case label == "":
		// Reliability catalogue B27.
		return fmt.Errorf("%w: empty label", ErrFormat)
	case strings.HasSuffix(label, "_"):
		// RFC 8428 §4.4: a must-understand label that is not understood
		// means the record "MUST be rejected".
		return fmt.Errorf("%w: must-understand label not supported", ErrFormat)
	}
	if n, ok := intLabels[label]; ok {
		return fmt.Errorf("%w: label must be the integer %d in SenML-CBOR", ErrFormat, n)
	}
	return nil
}

// cborText returns val as a string.
func cborText(val any) (string, error) {
	s, ok := val.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s is not a text string", ErrFormat, describe(val))
	}
	return s, nil
}

// cborFloat returns a numeric val as a float64.
func cborFloat(val any) (float64, error) {
	v, err := cborNumber(val)
	if err != nil {
		return 0, err
	}
	switch v.Type {
	case lwm2m.TypeInteger:
		return float64(v.Int), nil
	case lwm2m.TypeUnsigned:
		return float64(v.Uint), nil
	}
	return v.Float, nil
}

// cborNumber converts a numeric val to an integer, unsigned or float value
// like [number] does for JSON; CBOR keeps integers and floats apart.
func cborNumber(val any) (lwm2m.Value, error) {
	switch x := val.(type) {
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
	case cbor.Tag:
		if x.Number != tagDecimalFraction {
			return lwm2m.Value{}, fmt.Errorf("%w: tag %d is not a number", ErrFormat, x.Number)
		}
		return decimalFraction(x.Content)
	case big.Int, *big.Int:
		return lwm2m.Value{}, fmt.Errorf("%w: integer out of range", ErrFormat)
	}
	return lwm2m.Value{}, fmt.Errorf("%w: %s is not a number", ErrFormat, describe(val))
}

// decimalFraction converts the content of tag 4, [exponent, mantissa] with
// both integers, to a float value.
func decimalFraction(content any) (lwm2m.Value, error) {
	a, ok := content.([]any)
	if !ok || len(a) != 2 {
		return lwm2m.Value{}, fmt.Errorf("%w: decimal fraction is not [exponent, mantissa]", ErrFormat)
	}
	var s [2]string
	for i, x := range a {
		switch x.(type) {
		case uint64, int64:
			s[i] = fmt.Sprint(x)
		default:
			return lwm2m.Value{}, fmt.Errorf("%w: decimal fraction with %s", ErrFormat, describe(x))
		}
	}
	v, err := number(s[1] + "e" + s[0])
	if err != nil {
		return lwm2m.Value{}, err
	}
	return v, nil
}

// describe names the kind of a decoded CBOR item for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case uint64, int64, big.Int, *big.Int:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case string:
		return "text string"
	case []byte:
		return "byte string"
	case []any:
		return "array"
	case map[any]any:
		return "map"
	case cbor.Tag:
		return fmt.Sprintf("tag %d", v.Number)
	case cbor.SimpleValue:
		return fmt.Sprintf("simple value %d", v)
	case time.Time:
		return "date/time tag"
	}
	return fmt.Sprintf("%T", v)
}
