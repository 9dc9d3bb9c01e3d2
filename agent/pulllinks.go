package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"time"
)

// CarryPullDTLS declares that the driver carries the DTLS sessions of
// coaps:// Package URIs itself, with [PullLinks], so that the engine
// pulls over coaps (with a firmware credential: Config.FirmwarePSKIdentity
// and FirmwarePSKKey, else the server's PSK) and /5/0/8 lists it. The
// engine addresses such datagrams to DTLSPeerPrefix+"host:port".
func (c *Config) CarryPullDTLS() { c.dtlsPull = true }

// maxPullQueue bounds the datagrams a PullLinks holds for a peer while
// its handshake runs; they go out, encrypted, once it is up.
const maxPullQueue = 4

// PullLinks is the native driver's side sessions (coaps:// Package URIs)
// for drivers that carry the datagrams themselves and run on a clock they
// are given, such as the wasm module: one DTLS-PSK session ([DTLSLink])
// per DTLSPeerPrefix peer, opened on the first datagram the engine sends
// to it, with the credential the engine names for it (Engine.PullPSK).
// Datagrams sent while the handshake runs wait for it (at most
// maxPullQueue); a handshake that fails or outlasts
// Config.DTLSHandshakeTimeout drops them, and the next datagram opens a
// new one; a session whose credential is no longer the one asked for is
// replaced. Nothing for such a peer ever goes out in plaintext.
//
// It starts no timer and holds no engine: the driver routes the engine's
// datagrams for those peers to Send, ciphertext received from their
// addresses to Input, and moves what PollOutput and PollPlaintext return
// after letting the links' goroutines run (Update). Methods must not be
// called concurrently.
type PullLinks struct {
	timeout time.Duration
	log     *slog.Logger
	links   []*pullLink // in the order opened
	closing []*DTLSLink // replaced or closed, until their close_notify is out
}

// pullLink is the session with one peer.
type pullLink struct {
	peer, addr string // DTLSPeerPrefix+addr, "host:port"
	link       *DTLSLink
	cred       pskCred
	deadline   time.Time // of the handshake; zero once up
	queue      [][]byte  // plaintext waiting for the handshake
}

// NewPullLinks returns the side sessions of an engine made with cfg.
func NewPullLinks(cfg Config) *PullLinks {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PullLinks{timeout: cfg.handshakeTimeout(), log: log}
}

func (p *PullLinks) find(peer string) (int, *pullLink) {
	for i, l := range p.links {
		if l.peer == peer {
			return i, l
		}
	}
	return -1, nil
}

// remove ends the session at index i; an established one sends its
// close_notify first.
func (p *PullLinks) remove(i int) {
	l := p.links[i]
	l.link.Close()
	if l.link.Established() {
		p.closing = append(p.closing, l.link)
	}
	p.links = append(p.links[:i], p.links[i+1:]...)
}

// Send takes one datagram the engine e addressed to peer. It reports
// false, leaving the datagram to the driver, when peer is not a
// DTLSPeerPrefix peer. Without a credential for peer the datagram is
// dropped.
func (p *PullLinks) Send(now time.Time, e *Engine, peer string, b []byte) bool {
	addr, ok := strings.CutPrefix(peer, DTLSPeerPrefix)
	if !ok {
		return false
	}
	c := e.pullPSK(peer)
	if c == nil {
		p.log.Debug("no credential for the coaps peer; dropped", "peer", addr)
		return true
	}
	i, l := p.find(peer)
	if l != nil && (l.cred.identity != c.identity || !bytes.Equal(l.cred.key, c.key)) {
		p.remove(i) // another credential for this peer now: a new session
		l = nil
	}
	if l == nil {
		link, err := NewDTLSLink(addr, c.identity, c.key)
		if err != nil {
			p.log.Warn("coaps pull", "peer", addr, "err", err)
			return true
		}
		l = &pullLink{peer: peer, addr: addr, link: link, cred: *c, deadline: now.Add(p.timeout)}
		p.links = append(p.links, l)
	}
	if !l.deadline.IsZero() {
		if len(l.queue) >= maxPullQueue {
			l.queue = l.queue[1:]
		}
		l.queue = append(l.queue, append([]byte(nil), b...))
		return true
	}
	if err := l.link.Write(b); err != nil {
		p.log.Debug("coaps pull send", "peer", addr, "err", err) // like a lost datagram
	}
	return true
}

// Input takes one datagram received from addr ("host:port"); it reports
// false when no session is with addr.
func (p *PullLinks) Input(addr string, b []byte) bool {
	_, l := p.find(DTLSPeerPrefix + addr)
	if l == nil {
		return false
	}
	l.link.Input(b)
	return true
}

// Update advances the sessions to now, after the driver has let the
// links' goroutines run: a handshake that succeeded sends what waited
// for it; one that failed or timed out ends, as does a session that
// failed.
func (p *PullLinks) Update(now time.Time) {
	for i := 0; i < len(p.links); i++ {
		l := p.links[i]
		up, err := l.link.State()
		switch {
		case err != nil:
			p.log.Warn("coaps pull session ended", "peer", l.addr, "err", err)
		case up && !l.deadline.IsZero():
			l.deadline = time.Time{}
			for _, b := range l.queue {
				if err := l.link.Write(b); err != nil {
					p.log.Debug("coaps pull send", "peer", l.addr, "err", err)
				}
			}
			l.queue = nil
			continue
		case !up && !now.Before(l.deadline):
			p.log.Warn("coaps pull handshake: no answer", "peer", l.addr, "within", p.timeout)
		default:
			continue
		}
		p.remove(i)
		i--
	}
}

// PollOutput returns the next datagram to send and the address ("host:port")
// it goes to, if any.
func (p *PullLinks) PollOutput() (addr string, b []byte, ok bool) {
	for len(p.closing) > 0 {
		l := p.closing[0]
		if b, ok := l.PollOutput(); ok {
			return string(l.pc.peer.(peerAddr)), b, true
		}
		if !l.Finished() {
			break // its close_notify is not out yet
		}
		p.closing[0] = nil
		p.closing = p.closing[1:]
	}
	for _, l := range p.links {
		if b, ok := l.link.PollOutput(); ok {
			return l.addr, b, true
		}
	}
	return "", nil, false
}

// PollPlaintext returns the next datagram decrypted from a peer, tagged
// with its DTLSPeerPrefix peer key, for the engine.
func (p *PullLinks) PollPlaintext() (Datagram, bool) {
	for _, l := range p.links {
		if b, ok := l.link.PollPlaintext(); ok {
			return Datagram{Peer: l.peer, Data: b}, true
		}
	}
	return Datagram{}, false
}

// Next returns when Update must run next: soon while a handshake runs
// (pion's retransmissions), the zero time otherwise.
func (p *PullLinks) Next(now time.Time) time.Time {
	var t time.Time
	for _, l := range p.links {
		if !l.deadline.IsZero() {
			t = earliest(t, earliest(l.deadline, now.Add(linkPollInterval)))
		}
	}
	return t
}

// Active reports whether any session is open or still has a close_notify
// to send; a driver need not let the links run (pump) otherwise.
func (p *PullLinks) Active() bool { return len(p.links) > 0 || len(p.closing) > 0 }

// Close ends every session (close_notify for the established ones goes
// to PollOutput).
func (p *PullLinks) Close() {
	for len(p.links) > 0 {
		p.remove(len(p.links) - 1)
	}
}
