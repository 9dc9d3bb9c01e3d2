package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
)

// Errors returned by Engine.HandleCommand and the drivers.
var (
	// ErrDuplicate: the session is already in the requested state
	// (le_avc: LE_DUPLICATE).
	ErrDuplicate = errors.New("agent: already in that state")
	// ErrNotRegistered: the command needs a registration that is not up.
	ErrNotRegistered = errors.New("agent: not registered")
	// ErrUnknownCommand: the command type is not one the engine knows.
	ErrUnknownCommand = errors.New("agent: unknown command")
	// ErrBadValue: a CmdSet path or value the engine refuses.
	ErrBadValue = errors.New("agent: bad value")
	// ErrClosed: the agent has stopped running.
	ErrClosed = errors.New("agent: closed")
)

// Datagram is one UDP payload to send to Peer ("host:port" as written in
// the server URI; drivers resolve it).
type Datagram struct {
	Peer string
	Data []byte
}

// Engine is the sans-I/O LwM2M client core. It never reads a clock, opens a
// socket or a file, or starts a goroutine: the caller feeds it with
// HandleDatagram, HandleCommand and Step, passing the current time, and
// drains PollTransmit and PollEvent after each call.
//
// An Engine is not safe for concurrent use; a driver owns it from one
// goroutine (or one wasm instance).
type Engine struct {
	cfg Config
	// server is the address of the DM server the engine registers with,
	// dm its Security account and srvInst its Server instance; hasDM is
	// false when there is no usable one (bootstrap.go).
	server  serverAddr
	dm      account
	srvInst uint16
	hasDM   bool
	// extra are the registrations with the further DM servers, multi is
	// set when more than one DM server account is usable (servers.go):
	// Access Control is then enforced (acting) for the server whose
	// request is served, or whose observation is evaluated: as, the
	// Short Server ID whose attributes apply (acl.go, observe.go).
	extra  []*registration
	multi  bool
	acting bool
	as     uint16
	// aclDirty is set when a server changed /2 (acl.go).
	aclDirty bool
	// The Bootstrap-Server account, cached (bootstrap.go).
	bsAcc    account
	bsOK     bool
	bsCached bool
	log      *slog.Logger
	rand     io.Reader
	randBuf  [8]byte // randUint64's
	// stateEnc is store's scratch space for the state's JSON.
	stateEnc stateEncoder
	// With Config.reuseState: stateOut holds the stored state, and
	// stateEv is 1 + the index in events of the EventStore not yet
	// polled (0: none).
	stateOut []byte
	stateEv  int

	tr   *transport
	reg  *registration
	objs *objectTree
	obs  *observer
	snd  *sender
	fw   *firmware // nil without Config.Firmware.Handler
	sw   *software // nil without Config.Software.Handler
	ctl  *control  // nil without Config.Control.Enabled
	st   persistent

	// reads are the server reads waiting for the host (readcb.go).
	reads   []*pendingRead
	readSeq uint64

	fetches  []FetchRequest // for the driver (PollFetch)
	fetchSeq uint64
	syncs    []syncJob // for a driver with Config.bgSync (pollSync)
	syncSeq  uint64

	// version counts the inputs that may change a value of a stable
	// object (stableObjects): stores of the persistent state, commands
	// and the server's datagrams. The observer skips re-reading stable
	// observations while it stands still.
	version uint64

	rx      rxScratch  // a pull's responses are decoded here
	out     []Datagram // to send, from out[outHead] on
	outHead int
	events  []Event // to forward, from events[evHead] on
	evHead  int
	sent    int       // datagrams transmitted so far
	stats   connStats // Connectivity Statistics /7
	now     time.Time // time of the call being handled

	// Queue mode (binding UQ): the engine stays reachable until
	// awakeUntil after its last exchange, then sleeps.
	awakeUntil time.Time
	asleep     bool
}

