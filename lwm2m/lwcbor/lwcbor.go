package lwcbor

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/cborval"
)

// MaxSize is the largest payload, in bytes, that [Decode] accepts.
const MaxSize = 64 << 10

// MaxNesting is the deepest nesting of CBOR maps, arrays and tags that
// [Decode] accepts. The deepest valid payload, four maps with an array key
// at each level and a decimal fraction as the value, needs seven.
const MaxNesting = 8

// ErrFormat reports a malformed or unsupported LwM2M-CBOR payload; every
// error [Decode] returns wraps it.
var ErrFormat = errors.New("lwcbor: malformed")

// ErrTooLarge reports a payload larger than [MaxSize]; it wraps [ErrFormat].
var ErrTooLarge = fmt.Errorf("%w: payload too large", ErrFormat)

// ErrEncode reports records that [Encode] cannot represent: paths that are
// not resources or resource instances under the base path, duplicates, and
// values that package cborval cannot encode.
var ErrEncode = errors.New("lwcbor: cannot encode")

// dec decodes LwM2M-CBOR. Keys are arrays of at most four IDs, so arrays
// are kept short; a map needs at least two bytes per pair, so the pair
// limit is never reached by a valid payload of MaxSize bytes but stops
// declared lengths that could never be filled. Tags are allowed for the
// values (1 and 4); cborval rejects any other, and keys reject them all.
var dec, decErr = cbor.DecOptions{
	DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	MaxNestedLevels:  MaxNesting,
	MaxArrayElements: 16,
	MaxMapPairs:      MaxSize / 2,
	IndefLength:      cbor.IndefLengthAllowed,
	TagsMd:           cbor.TagsAllowed,
	IntDec:           cbor.IntDecConvertNone,
	MapKeyByteString: cbor.MapKeyByteStringForbidden,
	UTF8:             cbor.UTF8RejectInvalid,
	NaN:              cbor.NaNDecodeForbidden,
	Inf:              cbor.InfDecodeForbidden,
	BignumTag:        cbor.BignumTagForbidden,
}.DecMode()

// enc encodes maps with definite lengths and keys in ascending order.
var enc, encErr = cbor.EncOptions{
	Sort:          cbor.SortCoreDeterministic,
	IndefLength:   cbor.IndefLengthForbidden,
	NilContainers: cbor.NilContainerAsEmpty,
	TagsMd:        cbor.TagsAllowed,
}.EncMode()

// node is one level of nested maps: each value is a node or, at the end of
// a path, the encoded value as a cbor.RawMessage.
type node map[uint64]any

// Encode encodes recs, which must be values at resource paths (Len 3) or
// resource-instance paths (Len 4) under base, as LwM2M-CBOR.
//
// # Notes
//
//   - Paths are written from the Object ID whatever base is, one map per
//     path component: {3: {0: {9: 100, 6: {0: 1}}}}, with keys in
//     ascending order in each map. No records give the empty map.
//   - Values are encoded by [cborval.Encode].
//   - Errors wrap [ErrEncode].
//
// See OMA-TS-LightweightM2M_Core-V1_2 §7.4.6.
func Encode(base lwm2m.Path, recs []lwm2m.Record) ([]byte, error) {
	if err := encErr; err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	rs, err := prepare(base, recs)
	if err != nil {
		return nil, err
	}
	root := node{}
	for _, r := range rs {
		v, err := cborval.Encode(r.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrEncode, r.Path, err)
		}
		n := root
		last := r.Path.Len - 1
		for _, id := range r.Path.IDs[:last] {
			child, ok := n[uint64(id)].(node)
			if !ok {
				child = node{}
				n[uint64(id)] = child
			}
			n = child
		}
		n[uint64(r.Path.IDs[last])] = cbor.RawMessage(v)
	}
	b, err := enc.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return b, nil
}

// prepare checks records for encoding under base and returns them sorted
// by path.
func prepare(base lwm2m.Path, recs []lwm2m.Record) ([]lwm2m.Record, error) {
	if err := base.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	rs := slices.Clone(recs)
	slices.SortStableFunc(rs, func(a, b lwm2m.Record) int { return a.Path.Compare(b.Path) })
	for _, r := range rs {
		if r.Path.Len != 3 && r.Path.Len != 4 {
			return nil, fmt.Errorf("%w: %s: not a resource or resource instance", ErrEncode, r.Path)
		}
		if !base.Contains(r.Path) {
			return nil, fmt.Errorf("%w: %s: not under %s", ErrEncode, r.Path, base)
		}
		if err := r.Path.Check(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEncode, err)
		}
	}
	if err := lwm2m.CheckSorted(rs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return rs, nil
}

