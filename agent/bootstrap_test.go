package agent_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"log/slog"
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

// dmAccount is the DM server the simulated bootstrap server provisions:
// the simulation's scripted server.
var dmAccount = agenttest.Account{Instance: 1, URI: agenttest.ServerURI, SSID: 101, Lifetime: 300}

// bootstrapSim returns a started simulation of an engine configured with
// cfg (its BootstrapURI defaulting to the simulated bootstrap server)
// whose Bootstrap-Request has arrived.
func bootstrapSim(t *testing.T, cfg agent.Config) (*agenttest.Sim, *agenttest.BootstrapServer) {
	t.Helper()
	if cfg.BootstrapURI == "" {
		cfg.BootstrapURI = agenttest.BootstrapURI
	}
	s := newSim(t, cfg, 1, agenttest.Faults{})
	bs := s.BootstrapServer()
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if !bs.AwaitRequest(time.Minute) {
		t.Fatalf("no Bootstrap-Request; events %v", s.Events)
	}
	return s, bs
}

func wantCodes(t *testing.T, got []codes.Code, want ...codes.Code) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("response codes %v, want %v", got, want)
	}
}

// TestBootstrapFactory: an engine configured with nothing but
// AVC_BOOTSTRAP_URI sends a Bootstrap-Request, takes the DM server the
// bootstrap server writes, and registers with it, with the lifetime
// written to /1/0/1.
func TestBootstrapFactory(t *testing.T) {
	s, bs := bootstrapSim(t, agent.Config{Endpoint: "dev-bs"})
	m := bs.Requests[0]
	if agenttest.Path(m) != "/bs" || m.Code != codes.POST || !slices.Contains(agenttest.Queries(m), "ep=dev-bs") {
		t.Fatalf("Bootstrap-Request = %v %s %v", m.Code, agenttest.Path(m), agenttest.Queries(m))
	}
	if got := s.EventsOf(agent.EventBootstrapStarted); len(got) != 1 || got[0].Server != agenttest.BootstrapURI {
		t.Errorf("bootstrap_started events = %+v", got)
	}
	if tg := s.Engine.Target(); !tg.Bootstrap || tg.Peer != agenttest.BootstrapPeer {
		t.Errorf("target while bootstrapping = %+v", tg)
	}
	if len(s.Server.Registers) != 0 {
		t.Fatal("registered before Bootstrap-Finish")
	}
	wantCodes(t, bs.Provision(dmAccount), codes.Deleted, codes.Changed, codes.Changed, codes.Changed)
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatalf("not registered after bootstrap; events %v", s.Events)
	}
	if len(s.EventsOf(agent.EventBootstrapFinished)) != 1 {
		t.Error("no bootstrap_finished event")
	}
	if q := agenttest.Queries(s.Server.Registers[0]); !slices.Contains(q, "lt=300") || !slices.Contains(q, "ep=dev-bs") {
		t.Errorf("Register queries %v; want lt=300 and ep=dev-bs", q)
	}
	if tg := s.Engine.Target(); tg.Bootstrap || tg.URI != agenttest.ServerURI {
		t.Errorf("target after bootstrap = %+v", tg)
	}
	if got := s.Engine.ServerURI(); got != agenttest.ServerURI {
		t.Errorf("ServerURI() = %q", got)
	}
	if r := s.Server.Request(codes.GET, "/1/0/1", nil); r == nil || string(r.Payload) != "300" {
		t.Errorf("DM read of /1/0/1 = %v, want 300", r)
	}
	if r := s.Server.Request(codes.GET, "/1/0/0", nil); r == nil || string(r.Payload) != "101" {
		t.Errorf("DM read of /1/0/0 = %v, want 101", r)
	}
	// The DM server may not read the Security object the bootstrap
	// server wrote.
	if r := s.Server.Request(codes.GET, "/0/1", nil); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("DM read of /0/1 = %v, want 4.01", r)
	}
}

