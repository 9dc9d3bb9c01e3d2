package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/cborval"
	"github.com/avc-agent/avc/lwm2m/linkformat"
	"github.com/avc-agent/avc/lwm2m/lwcbor"
	"github.com/avc-agent/avc/lwm2m/senml"
	"github.com/avc-agent/avc/lwm2m/text"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// reply builds a response with code and an optional payload in format.
func reply(c codes.Code) *message.Message {
	return &message.Message{Code: c, Options: make(message.Options, 0, 2)}
}

func replyContent(f lwm2m.ContentFormat, payload []byte) *message.Message {
	m := reply(codes.Content)
	m.Options = addUint(m.Options, message.ContentFormat, uint32(f))
	m.Payload = payload
	return m
}

// serve answers a request from a server (the LwM2M Device Management
// and Service Enablement interface, Core TS 1.1 §6.3). With more than one
// DM server, the requesting server's access rights are checked (acl.go).
func (e *Engine) serve(now time.Time, peer string, m *message.Message) *message.Message {
	if (e.reg.bootstrapping() || !e.isDMPeer(peer)) && e.fromBootstrap(peer) {
		// The bootstrap server's requests are bootstrap operations
		// (bootstrap.go); when it shares the DM server's address, only
		// during a bootstrap session.
		return e.serveBootstrap(now, m)
	}
	if id, bad := badCriticalOption(m); bad {
		// RFC 7252 §5.4.1: "Unrecognized options of class "critical" that
		// occur in a Confirmable request MUST cause the return of a 4.02
		// (Bad Option) response."
		e.logDebug("bad option", "option", int(id))
		return reply(codes.BadOption)
	}
	defer e.actAs(e.ssidOf(peer))()
	p, err := lwm2m.ParseSegments(stringOpts(m, message.URIPath))
	if err != nil {
		return reply(codes.NotFound)
	}
	if p.Len >= 1 && p.Obj() == 0 {
		// Core TS 1.1 §E.1: the Security object is for the bootstrap
		// server only; a DM server may not access it.
		return reply(codes.Unauthorized)
	}
	var resp *message.Message
	switch m.Code {
	case codes.GET:
		if acc, ok := uintOpt(m, message.Accept); ok && acc == uint32(lwm2m.FormatLinkFormat) {
			resp = e.discover(p)
			break
		}
		obs, observing := uintOpt(m, message.Observe)
		if observing && obs == 1 {
			e.obs.cancel(peer, m.Token) // RFC 7641 §3.6: deregister, then answer normally
		}
		resp = e.read(now, p, m)
		if observing && obs == 0 && resp.Code == codes.Content {
			e.obs.observe(now, peer, p, m, resp)
		}
	case codes.PUT:
		_, hasCF := uintOpt(m, message.ContentFormat)
		if q := stringOpts(m, message.URIQuery); len(q) > 0 && len(m.Payload) == 0 && !hasCF {
			resp = e.obs.writeAttributes(p, q)
			break
		}
		resp = e.write(now, p, m, true)
	case codes.POST:
		switch p.Len {
		case 3:
			resp = e.execute(now, p, m.Payload)
		case 2:
			resp = e.write(now, p, m, false)
		case 1:
			resp = e.create(now, p, m)
		default:
			resp = reply(codes.MethodNotAllowed)
		}
	case codes.DELETE:
		resp = e.deleteInstance(p)
	case codeFETCH:
		resp = e.fetch(now, peer, p, m)
	case codeIPATCH:
		resp = e.writeComposite(now, p, m)
	default:
		resp = reply(codes.MethodNotAllowed)
	}
	e.logDebug("served", "code", m.Code.String(), "path", p.String(), "status", codeString(resp.Code))
	return resp
}

// afterServe runs work a request asked for, once its response is queued.
func (e *Engine) afterServe(now time.Time) {
	e.aclStore()
	switch {
	case e.reg.bsFinished:
		e.reg.bootstrapDone(now)
	case e.reg.state == regRegistered:
		e.reg.afterExchange(now)
	}
	for _, r := range e.extra {
		if r.state == regRegistered {
			r.afterExchange(now)
		}
	}
}

