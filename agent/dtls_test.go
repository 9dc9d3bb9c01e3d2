package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
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

// TestAgentOverDTLS registers the native agent over DTLS-PSK, reads /3/0
// through the DTLS session, checks /0 stays closed and de-registers.
func TestAgentOverDTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, _ := startDTLSServer(t, ctx)
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()

	a, err := agent.New(agent.Config{
		ServerURI:   "coaps://" + srv.CoAPSAddr().String(),
		Endpoint:    "dtls-1",
		Lifetime:    300 * time.Second,
		PSKIdentity: "dev-psk",
		PSKKey:      testPSK,
	})
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

	ev, err := server.WaitEvent(ctx, events, "dtls-1", server.EventRegistered)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.Addr.String(), a.LocalAddr().String(); got != want {
		t.Errorf("registered from %s, want the agent's DTLS socket %s", got, want)
	}
	resp, err := srv.Read(ctx, "dtls-1", lwm2m.P(3, 0), lwm2m.FormatTLV)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != codes.Content || len(resp.Records) == 0 {
		t.Fatalf("read /3/0 = %v with %d records", resp.Code, len(resp.Records))
	}
	// The key is never readable by a DM server: /0 answers 4.01.
	if resp, err = srv.Read(ctx, "dtls-1", lwm2m.P(0, 0, 5), lwm2m.FormatNone); err == nil || !strings.Contains(err.Error(), "4.01") {
		t.Errorf("read /0/0/5 = %+v, %v; want 4.01", resp, err)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := server.WaitEvent(ctx, events, "dtls-1", server.EventDeregistered); err != nil {
		t.Fatal(err)
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
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	err = a.Run(rctx)
	if err == nil || !strings.Contains(err.Error(), "dtls handshake") {
		t.Fatalf("Run = %v, want a DTLS handshake error", err)
	}
	if asked.Load() == 0 {
		t.Error("the server was never asked for the PSK")
	}
	for range a.Events() {
	}
	select {
	case ev := <-events:
		t.Errorf("server event %+v after a failed handshake", ev)
	default:
	}
	if len(srv.Clients()) != 0 {
		t.Errorf("clients = %+v, want none", srv.Clients())
	}
}

// TestAgentDTLSServerDown: no DTLS server answers; Run gives up after
// its context ends and reports the handshake error.
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
	if err := a.Run(rctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want a handshake deadline error", err)
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
