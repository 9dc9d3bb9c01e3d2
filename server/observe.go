package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/options/config"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/avc-agent/avc/lwm2m"
)

// Notification is one Observe notification from a client (RFC 7641 §4.2,
// Core TS 1.1 §6.4.2).
type Notification struct {
	// Seq is the notification's Observe option: a sequence number that
	// grows from one notification to the next. It is 0 for a final
	// notification without Observe option.
	Seq uint32
	// Response holds the code, content format and payload, and the
	// records decoded as for [Server.Read].
	Response *Response
	// Time is when the server received the notification.
	Time time.Time
	// Err is the error decoding the payload; Response.Records is nil then.
	Err error
}

// Observation is an Observe relationship (RFC 7641) the server holds on a
// path of a client, made by [Server.Observe].
//
// Here's an example:
//
//	obs, err := s.Observe(ctx, "dev1", lwm2m.P(3, 0, 9), lwm2m.FormatText)
//	if err != nil {
//		return err
//	}
//	fmt.Println("battery", obs.Response().Records[0].Value)
//	for n := range obs.Notifications() {
//		fmt.Println("battery", n.Seq, n.Response.Records[0].Value)
//	}
//	fmt.Println("observation ended:", obs.Err())
//
// # Notes
//
//   - The channel of Notifications has Config.EventBuffer places. The
//     server never waits for the reader: a notification that finds the
//     buffer full is dropped and a warning is logged.
//   - Notifications arrive in order; one that is not newer than the last
//     one delivered (RFC 7641 §3.4, by its Observe sequence number) is
//     acknowledged but not delivered, so a retransmission is seen once.
//   - The observation ends, and the channel closes, when it is cancelled
//     (Cancel), when the client's registration ends (de-registration,
//     expiry or a new Register, after which Core TS 1.1 §6.4.1 wants the
//     server to observe again), when the client sends a notification with
//     an error code or without Observe option (RFC 7641 §3.2), and when
//     the server closes. Err tells which.
//   - A notification whose token belongs to no live observation (after
//     Cancel, after the end of the registration, or never made), or that
//     comes from another address than the client's last Register or
//     Update, is answered with RST, which tells the client to forget its
//     observation (RFC 7641 §3.6).
type Observation struct {
	s      *Server
	id     string
	ep     string
	path   lwm2m.Path
	paths  []lwm2m.Path // the observed paths of an Observe-Composite; nil otherwise
	accept lwm2m.ContentFormat
	token  message.Token
	reg    *registration
	resp   *Response // the answer to the Observe request; set before Observe returns
	ch     chan Notification
	stream atomic.Bool // an HTTP event stream reads ch

	mu       sync.Mutex // guards the fields below
	started  bool       // the answer to the Observe request arrived
	observed bool       // ... and it was a 2.xx with an Observe option
	seq      uint32     // last sequence number delivered
	seqTime  time.Time  // when it arrived
	dropped  int        // notifications dropped on a full channel
	ended    bool
	err      error // why the observation ended
}

// ID returns the observation's identifier, 8 hex digits unique among the
// server's live observations. The HTTP API names observations by it.
func (o *Observation) ID() string { return o.id }

// Endpoint returns the name of the observed client.
func (o *Observation) Endpoint() string { return o.ep }

// Path returns the observed path.
func (o *Observation) Path() lwm2m.Path { return o.path }

// Response returns the client's answer to the Observe request, with the
// value at the start of the observation. It is nil when the client did not
// answer.
func (o *Observation) Response() *Response { return o.resp }

// Notifications returns the channel on which the notifications arrive. It
// is closed when the observation ends.
func (o *Observation) Notifications() <-chan Notification { return o.ch }

// Err returns nil while the observation lives, and then why it ended:
// ErrCancelled, ErrRegistrationEnded, ErrClosed, ErrNotObserved, or a
// *CodeError with Op "notify" for a notification with an error code.
func (o *Observation) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Cancel ends the observation and tells the client: it sends a GET with
// Observe=1 and the observation's token (RFC 7641 §3.6) and waits for the
// answer within ctx.
//
// # Notes
//
//   - The observation ends (its channel closes and Err returns
//     ErrCancelled) before the request is sent, whatever the client
//     answers; notifications that still come are answered with RST.
//   - Cancelling an observation that has already ended sends nothing and
//     returns nil. Cancel may be called more than once.
//   - A non-2.xx answer returns a *CodeError with Op "cancel".
func (o *Observation) Cancel(ctx context.Context) error {
	_, err := o.cancel(ctx)
	return err
}

