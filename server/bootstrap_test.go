package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestBootstrapConfigAPI: the bootstrap configurations are set, read and
// deleted through the HTTP JSON API; keys are given in hex and never
// shown; invalid ones are refused with 400.
func TestBootstrapConfigAPI(t *testing.T) {
	s := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	h := s.Handler()
	do := func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		want, notWant            []string
	}{
		{"put nosec", "PUT", "/api/bootstrap/dev-1", `{"server_uri":"coap://10.0.0.1:5683","short_server_id":101,"lifetime":300}`, 200, []string{`"lifetime": 300`, `"short_server_id": 101`}, nil},
		{"put psk", "PUT", "/api/bootstrap/*", `{"server_uri":"coaps://10.0.0.1","psk_identity":"id","psk_key":"a1b2c3"}`, 200, []string{`"psk_key": "(set)"`}, []string{"a1b2c3"}},
		{"get", "GET", "/api/bootstrap/dev-1", "", 200, []string{`coap://10.0.0.1:5683`}, nil},
		{"list hides keys", "GET", "/api/bootstrap", "", 200, []string{`"dev-1"`, `"*"`, `"(set)"`}, []string{"a1b2c3"}},
		{"psk without key", "PUT", "/api/bootstrap/dev-2", `{"server_uri":"coaps://10.0.0.1","psk_identity":"id"}`, 400, []string{"psk_key"}, nil},
		{"bad uri", "PUT", "/api/bootstrap/dev-2", `{"server_uri":"http://x"}`, 400, []string{"server_uri"}, nil},
		{"nosec on coaps", "PUT", "/api/bootstrap/dev-2", `{"server_uri":"coaps://x","security_mode":"nosec"}`, 400, []string{"security_mode"}, nil},
		{"bad hex", "PUT", "/api/bootstrap/dev-2", `{"server_uri":"coaps://x","psk_identity":"i","psk_key":"zz"}`, 400, []string{"hex"}, nil},
		{"unknown field", "PUT", "/api/bootstrap/dev-2", `{"server":"coap://x"}`, 400, nil, nil},
		{"get missing", "GET", "/api/bootstrap/dev-2", "", 404, nil, nil},
		{"delete", "DELETE", "/api/bootstrap/dev-1", "", 204, nil, nil},
		{"delete again", "DELETE", "/api/bootstrap/dev-1", "", 404, nil, nil},
	}
	for _, tt := range tests {
		status, body := do(tt.method, tt.path, tt.body)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d; body %s", tt.name, status, tt.status, body)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: body %s lacks %s", tt.name, body, w)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(body, w) {
				t.Errorf("%s: body %s shows %s", tt.name, body, w)
			}
		}
	}
	if c, ok := s.Bootstrap("*"); !ok || !bytes.Equal(c.PSKKey, []byte{0xa1, 0xb2, 0xc3}) {
		t.Errorf("Bootstrap(*) = %+v, %v", c, ok)
	}
}