// NewEngine returns an engine for cfg. state is what the engine last
// emitted in an EventStore (nil on first start); a state that cannot be
// parsed is ignored with a warning, never a failure. NewEngine validates
// cfg and returns every problem joined.
func NewEngine(cfg Config, state []byte) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, u := range []struct{ name, uri string }{{EnvServerURI, cfg.ServerURI}, {EnvBootstrapURI, cfg.BootstrapURI}} {
		if srv, _ := parseURI(u.name, u.uri); srv.scheme == "coaps" && !cfg.dtls {
			// Only drivers that carry DTLS (New, avc.wasm) may; any other
			// would talk plaintext to a coaps server.
			return nil, fmt.Errorf("%w: %s=%q: coaps needs a driver that carries DTLS: the native agent (agent.New) or avc.wasm (Config.CarryDTLS)", ErrConfig, u.name, u.uri)
		}
	}
	if len(cfg.Servers) > 0 && !cfg.sideDTLS() {
		for _, u := range append([]string{cfg.ServerURI}, serverURIsOf(cfg.Servers)...) {
			if srv, _ := parseURI(EnvServerURIs, u); srv.scheme == "coaps" {
				// Only the native driver opens a DTLS session per server.
				return nil, fmt.Errorf("%w: %q: several servers with coaps need the native agent (agent.New)", ErrConfig, u)
			}
		}
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, rand: cfg.Rand}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	e.st = defaultPersistent(&cfg)
	if len(state) > 0 {
		st, err := loadPersistent(state)
		if err != nil {
			e.logWarn("ignoring stored state", "err", err)
		} else if st.ConfLifetime == e.st.ConfLifetime || st.Boot != nil {
			// A lifetime the bootstrap server gave outlives the
			// configured one, like the rest of what it provisioned.
			e.st = st
		} else {
			st.Lifetime, st.ConfLifetime = e.st.Lifetime, e.st.ConfLifetime
			e.st = st
		}
	}
	e.tr = newTransport(e)
	if cfg.BlockSize != 0 {
		if err := e.SetBlockSize(cfg.BlockSize); err != nil {
			return nil, err
		}
	}
	e.fw = newFirmware(e)
	e.sw = newSoftware(e)
	e.objs = newObjectTree(e)
	e.selectDM()
	e.aclDefaults()
	e.ctl = newControl(e)
	e.reg = newRegistration(e)
	e.obs = newObserver(e)
	e.snd = &sender{e: e}
	return e, nil
}

// HandleDatagram feeds one datagram received from peer. Malformed
// datagrams are dropped (or answered with RST or 4.xx as CoAP requires);
// nothing a peer sends makes the engine fail.
func (e *Engine) HandleDatagram(now time.Time, peer string, b []byte) {
	e.now = now
	e.stats.count(now, len(b), false)
	var m *message.Message
	var err error
	// A pull's response counts as the server's only when it is not one:
	// the DM server may also be the file server (avc server's /fw/), and
	// its blocks must not make every observation be evaluated.
	fromServer := (e.isDMPeer(peer) || e.fromBootstrap(peer)) && !e.pullResponse(peer, b)
	if fromServer {
		m, err = decode(b)
	} else {
		// Only a pull's responses are taken from other peers; they are
		// decoded into the engine's reused buffer (rxScratch).
		m, err = e.rx.decode(b)
	}
	if err != nil {
		e.logDebug("drop datagram", "peer", peer, "len", len(b), "err", err)
		// RFC 7252 §4.2: a confirmable message that cannot be processed is
		// rejected with RST, when at least its header is readable.
		if len(b) >= 4 && b[0]>>6 == 1 && (b[0]>>4)&3 == 0 {
			e.tr.sendEmpty(peer, 3, binary.BigEndian.Uint16(b[2:4]))
		}
		return
	}
	if !fromServer && !e.isDMPeer(peer) && !e.fromBootstrap(peer) {
		if isRequest(m.Code) || !e.pullFrom(peer) {
			e.logDebug("drop datagram from unknown peer", "peer", peer)
			return
		}
	}
	e.tr.handle(now, peer, m)
	if fromServer {
		e.version++
		// A pull's blocks (from another peer) move only the download,
		// whose state changes notify by themselves (observer.transition);
		// anything else they change is evaluated by the Step that drivers
		// run after each datagram, not twice for every block.
		e.obs.fire(now)
	}
	e.activity(now)
}

