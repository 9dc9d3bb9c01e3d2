package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Agent is the native Go driver: one goroutine owns an [Engine], a UDP
// socket and a timer, and delivers the engine's events on a channel.
//
// Use New, then Run in a goroutine; Run registers to the server and serves
// until its context is cancelled, then de-registers.
//
// Read callbacks (resources declared with lwm2m.ResourceDef.OnRead): the
// host answers each EventReadRequest from Events by setting the values
// with Do(CmdSet) and then Do(CmdReadDone{Token: ev.Token}); the server
// gets its answer then, or after Config.ReadTimeout with the values the
// engine had.
type Agent struct {
	cfg    Config
	engine *Engine
	log    *slog.Logger
	cmds   chan cmdReq
	events *EventQueue
	state  []byte // the engine's last stored state, for restarts
	fetch  *fetcher
	saver  *stateSaver     // nil without StateDir or StateStore
	cred   DTLSCredentials // for a coaps server
	// certs are the certificate credentials of further servers with
	// certificate files of their own (ServerAccount.CertFile...), by URI.
	certs  map[string]DTLSCredentials
	synced chan syncResult
	syncs  chan syncReq  // to runSyncs
	ended  chan struct{} // closed when Run returns

	// emu guards the engine (and the fields flush and the loop share with
	// receiveInline) while a session runs: the loop and the UDP port's
	// reader goroutine take turns, never both at once.
	emu    sync.Mutex
	inline inlineState

	// target is the server the current port was opened for; carry holds
	// datagrams the engine addressed to a new target, sent once the
	// port for it is open (Engine.Target).
	target Target
	carry  []Datagram
	held   []Datagram // flush's, reused
	evs    []Event    // flushEvents', reused
	// side is set while the port is a sidePort (withSide).
	side bool

	mu      sync.Mutex
	running bool
	ran     bool
	port    port // while Run is running
}

// syncResult is the outcome of a storage sync the engine asked for
// (Engine.pollSync), for the engine that asked.
type syncResult struct {
	engine *Engine
	id     uint64
	err    error
}

// syncReq is a storage sync for Agent.runSyncs, from engine.
type syncReq struct {
	engine *Engine
	job    syncJob
}

// runSyncs runs the storage syncs the engines ask for (Engine.pollSync),
// one after the other, until Run has returned: one goroutine for all of
// them, so that a checkpoint starts no goroutine and allocates nothing.
func (a *Agent) runSyncs() {
	for {
		select {
		case r := <-a.syncs:
			res := syncResult{engine: r.engine, id: r.job.id, err: r.job.run()}
			select {
			case a.synced <- res:
			default:
				// The buffer holds more results than syncs are ever in
				// flight while the loop drains it; full means the loop
				// has returned and nobody will read this one.
			}
		case <-a.ended:
			return
		}
	}
}

// maxSyncsInFlight sizes Agent.synced: an engine has at most one sync in
// flight per download (firmware and each software instance).
const maxSyncsInFlight = 256

// port is the socket half the Agent loop drives: a [UDPPort] for coap, a
// [SecurePort] for coaps.
type port interface {
	Recv() <-chan Datagram
	Send(peer string, b []byte) error
	Err() error
	LocalAddr() net.Addr
	Close() error
}

type cmdReq struct {
	cmd  Command
	done chan error
}

// StateFile is the name of the engine state under Config.StateDir; every
// driver uses the same file, so a device can move between embeddings.
const StateFile = "agent-state.json"

