package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// CarryDTLS declares that the driver carries the DTLS session to a
// coaps:// LwM2M server itself, with a [SecureSession], so that NewEngine
// accepts such a server. The engine still sees plaintext CoAP. coaps
// Package URIs need DTLS sessions of their own to other hosts: a driver
// that carries those too declares it with CarryPullDTLS.
func (c *Config) CarryDTLS() {
	c.dtls = true
	c.dtlsServerOnly = true
}

// PendingTransmit reports whether the engine has datagrams waiting for
// PollTransmit; a driver checks it against the NAT timeout
// (SecureSession.CheckNAT) after Step.
func (e *Engine) PendingTransmit() bool { return e.pendingTransmit() }

// linkPollInterval is how often a driver polls a DTLSLink that is
// handshaking (Next): pion's retransmission timers (1 s and up) fire
// only when the driver runs, and this keeps their lateness small.
const linkPollInterval = 50 * time.Millisecond

// SessionChangeKind says what a SecureSession's Update saw happen.
type SessionChangeKind int

// The changes of a SecureSession.
const (
	// SessionUp: a handshake succeeded. The driver starts the engine's
	// session; when Renewed, it first replaces the engine by one made
	// from the stored state, because LwM2M requires a new registration
	// after a new DTLS session.
	SessionUp SessionChangeKind = iota + 1
	// SessionFailed: a handshake failed or timed out; Event (an
	// EventRegistrationFailed) is for the host, and a new handshake
	// follows after the retry delay.
	SessionFailed
	// SessionLost: an established session ended (Err says why); a new
	// handshake follows, at once when the session carried a
	// registration, after the retry delay otherwise.
	SessionLost
)

// SessionChange is one change reported by SecureSession.Update.
type SessionChange struct {
	Kind    SessionChangeKind
	Renewed bool  // SessionUp: not the first session
	Err     error // SessionFailed, SessionLost
	Event   Event // SessionFailed: the event for the host
}

// sessionPhase is where a SecureSession is.
type sessionPhase int

const (
	phaseIdle        sessionPhase = iota // not opened, or closed
	phaseHandshaking                     // a DTLSLink handshakes
	phaseUp                              // the DTLSLink carries the session
	phaseWaiting                         // until retryAt, then a handshake
)

// SecureSession is the DTLS session policy of the native driver (Agent.Run
// over coaps) for drivers that carry the datagrams themselves and run on a
// clock they are given, such as the wasm module: a DTLS handshake (PSK
// or certificate) bounded by Config.DTLSHandshakeTimeout; a failed one reported as
// EventRegistrationFailed and retried after Config.DTLSRetryDelay, doubling
// up to a day; never any plaintext; a new session when the established one
// ends, when a registration over it fails, or when nothing came from the
// server for Config.NATTimeout before the engine must send; and a new
// registration after every new session.
//
// It holds no engine and starts no timer: the driver feeds it datagrams
// from the server (Input), the engine's datagrams for the server (Send),
// the engine's events (Observe) and the time (Update, CheckNAT, Next),
// and moves what PollOutput and PollPlaintext return. Methods must not be
// called concurrently.
type SecureSession struct {
	cfg        Config
	cred       DTLSCredentials
	peer       string
	log        *slog.Logger
	link       *DTLSLink
	closing    []*DTLSLink // replaced links, until their close_notify is out
	phase      sessionPhase
	sessions   int // sessions that came up
	registered bool
	delay      time.Duration
	deadline   time.Time // of the handshake, or when to retry
	lastRecv   time.Time
	changes    []SessionChange
}

