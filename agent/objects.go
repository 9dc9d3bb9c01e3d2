package agent

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/text"
)

// op is the set of operations a resource allows.
type op uint8

const (
	opR op = 1 << iota
	opW
	opE
	opRW = opR | opW
)

// resDef describes one resource of an object (from the OMA registry).
type resDef struct {
	id    uint16
	name  string
	typ   lwm2m.Type
	ops   op
	multi bool
}

// objDef describes an object.
type objDef struct {
	id       uint16
	name     string
	version  string
	multiple bool // instances come and go (custom multiple-instance objects, Location)
	res      []resDef
	// mandatory lists the resources the object definition marks
	// Mandatory; a Create must carry the writable ones (create.go).
	mandatory []uint16
	// onRead holds the resources whose values the host supplies on
	// demand when a server reads them (readcb.go).
	onRead map[uint16]bool
}

func (d *objDef) resource(id uint16) (*resDef, bool) {
	for i := range d.res {
		if d.res[i].id == id {
			return &d.res[i], true
		}
	}
	return nil, false
}

// Object definitions (OMA LwM2M registry, objects 0, 1 and 3 v1.1).
var (
	securityDef = &objDef{id: 0, name: "LwM2M Security", version: "1.1", res: []resDef{
		{0, "LwM2M Server URI", lwm2m.TypeString, opRW, false},
		{1, "Bootstrap-Server", lwm2m.TypeBoolean, opRW, false},
		{2, "Security Mode", lwm2m.TypeInteger, opRW, false},
		{3, "Public Key or Identity", lwm2m.TypeOpaque, opRW, false},
		{4, "Server Public Key", lwm2m.TypeOpaque, opRW, false},
		{5, "Secret Key", lwm2m.TypeOpaque, opW, false},
		{6, "SMS Security Mode", lwm2m.TypeInteger, opRW, false},
		{7, "SMS Binding Key Parameters", lwm2m.TypeOpaque, opRW, false},
		{8, "SMS Binding Secret Key(s)", lwm2m.TypeOpaque, opW, false},
		{9, "LwM2M Server SMS Number", lwm2m.TypeString, opRW, false},
		{10, "Short Server ID", lwm2m.TypeInteger, opRW, false},
		{11, "Client Hold Off Time", lwm2m.TypeInteger, opRW, false},
		{12, "Bootstrap-Server Account Timeout", lwm2m.TypeInteger, opRW, false},
		{13, "Matching Type", lwm2m.TypeInteger, opRW, false},
		{14, "SNI", lwm2m.TypeString, opRW, false},
		{15, "Certificate Usage", lwm2m.TypeInteger, opRW, false},
	}}
	serverDef = &objDef{id: 1, name: "LwM2M Server", version: "1.1", res: []resDef{
		{0, "Short Server ID", lwm2m.TypeInteger, opR, false},
		{1, "Lifetime", lwm2m.TypeInteger, opRW, false},
		{2, "Default Minimum Period", lwm2m.TypeInteger, opRW, false},
		{3, "Default Maximum Period", lwm2m.TypeInteger, opRW, false},
		{4, "Disable", lwm2m.TypeNone, opE, false},
		{5, "Disable Timeout", lwm2m.TypeInteger, opRW, false},
		{6, "Notification Storing When Disabled or Offline", lwm2m.TypeBoolean, opRW, false},
		{7, "Binding", lwm2m.TypeString, opRW, false},
		{8, "Registration Update Trigger", lwm2m.TypeNone, opE, false},
		{9, "Bootstrap-Request Trigger", lwm2m.TypeNone, opE, false},
		{16, "Bootstrap on Registration Failure", lwm2m.TypeBoolean, opRW, false},
		{23, "Mute Send", lwm2m.TypeBoolean, opRW, false},
	}}
	deviceDef = &objDef{id: 3, name: "Device", version: "1.1", res: []resDef{
		{0, "Manufacturer", lwm2m.TypeString, opR, false},
		{1, "Model Number", lwm2m.TypeString, opR, false},
		{2, "Serial Number", lwm2m.TypeString, opR, false},
		{3, "Firmware Version", lwm2m.TypeString, opR, false},
		{4, "Reboot", lwm2m.TypeNone, opE, false},
		{5, "Factory Reset", lwm2m.TypeNone, opE, false},
		{6, "Available Power Sources", lwm2m.TypeInteger, opR, true},
		{7, "Power Source Voltage", lwm2m.TypeInteger, opR, true},
		{8, "Power Source Current", lwm2m.TypeInteger, opR, true},
		{9, "Battery Level", lwm2m.TypeInteger, opR, false},
		{10, "Memory Free", lwm2m.TypeInteger, opR, false},
		{11, "Error Code", lwm2m.TypeInteger, opR, true},
		{12, "Reset Error Code", lwm2m.TypeNone, opE, false},
		{13, "Current Time", lwm2m.TypeTime, opRW, false},
		{14, "UTC Offset", lwm2m.TypeString, opRW, false},
		{15, "Timezone", lwm2m.TypeString, opRW, false},
		{16, "Supported Binding and Modes", lwm2m.TypeString, opR, false},
		{17, "Device Type", lwm2m.TypeString, opR, false},
		{18, "Hardware Version", lwm2m.TypeString, opR, false},
		{19, "Software Version", lwm2m.TypeString, opR, false},
		{20, "Battery Status", lwm2m.TypeInteger, opR, false},
		{21, "Memory Total", lwm2m.TypeInteger, opR, false},
	}}
)

