package wsrelay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testClient is the client side of a WebSocket session, written from RFC
// 6455 for the tests: it sends raw frames, masked or not as a test wants.
type testClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// dial performs the opening handshake against srv and returns the client.
func dial(t *testing.T, srv *httptest.Server, header http.Header) *testClient {
	t.Helper()
	c, resp := dialRaw(t, srv, header)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: status %d, want 101", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != want {
		t.Fatalf("Sec-WebSocket-Accept = %q, want %q", got, want)
	}
	return c
}

func dialRaw(t *testing.T, srv *httptest.Server, header http.Header) (*testClient, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==") // RFC 6455 §1.3's example
	for k, v := range header {
		req.Header[k] = v
	}
	if err := req.Write(nc); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	return &testClient{t: t, nc: nc, br: br}, resp
}

// clientFrame encodes a client frame: first byte b0, masked when mask.
func clientFrame(b0 byte, payload []byte, mask bool) []byte {
	b := []byte{b0}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xFFFF:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !mask {
		return append(b, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

func (c *testClient) send(raw []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(raw); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

func (c *testClient) sendBinary(p []byte) { c.send(clientFrame(0x80|opBinary, p, true)) }

// next reads one server frame: opcode and payload.
func (c *testClient) next() (byte, []byte) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		c.t.Fatalf("client read: %v", err)
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		c.t.Fatalf("server frame %x: want FIN set and no mask", h)
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(c.br, b[:])
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(c.br, b[:])
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		c.t.Fatalf("client read payload: %v", err)
	}
	return h[0] & 0x0F, p
}

// expectClose reads frames until a close frame and checks its code, then
// checks the server closed the connection.
func (c *testClient) expectClose(code uint16) {
	c.t.Helper()
	op, p := c.next()
	if op != opClose || len(p) < 2 {
		c.t.Fatalf("got opcode %#x %q, want a close frame", op, p)
	}
	if got := binary.BigEndian.Uint16(p); got != code {
		c.t.Fatalf("close code %d (%q), want %d", got, p[2:], code)
	}
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.br.ReadByte(); err != io.EOF {
		c.t.Fatalf("after the close frame: %v, want EOF", err)
	}
}

// udpServer is a stand-in LwM2M server: a UDP socket the test reads.
func udpServer(t *testing.T) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func readUDP(t *testing.T, pc *net.UDPConn) ([]byte, *net.UDPAddr) {
	t.Helper()
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 70000)
	n, from, err := pc.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("udp server read: %v", err)
	}
	return buf[:n], from
}

// noUDP checks that pc receives nothing for a while.
func noUDP(t *testing.T, pc *net.UDPConn) {
	t.Helper()
	pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 70000)
	if n, from, err := pc.ReadFromUDP(buf); err == nil {
		t.Fatalf("udp server got %q from %v, want nothing", buf[:n], from)
	}
}

func newRelay(t *testing.T, rl *Relay) *httptest.Server {
	t.Helper()
	rl.Logger = slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(rl)
	t.Cleanup(srv.Close)
	return srv
}

