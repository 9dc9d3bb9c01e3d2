package senml

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/avc-agent/avc/lwm2m"
)

// MaxSize is the largest payload, in bytes, that [DecodeJSON] and
// [DecodeCBOR] accept.
const MaxSize = 64 << 10

// ErrFormat reports a malformed or unsupported SenML payload; every error
// [DecodeJSON] and [DecodeCBOR] return wraps it.
var ErrFormat = errors.New("senml: malformed")

// ErrTooLarge reports a payload larger than [MaxSize]; it wraps [ErrFormat].
var ErrTooLarge = fmt.Errorf("%w: payload too large", ErrFormat)

// ErrEncode reports records that [EncodeJSON] or [EncodeCBOR] cannot
// represent: paths that are not resources or resource instances under the
// base path, duplicates, non-finite floats, strings that are not UTF-8 or
// values of an unknown type.
var ErrEncode = errors.New("senml: cannot encode")

// prepare checks records for encoding under base and returns them sorted by
// path, with the base name that the first record carries ("" for none).
func prepare(base lwm2m.Path, recs []lwm2m.Record) ([]lwm2m.Record, string, error) {
	if err := base.Check(); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrEncode, err)
	}
	rs := slices.Clone(recs)
	slices.SortStableFunc(rs, func(a, b lwm2m.Record) int { return a.Path.Compare(b.Path) })
	for _, r := range rs {
		if r.Path.Len != 3 && r.Path.Len != 4 {
			return nil, "", fmt.Errorf("%w: %s: not a resource or resource instance", ErrEncode, r.Path)
		}
		if !base.Contains(r.Path) {
			return nil, "", fmt.Errorf("%w: %s: not under %s", ErrEncode, r.Path, base)
		}
		if err := r.Path.Check(); err != nil {
			return nil, "", fmt.Errorf("%w: %w", ErrEncode, err)
		}
	}
	if err := lwm2m.CheckSorted(rs); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrEncode, err)
	}
	bn := ""
	if base.Len >= 1 && base.Len < 3 {
		// At the root (composite operations, Send) names are absolute.
		bn = strings.TrimSuffix(base.String(), "/") + "/"
	}
	return rs, bn, nil
}

// state is what persists from one SenML record to the next.
type state struct {
	bn     string
	bt     float64
	fields map[string]struct{} // SenML-JSON: the fields seen in a record
}

// record is one SenML record as read, before its name is resolved.
type record struct {
	name    string
	hasName bool
	t       float64
	values  int
	rec     lwm2m.Record
}

// setValue records a value field.
func (r *record) setValue(v lwm2m.Value) {
	r.values++
	r.rec.Value = v
}

// resolve names the record, checks it and converts its value.
func (st *state) resolve(r *record, base lwm2m.Path, typeOf func(lwm2m.Path) lwm2m.Type) error {
	if t := st.bt + r.t; math.IsInf(t, 0) {
		return fmt.Errorf("%w: time bt+t overflows", ErrFormat)
	}
	switch r.values {
	case 0:
		return fmt.Errorf("%w: no value", ErrFormat)
	case 1:
	default:
		return fmt.Errorf("%w: %d values", ErrFormat, r.values)
	}
	name := st.bn + r.name
	if name == "" {
		return fmt.Errorf("%w: no name", ErrFormat)
	}
	if name[0] != '/' {
		return fmt.Errorf("%w: name %q is not an absolute path", ErrFormat, name)
	}
	p, err := lwm2m.ParsePath(name)
	if err != nil {
		return fmt.Errorf("%w: name %q: %w", ErrFormat, name, err)
	}
	if p.Len < 3 {
		return fmt.Errorf("%w: %s is not a resource or resource instance", ErrFormat, p)
	}
	if !base.Contains(p) {
		return fmt.Errorf("%w: %s is not under %s", ErrFormat, p, base)
	}
	r.rec.Path = p
	if typeOf == nil {
		return nil
	}
	res := p
	if res.Len == 4 {
		res = res.Parent()
	}
	t := typeOf(res)
	if t == lwm2m.TypeNone || t > lwm2m.TypeCoreLink {
		return nil
	}
	v, err := r.rec.Value.Convert(t)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrFormat, p, err)
	}
	r.rec.Value = v
	return nil
}

// number converts the text of a number to an integer, unsigned or float
// value, whichever holds it exactly, preferring integer.
func number(s string) (lwm2m.Value, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return lwm2m.Int(i), nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return lwm2m.Uint(u), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return lwm2m.Value{}, fmt.Errorf("%w: number %s out of range", ErrFormat, s)
	}
	return lwm2m.Float(f), nil
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
