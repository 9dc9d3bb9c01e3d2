package agent

import (
	"maps"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
)

// Access Control (Object 2; Core TS 1.1 §7.3.3 and Appendix E.3). With a
// single DM server nothing is checked: it has full access, and the object
// has no instances unless a bootstrap server wrote some. With more than
// one usable DM server account, every operation a DM server asks for is
// checked against the Access Control instance of the object instance it
// targets:
//
//   - the server's own ACL entry (/2/x/2, resource instance = its Short
//     Server ID) gives its rights; without one, the Access Control Owner
//     (/2/x/3) has full access, and any other server the default entry
//     (resource instance 0), or nothing;
//   - an object instance without an Access Control instance is refused to
//     every server;
//   - Create on an object needs ACLCreate in the instance whose Object
//     Instance ID is 65535; the new instance gets an Access Control
//     instance owned by the server that created it (no ACL entries: the
//     owner has full access), and loses it when deleted;
//   - the Access Control instances themselves may be read by every server
//     and written by their owner only; none may create or delete them
//     (the client and the bootstrap server do);
//   - a refused operation is answered 4.01 Unauthorized; an object-level
//     Read, Observe or Discover covers the instances the server may read.
//
// The bootstrap server's operations and the host's commands are never
// checked.

// aclDef is the Access Control object (OMA registry, object 2 v1.0).
var aclDef = &objDef{id: 2, name: "LwM2M Access Control", version: "1.0", multiple: true, res: []resDef{
	{0, "Object ID", lwm2m.TypeInteger, opR, false},
	{1, "Object Instance ID", lwm2m.TypeInteger, opR, false},
	{2, "ACL", lwm2m.TypeInteger, opRW, true},
	{3, "Access Control Owner", lwm2m.TypeInteger, opRW, false},
}}

// aclObject returns the live Access Control object.
func (e *Engine) aclObject() *object {
	return &object{def: aclDef, insts: map[uint16]*instance{}, write: func(_ time.Time, _, res uint16, v lwm2m.Value, apply bool) error {
		e.aclDirty = e.aclDirty || apply
		switch res {
		case 2:
			if v.Int < 0 || v.Int > int64(ACLAll) {
				return errInvalid
			}
		case 3:
			if v.Int < 1 || v.Int > 65535 {
				return errInvalid
			}
		}
		return errNoHook
	}}
}

// actAs makes the engine serve the server ssid until the returned
// function is called: its attributes apply, and its access rights are
// checked when more than one server is configured.
func (e *Engine) actAs(ssid uint16) func() {
	prevActing, prevAs := e.acting, e.as
	e.acting, e.as = e.multi, ssid
	return func() { e.acting, e.as = prevActing, prevAs }
}

// permit reports whether the server being served may do need at p (an
// object instance or below; object-level paths are filtered per instance
// by their callers).
func (e *Engine) permit(p lwm2m.Path, need ACLRights) bool {
	if !e.acting || p.Len < 2 {
		return true
	}
	return e.rights(e.as, p.Obj(), p.Inst())&need == need
}

// permitCreate reports whether the server being served may create
// instances of obj.
func (e *Engine) permitCreate(obj uint16) bool {
	if !e.acting {
		return true
	}
	return e.rights(e.as, obj, ACLCreateInstance)&ACLCreate != 0
}

// rights returns the rights of server ssid on /obj/inst; a peer that is
// no DM server (ssid 0) has none.
func (e *Engine) rights(ssid uint16, obj, inst uint16) ACLRights {
	if ssid == 0 {
		return 0
	}
	aco := e.objs.objs[2]
	if obj == 2 {
		in, ok := aco.insts[inst]
		if !ok {
			return 0
		}
		if v, ok := in.value(3); ok && v.Int == int64(ssid) {
			return ACLRead | ACLWrite
		}
		return ACLRead
	}
	in := e.aclFind(obj, inst)
	if in == nil {
		return 0
	}
	acl := in.vals[2]
	if v, ok := acl[ssid]; ok && ssid != 0 {
		return ACLRights(v.Int) & ACLAll
	}
	if v, ok := in.value(3); ok && v.Int == int64(ssid) {
		return ACLAll
	}
	if v, ok := acl[0]; ok {
		return ACLRights(v.Int) & ACLAll
	}
	return 0
}

// aclFind returns the Access Control instance of /obj/inst, if any.
func (e *Engine) aclFind(obj, inst uint16) *instance {
	aco := e.objs.objs[2]
	for _, id := range aco.instanceIDs() {
		in := aco.insts[id]
		o, ok1 := in.value(0)
		i, ok2 := in.value(1)
		if ok1 && ok2 && o.Int == int64(obj) && i.Int == int64(inst) {
			return in
		}
	}
	return nil
}