// Version is the avc version reported as the Device's software version.
const Version = "0.1.0"

// errInvalid marks a value a server may not write (answered 4.00).
var errInvalid = errors.New("agent: invalid value")

// instance holds the values of one object instance. Single resources are
// stored at resource-instance ID 0 with multi false.
type instance struct {
	id   uint16
	vals map[uint16]map[uint16]lwm2m.Value
}

// object is a live object: its definition, its instances and the hooks
// that give dynamic values and side effects.
type object struct {
	def   *objDef
	insts map[uint16]*instance
	// dynamic returns a computed value for a resource, if it has one.
	dynamic func(now time.Time, inst, res uint16) (map[uint16]lwm2m.Value, bool)
	// write validates a write and, when apply is set, applies it. It
	// returns errNoHook to have the value stored as is, errInvalid to
	// refuse it. nil write means store every value.
	write func(now time.Time, inst, res uint16, v lwm2m.Value, apply bool) error
	// exec runs an executable resource.
	exec func(now time.Time, inst, res uint16, args []byte) error
	// created, when set, lets a server create and delete instances of a
	// built-in object (Software Management): it is called for each new
	// instance before the values of the Create are written. deleting is
	// called before an instance is deleted; an error keeps it (5.00).
	// maxInsts, when positive, bounds the instances Creates may make.
	created  func(now time.Time, inst uint16)
	deleting func(now time.Time, inst uint16) error
	maxInsts int
}

