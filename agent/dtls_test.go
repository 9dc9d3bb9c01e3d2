package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

var testPSK = []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}

// startDTLSServer starts the embedded server with a coaps listener that
// knows one identity, and counts the handshakes it was asked to accept.
func startDTLSServer(t *testing.T, ctx context.Context) (*server.Server, *atomic.Int32) {
	t.Helper()
	asked := new(atomic.Int32)
	srv := server.New(server.Config{
		CoAPAddr:  "127.0.0.1:0",
		CoAPSAddr: "127.0.0.1:0",
		PSK: func(identity []byte) ([]byte, error) {
			asked.Add(1)
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
	return srv, asked
}

// TestAgentOverDTLS registers the native agent over DTLS, with a PSK
// (Security mode 0) and with a client certificate and the CA of the
// server's (mode 2, the configuration given by name as every embedding
// does), reads /3/0 through the session, checks /0 stays closed and
// de-registers.
func TestAgentOverDTLS(t *testing.T) {
	for _, mode := range []string{"psk", "cert"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var srv *server.Server
			cfg := agent.Config{Endpoint: "dtls-" + mode, Lifetime: 300 * time.Second}
			switch mode {
			case "psk":
				srv, _ = startDTLSServer(t, ctx)
				cfg.PSKIdentity, cfg.PSKKey = "dev-psk", testPSK
			case "cert":
				ca := agenttest.NewCA(t, "avc-test-ca")
				srv = agenttest.CertServer(t, ctx, ca, ca, net.IPv4(127, 0, 0, 1))
				dir := t.TempDir()
				_, certFile, keyFile := ca.Issue(t, dir, "cert-1")
				for name, v := range map[string]string{agent.EnvCertFile: certFile, agent.EnvKeyFile: keyFile, agent.EnvCAFile: ca.File(t, dir)} {
					if err := cfg.Set(name, v); err != nil {
						t.Fatal(err)
					}
				}
			}
			cfg.ServerURI = "coaps://" + srv.CoAPSAddr().String()
			events, unsubscribe := srv.Subscribe()
			defer unsubscribe()
			a, err := agent.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			actx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Run(actx) }()
			registered := make(chan struct{})
			go func() {
				for ev := range a.Events() {
					if ev.Kind == agent.EventRegistered {
						select {
						case <-registered:
						default:
							close(registered)
						}
					}
				}
			}()

			ev, err := server.WaitEvent(ctx, events, cfg.Endpoint, server.EventRegistered)
			if err != nil {
				t.Fatal(err)
			}
			// The server reports the registration before its 2.01 reaches
			// the agent; stopping before the agent has it would only drop
			// the attempt (nothing to de-register yet, see CmdStop).
			select {
			case <-registered:
			case <-ctx.Done():
				t.Fatal("the agent did not report its registration")
			}
			if got, want := ev.Addr.String(), a.LocalAddr().String(); got != want {
				t.Errorf("registered from %s, want the agent's DTLS socket %s", got, want)
			}
			resp, err := srv.Read(ctx, cfg.Endpoint, lwm2m.P(3, 0), lwm2m.FormatTLV)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Code != codes.Content || len(resp.Records) == 0 {
				t.Fatalf("read /3/0 = %v with %d records", resp.Code, len(resp.Records))
			}
			// Keys are never readable by a DM server: /0 answers 4.01.
			if resp, err = srv.Read(ctx, cfg.Endpoint, lwm2m.P(0, 0, 5), lwm2m.FormatNone); err == nil || !strings.Contains(err.Error(), "4.01") {
				t.Errorf("read /0/0/5 = %+v, %v; want 4.01", resp, err)
			}

			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := server.WaitEvent(ctx, events, cfg.Endpoint, server.EventDeregistered); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAgentDTLSWrongKey: a handshake with a wrong key fails, Run returns
// the error, and nothing reaches the server in plaintext.
func TestAgentDTLSWrongKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	srv, asked := startDTLSServer(t, ctx)
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()

	a, err := agent.New(agent.Config{
		ServerURI:   "coaps://" + srv.CoAPSAddr().String(),
		Endpoint:    "dtls-bad",
		PSKIdentity: "dev-psk",
		PSKKey:      bytes.Repeat([]byte{0x42}, 16),
		// A wrong key is never refused, only left unanswered: the
		// handshake timeout is how long noticing it takes.
		DTLSHandshakeTimeout: 500 * time.Millisecond,
		DTLSRetryDelay:       200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	defer rcancel()
	if err := a.Run(rctx); err != nil {
		t.Fatalf("Run = %v; a failing handshake is retried until the context ends", err)
	}
	// Every failed handshake is a failed registration, retried with a
	// doubling delay: attempts at about 0, 0.7, 1.6 and 2.9 s.
	var failed int
	for ev := range a.Events() {
		if ev.Kind == agent.EventRegistrationFailed && strings.Contains(ev.Err, "dtls handshake") {
			failed++
		}
		if ev.Kind == agent.EventRegistered {
			t.Errorf("registered with a wrong key: %+v", ev)
		}
	}
	if failed < 2 || failed > 5 {
		t.Errorf("%d failed handshakes reported in 3 s, want 2 to 5 (retry with back-off)", failed)
	}
	if n := asked.Load(); n < 2 {
		t.Errorf("the server was asked for the PSK %d times, want a retry", n)
	}
	select {
	case ev := <-events:
		t.Errorf("server event %+v after failed handshakes", ev)
	default:
	}
	if len(srv.Clients()) != 0 {
		t.Errorf("clients = %+v, want none", srv.Clients())
	}
}

// TestAgentDTLSSessionLost: the server restarts (its DTLS sessions are
// gone) and the agent handshakes again and registers anew with the new
// server: on the old session's close_notify, or, quiet for longer than its
// NAT timeout, before it sends.
func TestAgentDTLSSessionLost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	psk := func(identity []byte) ([]byte, error) { return testPSK, nil }
	srv1 := server.New(server.Config{CoAPAddr: "127.0.0.1:0", CoAPSAddr: "127.0.0.1:0", PSK: psk})
	if err := srv1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := srv1.CoAPSAddr().String()
	ev1, unsub1 := srv1.Subscribe()
	defer unsub1()
	a, err := agent.New(agent.Config{
		ServerURI:   "coaps://" + addr,
		Endpoint:    "dtls-lost",
		PSKIdentity: "dev-psk",
		PSKKey:      testPSK,
		NATTimeout:  500 * time.Millisecond,
		// A handshake started while no server listens (between the
		// two) fails fast and is retried soon.
		DTLSHandshakeTimeout: time.Second,
		DTLSRetryDelay:       200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	defer func() { rcancel(); <-done }()
	go func() {
		for range a.Events() {
		}
	}()
	if _, err := server.WaitEvent(ctx, ev1, "dtls-lost", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	_, ev2 := agenttest.RestartPSKServer(t, ctx, srv1, testPSK)
	time.Sleep(700 * time.Millisecond) // longer than the NAT timeout
	// The agent may already be on a new session: the closing server's
	// close_notify ends the old one, and then the update finds the new
	// engine registering (ErrNotRegistered). Otherwise the update, after
	// the NAT timeout, starts the new session itself. Either way it must
	// end registered with the new server.
	if err := a.Do(ctx, agent.CmdUpdate{}); err != nil && !errors.Is(err, agent.ErrNotRegistered) {
		t.Fatalf("update: %v", err)
	}
	if _, err := server.WaitEvent(ctx, ev2, "dtls-lost", server.EventRegistered); err != nil {
		t.Fatalf("no registration with the restarted server: %v", err)
	}
}

func TestAgentDTLSServerDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0"}) // plaintext only
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a, err := agent.New(agent.Config{
		ServerURI:   "coaps://" + srv.CoAPAddr().String(), // a plaintext port
		Endpoint:    "dtls-down",
		PSKIdentity: "dev-psk",
		PSKKey:      testPSK,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	if err := a.Run(rctx); err != nil {
		t.Fatalf("Run = %v; an unanswered handshake is retried until the context ends", err)
	}
	if len(srv.Clients()) != 0 {
		t.Errorf("a plaintext server saw a registration: %+v", srv.Clients())
	}
}

func TestConfigCoaps(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  agent.Config
		want string // "" means agent.New succeeds
	}{
		{"psk", agent.Config{ServerURI: "coaps://127.0.0.1", Endpoint: "e", PSKIdentity: "id", PSKKey: testPSK}, ""},
		{"no psk", agent.Config{ServerURI: "coaps://127.0.0.1", Endpoint: "e"}, "coaps needs AVC_PSK_IDENTITY and AVC_PSK_KEY"},
		{"no key", agent.Config{ServerURI: "coaps://127.0.0.1", Endpoint: "e", PSKIdentity: "id"}, "coaps needs"},
		{"no identity", agent.Config{ServerURI: "coaps://127.0.0.1", Endpoint: "e", PSKKey: testPSK}, "coaps needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := agent.New(tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, agent.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want ErrConfig with %q", err, tc.want)
			}
		})
	}

	// The sans-I/O engine alone cannot do DTLS: it refuses coaps rather
	// than talk plaintext to a coaps server.
	c := agent.Config{ServerURI: "coaps://127.0.0.1", Endpoint: "e", PSKIdentity: "id", PSKKey: testPSK}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v: a coaps configuration with a PSK is valid", err)
	}
	if _, err := agent.NewEngine(c, nil); !errors.Is(err, agent.ErrConfig) || !strings.Contains(err.Error(), "native agent") {
		t.Errorf("NewEngine = %v, want ErrConfig (native agent only)", err)
	}

	if err := c.Set(agent.EnvPSKKey, "zz"); !errors.Is(err, agent.ErrConfig) {
		t.Errorf("Set bad hex = %v, want ErrConfig", err)
	}
	if got, _ := c.Get(agent.EnvPSKKey); got != "(set)" {
		t.Errorf("Get key = %q, want (set)", got)
	}
	if p, err := agent.ServerPeer("coaps://example.com"); err != nil || p != "example.com:5684" {
		t.Errorf("ServerPeer = %q, %v; want example.com:5684", p, err)
	}
}

// natProxy stands for a NAT between the agent and the server: the agent
// talks to its address, and it forwards from an outside socket of its own,
// which rebind replaces with one on a new port, as a NAT does when its
// binding times out.
type natProxy struct {
	in      *net.UDPConn
	server  *net.UDPAddr
	mu      sync.Mutex
	out     *net.UDPConn
	agent   *net.UDPAddr
	stopped atomic.Bool

	fromAgent atomic.Int32 // datagrams the agent sent
	dropAgent atomic.Int32 // how many of the agent's next datagrams to lose
	mu2       sync.Mutex
	toAgent   [][]byte // datagrams the server sent the agent, in order
}

// inject sends b to the agent as if it came from the server.
func (p *natProxy) inject(b []byte) {
	p.mu.Lock()
	agent := p.agent
	p.mu.Unlock()
	p.in.WriteToUDP(b, agent)
}

// sentToAgent returns the datagrams the server has sent the agent.
func (p *natProxy) sentToAgent() [][]byte {
	p.mu2.Lock()
	defer p.mu2.Unlock()
	return append([][]byte(nil), p.toAgent...)
}

func startNAT(t *testing.T, server net.Addr) *natProxy {
	t.Helper()
	in, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &natProxy{in: in, server: server.(*net.UDPAddr)}
	p.rebind(t)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := in.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.agent = from
			out := p.out
			p.mu.Unlock()
			p.fromAgent.Add(1)
			if p.dropAgent.Add(-1) >= 0 {
				continue // lost on the way
			}
			out.WriteToUDP(buf[:n], p.server)
		}
	}()
	t.Cleanup(func() {
		p.stopped.Store(true)
		in.Close()
		p.mu.Lock()
		p.out.Close()
		p.mu.Unlock()
	})
	return p
}

// rebind moves the outside of the NAT to a new port; datagrams for the
// old one are lost from now on.
func (p *natProxy) rebind(t *testing.T) *net.UDPAddr {
	t.Helper()
	out, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	old := p.out
	p.out = out
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := out.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			agent := p.agent
			p.mu.Unlock()
			p.mu2.Lock()
			p.toAgent = append(p.toAgent, append([]byte(nil), buf[:n]...))
			p.mu2.Unlock()
			if agent != nil {
				p.in.WriteToUDP(buf[:n], agent)
			}
		}
	}()
	return out.LocalAddr().(*net.UDPAddr)
}

