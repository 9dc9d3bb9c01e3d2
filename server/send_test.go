package server_test

import (
	"context"
	"testing"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestSendReception: values a real agent reports with Send arrive as an
// EventSend with decoded records.
func TestSendReception(t *testing.T) {
	s := newServer(t, server.Config{})
	events, stop := s.Subscribe()
	defer stop()
	d := startAgent(t, s, "send-1")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := d.a.Do(ctx, agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9), lwm2m.P(3, 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	ev, err := server.WaitEvent(ctx, events, "send-1", server.EventSend)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range ev.Records {
		got[r.Path.String()] = r.Value.String()
	}
	if got["/3/0/9"] != "100" || got["/3/0/0"] != "avc" {
		t.Errorf("sent records = %v", got)
	}
}