// Decode decodes an LwM2M-CBOR payload addressed to base into records
// sorted by path. typeOf receives each resource path (Len 3) and returns the
// resource's type, which [cborval.Decode] converts the value to; a nil
// typeOf, [lwm2m.TypeNone] or a type this package does not know keeps the
// type the CBOR item has.
//
// # Notes
//
//   - Keys may be single IDs or arrays of IDs, maps and arrays may have
//     indefinite length, and a path prefix may appear under several keys
//     (see the package documentation).
//   - Rejected with an error wrapping [ErrFormat]: input over [MaxSize]
//     ([ErrTooLarge]); input that is not exactly one well-formed CBOR map;
//     nesting deeper than [MaxNesting]; maps with more than [MaxSize]/2
//     pairs or arrays with more than 16 elements (also as declared
//     lengths); keys that are not an unsigned integer or a non-empty array
//     of them, or that repeat within one map (also when written
//     differently, as 3 and [3]); IDs above 65534 and paths longer than
//     four (these also wrap [lwm2m.ErrBadPath]); paths that are neither
//     under base nor above it; values at object or object-instance paths;
//     maps below a resource instance; the same path twice; a resource
//     with both a value and resource instances; values [cborval.Decode]
//     rejects (null, containers, tags other than 1 and 4, NaN, ...) or
//     cannot convert to the resource's type.
//   - An empty map, also nested, decodes to no records.
//
// See OMA-TS-LightweightM2M_Core-V1_2 §7.4.6.
func Decode(base lwm2m.Path, b []byte, typeOf func(lwm2m.Path) lwm2m.Type) ([]lwm2m.Record, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	if err := base.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if err := decErr; err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	// The whole input is checked here, nesting included, before any of it
	// is decoded further.
	top, err := decodeMap(b)
	if err != nil {
		return nil, err
	}
	d := decoder{base: base, typeOf: typeOf}
	if err := d.walk(lwm2m.Path{}, top); err != nil {
		return nil, err
	}
	slices.SortStableFunc(d.recs, func(a, b lwm2m.Record) int { return a.Path.Compare(b.Path) })
	if err := lwm2m.CheckSorted(d.recs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return d.recs, nil
}

// rawKey holds the encoding of a map key, so that keys of any CBOR type,
// arrays included, can be read into a Go map and checked afterwards.
type rawKey string

// UnmarshalCBOR keeps the key's encoding.
func (k *rawKey) UnmarshalCBOR(b []byte) error {
	*k = rawKey(b)
	return nil
}

// decodeMap decodes one CBOR map whose values stay encoded.
func decodeMap(b []byte) (map[rawKey]cbor.RawMessage, error) {
	var m map[rawKey]cbor.RawMessage
	if err := dec.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if m == nil { // null and undefined leave the map unset
		return nil, fmt.Errorf("%w: not a map", ErrFormat)
	}
	return m, nil
}

// decoder collects the records of one payload.
type decoder struct {
	base   lwm2m.Path
	typeOf func(lwm2m.Path) lwm2m.Type
	recs   []lwm2m.Record
}

// walk reads the map found at path prefix. It recurses once per map
// level, and every level adds at least one ID to a path of at most four.
func (d *decoder) walk(prefix lwm2m.Path, m map[rawKey]cbor.RawMessage) error {
	seen := make(map[lwm2m.Path]struct{}, len(m))
	// Sorted, so that the error reported does not depend on the order of
	// Go's map iteration.
	for _, k := range slices.Sorted(maps.Keys(m)) {
		p, err := d.key(prefix, k)
		if err != nil {
			return err
		}
		if _, dup := seen[p]; dup {
			return fmt.Errorf("%w: %s: duplicate key", ErrFormat, p)
		}
		seen[p] = struct{}{}
		raw := m[k]
		const majorMap = 5
		if len(raw) > 0 && raw[0]>>5 == majorMap {
			if p.Len == 4 {
				return fmt.Errorf("%w: %w: %s: map below a resource instance", ErrFormat, lwm2m.ErrBadPath, p)
			}
			sub, err := decodeMap(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := d.walk(p, sub); err != nil {
				return err
			}
			continue
		}
		if p.Len < 3 {
			return fmt.Errorf("%w: %s: value at a path that is not a resource or resource instance", ErrFormat, p)
		}
		if !d.base.Contains(p) {
			return fmt.Errorf("%w: %s is not under %s", ErrFormat, p, d.base)
		}
		t := lwm2m.TypeNone
		if d.typeOf != nil {
			t = d.typeOf(lwm2m.P(p.IDs[:3]...))
		}
		v, err := cborval.Decode(raw, t)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrFormat, p, err)
		}
		d.recs = append(d.recs, lwm2m.Record{Path: p, Value: v})
	}
	return nil
}

// key returns prefix extended by the IDs of key k.
func (d *decoder) key(prefix lwm2m.Path, k rawKey) (lwm2m.Path, error) {
	var x any
	if err := dec.Unmarshal([]byte(k), &x); err != nil {
		return prefix, fmt.Errorf("%w: %s: key: %w", ErrFormat, prefix, err)
	}
	var ids []any
	switch x := x.(type) {
	case uint64:
		ids = []any{x}
	case []any:
		if len(x) == 0 {
			return prefix, fmt.Errorf("%w: %s: empty array key", ErrFormat, prefix)
		}
		ids = x
	default:
		return prefix, fmt.Errorf("%w: %s: key is %s, not an ID or an array of IDs", ErrFormat, prefix, describe(x))
	}
	p := prefix
	for _, e := range ids {
		id, ok := e.(uint64)
		if !ok {
			return prefix, fmt.Errorf("%w: %s: key holds %s, not an ID", ErrFormat, prefix, describe(e))
		}
		if id > lwm2m.MaxID {
			return prefix, fmt.Errorf("%w: %w: %s: id %d", ErrFormat, lwm2m.ErrBadPath, p, id)
		}
		if p.Len == 4 {
			return prefix, fmt.Errorf("%w: %w: %s: path longer than 4", ErrFormat, lwm2m.ErrBadPath, p)
		}
		p = p.Child(uint16(id))
	}
	// Every path must lead towards base or lie below it.
	if !d.base.Contains(p) && !p.Contains(d.base) {
		return prefix, fmt.Errorf("%w: %s is not under %s", ErrFormat, p, d.base)
	}
	return p, nil
}

// describe names the kind of a decoded CBOR key for error messages.
func describe(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case uint64:
		return "an unsigned integer"
	case int64:
		return "a negative integer"
	case []any:
		return "an array"
	case string:
		return "a text string"
	case []byte, cbor.ByteString:
		return "a byte string"
	case map[any]any:
		return "a map"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time, cbor.Tag:
		return "a tag"
	}
	return fmt.Sprintf("%T", x)
}
