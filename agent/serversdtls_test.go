package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// pskServer is an embedded server with coap and coaps listeners that
// knows one PSK identity and key.
type pskServer struct {
	*server.Server
	events <-chan server.Event
}

func startPSKServer(t *testing.T, ctx context.Context, identity string, key []byte) pskServer {
	t.Helper()
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0", CoAPSAddr: "127.0.0.1:0",
		PSK: func(id []byte) ([]byte, error) {
			if string(id) != identity {
				return nil, fmt.Errorf("unknown identity %q", id)
			}
			return key, nil
		}})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ch, unsubscribe := srv.Subscribe()
	t.Cleanup(unsubscribe)
	return pskServer{Server: srv, events: ch}
}

func (s pskServer) uri(secure bool) string {
	if secure {
		return "coaps://" + s.CoAPSAddr().String()
	}
	return "coap://" + s.CoAPAddr().String()
}

// agentEvents collects a running agent's events.
type agentEvents struct {
	mu  sync.Mutex
	evs []agent.Event
}

func (c *agentEvents) collect(a *agent.Agent) {
	for ev := range a.Events() {
		c.mu.Lock()
		c.evs = append(c.evs, ev)
		c.mu.Unlock()
	}
}

// count returns how many events match.
func (c *agentEvents) count(match func(agent.Event) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.evs {
		if match(ev) {
			n++
		}
	}
	return n
}

