package agenttest

import (
	"context"
	"testing"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/server"
)

// RunRegistered runs a real agent (agent.Agent, not the simulator) that
// registers as ep with the embedded server whose events are subscribed
// in events, and returns once both sides have the registration: the
// server's event comes before its 2.01 reaches the agent, and a test
// that acts in between races the agent. ctx bounds the wait; the agent's
// events are drained and it stops (de-registering) when the test ends.
func RunRegistered(t testing.TB, ctx context.Context, a *agent.Agent, events <-chan server.Event, ep string) {
	t.Helper()
	// The agent runs until the test ends; ctx bounds only the wait.
	actx, stop := context.WithCancel(context.WithoutCancel(ctx))
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
	t.Cleanup(func() { stop(); <-done })
	if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	select {
	case <-registered:
	case <-ctx.Done():
		t.Fatal("the agent did not report its registration")
	}
}

// RestartPSKServer closes old, avc's embedded server, and starts a new
// one on its coaps address, as a restart would (every DTLS session with
// it is gone), taking key for any PSK identity. It returns the new server
// (closed when the test ends, after what the test defers) and its events.
func RestartPSKServer(t testing.TB, ctx context.Context, old *server.Server, key []byte) (*server.Server, <-chan server.Event) {
	t.Helper()
	addr := old.CoAPSAddr().String()
	old.Close()
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0", CoAPSAddr: addr,
		PSK: func([]byte) ([]byte, error) { return key, nil }})
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("restart the server on %s: %v", addr, err)
	}
	t.Cleanup(func() { srv.Close() })
	events, unsubscribe := srv.Subscribe()
	t.Cleanup(unsubscribe)
	return srv, events
}