// New returns an agent for cfg; it validates cfg and loads the persistent
// state from cfg.StateDir. It starts nothing.
func New(cfg Config) (*Agent, error) {
	var state []byte
	switch {
	case cfg.StateStore != nil:
		b, err := cfg.StateStore.Load()
		if err != nil {
			// Like a corrupt state: the engine starts from the defaults
			// (and stores them).
			if cfg.Logger != nil {
				cfg.Logger.Warn("cannot load the state; starting from the defaults", "err", err)
			}
			b = nil
		}
		state = bytes.Clone(b) // a.state is written over (stored)
	case cfg.StateDir != "":
		b, err := os.ReadFile(filepath.Join(cfg.StateDir, StateFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("agent: read state: %w", err)
		}
		state = b
	}
	if cfg.Device.MemoryTotal == 0 {
		cfg.Device.MemoryFree, cfg.Device.MemoryTotal = systemMemory()
	}
	cfg.dtls = true      // Run opens a SecurePort for coaps
	cfg.httpFetch = true // the loop runs FetchRequests (fetch.go)
	cfg.bgSync = true    // the loop runs storage syncs beside the transfer
	// stored copies each state before the next engine call, so the
	// engine keeps one buffer for them: a checkpoint allocates nothing.
	cfg.reuseState = true
	if cfg.Firmware.Handler == nil && cfg.StateDir != "" {
		cfg.Firmware.Handler = &FileFirmware{Dir: filepath.Join(cfg.StateDir, "firmware"), InstallCmd: cfg.FirmwareInstallCmd, Logger: cfg.Logger}
	}
	if cfg.Software.Handler == nil && cfg.StateDir != "" {
		// Application packages (Object 9) are trusted like firmware.
		cfg.Software.Handler = &FileSoftware{Dir: filepath.Join(cfg.StateDir, "software"), Logger: cfg.Logger}
		if cfg.Software.TrustedKeys == nil && !cfg.Software.RequireSignature {
			cfg.Software.TrustedKeys, cfg.Software.RequireSignature = cfg.Firmware.TrustedKeys, cfg.Firmware.RequireSignature
		}
	}
	e, err := NewEngine(cfg, state)
	if err != nil {
		return nil, err
	}
	fetch, err := newFetcher(cfg.FirmwareCAFile)
	if err != nil {
		return nil, err
	}
	var cred DTLSCredentials
	if cfg.certConfigured() {
		// Loaded once: a certificate file that goes missing later does not
		// stop a running agent from handshaking again.
		if cred, err = cfg.dtlsCredentials(); err != nil {
			return nil, err
		}
	}
	certs, err := cfg.serverCertificates()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, engine: e, log: log, cmds: make(chan cmdReq), events: NewEventQueue(), state: state, fetch: fetch, cred: cred,
		certs: certs, synced: make(chan syncResult, maxSyncsInFlight),
		syncs: make(chan syncReq, maxSyncsInFlight), ended: make(chan struct{})}, nil
}

// Events returns the channel of engine events. It is closed once Run has
// returned and every event has been received. Events are queued without
// bound, so a slow reader never stalls the protocol. EventStore is not
// among them: the Agent saves the state itself (Config.StateDir,
// Config.StateStore).
func (a *Agent) Events() <-chan Event { return a.events.C() }