// TestAgentSeveralServersOverDTLS runs the native driver against two
// embedded servers over real UDP and DTLS: each coaps server gets a DTLS
// session of its own with its own PSK, coap and coaps servers mix (either
// one first), each server's requests are served over its own transport
// and Access Control still keeps one server off the other's Server
// instance. A server whose handshake fails (a wrong key, or a coaps URI
// that names a plain coap listener) is reported by name with its own
// retries, while the other stays registered; nothing reaches it in
// plaintext.
func TestAgentSeveralServersOverDTLS(t *testing.T) {
	keyA := bytes.Repeat([]byte{0xa1}, 16)
	keyB := bytes.Repeat([]byte{0xb2}, 16)
	wrong := bytes.Repeat([]byte{0x42}, 16)
	for _, tt := range []struct {
		name           string
		secure         [2]bool   // coaps for server 1 (the first), server 2
		key            [2][]byte // the key the agent holds for each
		plainListener2 bool      // server 2's coaps URI names its coap listener
		bad            int       // the server that must not register (1, 2), 0 none
	}{
		{name: "both coaps", secure: [2]bool{true, true}, key: [2][]byte{keyA, keyB}},
		{name: "coap first, coaps further", secure: [2]bool{false, true}, key: [2][]byte{nil, keyB}},
		{name: "coaps first, coap further", secure: [2]bool{true, false}, key: [2][]byte{keyA, nil}},
		{name: "wrong key for the further server", secure: [2]bool{true, true}, key: [2][]byte{keyA, wrong}, bad: 2},
		{name: "wrong key for the first server", secure: [2]bool{true, true}, key: [2][]byte{wrong, keyB}, bad: 1},
		{name: "coaps URI of a plain listener", secure: [2]bool{false, true}, key: [2][]byte{nil, keyB}, plainListener2: true, bad: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			srvs := [2]pskServer{startPSKServer(t, ctx, "dev-a", keyA), startPSKServer(t, ctx, "dev-b", keyB)}
			uris := [2]string{srvs[0].uri(tt.secure[0]), srvs[1].uri(tt.secure[1])}
			if tt.plainListener2 {
				uris[1] = "coaps://" + srvs[1].CoAPAddr().String()
			}
			ep := "multi-dtls"
			cfg := agent.Config{
				ServerURI: uris[0], Endpoint: ep, Lifetime: 300 * time.Second,
				Servers:              []agent.ServerAccount{{URI: uris[1], ShortServerID: 2, Lifetime: 200 * time.Second}},
				DTLSHandshakeTimeout: 500 * time.Millisecond,
				DTLSRetryDelay:       200 * time.Millisecond,
			}
			if tt.secure[0] {
				cfg.PSKIdentity, cfg.PSKKey = "dev-a", tt.key[0]
			}
			if tt.secure[1] {
				cfg.Servers[0].PSKIdentity, cfg.Servers[0].PSKKey = "dev-b", tt.key[1]
			}
			a, err := agent.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			actx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Run(actx) }()
			var got agentEvents
			go got.collect(a)

			for i := range srvs {
				if i+1 == tt.bad {
					continue
				}
				if _, err := server.WaitEvent(ctx, srvs[i].events, ep, server.EventRegistered); err != nil {
					t.Fatalf("server %d: %v", i+1, err)
				}
			}
			// The agent knows its registrations (the server reports one
			// before its 2.01 reaches the agent).
			waitFor(t, ctx, "the agent's registrations", func() bool {
				st, err := a.Servers(ctx)
				if err != nil || len(st) != 2 {
					return false
				}
				for i, s := range st {
					if s.Registered != (i+1 != tt.bad) {
						return false
					}
				}
				return true
			})
			for i, srv := range srvs {
				if i+1 == tt.bad {
					continue
				}
				r, err := srv.Read(ctx, ep, lwm2m.P(3, 0, 0), lwm2m.FormatNone)
				if err != nil || len(r.Records) != 1 || r.Records[0].Value.Str != "avc" {
					t.Errorf("server %d reads /3/0/0: %+v, %v", i+1, r, err)
				}
			}
			if tt.bad == 0 {
				// Access control: server 1 may not touch server 2's
				// Server instance; server 2 changes its own lifetime and
				// alone gets the update.
				_, err = srvs[0].Write(ctx, ep, lwm2m.P(1, 1, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(1, 1, 1), Value: lwm2m.Int(99)}})
				var ce *server.CodeError
				if !errors.As(err, &ce) || ce.Code != codes.Unauthorized {
					t.Errorf("server 1 writes /1/1/1: %v, want 4.01", err)
				}
				if _, err := srvs[1].Write(ctx, ep, lwm2m.P(1, 1, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(1, 1, 1), Value: lwm2m.Int(150)}}); err != nil {
					t.Fatal(err)
				}
				if ev, err := server.WaitEvent(ctx, srvs[1].events, ep, server.EventUpdated); err != nil || ev.Lifetime != 150*time.Second {
					t.Fatalf("server 2 update = %+v, %v", ev, err)
				}
				// No server reads a key: /0 answers 4.01.
				for i, srv := range srvs {
					if _, err := srv.Read(ctx, ep, lwm2m.P(0, 1, 5), lwm2m.FormatNone); !errors.As(err, &ce) || ce.Code != codes.Unauthorized {
						t.Errorf("server %d reads /0/1/5: %v, want 4.01", i+1, err)
					}
				}
			} else {
				// The bad server's handshakes fail, are reported with its
				// URI, and are retried on its own timers.
				badURI := uris[tt.bad-1]
				waitFor(t, ctx, "two failed handshakes with "+badURI, func() bool {
					return got.count(func(ev agent.Event) bool {
						return ev.Kind == agent.EventRegistrationFailed && ev.Server == badURI &&
							strings.Contains(ev.Err, "dtls handshake") && ev.Further == (tt.bad == 2)
					}) >= 2
				})
				if n := got.count(func(ev agent.Event) bool {
					return ev.Kind == agent.EventRegistrationFailed && ev.Server != badURI
				}); n != 0 {
					t.Errorf("%d failed registrations with the good server", n)
				}
			}
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for i := range srvs {
				if i+1 == tt.bad {
					continue
				}
				if _, err := server.WaitEvent(ctx, srvs[i].events, ep, server.EventDeregistered); err != nil {
					t.Errorf("server %d: %v", i+1, err)
				}
			}
			if tt.bad != 0 {
				if c := srvs[tt.bad-1].Clients(); len(c) != 0 {
					t.Errorf("server %d has clients %+v, want none (never plaintext)", tt.bad, c)
				}
			}
		})
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestAgentSeveralServersDTLSRenewed: one of two coaps servers restarts
// (its DTLS sessions are gone); the agent opens a new session with it and
// registers anew with it alone: the other server keeps its registration
// and sees no new Register.
// runRegisteredWithBoth runs a (its events drained) and returns its
// servers' states once both servers have registered it and it reports
// both registrations, and the function that stops it (de-registering:
// call it before the servers close).
func runRegisteredWithBoth(t *testing.T, ctx context.Context, a *agent.Agent, srvs [2]pskServer, ep string) ([]agent.ServerState, func()) {
	t.Helper()
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(func() {
		if actx.Err() == nil {
			stop()
		}
	})
	go func() {
		for range a.Events() {
		}
	}()
	for i := range srvs {
		if _, err := server.WaitEvent(ctx, srvs[i].events, ep, server.EventRegistered); err != nil {
			t.Fatalf("server %d: %v", i+1, err)
		}
	}
	var before []agent.ServerState
	waitFor(t, ctx, "both registrations", func() bool {
		before, _ = a.Servers(ctx)
		return len(before) == 2 && before[0].Registered && before[1].Registered
	})
	return before, stop
}

