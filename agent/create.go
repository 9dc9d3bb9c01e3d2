package agent

import (
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/lwcbor"
	"github.com/avc-agent/avc/lwm2m/senml"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// creatable reports whether a server may create and delete instances of o:
// custom multiple-instance objects and Software Management (o.created).
// The other built-in objects keep their instances (Security, Server,
// Device, Connectivity Monitoring and Statistics and Firmware Update have
// exactly one; Location's appears with the host's first fix).
func (o *object) creatable() bool {
	return o.def.multiple && (!builtinObject(o.def.id) || o.created != nil)
}

// freeID returns the lowest instance ID not in use.
func (o *object) freeID() (uint16, bool) {
	for id := 0; id <= lwm2m.MaxID; id++ {
		if _, used := o.insts[uint16(id)]; !used {
			return uint16(id), true
		}
	}
	return 0, false
}

// newInstance is one instance a Create asks for, with its values.
type newInstance struct {
	id   uint16
	recs []lwm2m.Record
}

// create handles Create: a POST on an object path (Core TS 1.1 §6.3.6).
// Everything is validated before anything changes, so a refused Create
// leaves the object as it was.
//
// # Notes
//
//   - The instance IDs come from the payload: TLV Object Instance
//     wrappers, or the paths of SenML and LwM2M-CBOR records. §6.3.6:
//     "When there is no reference to Object Instance in the TLV/CBOR/JSON
//     payload of the "Create" command, the LwM2M Client MUST assigns the
//     ID of the created Object Instance"; the engine takes the lowest free
//     ID. In TLV the reference is absent when the top-level TLVs are
//     resources; SenML and LwM2M-CBOR name instances in every record, so
//     only an empty payload leaves the choice to the client.
//   - One created instance is answered 2.01 Created with its
//     Location-Path (RFC 7252 §5.8.2: the response "SHOULD include the
//     URI of the new resource in a sequence of one or more Location-Path
//     and/or Location-Query Options").
//   - Answers: 4.05 for objects whose instances a server may not create,
//     4.00 for an existing instance ("Target (i.e., Object) already
//     exists"), a payload that does not decode, a value that is not of the
//     resource's type, a resource that is not writable or not defined, or
//     a missing Mandatory writable resource, and for a request without
//     Content-Format; 4.15 for a format that cannot carry an instance
//     (text/plain, opaque, CBOR).
func (e *Engine) create(now time.Time, p lwm2m.Path, m *message.Message) *message.Message {
	o, _, errResp := e.lookup(p)
	if errResp != nil {
		return errResp
	}
	if !o.creatable() {
		// "4.05 Method Not Allowed: Target is not allowed for "Create"
		// operation".
		return reply(codes.MethodNotAllowed)
	}
	if !e.permitCreate(o.def.id) {
		return reply(codes.Unauthorized)
	}
	insts, errResp := e.decodeCreate(o, m)
	if errResp != nil {
		return errResp
	}
	type change struct {
		d *resDef
		r lwm2m.Record
	}
	plan := make([][]change, len(insts))
	for i, ni := range insts {
		if _, exists := o.insts[ni.id]; exists {
			// "4.00 Bad Request: Target (i.e., Object) already exists".
			return reply(codes.BadRequest)
		}
		given := make(map[uint16]bool, len(ni.recs))
		for _, r := range ni.recs {
			d, ok := o.def.resource(r.Path.Res())
			// A value for a resource the server may not write makes the
			// request bad; the target (the object) does allow Create, so
			// this is not 4.05, which names a target not allowed for the
			// operation.
			if !ok || d.ops&opW == 0 || (r.Path.Len == 4) != d.multi {
				return reply(codes.BadRequest)
			}
			v, err := r.Value.Convert(d.typ)
			if err != nil {
				return reply(codes.BadRequest)
			}
			r.Value = v
			if o.write != nil {
				if err := o.write(now, ni.id, d.id, v, false); err != nil && !errors.Is(err, errNoHook) {
					return reply(codes.BadRequest)
				}
			}
			given[d.id] = true
			plan[i] = append(plan[i], change{d, r})
		}
		for _, id := range o.def.mandatory {
			// The Mandatory resources a server can write are the ones a
			// Create must carry; read-only ones are the client's to fill.
			if d, ok := o.def.resource(id); ok && d.ops&opW != 0 && !given[id] {
				return reply(codes.BadRequest)
			}
		}
	}
	if o.maxInsts > 0 && len(o.insts)+len(insts) > o.maxInsts {
		// No room for more: refused like a bad payload, changing nothing.
		return reply(codes.BadRequest)
	}
	for i, ni := range insts {
		in := &instance{id: ni.id, vals: map[uint16]map[uint16]lwm2m.Value{}}
		o.insts[ni.id] = in
		if o.created != nil {
			o.created(now, ni.id)
		}
		for _, c := range plan[i] {
			stored := o.write == nil
			if !stored {
				if err := o.write(now, in.id, c.d.id, c.r.Value, true); errors.Is(err, errNoHook) {
					stored = true
				}
			}
			if !stored {
				continue
			}
			if in.vals[c.d.id] == nil {
				in.vals[c.d.id] = make(map[uint16]lwm2m.Value)
			}
			ri := uint16(0)
			if c.d.multi {
				ri = c.r.Path.RInst()
			}
			in.vals[c.d.id][ri] = c.r.Value
		}
		ip := lwm2m.P(o.def.id, ni.id)
		e.aclCreated(o.def.id, ni.id)
		e.logDebug("instance created", "path", ip.String())
		// A dedicated create event may replace this write event.
		e.emit(Event{Kind: EventCreate, Path: ip.String()})
		e.instancesChanged(ip)
	}
	resp := reply(codes.Created)
	if len(insts) == 1 {
		for _, seg := range []uint16{o.def.id, insts[0].id} {
			resp.Options = addString(resp.Options, message.LocationPath, strconv.Itoa(int(seg)))
		}
	}
	return resp
}

// decodeCreate decodes a Create payload into the instances it asks for,
// in ID order; an instance the payload does not name gets the lowest free
// ID.
func (e *Engine) decodeCreate(o *object, m *message.Message) ([]newInstance, *message.Message) {
	cf, hasCF := uintOpt(m, message.ContentFormat)
	if !hasCF {
		// A Create payload must say which of the formats that carry an
		// instance it is in.
		return nil, reply(codes.BadRequest)
	}
	obj := lwm2m.P(o.def.id)
	var (
		recs []lwm2m.Record
		ids  []uint16 // named by the payload
		err  error
	)
	switch format := lwm2m.ContentFormat(cf); format {
	case lwm2m.FormatTLV:
		if len(m.Payload) > 0 && m.Payload[0]>>6 == 0 {
			// Object Instance TLVs (type bits 00) name the instances.
			recs, err = tlv.Decode(obj, m.Payload, e.typeOf)
			if err == nil {
				ids = tlvInstanceIDs(m.Payload)
			}
			break
		}
		// Resource TLVs at the top level: the client picks the ID.
		id, ok := o.freeID()
		if !ok {
			return nil, reply(codes.BadRequest)
		}
		if recs, err = tlv.Decode(obj.Child(id), m.Payload, e.typeOf); err == nil {
			return []newInstance{{id: id, recs: recs}}, nil
		}
	case lwm2m.FormatSenMLJSON:
		recs, err = senml.DecodeJSON(obj, m.Payload, e.typeOf)
	case lwm2m.FormatSenMLCBOR:
		recs, err = senml.DecodeCBOR(obj, m.Payload, e.typeOf)
	case lwm2m.FormatLwM2MCBOR:
		recs, err = lwcbor.Decode(obj, m.Payload, e.typeOf)
	default:
		// LwM2M TS 1.0 §6.4.1: "The plain text format is used for "Read"
		// and "Write" operations on singular Resources"; opaque and CBOR
		// likewise carry one value, never an Object Instance. RFC 7252 §5.9.2.9 makes 4.15 HTTP's
		// 415, whose payload "is in a format not supported by this method
		// on the target resource" (RFC 7231 §6.5.13).
		return nil, reply(codes.UnsupportedMediaType)
	}
	if err != nil {
		e.logDebug("bad create payload", "path", obj.String(), "format", lwm2m.ContentFormat(cf).String(), "err", err)
		return nil, reply(codes.BadRequest)
	}
	for _, r := range recs {
		if !slices.Contains(ids, r.Path.Inst()) {
			ids = append(ids, r.Path.Inst())
		}
	}
	if len(ids) == 0 {
		id, ok := o.freeID()
		if !ok {
			return nil, reply(codes.BadRequest)
		}
		return []newInstance{{id: id}}, nil
	}
	slices.Sort(ids)
	insts := make([]newInstance, len(ids))
	for i, id := range ids {
		insts[i].id = id
		for _, r := range recs {
			if r.Path.Inst() == id {
				insts[i].recs = append(insts[i].recs, r)
			}
		}
	}
	return insts, nil
}

// tlvInstanceIDs returns the IDs of the top-level TLVs of b, a payload
// tlv.Decode accepted, so that an Object Instance TLV with no resources
// still names its instance.
func tlvInstanceIDs(b []byte) []uint16 {
	var ids []uint16
	for len(b) >= 2 {
		t := b[0]
		b = b[1:]
		var id uint16
		if t&(1<<5) != 0 {
			if len(b) < 2 {
				return ids
			}
			id, b = binary.BigEndian.Uint16(b), b[2:]
		} else {
			id, b = uint16(b[0]), b[1:]
		}
		n := int(t & 7)
		if lt := int(t>>3) & 3; lt > 0 {
			if len(b) < lt {
				return ids
			}
			n = 0
			for _, c := range b[:lt] {
				n = n<<8 | int(c)
			}
			b = b[lt:]
		}
		if n > len(b) {
			return ids
		}
		ids = append(ids, id)
		b = b[n:]
	}
	return ids
}

// deleteInstance handles Delete: a DELETE on an object instance path
// (Core TS 1.1 §6.3.7). Only instances of objects a server may create can
// be deleted; any other target is "4.05 Method Not Allowed: Target is not
// allowed for "Delete" operation", a missing instance 4.04.
func (e *Engine) deleteInstance(p lwm2m.Path) *message.Message {
	if p.Len != 2 {
		// LwM2M 1.1 deletes object instances only; deleting the root is
		// the Bootstrap-Server's.
		return reply(codes.MethodNotAllowed)
	}
	o, ok := e.objs.objs[p.Obj()]
	if !ok {
		return reply(codes.NotFound)
	}
	if !o.creatable() {
		return reply(codes.MethodNotAllowed)
	}
	if _, ok := o.insts[p.Inst()]; !ok {
		return reply(codes.NotFound)
	}
	if !e.permit(p, ACLDelete) {
		return reply(codes.Unauthorized)
	}
	if o.deleting != nil {
		if err := o.deleting(e.now, p.Inst()); err != nil {
			e.logWarn("instance not deleted", "path", p.String(), "err", err)
			return reply(codes.InternalServerError)
		}
	}
	delete(o.insts, p.Inst())
	e.aclDeleted(p.Obj(), p.Inst())
	e.emit(Event{Kind: EventDelete, Path: p.String()})
	// Attributes written on the instance or below go with it: an
	// instance created later with the same ID starts afresh.
	for k := range e.obs.attrs {
		if p.Contains(k.path) {
			delete(e.obs.attrs, k)
		}
	}
	e.logDebug("instance deleted", "path", p.String())
	e.instancesChanged(p)
	return reply(codes.Deleted)
}

// instancesChanged follows an instance created or deleted at p: the
// observations of p, above it or below it are re-evaluated at once (those
// of a deleted instance then end with 4.04, RFC 7641 §3.2), and the
// server learns the new object list from a Registration Update sent once
// the request has been answered (Core TS 1.1 §6.2.2: the client updates
// its registration when its objects or instances change).
func (e *Engine) instancesChanged(p lwm2m.Path) {
	for _, o := range e.obs.obs {
		if p.Contains(o.path) || o.path.Contains(p) {
			o.dirty = true
		}
	}
	for _, r := range e.registrations() {
		if r.location != "" && r.linksChanged() {
			r.wantUpdat = true
		}
	}
}