// cancel is Cancel returning the client's answer (nil when nothing was
// sent).
func (o *Observation) cancel(ctx context.Context) (*Response, error) {
	s := o.s
	s.mu.Lock()
	live := s.obs[string(o.token)] == o
	if live {
		s.endObservation(o, ErrCancelled)
	}
	s.mu.Unlock()
	if !live {
		return nil, nil
	}
	s.log.Debug("observation cancelled", "ep", o.ep, "path", o.path.String(), "id", o.id)
	r := request{op: "cancel", method: codes.GET, path: o.path, accept: o.accept}
	if o.paths != nil {
		payload, err := compositeRequest(o.paths, o.accept)
		if err != nil {
			return nil, err
		}
		r = o.compositeRequest("cancel", payload)
	}
	r.prepare = func(m *pool.Message, _ *registration) error {
		// RFC 7641 §3.6: "a client MAY explicitly deregister by issuing
		// a GET request that has the Token field set to the token of the
		// observation to be cancelled and includes an Observe Option
		// with the value set to 1 (deregister)."
		m.SetObserve(1)
		m.SetToken(o.token)
		return nil
	}
	return s.exchange(ctx, o.ep, r)
}

// Observe starts observing the object, instance, resource or resource
// instance at p on the client registered as ep (Core TS 1.1 §6.4.1, RFC
// 7641): a GET with Observe=0, and Accept accept unless lwm2m.FormatNone.
// It returns once the client answered, with the answer in
// Observation.Response, decoded as for Read; the notifications that follow
// arrive on Observation.Notifications.
//
// # Notes
//
//   - ctx bounds the Observe request only; the observation lives until
//     it ends (see [Observation]).
//   - A non-2.xx answer returns an ended Observation (with its Response)
//     together with a *CodeError; a 2.xx answer without Observe option (a
//     client that read the value but keeps no observation) returns an
//     ended Observation together with ErrNotObserved. A payload that
//     cannot be decoded ends the observation too (later notifications are
//     answered with RST) and returns the decoding error.
//   - Notification attributes (pmin, pmax, gt, ...) are set with
//     WriteAttributes, before or during the observation.
func (s *Server) Observe(ctx context.Context, ep string, p lwm2m.Path, accept lwm2m.ContentFormat) (*Observation, error) {
	o := &Observation{s: s, ep: ep, path: p, accept: accept, ch: make(chan Notification, s.cfg.EventBuffer)}
	return s.observe(ctx, o, request{op: "observe", method: codes.GET, path: p, accept: accept})
}

// ObserveComposite observes several paths of the client registered as ep
// with one request (Core TS 1.1 §6.4.2): a FETCH on the root with
// Observe=0 whose SenML payload lists the paths, notified in format (SenML
// JSON or SenML CBOR); each notification's Records hold the values of
// every path. Cancel sends the same FETCH with Observe=1. Otherwise as
// Observe.
func (s *Server) ObserveComposite(ctx context.Context, ep string, paths []lwm2m.Path, format lwm2m.ContentFormat) (*Observation, error) {
	payload, err := compositeRequest(paths, format)
	if err != nil {
		return nil, fmt.Errorf("server: observe-composite on %q: %w", ep, err)
	}
	o := &Observation{s: s, ep: ep, paths: append([]lwm2m.Path(nil), paths...), accept: format, ch: make(chan Notification, s.cfg.EventBuffer)}
	return s.observe(ctx, o, o.compositeRequest("observe-composite", payload))
}

// compositeRequest is the FETCH of an Observe-Composite (and of its
// cancellation) with the path list payload.
func (o *Observation) compositeRequest(op string, payload []byte) request {
	return request{op: op, method: codeFETCH, format: o.accept, accept: o.accept, payload: payload}
}

// decode decodes a response or notification of o.
func (o *Observation) decode(r *Response) ([]lwm2m.Record, error) {
	if o.paths != nil {
		return decodeComposite(r.ContentFormat, r.Payload)
	}
	return decodeRecords(o.path, r.ContentFormat, r.Payload)
}

