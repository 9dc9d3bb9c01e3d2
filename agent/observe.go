package agent

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/linkformat"
)

// DefaultNotifyCONInterval is how often, at most, a notification is sent
// confirmable to check that the observer is still there (RFC 7641 §4.5:
// at least every 24 hours).
const DefaultNotifyCONInterval = 24 * time.Hour

// optInt and optFloat are attribute values that may be unset.
type optInt struct {
	v  int64
	ok bool
}

type optFloat struct {
	v  float64
	ok bool
}

// attrs are the notification attributes of one path (Core TS 1.1 §5.1.2).
type attrs struct {
	pmin, pmax, epmin, epmax optInt   // seconds
	gt, lt, st               optFloat // resource level only
}

// over returns a with every attribute set in b replacing a's.
func (a attrs) over(b attrs) attrs {
	for _, f := range []struct{ dst, src *optInt }{{&a.pmin, &b.pmin}, {&a.pmax, &b.pmax}, {&a.epmin, &b.epmin}, {&a.epmax, &b.epmax}} {
		if f.src.ok {
			*f.dst = *f.src
		}
	}
	for _, f := range []struct{ dst, src *optFloat }{{&a.gt, &b.gt}, {&a.lt, &b.lt}, {&a.st, &b.st}} {
		if f.src.ok {
			*f.dst = *f.src
		}
	}
	return a
}

// params renders the set attributes as link-format parameters.
func (a attrs) params() []linkformat.Param {
	var ps []linkformat.Param
	for _, f := range []struct {
		name string
		v    optInt
	}{{"pmin", a.pmin}, {"pmax", a.pmax}, {"epmin", a.epmin}, {"epmax", a.epmax}} {
		if f.v.ok {
			ps = append(ps, linkformat.Param{Name: f.name, Value: strconv.FormatInt(f.v.v, 10)})
		}
	}
	for _, f := range []struct {
		name string
		v    optFloat
	}{{"gt", a.gt}, {"lt", a.lt}, {"st", a.st}} {
		if f.v.ok {
			ps = append(ps, linkformat.Param{Name: f.name, Value: strconv.FormatFloat(f.v.v, 'g', -1, 64)})
		}
	}
	return ps
}

// observation is one Observe relationship (RFC 7641) on a path.
type observation struct {
	token    []byte
	peer     string
	path     lwm2m.Path   // the root for a composite observation
	paths    []lwm2m.Path // the observed paths of a composite observation
	format   lwm2m.ContentFormat
	seq      uint32
	payload  []byte  // last notified content
	num      float64 // last notified value, for gt/lt/st
	hasNum   bool
	sent     time.Time // last notification (or the Observe response)
	evalAt   time.Time // last evaluation
	conAt    time.Time // last confirmable notification
	lastMID  uint16
	inFlight bool     // a confirmable notification awaits its ACK
	dirty    bool     // changed since the last notification
	version  uint64   // Engine.version at the last evaluation
	stored   [][]byte // notifications held while a queue-mode client is offline
	forced   [][]byte // firmware transitions waiting for the CON in flight
}

// stableObjects are the objects whose values change only with the
// engine's persistent state, a command or a server request, each of which
// bumps Engine.version: Server /1, Firmware Update /5, Software
// Management /9. Other objects have values that move by themselves
// (Device's current time, Connectivity Statistics' counters) and are
// evaluated at every step.
var stableObjects = map[uint16]bool{1: true, 5: true, 9: true}

// stableObservation reports whether every path o observes is in a
// stable object.
func stableObservation(o *observation) bool {
	if o.paths == nil {
		return o.path.Len > 0 && stableObjects[o.path.Obj()]
	}
	for _, p := range o.paths {
		if p.Len == 0 || !stableObjects[p.Obj()] {
			return false
		}
	}
	return true
}

// maxStored bounds the notifications stored per observation while offline;
// beyond it the oldest are dropped.
const maxStored = 32

// observer holds the observations and the attributes written by the server.
type observer struct {
	e     *Engine
	obs   map[string]*observation // by obsKey: peer and token
	attrs map[attrKey]attrs
}

