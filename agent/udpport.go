package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// UDPPort is the socket half of a driver: one UDP socket, peer keys
// ("host:port" as the engine names them) resolved to addresses, and a
// reader goroutine that delivers each datagram tagged with its peer key.
// The native driver and the wazero host share it.
type UDPPort struct {
	conn *net.UDPConn
	rx   chan Datagram
	quit chan struct{}

	mu    sync.Mutex
	addrs map[string]*net.UDPAddr   // peer key -> address
	peers map[netip.AddrPort]string // address (unmapped) -> peer key
	err   error                     // why the reader stopped
	once  sync.Once

	// hmu is held by the reader while it delivers to handler, so that
	// setHandler(nil) returns only once no delivery is in progress.
	hmu     sync.Mutex
	handler func(Datagram)
}

// ListenUDP opens a port for talking to server (a peer key). It resolves
// the server first, and binds loopback when the server is on loopback so
// the agent is not reachable from elsewhere.
func ListenUDP(server string) (*UDPPort, error) {
	p := &UDPPort{rx: make(chan Datagram, 16), quit: make(chan struct{}), addrs: make(map[string]*net.UDPAddr), peers: make(map[netip.AddrPort]string)}
	addr, err := p.resolve(server)
	if err != nil {
		return nil, fmt.Errorf("agent: resolve server %s: %w", server, err)
	}
	var local *net.UDPAddr
	if addr.IP.IsLoopback() {
		local = &net.UDPAddr{IP: addr.IP}
	}
	p.conn, err = net.ListenUDP("udp", local)
	if err != nil {
		return nil, fmt.Errorf("agent: open socket: %w", err)
	}
	go p.read()
	return p, nil
}

// Recv returns the channel of received datagrams. It is closed when the
// socket fails or is closed; Err says why.
func (p *UDPPort) Recv() <-chan Datagram { return p.rx }

// LocalAddr returns the address the socket is bound to.
func (p *UDPPort) LocalAddr() net.Addr { return p.conn.LocalAddr() }

// Err returns the receive error that closed Recv's channel, if any.
func (p *UDPPort) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Send sends b to peer. A send error is like a lost datagram: CoAP
// retransmits, so callers usually log it and go on.
func (p *UDPPort) Send(peer string, b []byte) error {
	addr, err := p.resolve(peer)
	if err != nil {
		return fmt.Errorf("agent: resolve %s: %w", peer, err)
	}
	if _, err := p.conn.WriteToUDP(b, addr); err != nil {
		return fmt.Errorf("agent: send to %s: %w", peer, err)
	}
	return nil
}

// setHandler makes the reader goroutine call fn with each datagram
// instead of sending it to the Recv channel; nil goes back to the channel.
// fn runs on the reader goroutine and borrows the datagram's Data: it is
// overwritten by the next read. setHandler waits for a call in progress.
func (p *UDPPort) setHandler(fn func(Datagram)) {
	p.hmu.Lock()
	p.handler = fn
	p.hmu.Unlock()
}

// Close closes the socket and stops the reader.
func (p *UDPPort) Close() error {
	var err error
	p.once.Do(func() {
		close(p.quit)
		err = p.conn.Close()
	})
	return err
}

func (p *UDPPort) resolve(peer string) (*net.UDPAddr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if addr, ok := p.addrs[peer]; ok {
		return addr, nil
	}
	addr, err := net.ResolveUDPAddr("udp", peer)
	if err != nil {
		return nil, err
	}
	p.addrs[peer] = addr
	key := unmapped(addr.AddrPort())
	if _, taken := p.peers[key]; !taken {
		// The first key for an address keeps it: the server's, resolved
		// when the port opens. A Package URI naming the same address
		// differently ("localhost" for "127.0.0.1") must not turn the
		// server's datagrams into a stranger's.
		p.peers[key] = peer
	}
	return addr, nil
}

func (p *UDPPort) read() {
	defer close(p.rx)
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
			}
			return
		}
		addr = unmapped(addr)
		p.mu.Lock()
		peer, ok := p.peers[addr]
		p.mu.Unlock()
		if !ok {
			peer = addr.String()
		}
		p.hmu.Lock()
		if h := p.handler; h != nil {
			h(Datagram{Peer: peer, Data: buf[:n]})
			p.hmu.Unlock()
			continue
		}
		p.hmu.Unlock()
		select {
		case p.rx <- Datagram{Peer: peer, Data: append([]byte(nil), buf[:n]...)}:
		case <-p.quit:
			return
		}
	}
}

// unmapped returns a with an IPv4-mapped IPv6 address as plain IPv4, the
// form a dual-stack socket reports IPv4 senders in.
func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
