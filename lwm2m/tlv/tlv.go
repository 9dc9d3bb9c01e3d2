package tlv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/avc-agent/avc/lwm2m"
)

// MaxSize is the largest payload, in bytes, that [Decode] accepts.
const MaxSize = 64 << 10

// ErrFormat reports a malformed TLV payload; every error [Decode] returns
// wraps it.
var ErrFormat = errors.New("tlv: malformed")

// ErrTooLarge reports a payload larger than [MaxSize]; it wraps [ErrFormat].
var ErrTooLarge = fmt.Errorf("%w: payload too large", ErrFormat)

// ErrEncode reports records that [Encode] cannot represent: paths that are
// not resources or resource instances under the base path, duplicates, or
// values of an unknown type.
var ErrEncode = errors.New("tlv: cannot encode")

// kind is the identifier type held in bits 7-6 of the type byte.
type kind byte

const (
	kindObjectInstance   kind = 0 // 00: Object Instance, holds resources
	kindResourceInstance kind = 1 // 01: Resource Instance, holds a value
	kindMultipleResource kind = 2 // 10: Multiple Resource, holds resource instances
	kindResource         kind = 3 // 11: Resource with a value
)

var kindNames = [...]string{"object instance", "resource instance", "multiple resource", "resource"}

func (k kind) String() string { return kindNames[k&3] }

// maxLength is the largest value a 24-bit length field can hold.
const maxLength = 1<<24 - 1

// Encode encodes recs, which must be values at resource paths (Len 3) or
// resource-instance paths (Len 4) under base, as a TLV payload addressed to
// base.
//
// # Notes
//
//   - The layout follows base.Len: 1 (object) gives Object Instance TLVs
//     wrapping the resources; 2 (object instance) gives the resource TLVs
//     without a wrapper; 3 (resource) gives one Resource TLV, or one
//     Multiple Resource TLV when the records are resource instances; 4
//     gives one Resource Instance TLV. The root (Len 0) cannot be encoded.
//   - Records at Len 4 under one resource are grouped into one Multiple
//     Resource TLV. The output is sorted by path whatever the order of recs.
//   - No records give an empty payload.
//   - Errors wrap [ErrEncode].
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.3.
func Encode(base lwm2m.Path, recs []lwm2m.Record) ([]byte, error) {
	if err := checkBase(base); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	rs := slices.Clone(recs)
	slices.SortStableFunc(rs, func(a, b lwm2m.Record) int { return a.Path.Compare(b.Path) })
	for i, r := range rs {
		if r.Path.Len != 3 && r.Path.Len != 4 {
			return nil, fmt.Errorf("%w: %s: not a resource or resource instance", ErrEncode, r.Path)
		}
		if !base.Contains(r.Path) {
			return nil, fmt.Errorf("%w: %s: not under %s", ErrEncode, r.Path, base)
		}
		for _, id := range r.Path.IDs[:r.Path.Len] {
			if id > lwm2m.MaxID {
				return nil, fmt.Errorf("%w: %s: id %d is reserved", ErrEncode, r.Path, id)
			}
		}
		if i > 0 {
			prev := rs[i-1].Path
			if prev == r.Path {
				return nil, fmt.Errorf("%w: duplicate path %s", ErrEncode, r.Path)
			}
			if prev.Len != r.Path.Len && samePrefix(prev, r.Path, 3) {
				return nil, fmt.Errorf("%w: %s is both a single and a multiple resource", ErrEncode, r.Path.Parent())
			}
		}
	}
	if len(rs) == 0 {
		return []byte{}, nil
	}
	var out []byte
	var err error
	switch base.Len {
	case 1:
		for len(rs) > 0 {
			n := run(rs, 2)
			var inner []byte
			if inner, err = appendResources(nil, rs[:n]); err != nil {
				return nil, err
			}
			if out, err = appendTLV(out, kindObjectInstance, rs[0].Path.Inst(), inner); err != nil {
				return nil, err
			}
			rs = rs[n:]
		}
	case 2, 3:
		out, err = appendResources(nil, rs)
	case 4:
		var v []byte
		if v, err = appendValue(nil, rs[0].Value); err != nil {
			return nil, fmt.Errorf("%s: %w", rs[0].Path, err)
		}
		out, err = appendTLV(nil, kindResourceInstance, rs[0].Path.RInst(), v)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkBase rejects base paths that TLV cannot address: the root and
// paths with the reserved ID 65535.
func checkBase(base lwm2m.Path) error {
	if base.Len < 1 || base.Len > 4 {
		return fmt.Errorf("base path %s is not an object, instance, resource or resource instance", base)
	}
	for _, id := range base.IDs[:base.Len] {
		if id > lwm2m.MaxID {
			return fmt.Errorf("base path %s: id %d is reserved", base, id)
		}
	}
	return nil
}

// run returns how many leading records of rs share their first depth IDs.
func run(rs []lwm2m.Record, depth int) int {
	n := 1
	for n < len(rs) && samePrefix(rs[n].Path, rs[0].Path, depth) {
		n++
	}
	return n
}

// samePrefix reports whether p and q share their first depth IDs.
func samePrefix(p, q lwm2m.Path, depth int) bool {
	for i := 0; i < depth; i++ {
		if p.IDs[i] != q.IDs[i] {
			return false
		}
	}
	return true
}

// appendResources appends the Resource or Multiple Resource TLVs of rs,
// which are sorted and belong to one object instance.
func appendResources(dst []byte, rs []lwm2m.Record) ([]byte, error) {
	for len(rs) > 0 {
		n := run(rs, 3)
		r := rs[0]
		if r.Path.Len == 3 {
			v, err := appendValue(nil, r.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Path, err)
			}
			if dst, err = appendTLV(dst, kindResource, r.Path.Res(), v); err != nil {
				return nil, err
			}
		} else {
			var inner []byte
			for _, ri := range rs[:n] {
				v, err := appendValue(nil, ri.Value)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", ri.Path, err)
				}
				if inner, err = appendTLV(inner, kindResourceInstance, ri.Path.RInst(), v); err != nil {
					return nil, err
				}
			}
			var err error
			if dst, err = appendTLV(dst, kindMultipleResource, r.Path.Res(), inner); err != nil {
				return nil, err
			}
		}
		rs = rs[n:]
	}
	return dst, nil
}