// attrKey names the attributes one server wrote on one path: attributes
// are the server's own (Core TS 1.1 §5.1.2), each server's observations
// follow its attributes alone.
type attrKey struct {
	ssid uint16
	path lwm2m.Path
}

// attrsOf returns the attributes server ssid wrote on p.
func (ob *observer) attrsOf(ssid uint16, p lwm2m.Path) attrs { return ob.attrs[attrKey{ssid, p}] }

func newObserver(e *Engine) *observer {
	return &observer{e: e, obs: make(map[string]*observation), attrs: make(map[attrKey]attrs)}
}

// clearPeer drops the observations of the server at peer (after a new
// registration the server must observe again, Core TS 1.1 §6.4.1).
func (ob *observer) clearPeer(peer string) {
	for k, o := range ob.obs {
		if o.peer == peer {
			delete(ob.obs, k)
		}
	}
}

// effective returns the attributes that apply to p observed by the
// server at peer: that server's defaults from /1/x/2 and /1/x/3, then
// object, instance and resource level, the deeper level winning (Core TS
// 1.1 §5.1.2).
func (ob *observer) effective(peer string, p lwm2m.Path) attrs {
	var a attrs
	if v := ob.e.serverValueOf(peer, 2).Int; v > 0 {
		a.pmin = optInt{v, true}
	}
	if v := ob.e.serverValueOf(peer, 3).Int; v > 0 {
		a.pmax = optInt{v, true}
	}
	ssid := ob.e.ssidOf(peer)
	for l := 1; l <= p.Len && l <= 3; l++ {
		q := p
		for q.Len > l {
			q = q.Parent()
		}
		if at, ok := ob.attrs[attrKey{ssid, q}]; ok {
			a = a.over(at)
		}
	}
	return a
}

// observe starts or replaces the observation with m's token, answered by
// resp (a 2.05 read response), and adds the Observe option to resp.
func (ob *observer) observe(now time.Time, peer string, p lwm2m.Path, m, resp *message.Message) {
	cf, _ := uintOpt(resp, message.ContentFormat)
	o := &observation{token: append([]byte(nil), m.Token...), peer: peer, path: p, format: lwm2m.ContentFormat(cf),
		seq: 2, payload: resp.Payload, sent: now, evalAt: now, conAt: now}
	o.num, o.hasNum = ob.numeric(now, p)
	ob.obs[obsKey(peer, o.token)] = o
	resp.Options = addUint(resp.Options, message.Observe, o.seq)
	ob.e.logDebug("observe", "path", p.String(), "format", o.format.String())
}

// observeComposite starts an Observe-Composite relationship on paths
// (Core TS 1.1 §6.4.2); its attributes are the server's defaults.
func (ob *observer) observeComposite(now time.Time, peer string, paths []lwm2m.Path, m, resp *message.Message) {
	ob.observe(now, peer, lwm2m.Path{}, m, resp)
	ob.obs[obsKey(peer, m.Token)].paths = paths
}

// current returns the records an observation reports now: those its
// server may read (acl.go).
func (ob *observer) current(now time.Time, o *observation) ([]lwm2m.Record, *message.Message) {
	defer ob.e.actAs(ob.e.ssidOf(o.peer))()
	if o.paths != nil {
		return ob.e.collectPaths(now, o.paths)
	}
	return ob.e.collect(now, o.path)
}

// cancel removes the observation with token (GET with Observe=1).
func (ob *observer) cancel(peer string, token []byte) { delete(ob.obs, obsKey(peer, token)) }

// hasToken reports whether an observation has token.
func (ob *observer) hasToken(token string) bool {
	for _, o := range ob.obs {
		if string(o.token) == token {
			return true
		}
	}
	return false
}

// obsKey is the key of the observation of peer with token: tokens are the
// server's, so two servers may use the same one.
func obsKey(peer string, token []byte) string { return peer + "\x00" + string(token) }

// reset cancels the observation whose notification had message ID mid.
func (ob *observer) reset(mid uint16) {
	for k, o := range ob.obs {
		if o.lastMID == mid {
			ob.e.logDebug("observation reset by the server", "path", o.path.String())
			delete(ob.obs, k)
		}
	}
}