// aclAdd adds an Access Control instance for /obj/inst with owner and
// acl, replacing the one it had.
func (e *Engine) aclAdd(obj, inst, owner uint16, acl map[uint16]ACLRights) {
	aco := e.objs.objs[2]
	in := e.aclFind(obj, inst)
	if in == nil {
		id, ok := aco.freeID()
		if !ok {
			return
		}
		in = &instance{id: id}
		aco.insts[id] = in
	}
	in.vals = map[uint16]map[uint16]lwm2m.Value{
		0: single(lwm2m.Int(int64(obj))),
		1: single(lwm2m.Int(int64(inst))),
		2: {},
		3: single(lwm2m.Int(int64(owner))),
	}
	for ssid, r := range acl {
		in.vals[2][ssid] = lwm2m.Int(int64(r))
	}
}

// aclCreated gives an instance a server created an Access Control
// instance owned by that server.
func (e *Engine) aclCreated(obj, inst uint16) {
	if e.acting {
		e.aclAdd(obj, inst, e.as, nil)
		e.aclDirty = true
	}
}

// aclDeleted drops the Access Control instance of a deleted instance.
func (e *Engine) aclDeleted(obj, inst uint16) {
	if in := e.aclFind(obj, inst); in != nil {
		delete(e.objs.objs[2].insts, in.id)
		e.aclDirty = true
	}
}

// aclStore keeps the Access Control instances a DM server changed, once
// its request is answered, when a bootstrap provisioned them (the
// configuration's are made anew at each start).
func (e *Engine) aclStore() {
	if !e.aclDirty {
		return
	}
	e.aclDirty = false
	if e.st.Boot != nil {
		e.st.Boot.Access = aclRecordsOf(e.objs.objs[2])
		e.store()
	}
}

// aclHostInstance gives an instance the host created (CmdSet) the
// default access control, when servers are checked and it has none.
func (e *Engine) aclHostInstance(obj, inst uint16) {
	if !e.multi || e.aclFind(obj, inst) != nil {
		return
	}
	owner, acl := e.aclDefault(obj, inst)
	e.aclAdd(obj, inst, owner, acl)
}

// aclDefault returns the access control of /obj/inst when more than one
// server is configured: the configured entry (Config.AccessControl), or
// the first server as owner with read access for the others; each Server
// instance is its own server's, and Create is the first server's.
func (e *Engine) aclDefault(obj, inst uint16) (owner uint16, acl map[uint16]ACLRights) {
	first := uint16(e.dm.ssid)
	for _, ac := range e.cfg.AccessControl {
		if ac.ObjectID == obj && ac.InstanceID == inst {
			owner = ac.Owner
			if owner == 0 {
				owner = first
			}
			return owner, ac.ACL
		}
	}
	switch {
	case inst == ACLCreateInstance:
		return first, nil
	case obj == 1:
		if in, ok := e.objs.objs[1].insts[inst]; ok {
			if v, ok := in.value(0); ok && v.Int > 0 && v.Int < 65535 {
				return uint16(v.Int), nil
			}
		}
		return first, nil
	}
	return first, map[uint16]ACLRights{0: ACLRead}
}

// aclDefaults gives every object instance, and every object whose
// instances a server may create, its default Access Control instance,
// when more than one server is configured and /2 is empty (a bootstrap
// server that wrote Access Control instances decides alone).
func (e *Engine) aclDefaults() {
	aco := e.objs.objs[2]
	if !e.multi || len(aco.insts) > 0 {
		return
	}
	for _, o := range e.objs.list() {
		if o.def.id == 0 || o.def.id == 2 {
			continue
		}
		for _, id := range o.instanceIDs() {
			owner, acl := e.aclDefault(o.def.id, id)
			e.aclAdd(o.def.id, id, owner, acl)
		}
		if o.creatable() {
			owner, acl := e.aclDefault(o.def.id, ACLCreateInstance)
			e.aclAdd(o.def.id, ACLCreateInstance, owner, acl)
		}
	}
	// Configured entries for instances that do not exist yet apply
	// when they appear.
	for _, ac := range e.cfg.AccessControl {
		if e.aclFind(ac.ObjectID, ac.InstanceID) == nil {
			owner, acl := e.aclDefault(ac.ObjectID, ac.InstanceID)
			e.aclAdd(ac.ObjectID, ac.InstanceID, owner, acl)
		}
	}
}

// aclRecord is the stored form of an Access Control instance (in the
// bootstrap record: what a bootstrap server provisioned, and the
// defaults made then).
type aclRecord struct {
	Obj   uint16           `json:"obj"`
	Inst  uint16           `json:"inst"`
	ACL   map[uint16]uint8 `json:"acl,omitempty"`
	Owner uint16           `json:"owner"`
}

