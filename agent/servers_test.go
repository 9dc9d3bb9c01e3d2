package agent_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/senml"
)

// The second simulated DM server.
const (
	server2Peer = "127.0.0.2:5683"
	server2URI  = "coap://" + server2Peer
)

// twoServers returns a started simulation of an engine configured with
// the simulated server (ssid 1, lifetime 300 s) and a second one (ssid 2,
// lifetime 120 s) at server2Peer.
func twoServers(t *testing.T, cfg agent.Config) (*agenttest.Sim, *agenttest.Server) {
	t.Helper()
	if cfg.Lifetime == 0 {
		cfg.Lifetime = 300 * time.Second
	}
	if cfg.ServerURI == "" {
		cfg.ServerURI = agenttest.ServerURI
	}
	if cfg.Servers == nil {
		cfg.Servers = []agent.ServerAccount{{URI: server2URI, ShortServerID: 2, Lifetime: 120 * time.Second}}
	}
	s := newSim(t, cfg, 1, agenttest.Faults{})
	s2 := s.AddServer(server2Peer)
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	return s, s2
}

// bothRegistered runs until both servers have a registration.
func bothRegistered(t *testing.T, s *agenttest.Sim, s2 *agenttest.Server) {
	t.Helper()
	if !s.RunUntil(s.Now.Add(time.Minute), func() bool {
		st := s.Engine.Servers()
		return len(st) == 2 && st[0].Registered && st[1].Registered
	}) {
		t.Fatalf("not both registered: %+v; events %v", s.Engine.Servers(), s.Events)
	}
}

// TestMultiServerIndependentLifetimes: two servers with lifetimes of
// 300 s and 120 s each get one Register with their own lifetime and then
// Updates at their own pace on the virtual clock, to their own location.
func TestMultiServerIndependentLifetimes(t *testing.T) {
	s, s2 := twoServers(t, agent.Config{})
	bothRegistered(t, s, s2)
	for _, tt := range []struct {
		sv *agenttest.Server
		lt string
	}{{s.Server, "lt=300"}, {s2, "lt=120"}} {
		if len(tt.sv.Registers) != 1 {
			t.Fatalf("%s: registers = %d, want 1", tt.sv.Peer(), len(tt.sv.Registers))
		}
		if q := agenttest.Queries(tt.sv.Registers[0]); !slices.Contains(q, tt.lt) || !slices.Contains(q, "b=U") {
			t.Errorf("%s: register queries %v, want %s", tt.sv.Peer(), q, tt.lt)
		}
	}
	st := s.Engine.Servers()
	if st[0].ShortServerID != 1 || st[0].Location != "/rd/a1" || st[1].ShortServerID != 2 || st[1].Location != "/rd/s5683" || st[1].URI != server2URI {
		t.Errorf("servers = %+v", st)
	}
	regs := s.EventsOf(agent.EventRegistered)
	if len(regs) != 2 || regs[0].Server == regs[1].Server {
		t.Errorf("registered events = %+v, want one per server", regs)
	}
	s.RunFor(20 * time.Minute)
	// An update goes out MAX_TRANSMIT_WAIT (93 s) before a 300 s
	// lifetime ends, half-way through a 120 s one.
	n1, n2 := len(s.Server.Updates), len(s2.Updates)
	if n1 < 5 || n1 > 6 {
		t.Errorf("server 1 (lifetime 300 s): %d updates in 20 min, want 5..6", n1)
	}
	if n2 < 19 || n2 > 20 {
		t.Errorf("server 2 (lifetime 120 s): %d updates in 20 min, want 19..20", n2)
	}
	for _, u := range s2.Updates {
		if agenttest.Path(u) != "/rd/s5683" {
			t.Fatalf("server 2 got an update for %s", agenttest.Path(u))
		}
	}
	if len(s.Server.Registers) != 1 || len(s2.Registers) != 1 {
		t.Errorf("registered again: %d, %d", len(s.Server.Registers), len(s2.Registers))
	}
	// Stop de-registers from both.
	if err := s.Do(agent.CmdStop{}); err != nil {
		t.Fatal(err)
	}
	s.RunFor(time.Minute)
	if len(s.Server.Deregisters) != 1 || len(s2.Deregisters) != 1 {
		t.Errorf("deregisters = %d, %d, want 1 each", len(s.Server.Deregisters), len(s2.Deregisters))
	}
}

// TestMultiServerOneRefusing: a second server that refuses registration
// is retried with its own back-off while the first registers and
// updates undisturbed, without falling back to bootstrap; once it
// accepts, it is registered too.
func TestMultiServerOneRefusing(t *testing.T) {
	s, s2 := twoServers(t, agent.Config{BootstrapURI: agenttest.BootstrapURI, BootstrapAfterFailures: 2})
	bs := s.BootstrapServer()
	s2.RegisterCode = codes.Forbidden
	s.RunFor(10 * time.Minute)
	if !s.Engine.Registered() {
		t.Fatalf("first server not registered; events %v", s.Events)
	}
	// Back-off 60 s, 120 s, 240 s: attempts at 0, 60, 180, 420 s.
	if n := len(s2.Registers); n != 4 {
		t.Errorf("server 2 registers in 10 min = %d, want 4 (back-off)", n)
	}
	if n := len(s.Server.Updates); n < 2 {
		t.Errorf("server 1 updates = %d, want its own pace", n)
	}
	if len(bs.Requests) != 0 {
		t.Errorf("fell back to bootstrap for the second server")
	}
	failed := s.EventsOf(agent.EventRegistrationFailed)
	if len(failed) == 0 || failed[0].Server != server2URI || failed[0].Code != "4.03" {
		t.Errorf("registration_failed events = %+v", failed)
	}
	s2.RegisterCode = 0
	s.RunUntil(s.Now.Add(30*time.Minute), func() bool { return s.Engine.Servers()[1].Registered })
	if !s.Engine.Servers()[1].Registered {
		t.Errorf("server 2 never registered after accepting")
	}
	if len(s.Server.Registers) != 1 {
		t.Errorf("server 1 registered %d times", len(s.Server.Registers))
	}
}

