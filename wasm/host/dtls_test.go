package host

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
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
		case m.Code == codes.DELETE && pathOf(m) == "/rd/x":
			resp.Code = codes.Deleted
		}
		select {
		case reqs <- m.Code.String() + " " + pathOf(m):
		default:
		}
		if _, err := conn.Write(encodeMsg(resp)); err != nil {
			return
		}
	}
}