// natRig starts what the NAT tests share: a DTLS server that counts its
// handshakes, a subscription to its events and the NAT stand-in in front
// of it; the context ends with the test (30 s at most).
func natRig(t *testing.T) (context.Context, *server.Server, *atomic.Int32, <-chan server.Event, *natProxy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	srv, asked := startDTLSServer(t, ctx)
	events, unsubscribe := srv.Subscribe()
	t.Cleanup(unsubscribe)
	return ctx, srv, asked, events, startNAT(t, srv.CoAPSAddr())
}

// runBehindNAT runs an agent registering as ep over DTLS-PSK through nat
// with srv, and returns once both sides have the registration; the agent
// stops when the test ends.
func runBehindNAT(t *testing.T, ctx context.Context, srv *server.Server, events <-chan server.Event, nat *natProxy, ep string) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Config{
		ServerURI:   "coaps://" + nat.in.LocalAddr().String(),
		Endpoint:    ep,
		Lifetime:    300 * time.Second,
		PSKIdentity: "dev-psk",
		PSKKey:      testPSK,
	})
	if err != nil {
		t.Fatal(err)
	}
	agenttest.RunRegistered(t, ctx, a, events, ep)
	return a
}

// TestAgentDTLSNATRebinding: behind a NAT that gives the agent a new
// outside port, the DTLS session carries on thanks to the Connection ID
// (RFC 9146: the agent offers a zero-length CID of its own and sends the
// server's): the agent's next Registration Update reaches the server from
// the new port, the server answers there, and there is no new handshake
// and no new registration.
func TestAgentDTLSNATRebinding(t *testing.T) {
	ctx, srv, asked, events, nat := natRig(t)

	a := runBehindNAT(t, ctx, srv, events, nat, "nat-1")
	if n := asked.Load(); n != 1 {
		t.Fatalf("%d handshakes before the rebinding, want 1", n)
	}
	outside := nat.rebind(t)
	if err := a.Do(ctx, agent.CmdUpdate{}); err != nil {
		t.Fatal(err)
	}
	ev, err := server.WaitEvent(ctx, events, "nat-1", server.EventUpdated)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Addr.String(); got != outside.String() {
		t.Errorf("update came from %s, want the NAT's new outside address %s", got, outside)
	}
	// The server answers at the new address: a Read goes through.
	resp, err := srv.Read(ctx, "nat-1", lwm2m.P(3, 0, 0), lwm2m.FormatText)
	if err != nil || resp.Code != codes.Content {
		t.Fatalf("read after the rebinding: %+v, %v", resp, err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("%d handshakes, want 1: the rebinding cost a new DTLS session", n)
	}
}

// TestAgentDTLSDropsInjectedAndReplayed: on a DTLS session the agent
// takes only authenticated records. A plaintext CoAP request arriving
// from the server's own address, and a replay of a record the server
// sent (a Read request, which a plaintext CoAP stack would answer again
// from its duplicate cache), both go unanswered; the session carries on.
func TestAgentDTLSDropsInjectedAndReplayed(t *testing.T) {
	ctx, srv, asked, events, nat := natRig(t)
	runBehindNAT(t, ctx, srv, events, nat, "inject-1")
	before := len(nat.sentToAgent())
	if _, err := srv.Read(ctx, "inject-1", lwm2m.P(3, 0, 0), lwm2m.FormatText); err != nil {
		t.Fatal(err)
	}
	sent := nat.sentToAgent()
	if len(sent) <= before {
		t.Fatal("the read request did not pass the NAT")
	}
	readRecord := sent[len(sent)-1]
	quiet := func(what string) {
		t.Helper()
		n := nat.fromAgent.Load()
		time.Sleep(700 * time.Millisecond)
		if got := nat.fromAgent.Load(); got != n {
			t.Errorf("%s: the agent sent %d datagrams in answer", what, got-n)
		}
	}
	// A CON GET /3/0/0 in plaintext, from the server's address.
	nat.inject([]byte{0x40, 0x01, 0x7a, 0x11, 0xb1, '3', 0x01, '0', 0x01, '0'})
	quiet("plaintext request")
	nat.inject(readRecord)
	quiet("replayed record")
	// The session is intact: another read goes through, without a new
	// handshake.
	if _, err := srv.Read(ctx, "inject-1", lwm2m.P(3, 0, 0), lwm2m.FormatText); err != nil {
		t.Fatalf("read after the injections: %v", err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("%d handshakes, want 1", n)
	}
}

// TestAgentDTLSHandshakeRetransmission: the agent's first two handshake
// flights are lost; the handshake retransmits them (RFC 6347 §4.2.4) and
// completes within one handshake timeout, with no second session: the
// server is asked for the key once.
func TestAgentDTLSHandshakeRetransmission(t *testing.T) {
	ctx, srv, asked, events, nat := natRig(t)
	nat.dropAgent.Store(2)
	start := time.Now()
	runBehindNAT(t, ctx, srv, events, nat, "retransmit-1")
	if lost := nat.dropAgent.Load(); lost > -1 {
		t.Fatalf("the agent sent %d datagrams, fewer than the two lost", 2-lost)
	}
	if d := time.Since(start); d > agent.DTLSHandshakeTimeout {
		t.Errorf("registered after %v, beyond one handshake timeout", d)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the server was asked for the key %d times, want 1", n)
	}
}
