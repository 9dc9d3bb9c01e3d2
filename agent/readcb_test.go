package agent_test

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// sensorObject is a custom object whose resources 1 (a temperature) and
// 3 (a multiple counter) are read on demand; 2 (a label) is stored.
func sensorObject() lwm2m.ObjectDef {
	return lwm2m.ObjectDef{ID: 33000, Name: "Sensor", Version: "1.0", Resources: []lwm2m.ResourceDef{
		{ID: 1, Name: "Temperature", Operations: lwm2m.OpRead, Type: lwm2m.TypeFloat, OnRead: true},
		{ID: 2, Name: "Label", Operations: lwm2m.OpRead, Type: lwm2m.TypeString},
		{ID: 3, Name: "Counts", Operations: lwm2m.OpRead, Type: lwm2m.TypeInteger, Multiple: true, OnRead: true},
	}}
}

// readCBSim returns a registered simulation with the sensor object and
// its stored values: temperature 1.5, label "lab", counts {0: 10}.
// awaitReadRequest runs s until the engine asks the host for values and
// returns that event.
func awaitReadRequest(t *testing.T, s *agenttest.Sim) agent.Event {
	t.Helper()
	ev, ok := s.WaitEvent(agent.EventReadRequest, time.Second)
	if !ok {
		t.Fatal("no read request")
	}
	return ev
}

// readDone tells the engine the host has set the values ev asked for.
func readDone(t *testing.T, s *agenttest.Sim, ev agent.Event) {
	t.Helper()
	if err := s.Do(agent.CmdReadDone{Token: ev.Token}); err != nil {
		t.Fatal(err)
	}
}

func readCBSim(t *testing.T, timeout time.Duration) *agenttest.Sim {
	t.Helper()
	s := registered(t, agent.Config{Objects: []lwm2m.ObjectDef{sensorObject()}, ReadTimeout: timeout, Lifetime: time.Hour})
	for path, v := range map[string]string{"/33000/0/1": "1.5", "/33000/0/2": "lab", "/33000/0/3/0": "10"} {
		setValue(t, s, path, v)
	}
	return s
}

func setValue(t *testing.T, s *agenttest.Sim, path, v string) {
	t.Helper()
	p, err := lwm2m.ParsePath(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Do(agent.CmdSet{Path: p, Value: lwm2m.String(v)}); err != nil {
		t.Fatalf("set %s: %v", path, err)
	}
}

// rawRequest puts a request from the server on the wire without waiting
// for its answer, and returns its token.
func rawRequest(s *agenttest.Sim, typ message.Type, mid uint16, tok uint64, code codes.Code, path string, payload []byte, opts ...message.Option) []byte {
	var tb [8]byte
	binary.BigEndian.PutUint64(tb[:], tok)
	m := message.Message{Type: typ, Code: code, MessageID: int32(mid), Token: tb[:], Options: make(message.Options, 0, 8), Payload: payload}
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg != "" {
			m.Options = m.Options.Add(message.Option{ID: message.URIPath, Value: []byte(seg)})
		}
	}
	for _, o := range opts {
		m.Options = m.Options.Add(o)
	}
	n, _ := coder.DefaultCoder.Size(m)
	b := make([]byte, n)
	if _, err := coder.DefaultCoder.Encode(m, b); err != nil {
		panic(err)
	}
	s.SendFrom(agenttest.ServerPeer, b)
	return tb[:]
}

// toServer returns the messages the engine sent the server since wire
// index from that keep accepts.
func toServer(s *agenttest.Sim, from int, keep func(*message.Message) bool) []*message.Message {
	var out []*message.Message
	for _, w := range s.Wire[from:] {
		if !w.ToAgent && w.Msg != nil && keep(w.Msg) {
			out = append(out, w.Msg)
		}
	}
	return out
}

func emptyACK(mid uint16) func(*message.Message) bool {
	return func(m *message.Message) bool {
		return m.Type == message.Acknowledgement && m.Code == codes.Empty && uint16(m.MessageID) == mid
	}
}

func withToken(tok []byte) func(*message.Message) bool {
	return func(m *message.Message) bool { return m.Code != codes.Empty && string(m.Token) == string(tok) }
}