// typeOf returns the data type of the resource at p (resource or resource
// instance path); TypeNone when unknown.
func (e *Engine) typeOf(p lwm2m.Path) lwm2m.Type {
	if p.Len < 3 {
		return lwm2m.TypeNone
	}
	o, ok := e.objs.objs[p.Obj()]
	if !ok {
		return lwm2m.TypeNone
	}
	d, ok := o.def.resource(p.Res())
	if !ok {
		return lwm2m.TypeNone
	}
	return d.typ
}

// lookup resolves p to its object and instance, answering 4.04 when either
// is missing.
func (e *Engine) lookup(p lwm2m.Path) (*object, *instance, *message.Message) {
	o, ok := e.objs.objs[p.Obj()]
	if !ok {
		return nil, nil, reply(codes.NotFound)
	}
	if p.Len < 2 {
		return o, nil, nil
	}
	in, ok := o.insts[p.Inst()]
	if !ok {
		return nil, nil, reply(codes.NotFound)
	}
	return o, in, nil
}

// collect returns the records readable at p, or an error response.
func (e *Engine) collect(now time.Time, p lwm2m.Path) ([]lwm2m.Record, *message.Message) {
	if p.Len == 0 {
		return nil, reply(codes.MethodNotAllowed)
	}
	o, in, errResp := e.lookup(p)
	if errResp != nil {
		return nil, errResp
	}
	if !e.permit(p, ACLRead) {
		return nil, reply(codes.Unauthorized)
	}
	var recs []lwm2m.Record
	addRes := func(in *instance, d *resDef) {
		vals := o.values(now, in, d.id)
		base := lwm2m.P(o.def.id, in.id, d.id)
		if !d.multi {
			if v, ok := vals[0]; ok {
				recs = append(recs, lwm2m.Record{Path: base, Value: v})
			}
			return
		}
		for _, ri := range sortedKeys(vals) {
			recs = append(recs, lwm2m.Record{Path: base.Child(ri), Value: vals[ri]})
		}
	}
	addInst := func(in *instance) {
		for i := range o.def.res {
			if d := &o.def.res[i]; d.ops&opR != 0 {
				addRes(in, d)
			}
		}
	}
	switch p.Len {
	case 1:
		readable := 0
		for _, id := range o.instanceIDs() {
			if e.permit(lwm2m.P(o.def.id, id), ACLRead) {
				readable++
				addInst(o.insts[id])
			}
		}
		if readable == 0 && len(o.insts) > 0 {
			return nil, reply(codes.Unauthorized)
		}
	case 2:
		addInst(in)
	default:
		d, ok := o.def.resource(p.Res())
		if ok && d.ops&opR == 0 {
			return nil, reply(codes.MethodNotAllowed)
		}
		if !ok || o.values(now, in, d.id) == nil {
			return nil, reply(codes.NotFound)
		}
		if p.Len == 4 {
			v, ok := o.values(now, in, d.id)[p.RInst()]
			if !d.multi || !ok {
				return nil, reply(codes.NotFound)
			}
			return []lwm2m.Record{{Path: p, Value: v}}, nil
		}
		addRes(in, d)
	}
	return recs, nil
}

func (e *Engine) read(now time.Time, p lwm2m.Path, m *message.Message) *message.Message {
	recs, errResp := e.collect(now, p)
	if errResp != nil {
		return errResp
	}
	singleValue := len(recs) == 1 && (p.Len == 4 || (p.Len == 3 && recs[0].Path.Len == 3))
	format := lwm2m.FormatTLV
	if singleValue {
		format = lwm2m.FormatText
		if recs[0].Value.Type == lwm2m.TypeOpaque {
			format = lwm2m.FormatOpaque
		}
	}
	if acc, ok := uintOpt(m, message.Accept); ok {
		format = lwm2m.ContentFormat(acc)
	}
	payload, err := e.encodeRecords(p, format, recs)
	switch {
	case errors.Is(err, errNotAcceptable):
		// Core TS 1.1 §6.3.1: a format the client does not support, or
		// one that cannot carry the value, gets 4.06 Not Acceptable.
		return reply(codes.NotAcceptable)
	case err != nil:
		e.logWarn("encode read response", "path", p.String(), "format", format.String(), "err", err)
		return reply(codes.InternalServerError)
	}
	e.emit(Event{Kind: EventRead, Path: p.String()})
	return replyContent(format, payload)
}