// NewSecureSession returns the session policy for cfg, whose ServerURI
// must be a coaps:// URI with PSKIdentity and PSKKey, or a certificate
// (CertPEM, KeyPEM and CAPEM, or the files; it wins over a PSK). It starts
// nothing.
func NewSecureSession(cfg Config) (*SecureSession, error) {
	srv, err := parseServerURI(cfg.ServerURI)
	if err != nil {
		return nil, err
	}
	if srv.scheme != "coaps" {
		return nil, fmt.Errorf("%w: %s=%q: not a coaps URI", ErrConfig, EnvServerURI, cfg.ServerURI)
	}
	if err := cfg.validateDTLS(); err != nil {
		return nil, err
	}
	// Loaded once, as by New: the credential does not change while the
	// session policy runs.
	cred, err := cfg.dtlsCredentials()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SecureSession{cfg: cfg, cred: cred, peer: srv.peer, log: log, delay: cfg.dtlsRetryDelay()}, nil
}

// Peer returns the server's peer key, where the ciphertext goes.
func (s *SecureSession) Peer() string { return s.peer }

// Active reports whether the session was opened and not closed since.
func (s *SecureSession) Active() bool { return s.phase != phaseIdle }

// Up reports whether a session is established.
func (s *SecureSession) Up() bool { return s.phase == phaseUp }

// Open starts the first handshake at now. It returns ErrDuplicate when
// the session is already active.
func (s *SecureSession) Open(now time.Time) error {
	if s.Active() {
		return ErrDuplicate
	}
	s.delay = s.cfg.dtlsRetryDelay()
	s.handshake(now)
	return nil
}

// Close ends the session (a close_notify goes to PollOutput when it was
// established) and every retry.
func (s *SecureSession) Close() {
	if s.link != nil {
		s.link.Close()
	}
	s.phase = phaseIdle
	s.deadline = time.Time{}
}

// handshake starts a new DTLSLink. The old one is closed first and its
// close_notify goes out before the new ClientHello: a server that still
// holds the old session from the same address and port would otherwise
// take the ClientHello for a replay in that session and never answer.
func (s *SecureSession) handshake(now time.Time) {
	if s.link != nil {
		s.link.Close()
		if s.link.Established() { // only a session has a close_notify
			s.closing = append(s.closing, s.link)
		}
	}
	l, err := NewDTLSLinkWith(s.peer, s.cred)
	if err != nil {
		// Only a bad credential fails here, which NewSecureSession
		// refused; treat it as a failed handshake all the same.
		s.link = nil
		s.failed(now, err)
		return
	}
	s.link = l
	s.phase = phaseHandshaking
	s.deadline = now.Add(s.cfg.handshakeTimeout())
}

// failed reports a failed handshake and waits before the next.
func (s *SecureSession) failed(now time.Time, err error) {
	if s.link != nil {
		s.link.Close()
	}
	s.log.Warn("dtls handshake failed", "server_uri", s.cfg.ServerURI, "retry_in", s.delay, "err", err)
	s.changes = append(s.changes, SessionChange{Kind: SessionFailed, Err: err,
		Event: Event{Kind: EventRegistrationFailed, Server: s.cfg.ServerURI, Err: err.Error()}})
	s.wait(now)
}

// wait retries after the current delay, which then doubles.
func (s *SecureSession) wait(now time.Time) {
	s.phase = phaseWaiting
	s.deadline = now.Add(s.delay)
	s.delay = min(2*s.delay, retryMax)
}

// lose ends an established session and goes for the next.
func (s *SecureSession) lose(now time.Time, why error) {
	s.link.Close()
	s.changes = append(s.changes, SessionChange{Kind: SessionLost, Err: why})
	if s.registered {
		s.log.Info("dtls session lost; handshaking again", "server_uri", s.cfg.ServerURI, "why", why)
		s.delay = s.cfg.dtlsRetryDelay()
		s.handshake(now)
		return
	}
	// The session never carried a registration: back off before the
	// next handshake, so a server that refuses does not get a storm.
	s.log.Warn("no registration over the dtls session", "server_uri", s.cfg.ServerURI, "retry_in", s.delay, "why", why)
	s.wait(now)
}