// TestReadCallback: a read covering on-demand resources is acknowledged
// empty, the host is asked for their values, and the response it then
// gets separately (CON, the request's token) carries the host's values.
func TestReadCallback(t *testing.T) {
	senmlPaths := `[{"n":"/33000/0/1"},{"n":"/3/0/0"},{"n":"/33000/0"}]`
	tests := []struct {
		name    string
		code    codes.Code
		path    string
		payload string
		opts    []message.Option
		paths   []string // EventReadRequest.Paths
		evPath  string
		want    []string // in the separate response's payload
		decode  bool     // TLV: check the records instead
	}{
		{name: "resource", code: codes.GET, path: "/33000/0/1", opts: []message.Option{accept(lwm2m.FormatText)},
			paths: []string{"/33000/0/1"}, evPath: "/33000/0/1", want: []string{"21.25"}},
		{name: "resource instance", code: codes.GET, path: "/33000/0/3/0", opts: []message.Option{accept(lwm2m.FormatText)},
			paths: []string{"/33000/0/3/0"}, evPath: "/33000/0/3/0", want: []string{"11"}},
		{name: "instance", code: codes.GET, path: "/33000/0",
			paths: []string{"/33000/0/1", "/33000/0/3"}, evPath: "/33000/0", decode: true},
		{name: "object", code: codes.GET, path: "/33000", opts: []message.Option{accept(lwm2m.FormatSenMLJSON)},
			paths: []string{"/33000/0/1", "/33000/0/3"}, evPath: "/33000", want: []string{`"v":21.25`, `"vs":"lab"`, `"v":11`}},
		{name: "composite", code: codeFetch, path: "/", payload: senmlPaths, opts: []message.Option{contentFormat(lwm2m.FormatSenMLJSON)},
			paths: []string{"/33000/0/1", "/33000/0/3"}, evPath: "/", want: []string{`"v":21.25`, `"vs":"avc"`, `"v":11`}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := readCBSim(t, 0)
			from, nev := len(s.Wire), len(s.Events)
			mid := uint16(0x4000 + i)
			tok := rawRequest(s, message.Confirmable, mid, uint64(0x77000+i), tt.code, tt.path, []byte(tt.payload), tt.opts...)
			ev, ok := s.WaitEvent(agent.EventReadRequest, time.Second)
			if !ok {
				t.Fatalf("no read request; events %v wire %v", s.Events[nev:], toServer(s, from, func(*message.Message) bool { return true }))
			}
			if !slices.Equal(ev.Paths, tt.paths) || ev.Path != tt.evPath || ev.Token == 0 {
				t.Errorf("event paths %v path %q token %d, want %v %q", ev.Paths, ev.Path, ev.Token, tt.paths, tt.evPath)
			}
			s.RunFor(time.Second)
			if n := len(toServer(s, from, emptyACK(mid))); n != 1 {
				t.Errorf("%d empty ACKs of the request, want 1", n)
			}
			if r := toServer(s, from, withToken(tok)); len(r) != 0 {
				t.Fatalf("answered before the host completed: %v", r[0])
			}
			setValue(t, s, "/33000/0/1", "21.25")
			setValue(t, s, "/33000/0/3/0", "11")
			readDone(t, s, ev)
			s.RunFor(time.Second)
			rs := toServer(s, from, withToken(tok))
			if len(rs) != 1 {
				t.Fatalf("%d responses with the request's token, want 1", len(rs))
			}
			r := rs[0]
			if r.Type != message.Confirmable || r.Code != codes.Content || uint16(r.MessageID) == mid {
				t.Errorf("response %v %v mid %d, want a CON 2.05 with a new message ID", r.Type, r.Code, r.MessageID)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(r.Payload), w) {
					t.Errorf("payload %q lacks %q", r.Payload, w)
				}
			}
			if tt.decode {
				p, _ := lwm2m.ParsePath(tt.path)
				recs, err := tlv.Decode(p, r.Payload, func(p lwm2m.Path) lwm2m.Type {
					return map[uint16]lwm2m.Type{1: lwm2m.TypeFloat, 2: lwm2m.TypeString, 3: lwm2m.TypeInteger}[p.Res()]
				})
				if err != nil || len(recs) != 3 || recs[0].Value.Float != 21.25 || recs[2].Value.Int != 11 {
					t.Errorf("TLV records %v, %v; want temperature 21.25, label, count 11", recs, err)
				}
			}
			if err := s.Do(agent.CmdReadDone{Token: ev.Token}); !errors.Is(err, agent.ErrBadValue) {
				t.Errorf("completing the token twice = %v, want ErrBadValue", err)
			}
		})
	}
}

// TestReadCallbackNotNeeded: requests that read no on-demand resource,
// and Discover, are answered at once, without asking the host.
func TestReadCallbackNotNeeded(t *testing.T) {
	s := readCBSim(t, 0)
	for _, tt := range []struct {
		path string
		opt  message.Option
		want codes.Code
	}{
		{"/33000/0/2", accept(lwm2m.FormatText), codes.Content},
		{"/33000/0", accept(lwm2m.FormatLinkFormat), codes.Content},
		{"/33000/1/1", accept(lwm2m.FormatText), codes.NotFound},
		{"/3/0/9", accept(lwm2m.FormatText), codes.Content},
	} {
		r := s.Server.Request(codes.GET, tt.path, nil, tt.opt)
		if r == nil || r.Type != message.Acknowledgement || r.Code != tt.want {
			t.Errorf("GET %s = %v, want a piggybacked %v", tt.path, r, tt.want)
		}
	}
	if evs := s.EventsOf(agent.EventReadRequest); len(evs) != 0 {
		t.Errorf("read requests %v, want none", evs)
	}
}