// appendTLV appends one TLV with the shortest identifier and length fields.
func appendTLV(dst []byte, k kind, id uint16, v []byte) ([]byte, error) {
	n := len(v)
	if n > maxLength {
		return nil, fmt.Errorf("%w: %s %d: value of %d bytes exceeds %d", ErrEncode, k, id, n, maxLength)
	}
	t := byte(k) << 6
	if id > 0xFF {
		t |= 1 << 5
	}
	switch {
	case n <= 7:
		t |= byte(n)
	case n <= 0xFF:
		t |= 1 << 3
	case n <= 0xFFFF:
		t |= 2 << 3
	default:
		t |= 3 << 3
	}
	dst = append(dst, t)
	if id > 0xFF {
		dst = binary.BigEndian.AppendUint16(dst, id)
	} else {
		dst = append(dst, byte(id))
	}
	switch {
	case n <= 7:
	case n <= 0xFF:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, v...), nil
}

// appendValue appends the TLV value bytes of v.
func appendValue(dst []byte, v lwm2m.Value) ([]byte, error) {
	switch v.Type {
	case lwm2m.TypeInteger, lwm2m.TypeTime:
		i := v.Int
		switch {
		case i == int64(int8(i)):
			return append(dst, byte(i)), nil
		case i == int64(int16(i)):
			return binary.BigEndian.AppendUint16(dst, uint16(i)), nil
		case i == int64(int32(i)):
			return binary.BigEndian.AppendUint32(dst, uint32(i)), nil
		}
		return binary.BigEndian.AppendUint64(dst, uint64(i)), nil
	case lwm2m.TypeUnsigned:
		u := v.Uint
		switch {
		case u <= math.MaxUint8:
			return append(dst, byte(u)), nil
		case u <= math.MaxUint16:
			return binary.BigEndian.AppendUint16(dst, uint16(u)), nil
		case u <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(dst, uint32(u)), nil
		}
		return binary.BigEndian.AppendUint64(dst, u), nil
	case lwm2m.TypeFloat:
		// Compare bits, not values, so that NaNs from 4-byte floats stay 4
		// bytes long.
		if f32 := float32(v.Float); math.Float64bits(float64(f32)) == math.Float64bits(v.Float) {
			return binary.BigEndian.AppendUint32(dst, math.Float32bits(f32)), nil
		}
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(v.Float)), nil
	case lwm2m.TypeBoolean:
		if v.Bool {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case lwm2m.TypeString, lwm2m.TypeCoreLink:
		if !utf8.ValidString(v.Str) {
			return nil, fmt.Errorf("%w: %s is not valid UTF-8", ErrEncode, v.Type)
		}
		return append(dst, v.Str...), nil
	case lwm2m.TypeOpaque:
		return append(dst, v.Bytes...), nil
	case lwm2m.TypeObjlnk:
		dst = binary.BigEndian.AppendUint16(dst, v.Objlnk.Obj)
		return binary.BigEndian.AppendUint16(dst, v.Objlnk.Inst), nil
	}
	return nil, fmt.Errorf("%w: value of type %s", ErrEncode, v.Type)
}

