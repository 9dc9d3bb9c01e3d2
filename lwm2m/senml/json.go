package senml

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/avc-agent/avc/lwm2m"
)

// EncodeJSON encodes recs, which must be values at resource paths (Len 3) or
// resource-instance paths (Len 4) under base, as a SenML-JSON array.
//
// # Notes
//
//   - When base is the root, an object or an object instance (Len < 3), the
//     first record carries the base name base + "/" ("/3/0/") and every
//     record's name is the rest of its path ("0", "11/0"). For a resource or
//     resource instance base there is no base name and each name is the
//     full path ("/3/0/1").
//   - Records are written sorted by path. Integers, unsigned integers, times
//     and floats go in "v" (floats always with a fraction or an exponent, so
//     that they decode as floats again), strings and core links in "vs",
//     booleans in "vb", opaque values in "vd" as unpadded base64url and
//     object links in "vlo" as "3:0".
//   - Errors wrap [ErrEncode].
//
// See RFC 8428 §4 and OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.4.
func EncodeJSON(base lwm2m.Path, recs []lwm2m.Record) ([]byte, error) {
	rs, bn, err := prepare(base, recs)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, r := range rs {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('{')
		if i == 0 && bn != "" {
			buf.WriteString(`"bn":`)
			appendString(&buf, bn)
			buf.WriteByte(',')
		}
		buf.WriteString(`"n":`)
		appendString(&buf, strings.TrimPrefix(r.Path.String(), bn))
		buf.WriteByte(',')
		if err := appendValue(&buf, r.Value); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Path, err)
		}
		buf.WriteByte('}')
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// appendValue writes the value field of v.
func appendValue(buf *bytes.Buffer, v lwm2m.Value) error {
	switch v.Type {
	case lwm2m.TypeInteger, lwm2m.TypeTime:
		buf.WriteString(`"v":`)
		buf.WriteString(strconv.FormatInt(v.Int, 10))
	case lwm2m.TypeUnsigned:
		buf.WriteString(`"v":`)
		buf.WriteString(strconv.FormatUint(v.Uint, 10))
	case lwm2m.TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return fmt.Errorf("%w: float %v", ErrEncode, v.Float)
		}
		s := strconv.FormatFloat(v.Float, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		buf.WriteString(`"v":`)
		buf.WriteString(s)
	case lwm2m.TypeBoolean:
		buf.WriteString(`"vb":`)
		buf.WriteString(strconv.FormatBool(v.Bool))
	case lwm2m.TypeString, lwm2m.TypeCoreLink:
		if !utf8.ValidString(v.Str) {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrEncode, v.Type)
		}
		buf.WriteString(`"vs":`)
		appendString(buf, v.Str)
	case lwm2m.TypeOpaque:
		buf.WriteString(`"vd":"`)
		buf.WriteString(base64.RawURLEncoding.EncodeToString(v.Bytes))
		buf.WriteByte('"')
	case lwm2m.TypeObjlnk:
		buf.WriteString(`"vlo":"`)
		buf.WriteString(v.Objlnk.String())
		buf.WriteByte('"')
	default:
		return fmt.Errorf("%w: value of type %s", ErrEncode, v.Type)
	}
	return nil
}

// appendString writes s, which is valid UTF-8, as a JSON string.
func appendString(buf *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf.WriteByte('\\')
			buf.WriteByte(c)
		case c == '\n':
			buf.WriteString(`\n`)
		case c == '\r':
			buf.WriteString(`\r`)
		case c == '\t':
			buf.WriteString(`\t`)
		case c < 0x20 || c == 0x7F:
			buf.WriteString(`\u00`)
			buf.WriteByte(hexDigits[c>>4])
			buf.WriteByte(hexDigits[c&0xF])
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}

// DecodeJSON decodes a SenML-JSON payload addressed to base into records
// sorted by path. typeOf receives each resource path (Len 3) and returns the
// resource's type, to which the SenML value is converted with
// [lwm2m.Value.Convert]; a nil typeOf, [lwm2m.TypeNone] or a type this
// package does not know keeps the value's own type.
//
// # Notes
//
//   - A record's path is its base name ("bn", kept until a later record
//     changes it) followed by its name ("n"). It must parse with
//     [lwm2m.ParsePath] after a leading "/", address a resource or resource
//     instance and lie under base.
//   - Numbers ("v") keep their precision: integers that fit int64 decode as
//     [lwm2m.TypeInteger], larger ones that fit uint64 as
//     [lwm2m.TypeUnsigned] and everything else as [lwm2m.TypeFloat].
//   - "vd" accepts base64url and standard base64, padded or not. "vlo" is
//     "obj:inst" with IDs 0..65535.
//   - "bt" and "t" must be finite numbers (also their sum) and are then
//     ignored, as are "bu", "u", "ut", "bver", "bs" and unknown fields.
//   - Rejected with an error wrapping [ErrFormat]: input over [MaxSize]
//     ([ErrTooLarge]), input that is not UTF-8 or not a JSON array of
//     objects, nested arrays or objects in a record, fields of the wrong
//     JSON type, duplicate fields, records with no value or with two,
//     records without a name, sums ("s") and non-zero base values ("bv"),
//     fields ending in "_" (must-understand, RFC 8428 §4.4), numbers
//     outside float64, bad base64, bad paths, duplicate paths and values
//     that do not convert to the resource's type.
//   - An empty array decodes to no records.
//
// See RFC 8428 §4 and OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.4.
func DecodeJSON(base lwm2m.Path, b []byte, typeOf func(lwm2m.Path) lwm2m.Type) ([]lwm2m.Record, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	if err := base.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	// RFC 8259 §8.1: "JSON text exchanged between systems that are not
	// part of a closed ecosystem MUST be encoded using UTF-8". Checking
	// first also keeps encoding/json from replacing bad bytes silently.
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, jsonErr(err))
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("%w: payload is not an array", ErrFormat)
	}
	var (
		st   state
		recs []lwm2m.Record
	)
	for i := 0; dec.More(); i++ {
		r, err := st.record(dec)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if err := st.resolve(&r, base, typeOf); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		recs = append(recs, r.rec)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, fmt.Errorf("%w: %w", ErrFormat, jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the array", ErrFormat)
	}
	slices.SortStableFunc(recs, func(a, b lwm2m.Record) int { return a.Path.Compare(b.Path) })
	if err := lwm2m.CheckSorted(recs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return recs, nil
}

// jsonErr turns io.EOF and io.ErrUnexpectedEOF from encoding/json into a
// descriptive error.
func jsonErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("unexpected end of input")
	}
	return err
}

