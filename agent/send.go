package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/senml"
)

// ErrSendMuted: CmdSend while the server's Mute Send (/1/x/23) is true.
var ErrSendMuted = errors.New("agent: send is muted by the server")

// maxSendQueue bounds the Sends kept while offline; beyond it the oldest
// are dropped.
const maxSendQueue = 64

// CmdSend reports the current values at Paths to the server with the
// LwM2M Send operation (Core TS 1.1 §6.4.3: POST /dp, SenML-CBOR, dated
// with the time of the command). While the client is not registered, the
// values are queued and sent after the next registration. It returns
// ErrBadValue for a path that cannot be read and ErrSendMuted when the
// server has muted Send.
type CmdSend struct {
	Paths []lwm2m.Path
	// Server is the Short Server ID of the server to send to, when
	// several are configured (Config.Servers); zero means the first
	// server. An unknown ID is ErrBadValue.
	Server uint16
}

func (CmdSend) command() string { return "send" }

// sendBatch is one Send: values read at one time.
type sendBatch struct {
	ssid     uint16 // the server's; 0: the first server
	at       time.Time
	recs     []lwm2m.Record
	inFlight bool
}

// sender queues and sends Send batches.
type sender struct {
	e     *Engine
	queue []*sendBatch
}

func (s *sender) send(now time.Time, c CmdSend) error {
	paths := c.Paths
	target := s.e.regBySSID(c.Server)
	if c.Server != 0 && target == nil {
		return fmt.Errorf("%w: send: no server with short server ID %d", ErrBadValue, c.Server)
	}
	if in, ok := target.serverInst(); ok {
		if v, _ := in.value(23); v.Bool {
			return ErrSendMuted
		}
	}
	if len(paths) == 0 {
		return fmt.Errorf("%w: send: no paths", ErrBadValue)
	}
	var recs []lwm2m.Record
	for _, p := range paths {
		if p.Len >= 1 && p.Obj() == 0 {
			return fmt.Errorf("%w: send %s: the Security object is not reported", ErrBadValue, p)
		}
		got, errResp := s.e.collect(now, p)
		if errResp != nil {
			return fmt.Errorf("%w: send %s: cannot read it (%s)", ErrBadValue, p, codeString(errResp.Code))
		}
		recs = append(recs, got...)
	}
	if _, err := senml.EncodeCBORAt(lwm2m.Path{}, recs, now); err != nil {
		return fmt.Errorf("%w: send: %v", ErrBadValue, err)
	}
	if len(s.queue) == maxSendQueue {
		s.e.logWarn("send queue full: dropping the oldest values")
		s.queue = s.queue[1:]
	}
	ssid := uint16(0) // the first server, whichever it is then
	if target != s.e.reg {
		ssid = target.ssid()
	}
	s.queue = append(s.queue, &sendBatch{ssid: ssid, at: now, recs: recs})
	s.flush(now)
	return nil
}

// flush sends the queued batches of every server that is registered
// (and, in queue mode, awake with the server informed).
func (s *sender) flush(now time.Time) {
	e := s.e
	for _, r := range e.registrations() {
		if r.location == "" || r.state != regRegistered && r.state != regUpdating {
			continue
		}
		if r == e.reg && e.queueMode() && (e.asleep || e.reg.state != regRegistered) {
			if e.asleep {
				e.reg.update(now) // wake; the update's success flushes
			}
			continue
		}
		for _, b := range s.queue {
			if b.inFlight || e.regBySSID(b.ssid) != r {
				continue
			}
			s.post(now, r, b)
		}
	}
}

func (s *sender) post(now time.Time, r *registration, b *sendBatch) {
	payload, err := senml.EncodeCBORAt(lwm2m.Path{}, b.recs, b.at)
	if err != nil {
		s.drop(b)
		r.event(Event{Kind: EventSendFailed, Err: err.Error()})
		return
	}
	b.inFlight = true
	m := &message.Message{Code: codes.POST, Options: make(message.Options, 0, 4), Payload: payload}
	m.Options = addPath(m.Options, "dp")
	m.Options = addUint(m.Options, message.ContentFormat, uint32(lwm2m.FormatSenMLCBOR))
	s.e.tr.request(now, r.peer(), m, func(now time.Time, resp *message.Message) {
		b.inFlight = false
		switch {
		case resp == nil:
			// Not delivered: keep it for the next registration or update.
			s.e.logWarn("send not acknowledged; kept for later", "values", len(b.recs))
		case resp.Code == codes.Changed:
			s.drop(b)
			r.event(Event{Kind: EventSent, Path: pathsOf(b.recs)})
		default:
			s.drop(b)
			r.event(Event{Kind: EventSendFailed, Code: codeString(resp.Code), Err: "server refused the values"})
		}
	})
}

func (s *sender) drop(b *sendBatch) {
	for i, q := range s.queue {
		if q == b {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return
		}
	}
}

func pathsOf(recs []lwm2m.Record) string {
	if len(recs) == 0 {
		return ""
	}
	s := recs[0].Path.String()
	if len(recs) > 1 {
		s += fmt.Sprintf(" (+%d)", len(recs)-1)
	}
	return s
}

// serverBool returns a boolean resource of the Server object instance.
func (e *Engine) serverBool(res uint16) bool {
	return e.serverValue(res).Bool
}