// Do sends a command to the running agent and returns the engine's answer
// (for example ErrDuplicate). It returns ErrClosed when Run is not running.
func (a *Agent) Do(ctx context.Context, c Command) error {
	a.mu.Lock()
	running := a.running
	a.mu.Unlock()
	if !running {
		return ErrClosed
	}
	req := cmdReq{cmd: c, done: make(chan error, 1)}
	select {
	case a.cmds <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Control returns a snapshot of the running agent's update control (see
// ControlState); ErrClosed when Run is not running.
func (a *Agent) Control(ctx context.Context) (ControlState, error) {
	var st ControlState
	err := a.Do(ctx, cmdInspect{fn: func(e *Engine) { st = e.Control() }})
	return st, err
}

// Servers returns the state of the running agent's DM server
// registrations (Engine.Servers); ErrClosed when Run is not running.
func (a *Agent) Servers(ctx context.Context) ([]ServerState, error) {
	var st []ServerState
	err := a.Do(ctx, cmdInspect{fn: func(e *Engine) { st = e.Servers() }})
	return st, err
}

// cmdInspect runs fn on the engine inside the loop; it never reaches
// HandleCommand.
type cmdInspect struct{ fn func(*Engine) }

func (cmdInspect) command() string { return "inspect" }

// deregisterTimeout bounds the de-registration Run attempts on the way out.
const deregisterTimeout = 10 * time.Second

// Run starts a session, serves the server until ctx is cancelled, then
// de-registers (waiting at most 10 s for the server's answer) and returns.
// It returns an error only when the socket cannot be opened or fails.
//
// For a coaps server Run first runs the DTLS-PSK handshake (at most
// DTLSHandshakeTimeout each). A failed handshake is reported as
// EventRegistrationFailed and retried after Config.DTLSRetryDelay,
// doubling up to a day; Run never falls back to plaintext. When the DTLS
// session is lost (the socket fails, a registration fails, or nothing was
// received for Config.NATTimeout before something must be sent, as a NAT
// binding may be gone), Run handshakes again and the engine registers
// anew, as LwM2M requires after a new DTLS session. With several servers
// (Config.Servers) Run keeps one UDP socket for the coap servers and a
// DTLS session beside it for each coaps server, each with its own
// credential, handshake, retries and NAT timeout; the engine registers
// anew with a server after a new session with it, and a failed handshake
// fails that server's Register alone. An agent runs once.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.ran {
		a.mu.Unlock()
		return errors.New("agent: Run called twice")
	}
	a.ran, a.running = true, true
	a.mu.Unlock()
	go a.runSyncs()
	defer close(a.ended) // deferred first: runs last
	defer func() {
		a.mu.Lock()
		a.running, a.port = false, nil
		a.mu.Unlock()
		a.events.Close()
	}()

	switch {
	case a.cfg.StateStore != nil:
		a.saver = newStateSaver(a.cfg.StateStore.Save, a.log)
		defer a.saver.close()
	case a.cfg.StateDir != "":
		path := filepath.Join(a.cfg.StateDir, StateFile)
		save := func(b []byte) error { return WriteFileAtomic(path, b, 0o600) }
		if f, err := openStateFile(path, 0o600); err != nil {
			// Saving tries again at every change, and logs why it fails.
			a.log.Error("open the state file", "err", err)
		} else {
			defer f.Close() // after the saver's last write
			save = f.write
		}
		a.saver = newStateSaver(save, a.log)
		defer a.saver.close()
	}
	if a.cfg.Control.OnDemand {
		return a.runOnDemand(ctx)
	}
	for {
		// The engine names the server to talk to; after a bootstrap it
		// is another one, maybe over DTLS with the provisioned PSK.
		a.target = a.engine.Target()
		var err error
		if a.target.Secure && !strings.HasPrefix(a.target.Peer, DTLSPeerPrefix) {
			// One coaps server: the port is its DTLS session. Among
			// several servers a coaps one is reached over a session
			// beside the UDP socket (withSide), like every other.
			err = a.runSecure(ctx)
		} else {
			err = a.runPlain(ctx)
		}
		if !errors.Is(err, errRetarget) {
			return err
		}
		a.log.Info("changing server", "server_uri", a.engine.Target().URI, "from", a.target.URI)
	}
}

// runPlain serves the engine over a UDP socket until ctx ends or the
// engine's target needs another port.
func (a *Agent) runPlain(ctx context.Context) error {
	udp, err := a.listenPlain()
	if err != nil {
		return err
	}
	port := a.withSide(udp)
	defer port.Close()
	a.setPort(port)
	return a.loop(ctx, port)
}

// listenPlain opens the UDP socket that reaches every coap server the
// engine talks to (the further DM servers too): it binds loopback only
// when they all are.
func (a *Agent) listenPlain() (*UDPPort, error) {
	// Servers reached over DTLS sessions of their own (DTLSPeerPrefix)
	// are not this socket's peers; their address only says which
	// interface to bind.
	var peers []string
	for _, p := range a.engine.acceptedPeers() {
		if !strings.HasPrefix(p, DTLSPeerPrefix) {
			peers = append(peers, p)
		}
	}
	udp, err := ListenUDP(listenPeer(strings.TrimPrefix(a.target.Peer, DTLSPeerPrefix), peers))
	if err != nil {
		return nil, err
	}
	// Datagrams from the bootstrap server and the further servers are
	// tagged with their peer keys even before anything was sent to them
	// (server-initiated bootstrap, a further server's first request).
	for _, p := range peers {
		_, _ = udp.resolve(p)
	}
	return udp, nil
}

// listenPeer returns the peer ListenUDP opens the socket for: target,
// unless target is on loopback and another of peers is not (a socket
// bound to loopback cannot reach it).
func listenPeer(target string, peers []string) string {
	loopback := func(peer string) bool {
		addr, err := net.ResolveUDPAddr("udp", peer)
		return err == nil && addr.IP.IsLoopback()
	}
	if !loopback(target) {
		return target
	}
	for _, p := range peers {
		if p != target && !loopback(p) {
			return p
		}
	}
	return target
}

// errRetarget ends a loop whose port cannot reach the engine's new
// target.
var errRetarget = errors.New("agent: server changed")

// retargetLinger is how long a DTLS session to the previous server stays
// open after the engine changed servers.
const retargetLinger = 2 * time.Second