// numeric returns the value at p when p is a single numeric resource.
func (ob *observer) numeric(now time.Time, p lwm2m.Path) (float64, bool) {
	if p.Len < 3 {
		return 0, false
	}
	recs, errResp := ob.e.collect(now, p)
	if errResp != nil || len(recs) != 1 {
		return 0, false
	}
	v, err := recs[0].Value.Convert(lwm2m.TypeFloat)
	if err != nil {
		return 0, false
	}
	return v.Float, true
}

// fire evaluates the observations and sends the notifications that are
// due.
func (ob *observer) fire(now time.Time) {
	if len(ob.obs) == 0 {
		return
	}
	keys := make([]string, 0, len(ob.obs))
	for k := range ob.obs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if o, ok := ob.obs[k]; ok {
			ob.evaluate(now, o)
		}
	}
}

func (ob *observer) evaluate(now time.Time, o *observation) {
	a := ob.effective(o.peer, o.path)
	if a.epmin.ok && now.Sub(o.evalAt) < seconds(a.epmin.v) && !o.dirty {
		return
	}
	pmaxDue := a.pmax.ok && a.pmax.v > 0 && now.Sub(o.sent) >= seconds(a.pmax.v)
	if !o.dirty && !pmaxDue && o.version == ob.e.version && stableObservation(o) {
		// Nothing that could change these values happened since the
		// last evaluation: skip reading and encoding them again (a pull
		// steps the engine for every block).
		return
	}
	o.evalAt, o.version = now, ob.e.version
	recs, errResp := ob.current(now, o)
	if errResp != nil {
		// The observed path is gone: end the observation with the error
		// (RFC 7641 §3.2).
		resp := errResp
		resp.Token = o.token
		delete(ob.obs, obsKey(o.peer, o.token))
		ob.e.tr.notify(now, o.peer, resp, false, nil)
		return
	}
	payload, err := ob.e.encodeRecords(o.path, o.format, recs)
	if err != nil {
		ob.e.logWarn("encode notification", "path", o.path.String(), "err", err)
		return
	}
	if !bytes.Equal(payload, o.payload) {
		if a.gt.ok || a.lt.ok || a.st.ok {
			if cur, ok := ob.numeric(now, o.path); ok && ob.crossed(a, o, cur) {
				o.dirty = true
			}
		} else {
			o.dirty = true
		}
	}
	pmin := seconds(max(a.pmin.v, 0))
	due := o.dirty && now.Sub(o.sent) >= pmin
	if a.pmax.ok && a.pmax.v > 0 && seconds(a.pmax.v) >= pmin && now.Sub(o.sent) >= seconds(a.pmax.v) {
		due = true
	}
	if !due || o.inFlight {
		return
	}
	if ob.e.queueMode() && (ob.e.asleep || ob.e.reg.state != regRegistered) {
		// Offline in queue mode: store the notification (/1/0/6 is true)
		// and wake with a Registration Update; flush sends it once the
		// server knows the client is back (Core TS 1.1 §6.5).
		if len(o.stored) == maxStored {
			o.stored = o.stored[1:]
		}
		o.stored = append(o.stored, payload)
		o.payload, o.sent, o.dirty = payload, now, false
		o.num, o.hasNum = ob.numeric(now, o.path)
		if ob.e.reg.state == regRegistered {
			ob.e.reg.update(now)
		}
		return
	}
	ob.send(now, o, payload)
}

// flush sends the notifications stored while offline, oldest first.
func (ob *observer) flush(now time.Time) {
	keys := make([]string, 0, len(ob.obs))
	for k, o := range ob.obs {
		if len(o.stored) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		o := ob.obs[k]
		stored := o.stored
		o.stored = nil
		for _, p := range stored {
			ob.send(now, o, p)
		}
	}
}

// crossed reports whether cur satisfies the gt/lt/st conditions against
// the last notified value (Core TS 1.1 §5.1.2: notify when the value
// crosses gt or lt, or moves by at least st).
func (ob *observer) crossed(a attrs, o *observation, cur float64) bool {
	if !o.hasNum {
		return true
	}
	last := o.num
	if a.gt.ok && (last <= a.gt.v) != (cur <= a.gt.v) {
		return true
	}
	if a.lt.ok && (last < a.lt.v) != (cur < a.lt.v) {
		return true
	}
	return a.st.ok && math.Abs(cur-last) >= a.st.v
}