// TestBootstrapHoldOff: the Bootstrap-Request waits for the Client Hold
// Off Time, on the virtual clock.
func TestBootstrapHoldOff(t *testing.T) {
	for _, hold := range []time.Duration{0, 30 * time.Second, 10 * time.Minute} {
		t.Run(hold.String(), func(t *testing.T) {
			s := newSim(t, agent.Config{BootstrapURI: agenttest.BootstrapURI, BootstrapHoldOff: hold}, 1, agenttest.Faults{})
			bs := s.BootstrapServer()
			start := s.Now
			if err := s.Do(agent.CmdStart{}); err != nil {
				t.Fatal(err)
			}
			if !bs.AwaitRequest(hold + time.Minute) {
				t.Fatal("no Bootstrap-Request")
			}
			reqs := s.WireTo(false, func(m *message.Message) bool { return agenttest.Path(m) == "/bs" })
			if got := reqs[0].At.Sub(start); got != hold {
				t.Errorf("Bootstrap-Request sent %v after start, want %v", got, hold)
			}
		})
	}
}

// TestServerInitiatedBootstrap: during the hold-off, the bootstrap server
// provisions the client by itself; the client never sends a
// Bootstrap-Request and registers with the server it was given. A
// registered client also accepts a bootstrap session the bootstrap
// server starts, and registers again afterwards.
func TestServerInitiatedBootstrap(t *testing.T) {
	s := newSim(t, agent.Config{BootstrapURI: agenttest.BootstrapURI, BootstrapHoldOff: time.Hour}, 1, agenttest.Faults{})
	bs := s.BootstrapServer()
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	s.RunFor(time.Minute)
	wantCodes(t, bs.Provision(dmAccount), codes.Deleted, codes.Changed, codes.Changed, codes.Changed)
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatalf("not registered; events %v", s.Events)
	}
	s.RunFor(2 * time.Hour)
	if len(bs.Requests) != 0 {
		t.Fatalf("%d Bootstrap-Requests after a server-initiated bootstrap", len(bs.Requests))
	}
	if n := len(s.EventsOf(agent.EventBootstrapStarted)); n != 1 {
		t.Errorf("bootstrap_started events = %d, want 1", n)
	}

	// Registered: a new session from the bootstrap server changes the
	// lifetime; the client registers anew with it.
	a := dmAccount
	a.Lifetime = 600
	wantCodes(t, bs.Provision(a), codes.Deleted, codes.Changed, codes.Changed, codes.Changed)
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("not registered after the second bootstrap")
	}
	if q := agenttest.Queries(s.Server.Registers[len(s.Server.Registers)-1]); !slices.Contains(q, "lt=600") {
		t.Errorf("Register queries %v, want lt=600", q)
	}
	if n := len(s.EventsOf(agent.EventBootstrapStarted)); n != 2 {
		t.Errorf("bootstrap_started events = %d, want 2", n)
	}
}

// TestBootstrapDeleteKeepsBootstrapAccount: Bootstrap-Delete of "/" and of
// /0 removes every account but the bootstrap server's own, which cannot
// be deleted (4.00).
func TestBootstrapDeleteKeepsBootstrapAccount(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		want       codes.Code
		keep, gone []string
	}{
		{"root", "/", codes.Deleted, []string{"</0/1>", "</3/0>"}, []string{"</0/0>", "</1/0>"}},
		{"security object", "/0", codes.Deleted, []string{"</0/1>", "</1/0>"}, []string{"</0/0>"}},
		{"server object", "/1", codes.Deleted, []string{"</0/0>", "</0/1>"}, []string{"</1/0>"}},
		{"dm account", "/0/0", codes.Deleted, []string{"</0/1>", "</1/0>"}, []string{"</0/0>"}},
		{"bootstrap account", "/0/1", codes.BadRequest, []string{"</0/0>", "</0/1>", "</1/0>"}, nil},
		{"device", "/3/0", codes.BadRequest, []string{"</3/0>"}, nil},
		{"resource", "/1/0/1", codes.BadRequest, []string{"</1/0>"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A factory DM account (/0/0, /1/0) that refuses, then the
			// fallback to the bootstrap account (/0/1).
			s := newSim(t, agent.Config{ServerURI: agenttest.ServerURI, BootstrapURI: agenttest.BootstrapURI, BootstrapAfterFailures: 1}, 1, agenttest.Faults{})
			bs := s.BootstrapServer()
			s.Server.RegisterCode = codes.Forbidden
			if err := s.Do(agent.CmdStart{}); err != nil {
				t.Fatal(err)
			}
			if !bs.AwaitRequest(time.Minute) {
				t.Fatal("no Bootstrap-Request")
			}
			if r := bs.Request(codes.DELETE, tt.path, nil); r == nil || r.Code != tt.want {
				t.Fatalf("Bootstrap-Delete %s = %v, want %v", tt.path, r, tt.want)
			}
			r := bs.Request(codes.GET, "/", nil, agenttest.Uint(message.Accept, uint32(lwm2m.FormatLinkFormat)))
			if r == nil || r.Code != codes.Content {
				t.Fatalf("Bootstrap-Discover = %v", r)
			}
			links := string(r.Payload) + ","
			for _, k := range tt.keep {
				if !strings.Contains(links, k+",") && !strings.Contains(links, k+";") {
					t.Errorf("after delete %s, %q lacks %s", tt.path, links, k)
				}
			}
			for _, g := range tt.gone {
				if strings.Contains(links, g) {
					t.Errorf("after delete %s, %q still has %s", tt.path, links, g)
				}
			}
		})
	}
}