// entry is one parsed TLV.
type entry struct {
	kind  kind
	id    uint16
	value []byte
}

// next parses the TLV at the start of b and returns it with the rest of b.
// It consumes at least two bytes or fails.
func next(b []byte) (entry, []byte, error) {
	if len(b) < 2 {
		return entry{}, nil, fmt.Errorf("%w: truncated header (%d bytes)", ErrFormat, len(b))
	}
	t := b[0]
	e := entry{kind: kind(t >> 6)}
	b = b[1:]
	if t&(1<<5) != 0 {
		if len(b) < 2 {
			return entry{}, nil, fmt.Errorf("%w: truncated 16-bit identifier", ErrFormat)
		}
		e.id = binary.BigEndian.Uint16(b)
		b = b[2:]
	} else {
		e.id = uint16(b[0])
		b = b[1:]
	}
	// ID 65535 is reserved by the specification and never names an object
	// instance, resource or resource instance (catalogue B25).
	if e.id > lwm2m.MaxID {
		return entry{}, nil, fmt.Errorf("%w: %s id %d is reserved", ErrFormat, e.kind, e.id)
	}
	var n int
	switch lt := int(t>>3) & 3; lt {
	case 0:
		n = int(t & 7)
	default:
		// lt is the size of the length field in bytes (1, 2 or 3).
		if len(b) < lt {
			return entry{}, nil, fmt.Errorf("%w: %s %d: truncated %d-bit length", ErrFormat, e.kind, e.id, 8*lt)
		}
		for _, c := range b[:lt] {
			n = n<<8 | int(c)
		}
		b = b[lt:]
	}
	// Catalogue B22: a length beyond the buffer is an error, never a
	// short read.
	if n > len(b) {
		return entry{}, nil, fmt.Errorf("%w: %s %d: length %d exceeds the remaining %d bytes", ErrFormat, e.kind, e.id, n, len(b))
	}
	e.value = b[:n:n]
	return e, b[n:], nil
}

// decoder holds the state of one Decode call.
type decoder struct {
	typeOf func(lwm2m.Path) lwm2m.Type
	recs   []lwm2m.Record
}

