package agent_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

func TestConnectivityMonitoring(t *testing.T) {
	s := registered(t, agent.Config{})
	if r := s.Server.Request(codes.GET, "/4/0", nil); r == nil || r.Code != codes.Content {
		t.Fatalf("read /4/0: %v", r)
	}
	if r := s.Server.Request(codes.GET, "/4/0/0", nil); r == nil || string(r.Payload) != "41" {
		t.Errorf("network bearer = %v, want 41 (Ethernet)", r)
	}
	for path, v := range map[string]string{"/4/0/2": "-70", "/4/0/4/0": "192.0.2.7", "/4/0/8": "12345"} {
		p, _ := lwm2m.ParsePath(path)
		if err := s.Do(agent.CmdSet{Path: p, Value: lwm2m.String(v)}); err != nil {
			t.Fatalf("set %s: %v", path, err)
		}
		if r := s.Server.Request(codes.GET, path, nil); r == nil || string(r.Payload) != v {
			t.Errorf("read %s = %v, want %s", path, r, v)
		}
	}
	if r := s.Server.Request(codes.PUT, "/4/0/2", []byte("1"), contentFormat(lwm2m.FormatText)); r == nil || r.Code != codes.MethodNotAllowed {
		t.Errorf("server write to read-only /4/0/2: %v", r)
	}
}

// TestLocationAppearsWhenSet: no Location instance until the host sets a
// coordinate; then the registration's object list is updated.
func TestLocationAppearsWhenSet(t *testing.T) {
	s := registered(t, agent.Config{})
	if links := string(s.Server.Registers[0].Payload); !strings.Contains(links, "</6>") || strings.Contains(links, "</6/0>") {
		t.Errorf("registration links %q: want </6> without an instance", links)
	}
	if r := s.Server.Request(codes.GET, "/6/0", nil); r == nil || r.Code != codes.NotFound {
		t.Fatalf("read /6/0 before a location: %v", r)
	}
	if err := s.Do(agent.CmdSet{Path: lwm2m.P(6, 0, 0), Value: lwm2m.Float(52.5)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Do(agent.CmdSet{Path: lwm2m.P(6, 0, 1), Value: lwm2m.String("13.25")}); err != nil {
		t.Fatal(err)
	}
	s.RunFor(5 * time.Second) // the new instance is announced by itself
	last := s.Server.Updates[len(s.Server.Updates)-1]
	if !strings.Contains(string(last.Payload), "</6/0>") {
		t.Errorf("update payload %q lacks </6/0>", last.Payload)
	}
	if r := s.Server.Request(codes.GET, "/6/0/1", nil); r == nil || string(r.Payload) != "13.25" {
		t.Errorf("longitude = %v", r)
	}
}

func TestConnectivityStatistics(t *testing.T) {
	s := registered(t, agent.Config{})
	num := func(path string) int {
		t.Helper()
		r := s.Server.Request(codes.GET, path, nil)
		if r == nil || r.Code != codes.Content {
			t.Fatalf("read %s: %v", path, r)
		}
		n, err := strconv.Atoi(string(r.Payload))
		if err != nil {
			t.Fatalf("read %s = %q", path, r.Payload)
		}
		return n
	}
	if num("/7/0/4") != 0 {
		t.Error("counting before Start")
	}
	if r := s.Server.Request(codes.POST, "/7/0/6", nil); r == nil || r.Code != codes.Changed {
		t.Fatalf("start: %v", r)
	}
	for i := 0; i < 20; i++ {
		s.Server.Request(codes.GET, "/3/0", nil)
	}
	maxSize, avg := num("/7/0/4"), num("/7/0/5")
	if maxSize < 100 || avg <= 0 || avg > maxSize {
		t.Errorf("max message size %d, average %d: want counted datagrams", maxSize, avg)
	}
	if r := s.Server.Request(codes.POST, "/7/0/7", nil); r == nil || r.Code != codes.Changed {
		t.Fatalf("stop: %v", r)
	}
	before := num("/7/0/5")
	for i := 0; i < 5; i++ {
		s.Server.Request(codes.GET, "/4/0/0", nil)
	}
	if num("/7/0/5") != before {
		t.Error("counters moved after Stop")
	}
}