// needsNewPort reports whether the port opened for the current target
// cannot carry datagrams to t: a DTLS session is bound to one server
// and credential, and a coaps server is never sent plaintext.
func (a *Agent) needsNewPort(t Target) bool {
	if !a.side && a.engine.serverSessions() {
		// A bootstrap gave a coaps server beside the others: the port
		// must open DTLS sessions beside its socket.
		return true
	}
	if t.Equal(a.target) || t.Peer == "" {
		return false
	}
	return t.Secure || a.target.Secure
}

func (a *Agent) setPort(p port) {
	a.mu.Lock()
	a.port = p
	a.mu.Unlock()
}

// errNewSession ends a loop over a DTLS session that must be replaced.
var errNewSession = errors.New("agent: dtls session lost")

// runSecure runs sessions over DTLS until ctx ends: handshake (retried
// with back-off), serve, and handshake again when the session is lost.
func (a *Agent) runSecure(ctx context.Context) error {
	delay := a.cfg.dtlsRetryDelay()
	first := true
	for {
		// Update control reports the handshake (AUTH_STARTED/FAILED)
		// while the engine has no registration the failure would end.
		idle := a.engine.reg.state == regIdle
		if idle {
			a.tellLink(LinkAuthStarted, "")
		}
		hctx, cancel := context.WithTimeout(ctx, a.cfg.handshakeTimeout())
		cred := DTLSCredentials{PSKIdentity: a.target.PSKIdentity, PSKKey: a.target.PSKKey}
		if a.target.Certificate {
			cred = a.cred // loaded from the configured files by New
		}
		sp, err := OpenSecureWith(hctx, a.target.Peer, cred)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if idle {
				a.tellLink(LinkAuthFailed, err.Error())
			}
			a.log.Warn("dtls handshake failed", "server_uri", a.target.URI, "retry_in", delay, "err", err)
			a.engine.connectFailed(time.Now(), err)
			a.forwardEvents()
			if a.needsNewPort(a.engine.Target()) {
				return errRetarget // falling back to bootstrap
			}
			if !a.wait(ctx, delay) {
				return nil
			}
			delay = min(2*delay, retryMax)
			continue
		}
		port := a.withSide(sp)
		if !first {
			// A new DTLS session: the engine registers anew, from its
			// stored state, as after a restart.
			ne, err := replaceEngine(time.Now(), a.cfg, a.state, a.engine)
			if err != nil {
				port.Close()
				return fmt.Errorf("agent: new session: %w", err)
			}
			a.engine = ne
			if t := ne.Target(); !t.Equal(a.target) {
				port.Close()
				return errRetarget
			}
		}
		first = false
		a.setPort(port)
		registered := false
		err = a.loopSession(ctx, port, &registered)
		if errors.Is(err, errRetarget) {
			// The last answers to the old server (the 2.04 to
			// Bootstrap-Finish) get time to be taken before the
			// session's close_notify.
			time.AfterFunc(retargetLinger, func() { port.Close() })
		} else {
			port.Close()
		}
		a.setPort(nil)
		if !errors.Is(err, errNewSession) {
			return err
		}
		if registered {
			delay = a.cfg.dtlsRetryDelay()
			a.log.Info("dtls session lost; handshaking again", "server_uri", a.target.URI, "why", err)
			continue
		}
		// The session never carried a registration: back off before the
		// next handshake, so a server that refuses does not get a storm.
		a.log.Warn("no registration over the dtls session", "server_uri", a.target.URI, "retry_in", delay, "why", err)
		if !a.wait(ctx, delay) {
			return nil
		}
		delay = min(2*delay, retryMax)
	}
}

// wait sleeps for d or until ctx ends (false), answering commands with
// ErrNotRegistered meanwhile.
func (a *Agent) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		case req := <-a.cmds:
			req.done <- ErrNotRegistered
		}
	}
}

// LocalAddr returns the address of the agent's UDP socket while Run is
// running, nil otherwise.
func (a *Agent) LocalAddr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.port == nil {
		return nil
	}
	return a.port.LocalAddr()
}

func (a *Agent) loop(ctx context.Context, port port) error {
	var registered bool
	return a.loopSession(ctx, port, &registered)
}