func (ob *observer) send(now time.Time, o *observation, payload []byte) {
	ob.sendAs(now, o, payload, false)
}

// sendCON sends a notification as CON whatever the CON interval says.
func (ob *observer) sendCON(now time.Time, o *observation, payload []byte) {
	ob.sendAs(now, o, payload, true)
}

// transition notifies every observation covering one of paths at once, as
// CON, bypassing pmin: firmware state changes are never coalesced or
// dropped. A transition that comes while a CON notification is in flight
// waits for its acknowledgement, in order.
func (ob *observer) transition(now time.Time, paths ...lwm2m.Path) {
	keys := make([]string, 0, len(ob.obs))
	for k := range ob.obs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o := ob.obs[k]
		if !o.covers(paths) {
			continue
		}
		recs, errResp := ob.current(now, o)
		if errResp != nil {
			continue
		}
		payload, err := ob.e.encodeRecords(o.path, o.format, recs)
		if err != nil || bytes.Equal(payload, o.payload) && len(o.forced) == 0 {
			continue
		}
		if ob.e.queueMode() && (ob.e.asleep || ob.e.reg.state != regRegistered) {
			o.stored = append(o.stored, payload)
			o.payload, o.sent, o.dirty = payload, now, false
			if ob.e.reg.state == regRegistered {
				ob.e.reg.update(now)
			}
			continue
		}
		if o.inFlight {
			o.forced = append(o.forced, payload)
			o.payload, o.dirty = payload, false
			continue
		}
		ob.sendCON(now, o, payload)
	}
}

// covers reports whether the observation includes one of paths.
func (o *observation) covers(paths []lwm2m.Path) bool {
	roots := o.paths
	if len(roots) == 0 {
		roots = []lwm2m.Path{o.path}
	}
	for _, r := range roots {
		for _, p := range paths {
			if r.Contains(p) {
				return true
			}
		}
	}
	return false
}

func (ob *observer) sendAs(now time.Time, o *observation, payload []byte, forceCON bool) {
	o.seq = (o.seq + 1) & 0xFFFFFF
	m := &message.Message{Code: codes.Content, Token: o.token, Options: make(message.Options, 0, 2), Payload: payload}
	m.Options = addUint(m.Options, message.Observe, o.seq)
	m.Options = addUint(m.Options, message.ContentFormat, uint32(o.format))
	iv := ob.e.cfg.NotifyCONInterval
	if iv == 0 {
		iv = DefaultNotifyCONInterval
	}
	con := forceCON || iv < 0 || now.Sub(o.conAt) >= iv
	o.payload, o.sent, o.dirty = payload, now, false
	o.num, o.hasNum = ob.numeric(now, o.path)
	token := obsKey(o.peer, o.token)
	if con {
		o.inFlight, o.conAt = true, now
	}
	o.lastMID = ob.e.tr.notify(now, o.peer, m, con, func(now time.Time, ack *message.Message) {
		cur, ok := ob.obs[token]
		if !ok || cur != o {
			return
		}
		o.inFlight = false
		if ack != nil && len(o.forced) > 0 {
			next := o.forced[0]
			o.forced = o.forced[1:]
			ob.sendCON(now, o, next)
			return
		}
		if ack == nil {
			// Unacknowledged or reset: the observer is gone (RFC 7641 §4.5).
			ob.e.logDebug("observation dropped: notification not acknowledged", "path", o.path.String())
			delete(ob.obs, token)
		}
	})
	ob.e.emit(Event{Kind: EventNotify, Path: o.path.String()})
}