// TestReadCallbackHostAnswers: a host that answers the event at once (as
// the drivers do) gives the server its value through an ordinary Request.
func TestReadCallbackHostAnswers(t *testing.T) {
	s := readCBSim(t, 0)
	s.OnEvent = func(ev agent.Event) {
		if ev.Kind != agent.EventReadRequest {
			return
		}
		setValue(t, s, "/33000/0/1", "-4")
		if err := s.Do(agent.CmdReadDone{Token: ev.Token}); err != nil {
			t.Error(err)
		}
	}
	r := s.Server.Request(codes.GET, "/33000/0/1", nil, accept(lwm2m.FormatText))
	if r == nil || r.Code != codes.Content || string(r.Payload) != "-4" {
		t.Fatalf("read = %v, want 2.05 -4", r)
	}
}

// TestReadCallbackTimeout: without the host's completion the engine
// answers from its stored values once Config.ReadTimeout has passed.
func TestReadCallbackTimeout(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{
		{"default", 0, agent.DefaultReadTimeout},
		{"configured", 2 * time.Second, 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := readCBSim(t, tt.timeout)
			from := len(s.Wire)
			sentAt := s.Now
			tok := rawRequest(s, message.Confirmable, 0x5000, 0x5001, codes.GET, "/33000/0/1", nil, accept(lwm2m.FormatText))
			if _, ok := s.WaitEvent(agent.EventReadRequest, time.Second); !ok {
				t.Fatal("no read request")
			}
			s.RunUntil(s.Now.Add(time.Minute), func() bool { return len(toServer(s, from, withToken(tok))) > 0 })
			var at time.Time
			for _, w := range s.Wire[from:] {
				if !w.ToAgent && w.Msg != nil && withToken(tok)(w.Msg) {
					at = w.At
					if string(w.Msg.Payload) != "1.5" || w.Msg.Code != codes.Content {
						t.Errorf("response %v %q, want the stored 1.5", w.Msg.Code, w.Msg.Payload)
					}
					break
				}
			}
			if d := at.Sub(sentAt); d < tt.want || d > tt.want+time.Second {
				t.Errorf("answered after %v, want about %v", d, tt.want)
			}
		})
	}
}

// TestReadCallbackDuplicate: a retransmitted request gets the empty ACK
// again, not a second event or a second response.
func TestReadCallbackDuplicate(t *testing.T) {
	s := readCBSim(t, 0)
	from := len(s.Wire)
	tok := rawRequest(s, message.Confirmable, 0x6000, 0x6001, codes.GET, "/33000/0/1", nil, accept(lwm2m.FormatText))
	ev := awaitReadRequest(t, s)
	s.RunFor(time.Second)
	rawRequest(s, message.Confirmable, 0x6000, 0x6001, codes.GET, "/33000/0/1", nil, accept(lwm2m.FormatText))
	s.RunFor(time.Second)
	if n := len(toServer(s, from, emptyACK(0x6000))); n != 2 {
		t.Errorf("%d empty ACKs, want 2 (one per copy)", n)
	}
	if evs := s.EventsOf(agent.EventReadRequest); len(evs) != 1 {
		t.Errorf("%d read requests, want 1", len(evs))
	}
	readDone(t, s, ev)
	s.RunFor(time.Second)
	rawRequest(s, message.Confirmable, 0x6000, 0x6001, codes.GET, "/33000/0/1", nil, accept(lwm2m.FormatText))
	s.RunFor(10 * time.Second)
	if n := len(toServer(s, from, withToken(tok))); n != 1 {
		t.Errorf("%d responses, want 1", n)
	}
	if n := len(toServer(s, from, emptyACK(0x6000))); n != 3 {
		t.Errorf("%d empty ACKs after a late duplicate, want 3", n)
	}
}

