package agent

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"time"
)

// sidePort carries the datagrams the engine addresses to peers named with
// DTLSPeerPrefix (coaps:// Package URIs) over DTLS-PSK sessions of their
// own, beside the main port that talks to the LwM2M server. A session is
// opened on the first datagram for its peer, in the background, with the
// credential the engine names for that peer (Engine.PullPSK: the
// handler's FirmwareSecurityProvider or the configuration): the
// datagrams sent while the handshake runs (at most maxPullQueue) go out
// once it is up, and are dropped when it fails. A handshake that fails is
// tried again on a later datagram; a session whose
// credential is no longer the one asked for is replaced. Nothing for such
// a peer ever goes out in plaintext.
type sidePort struct {
	main port
	// cred returns the credential for a peer; nil drops its datagrams. It
	// is called from Send, on the goroutine that drives the engine.
	cred    func(peer string) *pskCred
	timeout time.Duration
	rx      chan Datagram
	quit    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*SecurePort // by peer key
	creds    map[string]*pskCred    // the credential of each session or handshake
	opening  map[string]bool
	queued   map[string][][]byte // sent while the handshake runs
	closed   bool
}

func newSidePort(main port, cred func(peer string) *pskCred, timeout time.Duration) *sidePort {
	p := &sidePort{main: main, cred: cred, timeout: timeout, rx: make(chan Datagram, 16), quit: make(chan struct{}),
		sessions: make(map[string]*SecurePort), creds: make(map[string]*pskCred), opening: make(map[string]bool),
		queued: make(map[string][][]byte)}
	go func() {
		defer close(p.rx)
		for d := range main.Recv() {
			select {
			case p.rx <- d:
			case <-p.quit:
				return
			}
		}
	}()
	return p
}

func (p *sidePort) Recv() <-chan Datagram { return p.rx }
func (p *sidePort) Err() error            { return p.main.Err() }
func (p *sidePort) LocalAddr() net.Addr   { return p.main.LocalAddr() }
func (p *sidePort) secure() bool          { return isSecure(p.main) }

// Send sends b to peer: over its own DTLS session for a DTLSPeerPrefix
// peer, through the main port otherwise.
func (p *sidePort) Send(peer string, b []byte) error {
	addr, side := strings.CutPrefix(peer, DTLSPeerPrefix)
	if !side {
		return p.main.Send(peer, b)
	}
	c := p.cred(peer)
	if c == nil {
		return nil // no credential: never plaintext
	}
	p.mu.Lock()
	s, ok := p.sessions[peer]
	if ok && !sameCred(p.creds[peer], c) {
		// Another credential for this peer now: a new session.
		delete(p.sessions, peer)
		s.Close()
		s, ok = nil, false
	}
	if !ok && !p.opening[peer] && !p.closed {
		p.opening[peer] = true
		p.creds[peer] = c
		p.wg.Add(1)
		go p.open(peer, addr, c)
	}
	if !ok {
		if q := p.queued[peer]; len(q) >= maxPullQueue {
			p.queued[peer] = q[1:]
		}
		if p.opening[peer] {
			p.queued[peer] = append(p.queued[peer], append([]byte(nil), b...))
		}
		p.mu.Unlock()
		return nil // sent once the handshake is done
	}
	p.mu.Unlock()
	return s.Send(addr, b)
}

// open runs the handshake with addr and then forwards the session's
// datagrams under peer until it ends.
func (p *sidePort) open(peer, addr string, c *pskCred) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	go func() {
		select {
		case <-p.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	s, err := OpenSecure(ctx, addr, c.identity, c.key)
	cancel()
	p.mu.Lock()
	delete(p.opening, peer)
	queued := p.queued[peer]
	delete(p.queued, peer)
	if err != nil || p.closed {
		p.mu.Unlock()
		if s != nil {
			s.Close()
		}
		return
	}
	p.sessions[peer] = s
	p.mu.Unlock()
	for _, b := range queued {
		_ = s.Send(addr, b) // like a lost datagram when it fails
	}
	for d := range s.Recv() {
		select {
		case p.rx <- Datagram{Peer: peer, Data: d.Data}:
		case <-p.quit:
			return
		}
	}
	p.mu.Lock()
	if p.sessions[peer] == s {
		delete(p.sessions, peer)
	}
	p.mu.Unlock()
	s.Close()
}

// Close ends every side session and the main port.
func (p *sidePort) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.quit)
	for _, s := range p.sessions {
		s.Close()
	}
	p.mu.Unlock()
	err := p.main.Close()
	p.wg.Wait()
	return err
}

// isSecure reports whether datagrams to the LwM2M server go over DTLS.
func isSecure(pt port) bool {
	switch pt := pt.(type) {
	case *SecurePort:
		return true
	case *sidePort:
		return pt.secure()
	}
	return false
}

// withSide wraps pt in a sidePort when coaps Package URIs are possible.
func (a *Agent) withSide(pt port) port {
	if a.cfg.fwPSK() != nil || a.cfg.securityHooks() {
		// Send runs on the loop's goroutine, which owns a.engine (also
		// after a restart replaced it).
		return newSidePort(pt, func(peer string) *pskCred { return a.engine.pullPSK(peer) }, a.cfg.handshakeTimeout())
	}
	return pt
}

// sameCred reports whether a and b are the same credential.
func sameCred(a, b *pskCred) bool {
	return a != nil && b != nil && a.identity == b.identity && bytes.Equal(a.key, b.key)
}
