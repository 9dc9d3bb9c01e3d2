package agent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
)

// sentValues decodes a Send payload into name → value and the base time.
func sentValues(t *testing.T, b []byte) (map[string]any, int64) {
	t.Helper()
	var recs []map[any]any
	if err := cbor.Unmarshal(b, &recs); err != nil {
		t.Fatalf("send payload is not CBOR: %v", err)
	}
	out := map[string]any{}
	var bn string
	var bt int64
	for _, r := range recs {
		if v, ok := r[int64(-2)].(string); ok {
			bn = v
		}
		switch v := r[int64(-3)].(type) {
		case uint64:
			bt = int64(v)
		case int64:
			bt = v
		}
		name, _ := r[uint64(0)].(string)
		for _, k := range []any{uint64(2), uint64(3), uint64(4)} {
			if v, ok := r[k]; ok {
				out[bn+name] = v
			}
		}
	}
	return out, bt
}

func TestSend(t *testing.T) {
	s := registered(t, agent.Config{})
	if err := s.Do(agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9), lwm2m.P(3, 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventSent, time.Minute); !ok {
		t.Fatal("no sent event")
	}
	if len(s.Server.Sends) != 1 {
		t.Fatalf("sends = %d, want 1", len(s.Server.Sends))
	}
	m := s.Server.Sends[0]
	if cf, _ := m.Options.ContentFormat(); lwm2m.ContentFormat(cf) != lwm2m.FormatSenMLCBOR {
		t.Errorf("content format = %v, want SenML-CBOR", cf)
	}
	vals, bt := sentValues(t, m.Payload)
	if vals["/3/0/9"] != uint64(100) || vals["/3/0/0"] != "avc" {
		t.Errorf("sent %v", vals)
	}
	if bt != agenttest.Epoch.Unix() {
		t.Errorf("base time = %d, want the command's time %d", bt, agenttest.Epoch.Unix())
	}
}

// TestSendQueuedWhileOffline: values sent while unregistered are kept and
// delivered, dated when they were taken, after the next registration.
func TestSendQueuedWhileOffline(t *testing.T) {
	s := newSim(t, agent.Config{}, 1, agenttest.Faults{})
	taken := s.Now
	set(t, s, "/3/0/9", "55")
	if err := s.Do(agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9)}}); err != nil {
		t.Fatal(err)
	}
	s.RunFor(time.Hour)
	if len(s.Server.Sends) != 0 {
		t.Fatal("sent before registering")
	}
	set(t, s, "/3/0/9", "60")
	s.Do(agent.CmdStart{})
	if _, ok := s.WaitEvent(agent.EventSent, time.Minute); !ok {
		t.Fatal("queued values not sent after registering")
	}
	vals, bt := sentValues(t, s.Server.Sends[0].Payload)
	if vals["/3/0/9"] != uint64(55) || bt != taken.Unix() {
		t.Errorf("sent %v at %d, want 55 taken at %d", vals, bt, taken.Unix())
	}
}

func TestSendErrors(t *testing.T) {
	s := registered(t, agent.Config{})
	for _, paths := range [][]lwm2m.Path{nil, {lwm2m.P(3, 0, 4)}, {lwm2m.P(9, 0)}, {lwm2m.P(0, 0)}} {
		if err := s.Do(agent.CmdSend{Paths: paths}); !errors.Is(err, agent.ErrBadValue) {
			t.Errorf("send %v: %v, want ErrBadValue", paths, err)
		}
	}
	if r := s.Server.Request(codes.PUT, "/1/0/23", []byte("1"), contentFormat(lwm2m.FormatText)); r == nil || r.Code != codes.Changed {
		t.Fatalf("mute send: %v", r)
	}
	if err := s.Do(agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9)}}); !errors.Is(err, agent.ErrSendMuted) {
		t.Errorf("send while muted: %v, want ErrSendMuted", err)
	}
	s.Server.Request(codes.PUT, "/1/0/23", []byte("0"), contentFormat(lwm2m.FormatText))
	s.Server.SendCode = codes.BadRequest
	if err := s.Do(agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9)}}); err != nil {
		t.Fatal(err)
	}
	if ev, ok := s.WaitEvent(agent.EventSendFailed, time.Minute); !ok || ev.Code != "4.00" {
		t.Errorf("send_failed = %+v, %v", ev, ok)
	}
	c, err := agent.ParseCommand([]byte(`{"cmd":"send","paths":["/3/0/9","/4/0"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if cs, ok := c.(agent.CmdSend); !ok || len(cs.Paths) != 2 {
		t.Errorf("parsed %#v", c)
	}
}
