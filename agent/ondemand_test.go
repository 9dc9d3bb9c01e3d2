package agent_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/server"
)

// runOnDemand runs an on-demand agent for cfg and returns it with a
// channel of its events.
func runOnDemand(t *testing.T, ctx context.Context, cfg agent.Config) (*agent.Agent, <-chan agent.Event) {
	t.Helper()
	cfg.Control = agent.ControlConfig{Enabled: true, OnDemand: true}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return a, a.Events()
}

// waitStatus reads events until the update-control status st (false on
// timeout), collecting the statuses seen.
func waitStatus(evs <-chan agent.Event, st agent.AVCStatus, seen *[]agent.AVCStatus, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return false
			}
			if ev.Kind == agent.EventStatus {
				*seen = append(*seen, ev.Status.Status)
				if ev.Status.Status == st {
					return true
				}
			}
		case <-deadline:
			return false
		}
	}
}

func eventually(cond func() bool) bool {
	for range 200 {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// TestAgentOnDemand: in on-demand mode Run opens no socket until the
// engine needs the link (here CmdStart), and closes it when the session
// has ended, while the engine keeps running.
func TestAgentOnDemand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	a, evs := runOnDemand(t, rctx, agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: "on-demand", Lifetime: 300 * time.Second})
	time.Sleep(200 * time.Millisecond)
	if a.LocalAddr() != nil {
		t.Fatal("a socket before anything needs it")
	}
	if err := a.Do(ctx, agent.CmdSetPollingTimer{Minutes: 60}); err != nil {
		t.Fatalf("the engine does not run without a session: %v", err)
	}
	var seen []agent.AVCStatus
	if err := a.Do(ctx, agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if !waitStatus(evs, agent.StatusSessionStarted, &seen, 10*time.Second) || a.LocalAddr() == nil {
		t.Fatalf("no session with a socket (statuses %v)", seen)
	}
	if err := a.Do(ctx, agent.CmdStop{}); err != nil {
		t.Fatal(err)
	}
	if !waitStatus(evs, agent.StatusSessionStopped, &seen, 10*time.Second) {
		t.Fatalf("no SESSION_STOPPED (statuses %v)", seen)
	}
	if !eventually(func() bool { return a.LocalAddr() == nil }) {
		t.Error("the socket stays open after the session")
	}
	if st, err := a.Control(ctx); err != nil || st.PollingTimer != 60 {
		t.Errorf("after the session: %+v, %v; want the engine still running", st, err)
	}
	stop()
	for range evs {
	}
}

// TestAgentOnDemandAuthFailed: a failed DTLS handshake is reported to the
// engine: AUTH_STARTED, AUTH_FAILED, then SESSION_FAILED at once, and the
// retry table (not the driver) decides when to try again.
func TestAgentOnDemandAuthFailed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, _ := startDTLSServer(t, ctx)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	a, evs := runOnDemand(t, rctx, agent.Config{
		ServerURI:            "coaps://" + srv.CoAPSAddr().String(),
		Endpoint:             "on-demand-bad",
		PSKIdentity:          "dev-psk",
		PSKKey:               bytes.Repeat([]byte{0x42}, 16),
		DTLSHandshakeTimeout: 500 * time.Millisecond,
	})
	if !eventually(func() bool { return a.Do(ctx, agent.CmdStart{}) == nil }) {
		t.Fatal("CmdStart refused")
	}
	var seen []agent.AVCStatus
	if !waitStatus(evs, agent.StatusSessionFailed, &seen, 10*time.Second) {
		t.Fatalf("no SESSION_FAILED (statuses %v)", seen)
	}
	want := []agent.AVCStatus{agent.StatusAuthStarted, agent.StatusAuthFailed, agent.StatusSessionFailed}
	if len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
		t.Errorf("statuses %v, want %v", seen, want)
	}
	st, err := a.Control(ctx)
	if err != nil || !st.Retrying {
		t.Errorf("after the failed handshake: %+v, %v; want the 15-minute retry timer running", st, err)
	}
	if !eventually(func() bool { return a.LocalAddr() == nil }) {
		t.Error("a socket while waiting for the retry")
	}
	stop()
	for range evs {
	}
}