// TestBootstrapFinishConsistency: Bootstrap-Finish without a usable DM
// server account is answered 4.06 and the client does not register; the
// bootstrap server may then complete the configuration and finish again.
func TestBootstrapFinishConsistency(t *testing.T) {
	tests := []struct {
		name  string
		write func(bs *agenttest.BootstrapServer) []codes.Code
		why   string
	}{
		{"nothing provisioned", func(bs *agenttest.BootstrapServer) []codes.Code { return nil }, "no LwM2M Server account"},
		{"no server instance", func(bs *agenttest.BootstrapServer) []codes.Code {
			return []codes.Code{bs.Write("/0/1", dmAccount.SecurityRecords()...)}
		}, "no /1 instance with Short Server ID 101"},
		{"short server IDs differ", func(bs *agenttest.BootstrapServer) []codes.Code {
			other := dmAccount
			other.SSID = 7
			return []codes.Code{bs.Write("/0/1", dmAccount.SecurityRecords()...), bs.Write("/1/0", other.ServerRecords()...)}
		}, "no /1 instance with Short Server ID 101"},
		{"coaps without DTLS in this driver", func(bs *agenttest.BootstrapServer) []codes.Code {
			sec := dmAccount
			sec.URI, sec.PSKIdentity, sec.PSKKey = "coaps://127.0.0.1:5684", "id", []byte{1, 2, 3}
			return []codes.Code{bs.Write("/0/1", sec.SecurityRecords()...), bs.Write("/1/0", dmAccount.ServerRecords()...)}
		}, "coaps is supported only by the native agent"},
		{"nosec mode on coaps", func(bs *agenttest.BootstrapServer) []codes.Code {
			sec := dmAccount
			sec.URI = "coaps://127.0.0.1:5684"
			return []codes.Code{bs.Write("/0/1", sec.SecurityRecords()...), bs.Write("/1/0", dmAccount.ServerRecords()...)}
		}, "security mode 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, bs := bootstrapSim(t, agent.Config{})
			for i, c := range tt.write(bs) {
				if c != codes.Changed {
					t.Fatalf("write %d = %v", i, c)
				}
			}
			r := bs.Finish()
			if r == nil || r.Code != codes.NotAcceptable {
				t.Fatalf("Bootstrap-Finish = %v, want 4.06", r)
			}
			if !strings.Contains(string(r.Payload), tt.why) {
				t.Errorf("4.06 payload %q lacks %q", r.Payload, tt.why)
			}
			s.RunFor(time.Minute)
			if len(s.Server.Registers) != 0 || len(s.EventsOf(agent.EventBootstrapFinished)) != 0 {
				t.Fatal("registered after a refused Bootstrap-Finish")
			}
			// Completed, the same session finishes.
			wantCodes(t, bs.Provision(dmAccount), codes.Deleted, codes.Changed, codes.Changed, codes.Changed)
			if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
				t.Fatal("not registered after the corrected Bootstrap-Finish")
			}
		})
	}
}

