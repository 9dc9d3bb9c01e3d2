package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
)

// DTLSHandshakeTimeout bounds the DTLS handshake of OpenSecure unless
// its caller's context ends sooner. A handshake with a wrong key is not
// refused, only left unanswered, so this is also how long it takes to
// notice one; Config.DTLSHandshakeTimeout overrides it for the agent.
const DTLSHandshakeTimeout = 30 * time.Second

// pskCipherSuites are the cipher suites offered for DTLS-PSK: the one
// LwM2M mandates (RFC 7925) and a widely deployed alternative.
var pskCipherSuites = []dtls.CipherSuiteID{
	dtls.TLS_PSK_WITH_AES_128_CCM_8,
	dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
}

// pskClientOptions are the pion options of every DTLS-PSK client session
// to an LwM2M server, native (OpenSecure) or carried by a driver
// (DTLSLink).
func pskClientOptions(identity string, key []byte) []dtls.ClientOption {
	psk := append([]byte(nil), key...)
	return []dtls.ClientOption{
		dtls.WithPSK(func([]byte) ([]byte, error) { return psk, nil }),
		dtls.WithPSKIdentityHint([]byte(identity)),
		dtls.WithCipherSuites(pskCipherSuites...),
		// RFC 9146 Connection ID: the client asks for none of its own (a
		// zero-length CID) and sends the server's, so a server that
		// supports CIDs keeps the session when a NAT gives the client a
		// new address or port, with no new handshake. A server without
		// CID support ignores the extension.
		dtls.WithConnectionIDGenerator(dtls.OnlySendCIDGenerator()),
	}
}

// SecurePort is the DTLS counterpart of [UDPPort]: one UDP socket carrying
// one DTLS-PSK session (pion/dtls) to the server. Send encrypts, Recv
// delivers decrypted datagrams tagged with the server's peer key, so the
// engine sees plaintext CoAP as over UDPPort. Only the server is a peer.
type SecurePort struct {
	server string // peer key
	pc     *net.UDPConn
	conn   *dtls.Conn
	rx     chan Datagram
	quit   chan struct{}

	mu   sync.Mutex
	err  error
	once sync.Once
}

// OpenSecure resolves server (a peer key), opens a UDP socket (on loopback
// when the server is on loopback) and runs the DTLS-PSK handshake, bounded
// by ctx and DTLSHandshakeTimeout. No server name (SNI) is sent. A failed
// handshake closes everything and returns the error; nothing is ever sent
// in plaintext.
func OpenSecure(ctx context.Context, server, identity string, key []byte) (*SecurePort, error) {
	return OpenSecureWith(ctx, server, DTLSCredentials{PSKIdentity: identity, PSKKey: key})
}

// OpenSecureWith is OpenSecure with any credential: a PSK, or a client
// certificate and the trust anchors for the server's (see certOptions for
// the name checks).
func OpenSecureWith(ctx context.Context, server string, cred DTLSCredentials) (*SecurePort, error) {
	if !cred.certificate() && (cred.PSKIdentity == "" || len(cred.PSKKey) == 0) {
		return nil, fmt.Errorf("%w: DTLS needs a PSK identity and key, or a certificate", ErrConfig)
	}
	if cred.certificate() && cred.RootCAs == nil {
		return nil, fmt.Errorf("%w: DTLS with a certificate needs trust anchors for the server", ErrConfig)
	}
	addr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, fmt.Errorf("agent: resolve server %s: %w", server, err)
	}
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		return nil, fmt.Errorf("agent: server %s: %w", server, err)
	}
	var local *net.UDPAddr
	if addr.IP.IsLoopback() {
		local = &net.UDPAddr{IP: addr.IP}
	}
	pc, err := net.ListenUDP("udp", local)
	if err != nil {
		return nil, fmt.Errorf("agent: open socket: %w", err)
	}
	var opts []dtls.ClientOption
	if cred.certificate() {
		opts = append([]dtls.ClientOption{dtls.WithConnectionIDGenerator(dtls.OnlySendCIDGenerator())}, certOptions(cred, host)...)
	} else {
		opts = pskClientOptions(cred.PSKIdentity, cred.PSKKey)
	}
	conn, err := dtls.ClientWithOptions(pc, addr, opts...)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("agent: dtls: %w", err)
	}
	hctx, cancel := context.WithTimeout(ctx, DTLSHandshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		conn.Close()
		pc.Close()
		return nil, fmt.Errorf("agent: dtls handshake with %s: %w", server, err)
	}
	p := &SecurePort{server: server, pc: pc, conn: conn, rx: make(chan Datagram, 16), quit: make(chan struct{})}
	go p.read()
	return p, nil
}

// Recv returns the channel of decrypted datagrams. It is closed when the
// session fails or is closed; Err says why.
func (p *SecurePort) Recv() <-chan Datagram { return p.rx }

// LocalAddr returns the address the socket is bound to.
func (p *SecurePort) LocalAddr() net.Addr { return p.pc.LocalAddr() }

// Err returns the error that closed Recv's channel, if any.
func (p *SecurePort) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Send encrypts b and sends it to the server; peer must be the server.
func (p *SecurePort) Send(peer string, b []byte) error {
	if peer != p.server {
		return fmt.Errorf("agent: dtls: no session with %s", peer)
	}
	if _, err := p.conn.Write(b); err != nil {
		return fmt.Errorf("agent: send to %s: %w", peer, err)
	}
	return nil
}

// Close ends the session (sending close_notify) and closes the socket.
func (p *SecurePort) Close() error {
	var err error
	p.once.Do(func() {
		close(p.quit)
		err = p.conn.Close()
		_ = p.pc.Close()
	})
	return err
}

func (p *SecurePort) read() {
	defer close(p.rx)
	buf := make([]byte, maxDatagram)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			select {
			case <-p.quit:
			default:
				if !errors.Is(err, net.ErrClosed) {
					p.mu.Lock()
					p.err = err
					p.mu.Unlock()
				}
			}
			return
		}
		select {
		case p.rx <- Datagram{Peer: p.server, Data: append([]byte(nil), buf[:n]...)}:
		case <-p.quit:
			return
		}
	}
}