// TestReadCallbackRetransmit: the separate response is retransmitted
// until the server acknowledges it, then no more.
func TestReadCallbackRetransmit(t *testing.T) {
	s := readCBSim(t, 0)
	s.Server.IgnoreNotifications = true // leaves CON responses unacknowledged too
	from := len(s.Wire)
	tok := rawRequest(s, message.Confirmable, 0x7000, 0x7001, codes.GET, "/33000/0/1", nil, accept(lwm2m.FormatText))
	ev := awaitReadRequest(t, s)
	readDone(t, s, ev)
	s.RunFor(7 * time.Second) // the first timeout is 2..3 s, the second twice that
	n := len(toServer(s, from, withToken(tok)))
	if n < 2 {
		t.Fatalf("%d transmissions of the unacknowledged response, want retransmissions", n)
	}
	rs := toServer(s, from, withToken(tok))
	for _, r := range rs[1:] {
		if r.MessageID != rs[0].MessageID || r.Type != message.Confirmable {
			t.Errorf("retransmission %v mid %d, want CON mid %d", r.Type, r.MessageID, rs[0].MessageID)
		}
	}
	s.Server.IgnoreNotifications = false
	s.RunFor(30 * time.Second)
	acked := len(toServer(s, from, withToken(tok)))
	s.RunFor(2 * time.Minute)
	if m := len(toServer(s, from, withToken(tok))); m != acked {
		t.Errorf("%d transmissions after the ACK, want none past %d", m, acked)
	}
}

// TestReadCallbackObserve: an Observe registration's first response waits
// for the host; notifications then carry the stored values without
// asking again.
func TestReadCallbackObserve(t *testing.T) {
	s := readCBSim(t, 0)
	from := len(s.Wire)
	tok := rawRequest(s, message.Confirmable, 0x7100, 0x7101, codes.GET, "/33000/0/1", nil, accept(lwm2m.FormatText), observeOpt(0))
	ev := awaitReadRequest(t, s)
	setValue(t, s, "/33000/0/1", "30")
	readDone(t, s, ev)
	s.RunFor(time.Second)
	rs := toServer(s, from, withToken(tok))
	if len(rs) != 1 || string(rs[0].Payload) != "30" {
		t.Fatalf("first responses %v, want one with 30", rs)
	}
	if _, err := rs[0].Options.Observe(); err != nil {
		t.Errorf("the first response lacks Observe: %v", err)
	}
	setValue(t, s, "/33000/0/1", "31")
	s.RunFor(5 * time.Second)
	rs = toServer(s, from, withToken(tok))
	if len(rs) != 2 || string(rs[1].Payload) != "31" {
		t.Fatalf("after a change: %d messages, want a notification with 31", len(rs))
	}
	if evs := s.EventsOf(agent.EventReadRequest); len(evs) != 1 {
		t.Errorf("%d read requests, want 1 (notifications use stored values)", len(evs))
	}
}

// TestReadCallbackNON: a non-confirmable read gets no ACK and a
// non-confirmable response.
func TestReadCallbackNON(t *testing.T) {
	s := readCBSim(t, 0)
	from := len(s.Wire)
	tok := rawRequest(s, message.NonConfirmable, 0x7200, 0x7201, codes.GET, "/33000/0/1", nil, accept(lwm2m.FormatText))
	ev := awaitReadRequest(t, s)
	readDone(t, s, ev)
	s.RunFor(time.Second)
	if n := len(toServer(s, from, emptyACK(0x7200))); n != 0 {
		t.Errorf("%d ACKs of a NON request", n)
	}
	rs := toServer(s, from, withToken(tok))
	if len(rs) != 1 || rs[0].Type != message.NonConfirmable || string(rs[0].Payload) != "1.5" {
		t.Errorf("responses %v, want one NON with 1.5", rs)
	}
}

func TestReadCallbackConfig(t *testing.T) {
	obj := sensorObject()
	obj.Resources[1].OnRead = true
	obj.Resources[1].Operations = lwm2m.OpWrite
	_, err := agent.NewEngine(agent.Config{ServerURI: "coap://x", Endpoint: "e", Objects: []lwm2m.ObjectDef{obj}}, nil)
	if !errors.Is(err, agent.ErrConfig) || !strings.Contains(err.Error(), "not readable") {
		t.Errorf("OnRead on a write-only resource = %v, want ErrConfig", err)
	}
	var c agent.Config
	for _, tt := range []struct {
		value string
		ok    bool
	}{{"3", true}, {"0", false}, {"94", false}, {"x", false}} {
		if err := c.Set(agent.EnvReadTimeout, tt.value); (err == nil) != tt.ok {
			t.Errorf("Set(%s, %q) = %v", agent.EnvReadTimeout, tt.value, err)
		}
	}
	if v, _ := c.Get(agent.EnvReadTimeout); v != "3" {
		t.Errorf("Get = %q, want 3", v)
	}
}

func TestParseCommandReadDone(t *testing.T) {
	c, err := agent.ParseCommand([]byte(`{"cmd":"read_done","token":42}`))
	if err != nil || c != (agent.CmdReadDone{Token: 42}) {
		t.Errorf("= %#v, %v; want CmdReadDone{42}", c, err)
	}
}
