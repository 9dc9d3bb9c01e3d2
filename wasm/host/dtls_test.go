package host

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/wasm/abi"
)

var testPSK = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}

// startDTLSServer starts the embedded server with a coaps listener that
// knows the identity "dev-psk" with testPSK.
func startDTLSServer(t *testing.T, ctx context.Context) *server.Server {
	t.Helper()
	srv := server.New(server.Config{
		CoAPAddr:  "127.0.0.1:0",
		CoAPSAddr: "127.0.0.1:0",
		PSK: func(identity []byte) ([]byte, error) {
			if string(identity) != "dev-psk" {
				return nil, fmt.Errorf("unknown identity %q", identity)
			}
			return testPSK, nil
		},
	})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestAgentOverDTLS: avc.wasm in wazero registers to the embedded server
// over coaps (DTLS-PSK carried inside the module), the server reads /3/0
// through the session, and the agent de-registers. Everything the host
// sends is DTLS records (content types 20-25), never CoAP.
func TestAgentOverDTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startDTLSServer(t, ctx)
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()

	cfg := map[string]string{
		agent.EnvServerURI:   "coaps://" + srv.CoAPSAddr().String(),
		agent.EnvEndpoint:    "wasm-dtls",
		agent.EnvLifetime:    "300",
		agent.EnvPSKIdentity: "dev-psk",
		agent.EnvPSKKey:      hex.EncodeToString(testPSK),
		agent.EnvLogLevel:    "debug",
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(ctx, nil, cfg, WithRuntime(testRT), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	var plain atomic.Int32
	a.sendHook = func(peer string, data []byte) {
		if len(data) == 0 || data[0] < 20 || data[0] > 25 {
			plain.Add(1)
		}
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	evs := a.Events()

	reg := nextEvent(t, evs, agent.EventRegistered, agent.EventRegistrationFailed)
	if reg.Kind != agent.EventRegistered {
		t.Fatalf("first event %+v, want registered", reg)
	}
	sev, err := server.WaitEvent(ctx, events, "wasm-dtls", server.EventRegistered)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sev.Addr.String(), "127.0.0.1:") {
		t.Errorf("registered from %s", sev.Addr)
	}
	resp, err := srv.Read(ctx, "wasm-dtls", lwm2m.P(3, 0), lwm2m.FormatTLV)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != codes.Content || len(resp.Records) == 0 {
		t.Fatalf("read /3/0 = %v with %d records", resp.Code, len(resp.Records))
	}
	stop()
	nextEvent(t, evs, agent.EventDeregistered)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := server.WaitEvent(ctx, events, "wasm-dtls", server.EventDeregistered); err != nil {
		t.Fatal(err)
	}
	if n := plain.Load(); n > 0 {
		t.Errorf("%d datagrams left the module that are not DTLS records", n)
	}
}

// TestAgentDTLSWrongKey: with a wrong key the handshake is never
// answered; each attempt ends after the handshake timeout as a
// registration_failed event, retried with a doubling delay, and nothing
// but DTLS handshake records ever leaves the module.
func TestAgentDTLSWrongKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startDTLSServer(t, ctx)
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()

	cfg := map[string]string{
		agent.EnvServerURI:             "coaps://" + srv.CoAPSAddr().String(),
		agent.EnvEndpoint:              "wasm-dtls-bad",
		agent.EnvPSKIdentity:           "dev-psk",
		agent.EnvPSKKey:                strings.Repeat("42", 16),
		abi.ConfigDTLSHandshakeTimeout: "500",
		abi.ConfigDTLSRetryDelay:       "200",
	}
	a, err := New(ctx, nil, cfg, WithRuntime(testRT))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var types []byte
	a.sendHook = func(peer string, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		if len(data) > 0 {
			types = append(types, data[0])
		}
	}
	actx, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	var failed []time.Time
	start := time.Now()
	for ev := range a.Events() {
		switch ev.Kind {
		case agent.EventRegistered:
			t.Fatalf("registered with a wrong key: %+v", ev)
		case agent.EventRegistrationFailed:
			if !strings.Contains(ev.Err, "dtls handshake") {
				t.Errorf("registration_failed %q, want a dtls handshake error", ev.Err)
			}
			failed = append(failed, time.Now())
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v; a failing handshake is retried until the context ends", err)
	}
	// Attempts at about 0, 0.7 (0.5 + 0.2), 1.6 (+0.4) and 2.9 s (+0.8).
	if len(failed) < 2 || len(failed) > 4 {
		t.Errorf("%d failed handshakes in 3 s, want 2 to 4 (timeout 0.5 s, delays 0.2, 0.4, 0.8 s)", len(failed))
	}
	if len(failed) > 0 && failed[0].Sub(start) < 400*time.Millisecond {
		t.Errorf("first failure after %v, want the 0.5 s handshake timeout", failed[0].Sub(start))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(types) == 0 {
		t.Fatal("nothing sent")
	}
	for i, ct := range types {
		if ct != 22 && ct != 20 && ct != 21 {
			t.Errorf("datagram %d has content type %d: only handshake, change_cipher_spec and alert records may leave", i, ct)
		}
	}
	select {
	case ev := <-events:
		if ev.Endpoint == "wasm-dtls-bad" {
			t.Errorf("server saw %+v", ev)
		}
	default:
	}
}

// TestDTLSDropsOutsiders: datagrams that do not come from the server's
// peer are dropped, plain CoAP from the server is not taken for the
// session, and a coaps session needs both PSK settings.
func TestDTLSDropsOutsiders(t *testing.T) {
	rec := new(recorder)
	m := newModule(t, rec)
	cfg := map[string]string{
		agent.EnvServerURI:   "coaps://127.0.0.1:5684",
		agent.EnvEndpoint:    "wasm-dtls-unit",
		agent.EnvPSKIdentity: "dev-psk",
		agent.EnvPSKKey:      hex.EncodeToString(testPSK),
	}
	if err := m.Init(cfg, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := m.Command(now, agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Command(now, agent.CmdStart{}); err == nil || !strings.Contains(err.Error(), "DUPLICATE") {
		t.Errorf("second start = %v, want AVC_DUPLICATE", err)
	}
	next, err := m.Step(now)
	if err != nil {
		t.Fatal(err)
	}
	if next.IsZero() || next.Sub(now) > 100*time.Millisecond {
		t.Errorf("next = %v after now while handshaking, want within 100 ms (pion's timers are polled)", next.Sub(now))
	}
	rec.mu.Lock()
	sent := append([]sentDatagram(nil), rec.sent...)
	rec.mu.Unlock()
	if len(sent) != 1 || sent[0].peer != "127.0.0.1:5684" || sent[0].data[0] != 22 {
		t.Fatalf("sent %d datagrams, want one ClientHello (a handshake record) to the server", len(sent))
	}
	// A plain CoAP request from the server's peer and one from elsewhere:
	// neither reaches the engine (it would answer), nor leaves plaintext.
	get := encodeCoAPGet(0x1234, "/3/0/0")
	for _, peer := range []string{"127.0.0.1:5684", "127.0.0.1:9999"} {
		if err := m.OnDatagram(now, peer, get); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Step(now); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, d := range rec.sent[1:] {
		if d.data[0] < 20 || d.data[0] > 25 {
			t.Errorf("sent a non-DTLS datagram to %s: % x", d.peer, d.data)
		}
	}
	stopErr := m.Command(now, agent.CmdStop{})
	if stopErr != nil {
		t.Fatalf("stop while handshaking = %v", stopErr)
	}
	ev, ok, err := m.PollEvent()
	for ok && err == nil && ev.Kind != agent.EventDeregistered {
		ev, ok, err = m.PollEvent()
	}
	if !ok || ev.Kind != agent.EventDeregistered {
		t.Errorf("no deregistered event after a stop while handshaking")
	}

	m2 := newModule(t, nil)
	delete(cfg, agent.EnvPSKKey)
	if err := m2.Init(cfg, nil); err == nil || !strings.Contains(err.Error(), agent.EnvPSKKey) {
		t.Errorf("init without a key = %v, want an error naming %s", err, agent.EnvPSKKey)
	}
}

// encodeCoAPGet is a confirmable GET of path.
func encodeCoAPGet(mid uint16, path string) []byte {
	b := []byte{0x40, 0x01, byte(mid >> 8), byte(mid)}
	prev := 0
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		b = append(b, byte((11-prev)<<4|len(seg)))
		b = append(b, seg...)
		prev = 11
	}
	return b
}

// TestDTLSCipherSuites: the module's DTLS client completes a handshake
// with a server that accepts only one of the two PSK cipher suites, for
// each of them, and registers and de-registers over it.
func TestDTLSCipherSuites(t *testing.T) {
	for _, suite := range []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8, dtls.TLS_PSK_WITH_AES_128_GCM_SHA256} {
		t.Run(suite.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ln, err := dtls.ListenWithOptions("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)},
				dtls.WithPSK(func([]byte) ([]byte, error) { return testPSK, nil }),
				dtls.WithCipherSuites(suite))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan dtls.CipherSuiteID, 1)
			reqs := make(chan string, 4)
			go serveDTLSOnce(ln, got, reqs)

			cfg := map[string]string{
				agent.EnvServerURI:   "coaps://" + ln.Addr().String(),
				agent.EnvEndpoint:    "wasm-suite",
				agent.EnvPSKIdentity: "dev-psk",
				agent.EnvPSKKey:      hex.EncodeToString(testPSK),
			}
			a, err := New(ctx, nil, cfg, WithRuntime(testRT))
			if err != nil {
				t.Fatal(err)
			}
			actx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Run(actx) }()
			nextEvent(t, a.Events(), agent.EventRegistered)
			stop()
			nextEvent(t, a.Events(), agent.EventDeregistered)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if id := <-got; id != suite {
				t.Errorf("negotiated %v, want %v", id, suite)
			}
			if r := []string{<-reqs, <-reqs}; r[0] != "POST /rd" || r[1] != "DELETE /rd/x" {
				t.Errorf("server saw %q, want a register and a de-register", r)
			}
		})
	}
}

// serveDTLSOnce accepts one DTLS session, reports its cipher suite, and
// answers CoAP registrations and de-registrations over it until it ends.
func serveDTLSOnce(ln net.Listener, suite chan<- dtls.CipherSuiteID, reqs chan<- string) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	conn := c.(*dtls.Conn)
	if err := conn.HandshakeContext(context.Background()); err != nil {
		return
	}
	st, _ := conn.ConnectionState()
	suite <- st.CipherSuiteID
	serveRD(conn, func(m *message.Message) {
		select {
		case reqs <- m.Code.String() + " " + pathOf(m):
		default:
		}
	})
}

