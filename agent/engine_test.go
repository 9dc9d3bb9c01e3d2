package agent_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

func newSim(t *testing.T, cfg agent.Config, seed uint64, f agenttest.Faults) *agenttest.Sim {
	t.Helper()
	s, err := agenttest.New(cfg, nil, seed, f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// registered returns a simulation whose engine has registered.
func registered(t *testing.T, cfg agent.Config) *agenttest.Sim {
	t.Helper()
	s := newSim(t, cfg, 1, agenttest.Faults{})
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatalf("not registered; events %v", s.Events)
	}
	return s
}

func TestRegisterMessage(t *testing.T) {
	s := registered(t, agent.Config{Endpoint: "dev-1", Lifetime: 300 * time.Second})
	if len(s.Server.Registers) != 1 {
		t.Fatalf("registers = %d, want 1", len(s.Server.Registers))
	}
	m := s.Server.Registers[0]
	q := agenttest.Queries(m)
	for _, want := range []string{"ep=dev-1", "lt=300", "lwm2m=1.1", "b=U"} {
		if !slices.Contains(q, want) {
			t.Errorf("register queries %v lack %q", q, want)
		}
	}
	if cf, err := m.Options.ContentFormat(); err != nil || cf != message.AppLinkFormat {
		t.Errorf("content format = %v, %v; want link-format", cf, err)
	}
	links := string(m.Payload)
	for _, want := range []string{"</1/0>", "</3/0>", `rt="oma.lwm2m"`} {
		if !strings.Contains(links, want) {
			t.Errorf("links %q lack %q", links, want)
		}
	}
	if strings.Contains(links, "</0") {
		t.Errorf("links %q list the Security object", links)
	}
	ev := s.EventsOf(agent.EventRegistered)[0]
	if ev.Location != "/rd/a1" || ev.Lifetime != 300 {
		t.Errorf("registered event = %+v", ev)
	}
}

// TestLifetimeDays runs three days of a one-day lifetime on the virtual
// clock: the registration is refreshed before every expiry.
func TestLifetimeDays(t *testing.T) {
	s := registered(t, agent.Config{Lifetime: 86400 * time.Second})
	regAt := s.Now
	s.RunFor(3 * 24 * time.Hour)
	ups := s.WireTo(false, func(m *message.Message) bool {
		return m.Code == codes.POST && agenttest.Path(m) == "/rd/a1"
	})
	if len(ups) != 3 {
		t.Fatalf("updates in 3 days = %d, want 3", len(ups))
	}
	last := regAt
	for _, u := range ups {
		gap := u.At.Sub(last)
		if gap >= 86400*time.Second || gap < 86400*time.Second*8/10 {
			t.Errorf("update %v after the previous refresh; want within the lifetime, not too early", gap)
		}
		last = u.At
	}
	if got := len(s.EventsOf(agent.EventUpdated)); got != 3 {
		t.Errorf("updated events = %d, want 3", got)
	}
}

// TestRetransmitSchedule checks RFC 7252 §4.2: with ACK_TIMEOUT 2 s,
// ACK_RANDOM_FACTOR 1.5 and MAX_RETRANSMIT 4, a CON is sent 5 times at
// T, 2T, 4T, 8T intervals with T in [2 s, 3 s], and the exchange fails 16T
// after the last transmission.
func TestRetransmitSchedule(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		s := newSim(t, agent.Config{}, seed, agenttest.Faults{})
		s.Server.Silent = true
		start := s.Now
		if err := s.Do(agent.CmdStart{}); err != nil {
			t.Fatal(err)
		}
		ev, ok := s.WaitEvent(agent.EventRegistrationFailed, 5*time.Minute)
		if !ok {
			t.Fatalf("seed %d: no registration_failed event", seed)
		}
		sends := s.WireTo(false, nil)
		if len(sends) != 1+agent.MaxRetransmit {
			t.Fatalf("seed %d: %d transmissions, want %d", seed, len(sends), 1+agent.MaxRetransmit)
		}
		T := sends[1].At.Sub(sends[0].At)
		if T < agent.AckTimeout || T > time.Duration(float64(agent.AckTimeout)*agent.AckRandomFactor) {
			t.Fatalf("seed %d: initial timeout %v outside [2s, 3s]", seed, T)
		}
		for i := 1; i < len(sends); i++ {
			if got, want := sends[i].At.Sub(sends[i-1].At), T<<(i-1); got != want {
				t.Errorf("seed %d: gap %d = %v, want %v", seed, i, got, want)
			}
			if sends[i].Msg.MessageID != sends[0].Msg.MessageID {
				t.Errorf("seed %d: retransmission changed the message ID", seed)
			}
		}
		if got, want := s.Now.Sub(start), 31*T; got != want {
			t.Errorf("seed %d: failure after %v, want %v (31T)", seed, got, want)
		}
		if ev.Err == "" {
			t.Errorf("seed %d: failure event without a reason", seed)
		}
		// The engine retries on its own.
		s.Server.Silent = false
		if _, ok := s.WaitEvent(agent.EventRegistered, 2*time.Minute); !ok {
			t.Errorf("seed %d: no registration after the server came back", seed)
		}
	}
}

