package agent_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
)

func observeOpt(v uint32) message.Option { return agenttest.Uint(message.Observe, v) }

// observeBattery registers, optionally writes attributes on paths, and
// observes /3/0/9.
func observeBattery(t *testing.T, cfg agent.Config, attrs map[string][]string) *agenttest.Sim {
	t.Helper()
	s := registered(t, cfg)
	for path, qs := range attrs {
		var opts []message.Option
		for _, q := range qs {
			opts = append(opts, message.Option{ID: message.URIQuery, Value: []byte(q)})
		}
		if r := s.Server.Request(codes.PUT, path, nil, opts...); r == nil || r.Code != codes.Changed {
			t.Fatalf("write attributes %s %v: %v", path, qs, r)
		}
	}
	r := s.Server.Request(codes.GET, "/3/0/9", nil, observeOpt(0))
	if r == nil || r.Code != codes.Content {
		t.Fatalf("observe: %v", r)
	}
	if _, err := r.Options.Observe(); err != nil {
		t.Fatal("observe response without an Observe option")
	}
	return s
}

func set(t *testing.T, s *agenttest.Sim, path string, value string) {
	t.Helper()
	p, err := lwm2m.ParsePath(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Do(agent.CmdSet{Path: p, Value: lwm2m.String(value)}); err != nil {
		t.Fatalf("set %s=%s: %v", path, value, err)
	}
}

func payloads(ms []*message.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Payload))
	}
	return out
}

func TestObserveNotifiesOnChange(t *testing.T) {
	s := observeBattery(t, agent.Config{}, nil)
	set(t, s, "/3/0/9", "50")
	s.RunFor(time.Second)
	if got := payloads(s.Server.Notifications); len(got) != 1 || got[0] != "50" {
		t.Fatalf("notifications = %q, want [50]", got)
	}
	n := s.Server.Notifications[0]
	if n.Type != message.NonConfirmable {
		t.Errorf("notification type = %v, want NON", n.Type)
	}
	if seq, _ := n.Options.Observe(); seq <= 2 {
		t.Errorf("observe sequence = %d, want it to grow", seq)
	}
	if cf, _ := n.Options.ContentFormat(); lwm2m.ContentFormat(cf) != lwm2m.FormatText {
		t.Errorf("content format = %v", cf)
	}
	set(t, s, "/3/0/9", "50") // no change, no notification
	s.RunFor(time.Second)
	if len(s.Server.Notifications) != 1 {
		t.Errorf("a value set to itself was notified")
	}
	if len(s.EventsOf(agent.EventNotify)) != 1 {
		t.Errorf("notify events = %d, want 1", len(s.EventsOf(agent.EventNotify)))
	}
}

// TestObserveStormRespectsPmin: a hundred changes within pmin produce one
// notification, at pmin, carrying the last value; none is lost after.
func TestObserveStormRespectsPmin(t *testing.T) {
	s := observeBattery(t, agent.Config{}, map[string][]string{"/3/0/9": {"pmin=10"}})
	start := s.Now
	for i := 0; i < 100; i++ {
		set(t, s, "/3/0/9", strconv.Itoa(i))
		s.RunFor(90 * time.Millisecond)
	}
	s.RunFor(2 * time.Second)
	ns := s.WireTo(false, func(m *message.Message) bool {
		_, err := m.Options.Observe()
		return err == nil && m.Type != message.Acknowledgement
	})
	if len(ns) != 1 {
		t.Fatalf("%d notifications in the storm, want 1: %q", len(ns), payloads(s.Server.Notifications))
	}
	if at := ns[0].At.Sub(start); at < 9900*time.Millisecond || at > 10100*time.Millisecond {
		t.Errorf("notification after %v, want at pmin (10 s) after the observe", at)
	}
	if got := string(ns[0].Msg.Payload); got != "99" {
		t.Errorf("notified %q, want the last value 99", got)
	}
}

func TestObservePmax(t *testing.T) {
	s := observeBattery(t, agent.Config{}, map[string][]string{"/3/0/9": {"pmax=60"}})
	s.RunFor(5*time.Minute + time.Second)
	if got := len(s.Server.Notifications); got != 5 {
		t.Fatalf("notifications in 5 min of pmax=60 = %d, want 5", got)
	}
}