// TestMultiServerRequestsAndObservations: each server's requests are
// answered to it, and each one's observation is notified to it alone.
func TestMultiServerRequestsAndObservations(t *testing.T) {
	s, s2 := twoServers(t, agent.Config{Device: agent.DeviceInfo{Manufacturer: "acme"}})
	bothRegistered(t, s, s2)
	for _, sv := range []*agenttest.Server{s.Server, s2} {
		r := sv.Request(codes.GET, "/3/0/0", nil)
		if r == nil || r.Code != codes.Content || string(r.Payload) != "acme" {
			t.Fatalf("%s: read /3/0/0 = %v", sv.Peer(), r)
		}
	}
	r := s2.Request(codes.GET, "/3/0/9", nil, agenttest.Uint(message.Observe, 0))
	if r == nil || r.Code != codes.Content {
		t.Fatalf("observe from server 2 = %v", r)
	}
	r = s.Server.Request(codes.GET, "/3/0/20", nil, agenttest.Uint(message.Observe, 0))
	if r == nil || r.Code != codes.Content {
		t.Fatalf("observe from server 1 = %v", r)
	}
	set(t, s, "/3/0/9", "42")
	s.RunFor(time.Second)
	if got := payloads(s2.Notifications); !slices.Equal(got, []string{"42"}) {
		t.Errorf("server 2 notifications = %q, want [42]", got)
	}
	if len(s.Server.Notifications) != 0 {
		t.Errorf("server 1 was notified of server 2's observation")
	}
	set(t, s, "/3/0/20", "5")
	s.RunFor(time.Second)
	if got := payloads(s.Server.Notifications); !slices.Equal(got, []string{"5"}) {
		t.Errorf("server 1 notifications = %q, want [5]", got)
	}
	if len(s2.Notifications) != 1 {
		t.Errorf("server 2 notifications = %d, want 1", len(s2.Notifications))
	}
	// Server 1 registering again ends its observations, not server 2's.
	s.Server.UpdateCode = codes.NotFound
	if err := s.Do(agent.CmdUpdate{}); err != nil {
		t.Fatal(err)
	}
	s.RunFor(time.Minute)
	s.Server.UpdateCode = 0
	if len(s.Server.Registers) != 2 {
		t.Fatalf("server 1 registers = %d, want 2", len(s.Server.Registers))
	}
	set(t, s, "/3/0/9", "43")
	set(t, s, "/3/0/20", "4")
	s.RunFor(time.Second)
	if got := payloads(s2.Notifications); !slices.Equal(got, []string{"42", "43"}) {
		t.Errorf("server 2 notifications = %q, want [42 43]", got)
	}
	if len(s.Server.Notifications) != 1 {
		t.Errorf("server 1 still notified after registering again")
	}
}