func (o *object) instanceIDs() []uint16 {
	ids := make([]uint16, 0, len(o.insts))
	for id := range o.insts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// values returns the resource instances of res in inst (nil when the
// resource is absent).
func (o *object) values(now time.Time, in *instance, res uint16) map[uint16]lwm2m.Value {
	if o.dynamic != nil {
		if v, ok := o.dynamic(now, in.id, res); ok {
			return v
		}
	}
	return in.vals[res]
}

// objectTree holds the objects of the client.
type objectTree struct {
	e    *Engine
	objs map[uint16]*object
}

func single(v lwm2m.Value) map[uint16]lwm2m.Value { return map[uint16]lwm2m.Value{0: v} }

func newObjectTree(e *Engine) *objectTree {
	t := &objectTree{e: e, objs: make(map[uint16]*object)}
	c := &e.cfg
	// The Security /0 and Server /1 instances: the provisioned ones from
	// the stored state after a bootstrap, otherwise the factory ones from
	// the configuration (bootstrap.go). A DM server never reads /0 (4.01).
	sec, srv := e.accountInstances()
	t.add(&object{def: securityDef, insts: sec})
	t.add(&object{def: serverDef, insts: srv,
		dynamic: func(_ time.Time, inst, res uint16) (map[uint16]lwm2m.Value, bool) {
			if inst != e.srvInst || !e.hasDM {
				return nil, false
			}
			switch res {
			case 1:
				return single(lwm2m.Int(int64(e.st.Lifetime))), true
			case 7:
				return single(lwm2m.String(e.st.Binding)), true
			}
			return nil, false
		},
		write: e.writeServer,
		exec:  e.execServer,
	})

	d := c.Device
	dev := map[uint16]map[uint16]lwm2m.Value{
		0:  single(lwm2m.String(orDefault(d.Manufacturer, "avc"))),
		1:  single(lwm2m.String(orDefault(d.Model, "avc-agent"))),
		2:  single(lwm2m.String(orDefault(d.Serial, c.Endpoint))),
		3:  single(lwm2m.String(orDefault(d.FirmwareVersion, "0.0.0"))),
		6:  {0: lwm2m.Int(0)}, // DC power
		7:  {0: lwm2m.Int(5000)},
		8:  {0: lwm2m.Int(0)},
		9:  single(lwm2m.Int(100)),
		10: single(lwm2m.Int(d.MemoryFree)),
		11: {0: lwm2m.Int(0)}, // no error
		16: single(lwm2m.String("U")),
		17: single(lwm2m.String(orDefault(d.DeviceType, "agent"))),
		18: single(lwm2m.String(orDefault(d.HardwareVersion, "1.0"))),
		19: single(lwm2m.String(orDefault(d.SoftwareVersion, "avc "+Version))),
		20: single(lwm2m.Int(1)), // normal
		21: single(lwm2m.Int(d.MemoryTotal)),
	}
	aco := e.aclObject()
	if b := e.st.Boot; b != nil {
		aco.insts = b.aclInstances()
	}
	t.add(aco)
	t.add(&object{def: deviceDef, insts: map[uint16]*instance{0: {id: 0, vals: dev}},
		dynamic: func(now time.Time, _, res uint16) (map[uint16]lwm2m.Value, bool) {
			switch res {
			case 3:
				if e.fw != nil {
					return single(lwm2m.String(e.fw.running())), true
				}
			case 13:
				return single(lwm2m.Value{Type: lwm2m.TypeTime, Int: now.Unix() + e.st.ClockSkew}), true
			case 14:
				return single(lwm2m.String(e.st.UTCOffset)), true
			case 15:
				return single(lwm2m.String(e.st.Timezone)), true
			}
			return nil, false
		},
		write: e.writeDevice,
		exec:  e.execDevice,
	})
	t.addExtraObjects()
	if e.fw != nil {
		t.add(e.fw.object())
	}
	if e.sw != nil {
		t.add(e.sw.object())
	}
	for i := range c.Objects {
		t.addCustom(&c.Objects[i])
	}
	return t
}

// builtinObject reports whether the engine implements object id itself.
func builtinObject(id uint16) bool {
	switch id {
	case 0, 1, 2, 3, 4, 5, 6, 7, 9:
		return true
	}
	return false
}

// addCustom adds an object declared in Config.Objects.
func (t *objectTree) addCustom(d *lwm2m.ObjectDef) {
	def := &objDef{id: d.ID, name: d.Name, version: d.Version, multiple: d.Multiple}
	for _, r := range d.Resources {
		var ops op
		if r.Operations&lwm2m.OpRead != 0 {
			ops |= opR
		}
		if r.Operations&lwm2m.OpWrite != 0 {
			ops |= opW
		}
		if r.Operations&lwm2m.OpExecute != 0 {
			ops |= opE
		}
		def.res = append(def.res, resDef{id: r.ID, name: r.Name, typ: r.Type, ops: ops, multi: r.Multiple})
		if r.Mandatory {
			def.mandatory = append(def.mandatory, r.ID)
		}
		if r.OnRead && ops&opR != 0 {
			if def.onRead == nil {
				def.onRead = make(map[uint16]bool)
			}
			def.onRead[r.ID] = true
		}
	}
	o := &object{def: def, insts: map[uint16]*instance{}}
	if !d.Multiple {
		o.insts[0] = &instance{id: 0, vals: map[uint16]map[uint16]lwm2m.Value{}}
	}
	t.add(o)
}

func (t *objectTree) add(o *object) { t.objs[o.def.id] = o }

// list returns the objects in ID order.
func (t *objectTree) list() []*object {
	out := make([]*object, 0, len(t.objs))
	for _, o := range t.objs {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].def.id < out[j].def.id })
	return out
}

