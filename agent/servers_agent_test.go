package agent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/server/servertest"
)

// TestAgentTwoServers runs the native driver against two embedded
// servers at once: it registers with both with their own lifetimes, each
// server's reads, writes and observations are answered to it, access
// control refuses one server the other's Server instance, and stopping
// de-registers from both.
func TestAgentTwoServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var srvs [2]*server.Server
	var evs [2]<-chan server.Event
	for i := range srvs {
		srvs[i], evs[i] = servertest.Start(t, ctx, server.Config{})
	}
	const ep = "two-1"
	cfg := agent.Config{
		ServerURI: "coap://" + srvs[0].CoAPAddr().String(), Endpoint: ep, Lifetime: 300 * time.Second,
		Servers: []agent.ServerAccount{{URI: "coap://" + srvs[1].CoAPAddr().String(), ShortServerID: 2, Lifetime: 200 * time.Second}},
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
	for i, lt := range []time.Duration{300 * time.Second, 200 * time.Second} {
		ev, err := server.WaitEvent(ctx, evs[i], ep, server.EventRegistered)
		if err != nil {
			t.Fatalf("server %d: %v", i+1, err)
		}
		if ev.Lifetime != lt {
			t.Errorf("server %d: lifetime %v, want %v", i+1, ev.Lifetime, lt)
		}
	}
	for i, srv := range srvs {
		r, err := srv.Read(ctx, ep, lwm2m.P(3, 0, 0), lwm2m.FormatNone)
		if err != nil || len(r.Records) != 1 || r.Records[0].Value.Str != "avc" {
			t.Errorf("server %d reads /3/0/0: %+v, %v", i+1, r, err)
		}
	}
	// Server 2 changes its own lifetime: it alone gets the update.
	if _, err := srvs[1].Write(ctx, ep, lwm2m.P(1, 1, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(1, 1, 1), Value: lwm2m.Int(150)}}); err != nil {
		t.Fatal(err)
	}
	if ev, err := server.WaitEvent(ctx, evs[1], ep, server.EventUpdated); err != nil || ev.Lifetime != 150*time.Second {
		t.Fatalf("server 2 update = %+v, %v", ev, err)
	}
	// Server 1 may not touch server 2's Server instance.
	_, err = srvs[0].Write(ctx, ep, lwm2m.P(1, 1, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(1, 1, 1), Value: lwm2m.Int(99)}})
	var ce *server.CodeError
	if !errors.As(err, &ce) || ce.Code != codes.Unauthorized {
		t.Errorf("server 1 writes /1/1/1: %v, want 4.01", err)
	}
	// Each server's observation is notified to it.
	obs, err := srvs[1].Observe(ctx, ep, lwm2m.P(3, 0, 9), lwm2m.FormatNone)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, agent.CmdSet{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(33)}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-obs.Notifications():
		if len(n.Response.Records) != 1 || n.Response.Records[0].Value.Int != 33 {
			t.Errorf("server 2 notification = %+v", n.Response)
		}
	case <-ctx.Done():
		t.Fatal("server 2 got no notification")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := range srvs {
		if _, err := server.WaitEvent(ctx, evs[i], ep, server.EventDeregistered); err != nil {
			t.Errorf("server %d: %v", i+1, err)
		}
	}
}