// TestMultiServerTriggerAndDisable: /1/x/8 updates server x alone, /1/x/4
// disables server x alone (for its /1/x/5), and a server may not execute
// another server's Server instance.
func TestMultiServerTriggerAndDisable(t *testing.T) {
	s, s2 := twoServers(t, agent.Config{})
	bothRegistered(t, s, s2)
	u1, u2 := len(s.Server.Updates), len(s2.Updates)
	if r := s2.Request(codes.POST, "/1/1/8", nil); r == nil || r.Code != codes.Changed {
		t.Fatalf("server 2 executes /1/1/8: %v", r)
	}
	s.RunFor(time.Second)
	if len(s2.Updates) != u2+1 || len(s.Server.Updates) != u1 {
		t.Errorf("after /1/1/8: updates %d, %d; want %d, %d", len(s.Server.Updates), len(s2.Updates), u1, u2+1)
	}
	if r := s.Server.Request(codes.POST, "/1/0/8", nil); r == nil || r.Code != codes.Changed {
		t.Fatalf("server 1 executes /1/0/8: %v", r)
	}
	s.RunFor(time.Second)
	if len(s2.Updates) != u2+1 || len(s.Server.Updates) != u1+1 {
		t.Errorf("after /1/0/8: updates %d, %d; want %d, %d", len(s.Server.Updates), len(s2.Updates), u1+1, u2+1)
	}
	// Server 1 has no rights on server 2's Server instance.
	if r := s.Server.Request(codes.POST, "/1/1/4", nil); r == nil || r.Code != codes.Unauthorized {
		t.Fatalf("server 1 executes /1/1/4: %v, want 4.01", r)
	}
	// Server 2 disables itself for 600 s.
	if r := s2.Request(codes.PUT, "/1/1/5", []byte("600"), agenttest.Uint(message.ContentFormat, uint32(lwm2m.FormatText))); r == nil || r.Code != codes.Changed {
		t.Fatalf("server 2 writes /1/1/5: %v", r)
	}
	if r := s2.Request(codes.POST, "/1/1/4", nil); r == nil || r.Code != codes.Changed {
		t.Fatalf("server 2 executes /1/1/4: %v", r)
	}
	s.RunFor(time.Second)
	if len(s2.Deregisters) != 1 || len(s.Server.Deregisters) != 0 {
		t.Fatalf("deregisters = %d, %d; want 0, 1", len(s.Server.Deregisters), len(s2.Deregisters))
	}
	if st := s.Engine.Servers(); !st[0].Registered || st[1].Registered {
		t.Errorf("servers after disable = %+v", st)
	}
	s.RunFor(590 * time.Second)
	if len(s2.Registers) != 1 {
		t.Errorf("server 2 registered again before its disable timeout")
	}
	s.RunFor(20 * time.Second)
	if len(s2.Registers) != 2 || !s.Engine.Servers()[1].Registered {
		t.Errorf("server 2 not registered again after its disable timeout: %d", len(s2.Registers))
	}
	// Server 2's lifetime write reaches it in an update, not server 1.
	u1 = len(s.Server.Updates)
	if r := s2.Request(codes.PUT, "/1/1/1", []byte("500"), agenttest.Uint(message.ContentFormat, uint32(lwm2m.FormatText))); r == nil || r.Code != codes.Changed {
		t.Fatalf("server 2 writes /1/1/1: %v", r)
	}
	s.RunFor(time.Second)
	last := s2.Updates[len(s2.Updates)-1]
	if !slices.Contains(agenttest.Queries(last), "lt=500") || len(s.Server.Updates) != u1 {
		t.Errorf("after writing /1/1/1: server 2's update %v, server 1 updates %d (was %d)", agenttest.Queries(last), len(s.Server.Updates), u1)
	}
	// The written lifetime outlives a restart, until the configured one
	// changes.
	n := len(s2.Registers)
	if err := s.Restart(nil); err != nil {
		t.Fatal(err)
	}
	bothRegistered(t, s, s2)
	if q := agenttest.Queries(s2.Registers[n]); !slices.Contains(q, "lt=500") {
		t.Errorf("after a restart server 2 registers with %v, want lt=500", q)
	}
	cfg := agent.Config{ServerURI: agenttest.ServerURI, Lifetime: 300 * time.Second,
		Servers: []agent.ServerAccount{{URI: server2URI, ShortServerID: 2, Lifetime: 100 * time.Second}}}
	if err := s.Restart(&cfg); err != nil {
		t.Fatal(err)
	}
	bothRegistered(t, s, s2)
	if q := agenttest.Queries(s2.Registers[len(s2.Registers)-1]); !slices.Contains(q, "lt=100") {
		t.Errorf("after configuring 100 s server 2 registers with %v, want lt=100", q)
	}
}

// TestMultiServerSend: Send goes to the server CmdSend names, the first
// one by default; an unknown server is refused.
func TestMultiServerSend(t *testing.T) {
	s, s2 := twoServers(t, agent.Config{})
	bothRegistered(t, s, s2)
	if err := s.Do(agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9)}, Server: 2}); err != nil {
		t.Fatal(err)
	}
	s.RunFor(time.Second)
	if len(s2.Sends) != 1 || len(s.Server.Sends) != 0 {
		t.Fatalf("sends = %d, %d; want 0, 1", len(s.Server.Sends), len(s2.Sends))
	}
	recs, err := senml.DecodeCBOR(lwm2m.Path{}, s2.Sends[0].Payload, nil)
	if err != nil || len(recs) != 1 || recs[0].Path != lwm2m.P(3, 0, 9) {
		t.Errorf("server 2's Send = %v, %v", recs, err)
	}
	if sent := s.EventsOf(agent.EventSent); len(sent) != 1 || sent[0].Server != server2URI {
		t.Errorf("sent events = %+v", sent)
	}
	if err := s.Do(agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9)}}); err != nil {
		t.Fatal(err)
	}
	s.RunFor(time.Second)
	if len(s2.Sends) != 1 || len(s.Server.Sends) != 1 {
		t.Errorf("sends = %d, %d; want 1, 1", len(s.Server.Sends), len(s2.Sends))
	}
	if err := s.Do(agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9)}, Server: 7}); !errors.Is(err, agent.ErrBadValue) {
		t.Errorf("send to server 7: %v, want ErrBadValue", err)
	}
}

// aclObject is a custom multiple-instance object for the Create tests.
var aclObject = lwm2m.ObjectDef{ID: 33000, Name: "acl test", Version: "1.0", Multiple: true, Resources: []lwm2m.ResourceDef{
	{ID: 1, Name: "Value", Operations: lwm2m.OpRead | lwm2m.OpWrite, Type: lwm2m.TypeInteger},
}}

func textOpt() message.Option { return agenttest.Uint(message.ContentFormat, uint32(lwm2m.FormatText)) }

func linkOpt() message.Option { return agenttest.Uint(message.Accept, uint32(lwm2m.FormatLinkFormat)) }