// observe sends r, the request that starts observation o, and waits for
// its answer.
func (s *Server) observe(ctx context.Context, o *Observation, r request) (*Observation, error) {
	ep, p := o.ep, o.path
	r.prepare = func(m *pool.Message, reg *registration) error {
		m.SetObserve(0)
		o.token = append(message.Token(nil), m.Token()...)
		o.reg = reg
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case s.state == stateClosed:
			return ErrClosed
		case s.byEP[ep] != reg:
			return fmt.Errorf("%w: %q", ErrRegistrationEnded, ep)
		}
		o.id = randomID(func(id string) bool { return s.observationByID(id) != nil })
		// Registered before the request goes out, so that no
		// notification can come before the server knows the token.
		s.obs[string(o.token)] = o
		return nil
	}
	resp, err := s.exchange(ctx, ep, r)
	if err != nil {
		s.forget(o, err)
		if resp == nil {
			return nil, err
		}
		o.resp = resp
		return o, err
	}
	o.resp = resp
	o.mu.Lock()
	observed := o.observed
	o.mu.Unlock()
	if !observed {
		s.forget(o, ErrNotObserved)
		return o, fmt.Errorf("server: %s %s on %q: %w", r.op, p, ep, ErrNotObserved)
	}
	recs, err := o.decode(resp)
	if err != nil {
		err = fmt.Errorf("server: %s %s on %q: decode %s: %w", r.op, p, ep, resp.ContentFormat, err)
		s.forget(o, err)
		return o, err
	}
	resp.Records = recs
	if err := o.Err(); err != nil {
		// The registration ended while the client answered.
		return o, fmt.Errorf("server: %s %s on %q: %w", r.op, p, ep, err)
	}
	s.log.Debug("observing", "ep", ep, "path", p.String(), "id", o.id, "token", hex.EncodeToString(o.token))
	return o, nil
}

// observationByID returns the live observation with ID id, or nil. Called
// with s.mu held.
func (s *Server) observationByID(id string) *Observation {
	for _, o := range s.obs {
		if o.id == id {
			return o
		}
	}
	return nil
}

// forget ends o, if it is live, with err.
func (s *Server) forget(o *Observation, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endObservation(o, err)
}