// TestAgentDTLSSessionLost: the server restarts on the same address (its
// DTLS sessions are gone); the module handshakes again and a new engine
// registers anew with the new server, as the native driver does.
func TestAgentDTLSSessionLost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	psk := func([]byte) ([]byte, error) { return testPSK, nil }
	srv1 := server.New(server.Config{CoAPAddr: "127.0.0.1:0", CoAPSAddr: "127.0.0.1:0", PSK: psk})
	if err := srv1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := srv1.CoAPSAddr().String()
	ev1, unsub1 := srv1.Subscribe()
	defer unsub1()
	cfg := map[string]string{
		agent.EnvServerURI:             "coaps://" + addr,
		agent.EnvEndpoint:              "wasm-dtls-lost",
		agent.EnvPSKIdentity:           "dev-psk",
		agent.EnvPSKKey:                hex.EncodeToString(testPSK),
		abi.ConfigNATTimeout:           "500",
		abi.ConfigDTLSHandshakeTimeout: "1000",
		abi.ConfigDTLSRetryDelay:       "200",
	}
	a, err := New(ctx, nil, cfg, WithRuntime(testRT))
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	defer func() { rcancel(); <-done }()
	var registered atomic.Int32
	go func() {
		for ev := range a.Events() {
			if ev.Kind == agent.EventRegistered {
				registered.Add(1)
			}
		}
	}()
	if _, err := server.WaitEvent(ctx, ev1, "wasm-dtls-lost", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	_, ev2 := agenttest.RestartPSKServer(t, ctx, srv1, testPSK)
	time.Sleep(700 * time.Millisecond) // longer than the NAT timeout
	// Either the closing server's close_notify already ended the session
	// (the new engine is registering: ErrNotRegistered), or this update,
	// quiet for longer than the NAT timeout, starts the new session.
	if err := a.Do(ctx, agent.CmdUpdate{}); err != nil && !errors.Is(err, agent.ErrNotRegistered) {
		t.Fatalf("update: %v", err)
	}
	if _, err := server.WaitEvent(ctx, ev2, "wasm-dtls-lost", server.EventRegistered); err != nil {
		t.Fatalf("no registration with the restarted server: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); registered.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d registered events, want one per session", registered.Load())
		}
	}
}