func senmlJSON(t *testing.T, recs ...lwm2m.Record) []byte {
	t.Helper()
	b, err := senml.EncodeJSON(lwm2m.Path{}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func senmlOpt() message.Option {
	return agenttest.Uint(message.ContentFormat, uint32(lwm2m.FormatSenMLJSON))
}

// TestACL: with two servers, every operation is checked against the
// Access Control instances: the configured ones (/3/0: owner 1, server 2
// may read and execute), the defaults (the first server owns the rest,
// the others may read; each Server instance is its server's), Create
// through the 65535 instance, and the Access Control instances
// themselves.
func TestACL(t *testing.T) {
	cfg := agent.Config{
		Objects: []lwm2m.ObjectDef{aclObject},
		AccessControl: []agent.AccessControl{
			{ObjectID: 3, InstanceID: 0, ACL: map[uint16]agent.ACLRights{2: agent.ACLRead | agent.ACLExecute}},
			{ObjectID: 33000, InstanceID: agent.ACLCreateInstance, Owner: 1, ACL: map[uint16]agent.ACLRights{2: agent.ACLCreate}},
		},
	}
	s, s2 := twoServers(t, cfg)
	bothRegistered(t, s, s2)
	s1 := s.Server
	now := []byte("1767225600")
	for _, tt := range []struct {
		name    string
		sv      *agenttest.Server
		code    codes.Code
		path    string
		payload []byte
		opts    []message.Option
		want    codes.Code
	}{
		// /3/0: server 2 reads and executes (its ACL entry), server 1
		// (the owner, without an entry) may do everything.
		{"2 reads /3/0/0", s2, codes.GET, "/3/0/0", nil, nil, codes.Content},
		{"2 reads /3/0", s2, codes.GET, "/3/0", nil, nil, codes.Content},
		{"2 discovers /3/0", s2, codes.GET, "/3/0", nil, []message.Option{linkOpt()}, codes.Content},
		{"2 writes attributes /3/0/9", s2, codes.PUT, "/3/0/9?pmin=5", nil, nil, codes.Changed},
		{"2 writes /3/0/13", s2, codes.PUT, "/3/0/13", now, []message.Option{textOpt()}, codes.Unauthorized},
		{"2 executes /3/0/12", s2, codes.POST, "/3/0/12", nil, nil, codes.Changed},
		{"1 writes /3/0/13", s1, codes.PUT, "/3/0/13", now, []message.Option{textOpt()}, codes.Changed},
		{"1 executes /3/0/12", s1, codes.POST, "/3/0/12", nil, nil, codes.Changed},
		// /4/0 by default: the first server owns it, the others read.
		{"2 reads /4/0", s2, codes.GET, "/4/0", nil, nil, codes.Content},
		// /1: each server's own instance.
		{"2 reads /1/1", s2, codes.GET, "/1/1", nil, nil, codes.Content},
		{"2 reads /1/0", s2, codes.GET, "/1/0", nil, nil, codes.Unauthorized},
		{"2 writes /1/0/2", s2, codes.PUT, "/1/0/2", []byte("1"), []message.Option{textOpt()}, codes.Unauthorized},
		{"2 writes /1/1/2", s2, codes.PUT, "/1/1/2", []byte("1"), []message.Option{textOpt()}, codes.Changed},
		{"1 reads /1/1", s1, codes.GET, "/1/1", nil, nil, codes.Unauthorized},
		{"1 observes /1/1/1", s1, codes.GET, "/1/1/1", nil, []message.Option{agenttest.Uint(message.Observe, 0)}, codes.Unauthorized},
		{"1 writes attributes /1/1/1", s1, codes.PUT, "/1/1/1?pmin=5", nil, nil, codes.Unauthorized},
		{"1 discovers /1/1", s1, codes.GET, "/1/1", nil, []message.Option{linkOpt()}, codes.Unauthorized},
		// Composite operations are checked per path.
		{"2 reads /3/0/0 and /1/0 composite", s2, codeFETCH, "/", []byte(`[{"n":"/3/0/0"},{"n":"/1/0"}]`), []message.Option{senmlOpt()}, codes.Unauthorized},
		{"2 reads /3/0/0 and /1/1 composite", s2, codeFETCH, "/", []byte(`[{"n":"/3/0/0"},{"n":"/1/1/1"}]`), []message.Option{senmlOpt()}, codes.Content},
		{"2 writes /3/0/14 composite", s2, codeIPATCH, "/", senmlJSON(t, lwm2m.Record{Path: lwm2m.P(3, 0, 14), Value: lwm2m.String("+01:00")}), []message.Option{senmlOpt()}, codes.Unauthorized},
		{"1 writes /3/0/14 composite", s1, codeIPATCH, "/", senmlJSON(t, lwm2m.Record{Path: lwm2m.P(3, 0, 14), Value: lwm2m.String("+01:00")}), []message.Option{senmlOpt()}, codes.Changed},
		// The Security object stays the bootstrap server's.
		{"1 reads /0/0", s1, codes.GET, "/0/0", nil, nil, codes.Unauthorized},
		// Access Control instances: readable by all, created by none.
		{"2 reads /2", s2, codes.GET, "/2", nil, nil, codes.Content},
		{"1 creates /2", s1, codes.POST, "/2", senmlJSON(t, lwm2m.Record{Path: lwm2m.P(2, 9, 0), Value: lwm2m.Int(3)}), []message.Option{senmlOpt()}, codes.MethodNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, query, _ := strings.Cut(tt.path, "?")
			opts := tt.opts
			if query != "" {
				opts = append(opts, message.Option{ID: message.URIQuery, Value: []byte(query)})
			}
			r := tt.sv.Request(tt.code, path, tt.payload, opts...)
			if r == nil || r.Code != tt.want {
				t.Errorf("%v %s = %v, want %v", tt.code, tt.path, r, tt.want)
			}
		})
	}
	// An object-level read covers the readable instances only.
	r := s2.Request(codes.GET, "/1", nil, agenttest.Uint(message.Accept, uint32(lwm2m.FormatSenMLJSON)))
	if r == nil || r.Code != codes.Content || strings.Contains(string(r.Payload), `"n":"0/`) || !strings.Contains(string(r.Payload), `"n":"1/0"`) {
		t.Errorf("server 2 reads /1 = %v %s", r, r.Payload)
	}
	r = s2.Request(codes.GET, "/1", nil, linkOpt())
	if r == nil || r.Code != codes.Content || strings.Contains(string(r.Payload), "</1/0>") || !strings.Contains(string(r.Payload), "</1/1>") {
		t.Errorf("server 2 discovers /1 = %v %s", r, r.Payload)
	}
}

// codeFETCH and codeIPATCH are the CoAP codes of RFC 8132.
const (
	codeFETCH  codes.Code = 5
	codeIPATCH codes.Code = 7
)

// aclEntry returns the Access Control instance governing /obj/inst as
// read by sv: its ID, ACL and owner.
func aclEntry(t *testing.T, sv *agenttest.Server, obj, inst uint16) (id uint16, acl map[uint16]int64, owner int64, found bool) {
	t.Helper()
	r := sv.Request(codes.GET, "/2", nil, agenttest.Uint(message.Accept, uint32(lwm2m.FormatSenMLJSON)))
	if r == nil || r.Code != codes.Content {
		t.Fatalf("read /2 = %v", r)
	}
	recs, err := senml.DecodeJSON(lwm2m.P(2), r.Payload, func(lwm2m.Path) lwm2m.Type { return lwm2m.TypeInteger })
	if err != nil {
		t.Fatal(err)
	}
	byInst := map[uint16]map[uint16]int64{}
	acls := map[uint16]map[uint16]int64{}
	for _, rec := range recs {
		i := rec.Path.Inst()
		if byInst[i] == nil {
			byInst[i], acls[i] = map[uint16]int64{}, map[uint16]int64{}
		}
		if rec.Path.Len == 4 {
			acls[i][rec.Path.RInst()] = rec.Value.Int
		} else {
			byInst[i][rec.Path.Res()] = rec.Value.Int
		}
	}
	for i, res := range byInst {
		if res[0] == int64(obj) && res[1] == int64(inst) {
			return i, acls[i], res[3], true
		}
	}
	return 0, nil, 0, false
}

// TestACLCreateOwner: a server allowed to Create makes an instance whose
// Access Control instance it owns: it has full access, the other server
// none; its owner alone may change that Access Control instance, and the
// change applies at once; Delete removes both.
func TestACLCreateOwner(t *testing.T) {
	cfg := agent.Config{
		Objects: []lwm2m.ObjectDef{aclObject},
		AccessControl: []agent.AccessControl{
			{ObjectID: 33000, InstanceID: agent.ACLCreateInstance, ACL: map[uint16]agent.ACLRights{2: agent.ACLCreate}},
		},
	}
	s, s2 := twoServers(t, cfg)
	bothRegistered(t, s, s2)
	s1 := s.Server
	create := func(sv *agenttest.Server, inst uint16) *message.Message {
		return sv.Request(codes.POST, "/33000", senmlJSON(t, lwm2m.Record{Path: lwm2m.P(33000, inst, 1), Value: lwm2m.Int(7)}), senmlOpt())
	}
	if r := create(s2, 0); r == nil || r.Code != codes.Created {
		t.Fatalf("server 2 creates /33000/0: %v", r)
	}
	id, acl, owner, ok := aclEntry(t, s2, 33000, 0)
	if !ok || owner != 2 || len(acl) != 0 {
		t.Fatalf("access control of /33000/0: found %v, owner %d, acl %v; want owner 2, no entries", ok, owner, acl)
	}
	if r := s2.Request(codes.PUT, "/33000/0/1", []byte("8"), textOpt()); r == nil || r.Code != codes.Changed {
		t.Errorf("owner writes /33000/0/1: %v", r)
	}
	if r := s1.Request(codes.GET, "/33000/0", nil); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("server 1 reads /33000/0: %v, want 4.01", r)
	}
	// Server 1 may not change server 2's Access Control instance.
	aclPath := lwm2m.P(2, id, 2).String()
	grant := senmlJSON(t, lwm2m.Record{Path: lwm2m.P(2, id, 2, 1), Value: lwm2m.Int(int64(agent.ACLRead))})
	if r := s1.Request(codes.POST, lwm2m.P(2, id).String(), grant, senmlOpt()); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("server 1 writes %s: %v, want 4.01", aclPath, r)
	}
	// Server 2 grants server 1 read access.
	if r := s2.Request(codes.POST, lwm2m.P(2, id).String(), grant, senmlOpt()); r == nil || r.Code != codes.Changed {
		t.Fatalf("owner writes %s: %v", aclPath, r)
	}
	if r := s1.Request(codes.GET, "/33000/0", nil); r == nil || r.Code != codes.Content {
		t.Errorf("server 1 reads /33000/0 after the grant: %v", r)
	}
	if r := s1.Request(codes.PUT, "/33000/0/1", []byte("9"), textOpt()); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("server 1 writes /33000/0/1: %v, want 4.01", r)
	}
	if r := s1.Request(codes.DELETE, "/33000/0", nil); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("server 1 deletes /33000/0: %v, want 4.01", r)
	}
	// Server 1 owns the Create instance: it may create too, and owns
	// what it creates.
	if r := create(s1, 1); r == nil || r.Code != codes.Created {
		t.Fatalf("server 1 creates /33000/1: %v", r)
	}
	if _, _, owner, ok := aclEntry(t, s1, 33000, 1); !ok || owner != 1 {
		t.Errorf("owner of /33000/1 = %d (found %v), want 1", owner, ok)
	}
	if r := s2.Request(codes.DELETE, "/33000/0", nil); r == nil || r.Code != codes.Deleted {
		t.Fatalf("owner deletes /33000/0: %v", r)
	}
	if _, _, _, ok := aclEntry(t, s2, 33000, 0); ok {
		t.Errorf("the access control instance of a deleted instance stayed")
	}
}