func TestObserveGtLtSt(t *testing.T) {
	tests := []struct {
		name   string
		attrs  []string
		values []string
		want   []string
	}{
		{"gt and lt crossings", []string{"gt=80", "lt=20"}, []string{"90", "70", "50", "10", "15"}, []string{"70", "10"}},
		{"step", []string{"st=5"}, []string{"98", "96", "94", "89", "88"}, []string{"94", "89"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := observeBattery(t, agent.Config{}, map[string][]string{"/3/0/9": tt.attrs})
			for _, v := range tt.values {
				set(t, s, "/3/0/9", v)
				s.RunFor(time.Second)
			}
			if got := payloads(s.Server.Notifications); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("notified %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAttributeLevels: resource-level attributes win over instance and
// object level ones.
func TestAttributeLevels(t *testing.T) {
	s := observeBattery(t, agent.Config{}, map[string][]string{"/3": {"pmin=30"}, "/3/0/9": {"pmin=0"}})
	set(t, s, "/3/0/9", "40")
	s.RunFor(time.Second)
	if len(s.Server.Notifications) != 1 {
		t.Fatalf("resource-level pmin=0 did not win over object-level pmin=30: %d notifications", len(s.Server.Notifications))
	}
	// An observation of the instance follows the object level: 30 s.
	r := s.Server.Request(codes.GET, "/3/0", nil, observeOpt(0))
	if r == nil || r.Code != codes.Content {
		t.Fatalf("observe /3/0: %v", r)
	}
	start, n := s.Now, len(s.Server.Notifications)
	set(t, s, "/3/0/20", "2")
	s.RunFor(29 * time.Second)
	if len(s.Server.Notifications) != n {
		t.Errorf("instance notification before pmin=30")
	}
	s.RunFor(2 * time.Second)
	if len(s.Server.Notifications) != n+1 {
		t.Fatalf("no instance notification at pmin (after %v)", s.Now.Sub(start))
	}
}

func TestObserveCancel(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		s := observeBattery(t, agent.Config{}, nil)
		s.Server.ResetNotifications = true
		set(t, s, "/3/0/9", "10")
		s.RunFor(time.Second)
		set(t, s, "/3/0/9", "11")
		s.RunFor(time.Second)
		if len(s.Server.Notifications) != 1 {
			t.Errorf("notifications after RST = %d, want 1", len(s.Server.Notifications))
		}
	})
	t.Run("observe=1", func(t *testing.T) {
		s := observeBattery(t, agent.Config{}, nil)
		// Cancel with the same token: agenttest uses a fresh token per
		// request, so cancel by observing anew and cancelling that one,
		// then check the new relationship is gone.
		set(t, s, "/3/0/9", "10")
		s.RunFor(time.Second)
		r := s.Server.Request(codes.GET, "/3/0/9", nil, observeOpt(1))
		if r == nil || r.Code != codes.Content {
			t.Fatalf("cancel: %v", r)
		}
		if _, err := r.Options.Observe(); err == nil {
			t.Error("a cancelling GET was answered as an observation")
		}
	})
	t.Run("unacknowledged CON", func(t *testing.T) {
		s := observeBattery(t, agent.Config{NotifyCONInterval: -1}, nil)
		s.Server.IgnoreNotifications = true
		set(t, s, "/3/0/9", "10")
		s.RunFor(2 * time.Minute)
		set(t, s, "/3/0/9", "11")
		s.RunFor(2 * time.Minute)
		if got := payloads(s.Server.Notifications); strings.Join(got, ",") != "10" {
			t.Errorf("notifications = %q, want only 10 (the observer is dropped after the CON times out)", got)
		}
	})
	t.Run("re-registration", func(t *testing.T) {
		s := observeBattery(t, agent.Config{}, nil)
		s.Server.UpdateCode = codes.NotFound
		s.Do(agent.CmdUpdate{})
		s.WaitEvent(agent.EventRegistered, time.Minute)
		set(t, s, "/3/0/9", "10")
		s.RunFor(time.Second)
		if len(s.Server.Notifications) != 0 {
			t.Error("an observation survived re-registration")
		}
	})
}

// TestNotifyConfirmableDaily: notifications are NON except one CON per
// CON interval (24 h by default).
func TestNotifyConfirmableDaily(t *testing.T) {
	s := observeBattery(t, agent.Config{Lifetime: 86400 * time.Second}, map[string][]string{"/3/0/9": {"pmax=3600"}})
	s.RunFor(49 * time.Hour)
	var con, non int
	for _, n := range s.Server.Notifications {
		if n.Type == message.Confirmable {
			con++
		} else {
			non++
		}
	}
	if con != 2 || non < 40 {
		t.Errorf("in 49 h: %d CON and %d NON notifications, want 2 CON and the rest NON", con, non)
	}
}

func TestWriteAttributesValidation(t *testing.T) {
	s := registered(t, agent.Config{})
	q := func(qs ...string) []message.Option {
		var o []message.Option
		for _, v := range qs {
			o = append(o, message.Option{ID: message.URIQuery, Value: []byte(v)})
		}
		return o
	}
	tests := []struct {
		name string
		path string
		qs   []string
		want codes.Code
	}{
		{"pmin and pmax", "/3/0/9", []string{"pmin=5", "pmax=60"}, codes.Changed},
		{"unset", "/3/0/9", []string{"pmin"}, codes.Changed},
		{"object level", "/3", []string{"pmax=600"}, codes.Changed},
		{"instance level", "/3/0", []string{"epmin=1", "epmax=10"}, codes.Changed},
		{"gt lt st", "/3/0/9", []string{"gt=50", "lt=10", "st=2"}, codes.Changed},
		{"unknown attribute", "/3/0/9", []string{"foo=1"}, codes.BadRequest},
		{"negative pmin", "/3/0/9", []string{"pmin=-1"}, codes.BadRequest},
		{"pmax below pmin", "/3/0/9", []string{"pmin=60", "pmax=5"}, codes.BadRequest},
		{"gt on an instance", "/3/0", []string{"gt=5"}, codes.BadRequest},
		{"gt on a string", "/3/0/0", []string{"gt=5"}, codes.BadRequest},
		{"lt above gt", "/3/0/9", []string{"gt=10", "lt=50"}, codes.BadRequest},
		{"step too wide", "/3/0/9", []string{"gt=50", "lt=10", "st=30"}, codes.BadRequest},
		{"missing resource", "/3/0/99", []string{"pmin=1"}, codes.NotFound},
		{"missing object", "/9", []string{"pmin=1"}, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.Server.Request(codes.PUT, tt.path, nil, q(tt.qs...)...)
			if r == nil || r.Code != tt.want {
				t.Fatalf("code = %v, want %v", r, tt.want)
			}
		})
	}
	r := s.Server.Request(codes.GET, "/3/0", nil, accept(lwm2m.FormatLinkFormat))
	for _, want := range []string{"</3/0>;epmin=1;epmax=10", "</3/0/9>;pmax=60;gt=50;lt=10;st=2"} {
		if r == nil || !strings.Contains(string(r.Payload), want) {
			t.Errorf("discover %q lacks %q", r.Payload, want)
		}
	}
}

func TestSetCommand(t *testing.T) {
	s := registered(t, agent.Config{})
	for _, tt := range []struct {
		path  lwm2m.Path
		value lwm2m.Value
	}{
		{lwm2m.P(3, 0, 13), lwm2m.Int(5)},        // computed by the engine
		{lwm2m.P(3, 0, 4), lwm2m.Int(1)},         // executable
		{lwm2m.P(3, 0, 11), lwm2m.Int(1)},        // multiple resource as a whole
		{lwm2m.P(3, 0, 9), lwm2m.String("abc")},  // not an integer
		{lwm2m.P(0, 0, 0), lwm2m.String("coap")}, // security
		{lwm2m.P(3, 0, 9, 1), lwm2m.Int(1)},      // instance of a single resource
		{lwm2m.P(3, 0), lwm2m.Int(1)},            // not a resource
	} {
		if err := s.Do(agent.CmdSet{Path: tt.path, Value: tt.value}); !errors.Is(err, agent.ErrBadValue) {
			t.Errorf("set %s = %v: %v, want ErrBadValue", tt.path, tt.value, err)
		}
	}
	if err := s.Do(agent.CmdSet{Path: lwm2m.P(3, 0, 11, 1), Value: lwm2m.Int(7)}); err != nil {
		t.Fatal(err)
	}
	if r := s.Server.Request(codes.GET, "/3/0/11/1", nil); r == nil || string(r.Payload) != "7" {
		t.Errorf("error code 1 = %v, want 7", r)
	}
	if err := s.Do(agent.CmdSet{Path: lwm2m.P(3, 0, 11, 1)}); err != nil {
		t.Fatal(err)
	}
	if r := s.Server.Request(codes.GET, "/3/0/11/1", nil); r == nil || r.Code != codes.NotFound {
		t.Errorf("removed error code still read: %v", r)
	}
	c, err := agent.ParseCommand([]byte(`{"cmd":"set","path":"/3/0/9","value":"42"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Do(c); err != nil {
		t.Fatal(err)
	}
	if r := s.Server.Request(codes.GET, "/3/0/9", nil); r == nil || string(r.Payload) != "42" {
		t.Errorf("battery = %v, want 42", r)
	}
	if _, err := agent.ParseCommand([]byte(`{"cmd":"fly"}`)); !errors.Is(err, agent.ErrUnknownCommand) {
		t.Errorf("unknown command error = %v", err)
	}
}