func waitSessions(t *testing.T, rl *Relay, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for rl.Sessions() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Sessions() = %d, want %d", rl.Sessions(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelayBothWays relays datagrams in both directions, each message one
// datagram, with one UDP socket per session.
func TestRelayBothWays(t *testing.T) {
	server := udpServer(t)
	rl := &Relay{Server: server.LocalAddr().String()}
	srv := newRelay(t, rl)

	a := dial(t, srv, nil)
	a.sendBinary([]byte("register"))
	got, fromA := readUDP(t, server)
	if string(got) != "register" {
		t.Fatalf("server got %q, want %q", got, "register")
	}
	big := bytes.Repeat([]byte{0xA5}, 1200) // a 16-bit length
	a.sendBinary(big)
	if got, _ := readUDP(t, server); !bytes.Equal(got, big) {
		t.Fatalf("server got %d bytes, want the 1200 sent", len(got))
	}
	for _, p := range [][]byte{[]byte("created"), big, {}} {
		if _, err := server.WriteToUDP(p, fromA); err != nil {
			t.Fatal(err)
		}
		op, msg := a.next()
		if op != opBinary || !bytes.Equal(msg, p) {
			t.Fatalf("client got opcode %#x, %d bytes; want a binary message of %d", op, len(msg), len(p))
		}
	}

	b := dial(t, srv, nil)
	b.sendBinary([]byte("other"))
	_, fromB := readUDP(t, server)
	if fromA.String() == fromB.String() {
		t.Fatalf("two sessions share the UDP socket %v", fromA)
	}
	server.WriteToUDP([]byte("to b"), fromB)
	if _, msg := b.next(); string(msg) != "to b" {
		t.Fatalf("session b got %q", msg)
	}
	waitSessions(t, rl, 2)
}

// TestRelayPinned: a session's socket takes datagrams only from the
// configured server; others sending to it reach no browser.
func TestRelayPinned(t *testing.T) {
	server := udpServer(t)
	stranger := udpServer(t)
	rl := &Relay{Server: server.LocalAddr().String()}
	c := dial(t, newRelay(t, rl), nil)
	c.sendBinary([]byte("hello"))
	_, relayAddr := readUDP(t, server)

	stranger.WriteToUDP([]byte("injected"), relayAddr)
	time.Sleep(50 * time.Millisecond)
	server.WriteToUDP([]byte("genuine"), relayAddr)
	if _, msg := c.next(); string(msg) != "genuine" {
		t.Fatalf("client got %q, want only the server's datagram", msg)
	}
	noUDP(t, stranger)
}

// TestRelayFragmentsAndPing: a message in fragments is one datagram; pings
// are answered and never relayed.
func TestRelayFragmentsAndPing(t *testing.T) {
	server := udpServer(t)
	c := dial(t, newRelay(t, &Relay{Server: server.LocalAddr().String()}), nil)
	c.send(clientFrame(opBinary, []byte("abc"), true))
	c.send(clientFrame(0x80|opPing, []byte("p1"), true))
	c.send(clientFrame(opContinuation, []byte("def"), true))
	c.send(clientFrame(0x80|opContinuation, []byte("ghi"), true))
	if op, p := c.next(); op != opPong || string(p) != "p1" {
		t.Fatalf("got opcode %#x %q, want pong p1", op, p)
	}
	if got, _ := readUDP(t, server); string(got) != "abcdefghi" {
		t.Fatalf("server got %q, want the fragments joined", got)
	}
	c.send(clientFrame(0x80|opPong, nil, true))
	noUDP(t, server)
}

// TestRelayCloses: the session, and its UDP socket, end with the
// WebSocket, whichever way it ends.
func TestRelayCloses(t *testing.T) {
	server := udpServer(t)
	rl := &Relay{Server: server.LocalAddr().String()}
	srv := newRelay(t, rl)

	c := dial(t, srv, nil)
	c.sendBinary([]byte("x"))
	_, addr := readUDP(t, server)
	c.send(clientFrame(0x80|opClose, binary.BigEndian.AppendUint16(nil, 1000), true))
	c.expectClose(1000)
	waitSessions(t, rl, 0)
	// The socket is closed: the port answers with ICMP port unreachable,
	// which a connected UDP socket reports as an error.
	probe, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probe.Write([]byte("anyone?"))
	probe.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := probe.Read(make([]byte, 10)); !isRefused(err) {
		t.Fatalf("the session's UDP port after close: %v, want connection refused", err)
	}

	d := dial(t, srv, nil)
	d.sendBinary([]byte("y"))
	readUDP(t, server)
	waitSessions(t, rl, 1)
	d.nc.Close() // no close frame: the browser vanished
	waitSessions(t, rl, 0)
}

// TestRelayRefusesFrames: malformed and oversized frames close the session
// with the RFC 6455 status code and are never relayed.
func TestRelayRefusesFrames(t *testing.T) {
	long := bytes.Repeat([]byte("z"), 101)
	tests := []struct {
		name string
		raw  [][]byte
		code uint16
	}{
		{"oversized", [][]byte{clientFrame(0x80|opBinary, long, true)}, closeTooBig},
		{"oversized in fragments", [][]byte{
			clientFrame(opBinary, long[:60], true),
			clientFrame(0x80|opContinuation, long[60:], true)}, closeTooBig},
		{"unmasked", [][]byte{clientFrame(0x80|opBinary, []byte("a"), false)}, closeProtocol},
		{"text", [][]byte{clientFrame(0x80|opText, []byte("a"), true)}, closeUnsupported},
		{"reserved bit", [][]byte{clientFrame(0xC0|opBinary, []byte("a"), true)}, closeProtocol},
		{"unknown opcode", [][]byte{clientFrame(0x80|0x3, []byte("a"), true)}, closeProtocol},
		{"fragmented ping", [][]byte{clientFrame(opPing, nil, true)}, closeProtocol},
		{"long ping", [][]byte{clientFrame(0x80|opPing, make([]byte, 126), true)}, closeProtocol},
		{"non-minimal length", [][]byte{{0x80 | opBinary, 0x80 | 126, 0, 5, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'}}, closeProtocol},
		{"continuation first", [][]byte{clientFrame(0x80|opContinuation, []byte("a"), true)}, closeProtocol},
		{"message inside a message", [][]byte{
			clientFrame(opBinary, []byte("a"), true),
			clientFrame(0x80|opBinary, []byte("b"), true)}, closeProtocol},
		{"1-byte close", [][]byte{clientFrame(0x80|opClose, []byte{3}, true)}, closeProtocol},
		{"huge length", [][]byte{{0x80 | opBinary, 0x80 | 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}, closeTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := udpServer(t)
			rl := &Relay{Server: server.LocalAddr().String(), MaxDatagram: 100}
			c := dial(t, newRelay(t, rl), nil)
			for _, raw := range tt.raw {
				c.send(raw)
			}
			c.expectClose(tt.code)
			noUDP(t, server)
			waitSessions(t, rl, 0)
		})
	}
}

// TestRelayRefusesHandshakes: what is not a WebSocket handshake, or comes
// from a page not allowed, gets no session.
func TestRelayRefusesHandshakes(t *testing.T) {
	server := udpServer(t)
	tests := []struct {
		name   string
		relay  func() *Relay
		header http.Header
		status int
	}{
		{"no upgrade", nil, http.Header{"Upgrade": {"h2c"}}, http.StatusUpgradeRequired},
		{"old version", nil, http.Header{"Sec-Websocket-Version": {"8"}}, http.StatusUpgradeRequired},
		{"bad key", nil, http.Header{"Sec-Websocket-Key": {"c2hvcnQ="}}, http.StatusBadRequest},
		{"origin not allowed", func() *Relay { return &Relay{Origins: []string{"http://localhost:8000"}} }, http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"origin allowed", func() *Relay { return &Relay{Origins: []string{"http://localhost:8000"}} }, http.Header{"Origin": {"http://localhost:8000"}}, http.StatusSwitchingProtocols},
		{"unresolvable server", func() *Relay { return &Relay{Server: "no-such-host.invalid:5683"} }, nil, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rl := &Relay{}
			if tt.relay != nil {
				rl = tt.relay()
			}
			if rl.Server == "" {
				rl.Server = server.LocalAddr().String()
			}
			_, resp := dialRaw(t, newRelay(t, rl), tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	t.Run("plain GET", func(t *testing.T) {
		srv := newRelay(t, &Relay{Server: server.LocalAddr().String()})
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Fatalf("status %d, Upgrade %q; want 426 and websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
		}
	})
	t.Run("max sessions", func(t *testing.T) {
		rl := &Relay{Server: server.LocalAddr().String(), MaxSessions: 1}
		srv := newRelay(t, rl)
		dial(t, srv, nil)
		waitSessions(t, rl, 1)
		if _, resp := dialRaw(t, srv, nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("second session: status %d, want 503", resp.StatusCode)
		}
	})
}