// TestBootstrapWriteAndRead: Bootstrap-Write in TLV, SenML-JSON and text
// on /0, /1 and another object; refused values change nothing;
// Bootstrap-Read is for /1 only (and /2); Bootstrap-Discover reports the
// accounts.
func TestBootstrapWriteAndRead(t *testing.T) {
	s, bs := bootstrapSim(t, agent.Config{})
	if c := bs.Write("/0", dmAccount.SecurityRecords()...); c != codes.Changed {
		t.Fatalf("TLV write of /0 = %v", c)
	}
	srv, err := senml.EncodeJSON(lwm2m.P(1, 0), dmAccount.ServerRecords())
	if err != nil {
		t.Fatal(err)
	}
	if r := bs.Request(codes.PUT, "/1/0", srv, contentFormat(lwm2m.FormatSenMLJSON)); r == nil || r.Code != codes.Changed {
		t.Fatalf("SenML write of /1/0 = %v", r)
	}
	if r := bs.Request(codes.PUT, "/3/0/15", []byte("Europe/Paris"), contentFormat(lwm2m.FormatText)); r == nil || r.Code != codes.Changed {
		t.Fatalf("text write of /3/0/15 = %v", r)
	}
	// Refused: a second bootstrap account, a short server ID out of
	// range, a lifetime of 0.
	refused := []struct {
		path string
		recs []lwm2m.Record
	}{
		{"/0/5", []lwm2m.Record{{Path: lwm2m.P(0, 5, 0), Value: lwm2m.String("coap://127.0.0.1:9")}, {Path: lwm2m.P(0, 5, 1), Value: lwm2m.Bool(true)}}},
		{"/0/1", []lwm2m.Record{{Path: lwm2m.P(0, 1, 10), Value: lwm2m.Int(65535)}}},
		{"/1/0", []lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(0)}}},
	}
	for _, r := range refused {
		if c := bs.Write(r.path, r.recs...); c != codes.BadRequest {
			t.Errorf("write %s %v = %v, want 4.00", r.path, r.recs, c)
		}
	}
	for _, tt := range []struct {
		path string
		want codes.Code
	}{{"/1", codes.Content}, {"/1/0", codes.Content}, {"/1/0/1", codes.Content}, {"/0", codes.Unauthorized}, {"/3/0", codes.Unauthorized}, {"/2", codes.Content}} {
		if r := bs.Request(codes.GET, tt.path, nil); r == nil || r.Code != tt.want {
			t.Errorf("Bootstrap-Read %s = %v, want %v", tt.path, r, tt.want)
		} else if tt.path == "/1/0/1" && string(r.Payload) != "300" {
			t.Errorf("Bootstrap-Read /1/0/1 = %q, want 300", r.Payload)
		}
	}
	r := bs.Request(codes.GET, "/", nil, agenttest.Uint(message.Accept, uint32(lwm2m.FormatLinkFormat)))
	if r == nil || r.Code != codes.Content {
		t.Fatalf("Bootstrap-Discover = %v", r)
	}
	links := string(r.Payload)
	for _, want := range []string{`</>;lwm2m=1.1`, `</0/0>`, `</0/1>;ssid=101;uri="coap://127.0.0.1:5683"`, `</1/0>;ssid=101`, `</3/0>`} {
		if !strings.Contains(links, want) {
			t.Errorf("Bootstrap-Discover %q lacks %q", links, want)
		}
	}
	if strings.Contains(links, "</0/0>;") {
		t.Errorf("Bootstrap-Discover %q describes the bootstrap account", links)
	}
	if r := bs.Finish(); r == nil || r.Code != codes.Changed {
		t.Fatalf("Bootstrap-Finish = %v", r)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("not registered")
	}
	if r := s.Server.Request(codes.GET, "/3/0/15", nil); r == nil || string(r.Payload) != "Europe/Paris" {
		t.Errorf("/3/0/15 after the bootstrap write = %v", r)
	}
}

// TestBootstrapFallback: when the DM server refuses registration
// BootstrapAfterFailures times in a row, the client bootstraps, then
// registers with the server it is given.
func TestBootstrapFallback(t *testing.T) {
	s := newSim(t, agent.Config{ServerURI: agenttest.ServerURI, BootstrapURI: agenttest.BootstrapURI, BootstrapAfterFailures: 3}, 1, agenttest.Faults{})
	bs := s.BootstrapServer()
	s.Server.RegisterCode = codes.Forbidden
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if !bs.AwaitRequest(time.Hour) {
		t.Fatalf("no Bootstrap-Request; events %v", s.Events)
	}
	if n := len(s.Server.Registers); n != 3 {
		t.Errorf("Registers before the fallback = %d, want 3", n)
	}
	if n := len(s.EventsOf(agent.EventRegistrationFailed)); n != 3 {
		t.Errorf("registration_failed events = %d, want 3", n)
	}
	s.Server.RegisterCode = 0
	// The bootstrap account is /0/1 here: writing over it is refused.
	if c := bs.Write("/0/1", dmAccount.SecurityRecords()...); c != codes.BadRequest {
		t.Errorf("write of a DM account over the bootstrap account = %v, want 4.00", c)
	}
	a := dmAccount
	a.Instance = 2
	wantCodes(t, bs.Provision(a), codes.Deleted, codes.Changed, codes.Changed, codes.Changed)
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("not registered after the fallback bootstrap")
	}
	if q := agenttest.Queries(s.Server.Registers[len(s.Server.Registers)-1]); !slices.Contains(q, "lt=300") {
		t.Errorf("Register after bootstrap %v; want the provisioned lifetime", q)
	}
}