var errNotAcceptable = errors.New("agent: format not acceptable")

// encodeRecords encodes the records read at p in format.
func (e *Engine) encodeRecords(p lwm2m.Path, format lwm2m.ContentFormat, recs []lwm2m.Record) ([]byte, error) {
	singleValue := len(recs) == 1 && (p.Len == 4 || (p.Len == 3 && recs[0].Path.Len == 3))
	switch format {
	case lwm2m.FormatText:
		if !singleValue {
			return nil, errNotAcceptable
		}
		return text.Encode(recs[0].Value)
	case lwm2m.FormatOpaque:
		if !singleValue || recs[0].Value.Type != lwm2m.TypeOpaque {
			return nil, errNotAcceptable
		}
		return recs[0].Value.Bytes, nil
	case lwm2m.FormatCBOR:
		if !singleValue {
			return nil, errNotAcceptable
		}
		return cborval.Encode(recs[0].Value)
	case lwm2m.FormatTLV:
		return tlv.Encode(p, recs)
	case lwm2m.FormatSenMLJSON:
		return senml.EncodeJSON(p, recs)
	case lwm2m.FormatSenMLCBOR:
		return senml.EncodeCBOR(p, recs)
	case lwm2m.FormatLwM2MCBOR:
		return lwcbor.Encode(p, recs)
	}
	return nil, errNotAcceptable
}

// serverInt returns an integer resource of the DM server's Server
// instance (zero when it has none).
func (e *Engine) serverInt(res uint16) int64 {
	return e.serverValue(res).Int
}

// serverValue returns a resource of the DM server's Server instance.
func (e *Engine) serverValue(res uint16) lwm2m.Value {
	if in, ok := e.objs.objs[1].insts[e.srvInst]; ok {
		v, _ := in.value(res)
		return v
	}
	return lwm2m.Value{}
}

// decodeWrite turns a write payload into records.
func (e *Engine) decodeWrite(p lwm2m.Path, m *message.Message) ([]lwm2m.Record, *message.Message) {
	cf, hasCF := uintOpt(m, message.ContentFormat)
	format := lwm2m.ContentFormat(cf)
	if !hasCF {
		format = lwm2m.FormatText
	}
	var recs []lwm2m.Record
	var err error
	switch format {
	case lwm2m.FormatText, lwm2m.FormatOpaque:
		if p.Len < 3 {
			return nil, reply(codes.BadRequest)
		}
		var v lwm2m.Value
		if format == lwm2m.FormatOpaque {
			if e.typeOf(p) != lwm2m.TypeOpaque {
				return nil, reply(codes.UnsupportedMediaType)
			}
			v = lwm2m.Opaque(append([]byte(nil), m.Payload...))
		} else {
			v, err = text.Decode(m.Payload, e.typeOf(p))
		}
		recs = []lwm2m.Record{{Path: p, Value: v}}
	case lwm2m.FormatCBOR:
		if p.Len < 3 {
			return nil, reply(codes.BadRequest)
		}
		var v lwm2m.Value
		v, err = cborval.Decode(m.Payload, e.typeOf(p))
		recs = []lwm2m.Record{{Path: p, Value: v}}
	case lwm2m.FormatTLV:
		recs, err = tlv.Decode(p, m.Payload, e.typeOf)
	case lwm2m.FormatSenMLJSON:
		recs, err = senml.DecodeJSON(p, m.Payload, e.typeOf)
	case lwm2m.FormatSenMLCBOR:
		recs, err = senml.DecodeCBOR(p, m.Payload, e.typeOf)
	case lwm2m.FormatLwM2MCBOR:
		recs, err = lwcbor.Decode(p, m.Payload, e.typeOf)
	default:
		return nil, reply(codes.UnsupportedMediaType)
	}
	if err != nil {
		e.logDebug("bad write payload", "path", p.String(), "format", format.String(), "err", err)
		return nil, reply(codes.BadRequest)
	}
	return recs, nil
}

// write handles Write (PUT replace, POST partial update).
func (e *Engine) write(now time.Time, p lwm2m.Path, m *message.Message, replace bool) *message.Message {
	if p.Len < 2 {
		// Writing a whole object is Create (POST) or not allowed (PUT).
		return reply(codes.MethodNotAllowed)
	}
	recs, ws, errResp := e.writesAt(now, p, m)
	if errResp != nil {
		return errResp
	}
	e.applyWrites(now, ws, replace && p.Len >= 3)
	if replace && p.Len == 2 {
		e.dropUnwritten(p, recs)
	}
	e.emit(Event{Kind: EventWrite, Path: p.String()})
	return reply(codes.Changed)
}