// TestParseBootstrapConfigs reads the file `avc server -bootstrap` takes.
func TestParseBootstrapConfigs(t *testing.T) {
	m, err := server.ParseBootstrapConfigs([]byte(`{"*":{"server_uri":"coap://127.0.0.1:5683","lifetime":60},"d":{"server_uri":"coaps://h","psk_identity":"d","psk_key":"0102"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m["*"].Lifetime != time.Minute || string(m["d"].PSKKey) != "\x01\x02" {
		t.Errorf("configs = %+v", m)
	}
	if _, err := server.ParseBootstrapConfigs([]byte(`{"d":{"server_uri":"coaps://h"}}`)); err == nil {
		t.Error("a PSK configuration without a key was accepted")
	}
}

// TestBootstrapRequestUnknownEndpoint: a Bootstrap-Request from an
// endpoint without a configuration is refused with 4.00.
func TestBootstrapRequestUnknownEndpoint(t *testing.T) {
	s := newServer(t, server.Config{Bootstrap: map[string]server.BootstrapConfig{"known": {ServerURI: "coap://127.0.0.1:5683"}}})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cc, err := udp.Dial(s.CoAPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := cc.Post(ctx, "/bs", message.TextPlain, nil, message.Option{ID: message.URIQuery, Value: []byte("ep=stranger")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code() != codes.BadRequest {
		t.Errorf("Bootstrap-Request of an unknown endpoint = %v, want 4.00", resp.Code())
	}
}

// runAgent runs a native agent until the test ends and returns its
// event channel.
func runAgent(t *testing.T, cfg agent.Config) <-chan agent.Event {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	return a.Events()
}

// waitAgent reads events until one of kind, failing on timeout.
func waitAgent(t *testing.T, evs <-chan agent.Event, kind agent.EventKind) agent.Event {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("agent stopped before %s", kind)
			}
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// TestBootstrapEndToEnd: a native agent configured with nothing but a
// bootstrap server URI bootstraps from an avc server in bootstrap mode,
// registers with the DM server it was given (over plain coap or DTLS with
// the PSK it was given, from a bootstrap session on coap or coaps), and
// after a restart registers directly from its stored state.
func TestBootstrapEndToEnd(t *testing.T) {
	tests := []struct {
		name               string
		secureBS, secureDM bool
	}{
		{"coap to coap", false, false},
		{"coap to coaps", false, true},
		{"coaps to coaps", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
			defer cancel()
			dmKey := []byte("dm-key-0123")
			dmCfg := server.Config{CoAPAddr: "127.0.0.1:0"}
			if tt.secureDM {
				dmCfg.CoAPSAddr = "127.0.0.1:0"
				dmCfg.PSK = func(id []byte) ([]byte, error) {
					if string(id) == "dev-e2e" {
						return dmKey, nil
					}
					return nil, errors.New("unknown identity")
				}
			}
			dm := newServer(t, dmCfg)
			dmEvents, stopDM := dm.Subscribe()
			defer stopDM()

			bcfg := server.BootstrapConfig{ServerURI: "coap://" + dm.CoAPAddr().String(), ShortServerID: 101, Lifetime: 120 * time.Second}
			if tt.secureDM {
				bcfg.ServerURI = "coaps://" + dm.CoAPSAddr().String()
				bcfg.PSKIdentity, bcfg.PSKKey = "dev-e2e", dmKey
			}
			bsKey := []byte("bs-key-4567")
			bsCfg := server.Config{CoAPAddr: "127.0.0.1:0", Bootstrap: map[string]server.BootstrapConfig{server.AnyEndpoint: bcfg}}
			if tt.secureBS {
				bsCfg.CoAPSAddr = "127.0.0.1:0"
				bsCfg.PSK = func(id []byte) ([]byte, error) {
					if string(id) == "bs-e2e" {
						return bsKey, nil
					}
					return nil, errors.New("unknown identity")
				}
			}
			bs := newServer(t, bsCfg)
			bsEvents, stopBS := bs.Subscribe()
			defer stopBS()

			dir := t.TempDir()
			acfg := agent.Config{Endpoint: "dev-e2e", StateDir: dir, BootstrapURI: "coap://" + bs.CoAPAddr().String()}
			if tt.secureBS {
				acfg.BootstrapURI = "coaps://" + bs.CoAPSAddr().String()
				acfg.BootstrapPSKIdentity, acfg.BootstrapPSKKey = "bs-e2e", bsKey
			}
			evs := runAgent(t, acfg)
			if ev, err := server.WaitEvent(ctx, bsEvents, "dev-e2e", server.EventBootstrapped); err != nil {
				t.Fatalf("not bootstrapped: %v", err)
			} else if ev.Err != "" {
				t.Fatalf("bootstrap event %+v", ev)
			}
			reg, err := server.WaitEvent(ctx, dmEvents, "dev-e2e", server.EventRegistered)
			if err != nil {
				t.Fatalf("not registered with the DM server: %v", err)
			}
			if reg.Lifetime != 120*time.Second {
				t.Errorf("registered lifetime %v, want the provisioned 120 s", reg.Lifetime)
			}
			waitAgent(t, evs, agent.EventRegistered)
			resp, err := dm.Read(ctx, "dev-e2e", lwm2m.P(1, 0, 0), lwm2m.FormatText)
			if err != nil || string(resp.Payload) != "101" {
				t.Errorf("DM read of /1/0/0 = %v, %v; want 101", resp, err)
			}
			if _, err := dm.Read(ctx, "dev-e2e", lwm2m.P(0, 1), lwm2m.FormatTLV); err == nil {
				t.Error("the DM server read the Security object")
			}

			// The provisioning is stored for the next start
			// (TestBootstrapRestartRegistersDirectly).
			var stored []byte
			if tt.secureDM {
				stored = dmKey
			}
			waitState(t, dir, stored)
		})
	}
}

// waitState checks the stored state once it holds the provisioning: a
// 0600 file that holds key, when not nil (base64 in JSON).
func waitState(t *testing.T, dir string, key []byte) {
	t.Helper()
	path := filepath.Join(dir, agent.StateFile)
	deadline := time.Now().Add(testTimeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(`"boot"`)) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
			}
			if key != nil && !bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(key))) {
				t.Error("the provisioned key is not in the stored state")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no provisioning in %s: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBootstrapRestartRegistersDirectly: after a bootstrap, a new agent
// on the same state directory registers with the DM server without
// asking the bootstrap server again.
func TestBootstrapRestartRegistersDirectly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
	defer cancel()
	dm := newServer(t, server.Config{})
	dmEvents, stopDM := dm.Subscribe()
	defer stopDM()
	bs := newServer(t, server.Config{Bootstrap: map[string]server.BootstrapConfig{"dev-r": {ServerURI: "coap://" + dm.CoAPAddr().String(), Lifetime: 90 * time.Second}}})
	bsEvents, stopBS := bs.Subscribe()
	defer stopBS()
	dir := t.TempDir()
	cfg := agent.Config{Endpoint: "dev-r", StateDir: dir, BootstrapURI: "coap://" + bs.CoAPAddr().String()}

	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	if _, err := server.WaitEvent(ctx, dmEvents, "dev-r", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range a.Events() {
	}
	if _, err := server.WaitEvent(ctx, bsEvents, "dev-r", server.EventBootstrapped); err != nil {
		t.Fatal(err)
	}

	evs := runAgent(t, cfg)
	reg, err := server.WaitEvent(ctx, dmEvents, "dev-r", server.EventRegistered)
	if err != nil {
		t.Fatalf("not registered after the restart: %v", err)
	}
	if reg.Lifetime != 90*time.Second {
		t.Errorf("lifetime after restart %v, want 90 s", reg.Lifetime)
	}
	waitAgent(t, evs, agent.EventRegistered)
	select {
	case ev := <-bsEvents:
		t.Errorf("bootstrap server event after the restart: %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestBootstrapSameServer: one avc server is both the bootstrap server
// and the DM server it provisions (same address); after the bootstrap
// its requests are device management again.
func TestBootstrapSameServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
	defer cancel()
	s := newServer(t, server.Config{})
	if err := s.SetBootstrap("dev-same", server.BootstrapConfig{ServerURI: "coap://" + s.CoAPAddr().String(), Lifetime: 60 * time.Second}); err != nil {
		t.Fatal(err)
	}
	evs, stop := s.Subscribe()
	defer stop()
	runAgent(t, agent.Config{Endpoint: "dev-same", BootstrapURI: "coap://" + s.CoAPAddr().String()})
	if _, err := server.WaitEvent(ctx, evs, "dev-same", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Read(ctx, "dev-same", lwm2m.P(1, 0, 1), lwm2m.FormatText)
	if err != nil || string(resp.Payload) != "60" {
		t.Errorf("read /1/0/1 = %v, %v; want 60", resp, err)
	}
}

// TestBootstrapFallbackAfterDTLSFailure: DTLS handshakes that fail with
// the configured coaps DM server count as refused registrations; the
// native agent falls back to its bootstrap server and registers with the
// server it is given.
func TestBootstrapFallbackAfterDTLSFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
	defer cancel()
	refusing := newServer(t, server.Config{CoAPSAddr: "127.0.0.1:0", PSK: func([]byte) ([]byte, error) { return []byte("another key"), nil }})
	dm := newServer(t, server.Config{})
	dmEvents, stopDM := dm.Subscribe()
	defer stopDM()
	bs := newServer(t, server.Config{Bootstrap: map[string]server.BootstrapConfig{"dev-fb": {ServerURI: "coap://" + dm.CoAPAddr().String()}}})
	evs := runAgent(t, agent.Config{
		Endpoint:  "dev-fb",
		ServerURI: "coaps://" + refusing.CoAPSAddr().String(), PSKIdentity: "dev-fb", PSKKey: []byte("the device key"),
		BootstrapURI: "coap://" + bs.CoAPAddr().String(), BootstrapAfterFailures: 1,
		DTLSHandshakeTimeout: 500 * time.Millisecond,
	})
	if ev := waitAgent(t, evs, agent.EventRegistrationFailed); ev.Server != "coaps://"+refusing.CoAPSAddr().String() {
		t.Errorf("registration_failed event %+v", ev)
	}
	waitAgent(t, evs, agent.EventBootstrapFinished)
	if _, err := server.WaitEvent(ctx, dmEvents, "dev-fb", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
}

// TestBootstrapSeveralServers: a bootstrap configuration with a further
// server provisions both accounts; the agent registers with each, with
// its own lifetime, and each server can read the agent.
func TestBootstrapSeveralServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
	defer cancel()
	var dms [2]*server.Server
	var evs [2]<-chan server.Event
	for i := range dms {
		dms[i] = newServer(t, server.Config{CoAPAddr: "127.0.0.1:0"})
		ch, stop := dms[i].Subscribe()
		defer stop()
		evs[i] = ch
	}
	bcfg := server.BootstrapConfig{ServerURI: "coap://" + dms[0].CoAPAddr().String(), ShortServerID: 101, Lifetime: 120 * time.Second,
		Servers: []server.BootstrapConfig{{ServerURI: "coap://" + dms[1].CoAPAddr().String(), ShortServerID: 102, Lifetime: 90 * time.Second}}}
	bs := newServer(t, server.Config{CoAPAddr: "127.0.0.1:0", Bootstrap: map[string]server.BootstrapConfig{server.AnyEndpoint: bcfg}})
	runAgent(t, agent.Config{Endpoint: "dev-ms", StateDir: t.TempDir(), BootstrapURI: "coap://" + bs.CoAPAddr().String()})
	for i, lt := range []time.Duration{120 * time.Second, 90 * time.Second} {
		reg, err := server.WaitEvent(ctx, evs[i], "dev-ms", server.EventRegistered)
		if err != nil {
			t.Fatalf("not registered with DM server %d: %v", i+1, err)
		}
		if reg.Lifetime != lt {
			t.Errorf("DM server %d: lifetime %v, want %v", i+1, reg.Lifetime, lt)
		}
		resp, err := dms[i].Read(ctx, "dev-ms", lwm2m.P(3, 0, 0), lwm2m.FormatText)
		if err != nil || string(resp.Payload) != "avc" {
			t.Errorf("DM server %d reads /3/0/0: %v, %v", i+1, resp, err)
		}
	}
	for _, bad := range []server.BootstrapConfig{
		{ServerURI: "coap://a", Servers: []server.BootstrapConfig{{ServerURI: "coap://b"}}}, // both ssid 1
		{ServerURI: "coap://a", Servers: []server.BootstrapConfig{{ServerURI: "x", ShortServerID: 2}}},
	} {
		if err := bs.SetBootstrap("bad", bad); err == nil {
			t.Errorf("SetBootstrap(%+v) accepted", bad)
		}
	}
}
