package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
)

// DTLSLink is one DTLS-PSK client session (pion/dtls, with the cipher
// suites and the zero-length Connection ID of [OpenSecure]) over
// datagrams its driver carries: Input takes the ciphertext received from
// the server, PollOutput returns the ciphertext to send to it, Write
// encrypts plaintext and PollPlaintext returns what was decrypted. No
// socket is involved, and no call blocks.
//
// pion runs the handshake and the record layer on goroutines of its own.
// Natively they run as goroutines do; inside a wasm module they only run
// while an export yields, so there the driver pumps the scheduler after
// Input, Write and Close, and polls the link while it handshakes (pion's
// retransmission timers fire from the pumping; see wasm/dtls.go).
type DTLSLink struct {
	pc     *memPacketConn
	conn   *dtls.Conn
	cancel context.CancelFunc // of the handshake

	mu       sync.Mutex
	up       bool  // the handshake succeeded
	err      error // why the link failed or was closed; nil while usable
	rx       [][]byte
	closed   bool
	finished bool // Close has sent what it sends
}

// maxLinkQueue bounds each queue of a DTLSLink (datagrams in either
// direction waiting for the other side): beyond it the oldest is dropped,
// as a full socket buffer would.
const maxLinkQueue = 64

// ErrLinkClosed is the error of a DTLSLink closed by its driver.
var ErrLinkClosed = errors.New("agent: dtls link closed")

// NewDTLSLink starts the DTLS-PSK handshake with peer (a "host:port" peer
// key, used only to name the session) with the given identity and key.
// The ClientHello is ready in PollOutput once pion's handshake goroutine
// has run. The handshake has no timeout of its own: the driver bounds it
// with its clock and closes the link.
func NewDTLSLink(peer, identity string, key []byte) (*DTLSLink, error) {
	if identity == "" || len(key) == 0 {
		return nil, fmt.Errorf("%w: DTLS needs a PSK identity and key", ErrConfig)
	}
	return newDTLSLink(peer, pskClientOptions(identity, key))
}

// NewDTLSLinkWith is NewDTLSLink with any credential: a PSK, or a client
// certificate with the trust anchors for the server's, which must name
// peer's host as OpenSecureWith checks it (certOptions).
func NewDTLSLinkWith(peer string, cred DTLSCredentials) (*DTLSLink, error) {
	if !cred.certificate() {
		return NewDTLSLink(peer, cred.PSKIdentity, cred.PSKKey)
	}
	if cred.RootCAs == nil {
		return nil, fmt.Errorf("%w: DTLS with a certificate needs trust anchors for the server", ErrConfig)
	}
	host, _, err := net.SplitHostPort(peer)
	if err != nil {
		return nil, fmt.Errorf("agent: server %s: %w", peer, err)
	}
	opts := append([]dtls.ClientOption{dtls.WithConnectionIDGenerator(dtls.OnlySendCIDGenerator())}, certOptions(cred, host)...)
	return newDTLSLink(peer, opts)
}

func newDTLSLink(peer string, opts []dtls.ClientOption) (*DTLSLink, error) {
	pc := newMemPacketConn(peerAddr(peer))
	conn, err := dtls.ClientWithOptions(pc, peerAddr(peer), opts...)
	if err != nil {
		return nil, fmt.Errorf("agent: dtls: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &DTLSLink{pc: pc, conn: conn, cancel: cancel}
	go l.run(ctx, peer)
	return l, nil
}

// run handshakes, then reads decrypted datagrams until the session ends.
func (l *DTLSLink) run(ctx context.Context, peer string) {
	if err := l.conn.HandshakeContext(ctx); err != nil {
		l.fail(fmt.Errorf("agent: dtls handshake with %s: %w", peer, err))
		_ = l.conn.Close()
		return
	}
	l.mu.Lock()
	l.up = true
	l.mu.Unlock()
	buf := make([]byte, maxDatagram)
	for {
		n, err := l.conn.Read(buf)
		if err != nil {
			l.fail(fmt.Errorf("agent: dtls session with %s: %w", peer, err))
			return
		}
		l.mu.Lock()
		if len(l.rx) >= maxLinkQueue {
			l.rx[0] = nil
			l.rx = l.rx[1:]
		}
		l.rx = append(l.rx, append([]byte(nil), buf[:n]...))
		l.mu.Unlock()
	}
}

// fail records the first error that ended the link.
func (l *DTLSLink) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

// State reports whether the handshake has succeeded, and the error that
// ended the link (nil while it handshakes or is up).
func (l *DTLSLink) State() (up bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up && l.err == nil, l.err
}

// Established reports whether the handshake ever succeeded, also after
// the link ended.
func (l *DTLSLink) Established() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// Input hands the link one datagram received from the server.
func (l *DTLSLink) Input(b []byte) { l.pc.deliver(b) }

// PollOutput returns the next datagram to send to the server, if any.
func (l *DTLSLink) PollOutput() ([]byte, bool) { return l.pc.pollOut() }

// PollPlaintext returns the next decrypted datagram, if any.
func (l *DTLSLink) PollPlaintext() ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.rx) == 0 {
		return nil, false
	}
	b := l.rx[0]
	l.rx[0] = nil
	l.rx = l.rx[1:]
	return b, true
}