func TestUpdateNotFoundReregisters(t *testing.T) {
	s := registered(t, agent.Config{Lifetime: 60 * time.Second})
	s.Server.UpdateCode = codes.NotFound
	if err := s.Do(agent.CmdUpdate{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("no re-registration after 4.04 to an update")
	}
	if len(s.Server.Registers) != 2 {
		t.Errorf("registers = %d, want 2", len(s.Server.Registers))
	}
}

func TestCommands(t *testing.T) {
	s := newSim(t, agent.Config{}, 1, agenttest.Faults{})
	if err := s.Do(agent.CmdUpdate{}); !errors.Is(err, agent.ErrNotRegistered) {
		t.Errorf("update before start: %v, want ErrNotRegistered", err)
	}
	if err := s.Do(agent.CmdStop{}); !errors.Is(err, agent.ErrDuplicate) {
		t.Errorf("stop before start: %v, want ErrDuplicate", err)
	}
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Do(agent.CmdStart{}); !errors.Is(err, agent.ErrDuplicate) {
		t.Errorf("second start: %v, want ErrDuplicate", err)
	}
	s.WaitEvent(agent.EventRegistered, time.Minute)
	if err := s.Do(agent.CmdStop{}); err != nil {
		t.Fatal(err)
	}
	ev, ok := s.WaitEvent(agent.EventDeregistered, time.Minute)
	if !ok || ev.Location != "/rd/a1" || ev.Err != "" {
		t.Fatalf("deregistered event = %+v, %v", ev, ok)
	}
	if len(s.Server.Deregisters) != 1 {
		t.Errorf("deregisters = %d, want 1", len(s.Server.Deregisters))
	}
	if s.Engine.Registered() || s.Engine.Started() {
		t.Error("engine still registered after stop")
	}
}

func accept(f lwm2m.ContentFormat) message.Option {
	return agenttest.Uint(message.Accept, uint32(f))
}

func contentFormat(f lwm2m.ContentFormat) message.Option {
	return agenttest.Uint(message.ContentFormat, uint32(f))
}

func TestServerOperations(t *testing.T) {
	tests := []struct {
		name    string
		code    codes.Code
		path    string
		payload string
		opts    []message.Option
		want    codes.Code
		wantCF  lwm2m.ContentFormat // checked when want is 2.05
		body    string              // substring of the response payload
	}{
		{name: "read resource as text", code: codes.GET, path: "/3/0/0", want: codes.Content, wantCF: lwm2m.FormatText, body: "avc"},
		{name: "read instance defaults to TLV", code: codes.GET, path: "/3/0", want: codes.Content, wantCF: lwm2m.FormatTLV},
		{name: "read object as TLV", code: codes.GET, path: "/1", want: codes.Content, wantCF: lwm2m.FormatTLV},
		{name: "read instance as SenML-JSON", code: codes.GET, path: "/3/0", opts: []message.Option{accept(lwm2m.FormatSenMLJSON)}, want: codes.Content, wantCF: lwm2m.FormatSenMLJSON, body: `"bn":"/3/0/"`},
		{name: "read resource as TLV", code: codes.GET, path: "/3/0/1", opts: []message.Option{accept(lwm2m.FormatTLV)}, want: codes.Content, wantCF: lwm2m.FormatTLV},
		{name: "read multiple resource", code: codes.GET, path: "/3/0/11", want: codes.Content, wantCF: lwm2m.FormatTLV},
		{name: "read resource instance", code: codes.GET, path: "/3/0/11/0", want: codes.Content, wantCF: lwm2m.FormatText, body: "0"},
		{name: "text for an instance is not acceptable", code: codes.GET, path: "/3/0", opts: []message.Option{accept(lwm2m.FormatText)}, want: codes.NotAcceptable},
		{name: "unsupported accept", code: codes.GET, path: "/3/0/0", opts: []message.Option{accept(50)}, want: codes.NotAcceptable},
		{name: "opaque for a string", code: codes.GET, path: "/3/0/0", opts: []message.Option{accept(lwm2m.FormatOpaque)}, want: codes.NotAcceptable},
		{name: "read executable", code: codes.GET, path: "/3/0/4", want: codes.MethodNotAllowed},
		{name: "read missing resource", code: codes.GET, path: "/3/0/99", want: codes.NotFound},
		{name: "read missing instance", code: codes.GET, path: "/3/1", want: codes.NotFound},
		{name: "read missing object", code: codes.GET, path: "/5", want: codes.NotFound},
		{name: "read missing resource instance", code: codes.GET, path: "/3/0/11/7", want: codes.NotFound},
		{name: "read security from a DM server", code: codes.GET, path: "/0/0", want: codes.Unauthorized},
		{name: "read root", code: codes.GET, path: "/", want: codes.MethodNotAllowed},
		{name: "non-numeric path", code: codes.GET, path: "/rd/x", want: codes.NotFound},
		{name: "write read-only", code: codes.PUT, path: "/3/0/0", payload: "x", opts: []message.Option{contentFormat(lwm2m.FormatText)}, want: codes.MethodNotAllowed},
		{name: "write bad integer", code: codes.PUT, path: "/1/0/1", payload: "abc", opts: []message.Option{contentFormat(lwm2m.FormatText)}, want: codes.BadRequest},
		{name: "write zero lifetime", code: codes.PUT, path: "/1/0/1", payload: "0", opts: []message.Option{contentFormat(lwm2m.FormatText)}, want: codes.BadRequest},
		{name: "write unsupported format", code: codes.PUT, path: "/1/0/1", payload: "{}", opts: []message.Option{contentFormat(50)}, want: codes.UnsupportedMediaType},
		{name: "write bad TLV", code: codes.PUT, path: "/1/0", payload: "\xc8\x01\x09", opts: []message.Option{contentFormat(lwm2m.FormatTLV)}, want: codes.BadRequest},
		{name: "write utc offset", code: codes.PUT, path: "/3/0/14", payload: "+02:00", opts: []message.Option{contentFormat(lwm2m.FormatText)}, want: codes.Changed},
		{name: "write bad utc offset", code: codes.PUT, path: "/3/0/14", payload: "two", opts: []message.Option{contentFormat(lwm2m.FormatText)}, want: codes.BadRequest},
		{name: "write object", code: codes.PUT, path: "/1", payload: "1", want: codes.MethodNotAllowed},
		{name: "execute reboot", code: codes.POST, path: "/3/0/4", want: codes.Changed},
		{name: "execute readable", code: codes.POST, path: "/3/0/0", want: codes.MethodNotAllowed},
		{name: "execute missing", code: codes.POST, path: "/3/0/98", want: codes.NotFound},
		{name: "create not supported", code: codes.POST, path: "/3", want: codes.MethodNotAllowed},
		{name: "delete not allowed", code: codes.DELETE, path: "/3/0", want: codes.MethodNotAllowed},
		{name: "discover instance", code: codes.GET, path: "/3/0", opts: []message.Option{accept(lwm2m.FormatLinkFormat)}, want: codes.Content, wantCF: lwm2m.FormatLinkFormat, body: "</3/0/11>;dim=1"},
		{name: "discover object", code: codes.GET, path: "/1", opts: []message.Option{accept(lwm2m.FormatLinkFormat)}, want: codes.Content, wantCF: lwm2m.FormatLinkFormat, body: "</1>;ver=1.1"},
		{name: "discover resource", code: codes.GET, path: "/1/0/1", opts: []message.Option{accept(lwm2m.FormatLinkFormat)}, want: codes.Content, wantCF: lwm2m.FormatLinkFormat, body: "</1/0/1>"},
		{name: "unknown critical option", code: codes.GET, path: "/3/0/0", opts: []message.Option{{ID: 25, Value: []byte{1}}}, want: codes.BadOption},
		{name: "unknown elective option is ignored", code: codes.GET, path: "/3/0/0", opts: []message.Option{{ID: 26, Value: []byte{1}}}, want: codes.Content, wantCF: lwm2m.FormatText},
		{name: "fetch not supported", code: codes.Code(5), path: "/3/0", want: codes.MethodNotAllowed},
	}
	s := registered(t, agent.Config{Device: agent.DeviceInfo{Manufacturer: "avc"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.Server.Request(tt.code, tt.path, []byte(tt.payload), tt.opts...)
			if resp == nil {
				t.Fatal("no response")
			}
			if resp.Code != tt.want {
				t.Fatalf("code = %v, want %v", resp.Code, tt.want)
			}
			if tt.want == codes.Content {
				cf, err := resp.Options.ContentFormat()
				if err != nil || lwm2m.ContentFormat(cf) != tt.wantCF {
					t.Errorf("content format = %v (%v), want %v", cf, err, tt.wantCF)
				}
			}
			if !bytes.Contains(resp.Payload, []byte(tt.body)) {
				t.Errorf("payload %q lacks %q", resp.Payload, tt.body)
			}
		})
	}
}

func TestReadDeviceTLVDecodes(t *testing.T) {
	s := registered(t, agent.Config{Endpoint: "dev-9", Device: agent.DeviceInfo{Model: "m1"}})
	resp := s.Server.Request(codes.GET, "/3/0", nil)
	if resp == nil || resp.Code != codes.Content {
		t.Fatalf("read /3/0: %v", resp)
	}
	typeOf := func(p lwm2m.Path) lwm2m.Type {
		switch p.Res() {
		case 0, 1, 2, 3, 14, 15, 16, 17, 18, 19:
			return lwm2m.TypeString
		case 13:
			return lwm2m.TypeTime
		}
		return lwm2m.TypeInteger
	}
	recs, err := tlv.Decode(lwm2m.P(3, 0), resp.Payload, typeOf)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[r.Path.String()] = r.Value.String()
	}
	want := map[string]string{"/3/0/1": "m1", "/3/0/2": "dev-9", "/3/0/11/0": "0", "/3/0/16": "U"}
	for p, v := range want {
		if got[p] != v {
			t.Errorf("%s = %q, want %q", p, got[p], v)
		}
	}
	if _, ok := got["/3/0/4"]; ok {
		t.Error("read returned the executable /3/0/4")
	}
	if got["/3/0/13"] != "1767225600" && !strings.HasPrefix(got["/3/0/13"], "17672256") {
		t.Errorf("current time = %s, want the virtual clock", got["/3/0/13"])
	}
}