// TestBootstrapFallbackSurvivesRestart: the count of failed Registers is
// stored, so a device that restarts between failures still falls back.
func TestBootstrapFallbackSurvivesRestart(t *testing.T) {
	cfg := agent.Config{ServerURI: agenttest.ServerURI, BootstrapURI: agenttest.BootstrapURI, BootstrapAfterFailures: 2}
	s := newSim(t, cfg, 1, agenttest.Faults{})
	bs := s.BootstrapServer()
	s.Server.RegisterCode = codes.Forbidden
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistrationFailed, time.Minute); !ok {
		t.Fatal("no registration failure")
	}
	if err := s.Restart(&cfg); err != nil {
		t.Fatal(err)
	}
	if !bs.AwaitRequest(time.Minute) {
		t.Fatalf("no Bootstrap-Request after the second failure; registers %d", len(s.Server.Registers))
	}
}

// TestBootstrapPersists: what the bootstrap server provisioned is in the
// stored state; after a restart the engine registers with its DM server
// directly, without bootstrapping again.
func TestBootstrapPersists(t *testing.T) {
	cfg := agent.Config{BootstrapURI: agenttest.BootstrapURI}
	s, bs := bootstrapSim(t, cfg)
	wantCodes(t, bs.Provision(dmAccount), codes.Deleted, codes.Changed, codes.Changed, codes.Changed)
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("not registered")
	}
	if err := s.Restart(&cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("not registered after the restart")
	}
	if len(bs.Requests) != 1 {
		t.Errorf("Bootstrap-Requests = %d, want 1 (none after the restart)", len(bs.Requests))
	}
	if n := len(s.Server.Registers); n != 2 {
		t.Fatalf("Registers = %d, want 2", n)
	}
	if q := agenttest.Queries(s.Server.Registers[1]); !slices.Contains(q, "lt=300") {
		t.Errorf("Register after restart %v; want the provisioned lifetime", q)
	}
	// A provisioning record that cannot be right (here, a resource the
	// Security object does not have) is dropped alone: the factory
	// bootstrap applies again.
	var env struct {
		V     int             `json:"v"`
		CRC   uint32          `json:"crc"`
		State json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(s.State(), &env); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(env.State, []byte(`"security":{`), []byte(`"security":{"9":{"99":{"Type":1,"Int":0,"Uint":0,"Float":0,"Bool":false,"Str":"","Bytes":null,"Objlnk":{"Obj":0,"Inst":0}}},`), 1)
	if bytes.Equal(bad, env.State) {
		t.Fatal("no boot record in the state")
	}
	env.State, env.CRC = bad, crc32.ChecksumIEEE(bad)
	st, _ := json.Marshal(env)
	s2, err := agenttest.New(cfg, st, 2, agenttest.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	bs2 := s2.BootstrapServer()
	if err := s2.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if !bs2.AwaitRequest(time.Minute) {
		t.Fatal("a bad boot record was used")
	}
}

// TestBootstrapSecretsStored: a PSK the bootstrap server writes is kept
// in the stored state (which drivers write 0600), is never logged, and
// cannot be read back, by the bootstrap server or a DM server.
func TestBootstrapSecretsStored(t *testing.T) {
	var log bytes.Buffer
	cfg := agent.Config{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	s, bs := bootstrapSim(t, cfg)
	// A coaps account beside the usable NoSec one (this simulated driver
	// carries no DTLS, so the engine registers with the NoSec one).
	key := []byte("k3y-s3cr3t-b1ts!")
	psk := agenttest.Account{Instance: 2, URI: "coaps://127.0.0.1:5684", SSID: 102, Lifetime: 300, PSKIdentity: "dev-psk", PSKKey: key}
	wantCodes(t, []codes.Code{
		bs.Write("/0/1", dmAccount.SecurityRecords()...),
		bs.Write("/1/0", dmAccount.ServerRecords()...),
		bs.Write("/0/2", psk.SecurityRecords()...),
	}, codes.Changed, codes.Changed, codes.Changed)
	if r := bs.Request(codes.GET, "/0/2/5", nil); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("Bootstrap-Read of the secret key = %v, want 4.01", r)
	}
	if r := bs.Finish(); r == nil || r.Code != codes.Changed {
		t.Fatalf("Bootstrap-Finish = %v", r)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("not registered")
	}
	if !bytes.Contains(s.State(), []byte(base64.StdEncoding.EncodeToString(key))) {
		t.Error("the provisioned key is not in the stored state")
	}
	for _, form := range []string{string(key), hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key)} {
		if strings.Contains(log.String(), form) {
			t.Errorf("the key appears in the log as %q", form)
		}
	}
	if r := s.Server.Request(codes.GET, "/0/2", nil); r == nil || r.Code != codes.Unauthorized {
		t.Errorf("DM read of /0/2 = %v, want 4.01", r)
	}
}