// loopSession serves the engine over port. Over DTLS it returns
// errNewSession when the session must be replaced; registered tells
// whether a registration succeeded in it.
//
// Over a bare UDP port the port's reader goroutine hands each datagram to
// the engine itself (inline), under a.emu, and the loop only wakes for
// timers, commands, syncs and what the datagram changed (kick): a block
// of a pull then costs no goroutine switch. Other ports deliver through
// their Recv channel to the loop. HTTP fetches deliver inline on their
// own goroutines the same way, whatever the port.
func (a *Agent) loopSession(ctx context.Context, port port, registered *bool) error {
	kick := make(chan struct{}, 1)
	a.fetch.setInline(func(fctx context.Context, m fetchMsg) error {
		var err error
		a.inlineStep(ctx, port, kick, func(e *Engine, now time.Time) bool {
			// A fetch cancelled while it waited for a.emu (an engine
			// restart) must not reach the engine.
			if err = fctx.Err(); err == nil {
				err = e.deliverFetch(now, m)
			}
			return false
		})
		return err
	})
	defer a.fetch.setInline(nil)
	defer a.fetch.stop()
	secure := isSecure(port)
	lastRecv := time.Now()
	a.emu.Lock()
	a.inline = inlineState{}
	// A new engine may have started its session by itself (update
	// control resuming after a restart): ErrDuplicate is fine. On demand
	// the engine opened the link for a session of its own.
	var err error
	if !a.cfg.Control.OnDemand {
		err = a.engine.HandleCommand(time.Now(), CmdStart{})
	}
	a.emu.Unlock()
	if err != nil && !errors.Is(err, ErrDuplicate) {
		return err
	}
	if udp, ok := port.(*UDPPort); ok {
		udp.setHandler(func(d Datagram) { a.receiveInline(ctx, port, d, kick) })
		defer udp.setHandler(nil) // waits for a delivery in progress
	}
	// The outcomes of the handshakes of DTLS sessions beside the port
	// (several coaps servers, coaps pulls).
	var sessions <-chan sessionReport
	if sp, ok := port.(*sidePort); ok {
		sessions = sp.status
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var stopping bool
	var stopDeadline <-chan time.Time
	done := ctx.Done()
	for {
		a.emu.Lock()
		e := a.engine
		next := e.Step(time.Now())
		if secure && !stopping {
			if nat := a.cfg.natTimeout(); nat > 0 && time.Since(lastRecv) > nat && e.pendingTransmit() {
				// Quiet for longer than a NAT keeps a binding: the
				// session may be unreachable; start a new one.
				a.emu.Unlock()
				return fmt.Errorf("%w: nothing received for %v", errNewSession, time.Since(lastRecv).Round(time.Second))
			}
		}
		restart, failed, ok := a.flush(ctx, port)
		in := a.inline
		a.inline = inlineState{}
		restart, failed, ok = restart || in.restart, failed || in.failed, ok || in.registered
		if ok {
			*registered = true
		}
		if !stopping && a.needsNewPort(e.Target()) {
			a.emu.Unlock()
			return errRetarget
		}
		if secure && failed && !stopping {
			a.emu.Unlock()
			return fmt.Errorf("%w: registration failed", errNewSession)
		}
		if restart {
			// A firmware install asked for a restart: a new engine from
			// the stored state, as after a reboot (the session is not
			// de-registered; the new engine registers again).
			a.log.Info("restarting the engine")
			// Cancel only: a fetch may be waiting for a.emu to deliver,
			// and finds itself cancelled once it has it.
			a.fetch.cancel()
			ne, err := replaceEngine(time.Now(), a.cfg, a.state, e)
			if err != nil {
				a.emu.Unlock()
				return fmt.Errorf("agent: restart: %w", err)
			}
			a.engine = ne
			if a.cfg.Control.OnDemand {
				a.emu.Unlock()
				continue // the new engine connects by itself if it must
			}
			err = ne.HandleCommand(time.Now(), CmdStart{})
			a.emu.Unlock()
			if err != nil && !errors.Is(err, ErrDuplicate) {
				return err
			}
			continue
		}
		if stopping && !e.busy() {
			a.emu.Unlock()
			return nil
		}
		if a.cfg.Control.OnDemand && !stopping && !e.NeedsLink() {
			a.emu.Unlock()
			return errLinkIdle
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		a.inline.armed = time.Now().Add(wait)
		a.emu.Unlock()
		timer.Reset(wait)
		select {
		case d, ok := <-port.Recv():
			if !ok {
				if secure && !stopping {
					return fmt.Errorf("%w: %v", errNewSession, port.Err())
				}
				return fmt.Errorf("agent: receive: %w", port.Err())
			}
			lastRecv = time.Now()
			a.emu.Lock()
			e.HandleDatagram(time.Now(), d.Peer, d.Data)
			a.emu.Unlock()
		case <-kick:
		case r := <-sessions:
			a.emu.Lock()
			switch {
			case r.lost:
				if t, ok := e.serverCredential(r.peer); ok {
					a.log.Info("dtls session lost", "server_uri", t.URI, "why", r.err)
				}
				e.sessionLost(time.Now(), r.peer)
			case r.err != nil:
				if t, ok := e.serverCredential(r.peer); ok {
					a.log.Warn("dtls handshake failed", "server_uri", t.URI, "err", r.err)
				}
				e.sessionFailed(time.Now(), r.peer, r.err)
			default:
				e.sessionUp(time.Now(), r.peer)
			}
			a.emu.Unlock()
		case req := <-a.cmds:
			a.emu.Lock()
			if in, ok := req.cmd.(cmdInspect); ok {
				in.fn(e)
				req.done <- nil
			} else {
				req.done <- e.HandleCommand(time.Now(), req.cmd)
			}
			a.emu.Unlock()
		case m := <-a.fetch.msgs:
			a.emu.Lock()
			m.done <- e.deliverFetch(time.Now(), m)
			a.emu.Unlock()
		case r := <-a.synced:
			a.emu.Lock()
			if r.engine == e {
				e.syncDone(time.Now(), r.id, r.err)
			}
			a.emu.Unlock()
		case <-timer.C:
		case <-done:
			done = nil
			stopping = true
			stopDeadline = time.After(deregisterTimeout)
			a.emu.Lock()
			err := e.HandleCommand(time.Now(), CmdStop{})
			a.emu.Unlock()
			if err != nil && !errors.Is(err, ErrDuplicate) {
				return err
			}
		case <-stopDeadline:
			a.log.Warn("de-registration timed out", "server_uri", a.target.URI)
			return nil
		}
	}
}

// inlineState is what datagrams handled on the port's reader goroutine
// (receiveInline) leave for the loop, guarded by Agent.emu.
type inlineState struct {
	armed                       time.Time // when the loop's timer fires
	restart, failed, registered bool      // from flush, as loopSession takes them
}

// receiveInline hands a datagram to the engine on the port's reader
// goroutine (inlineStep). d.Data is only borrowed: the engine copies what
// it keeps. A datagram from the server wakes the loop (it may end a
// de-registration).
func (a *Agent) receiveInline(ctx context.Context, port port, d Datagram, kick chan struct{}) {
	a.inlineStep(ctx, port, kick, func(e *Engine, now time.Time) bool {
		e.HandleDatagram(now, d.Peer, d.Data)
		return e.isDMPeer(d.Peer)
	})
}

// inlineStep runs feed on the engine under a.emu from a goroutine other
// than the loop's, steps the engine and flushes what it produced, then
// wakes the loop when the loop must act: a restart, a failed or new
// registration, a new target, a timer earlier than the one the loop
// sleeps on, or feed's own reason (its result).
func (a *Agent) inlineStep(ctx context.Context, port port, kick chan struct{}, feed func(*Engine, time.Time) bool) {
	a.emu.Lock()
	e := a.engine
	now := time.Now()
	wake := feed(e, now)
	next := e.Step(now)
	restart, failed, ok := a.flush(ctx, port)
	in := &a.inline
	in.restart, in.failed, in.registered = in.restart || restart, in.failed || failed, in.registered || ok
	wake = wake || restart || failed || ok || (!next.IsZero() && next.Before(in.armed)) ||
		a.needsNewPort(e.Target())
	a.emu.Unlock()
	if wake {
		select {
		case kick <- struct{}{}:
		default: // a wake is already pending
		}
	}
}

// flush sends queued datagrams, starts fetches, saves state and forwards
// events. It reports whether the engine asked for a restart, whether a
// registration failed and whether one succeeded.
func (a *Agent) flush(ctx context.Context, port port) (restart, failed, registered bool) {
	e := a.engine
	for {
		f, ok := e.PollFetch()
		if !ok {
			break
		}
		a.fetch.run(ctx, f)
	}
	// Datagrams for a new target wait for its port; those held from the
	// previous port go first.
	next := e.Target()
	retarget := a.needsNewPort(next)
	held := append(a.held[:0], a.carry...)
	a.carry = nil
	for {
		j, ok := e.pollSync()
		if !ok {
			break
		}
		select {
		case a.syncs <- syncReq{engine: e, job: j}:
		case <-a.ended:
		}
	}
	for {
		d, ok := e.PollTransmit()
		if !ok {
			break
		}
		held = append(held, d)
	}
	for _, d := range held {
		// The new port also carries what goes over DTLS sessions beside
		// it (the old one may have none).
		if retarget && (d.Peer == next.Peer || strings.HasPrefix(d.Peer, DTLSPeerPrefix)) {
			// A copy: the engine reuses a request's bytes once its
			// exchange is done, which may happen before the new port.
			a.carry = append(a.carry, Datagram{Peer: d.Peer, Data: bytes.Clone(d.Data)})
			continue
		}
		if err := port.Send(d.Peer, d.Data); err != nil {
			a.log.Warn("send", "err", err)
		}
	}
	clear(held)
	a.held = held[:0]
	return a.flushEvents()
}

// flushEvents saves state and forwards events (see flush).
func (a *Agent) flushEvents() (restart, failed, registered bool) {
	e := a.engine
	evs := a.evs[:0]
	for {
		ev, ok := e.PollEvent()
		if !ok {
			break
		}
		if ev.Kind == EventStore {
			a.stored(ev.Data)
			continue
		}
		switch {
		case ev.Kind == EventRestart:
			restart = true
		case ev.Further:
			// A further server's registration is not the session's.
		case ev.Kind == EventRegistrationFailed, ev.Kind == EventBootstrapFailed:
			failed = true
		case ev.Kind == EventRegistered:
			registered = true
		}
		evs = append(evs, ev)
	}
	a.events.Push(evs...) // copies them
	clear(evs)
	a.evs = evs[:0]
	return restart, failed, registered
}

// stored takes the engine's new state: a copy for restarts, and one for
// the saver. The engine writes its next state over b (Config.reuseState),
// and the Agent saves the state itself, so EventStore is not forwarded.
func (a *Agent) stored(b []byte) {
	a.state = append(a.state[:0], b...)
	if a.saver != nil {
		a.saver.save(b)
	}
}

// forwardEvents saves and forwards the engine's events outside the loop
// (nothing is sent).
func (a *Agent) forwardEvents() {
	for {
		ev, ok := a.engine.PollEvent()
		if !ok {
			return
		}
		if ev.Kind == EventStore {
			a.stored(ev.Data)
			continue
		}
		a.events.Push(ev)
	}
}

// systemMemory returns available and total memory in KiB from
// /proc/meminfo, or zeros where that file does not exist.
func systemMemory() (free, total int64) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var n int64
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &n); err == nil {
			free = n
		} else if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &n); err == nil {
			total = n
		}
	}
	return free, total
}