func (e *Engine) writeServer(now time.Time, inst, res uint16, v lwm2m.Value, apply bool) error {
	res0 := res
	if inst != e.srvInst && (res == 1 || res == 7) {
		res = 0xffff // another server's instance: validated, then stored
	}
	switch res {
	case 0xffff:
		if v.Type == lwm2m.TypeInteger && (v.Int <= 0 || v.Int > 1<<32-1) {
			return errInvalid
		}
		if v.Type == lwm2m.TypeString && v.Str != "U" && (v.Str != "UQ" || e.multi) {
			return errInvalid
		}
		if r := e.regBySrvInst(inst); apply && r != nil {
			// A further server's lifetime or binding: it learns it
			// from an update once this write has been answered.
			r.wantUpdat = true
			if res0 == 1 {
				e.keepLifetime(inst, uint32(v.Int))
			}
		}
	case 1:
		if v.Int <= 0 || v.Int > 1<<32-1 {
			return errInvalid
		}
		if apply && uint32(v.Int) != e.st.Lifetime {
			e.st.Lifetime = uint32(v.Int)
			e.store()
			// The new lifetime reaches the server in a Registration Update
			// (Core TS 1.1 §6.2.2), sent once this write has been answered.
			e.reg.wantUpdat = true
		}
		return nil
	case 7:
		if v.Str != "U" && (v.Str != "UQ" || e.multi) {
			// Queue mode is for a single server.
			return errInvalid
		}
		if apply && v.Str != e.st.Binding {
			e.st.Binding = v.Str
			e.store()
			e.reg.wantUpdat = true
		}
		return nil
	case 2, 3, 5:
		if v.Int < 0 {
			return errInvalid
		}
	}
	return errNoHook
}

func (e *Engine) execServer(now time.Time, inst, res uint16, _ []byte) error {
	// Update and Disable concern the server of this Server instance
	// alone.
	r := e.regBySrvInst(inst)
	switch res {
	case 8:
		if r == nil {
			return errRefused
		}
		r.wantUpdat = true
	case 4:
		if r == nil {
			return errRefused
		}
		r.wantDisable = true
	case 9:
		// Bootstrap-Request Trigger: bootstrap once this is answered.
		if _, ok := e.bsAccount(); !ok {
			return errRefused
		}
		e.reg.wantBootNow = true
	}
	return nil
}

func (e *Engine) writeDevice(now time.Time, _, res uint16, v lwm2m.Value, apply bool) error {
	switch res {
	case 13:
		if apply {
			e.st.ClockSkew = v.Int - now.Unix()
		}
	case 14:
		if !validUTCOffset(v.Str) {
			return errInvalid
		}
		if apply {
			e.st.UTCOffset = v.Str
		}
	case 15:
		if len(v.Str) == 0 || len(v.Str) > 64 {
			return errInvalid
		}
		if apply {
			e.st.Timezone = v.Str
		}
	default:
		return errNoHook
	}
	if apply {
		e.store()
	}
	return nil
}