// TestBootstrapTimeout: a bootstrap server that acknowledges the
// Bootstrap-Request and then says nothing fails the session after
// EXCHANGE_LIFETIME; the client asks again after the back-off.
func TestBootstrapTimeout(t *testing.T) {
	s, bs := bootstrapSim(t, agent.Config{})
	start := s.Now
	ev, ok := s.WaitEvent(agent.EventBootstrapFailed, 10*time.Minute)
	if !ok {
		t.Fatal("no bootstrap_failed event")
	}
	if d := s.Now.Sub(start); d < agent.ExchangeLifetime-time.Second || d > agent.ExchangeLifetime+time.Second {
		t.Errorf("bootstrap failed %v after the request was answered, want %v", d, agent.ExchangeLifetime)
	}
	if ev.Server != agenttest.BootstrapURI {
		t.Errorf("bootstrap_failed event = %+v", ev)
	}
	failedAt := s.Now
	if !bs.AwaitRequest(10 * time.Minute) {
		t.Fatal("no second Bootstrap-Request")
	}
	if d := s.Now.Sub(failedAt); d < 60*time.Second || d > 61*time.Second {
		t.Errorf("second Bootstrap-Request %v after the failure, want 60 s", d)
	}
}

// TestBootstrapRequestTrigger: executing /1/0/9 (Bootstrap-Request
// Trigger) makes a registered client bootstrap.
func TestBootstrapRequestTrigger(t *testing.T) {
	s := newSim(t, agent.Config{ServerURI: agenttest.ServerURI, BootstrapURI: agenttest.BootstrapURI}, 1, agenttest.Faults{})
	bs := s.BootstrapServer()
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("not registered")
	}
	if len(bs.Requests) != 0 {
		t.Fatal("bootstrapped with a usable DM server")
	}
	if r := s.Server.Request(codes.POST, "/1/0/9", nil); r == nil || r.Code != codes.Changed {
		t.Fatalf("execute /1/0/9 = %v", r)
	}
	if !bs.AwaitRequest(time.Minute) {
		t.Fatal("no Bootstrap-Request after the trigger")
	}
}

// TestBootstrapStatus: with update control, a bootstrap session reports
// le_avc's SESSION_BS_STARTED, and the registration that follows
// SESSION_STARTED.
func TestBootstrapStatus(t *testing.T) {
	cfg := agent.Config{BootstrapURI: agenttest.BootstrapURI}
	cfg.Control.Enabled = true
	s, bs := bootstrapSim(t, cfg)
	wantCodes(t, bs.Provision(dmAccount), codes.Deleted, codes.Changed, codes.Changed, codes.Changed)
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("not registered")
	}
	var got []agent.AVCStatus
	for _, ev := range s.EventsOf(agent.EventStatus) {
		if st := ev.Status.Status; st == agent.StatusSessionBSStarted || st == agent.StatusSessionStarted {
			got = append(got, st)
		}
	}
	if want := []agent.AVCStatus{agent.StatusSessionBSStarted, agent.StatusSessionStarted}; !slices.Equal(got, want) {
		t.Errorf("session statuses %v, want %v", got, want)
	}
}