// TestWriteLifetimeUpdates: a server write to /1/0/1 reaches the server in a
// Registration Update carrying the new lifetime, and is persisted.
func TestWriteLifetimeUpdates(t *testing.T) {
	s := registered(t, agent.Config{Lifetime: 300 * time.Second})
	resp := s.Server.Request(codes.PUT, "/1/0/1", []byte("120"), contentFormat(lwm2m.FormatText))
	if resp == nil || resp.Code != codes.Changed {
		t.Fatalf("write lifetime: %v", resp)
	}
	ev, ok := s.WaitEvent(agent.EventUpdated, 10*time.Second)
	if !ok || ev.Lifetime != 120 {
		t.Fatalf("updated event = %+v, %v", ev, ok)
	}
	last := s.Server.Updates[len(s.Server.Updates)-1]
	if q := agenttest.Queries(last); !slices.Contains(q, "lt=120") {
		t.Errorf("update queries %v lack lt=120", q)
	}
	r := s.Server.Request(codes.GET, "/1/0/1", nil)
	if r == nil || string(r.Payload) != "120" {
		t.Errorf("read back lifetime = %v", r)
	}
	stores := s.EventsOf(agent.EventStore)
	if len(stores) == 0 {
		t.Fatal("no store event after a lifetime write")
	}
	// A restart from the stored state registers with the written lifetime.
	s2, err := agenttest.New(agent.Config{Lifetime: 300 * time.Second}, stores[len(stores)-1].Data, 2, agenttest.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Do(agent.CmdStart{})
	if ev, ok := s2.WaitEvent(agent.EventRegistered, time.Minute); !ok || ev.Lifetime != 120 {
		t.Errorf("after restart registered = %+v, %v; want lifetime 120", ev, ok)
	}
}

func TestCorruptStateIsIgnored(t *testing.T) {
	for _, state := range [][]byte{[]byte("{"), []byte(`{"v":1,"crc":1,"state":{"lifetime":5}}`), []byte(`{"v":99}`), {0xff, 0}} {
		s, err := agenttest.New(agent.Config{Lifetime: 77 * time.Second}, state, 1, agenttest.Faults{})
		if err != nil {
			t.Fatalf("state %q: %v", state, err)
		}
		s.Do(agent.CmdStart{})
		if ev, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok || ev.Lifetime != 77 {
			t.Errorf("state %q: registered = %+v, %v; want the configured lifetime", state, ev, ok)
		}
	}
}

func TestExecuteEvents(t *testing.T) {
	s := registered(t, agent.Config{})
	for _, tt := range []struct {
		path string
		kind agent.EventKind
	}{{"/3/0/4", agent.EventReboot}, {"/3/0/5", agent.EventFactoryReset}} {
		if r := s.Server.Request(codes.POST, tt.path, nil); r == nil || r.Code != codes.Changed {
			t.Fatalf("execute %s: %v", tt.path, r)
		}
		if len(s.EventsOf(tt.kind)) != 1 {
			t.Errorf("execute %s: %d %v events, want 1", tt.path, len(s.EventsOf(tt.kind)), tt.kind)
		}
	}
	// Registration Update Trigger.
	n := len(s.Server.Updates)
	if r := s.Server.Request(codes.POST, "/1/0/8", nil); r == nil || r.Code != codes.Changed {
		t.Fatalf("execute /1/0/8: %v", r)
	}
	s.RunFor(5 * time.Second)
	if len(s.Server.Updates) != n+1 {
		t.Errorf("updates after /1/0/8 = %d, want %d", len(s.Server.Updates), n+1)
	}
}

// TestDuplicateRequest: a retransmitted request is answered from the cache
// and applied once (RFC 7252 §4.5).
func TestDuplicateRequest(t *testing.T) {
	s := registered(t, agent.Config{})
	s.Faults.Duplicate = 1
	before := len(s.EventsOf(agent.EventExecute))
	r := s.Server.Request(codes.POST, "/3/0/4", nil)
	if r == nil || r.Code != codes.Changed {
		t.Fatalf("execute: %v", r)
	}
	s.RunFor(time.Second)
	if got := len(s.EventsOf(agent.EventExecute)) - before; got != 1 {
		t.Errorf("execute applied %d times, want 1", got)
	}
	acks := s.WireTo(false, func(m *message.Message) bool { return m.Type == message.Acknowledgement && m.Code == codes.Changed })
	if len(acks) < 2 || !bytes.Equal(acks[len(acks)-1].Msg.Token, acks[len(acks)-2].Msg.Token) {
		t.Errorf("duplicate not answered with the cached response: %d acks", len(acks))
	}
}

func TestMalformedDatagrams(t *testing.T) {
	s := registered(t, agent.Config{})
	for _, tt := range []struct {
		name    string
		b       []byte
		wantRST bool
	}{
		{"empty", nil, false},
		{"short header", []byte{0x6e, 0x8d}, false},
		{"bad version", []byte{0x80, 0x01, 0, 1}, false},
		{"token length 9", []byte{0x49, 0x01, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9}, true},
		{"option delta 15", []byte{0x40, 0x01, 0, 3, 0xf1, 0}, true},
		{"truncated extended delta", []byte{0x40, 0x01, 0, 4, 0xd0}, true},
		{"payload marker without payload", []byte{0x40, 0x01, 0, 5, 0xff}, true},
		{"option length beyond datagram", []byte{0x40, 0x01, 0, 6, 0xb5, 'a'}, true},
		{"ping", []byte{0x40, 0x00, 0, 7}, true},
		{"non-confirmable garbage", []byte{0x50, 0x01, 0, 8, 0xf1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.WireTo(false, nil))
			s.Inject(tt.b)
			s.RunFor(100 * time.Millisecond)
			out := s.WireTo(false, nil)[before:]
			gotRST := len(out) == 1 && out[0].Msg != nil && out[0].Msg.Type == message.Reset
			if gotRST != tt.wantRST {
				t.Errorf("RST sent = %v, want %v (out %d)", gotRST, tt.wantRST, len(out))
			}
		})
	}
	// Still serving.
	if r := s.Server.Request(codes.GET, "/3/0/0", nil); r == nil || r.Code != codes.Content {
		t.Fatalf("engine stopped serving after bad input: %v", r)
	}
}

