package agent

import (
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
)

// Read callbacks: a custom object's resource declared with
// lwm2m.ResourceDef.OnRead gets its value from the host when a server
// reads it, rather than ahead of time.
//
// A Read, Observe or Read-Composite (FETCH) that covers such resources
// is acknowledged at once with an empty ACK, and the engine emits
// EventReadRequest with a token and the resource paths; it answers
// nothing else for that request until the host completes the token
// (CmdReadDone) or Config.ReadTimeout passes. Either way the engine then
// serves the request as it would have at first, from the values it holds
// then, and sends the answer as a separate confirmable response with the
// request's token (RFC 7252 §5.2.2), retransmitted until acknowledged.
// A duplicate of the request meanwhile gets the empty ACK again, not a
// second event. Notifications of observed on-demand resources use the
// values the engine holds: the host keeps them current with CmdSet.

// DefaultReadTimeout is how long the engine waits for the host to
// complete an EventReadRequest when Config.ReadTimeout is zero.
const DefaultReadTimeout = 5 * time.Second

// pendingRead is a server request waiting for the host's values.
type pendingRead struct {
	token    uint64
	peer     string
	m        *message.Message // the whole request
	s        served
	deadline time.Time
}

func (c *Config) readTimeout() time.Duration {
	if c.ReadTimeout > 0 {
		return c.ReadTimeout
	}
	return DefaultReadTimeout
}

// deferRead parks the whole request m from peer when it reads on-demand
// resources, emitting EventReadRequest, and reports whether it did.
func (e *Engine) deferRead(now time.Time, peer string, m *message.Message, s served) bool {
	paths, at := e.onDemandPaths(peer, m)
	if len(paths) == 0 {
		return false
	}
	e.readSeq++
	pr := &pendingRead{token: e.readSeq, peer: peer, m: m, s: s, deadline: now.Add(e.cfg.readTimeout())}
	e.reads = append(e.reads, pr)
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = p.String()
	}
	e.logDebug("read waits for the host", "token", pr.token, "path", at, "paths", names)
	ev := Event{Kind: EventReadRequest, Path: at, Token: pr.token, Paths: names}
	if r := e.regByPeer(peer); r != nil && r != e.reg {
		ev.Further = true
	}
	e.emit(ev)
	return true
}

// onDemandPaths returns the on-demand resources the request m from peer
// reads (those the server may read), with the path of the request ("/"
// for a composite one). It returns none for a request the engine answers
// without reading them: bootstrap operations, Discover, a malformed or
// refused request.
func (e *Engine) onDemandPaths(peer string, m *message.Message) ([]lwm2m.Path, string) {
	if m.Code != codes.GET && m.Code != codeFETCH {
		return nil, ""
	}
	if !e.anyOnDemand() || !e.isDMPeer(peer) || e.reg.bootstrapping() && e.fromBootstrap(peer) {
		return nil, ""
	}
	if _, bad := badCriticalOption(m); bad {
		return nil, ""
	}
	p, err := lwm2m.ParseSegments(stringOpts(m, message.URIPath))
	if err != nil {
		return nil, ""
	}
	defer e.actAs(e.ssidOf(peer))()
	var reads []lwm2m.Path
	if m.Code == codes.GET {
		if acc, ok := uintOpt(m, message.Accept); ok && acc == uint32(lwm2m.FormatLinkFormat) {
			return nil, "" // Discover
		}
		reads = []lwm2m.Path{p}
	} else {
		if p.Len != 0 {
			return nil, ""
		}
		var errResp *message.Message
		if reads, _, errResp = decodePaths(m); errResp != nil {
			return nil, ""
		}
	}
	var out []lwm2m.Path
	seen := map[lwm2m.Path]bool{}
	for _, rp := range reads {
		for _, q := range e.onDemandUnder(rp) {
			if !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
		}
	}
	return out, p.String()
}