// writesAt decodes the Write m of the existing path p and checks every
// value: the records (all under p) and the writes to apply, or the
// answer that refuses them with nothing changed.
func (e *Engine) writesAt(now time.Time, p lwm2m.Path, m *message.Message) ([]lwm2m.Record, []pendingWrite, *message.Message) {
	if _, _, errResp := e.lookup(p); errResp != nil {
		return nil, nil, errResp
	}
	recs, errResp := e.decodeWrite(p, m)
	if errResp != nil {
		return nil, nil, errResp
	}
	for _, r := range recs {
		if !p.Contains(r.Path) {
			return nil, nil, reply(codes.BadRequest)
		}
	}
	ws, errResp := e.checkWrites(now, recs)
	if errResp != nil {
		return nil, nil, errResp
	}
	return recs, ws, nil
}

// dropUnwritten completes a Replace of the instance at p: the instance
// becomes what the write gave, so its optional writable resources that
// recs do not name lose their values (Core TS 1.1 §6.3.3). Mandatory
// resources keep theirs, and objects whose values live in a hook
// (firmware, software, host objects) are left to it.
func (e *Engine) dropUnwritten(p lwm2m.Path, recs []lwm2m.Record) {
	o, in, errResp := e.lookup(p)
	if errResp != nil || o.write != nil {
		return
	}
	keep := map[uint16]bool{}
	for _, r := range recs {
		keep[r.Path.Res()] = true
	}
	for _, id := range o.def.mandatory {
		keep[id] = true
	}
	for i := range o.def.res {
		d := &o.def.res[i]
		if d.ops&opW != 0 && !keep[d.id] {
			delete(in.vals, d.id)
		}
	}
}

// pendingWrite is one validated resource write.
type pendingWrite struct {
	o  *object
	in *instance
	d  *resDef
	r  lwm2m.Record
}

// checkWrites validates writes of recs (each at a resource or resource
// instance of an existing instance) without changing anything, so that a
// refused write changes nothing.
func (e *Engine) checkWrites(now time.Time, recs []lwm2m.Record) ([]pendingWrite, *message.Message) {
	if len(recs) == 0 {
		return nil, reply(codes.BadRequest)
	}
	ws := make([]pendingWrite, 0, len(recs))
	seen := make(map[lwm2m.Path]bool, len(recs))
	for _, r := range recs {
		if r.Path.Len < 3 || seen[r.Path] {
			return nil, reply(codes.BadRequest)
		}
		seen[r.Path] = true
		if r.Path.Obj() == 0 {
			return nil, reply(codes.Unauthorized)
		}
		o, in, errResp := e.lookup(r.Path)
		if errResp != nil {
			return nil, errResp
		}
		if !e.permit(r.Path, ACLWrite) {
			return nil, reply(codes.Unauthorized)
		}
		d, ok := o.def.resource(r.Path.Res())
		if !ok {
			return nil, reply(codes.NotFound)
		}
		if d.ops&opW == 0 {
			return nil, reply(codes.MethodNotAllowed)
		}
		if (r.Path.Len == 4) != d.multi {
			return nil, reply(codes.BadRequest)
		}
		v, err := r.Value.Convert(d.typ)
		if err != nil {
			return nil, reply(codes.BadRequest)
		}
		r.Value = v
		if o.write != nil {
			if err := o.write(now, in.id, d.id, v, false); errors.Is(err, errRefused) {
				return nil, reply(codes.MethodNotAllowed)
			} else if err != nil && !errors.Is(err, errNoHook) {
				return nil, reply(codes.BadRequest)
			}
		}
		ws = append(ws, pendingWrite{o, in, d, r})
	}
	return ws, nil
}