// endObservation ends o with err: the server forgets its token, and its
// channel closes. Ending an ended observation does nothing. Called with
// s.mu held.
func (s *Server) endObservation(o *Observation, err error) {
	if s.obs[string(o.token)] == o {
		delete(s.obs, string(o.token))
	}
	if s.apiObs[o.id] == o {
		delete(s.apiObs, o.id)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	o.ended, o.err = true, err
	close(o.ch)
}

// endObservations ends the observations made on reg. Called with s.mu
// held.
func (s *Server) endObservations(reg *registration, err error) {
	for _, o := range s.obs {
		if o.reg == reg {
			s.endObservation(o, err)
			s.log.Debug("observation ended", "ep", o.ep, "path", o.path.String(), "id", o.id, "err", err)
		}
	}
}

// processMessage is go-coap's ProcessReceivedMessage hook: it sees every
// message from a client before go-coap matches it to a request, takes the
// notifications of live observations, and rejects those of unknown
// observations with RST. It also serves GET /fw/<name> and takes the
// answers to the block-wise firmware pushes, both of which must bypass
// go-coap's own block-wise layer (see firmware.go and fota.go). Everything
// else, and the notifications after delivery, goes on to go-coap (which
// sends the empty ACK a confirmable notification needs).
func (s *Server) processMessage(m *pool.Message, cc *udpclient.Conn, next config.HandlerFunc[*udpclient.Conn]) {
	if !isResponse(m.Code()) {
		if s.serveFirmwareCoAP(m, cc) {
			return
		}
		cc.ProcessReceivedMessageWithHandler(m, next)
		return
	}
	if s.fotas.takeResponse(m, cc) {
		return
	}
	s.mu.Lock()
	o := s.obs[string(m.Token())]
	if o != nil && addrString(o.reg.info.Addr) != addrString(cc.RemoteAddr()) {
		// RFC 7252 §5.3.2: a response matches a request by token and
		// endpoint; the client's address is the one of its last Register
		// or Update.
		o = nil
	}
	s.mu.Unlock()
	if o == nil {
		if t := m.Type(); (t == message.Confirmable || t == message.NonConfirmable) && m.HasOption(message.Observe) {
			// RFC 7641 §3.6: "when the server then sends the next
			// notification, the client will not recognize the token in the
			// message and thus will return a Reset message."
			s.reset(m, cc)
			cc.ReleaseMessage(m)
			return
		}
		cc.ProcessReceivedMessageWithHandler(m, next)
		return
	}
	if end := o.receive(m, time.Now()); end != nil {
		s.forget(o, end)
		s.log.Debug("observation ended by the client", "ep", o.ep, "path", o.path.String(), "id", o.id, "err", end)
	}
	cc.ProcessReceivedMessageWithHandler(m, next)
}

// reset answers m with RST (RFC 7252 §4.2, §4.3: an empty message of type
// Reset with m's message ID).
func (s *Server) reset(m *pool.Message, cc *udpclient.Conn) {
	rst := cc.AcquireMessage(cc.Context())
	defer cc.ReleaseMessage(rst)
	rst.SetType(message.Reset)
	rst.SetCode(codes.Empty)
	rst.SetToken(nil)
	rst.SetMessageID(m.MessageID())
	err := cc.Session().WriteMessage(rst)
	s.log.Debug("notification of an unknown observation reset", "token", hex.EncodeToString(m.Token()),
		"mid", m.MessageID(), "addr", addrString(cc.RemoteAddr()), "err", err)
}

// receive takes a message with o's token at now: the answer to the Observe
// request (which go-coap then hands to Observe), or a notification, which
// it delivers. It returns why the observation ends when the notification
// ends it.
func (o *Observation) receive(m *pool.Message, now time.Time) error {
	seq, err := m.Observe()
	hasSeq := err == nil
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return nil
	}
	if !o.started || m.Type() == message.Acknowledgement {
		// The first message with the token, or a piggybacked response
		// (notifications are never ACKs): the answer to the request.
		if !o.started {
			o.started, o.observed = true, hasSeq && success(m.Code())
			o.seq, o.seqTime = seq, now
		}
		return nil
	}
	if hasSeq && !fresher(o.seq, seq, o.seqTime, now) {
		o.s.log.Debug("stale notification ignored", "ep", o.ep, "path", o.path.String(), "seq", seq, "last", o.seq)
		return nil
	}
	n := Notification{Seq: seq, Time: now, Response: &Response{Code: m.Code(), ContentFormat: lwm2m.FormatNone}}
	if !hasSeq {
		n.Seq = 0
	}
	if cf, err := m.ContentFormat(); err == nil {
		n.Response.ContentFormat = lwm2m.ContentFormat(cf)
	}
	if n.Response.Payload, err = m.ReadBody(); err != nil {
		n.Err = fmt.Errorf("read payload: %w", err)
	} else if success(m.Code()) {
		recs, err := o.decode(n.Response)
		if err != nil {
			n.Err = fmt.Errorf("decode %s: %w", n.Response.ContentFormat, err)
		}
		n.Response.Records = recs
	}
	if hasSeq {
		o.seq, o.seqTime = seq, now
	}
	o.s.log.Debug("notification", "ep", o.ep, "path", o.path.String(), "seq", seq, "code", codeString(m.Code()), "bytes", len(n.Response.Payload))
	select {
	case o.ch <- n:
	default:
		o.dropped++
		o.s.log.Warn("notification dropped for slow reader", "ep", o.ep, "path", o.path.String(), "seq", seq, "dropped", o.dropped)
	}
	switch {
	case !success(m.Code()):
		// RFC 7641 §3.2: "a notification with a response code other than
		// 2.xx ... the observation is cancelled".
		return &CodeError{Op: "notify", Path: o.path, Code: m.Code()}
	case !hasSeq:
		// RFC 7641 §3.2: a notification without Observe option ends the
		// observation too.
		return ErrNotObserved
	}
	return nil
}

// seqTimeout is how long a sequence number stays comparable (RFC 7641
// §3.4: 128 seconds).
const seqTimeout = 128 * time.Second

// fresher reports whether a notification with sequence number v2 received
// at t2 is newer than the one with v1 received at t1. RFC 7641 §3.4: "V1 <
// V2 and V2 - V1 < 2^23, or V1 > V2 and V1 - V2 > 2^23, or T2 > T1 + (128
// seconds)".
func fresher(v1, v2 uint32, t1, t2 time.Time) bool {
	return (v1 < v2 && v2-v1 < 1<<23) || (v1 > v2 && v1-v2 > 1<<23) || t2.After(t1.Add(seqTimeout))
}

// isResponse reports whether c is a response code (classes 2 to 5).
func isResponse(c codes.Code) bool {
	class := uint8(c) >> 5
	return class >= 2 && class <= 5
}