// HandleCommand applies a host command. See CmdStart, CmdStop, CmdUpdate
// for the errors each returns.
func (e *Engine) HandleCommand(now time.Time, c Command) error {
	e.now = now
	e.version++
	sent := e.sent
	defer func() {
		if e.sent != sent {
			e.activity(now)
		}
	}()
	switch c := c.(type) {
	case CmdStart:
		if e.fw != nil {
			e.fw.boot(now)
		}
		if e.sw != nil {
			e.sw.boot(now)
		}
		if e.ctl != nil {
			e.ctl.boot(now)
			return e.ctl.start(now)
		}
		return e.reg.start(now)
	case CmdStop:
		return e.reg.stop(now)
	case CmdUpdate:
		// Every registered server is updated; the answer is the first
		// server's.
		for _, r := range e.extra {
			_ = r.triggerUpdate(now)
		}
		return e.reg.triggerUpdate(now)
	case CmdSend:
		return e.snd.send(now, c)
	case CmdAccept, CmdDefer, CmdSetAgreement, CmdBlockInstall, CmdUnblockInstall,
		CmdSetPollingTimer, CmdSetRetryTimers, CmdSetAPN, CmdStatusHandlers, CmdSessionRequests, CmdSetCredential:
		return e.controlCommand(now, c)
	case CmdLink:
		return e.link(now, c)
	case CmdReadDone:
		return e.readDone(now, c.Token)
	case CmdSet:
		if err := e.objs.set(c.Path, c.Value); err != nil {
			return err
		}
		for _, r := range e.registrations() {
			if r.location != "" && r.linksChanged() {
				// A new instance: the server learns it from an update
				// (now, or after the one in flight).
				r.triggerUpdate(now)
			}
		}
		e.obs.fire(now)
		return nil
	}
	return fmt.Errorf("%w: %T", ErrUnknownCommand, c)
}

