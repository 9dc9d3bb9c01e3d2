package agent_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestSecureSessionRetries: the policy on the driver's clock, with no
// server answering: each handshake ends after DTLSHandshakeTimeout as a
// SessionFailed carrying a registration_failed event, and the next one
// starts after DTLSRetryDelay, doubling; nothing is ever encrypted without
// a session.
func TestSecureSessionRetries(t *testing.T) {
	s, err := agent.NewSecureSession(agent.Config{
		ServerURI: "coaps://192.0.2.1", Endpoint: "x", PSKIdentity: "id", PSKKey: []byte{1, 2, 3, 4},
		DTLSHandshakeTimeout: 10 * time.Second, DTLSRetryDelay: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Peer() != "192.0.2.1:5684" {
		t.Errorf("peer = %q, want the default coaps port", s.Peer())
	}
	t0 := time.Unix(1_700_000_000, 0)
	if err := s.Open(t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Open(t0); !errors.Is(err, agent.ErrDuplicate) {
		t.Errorf("second Open = %v, want ErrDuplicate", err)
	}
	if err := s.Send([]byte("plaintext")); err == nil {
		t.Error("Send without a session succeeded")
	}
	if got := s.Next(t0); !got.Equal(t0.Add(50 * time.Millisecond)) {
		t.Errorf("Next while handshaking = %v, want 50 ms (polling pion's timers)", got.Sub(t0))
	}
	steps := []struct {
		at      time.Duration
		failed  bool
		nextDue time.Duration // Next after the step, relative to t0
	}{
		{9 * time.Second, false, 9*time.Second + 50*time.Millisecond},
		{10 * time.Second, true, 15 * time.Second},                      // fails, retry after 5 s
		{15 * time.Second, false, 15*time.Second + 50*time.Millisecond}, // handshakes again
		{25 * time.Second, true, 35 * time.Second},                      // fails, retry after 10 s
		{35 * time.Second, false, 35*time.Second + 50*time.Millisecond}, // again
		{45 * time.Second, true, 65 * time.Second},                      // retry after 20 s
	}
	for _, st := range steps {
		now := t0.Add(st.at)
		ch := s.Update(now)
		failed := len(ch) == 1 && ch[0].Kind == agent.SessionFailed
		if failed != st.failed || (!st.failed && len(ch) != 0) {
			t.Fatalf("at %v: changes %+v, want failed=%v", st.at, ch, st.failed)
		}
		if failed {
			ev := ch[0].Event
			if ev.Kind != agent.EventRegistrationFailed || ev.Server != "coaps://192.0.2.1" || !strings.Contains(ev.Err, "no answer within 10s") {
				t.Errorf("at %v: event %+v", st.at, ev)
			}
		}
		if got := s.Next(now); !got.Equal(t0.Add(st.nextDue)) {
			t.Errorf("at %v: Next = %v, want %v", st.at, got.Sub(t0), st.nextDue)
		}
		if s.Up() {
			t.Fatalf("at %v: up without a server", st.at)
		}
	}
	for b, ok := s.PollOutput(); ok; b, ok = s.PollOutput() {
		if b[0] != 22 {
			t.Errorf("sent content type %d without a session, want handshake records only", b[0])
		}
	}
	s.Close()
	if s.Active() || !s.Next(t0.Add(time.Hour)).IsZero() {
		t.Error("closed session still active or asking for time")
	}
	if _, err := agent.NewSecureSession(agent.Config{ServerURI: "coap://192.0.2.1", Endpoint: "x"}); err == nil {
		t.Error("NewSecureSession accepted a coap URI")
	}
	if _, err := agent.NewSecureSession(agent.Config{ServerURI: "coaps://192.0.2.1", Endpoint: "x", PSKIdentity: "id"}); !errors.Is(err, agent.ErrConfig) {
		t.Errorf("NewSecureSession without a key = %v, want ErrConfig", err)
	}
}

// TestSecureSessionWithEngine drives an Engine through a SecureSession
// over a UDP socket, as the wasm module does with its host, against the
// embedded server: it registers over DTLS, answers a read of /3/0, and a
// coaps engine is only accepted with CarryDTLS.
func TestSecureSessionWithEngine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, _ := startDTLSServer(t, ctx)
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()
	cfg := agent.Config{
		ServerURI: "coaps://" + srv.CoAPSAddr().String(), Endpoint: "carried",
		PSKIdentity: "dev-psk", PSKKey: testPSK,
	}
	if _, err := agent.NewEngine(cfg, nil); !errors.Is(err, agent.ErrConfig) {
		t.Fatalf("NewEngine(coaps) without CarryDTLS = %v, want ErrConfig", err)
	}
	cfg.CarryDTLS()
	e, err := agent.NewEngine(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := agent.NewSecureSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srvAddr := srv.CoAPSAddr().(*net.UDPAddr)
	rx := make(chan []byte, 16)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			rx <- append([]byte(nil), buf[:n]...)
		}
	}()
	if err := s.Open(time.Now()); err != nil {
		t.Fatal(err)
	}
	readDone := make(chan error, 1)
	registered := false
	for deadline := time.Now().Add(20 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no read of /3/0 within 20 s")
		}
		select {
		case b := <-rx:
			s.Input(time.Now(), b)
		case err := <-readDone:
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			for b, ok := s.PollOutput(); ok; b, ok = s.PollOutput() {
				conn.WriteToUDP(b, srvAddr)
			}
			return
		case <-time.After(5 * time.Millisecond):
		}
		now := time.Now()
		for _, ch := range s.Update(now) {
			if ch.Kind == agent.SessionUp {
				if err := e.HandleCommand(now, agent.CmdStart{}); err != nil {
					t.Fatal(err)
				}
			} else {
				t.Fatalf("session change %+v", ch)
			}
		}
		for b, ok := s.PollPlaintext(); ok; b, ok = s.PollPlaintext() {
			e.HandleDatagram(now, s.Peer(), b)
		}
		e.Step(now)
		s.CheckNAT(now, e.PendingTransmit())
		for ev, ok := e.PollEvent(); ok; ev, ok = e.PollEvent() {
			s.Observe(now, ev)
			if ev.Kind == agent.EventRegistered && !registered {
				registered = true
				go func() {
					if _, err := server.WaitEvent(ctx, events, "carried", server.EventRegistered); err != nil {
						readDone <- err
						return
					}
					resp, err := srv.Read(ctx, "carried", lwm2m.P(3, 0), lwm2m.FormatTLV)
					if err == nil && (resp.Code != codes.Content || len(resp.Records) == 0) {
						err = errors.New("read /3/0: " + resp.Code.String())
					}
					readDone <- err
				}()
			}
		}
		for d, ok := e.PollTransmit(); ok; d, ok = e.PollTransmit() {
			if d.Peer != s.Peer() {
				t.Fatalf("engine sent to %s", d.Peer)
			}
			if err := s.Send(d.Data); err != nil {
				t.Fatal(err)
			}
		}
		for b, ok := s.PollOutput(); ok; b, ok = s.PollOutput() {
			if b[0] < 20 || b[0] > 25 {
				t.Fatalf("not a DTLS record: % x", b[:min(len(b), 8)])
			}
			conn.WriteToUDP(b, srvAddr)
		}
	}
}