// dtlsTestServer is a pion DTLS-PSK listener that answers registrations
// (2.01 /rd/x), updates (2.04) and de-registrations (2.02) on every
// session it accepts, and counts the sessions.
type dtlsTestServer struct {
	ln       net.Listener
	sessions atomic.Int32
	mu       sync.Mutex
	reqs     []string // "POST /rd" …, with the session number: "2 POST /rd"
}

func startDTLSTestServer(t *testing.T) *dtlsTestServer {
	t.Helper()
	ln, err := dtls.ListenWithOptions("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)},
		dtls.WithPSK(func([]byte) ([]byte, error) { return testPSK, nil }),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8))
	if err != nil {
		t.Fatal(err)
	}
	s := &dtlsTestServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := s.sessions.Add(1)
			go s.serve(c.(*dtls.Conn), n)
		}
	}()
	return s
}

func (s *dtlsTestServer) serve(conn *dtls.Conn, session int32) {
	defer conn.Close()
	if err := conn.HandshakeContext(context.Background()); err != nil {
		return
	}
	serveRD(conn, func(m *message.Message) {
		s.mu.Lock()
		s.reqs = append(s.reqs, fmt.Sprintf("%d %s %s", session, m.Code, pathOf(m)))
		s.mu.Unlock()
	})
}