// stateSaver writes the engine's state off the protocol loop: the loop
// hands it the latest state and goes on; a goroutine writes it atomically
// (a stateFile, or the StateStore), skipping states superseded meanwhile.
// It copies each state into one of two buffers it keeps, so saving
// allocates nothing.
// The engine syncs firmware storage before it emits a state that counts
// on it, so a late write never claims bytes that are not durable; it only
// means a crash may restart from an older (still consistent) state.
type stateSaver struct {
	saveFn func([]byte) error
	log    *slog.Logger
	mu     sync.Mutex
	next   []byte // the state to write
	has    bool   // next is not written yet
	cur    []byte // the state being written (the writer's)
	kick   chan struct{}
	done   chan struct{}
}

func newStateSaver(save func([]byte) error, log *slog.Logger) *stateSaver {
	s := &stateSaver{saveFn: save, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

// save copies b for the writer.
func (s *stateSaver) save(b []byte) {
	s.mu.Lock()
	s.next, s.has = append(s.next[:0], b...), true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *stateSaver) run() {
	defer close(s.done)
	for range s.kick {
		s.write()
	}
}

func (s *stateSaver) write() {
	s.mu.Lock()
	if !s.has {
		s.mu.Unlock()
		return
	}
	s.cur, s.next, s.has = s.next, s.cur[:0], false
	b := s.cur
	s.mu.Unlock()
	if err := s.saveFn(b); err != nil {
		s.log.Error("save state", "err", err)
	}
}

// close writes the last state and stops the goroutine.
func (s *stateSaver) close() {
	close(s.kick)
	<-s.done
	s.write()
}