// TestACLCreateRefused: Create needs the create right of the object's
// 65535 instance.
func TestACLCreateRefused(t *testing.T) {
	s, s2 := twoServers(t, agent.Config{Objects: []lwm2m.ObjectDef{aclObject}})
	bothRegistered(t, s, s2)
	body := senmlJSON(t, lwm2m.Record{Path: lwm2m.P(33000, 0, 1), Value: lwm2m.Int(7)})
	if r := s2.Request(codes.POST, "/33000", body, senmlOpt()); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("server 2 creates /33000 without the right: %v, want 4.01", r)
	}
	if r := s.Server.Request(codes.POST, "/33000", body, senmlOpt()); r == nil || r.Code != codes.Created {
		t.Errorf("server 1 (owner of the create instance) creates /33000: %v", r)
	}
	// The host's instances get the default access control.
	set(t, s, "/6/0/0", "45.5")
	if r := s2.Request(codes.GET, "/6/0/0", nil); r == nil || r.Code != codes.Content {
		t.Errorf("server 2 reads the host's /6/0/0: %v", r)
	}
}

// TestSingleServerNoACL: with one server nothing is checked, /2 has no
// instances and is not registered.
func TestSingleServerNoACL(t *testing.T) {
	s := registered(t, agent.Config{Objects: []lwm2m.ObjectDef{aclObject}})
	if l := string(s.Server.Registers[0].Payload); strings.Contains(l, "</2") {
		t.Errorf("registration lists /2: %s", l)
	}
	for _, tt := range []struct {
		code    codes.Code
		path    string
		payload []byte
		opts    []message.Option
		want    codes.Code
	}{
		{codes.PUT, "/3/0/13", []byte("1767225600"), []message.Option{textOpt()}, codes.Changed},
		{codes.GET, "/1/0", nil, nil, codes.Content},
		{codes.POST, "/3/0/12", nil, nil, codes.Changed},
		{codes.POST, "/33000", senmlJSON(t, lwm2m.Record{Path: lwm2m.P(33000, 0, 1), Value: lwm2m.Int(7)}), []message.Option{senmlOpt()}, codes.Created},
		{codes.DELETE, "/33000/0", nil, nil, codes.Deleted},
		{codes.GET, "/2", nil, nil, codes.Content},
	} {
		if r := s.Server.Request(tt.code, tt.path, tt.payload, tt.opts...); r == nil || r.Code != tt.want {
			t.Errorf("%v %s = %v, want %v", tt.code, tt.path, r, tt.want)
		}
	}
	if st := s.Engine.Servers(); len(st) != 1 || !st[0].Registered {
		t.Errorf("servers = %+v", st)
	}
}