// applyWrites applies validated writes. With replace, a multiple resource
// written as a whole loses the instances the write does not name.
func (e *Engine) applyWrites(now time.Time, ws []pendingWrite, replace bool) {
	type resKey struct {
		in  *instance
		res uint16
	}
	cleared := map[resKey]bool{}
	for _, w := range ws {
		stored := w.o.write == nil
		if !stored {
			if err := w.o.write(now, w.in.id, w.d.id, w.r.Value, true); errors.Is(err, errNoHook) {
				stored = true
			}
		}
		if !stored {
			continue
		}
		vals := w.in.vals[w.d.id]
		if k := (resKey{w.in, w.d.id}); vals == nil || (w.d.multi && replace && !cleared[k]) {
			vals = make(map[uint16]lwm2m.Value)
			w.in.vals[w.d.id] = vals
			cleared[k] = true
		}
		ri := uint16(0)
		if w.d.multi {
			ri = w.r.Path.RInst()
		}
		vals[ri] = w.r.Value
	}
}

func (e *Engine) execute(now time.Time, p lwm2m.Path, args []byte) *message.Message {
	o, in, errResp := e.lookup(p)
	if errResp != nil {
		return errResp
	}
	d, ok := o.def.resource(p.Res())
	if !ok {
		return reply(codes.NotFound)
	}
	if !e.permit(p, ACLExecute) {
		return reply(codes.Unauthorized)
	}
	if d.ops&opE == 0 {
		return reply(codes.MethodNotAllowed)
	}
	if _, err := ParseExecArgs(args); len(args) > 1024 || err != nil {
		return reply(codes.BadRequest)
	}
	if o.exec != nil {
		if err := o.exec(now, in.id, d.id, args); errors.Is(err, errRefused) {
			return reply(codes.MethodNotAllowed)
		} else if err != nil {
			return reply(codes.BadRequest)
		}
	}
	e.emit(Event{Kind: EventExecute, Path: p.String(), Data: append([]byte(nil), args...)})
	return reply(codes.Changed)
}

// discover answers a Discover (GET with Accept: link-format).
func (e *Engine) discover(p lwm2m.Path) *message.Message {
	if p.Len == 0 || p.Len == 4 {
		return reply(codes.MethodNotAllowed)
	}
	o, in, errResp := e.lookup(p)
	if errResp != nil {
		return errResp
	}
	if !e.permit(p, ACLRead) {
		return reply(codes.Unauthorized)
	}
	var links []linkformat.Link
	resLinks := func(in *instance, only *resDef) {
		for i := range o.def.res {
			d := &o.def.res[i]
			if only != nil && d != only {
				continue
			}
			vals := in.vals[d.id]
			if o.dynamic != nil {
				if v, ok := o.dynamic(time.Time{}, in.id, d.id); ok {
					vals = v
				}
			}
			if vals == nil && d.ops&opE == 0 {
				continue
			}
			rp := lwm2m.P(o.def.id, in.id, d.id)
			l := linkformat.Link{Target: rp.String()}
			if d.multi {
				l.Params = []linkformat.Param{{Name: "dim", Value: fmt.Sprint(len(vals))}}
			}
			l.Params = append(l.Params, e.obs.attrsOf(e.as, rp).params()...)
			links = append(links, l)
		}
	}
	switch p.Len {
	case 1:
		l := linkformat.Link{Target: p.String()}
		if o.def.version != "1.0" {
			l.Params = []linkformat.Param{{Name: "ver", Value: o.def.version}}
		}
		l.Params = append(l.Params, e.obs.attrsOf(e.as, p).params()...)
		links = append(links, l)
		for _, id := range o.instanceIDs() {
			ip := lwm2m.P(o.def.id, id)
			if !e.permit(ip, ACLRead) {
				continue
			}
			links = append(links, linkformat.Link{Target: ip.String(), Params: e.obs.attrsOf(e.as, ip).params()})
			resLinks(o.insts[id], nil)
		}
	case 2:
		links = append(links, linkformat.Link{Target: p.String(), Params: e.obs.attrsOf(e.as, p).params()})
		resLinks(in, nil)
	case 3:
		d, ok := o.def.resource(p.Res())
		if !ok {
			return reply(codes.NotFound)
		}
		resLinks(in, d)
		if len(links) == 0 {
			return reply(codes.NotFound)
		}
	}
	return replyContent(lwm2m.FormatLinkFormat, linkformat.Format(links))
}

func sortedKeys(m map[uint16]lwm2m.Value) []uint16 {
	ks := make([]uint16, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}