// next returns the earliest time an observation must be evaluated.
func (ob *observer) next() time.Time {
	var next time.Time
	take := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, o := range ob.obs {
		a := ob.effective(o.peer, o.path)
		pmin := seconds(max(a.pmin.v, 0))
		if o.dirty && !o.inFlight {
			take(o.sent.Add(pmin))
		}
		if a.pmax.ok && a.pmax.v > 0 && seconds(a.pmax.v) >= pmin {
			take(o.sent.Add(seconds(a.pmax.v)))
		}
		if a.epmax.ok && a.epmax.v > 0 {
			take(o.evalAt.Add(seconds(a.epmax.v)))
		}
	}
	return next
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// writeAttributes handles Write-Attributes: a PUT whose Uri-Query options
// carry the attributes and which has no payload (Core TS 1.1 §6.3.4).
func (ob *observer) writeAttributes(p lwm2m.Path, queries []string) *message.Message {
	if p.Len == 0 || p.Len == 4 {
		return reply(codes.MethodNotAllowed)
	}
	o, in, errResp := ob.e.lookup(p)
	if errResp != nil {
		return errResp
	}
	if !ob.e.permit(p, ACLRead) {
		return reply(codes.Unauthorized)
	}
	var d *resDef
	if p.Len == 3 {
		var ok bool
		if d, ok = o.def.resource(p.Res()); !ok || (d.ops&opE == 0 && o.values(time.Time{}, in, d.id) == nil) {
			return reply(codes.NotFound)
		}
	}
	key := attrKey{ob.e.as, p}
	cur := ob.attrs[key]
	for _, q := range queries {
		name, value, hasValue := strings.Cut(q, "=")
		if err := cur.set(name, value, hasValue); err != nil {
			ob.e.logDebug("bad attribute", "path", p.String(), "query", q, "err", err)
			return reply(codes.BadRequest)
		}
		if (name == "gt" || name == "lt" || name == "st") && hasValue {
			// gt, lt and st apply to single numeric resources only.
			if d == nil || d.multi || (d.typ != lwm2m.TypeInteger && d.typ != lwm2m.TypeUnsigned && d.typ != lwm2m.TypeFloat) {
				return reply(codes.BadRequest)
			}
		}
	}
	if err := cur.valid(); err != nil {
		ob.e.logDebug("bad attributes", "path", p.String(), "err", err)
		return reply(codes.BadRequest)
	}
	if cur == (attrs{}) {
		delete(ob.attrs, key)
	} else {
		ob.attrs[key] = cur
	}
	return reply(codes.Changed)
}

// set assigns one attribute from its query form; a name without a value
// removes the attribute.
func (a *attrs) set(name, value string, hasValue bool) error {
	ints := map[string]*optInt{"pmin": &a.pmin, "pmax": &a.pmax, "epmin": &a.epmin, "epmax": &a.epmax}
	floats := map[string]*optFloat{"gt": &a.gt, "lt": &a.lt, "st": &a.st}
	if p, ok := ints[name]; ok {
		if !hasValue {
			*p = optInt{}
			return nil
		}
		n, err := strconv.ParseInt(value, 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("%s=%q: want a non-negative integer", name, value)
		}
		*p = optInt{n, true}
		return nil
	}
	if p, ok := floats[name]; ok {
		if !hasValue {
			*p = optFloat{}
			return nil
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s=%q: want a number", name, value)
		}
		*p = optFloat{f, true}
		return nil
	}
	return fmt.Errorf("unknown attribute %q", name)
}

// valid checks the consistency rules of Core TS 1.1 §5.1.2.
func (a *attrs) valid() error {
	if a.pmin.ok && a.pmax.ok && a.pmax.v > 0 && a.pmax.v < a.pmin.v {
		return fmt.Errorf("pmax %d < pmin %d", a.pmax.v, a.pmin.v)
	}
	if a.epmin.ok && a.epmax.ok && a.epmax.v > 0 && a.epmax.v < a.epmin.v {
		return fmt.Errorf("epmax %d < epmin %d", a.epmax.v, a.epmin.v)
	}
	if a.st.ok && a.st.v <= 0 {
		return fmt.Errorf("st %g is not positive", a.st.v)
	}
	if a.lt.ok && a.gt.ok {
		// "lt value < gt value" and, with st, "lt value + 2*st values <
		// gt value".
		if a.lt.v >= a.gt.v || (a.st.ok && a.lt.v+2*a.st.v >= a.gt.v) {
			return fmt.Errorf("lt %g, gt %g and st %g are inconsistent", a.lt.v, a.gt.v, a.st.v)
		}
	}
	return nil
}