// TestMultiServerConfig: AVC_SERVER_URIS and AVC_ACL parse and print
// back; what several servers cannot do is refused.
func TestMultiServerConfig(t *testing.T) {
	var c agent.Config
	if err := c.ApplyMap(map[string]string{
		agent.EnvServerURI:  "coap://a:5683",
		agent.EnvEndpoint:   "e",
		agent.EnvServerURIs: "coap://b:5683;ssid=7;lifetime=60, coap://c",
		agent.EnvACL:        "/3/0 owner=7 2=rwe 0=r; /33000/65535 7=c",
	}); err != nil {
		t.Fatal(err)
	}
	want := []agent.ServerAccount{{URI: "coap://b:5683", ShortServerID: 7, Lifetime: time.Minute}, {URI: "coap://c"}}
	if !reflect.DeepEqual(c.Servers, want) {
		t.Errorf("servers = %+v", c.Servers)
	}
	if len(c.AccessControl) != 2 || c.AccessControl[0].Owner != 7 || c.AccessControl[0].ACL[2] != agent.ACLRead|agent.ACLWrite|agent.ACLExecute ||
		c.AccessControl[0].ACL[0] != agent.ACLRead || c.AccessControl[1].InstanceID != 65535 || c.AccessControl[1].ACL[7] != agent.ACLCreate {
		t.Errorf("access control = %+v", c.AccessControl)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
	if got, _ := c.Get(agent.EnvServerURIs); got != "coap://b:5683;ssid=7;lifetime=60,coap://c" {
		t.Errorf("get %s = %q", agent.EnvServerURIs, got)
	}
	if got, _ := c.Get(agent.EnvACL); got != "/3/0 owner=7 0=1 2=7; /33000/65535 7=16" {
		t.Errorf("get %s = %q", agent.EnvACL, got)
	}
	e, err := agent.NewEngine(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The second server without an ID got the next free one, 2.
	st := e.Servers()
	if len(st) != 3 || st[1].ShortServerID != 7 || st[2].ShortServerID != 2 {
		t.Errorf("servers = %+v", st)
	}
	for _, tt := range []struct {
		name string
		cfg  agent.Config
	}{
		{"coaps further server without a credential", agent.Config{ServerURI: "coap://a", Servers: []agent.ServerAccount{{URI: "coaps://b"}}}},
		{"coaps further server without a key", agent.Config{ServerURI: "coap://a", Servers: []agent.ServerAccount{{URI: "coaps://b", PSKIdentity: "i"}}}},
		{"coaps further server without an identity", agent.Config{ServerURI: "coap://a", Servers: []agent.ServerAccount{{URI: "coaps://b", PSKKey: []byte{1}}}}},
		{"psk for a coap server", agent.Config{ServerURI: "coap://a", Servers: []agent.ServerAccount{{URI: "coap://b", PSKIdentity: "i", PSKKey: []byte{1}}}}},
		{"queue mode", agent.Config{ServerURI: "coap://a", Binding: "UQ", Servers: []agent.ServerAccount{{URI: "coap://b"}}}},
		{"same ssid", agent.Config{ServerURI: "coap://a", Servers: []agent.ServerAccount{{URI: "coap://b", ShortServerID: 1}}}},
		{"no first server", agent.Config{BootstrapURI: "coap://bs", Servers: []agent.ServerAccount{{URI: "coap://b"}}}},
		{"acl on /0", agent.Config{ServerURI: "coap://a", AccessControl: []agent.AccessControl{{ObjectID: 0}}}},
	} {
		tt.cfg.Endpoint = "e"
		if err := tt.cfg.Validate(); !errors.Is(err, agent.ErrConfig) {
			t.Errorf("%s: validate = %v, want ErrConfig", tt.name, err)
		}
	}
	for _, bad := range []string{"coap://b;ssid=0", "coap://b;lifetime=x", "coap://b;port=1"} {
		if err := c.Set(agent.EnvServerURIs, bad); !errors.Is(err, agent.ErrConfig) {
			t.Errorf("set %s=%q: %v, want ErrConfig", agent.EnvServerURIs, bad, err)
		}
	}
	for _, bad := range []string{"/3 2=r", "/3/0 2=z", "/3/0 owner=0", "/3/0 2=99"} {
		if err := c.Set(agent.EnvACL, bad); !errors.Is(err, agent.ErrConfig) {
			t.Errorf("set %s=%q: %v, want ErrConfig", agent.EnvACL, bad, err)
		}
	}
}

// TestBootstrapSeveralServers: a bootstrap server provisions two DM
// servers and the Access Control instances; the engine registers with
// both, enforces what was written (no defaults beside it), and keeps all
// of it across a restart.
func TestBootstrapSeveralServers(t *testing.T) {
	s, bs := bootstrapSim(t, agent.Config{Endpoint: "dev-ms"})
	s2 := s.AddServer(server2Peer)
	second := agenttest.Account{Instance: 2, URI: server2URI, SSID: 102, Lifetime: 120}
	srv2 := []lwm2m.Record{
		{Path: lwm2m.P(1, 1, 0), Value: lwm2m.Int(102)},
		{Path: lwm2m.P(1, 1, 1), Value: lwm2m.Int(120)},
		{Path: lwm2m.P(1, 1, 7), Value: lwm2m.String("U")},
	}
	acl := []lwm2m.Record{
		{Path: lwm2m.P(2, 0, 0), Value: lwm2m.Int(3)},
		{Path: lwm2m.P(2, 0, 1), Value: lwm2m.Int(0)},
		{Path: lwm2m.P(2, 0, 2, 102), Value: lwm2m.Int(int64(agent.ACLRead))},
		{Path: lwm2m.P(2, 0, 3), Value: lwm2m.Int(101)},
		{Path: lwm2m.P(2, 1, 0), Value: lwm2m.Int(1)},
		{Path: lwm2m.P(2, 1, 1), Value: lwm2m.Int(1)},
		{Path: lwm2m.P(2, 1, 3), Value: lwm2m.Int(102)},
	}
	wantCodes(t, []codes.Code{
		bs.Write("/0/2", second.SecurityRecords()...),
		bs.Write("/1/1", srv2...),
		bs.Write("/2", acl...),
	}, codes.Changed, codes.Changed, codes.Changed)
	// A value out of range is refused.
	if c := bs.Write("/2/5", lwm2m.Record{Path: lwm2m.P(2, 5, 2, 1), Value: lwm2m.Int(99)}); c != codes.BadRequest {
		t.Errorf("bootstrap write of rights 99 = %v, want 4.00", c)
	}
	wantCodes(t, []codes.Code{
		bs.Write("/0/1", dmAccount.SecurityRecords()...),
		bs.Write("/1/0", dmAccount.ServerRecords()...),
		code(bs.Finish()),
	}, codes.Changed, codes.Changed, codes.Changed)
	check := func(when string) {
		t.Helper()
		bothRegistered(t, s, s2)
		if q := agenttest.Queries(s2.Registers[len(s2.Registers)-1]); !slices.Contains(q, "lt=120") {
			t.Errorf("%s: server 2 registers with %v, want lt=120", when, q)
		}
		for _, tt := range []struct {
			sv   *agenttest.Server
			code codes.Code
			path string
			want codes.Code
		}{
			{s2, codes.GET, "/3/0/0", codes.Content},
			{s2, codes.POST, "/3/0/12", codes.Unauthorized},
			{s2, codes.GET, "/4/0", codes.Unauthorized}, // no Access Control instance
			{s2, codes.GET, "/1/1", codes.Content},
			{s2, codes.GET, "/1/0", codes.Unauthorized},
			{s.Server, codes.POST, "/3/0/12", codes.Changed},
			{s.Server, codes.GET, "/1/1", codes.Unauthorized},
		} {
			if r := tt.sv.Request(tt.code, tt.path, nil); r == nil || r.Code != tt.want {
				t.Errorf("%s: %s %v %s = %v, want %v", when, tt.sv.Peer(), tt.code, tt.path, r, tt.want)
			}
		}
	}
	check("after bootstrap")
	// The owner of /2/0 grants server 2 Execute; the change outlives a
	// restart.
	grant := senmlJSON(t, lwm2m.Record{Path: lwm2m.P(2, 0, 2, 102), Value: lwm2m.Int(int64(agent.ACLRead | agent.ACLExecute))})
	if r := s.Server.Request(codes.POST, "/2/0", grant, senmlOpt()); r == nil || r.Code != codes.Changed {
		t.Fatalf("owner writes /2/0: %v", r)
	}
	// So does the lifetime server 2 writes.
	if r := s2.Request(codes.PUT, "/1/1/1", []byte("77"), textOpt()); r == nil || r.Code != codes.Changed {
		t.Fatalf("server 2 writes /1/1/1: %v", r)
	}
	if err := s.Restart(nil); err != nil {
		t.Fatal(err)
	}
	bothRegistered(t, s, s2)
	if q := agenttest.Queries(s2.Registers[len(s2.Registers)-1]); !slices.Contains(q, "lt=77") {
		t.Errorf("after a restart server 2 registers with %v, want lt=77", q)
	}
	if r := s2.Request(codes.POST, "/3/0/12", nil); r == nil || r.Code != codes.Changed {
		t.Errorf("after the grant and a restart: server 2 executes /3/0/12: %v", r)
	}
	if r := s2.Request(codes.GET, "/4/0", nil); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("after a restart: server 2 reads /4/0: %v, want 4.01", r)
	}
	if len(bs.Requests) != 1 {
		t.Errorf("bootstrapped again: %d requests", len(bs.Requests))
	}
}

func code(m *message.Message) codes.Code {
	if m == nil {
		return 0
	}
	return m.Code
}

// TestMultiServerAttributes: attributes are each server's own: server
// 2's pmin holds back its notifications, not server 1's, and each one's
// Discover shows its own.
func TestMultiServerAttributes(t *testing.T) {
	s, s2 := twoServers(t, agent.Config{})
	bothRegistered(t, s, s2)
	pmin := message.Option{ID: message.URIQuery, Value: []byte("pmin=60")}
	if r := s2.Request(codes.PUT, "/3/0/9", nil, pmin); r == nil || r.Code != codes.Changed {
		t.Fatalf("server 2 writes attributes: %v", r)
	}
	for _, sv := range []*agenttest.Server{s.Server, s2} {
		if r := sv.Request(codes.GET, "/3/0/9", nil, agenttest.Uint(message.Observe, 0)); r == nil || r.Code != codes.Content {
			t.Fatalf("%s observes /3/0/9: %v", sv.Peer(), r)
		}
	}
	set(t, s, "/3/0/9", "70")
	s.RunFor(time.Second)
	if got := payloads(s.Server.Notifications); !slices.Equal(got, []string{"70"}) {
		t.Errorf("server 1 notifications = %q, want [70] at once", got)
	}
	if len(s2.Notifications) != 0 {
		t.Errorf("server 2 notified within its pmin")
	}
	s.RunFor(time.Minute)
	if got := payloads(s2.Notifications); !slices.Equal(got, []string{"70"}) {
		t.Errorf("server 2 notifications = %q, want [70] after pmin", got)
	}
	for _, tt := range []struct {
		sv   *agenttest.Server
		want bool
	}{{s.Server, false}, {s2, true}} {
		r := tt.sv.Request(codes.GET, "/3/0/9", nil, linkOpt())
		if r == nil || strings.Contains(string(r.Payload), "pmin=60") != tt.want {
			t.Errorf("%s discovers /3/0/9: %v %s", tt.sv.Peer(), r, r.Payload)
		}
	}
}

// TestACLFirmwarePush: a package pushed block-wise to /5/0/0 streams into
// storage beside serve; access control still applies to it.
func TestACLFirmwarePush(t *testing.T) {
	s, s2 := twoServers(t, agent.Config{Firmware: agent.FirmwareConfig{Handler: &agenttest.Flash{Running: "1.0.0"}}})
	bothRegistered(t, s, s2)
	block := make([]byte, 1024)
	cf := agenttest.Uint(message.ContentFormat, 42)
	if r := s2.Request(codes.PUT, "/5/0/0", block, cf, agenttest.Block(message.Block1, 0, true, 6)); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("server 2 pushes a block to /5/0/0: %v, want 4.01", r)
	}
	if r := s.Server.Request(codes.PUT, "/5/0/0", block, cf, agenttest.Block(message.Block1, 0, true, 6)); r == nil || r.Code != codes.Continue {
		t.Errorf("server 1 pushes a block to /5/0/0: %v, want 2.31", r)
	}
}