// anyOnDemand reports whether some object has on-demand resources.
func (e *Engine) anyOnDemand() bool {
	for _, o := range e.objs.objs {
		if len(o.def.onRead) > 0 {
			return true
		}
	}
	return false
}

// onDemandUnder returns the on-demand resources of existing instances
// that a read of p covers and the acting server may read: resource
// paths, or p itself when it names a resource instance.
func (e *Engine) onDemandUnder(p lwm2m.Path) []lwm2m.Path {
	if p.Len == 0 {
		return nil
	}
	o, ok := e.objs.objs[p.Obj()]
	if !ok || len(o.def.onRead) == 0 {
		return nil
	}
	ids := o.instanceIDs()
	if p.Len >= 2 {
		if _, ok := o.insts[p.Inst()]; !ok {
			return nil
		}
		ids = []uint16{p.Inst()}
	}
	var out []lwm2m.Path
	for _, id := range ids {
		if !e.permit(lwm2m.P(o.def.id, id), ACLRead) {
			continue
		}
		for i := range o.def.res {
			d := &o.def.res[i]
			if !o.def.onRead[d.id] || p.Len >= 3 && d.id != p.Res() {
				continue
			}
			if p.Len == 4 {
				out = append(out, p)
			} else {
				out = append(out, lwm2m.P(o.def.id, id, d.id))
			}
		}
	}
	return out
}

// readDone completes the read with token (CmdReadDone).
func (e *Engine) readDone(now time.Time, token uint64) error {
	for i, pr := range e.reads {
		if pr.token == token {
			e.reads = append(e.reads[:i], e.reads[i+1:]...)
			e.answerRead(now, pr)
			return nil
		}
	}
	return fmt.Errorf("%w: no read waits with token %d", ErrBadValue, token)
}

// fireReads answers the reads the host left unanswered past their
// deadline from the values the engine has.
func (e *Engine) fireReads(now time.Time) {
	for i := 0; i < len(e.reads); {
		pr := e.reads[i]
		if now.Before(pr.deadline) {
			i++
			continue
		}
		e.reads = append(e.reads[:i], e.reads[i+1:]...)
		e.logWarn("the host did not complete a read in time; answering with the stored values",
			"token", pr.token, "timeout", e.cfg.readTimeout())
		e.answerRead(now, pr)
	}
}

// nextRead returns the earliest read deadline (zero when none waits).
func (e *Engine) nextRead() time.Time {
	var next time.Time
	for _, pr := range e.reads {
		if next.IsZero() || pr.deadline.Before(next) {
			next = pr.deadline
		}
	}
	return next
}

// answerRead serves a parked request now and sends its response
// separately: confirmable for a confirmable request, retransmitted until
// the server acknowledges it.
func (e *Engine) answerRead(now time.Time, pr *pendingRead) {
	if !e.isDMPeer(pr.peer) {
		e.logDebug("read answered after its server left", "token", pr.token, "peer", pr.peer)
		return
	}
	t := e.tr
	resp := t.serveWhole(now, pr.peer, pr.m, pr.s)
	resp.Token = pr.m.Token
	mid := t.mid()
	resp.MessageID = int32(mid)
	con := pr.m.Type == message.Confirmable
	resp.Type = message.NonConfirmable
	if con {
		resp.Type = message.Confirmable
	}
	wire, err := encode(resp)
	if err != nil {
		e.logWarn("encode response", "err", err)
		resp = &message.Message{Code: codes.InternalServerError, Token: resp.Token, Type: resp.Type, MessageID: resp.MessageID}
		wire, _ = encode(resp)
	}
	if !con {
		e.transmit(pr.peer, wire)
	} else {
		x := &exchange{key: xkey{kind: 'r', mid: mid}, notify: true, mid: mid, wire: wire, peer: pr.peer,
			done: func(_ time.Time, ack *message.Message) {
				if ack == nil {
					e.logDebug("separate response not acknowledged", "token", pr.token, "mid", mid)
				}
			}}
		t.start(now, x, resp)
	}
	e.afterServe(now)
}