// serveRD answers a client's registrations over conn until it ends: a
// Register gets /rd/x, an Update of /rd/x 2.04, a De-register 2.02,
// anything else 4.04. seen gets each request first.
func serveRD(conn *dtls.Conn, seen func(m *message.Message)) {
	buf := make([]byte, 2048)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		m, err := decodeMsg(buf[:n])
		if err != nil || m.Type == message.Acknowledgement {
			continue
		}
		resp := &message.Message{Type: message.Acknowledgement, MessageID: m.MessageID, Token: m.Token, Code: codes.NotFound}
		switch {
		case m.Code == codes.POST && pathOf(m) == "/rd":
			resp.Code = codes.Created
			resp.Options = resp.Options.Add(message.Option{ID: message.LocationPath, Value: []byte("rd")})
			resp.Options = resp.Options.Add(message.Option{ID: message.LocationPath, Value: []byte("x")})
		case m.Code == codes.POST && pathOf(m) == "/rd/x":
			resp.Code = codes.Changed
		case m.Code == codes.DELETE && pathOf(m) == "/rd/x":
			resp.Code = codes.Deleted
		}
		seen(m)
		if _, err := conn.Write(encodeMsg(resp)); err != nil {
			return
		}
	}
}

func (s *dtlsTestServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

// udpHost is a minimal host for a Module: a loopback UDP socket, with the
// time the test chooses (real time plus a skew it can add).
type udpHost struct {
	t      *testing.T
	m      *Module
	conn   *net.UDPConn
	server *net.UDPAddr
	rx     chan []byte
	base   time.Time
	skew   time.Duration
	events []agent.Event
	types  []byte // DTLS content type of each datagram sent
}

func newUDPHost(t *testing.T, server net.Addr) *udpHost {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h := &udpHost{t: t, conn: conn, server: server.(*net.UDPAddr), rx: make(chan []byte, 64), base: time.Now()}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				close(h.rx)
				return
			}
			h.rx <- bytes.Clone(buf[:n])
		}
	}()
	m, err := testRT.Instantiate(context.Background(), Imports{SockSend: func(peer string, data []byte) error {
		if peer != h.server.String() {
			return fmt.Errorf("unexpected peer %s", peer)
		}
		h.types = append(h.types, data[0])
		_, err := conn.WriteToUDP(data, h.server)
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	h.m = m
	return h
}

func (h *udpHost) now() time.Time { return time.Now().Add(h.skew) }

// until runs the module (datagrams in, steps, events out) until cond
// holds, failing after 10 s.
func (h *udpHost) until(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("no %s within 10 s; events %v", what, h.kinds())
		}
		select {
		case d := <-h.rx:
			if err := h.m.OnDatagram(h.now(), h.server.String(), d); err != nil {
				h.t.Fatal(err)
			}
		case <-time.After(10 * time.Millisecond):
		}
		if _, err := h.m.Step(h.now()); err != nil {
			h.t.Fatal(err)
		}
		for {
			ev, ok, err := h.m.PollEvent()
			if err != nil {
				h.t.Fatal(err)
			}
			if !ok {
				break
			}
			h.events = append(h.events, ev)
		}
	}
}

