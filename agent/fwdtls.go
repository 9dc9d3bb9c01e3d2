package agent

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// sidePort carries the datagrams the engine addresses to peers named with
// DTLSPeerPrefix over DTLS sessions of their own, beside the main port:
// coaps Package URIs, and with several servers every coaps LwM2M server
// (servers.go). A session is opened on the first datagram for its peer,
// in the background, with the credential the engine names for that peer
// (Engine.serverCredential for a server, Engine.PullPSK for a pull: the
// handler's FirmwareSecurityProvider or the configuration). A server's
// datagrams are dropped while the handshake runs (the engine registers
// anew once it is up); a pull's (at most maxPullQueue) go out once it is
// up, so its first block request does not wait for a retransmission.
// Each handshake's outcome is reported on status,
// so that the engine registers anew with a server over its new session
// (CoAP's retransmission finds the session of a pull up), or fails that
// server's Register. A handshake that fails is tried again on a later
// datagram; a session whose credential is no longer the one asked for,
// or that received nothing for the NAT timeout before something must be
// sent, is replaced. Nothing for such a peer ever goes out in plaintext.
type sidePort struct {
	main port
	// cred returns the credential for a peer, and whether datagrams sent
	// while its handshake runs are held for it (a pull) rather than
	// dropped (a server); ok false drops its datagrams. It is called from
	// Send, on the goroutine that drives the engine.
	cred    func(peer string) (c DTLSCredentials, hold, ok bool)
	timeout time.Duration
	nat     time.Duration // 0: no NAT timeout
	rx      chan Datagram
	status  chan sessionReport
	quit    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*sideSession // by peer key
	opening  map[string]DTLSCredentials
	queued   map[string][][]byte // held while the handshake runs
	closed   bool
}

// sideSession is one DTLS session of a sidePort.
type sideSession struct {
	port     *SecurePort
	cred     DTLSCredentials
	lastRecv time.Time // guarded by sidePort.mu
}

// sessionReport is the outcome of a sidePort handshake (err is nil when
// the session to peer is up), or the end of a session that was up (lost,
// err says why).
type sessionReport struct {
	peer string
	lost bool
	err  error
}

func newSidePort(main port, cred func(peer string) (DTLSCredentials, bool, bool), timeout, nat time.Duration) *sidePort {
	p := &sidePort{main: main, cred: cred, timeout: timeout, nat: nat, rx: make(chan Datagram, 16),
		status: make(chan sessionReport, 16), quit: make(chan struct{}),
		sessions: make(map[string]*sideSession), opening: make(map[string]DTLSCredentials), queued: make(map[string][][]byte)}
	go func() {
		defer close(p.rx)
		for d := range main.Recv() {
			if strings.HasPrefix(d.Peer, DTLSPeerPrefix) {
				continue // never from the main port
			}
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
	c, hold, ok := p.cred(peer)
	if !ok {
		return nil // no credential: never plaintext
	}
	p.mu.Lock()
	s, ok := p.sessions[peer]
	if ok && (!sameCredentials(s.cred, c) || (p.nat > 0 && time.Since(s.lastRecv) > p.nat)) {
		// Another credential for this peer now, or a session quiet for
		// longer than a NAT keeps a binding: a new session.
		delete(p.sessions, peer)
		s.port.Close()
		s, ok = nil, false
	}
	if !ok && !p.closed {
		if _, busy := p.opening[peer]; !busy {
			p.opening[peer] = c
			p.wg.Add(1)
			go p.open(peer, addr, c)
		}
	}
	if !ok {
		if _, busy := p.opening[peer]; hold && busy {
			q := p.queued[peer]
			if len(q) >= maxPullQueue {
				q = q[1:]
			}
			p.queued[peer] = append(q, append([]byte(nil), b...))
		}
		p.mu.Unlock()
		return nil // held or dropped while the handshake runs
	}
	p.mu.Unlock()
	return s.port.Send(addr, b)
}

// open runs the handshake with addr, reports it, and then forwards the
// session's datagrams under peer until it ends.
func (p *sidePort) open(peer, addr string, c DTLSCredentials) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	go func() {
		select {
		case <-p.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	sp, err := OpenSecureWith(ctx, addr, c)
	cancel()
	p.mu.Lock()
	delete(p.opening, peer)
	if err == nil && p.closed {
		p.mu.Unlock()
		sp.Close()
		return
	}
	s := &sideSession{port: sp, cred: c, lastRecv: time.Now()}
	if err == nil {
		p.sessions[peer] = s
	}
	held := p.queued[peer]
	delete(p.queued, peer)
	p.mu.Unlock()
	if err == nil {
		for _, b := range held {
			sp.Send(addr, b) // a lost one is retransmitted by CoAP
		}
	}
	select {
	case p.status <- sessionReport{peer: peer, err: err}:
	case <-p.quit:
	}
	if err != nil {
		return
	}
	for d := range sp.Recv() {
		p.mu.Lock()
		s.lastRecv = time.Now()
		p.mu.Unlock()
		select {
		case p.rx <- Datagram{Peer: peer, Data: d.Data}:
		case <-p.quit:
			return
		}
	}
	p.mu.Lock()
	current := p.sessions[peer] == s
	if current {
		delete(p.sessions, peer)
	}
	p.mu.Unlock()
	sp.Close()
	if !current {
		return // replaced (Send), not lost
	}
	err = sp.Err()
	if err == nil {
		err = errSessionClosed
	}
	select {
	case p.status <- sessionReport{peer: peer, lost: true, err: err}:
	case <-p.quit:
	}
}

// errSessionClosed is why a side session ended when the server closed it
// (close_notify).
var errSessionClosed = errors.New("agent: dtls session closed by the server")

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
		s.port.Close()
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

// withSide wraps pt in a sidePort when DTLS sessions beside it are
// possible: coaps Package URIs, or coaps servers among several.
func (a *Agent) withSide(pt port) port {
	a.side = a.engine.serverSessions()
	if a.side || a.cfg.fwPSK() != nil || a.cfg.securityHooks() {
		a.side = true
		// Send runs on the loop's goroutine, which owns a.engine (also
		// after a restart replaced it).
		return newSidePort(pt, a.sideCredential, a.cfg.handshakeTimeout(), a.cfg.natTimeout())
	}
	return pt
}

// sideCredential is the credential of a sidePort's peer: a coaps
// server's (its Security instance's PSK, or the device's certificate),
// else a coaps pull's PSK.
func (a *Agent) sideCredential(peer string) (c DTLSCredentials, hold, ok bool) {
	if t, ok := a.engine.serverCredential(peer); ok {
		if t.Certificate {
			if c, ok := a.certs[t.URI]; ok {
				return c, false, true
			}
			return a.cred, false, a.cred.certificate()
		}
		return DTLSCredentials{PSKIdentity: t.PSKIdentity, PSKKey: t.PSKKey}, false, true
	}
	if c := a.engine.pullPSK(peer); c != nil {
		return DTLSCredentials{PSKIdentity: c.identity, PSKKey: c.key}, true, true
	}
	return DTLSCredentials{}, false, false
}

// sameCredentials reports whether a and b are the same credential.
func sameCredentials(a, b DTLSCredentials) bool {
	return a.PSKIdentity == b.PSKIdentity && bytes.Equal(a.PSKKey, b.PSKKey) && a.Certificate == b.Certificate && a.RootCAs == b.RootCAs
}
