package agent

import (
	"encoding/binary"
	"sort"
	"strconv"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// CoAP transmission parameters (RFC 7252 §4.8).
const (
	// AckTimeout is ACK_TIMEOUT.
	AckTimeout = 2 * time.Second
	// AckRandomFactor is ACK_RANDOM_FACTOR.
	AckRandomFactor = 1.5
	// MaxRetransmit is MAX_RETRANSMIT.
	MaxRetransmit = 4
	// ExchangeLifetime is EXCHANGE_LIFETIME (247 s with the defaults): how
	// long a message ID is remembered for deduplication.
	ExchangeLifetime = 247 * time.Second
	// MaxTransmitWait is MAX_TRANSMIT_WAIT (93 s): how long a request may
	// wait for a separate response after its empty ACK.
	MaxTransmitWait = 93 * time.Second
)

// maxDedup bounds the duplicate-detection cache.
const maxDedup = 256

// xkey is an exchange's key in transport.exchanges: the token of a
// request of ours (tokens are ours, always 8 bytes: tokenKey), or the
// message ID of a confirmable notification or separate response. A
// comparable value, so that keeping and finding an exchange allocates
// nothing, whatever the number of blocks a pull asks for.
type xkey struct {
	kind byte // 0: a request's token; 'n': a notification; 'r': a separate response
	mid  uint16
	tok  uint64
}

// noKey is the key of no exchange: tokenKey's answer for a token that
// cannot be ours.
var noKey = xkey{kind: 0xff}

// tokenKey returns the key of the request with token b.
func tokenKey(b []byte) xkey {
	if len(b) != 8 {
		return noKey
	}
	return xkey{tok: binary.BigEndian.Uint64(b)}
}

// less orders keys, for a deterministic order of retransmissions.
func (k xkey) less(o xkey) bool {
	if k.kind != o.kind {
		return k.kind < o.kind
	}
	if k.tok != o.tok {
		return k.tok < o.tok
	}
	return k.mid < o.mid
}

// exchange is one outstanding confirmable request of ours.
type exchange struct {
	key      xkey
	notify   bool // a confirmable notification or separate response: an empty ACK completes it
	mid      uint16
	wire     []byte
	peer     string
	sends    int           // transmissions so far
	maxSends int           // 1 + MAX_RETRANSMIT of a pull's request; 0: the default (pullhooks.go)
	timeout  time.Duration // current retransmission timeout
	deadline time.Time     // next retransmission, or give-up time
	acked    bool          // empty ACK seen: waiting for a separate response
	ownWire  bool          // wire came from transport.spareWire (send): reusable once done
	// done is called once with the response, or with nil when the
	// exchange timed out or was reset.
	done func(now time.Time, resp *message.Message)
}

// seen is a remembered incoming message ID with the response we sent.
type seen struct {
	expires time.Time
	resp    []byte // nil for NON requests and for messages we only ACKed
}

// transport is the CoAP message layer: message IDs, tokens,
// retransmission of our confirmable requests, matching responses, and
// deduplication of the peer's requests.
type transport struct {
	e         *Engine
	nextMID   uint16
	exchanges map[xkey]*exchange
	dedup     map[string]seen // by peer + MID
	// dedupOrder holds dedup's keys oldest first. Every entry lives for
	// EXCHANGE_LIFETIME, so insertion order is expiry order and both
	// expiry and eviction take from the front.
	dedupOrder []string
	// szx is the largest block size we send or ask for (SetBlockSize).
	szx uint8
	// bw is the block-wise layer's state (blockwise.go).
	bw blockwise
	// spare holds completed exchanges for newExchange to reuse (a pull
	// makes one per block), spareWire the encoded requests of completed
	// exchanges for send to encode into.
	spare     []*exchange
	spareWire [][]byte
}

// maxSpare bounds transport.spare.
const maxSpare = 8

// newExchange returns an exchange to fill in: a spare one or a new one.
func (t *transport) newExchange() *exchange {
	if n := len(t.spare); n > 0 {
		x := t.spare[n-1]
		t.spare = t.spare[:n-1]
		return x
	}
	return new(exchange)
}

// finish completes x, already removed from t.exchanges, with resp (nil:
// timed out or reset) and keeps it for reuse: nothing refers to an
// exchange once it has left the map and its done has returned.
func (t *transport) finish(now time.Time, x *exchange, resp *message.Message) {
	x.done(now, resp)
	// Its wire bytes too, unless a transmission of them still waits for
	// the driver (Engine.PollTransmit hands them out, not copies).
	if x.ownWire && len(t.spareWire) < maxSpare && !t.e.queued(x.wire) {
		t.spareWire = append(t.spareWire, x.wire[:0])
	}
	*x = exchange{}
	if len(t.spare) < maxSpare {
		t.spare = append(t.spare, x)
	}
}

func newTransport(e *Engine) *transport {
	return &transport{
		e:         e,
		nextMID:   uint16(e.randUint64()),
		exchanges: make(map[xkey]*exchange),
		dedup:     make(map[string]seen),
		szx:       szxMax,
		bw:        newBlockwise(),
	}
}

func (t *transport) mid() uint16 {
	t.nextMID++
	return t.nextMID
}

// token returns a fresh random 8-byte token not used by any outstanding
// exchange (RFC 9175 §4.2: tokens are random and not reused while open).
func (t *transport) token() []byte { return t.appendToken(make([]byte, 0, 8)) }

// appendToken appends a fresh token (see token) to b: a caller that
// keeps the bytes of its requests' tokens reuses them.
func (t *transport) appendToken(b []byte) []byte {
	for {
		v := t.e.randUint64()
		if _, busy := t.exchanges[xkey{tok: v}]; !busy {
			return binary.BigEndian.AppendUint64(b, v)
		}
	}
}

// initialTimeout is a random duration in [ACK_TIMEOUT,
// ACK_TIMEOUT*ACK_RANDOM_FACTOR] (RFC 7252 §4.2).
func (t *transport) initialTimeout() time.Duration {
	span := time.Duration(float64(AckTimeout) * (AckRandomFactor - 1))
	return AckTimeout + time.Duration(t.e.randUint64()%uint64(span+1))
}

// request sends a confirmable request to peer and calls done with the
// final response, or with nil on timeout or reset. A payload larger than
// the block size goes block-wise (Block1); a 4.13 answer to a request sent
// whole makes it go block-wise with a smaller size.
func (t *transport) request(now time.Time, peer string, m *message.Message, done func(time.Time, *message.Message)) {
	if len(m.Payload) > 16<<t.szx {
		t.startBlocks(now, peer, m, t.szx, done)
		return
	}
	if len(m.Payload) <= 16 {
		t.send(now, peer, m, done)
		return
	}
	t.send(now, peer, m, func(now time.Time, resp *message.Message) {
		if resp != nil && resp.Code == codes.RequestEntityTooLarge {
			// RFC 7959 §2.5: "a 4.13 response to a request that does not
			// employ Block1 is a hint for the client to try sending
			// Block1". The payload went whole: count it as one block of
			// the smallest size that holds it.
			whole, _ := szxAtMost(int64(len(m.Payload)) - 1)
			if szx, ok := smallerSZX(resp, whole+1, true); ok {
				t.e.logDebug("request too large; sending it block-wise", "peer", peer, "szx", szx)
				t.startBlocks(now, peer, m, szx, done)
				return
			}
		}
		done(now, resp)
	})
}

// send sends m as one confirmable request to peer and calls done with the
// response, or with nil on timeout or reset. Callers use request, which
// goes block-wise when the payload needs it. It returns the key of the
// request's exchange.
func (t *transport) send(now time.Time, peer string, m *message.Message, done func(time.Time, *message.Message)) xkey {
	m.Type = message.Confirmable
	m.MessageID = int32(t.mid())
	if len(m.Token) == 0 {
		m.Token = t.token()
	}
	var buf []byte
	if n := len(t.spareWire); n > 0 {
		buf, t.spareWire = t.spareWire[n-1], t.spareWire[:n-1]
	}
	wire, err := encodeInto(m, buf)
	if err != nil {
		// Our own requests always encode; a failure is a broken invariant.
		panic(err)
	}
	key := tokenKey(m.Token)
	x := t.newExchange()
	*x = exchange{key: key, mid: uint16(m.MessageID), wire: wire, peer: peer, done: done, ownWire: true}
	t.start(now, x, m)
	return key
}

// start transmits a new confirmable exchange and arms its retransmission.
func (t *transport) start(now time.Time, x *exchange, m *message.Message) {
	x.timeout = t.initialTimeout()
	x.sends = 1
	x.deadline = now.Add(x.timeout)
	t.exchanges[x.key] = x
	if t.e.debugOn() {
		t.e.logDebug("coap send", "peer", x.peer, "mid", x.mid, "code", m.Code.String(), "type", "CON")
	}
	t.e.transmit(x.peer, x.wire)
}

// notify sends an Observe notification m (its token and options set by the
// caller) as CON or NON and returns its message ID. A CON notification is
// retransmitted until acknowledged; done then gets the ACK, or nil when it
// timed out or was reset (RFC 7641 §4.5). A notification larger than the
// block size carries its first block only (RFC 7959 §2.6).
func (t *transport) notify(now time.Time, peer string, m *message.Message, con bool, done func(time.Time, *message.Message)) uint16 {
	m = t.blockNotification(now, m)
	mid := t.mid()
	m.MessageID = int32(mid)
	m.Type = message.NonConfirmable
	if con {
		m.Type = message.Confirmable
	}
	wire, err := encode(m)
	if err != nil {
		panic(err) // our own notifications always encode
	}
	if !con {
		t.e.transmit(peer, wire)
		return mid
	}
	x := t.newExchange()
	*x = exchange{key: xkey{kind: 'n', mid: mid}, notify: true, mid: mid, wire: wire, peer: peer, done: done}
	t.start(now, x, m)
	return mid
}

// cancelPeer forgets the outstanding exchanges with peer.
func (t *transport) cancelPeer(peer string) {
	t.cancelExcept(func(p string) bool { return p != peer })
}

// cancelExcept forgets the outstanding exchanges with the peers keep
// does not keep.
func (t *transport) cancelExcept(keep func(peer string) bool) {
	for k, x := range t.exchanges {
		if !keep(x.peer) {
			delete(t.exchanges, k)
		}
	}
}

// fire retransmits or expires the exchanges whose deadline has come and
// forgets expired duplicate-detection entries.
func (t *transport) fire(now time.Time) {
	var due []*exchange
	for _, x := range t.exchanges {
		if !now.Before(x.deadline) {
			due = append(due, x)
		}
	}
	// Deterministic order: a replayed seed must produce the same run.
	sort.Slice(due, func(i, j int) bool { return due[i].key.less(due[j].key) })
	for _, x := range due {
		if t.exchanges[x.key] != x {
			continue // completed or cancelled by an earlier callback
		}
		if x.acked || x.sends > x.maxRetransmit() {
			delete(t.exchanges, x.key)
			t.e.logDebug("coap exchange timed out", "peer", x.peer, "mid", x.mid)
			t.finish(now, x, nil)
			continue
		}
		x.sends++
		x.timeout *= 2
		x.deadline = x.deadline.Add(x.timeout)
		if t.e.debugOn() {
			t.e.logDebug("coap retransmit", "peer", x.peer, "mid", x.mid, "attempt", x.sends)
		}
		t.e.transmit(x.peer, x.wire)
	}
	for len(t.dedupOrder) > 0 {
		k := t.dedupOrder[0]
		if s, ok := t.dedup[k]; ok && now.Before(s.expires) {
			break
		}
		delete(t.dedup, k)
		t.dedupOrder = t.dedupOrder[1:]
	}
	t.fireBlockwise(now)
}

// next returns the earliest pending deadline (zero when none).
func (t *transport) next() time.Time {
	var next time.Time
	for _, x := range t.exchanges {
		if next.IsZero() || x.deadline.Before(next) {
			next = x.deadline
		}
	}
	if len(t.dedupOrder) > 0 {
		if s := t.dedup[t.dedupOrder[0]]; next.IsZero() || s.expires.Before(next) {
			next = s.expires
		}
	}
	if bw := t.nextBlockwise(); !bw.IsZero() && (next.IsZero() || bw.Before(next)) {
		next = bw
	}
	return next
}

// handle processes a decoded datagram from peer.
func (t *transport) handle(now time.Time, peer string, m *message.Message) {
	switch m.Type {
	case message.Acknowledgement, message.Reset:
		t.handleAckOrReset(now, m)
		return
	}
	// CON or NON.
	if m.Code == codes.Empty {
		if m.Type == message.Confirmable {
			// CoAP ping (RFC 7252 §4.3): answer with RST.
			t.sendEmpty(peer, message.Reset, uint16(m.MessageID))
		}
		return
	}
	key := peer + "/" + strconv.Itoa(int(m.MessageID))
	if s, dup := t.dedup[key]; dup {
		if t.e.debugOn() {
			t.e.logDebug("coap duplicate", "peer", peer, "mid", m.MessageID)
		}
		if m.Type == message.Confirmable && s.resp != nil {
			t.e.transmit(peer, s.resp)
		}
		return
	}
	if isResponse(m.Code) {
		// A separate response (RFC 7252 §5.2.2).
		x, ok := t.exchanges[tokenKey(m.Token)]
		if m.Type == message.Confirmable {
			ack := t.emptyWire(message.Acknowledgement, uint16(m.MessageID))
			if !ok {
				ack = t.emptyWire(message.Reset, uint16(m.MessageID))
			}
			t.remember(now, key, ack)
			t.e.transmit(peer, ack)
		}
		if ok {
			delete(t.exchanges, tokenKey(m.Token))
			t.finish(now, x, m)
		}
		return
	}
	if !isRequest(m.Code) {
		if m.Type == message.Confirmable {
			t.sendEmpty(peer, message.Reset, uint16(m.MessageID))
		}
		return
	}
	resp := t.serveRequest(now, peer, m)
	if resp == nil {
		// The response comes separately (readcb.go); a confirmable
		// request is acknowledged now, and so is each duplicate of it
		// (RFC 7252 §5.2.2).
		var ack []byte
		if m.Type == message.Confirmable {
			ack = t.emptyWire(message.Acknowledgement, uint16(m.MessageID))
			t.e.transmit(peer, ack)
		}
		t.remember(now, key, ack)
		t.e.afterServe(now)
		return
	}
	resp.Token = m.Token
	if m.Type == message.Confirmable {
		resp.Type = message.Acknowledgement
		resp.MessageID = m.MessageID
	} else {
		resp.Type = message.NonConfirmable
		resp.MessageID = int32(t.mid())
	}
	wire, err := encode(resp)
	if err != nil {
		t.e.logWarn("encode response", "err", err)
		resp = &message.Message{Code: codes.InternalServerError, Token: m.Token, Type: resp.Type, MessageID: resp.MessageID}
		wire, _ = encode(resp)
	}
	t.remember(now, key, wire)
	t.e.transmit(peer, wire)
	t.e.afterServe(now)
}

func (t *transport) handleAckOrReset(now time.Time, m *message.Message) {
	for key, x := range t.exchanges {
		if x.mid != uint16(m.MessageID) {
			continue
		}
		if m.Type == message.Reset {
			delete(t.exchanges, key)
			t.finish(now, x, nil)
			return
		}
		if x.notify {
			// The ACK of a confirmable notification (RFC 7641 §4.5).
			delete(t.exchanges, key)
			t.finish(now, x, m)
			return
		}
		if m.Code == codes.Empty {
			if len(m.Token) == 0 && !x.acked {
				// Separate response follows; stop retransmitting.
				x.acked = true
				x.deadline = now.Add(MaxTransmitWait)
			}
			return
		}
		if tokenKey(m.Token) != key {
			return // piggybacked response with the wrong token
		}
		delete(t.exchanges, key)
		t.finish(now, x, m)
		return
	}
	if m.Type == message.Reset {
		// A reset of a non-confirmable notification cancels its
		// observation (RFC 7641 §3.6).
		t.e.obs.reset(uint16(m.MessageID))
	}
}

func (t *transport) remember(now time.Time, key string, resp []byte) {
	if len(t.dedupOrder) >= maxDedup {
		// Full: forget the oldest entry, the one closest to expiry.
		delete(t.dedup, t.dedupOrder[0])
		t.dedupOrder = t.dedupOrder[1:]
	}
	t.dedup[key] = seen{expires: now.Add(ExchangeLifetime), resp: resp}
	t.dedupOrder = append(t.dedupOrder, key)
}

func (t *transport) emptyWire(typ message.Type, mid uint16) []byte {
	b := []byte{0x40 | byte(typ)<<4, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], mid)
	return b
}

func (t *transport) sendEmpty(peer string, typ message.Type, mid uint16) {
	t.e.transmit(peer, t.emptyWire(typ, mid))
}