func (h *udpHost) count(k agent.EventKind) int {
	n := 0
	for _, ev := range h.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func (h *udpHost) kinds() []string {
	var ks []string
	for _, ev := range h.events {
		ks = append(ks, ev.Kind.String())
	}
	return ks
}

// TestDTLSNATTimeout: quiet for longer than the NAT timeout (the host's
// clock jumps), the next thing the engine must send starts a new
// handshake instead, and a new engine registers over the new session; the
// update itself never goes out over the old session.
func TestDTLSNATTimeout(t *testing.T) {
	srv := startDTLSTestServer(t)
	h := newUDPHost(t, srv.ln.Addr())
	cfg := map[string]string{
		agent.EnvServerURI:   "coaps://" + srv.ln.Addr().String(),
		agent.EnvEndpoint:    "wasm-nat",
		agent.EnvPSKIdentity: "dev-psk",
		agent.EnvPSKKey:      hex.EncodeToString(testPSK),
		abi.ConfigNATTimeout: "40000",
	}
	if err := h.m.Init(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Command(h.now(), agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	h.until("registration", func() bool { return h.count(agent.EventRegistered) == 1 })
	if err := h.m.Command(h.now(), agent.CmdUpdate{}); err != nil {
		t.Fatal(err)
	}
	h.until("update", func() bool { return h.count(agent.EventUpdated) == 1 })

	// 41 s of silence: the update must not go out over the old session.
	h.skew = 41 * time.Second
	sent := len(h.types)
	if err := h.m.Command(h.now(), agent.CmdUpdate{}); err != nil {
		t.Fatal(err)
	}
	// The old session's close_notify (an alert, 21), so that a server
	// still holding it lets go, then the new ClientHello (handshake, 22);
	// no application data (23).
	if got := h.types[sent:]; !slices.Equal(got, []byte{21, 22}) {
		t.Fatalf("after the NAT timeout the module sent content types %v, want [21 22]: close_notify, ClientHello", got)
	}
	h.until("registration over a new session", func() bool { return h.count(agent.EventRegistered) == 2 })
	if n := srv.sessions.Load(); n != 2 {
		t.Errorf("server accepted %d sessions, want 2", n)
	}
	want := []string{"1 POST /rd", "1 POST /rd/x", "2 POST /rd"}
	if got := srv.requests(); !slices.Equal(got, want) {
		t.Errorf("server saw %q, want %q", got, want)
	}
}

// TestAgentDTLSRecoversFromTrap: after a trap the fresh module registers
// again over a new DTLS session from a new socket, although the server
// still holds the dead instance's session.
func TestAgentDTLSRecoversFromTrap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	srv := startDTLSServer(t, ctx)
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()
	cfg := map[string]string{
		agent.EnvServerURI:   "coaps://" + srv.CoAPSAddr().String(),
		agent.EnvEndpoint:    "wasm-dtls-trap",
		agent.EnvPSKIdentity: "dev-psk",
		agent.EnvPSKKey:      hex.EncodeToString(testPSK),
	}
	a, err := New(ctx, nil, cfg, WithRuntime(testRT))
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	ev1, err := server.WaitEvent(ctx, events, "wasm-dtls-trap", server.EventRegistered)
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, a.Events(), agent.EventRegistered)
	a.Module().mod.Close(context.Background()) // as a trap would
	// The next call finds the instance dead; the update reaches the
	// fresh one, which handshakes and registers anew.
	if err := a.Do(ctx, agent.CmdUpdate{}); err != nil && !errors.Is(err, agent.ErrNotRegistered) {
		t.Errorf("Do(update) after the trap = %v, want nil or ErrNotRegistered", err)
	}
	ev2, err := server.WaitEvent(ctx, events, "wasm-dtls-trap", server.EventRegistered)
	if err != nil {
		t.Fatalf("no registration after the trap: %v", err)
	}
	if ev1.Addr.String() == ev2.Addr.String() {
		t.Errorf("registered again from the same address %s, want a new socket", ev2.Addr)
	}
	nextEvent(t, a.Events(), agent.EventRegistered)
	rcancel()
	nextEvent(t, a.Events(), agent.EventDeregistered)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