// Decode decodes a TLV payload addressed to base into records sorted by
// path. typeOf receives each resource path (Len 3) and returns the
// resource's type; a nil typeOf, [lwm2m.TypeNone] or a type this package
// does not know decodes the value as opaque.
//
// # Notes
//
//   - At an object (base.Len 1) the payload must be Object Instance TLVs.
//     At an object instance (Len 2) it is either resource TLVs or a single
//     Object Instance TLV for that instance wrapping them. At a resource
//     (Len 3) it is one Resource or Multiple Resource TLV for that
//     resource, and at a resource instance (Len 4) one Resource Instance
//     TLV. Decoding at the root (Len 0) is rejected.
//   - Rejected with an error wrapping [ErrFormat]: lengths beyond the
//     buffer, nesting deeper than Object Instance → Multiple Resource →
//     Resource Instance, IDs that disagree with base or are 65535,
//     duplicate IDs, integers and times of length other than 1, 2, 4 or 8,
//     floats of length other than 4 or 8, booleans other than one byte 0
//     or 1, object links of length other than 4, strings that are not
//     UTF-8, and payloads over [MaxSize] ([ErrTooLarge]).
//   - Opaque values are copied; the records do not alias b.
//   - An empty payload decodes to no records.
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 §7.4.3.
func Decode(base lwm2m.Path, b []byte, typeOf func(lwm2m.Path) lwm2m.Type) ([]lwm2m.Record, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	if err := checkBase(base); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	d := decoder{typeOf: typeOf}
	var err error
	switch base.Len {
	case 1:
		err = d.objectInstances(base, b)
	case 2:
		err = d.instance(base, b)
	case 3:
		err = d.single(base, b, func(e entry) error {
			if e.kind != kindResource && e.kind != kindMultipleResource {
				return fmt.Errorf("%w: %s %d where a resource is expected at %s", ErrFormat, e.kind, e.id, base)
			}
			if e.id != base.Res() {
				return fmt.Errorf("%w: resource %d at %s", ErrFormat, e.id, base)
			}
			return d.resource(base.Parent(), e, nil)
		})
	case 4:
		err = d.single(base, b, func(e entry) error {
			if e.kind != kindResourceInstance {
				return fmt.Errorf("%w: %s %d where a resource instance is expected at %s", ErrFormat, e.kind, e.id, base)
			}
			if e.id != base.RInst() {
				return fmt.Errorf("%w: resource instance %d at %s", ErrFormat, e.id, base)
			}
			return d.value(base, e.value)
		})
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(d.recs, func(a, b lwm2m.Record) int { return a.Path.Compare(b.Path) })
	return d.recs, nil
}

// single decodes a payload that must hold exactly one TLV (or none).
func (d *decoder) single(base lwm2m.Path, b []byte, f func(entry) error) error {
	if len(b) == 0 {
		return nil
	}
	e, rest, err := next(b)
	if err != nil {
		return fmt.Errorf("%s: %w", base, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d bytes after the %s TLV at %s", ErrFormat, len(rest), e.kind, base)
	}
	return f(e)
}

// objectInstances decodes Object Instance TLVs under the object path obj.
func (d *decoder) objectInstances(obj lwm2m.Path, b []byte) error {
	seen := make(idSet)
	for len(b) > 0 {
		e, rest, err := next(b)
		if err != nil {
			return fmt.Errorf("%s: %w", obj, err)
		}
		b = rest
		if e.kind != kindObjectInstance {
			return fmt.Errorf("%w: %s %d directly under object %s", ErrFormat, e.kind, e.id, obj)
		}
		if !seen.add(e.id) {
			return fmt.Errorf("%w: duplicate object instance %d under %s", ErrFormat, e.id, obj)
		}
		if err := d.resources(obj.Child(e.id), e.value); err != nil {
			return err
		}
	}
	return nil
}

// instance decodes the payload of an object instance path, with or
// without the Object Instance wrapper.
func (d *decoder) instance(inst lwm2m.Path, b []byte) error {
	if len(b) > 0 && kind(b[0]>>6) == kindObjectInstance {
		e, rest, err := next(b)
		if err != nil {
			return fmt.Errorf("%s: %w", inst, err)
		}
		if e.id != inst.Inst() {
			return fmt.Errorf("%w: object instance %d at %s", ErrFormat, e.id, inst)
		}
		if len(rest) != 0 {
			return fmt.Errorf("%w: %d bytes after the object instance TLV at %s", ErrFormat, len(rest), inst)
		}
		b = e.value
	}
	return d.resources(inst, b)
}

// resources decodes Resource and Multiple Resource TLVs under the object
// instance path inst.
func (d *decoder) resources(inst lwm2m.Path, b []byte) error {
	seen := make(idSet)
	for len(b) > 0 {
		e, rest, err := next(b)
		if err != nil {
			return fmt.Errorf("%s: %w", inst, err)
		}
		b = rest
		if e.kind != kindResource && e.kind != kindMultipleResource {
			return fmt.Errorf("%w: %s %d nested in object instance %s", ErrFormat, e.kind, e.id, inst)
		}
		if err := d.resource(inst, e, seen); err != nil {
			return err
		}
	}
	return nil
}

// resource decodes one Resource or Multiple Resource TLV under inst. When
// seen is not nil it rejects resource IDs already in it.
func (d *decoder) resource(inst lwm2m.Path, e entry, seen idSet) error {
	res := inst.Child(e.id)
	if seen != nil && !seen.add(e.id) {
		return fmt.Errorf("%w: duplicate resource %s", ErrFormat, res)
	}
	if e.kind == kindResource {
		return d.value(res, e.value)
	}
	ris := make(idSet)
	for b := e.value; len(b) > 0; {
		ri, rest, err := next(b)
		if err != nil {
			return fmt.Errorf("%s: %w", res, err)
		}
		b = rest
		if ri.kind != kindResourceInstance {
			return fmt.Errorf("%w: %s %d nested in multiple resource %s", ErrFormat, ri.kind, ri.id, res)
		}
		if !ris.add(ri.id) {
			return fmt.Errorf("%w: duplicate resource instance %s", ErrFormat, res.Child(ri.id))
		}
		if err := d.value(res.Child(ri.id), ri.value); err != nil {
			return err
		}
	}
	return nil
}

// value decodes the value bytes of the resource or resource instance at p
// and appends the record.
func (d *decoder) value(p lwm2m.Path, b []byte) error {
	t := lwm2m.TypeNone
	if d.typeOf != nil {
		res := p
		if res.Len == 4 {
			res = res.Parent()
		}
		t = d.typeOf(res)
	}
	v, err := decodeValue(t, b)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	d.recs = append(d.recs, lwm2m.Record{Path: p, Value: v})
	return nil
}

// decodeValue decodes value bytes as type t; the lengths it accepts are
// those of Core TS 1.1 Appendix C (TLV column).
func decodeValue(t lwm2m.Type, b []byte) (lwm2m.Value, error) {
	switch t {
	case lwm2m.TypeInteger, lwm2m.TypeTime:
		// Appendix C: a signed integer in network byte order, two's
		// complement, 1, 2, 4 or 8 bytes long; Time is the same as Integer.
		var i int64
		switch len(b) {
		case 1:
			i = int64(int8(b[0]))
		case 2:
			i = int64(int16(binary.BigEndian.Uint16(b)))
		case 4:
			i = int64(int32(binary.BigEndian.Uint32(b)))
		case 8:
			i = int64(binary.BigEndian.Uint64(b))
		default:
			return lwm2m.Value{}, fmt.Errorf("%w: %s of length %d", ErrFormat, t, len(b))
		}
		return lwm2m.Value{Type: t, Int: i}, nil
	case lwm2m.TypeUnsigned:
		var u uint64
		switch len(b) {
		case 1:
			u = uint64(b[0])
		case 2:
			u = uint64(binary.BigEndian.Uint16(b))
		case 4:
			u = uint64(binary.BigEndian.Uint32(b))
		case 8:
			u = binary.BigEndian.Uint64(b)
		default:
			return lwm2m.Value{}, fmt.Errorf("%w: unsigned of length %d", ErrFormat, len(b))
		}
		return lwm2m.Uint(u), nil
	case lwm2m.TypeFloat:
		// Appendix C: IEEE 754 binary32 or binary64, 4 or 8 bytes long.
		switch len(b) {
		case 4:
			return lwm2m.Float(float64(math.Float32frombits(binary.BigEndian.Uint32(b)))), nil
		case 8:
			return lwm2m.Float(math.Float64frombits(binary.BigEndian.Uint64(b))), nil
		}
		return lwm2m.Value{}, fmt.Errorf("%w: float of length %d", ErrFormat, len(b))
	case lwm2m.TypeBoolean:
		// Appendix C: one byte, 0 for false and 1 for true.
		if len(b) != 1 || b[0] > 1 {
			return lwm2m.Value{}, fmt.Errorf("%w: boolean % x", ErrFormat, b)
		}
		return lwm2m.Bool(b[0] == 1), nil
	case lwm2m.TypeString, lwm2m.TypeCoreLink:
		if !utf8.Valid(b) {
			return lwm2m.Value{}, fmt.Errorf("%w: %s is not valid UTF-8", ErrFormat, t)
		}
		return lwm2m.Value{Type: t, Str: string(b)}, nil
	case lwm2m.TypeObjlnk:
		// Appendix C: two 16-bit unsigned integers, object ID then
		// instance ID, 4 bytes in all.
		if len(b) != 4 {
			return lwm2m.Value{}, fmt.Errorf("%w: objlnk of length %d", ErrFormat, len(b))
		}
		return lwm2m.Link(binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])), nil
	}
	return lwm2m.Opaque(append([]byte{}, b...)), nil
}

// idSet records the IDs seen in one container.
type idSet map[uint16]struct{}

// add adds id and reports whether it was new.
func (s idSet) add(id uint16) bool {
	if _, ok := s[id]; ok {
		return false
	}
	s[id] = struct{}{}
	return true
}