// Update advances the session to now, after the driver has let the
// link's goroutines run, and returns what changed since the last call.
func (s *SecureSession) Update(now time.Time) []SessionChange {
	switch s.phase {
	case phaseHandshaking:
		up, err := s.link.State()
		switch {
		case err != nil:
			s.failed(now, err)
		case up:
			s.phase = phaseUp
			s.deadline = time.Time{}
			s.lastRecv = now
			s.registered = false
			s.changes = append(s.changes, SessionChange{Kind: SessionUp, Renewed: s.sessions > 0})
			s.sessions++
		case !now.Before(s.deadline):
			s.failed(now, fmt.Errorf("agent: dtls handshake with %s: no answer within %v", s.peer, s.cfg.handshakeTimeout()))
		}
	case phaseUp:
		if _, err := s.link.State(); err != nil {
			s.lose(now, err)
		}
	case phaseWaiting:
		if !now.Before(s.deadline) {
			s.handshake(now)
		}
	}
	ch := s.changes
	s.changes = nil
	return ch
}

// Observe takes one event of the engine: a registration marks the session
// as carrying one; a failed registration ends the session.
func (s *SecureSession) Observe(now time.Time, ev Event) {
	if s.phase != phaseUp {
		return
	}
	switch ev.Kind {
	case EventRegistered:
		s.registered = true
	case EventRegistrationFailed:
		s.lose(now, errors.New("agent: registration failed"))
	}
}

// CheckNAT ends the session when nothing came from the server for longer
// than the NAT timeout and the engine has something to send (pending,
// Engine.PendingTransmit after Step), as a NAT binding may be gone. It
// reports whether it did; the engine's pending datagrams are then
// dropped (Send fails).
func (s *SecureSession) CheckNAT(now time.Time, pending bool) bool {
	nat := s.cfg.natTimeout()
	if s.phase != phaseUp || nat <= 0 || !pending || now.Sub(s.lastRecv) <= nat {
		return false
	}
	s.lose(now, fmt.Errorf("%w: nothing received for %v", errNewSession, now.Sub(s.lastRecv).Round(time.Second)))
	return true
}

// Input takes one datagram received from the server.
func (s *SecureSession) Input(now time.Time, b []byte) {
	if s.link == nil || s.phase == phaseIdle || s.phase == phaseWaiting {
		return
	}
	s.lastRecv = now
	s.link.Input(b)
}

// Send encrypts one datagram of the engine for the server. Without an
// established session it fails and the datagram is dropped (CoAP
// retransmits): nothing is ever sent in plaintext.
func (s *SecureSession) Send(b []byte) error {
	if s.phase != phaseUp {
		return fmt.Errorf("agent: dtls: no session with %s", s.peer)
	}
	return s.link.Write(b)
}

// PollOutput returns the next datagram to send to the server, if any.
func (s *SecureSession) PollOutput() ([]byte, bool) {
	for len(s.closing) > 0 {
		if b, ok := s.closing[0].PollOutput(); ok {
			return b, true
		}
		if !s.closing[0].Finished() {
			// Its close_notify is not out yet: nothing of the new
			// link may overtake it.
			return nil, false
		}
		s.closing[0] = nil
		s.closing = s.closing[1:]
	}
	if s.link == nil {
		return nil, false
	}
	return s.link.PollOutput()
}

// PollPlaintext returns the next datagram decrypted from the server, if
// any; it is for the engine, from Peer.
func (s *SecureSession) PollPlaintext() ([]byte, bool) {
	if s.link == nil || s.phase != phaseUp {
		return nil, false
	}
	return s.link.PollPlaintext()
}

// Next returns when Update must run next: soon while a handshake runs
// (pion's retransmissions), the retry time while waiting, the zero time
// otherwise.
func (s *SecureSession) Next(now time.Time) time.Time {
	switch s.phase {
	case phaseHandshaking:
		return earliest(s.deadline, now.Add(linkPollInterval))
	case phaseWaiting:
		return s.deadline
	}
	return time.Time{}
}

// earliest returns the earlier of two times, the zero time meaning never.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