// Write encrypts b into one record for PollOutput. It fails unless the
// handshake has succeeded: pion's own Write would wait for the handshake,
// which inside a wasm export would wait for ever.
func (l *DTLSLink) Write(b []byte) error {
	up, err := l.State()
	switch {
	case err != nil:
		return err
	case !up:
		return errors.New("agent: dtls: handshake in progress")
	}
	if _, err := l.conn.Write(b); err != nil {
		return fmt.Errorf("agent: dtls write: %w", err)
	}
	return nil
}

// Close ends the session: a close_notify alert goes to PollOutput when the
// session was up, the handshake stops, and State reports ErrLinkClosed
// (unless the link had failed before). It does not wait for pion's
// goroutines, which finish when next scheduled.
func (l *DTLSLink) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	if l.err == nil {
		l.err = ErrLinkClosed
	}
	l.mu.Unlock()
	l.cancel()
	// pion's Close waits for the handshake goroutine to notice the
	// cancellation; in wasm that needs the scheduler, so never here.
	go func() {
		_ = l.conn.Close()
		l.pc.Close()
		l.mu.Lock()
		l.finished = true
		l.mu.Unlock()
	}()
}

// Finished reports whether a closed link has put its last datagram (the
// close_notify) in PollOutput.
func (l *DTLSLink) Finished() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.finished
}

// peerAddr is a peer key as a net.Addr.
type peerAddr string

func (a peerAddr) Network() string { return "udp" }
func (a peerAddr) String() string  { return string(a) }

// memPacketConn is the net.PacketConn pion runs over in a DTLSLink:
// ReadFrom returns what deliver queued (from the one peer), WriteTo
// queues for pollOut. Read deadlines work, as pion cancels reads with a
// deadline in the past.
type memPacketConn struct {
	peer net.Addr
	wake chan struct{} // a reader may have something new to see

	mu       sync.Mutex
	in, out  [][]byte
	deadline time.Time
	closed   bool
}

func newMemPacketConn(peer net.Addr) *memPacketConn {
	return &memPacketConn{peer: peer, wake: make(chan struct{}, 1)}
}

func (c *memPacketConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *memPacketConn) deliver(b []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if len(c.in) >= maxLinkQueue {
		c.in[0] = nil
		c.in = c.in[1:]
	}
	c.in = append(c.in, append([]byte(nil), b...))
	c.mu.Unlock()
	c.signal()
}

func (c *memPacketConn) pollOut() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) == 0 {
		return nil, false
	}
	b := c.out[0]
	c.out[0] = nil
	c.out = c.out[1:]
	return b, true
}

// ReadFrom implements net.PacketConn.
func (c *memPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, nil, net.ErrClosed
		case len(c.in) > 0:
			d := c.in[0]
			c.in[0] = nil
			c.in = c.in[1:]
			c.mu.Unlock()
			return copy(b, d), c.peer, nil
		}
		dl := c.deadline
		c.mu.Unlock()
		if dl.IsZero() {
			<-c.wake
			continue
		}
		wait := time.Until(dl)
		if wait <= 0 {
			return 0, nil, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(wait)
		select {
		case <-c.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// WriteTo implements net.PacketConn.
func (c *memPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.out) >= maxLinkQueue {
		c.out[0] = nil
		c.out = c.out[1:]
	}
	c.out = append(c.out, append([]byte(nil), b...))
	return len(b), nil
}

// Close implements net.PacketConn. What was queued for pollOut (a
// close_notify) stays there.
func (c *memPacketConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.in = nil
	c.mu.Unlock()
	c.signal()
	return nil
}

// LocalAddr implements net.PacketConn.
func (c *memPacketConn) LocalAddr() net.Addr { return peerAddr("local") }

// SetDeadline implements net.PacketConn (reads only: writes never block).
func (c *memPacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn.
func (c *memPacketConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	c.signal()
	return nil
}

// SetWriteDeadline implements net.PacketConn; writes never block.
func (c *memPacketConn) SetWriteDeadline(time.Time) error { return nil }
