package agent

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"
)

// sidePort carries the datagrams the engine addresses to peers named with
// DTLSPeerPrefix (coaps:// Package URIs) over DTLS-PSK sessions of their
// own, beside the main port that talks to the LwM2M server. A session is
// opened on the first datagram for its peer, in the background: that
// datagram is dropped, and CoAP's retransmission finds the session up. A
// handshake that fails is tried again on a later datagram. Nothing for
// such a peer ever goes out in plaintext.
type sidePort struct {
	main    port
	cred    *pskCred
	timeout time.Duration
	rx      chan Datagram
	quit    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*SecurePort // by peer key
	opening  map[string]bool
	closed   bool
}

func newSidePort(main port, cred *pskCred, timeout time.Duration) *sidePort {
	p := &sidePort{main: main, cred: cred, timeout: timeout, rx: make(chan Datagram, 16), quit: make(chan struct{}),
		sessions: make(map[string]*SecurePort), opening: make(map[string]bool)}
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
	p.mu.Lock()
	s, ok := p.sessions[peer]
	if !ok && !p.opening[peer] && !p.closed {
		p.opening[peer] = true
		p.wg.Add(1)
		go p.open(peer, addr)
	}
	p.mu.Unlock()
	if !ok {
		return nil // dropped while the handshake runs; CoAP retransmits
	}
	return s.Send(addr, b)
}

// open runs the handshake with addr and then forwards the session's
// datagrams under peer until it ends.
func (p *sidePort) open(peer, addr string) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	go func() {
		select {
		case <-p.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	s, err := OpenSecure(ctx, addr, p.cred.identity, p.cred.key)
	cancel()
	p.mu.Lock()
	delete(p.opening, peer)
	if err != nil || p.closed {
		p.mu.Unlock()
		if s != nil {
			s.Close()
		}
		return
	}
	p.sessions[peer] = s
	p.mu.Unlock()
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
	if c := a.cfg.fwPSK(); c != nil {
		return newSidePort(pt, c, a.cfg.handshakeTimeout())
	}
	return pt
}