func (e *Engine) execDevice(now time.Time, inst, res uint16, args []byte) error {
	path := lwm2m.P(3, inst, res).String()
	switch res {
	case 4:
		if e.ctl != nil {
			// Update control: EventReboot once the reboot is agreed.
			e.ctl.offer(now, AgreeReboot, pendOp{})
			return nil
		}
		e.emit(Event{Kind: EventReboot, Path: path})
	case 5:
		e.emit(Event{Kind: EventFactoryReset, Path: path})
	case 12:
		e.objs.objs[3].insts[inst].vals[11] = map[uint16]lwm2m.Value{0: lwm2m.Int(0)}
	}
	return nil
}

// errNoHook tells the caller to store the value itself.
var errNoHook = errors.New("agent: store value")

// validUTCOffset accepts ISO 8601 offsets such as "+01:00", "-0530", "Z".
func validUTCOffset(s string) bool {
	if s == "Z" {
		return true
	}
	if len(s) != 6 && len(s) != 5 && len(s) != 3 {
		return false
	}
	if s[0] != '+' && s[0] != '-' {
		return false
	}
	digits := 0
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] >= '0' && s[i] <= '9':
			digits++
		case s[i] == ':' && i == 3 && len(s) == 6:
		default:
			return false
		}
	}
	return digits == len(s)-1-boolInt(len(s) == 6)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// set applies a CmdSet: a host-maintained value at p. It validates
// everything before changing anything.
func (t *objectTree) set(p lwm2m.Path, v lwm2m.Value) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrBadValue, p, why) }
	if p.Len < 3 {
		return bad("want a resource or resource-instance path")
	}
	o, ok := t.objs[p.Obj()]
	if !ok || o.def.id == 0 {
		return bad("no such object")
	}
	in, exists := o.insts[p.Inst()]
	// Instances the server creates (o.created) are not the host's to add.
	creatable := (o.def.multiple && o.created == nil) || (o.def.id == locationDef.id && p.Inst() == 0)
	if !exists && !creatable {
		return bad("no such instance")
	}
	d, ok := o.def.resource(p.Res())
	if !ok || d.ops&opE != 0 {
		return bad("no such value resource")
	}
	if o.dynamic != nil && exists {
		if _, computed := o.dynamic(time.Time{}, in.id, d.id); computed {
			return bad("the engine computes this value")
		}
	}
	if (p.Len == 4) != d.multi {
		return bad("a multiple resource is set per instance, a single one as a whole")
	}
	ri := uint16(0)
	if d.multi {
		ri = p.RInst()
	}
	if v.Type == lwm2m.TypeNone {
		if !d.multi {
			return bad("only a resource instance can be removed")
		}
		if exists {
			delete(in.vals[d.id], ri)
		}
		return nil
	}
	if v.Type == lwm2m.TypeString && d.typ != lwm2m.TypeString {
		parsed, err := text.Decode([]byte(v.Str), d.typ)
		if err != nil {
			return bad(err.Error())
		}
		v = parsed
	}
	cv, err := v.Convert(d.typ)
	if err != nil {
		return bad(err.Error())
	}
	if !exists {
		// The instance appears with its first value (a Location fix, an
		// instance of a multiple-instance object); the registration's
		// object list follows.
		in = &instance{id: p.Inst(), vals: map[uint16]map[uint16]lwm2m.Value{}}
		if o.def.id == locationDef.id {
			in.vals[5] = single(lwm2m.Value{Type: lwm2m.TypeTime})
		}
		o.insts[p.Inst()] = in
		t.e.aclHostInstance(o.def.id, in.id)
	}
	if in.vals[d.id] == nil {
		in.vals[d.id] = make(map[uint16]lwm2m.Value)
	}
	in.vals[d.id][ri] = cv
	return nil
}