// record reads one JSON object. It updates the base fields in st.
func (st *state) record(dec *json.Decoder) (record, error) {
	var r record
	tok, err := dec.Token()
	if err != nil {
		return r, fmt.Errorf("%w: %w", ErrFormat, jsonErr(err))
	}
	if tok != json.Delim('{') {
		return r, fmt.Errorf("%w: %v is not an object", ErrFormat, tok)
	}
	if st.fields == nil {
		st.fields = make(map[string]struct{})
	}
	clear(st.fields)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return r, fmt.Errorf("%w: %w", ErrFormat, jsonErr(err))
		}
		key, _ := tok.(string) // object keys are always strings
		if _, dup := st.fields[key]; dup {
			return r, fmt.Errorf("%w: duplicate field %q", ErrFormat, key)
		}
		st.fields[key] = struct{}{}
		val, err := dec.Token()
		if err != nil {
			return r, fmt.Errorf("%w: %w", ErrFormat, jsonErr(err))
		}
		if d, ok := val.(json.Delim); ok {
			return r, fmt.Errorf("%w: field %q: nested %v", ErrFormat, key, d)
		}
		if err := st.field(&r, key, val); err != nil {
			return r, fmt.Errorf("field %q: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return r, fmt.Errorf("%w: %w", ErrFormat, jsonErr(err))
	}
	return r, nil
}

// field applies one field of a record.
func (st *state) field(r *record, key string, val json.Token) error {
	switch key {
	case "bn":
		s, err := str(val)
		st.bn = s
		return err
	case "n":
		s, err := str(val)
		r.name, r.hasName = s, true
		return err
	case "bu", "u":
		_, err := str(val)
		return err
	case "bt":
		f, err := num(val)
		st.bt = f
		return err
	case "t":
		f, err := num(val)
		r.t = f
		return err
	case "bver", "bs", "ut":
		_, err := num(val)
		return err
	case "bv":
		f, err := num(val)
		if err == nil && f != 0 {
			return fmt.Errorf("%w: base value not supported", ErrFormat)
		}
		return err
	case "s":
		return fmt.Errorf("%w: sum not supported", ErrFormat)
	case "v":
		n, ok := val.(json.Number)
		if !ok {
			return fmt.Errorf("%w: %v is not a number", ErrFormat, val)
		}
		v, err := number(string(n))
		r.setValue(v)
		return err
	case "vs":
		s, err := str(val)
		r.setValue(lwm2m.String(s))
		return err
	case "vb":
		bv, ok := val.(bool)
		if !ok {
			return fmt.Errorf("%w: %v is not a boolean", ErrFormat, val)
		}
		r.setValue(lwm2m.Bool(bv))
	case "vd":
		s, err := str(val)
		if err != nil {
			return err
		}
		d, err := decodeBase64(s)
		r.setValue(lwm2m.Opaque(d))
		return err
	case "vlo":
		s, err := str(val)
		if err != nil {
			return err
		}
		l, err := parseObjlnk(s)
		r.setValue(lwm2m.Value{Type: lwm2m.TypeObjlnk, Objlnk: l})
		return err
	default:
		// RFC 8428 §4.4: "Systems reading one of the objects MUST check
		// for the '_' character. If it is present, the record MUST be
		// rejected" when they do not understand the label.
		if strings.HasSuffix(key, "_") {
			return fmt.Errorf("%w: must-understand field not supported", ErrFormat)
		}
	}
	return nil
}

// str returns val as a string.
func str(val json.Token) (string, error) {
	s, ok := val.(string)
	if !ok {
		return "", fmt.Errorf("%w: %v is not a string", ErrFormat, val)
	}
	return s, nil
}

// num returns val as a finite float64.
func num(val json.Token) (float64, error) {
	n, ok := val.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%w: %v is not a number", ErrFormat, val)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: number %s out of range", ErrFormat, n)
	}
	return f, nil
}

// decodeBase64 decodes base64url or standard base64, with or without
// padding.
func decodeBase64(s string) ([]byte, error) {
	// encoding/base64 skips CR and LF; they are not part of either alphabet.
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%w: bad base64: line break", ErrFormat)
	}
	t := strings.TrimRight(s, "=")
	if pad := len(s) - len(t); pad > 2 || pad > 0 && len(s)%4 != 0 {
		return nil, fmt.Errorf("%w: bad base64: bad padding", ErrFormat)
	}
	t = strings.Map(func(r rune) rune {
		switch r {
		case '+':
			return '-'
		case '/':
			return '_'
		}
		return r
	}, t)
	d, err := base64.RawURLEncoding.Strict().DecodeString(t)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64: %w", ErrFormat, err)
	}
	return d, nil
}