// Step runs every timer due at now (retransmissions, registration updates,
// retries) and returns the next time Step must be called. The zero time
// means no timer is pending.
func (e *Engine) Step(now time.Time) time.Time {
	e.now = now
	sent := e.sent
	e.tr.fire(now)
	e.reg.fire(now)
	if e.reg.started {
		e.startExtras(now)
	}
	for _, r := range e.extra {
		r.fire(now)
	}
	if e.fw != nil {
		e.fw.boot(now)
		e.fw.fire(now)
	}
	if e.sw != nil {
		e.sw.boot(now)
		e.sw.fire(now)
	}
	e.ctl.fire(now)
	e.fireReads(now)
	e.obs.fire(now)
	if e.sent != sent {
		e.activity(now)
	}
	e.maybeSleep(now)
	next := e.tr.next()
	var awake time.Time
	if e.queueMode() && !e.asleep && e.reg.state == regRegistered {
		awake = e.awakeUntil
	}
	var fwNext, swNext time.Time
	if e.fw != nil {
		fwNext = e.fw.next()
	}
	if e.sw != nil {
		swNext = e.sw.next()
	}
	for _, r := range e.extra {
		if t := r.next(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, t := range []time.Time{e.reg.next(), e.obs.next(), awake, fwNext, swNext, e.ctl.next(), e.nextRead()} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// pendingTransmit reports whether datagrams wait for PollTransmit.
func (e *Engine) pendingTransmit() bool { return len(e.out) > e.outHead }

// queued reports whether b's bytes wait in the outgoing queue.
func (e *Engine) queued(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, d := range e.out[e.outHead:] {
		if len(d.Data) > 0 && &d.Data[0] == &b[0] {
			return true
		}
	}
	return false
}

// PollTransmit returns the next datagram to send, if any. Its Data is
// the engine's: the driver sends (or copies) it before calling the engine
// again, which may reuse the bytes of a request whose exchange is done.
func (e *Engine) PollTransmit() (Datagram, bool) {
	if e.outHead == len(e.out) {
		return Datagram{}, false
	}
	d := e.out[e.outHead]
	e.out[e.outHead] = Datagram{}
	e.outHead++
	if e.outHead == len(e.out) {
		// All taken: the next datagrams reuse the array.
		e.out, e.outHead = e.out[:0], 0
	}
	return d, true
}

// PollEvent returns the next event, if any.
func (e *Engine) PollEvent() (Event, bool) {
	if e.evHead == len(e.events) {
		return Event{}, false
	}
	ev := e.events[e.evHead]
	e.events[e.evHead] = Event{}
	e.evHead++
	if e.evHead == e.stateEv {
		e.stateEv = 0
	}
	if e.evHead == len(e.events) {
		// All taken: the next events reuse the array.
		e.events, e.evHead = e.events[:0], 0
	}
	return ev, true
}

// Registered reports whether a registration is up.
func (e *Engine) Registered() bool { return e.reg.location != "" }

// Started reports whether a session was started and not stopped.
func (e *Engine) Started() bool { return e.reg.started }

// Peer returns the "host:port" of the server the engine addresses now
// (Target().Peer).
func (e *Engine) Peer() string { return e.Target().Peer }

// ServerURI returns the URI of the server the engine addresses now
// (Target().URI).
func (e *Engine) ServerURI() string { return e.Target().URI }

func (e *Engine) transmit(peer string, b []byte) {
	e.out = append(e.out, Datagram{Peer: peer, Data: b})
	e.sent++
	e.stats.count(e.now, len(b), true)
}

// queueMode reports whether the binding asks for queue mode.
func (e *Engine) queueMode() bool { return strings.HasSuffix(e.st.Binding, "Q") && len(e.extra) == 0 }

// activity notes an exchange at now: in queue mode the client stays
// reachable for the queue window after it (Core TS 1.1 §6.5: the client
// "MUST remain online for at least" MAX_TRANSMIT_WAIT), waking if asleep.
func (e *Engine) activity(now time.Time) {
	e.ctl.touch(now)
	if !e.queueMode() {
		return
	}
	w := e.cfg.QueueWindow
	if w <= 0 {
		w = MaxTransmitWait
	}
	e.awakeUntil = now.Add(w)
	if e.asleep {
		e.asleep = false
		e.emit(Event{Kind: EventWake})
	}
}

// maybeSleep puts a queue-mode client to sleep once its window has passed
// with nothing in flight.
func (e *Engine) maybeSleep(now time.Time) {
	if e.queueMode() && !e.asleep && e.reg.state == regRegistered && len(e.tr.exchanges) == 0 && len(e.reads) == 0 && !now.Before(e.awakeUntil) {
		e.asleep = true
		e.logDebug("queue mode: sleeping")
		e.emit(Event{Kind: EventSleep})
	}
}

// Asleep reports whether a queue-mode client is sleeping: the host may
// power its radio down until the deadline Step returns.
func (e *Engine) Asleep() bool { return e.asleep }

func (e *Engine) emit(ev Event) {
	if ev.Server == "" {
		ev.Server = e.dm.uri
		if !e.hasDM {
			ev.Server = e.Target().URI
		}
	}
	e.events = append(e.events, ev)
}

// store emits the persistent state after a change.
func (e *Engine) store() {
	e.version++
	e.storePosition()
}

// storePosition emits the persistent state after a change to a download's
// position alone (a checkpoint): no object's value moved, so it leaves
// Engine.version, and the observations of stable objects are not read and
// encoded again at every checkpoint.
func (e *Engine) storePosition() {
	if !e.cfg.reuseState {
		e.emit(Event{Kind: EventStore, Data: e.st.marshal(&e.stateEnc)})
		return
	}
	// The driver is done with the last state polled: write over it. A
	// state not polled yet is superseded: its event takes the new one.
	e.stateOut = e.st.appendTo(e.stateOut[:0], &e.stateEnc)
	if e.stateEv > 0 {
		e.events[e.stateEv-1].Data = e.stateOut
		return
	}
	e.emit(Event{Kind: EventStore, Data: e.stateOut})
	e.stateEv = len(e.events)
}

func (e *Engine) randUint64() uint64 {
	// e.randBuf, not a local array: handed to an io.Reader, a local one
	// would be allocated on every call.
	if _, err := io.ReadFull(e.rand, e.randBuf[:]); err != nil {
		panic(fmt.Sprintf("agent: random source failed: %v", err))
	}
	return binary.BigEndian.Uint64(e.randBuf[:])
}

// debugOn reports whether debug records are logged: hot paths check it
// before building a record's arguments, which allocate even when the
// record is dropped.
func (e *Engine) debugOn() bool { return e.log.Enabled(context.Background(), slog.LevelDebug) }

func (e *Engine) logDebug(msg string, args ...any) {
	e.log.Log(context.Background(), slog.LevelDebug, msg, args...)
}
func (e *Engine) logInfo(msg string, args ...any) {
	e.log.Log(context.Background(), slog.LevelInfo, msg, args...)
}
func (e *Engine) logError(msg string, args ...any) {
	e.log.Error(msg, args...)
}

func (e *Engine) logWarn(msg string, args ...any) {
	e.log.Log(context.Background(), slog.LevelWarn, msg, args...)
}