func TestAgentSeveralServersDTLSRenewed(t *testing.T) {
	keys := [2][]byte{bytes.Repeat([]byte{0xa1}, 16), bytes.Repeat([]byte{0xb2}, 16)}
	ids := [2]string{"dev-a", "dev-b"}
	for restart := range 2 {
		t.Run(fmt.Sprintf("server %d restarts", restart+1), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srvs := [2]pskServer{startPSKServer(t, ctx, ids[0], keys[0]), startPSKServer(t, ctx, ids[1], keys[1])}
			const ep = "multi-renew"
			a, err := agent.New(agent.Config{
				ServerURI: srvs[0].uri(true), Endpoint: ep, Lifetime: 300 * time.Second, PSKIdentity: ids[0], PSKKey: keys[0],
				Servers:              []agent.ServerAccount{{URI: srvs[1].uri(true), PSKIdentity: ids[1], PSKKey: keys[1]}},
				DTLSHandshakeTimeout: time.Second,
				DTLSRetryDelay:       200 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			before, stop := runRegisteredWithBoth(t, ctx, a, srvs, ep)
			defer stop()
			_, evs := agenttest.RestartPSKServer(t, ctx, srvs[restart].Server, keys[restart])
			if _, err := server.WaitEvent(ctx, evs, ep, server.EventRegistered); err != nil {
				t.Fatalf("no registration with the restarted server: %v", err)
			}
			other := 1 - restart
			waitFor(t, ctx, "the new registration", func() bool {
				st, _ := a.Servers(ctx)
				return len(st) == 2 && st[restart].Registered && st[restart].Location != before[restart].Location
			})
			st, _ := a.Servers(ctx)
			if st[other].Location != before[other].Location || !st[other].Registered {
				t.Errorf("server %d: %+v, want its registration %+v kept", other+1, st[other], before[other])
			}
			select {
			case ev := <-srvs[other].events:
				if ev.Kind == server.EventRegistered {
					t.Errorf("server %d got a new Register: %+v", other+1, ev)
				}
			default:
			}
		})
	}
}

// TestAgentSeveralServersCertificates: a further coaps server reached
// with certificates of its own, given in AVC_SERVER_URIS: its own device
// certificate, key and trust anchors beside a PSK first server, or only
// its own trust anchors beside the device's certificate, which the first
// server takes. Both register over their own DTLS sessions.
func TestAgentSeveralServersCertificates(t *testing.T) {
	caA, caB := agenttest.NewCA(t, "ca-a"), agenttest.NewCA(t, "ca-b")
	lo := net.IPv4(127, 0, 0, 1)
	for _, tt := range []struct {
		name       string
		deviceCert bool // the device's certificate (AVC_CERT_FILE...), from ca-a, for server 1
	}{
		{name: "own certificate beside a psk server"},
		{name: "own trust anchors beside the device certificate", deviceCert: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dir := t.TempDir()
			cfg := agent.Config{Endpoint: "multi-cert", Lifetime: 300 * time.Second}
			var first *server.Server
			var second *server.Server
			var extra string
			if tt.deviceCert {
				// Server 1: certificate from ca-a, trusts ca-a clients.
				first = agenttest.CertServer(t, ctx, caA, caA, lo)
				_, certFile, keyFile := caA.Issue(t, dir, "device-a")
				for name, v := range map[string]string{agent.EnvCertFile: certFile, agent.EnvKeyFile: keyFile, agent.EnvCAFile: caA.File(t, dir)} {
					if err := cfg.Set(name, v); err != nil {
						t.Fatal(err)
					}
				}
				// Server 2: certificate from ca-b, trusts the same ca-a
				// device certificate.
				second = agenttest.CertServer(t, ctx, caB, caA, lo)
				bdir := t.TempDir()
				extra = ";ca=" + caB.File(t, bdir)
			} else {
				first = startPSKServer(t, ctx, "dev-a", testPSK).Server
				cfg.PSKIdentity, cfg.PSKKey = "dev-a", testPSK
				// Server 2 trusts ca-b clients only: the device has a
				// ca-b certificate for it.
				second = agenttest.CertServer(t, ctx, caB, caB, lo)
				bdir := t.TempDir()
				_, certFile, keyFile := caB.Issue(t, bdir, "device-b")
				extra = ";cert=" + certFile + ";key=" + keyFile + ";ca=" + caB.File(t, bdir)
			}
			cfg.ServerURI = "coaps://" + first.CoAPSAddr().String()
			if err := cfg.Set(agent.EnvServerURIs, "coaps://"+second.CoAPSAddr().String()+";ssid=2"+extra); err != nil {
				t.Fatal(err)
			}
			var evs [2]<-chan server.Event
			for i, srv := range []*server.Server{first, second} {
				ch, unsubscribe := srv.Subscribe()
				defer unsubscribe()
				evs[i] = ch
			}
			a, err := agent.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			actx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Run(actx) }()
			go func() {
				for range a.Events() {
				}
			}()
			for i := range evs {
				if _, err := server.WaitEvent(ctx, evs[i], cfg.Endpoint, server.EventRegistered); err != nil {
					t.Fatalf("server %d: %v", i+1, err)
				}
			}
			waitFor(t, ctx, "both registrations", func() bool {
				st, _ := a.Servers(ctx)
				return len(st) == 2 && st[0].Registered && st[1].Registered
			})
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAgentSeveralServersNATTimeout: the DTLS session with one of two
// coaps servers has been quiet for longer than the NAT timeout when the
// agent must send to it (a notification): the agent opens a new session
// first and registers anew with that server alone; the other keeps its
// registration.
func TestAgentSeveralServersNATTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keyA, keyB := bytes.Repeat([]byte{0xa1}, 16), bytes.Repeat([]byte{0xb2}, 16)
	srvs := [2]pskServer{startPSKServer(t, ctx, "dev-a", keyA), startPSKServer(t, ctx, "dev-b", keyB)}
	const ep = "multi-nat"
	a, err := agent.New(agent.Config{
		ServerURI: srvs[0].uri(true), Endpoint: ep, Lifetime: 300 * time.Second, PSKIdentity: "dev-a", PSKKey: keyA,
		Servers:    []agent.ServerAccount{{URI: srvs[1].uri(true), PSKIdentity: "dev-b", PSKKey: keyB}},
		NATTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	before, stop := runRegisteredWithBoth(t, ctx, a, srvs, ep)
	defer stop()
	if _, err := srvs[1].Observe(ctx, ep, lwm2m.P(3, 0, 9), lwm2m.FormatNone); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // longer than the NAT timeout
	if err := a.Do(ctx, agent.CmdSet{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(42)}); err != nil {
		t.Fatal(err)
	}
	if _, err := server.WaitEvent(ctx, srvs[1].events, ep, server.EventRegistered); err != nil {
		t.Fatalf("server 2: no new registration after the NAT timeout: %v", err)
	}
	waitFor(t, ctx, "the new registration with server 2", func() bool {
		st, _ := a.Servers(ctx)
		return len(st) == 2 && st[1].Registered && st[1].Location != before[1].Location
	})
	if st, _ := a.Servers(ctx); st[0].Location != before[0].Location {
		t.Errorf("server 1: %+v, want its registration %+v kept", st[0], before[0])
	}
	select {
	case ev := <-srvs[0].events:
		if ev.Kind == server.EventRegistered {
			t.Errorf("server 1 got a new Register: %+v", ev)
		}
	default:
	}
}
