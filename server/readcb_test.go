package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestReadCallbackRealAgent: a real agent over UDP whose resource is read
// on demand. Its host answers EventReadRequest with a fresh value; the
// server's Read (and the HTTP API's read) get that value from the
// agent's separate response, not the one stored beforehand.
func TestReadCallbackRealAgent(t *testing.T) {
	s := newServer(t, server.Config{HTTPAddr: "127.0.0.1:0"})
	events, stopEvents := s.Subscribe()
	defer stopEvents()
	obj := lwm2m.ObjectDef{ID: 33000, Name: "Sensor", Version: "1.0", Resources: []lwm2m.ResourceDef{
		{ID: 1, Name: "Temperature", Operations: lwm2m.OpRead, Type: lwm2m.TypeFloat, OnRead: true},
	}}
	a, err := agent.New(agent.Config{ServerURI: "coap://" + s.CoAPAddr().String(), Endpoint: "dev1",
		Objects: []lwm2m.ObjectDef{obj}, ReadTimeout: time.Minute, Logger: testLogger(t).With("side", "agent")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent run: %v", err)
		}
	}()
	temp := lwm2m.P(33000, 0, 1)
	// The host: each read request gets the next reading.
	var asked atomic.Int32
	go func() {
		for ev := range a.Events() {
			if ev.Kind != agent.EventReadRequest {
				continue
			}
			n := asked.Add(1)
			if len(ev.Paths) != 1 || ev.Paths[0] != temp.String() {
				t.Errorf("read request paths %v, want [%s]", ev.Paths, temp)
			}
			if err := a.Do(ctx, agent.CmdSet{Path: temp, Value: lwm2m.Float(20 + float64(n))}); err != nil {
				t.Errorf("set: %v", err)
			}
			if err := a.Do(ctx, agent.CmdReadDone{Token: ev.Token}); err != nil {
				t.Errorf("read done: %v", err)
			}
		}
	}()
	if _, err := server.WaitEvent(ctx, events, "dev1", server.EventRegistered); err != nil {
		t.Fatalf("registration: %v", err)
	}
	if err := a.Do(ctx, agent.CmdSet{Path: temp, Value: lwm2m.Float(1.5)}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Read(ctx, "dev1", temp, lwm2m.FormatText)
	if err != nil || string(resp.Payload) != "21" {
		t.Fatalf("Read = %v, %v; want the host's 21", resp, err)
	}
	hr, err := http.Get(fmt.Sprintf("http://%s/api/clients/dev1/read/33000/0/1?format=text", s.HTTPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	if hr.StatusCode != http.StatusOK || !strings.Contains(string(body), `"payload_hex": "3232"`) {
		t.Errorf("HTTP read = %d %s, want 200 with the host's 22", hr.StatusCode, body)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("the host was asked %d times, want 2", n)
	}
}