// TestFaultyNetwork runs the whole scenario over a lossy, duplicating,
// reordering network for many seeds; a failure names its seed.
func TestFaultyNetwork(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		s := newSim(t, agent.Config{Lifetime: 120 * time.Second}, seed, agenttest.Faults{Loss: 0.2, Duplicate: 0.2, Reorder: 0.3, Latency: 50 * time.Millisecond})
		s.Do(agent.CmdStart{})
		if _, ok := s.WaitEvent(agent.EventRegistered, 10*time.Minute); !ok {
			t.Fatalf("seed %d: never registered", seed)
		}
		if r := s.Server.Request(codes.PUT, "/1/0/1", []byte("90"), contentFormat(lwm2m.FormatText)); r == nil || r.Code != codes.Changed {
			t.Fatalf("seed %d: write: %v", seed, r)
		}
		s.RunFor(time.Hour)
		if n := len(s.EventsOf(agent.EventRegistered)) + len(s.EventsOf(agent.EventUpdated)); n < 30 {
			t.Errorf("seed %d: only %d registrations/updates in an hour of a 90 s lifetime", seed, n)
		}
		if len(s.EventsOf(agent.EventWrite)) != 1 {
			t.Errorf("seed %d: write applied %d times", seed, len(s.EventsOf(agent.EventWrite)))
		}
		s.Do(agent.CmdStop{})
		if _, ok := s.WaitEvent(agent.EventDeregistered, 5*time.Minute); !ok {
			t.Errorf("seed %d: no deregistered event", seed)
		}
	}
}