func aclRecordsOf(o *object) map[uint16]aclRecord {
	if len(o.insts) == 0 {
		return nil
	}
	out := make(map[uint16]aclRecord, len(o.insts))
	for id, in := range o.insts {
		obj, _ := in.value(0)
		inst, _ := in.value(1)
		owner, _ := in.value(3)
		r := aclRecord{Obj: uint16(obj.Int), Inst: uint16(inst.Int), Owner: uint16(owner.Int)}
		for ssid, v := range in.vals[2] {
			if r.ACL == nil {
				r.ACL = map[uint16]uint8{}
			}
			r.ACL[ssid] = uint8(v.Int)
		}
		out[id] = r
	}
	return out
}

func validACLRecords(recs map[uint16]aclRecord) bool {
	if len(recs) > maxACLInstances {
		return false
	}
	for _, r := range recs {
		if r.Obj == 0 || r.Obj == 65535 || r.Owner == 0 {
			return false
		}
		for _, v := range r.ACL {
			if ACLRights(v) > ACLAll {
				return false
			}
		}
	}
	return true
}

// maxACLInstances bounds the Access Control instances a bootstrap server
// may write.
const maxACLInstances = 1024

func (b *bootRecord) aclInstances() map[uint16]*instance {
	out := make(map[uint16]*instance, len(b.Access))
	for id, r := range b.Access {
		in := &instance{id: id, vals: map[uint16]map[uint16]lwm2m.Value{
			0: single(lwm2m.Int(int64(r.Obj))),
			1: single(lwm2m.Int(int64(r.Inst))),
			2: {},
			3: single(lwm2m.Int(int64(r.Owner))),
		}}
		for ssid, v := range r.ACL {
			in.vals[2][ssid] = lwm2m.Int(int64(v))
		}
		out[id] = in
	}
	return out
}

// bootstrapWriteACL handles a Bootstrap-Write of Access Control
// instances: the instances it names are created or written, an ACL it
// carries replaces the instance's. Nothing changes when a value is
// refused.
func (e *Engine) bootstrapWriteACL(p lwm2m.Path, m *message.Message) *message.Message {
	aco := e.objs.objs[2]
	recs, errResp := e.decodeWrite(p, m)
	if errResp != nil {
		return errResp
	}
	staged := make(map[uint16]*instance, len(aco.insts))
	for id, in := range aco.insts {
		c := &instance{id: id, vals: make(map[uint16]map[uint16]lwm2m.Value, len(in.vals))}
		for res, vs := range in.vals {
			c.vals[res] = maps.Clone(vs)
		}
		staged[id] = c
	}
	aclCleared := map[uint16]bool{}
	for _, r := range recs {
		if !p.Contains(r.Path) || r.Path.Len < 3 {
			return reply(codes.BadRequest)
		}
		d, ok := aclDef.resource(r.Path.Res())
		if !ok || (r.Path.Len == 4) != d.multi {
			return reply(codes.BadRequest)
		}
		v, err := r.Value.Convert(d.typ)
		if err != nil {
			return reply(codes.BadRequest)
		}
		switch {
		case d.id == 0 && (v.Int < 1 || v.Int > 65534),
			d.id == 1 && (v.Int < 0 || v.Int > 65535),
			d.id == 2 && (v.Int < 0 || v.Int > int64(ACLAll) || r.Path.RInst() == 65535),
			d.id == 3 && (v.Int < 1 || v.Int > 65535):
			return reply(codes.BadRequest)
		}
		in, ok := staged[r.Path.Inst()]
		if !ok {
			if len(staged) >= maxACLInstances {
				return reply(codes.BadRequest)
			}
			in = &instance{id: r.Path.Inst(), vals: map[uint16]map[uint16]lwm2m.Value{2: {}}}
			staged[in.id] = in
		}
		if d.id == 2 {
			if !aclCleared[in.id] {
				aclCleared[in.id] = true
				in.vals[2] = map[uint16]lwm2m.Value{}
			}
			in.vals[2][r.Path.RInst()] = v
			continue
		}
		in.vals[d.id] = single(v)
	}
	for _, in := range staged {
		// Object, instance and owner are mandatory.
		for _, res := range []uint16{0, 1, 3} {
			if _, ok := in.value(res); !ok {
				return reply(codes.BadRequest)
			}
		}
	}
	aco.insts = staged
	e.logInfo("bootstrap write", "path", p.String())
	return reply(codes.Changed)
}

// permitPush checks a package write that streams into storage
// (packageWrite) without going through serve: nil when the server at
// peer may write its path, 4.01 otherwise.
func (e *Engine) permitPush(peer string, m *message.Message) *message.Message {
	if !e.multi || !e.isDMPeer(peer) {
		return nil
	}
	p, err := lwm2m.ParseSegments(stringOpts(m, message.URIPath))
	if err != nil {
		return nil
	}
	defer e.actAs(e.ssidOf(peer))()
	if !e.permit(p, ACLWrite) {
		return reply(codes.Unauthorized)
	}
	return nil
}
