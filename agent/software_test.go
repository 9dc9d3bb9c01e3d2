package agent_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// swSim is a registered simulation with Software Management over an
// Apps handler, and a file server.
type swSim struct {
	*fwSim
	apps *agenttest.Apps
	cfg  agent.Config
}

func swConfig(apps *agenttest.Apps) agent.Config {
	return agent.Config{Endpoint: "sw-dev", Lifetime: 24 * time.Hour,
		Software: agent.SoftwareConfig{Handler: apps, TrustedKeys: []ed25519.PublicKey{testKey.Public().(ed25519.PublicKey)}}}
}

func newSwSim(t *testing.T, seed uint64, f agenttest.Faults, mod func(*agent.Config)) *swSim {
	t.Helper()
	apps := &agenttest.Apps{}
	cfg := swConfig(apps)
	if mod != nil {
		mod(&cfg)
	}
	s := newSim(t, cfg, seed, f)
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, 10*time.Minute); !ok {
		t.Fatalf("not registered; events %v", s.Events)
	}
	return &swSim{fwSim: &fwSim{Sim: s, files: s.FileServer()}, apps: apps, cfg: cfg}
}

// create has the server create instance /9/id with no values.
func (s *swSim) create(t *testing.T, id uint16) {
	t.Helper()
	r := s.Server.Request(codes.POST, "/9", []byte{0x00, byte(id)}, agenttest.Uint(message.ContentFormat, uint32(lwm2m.FormatTLV)))
	if r == nil || r.Code != codes.Created {
		t.Fatalf("create /9/%d: %v", id, r)
	}
}

func (s *swSim) execArgs(t *testing.T, path, args string) codes.Code {
	t.Helper()
	r := s.Server.Request(codes.POST, path, []byte(args))
	if r == nil {
		t.Fatalf("execute %s: no answer", path)
	}
	return r.Code
}

// swStatus returns the last status the engine reported for /9/id.
func (s *swSim) swStatus(id uint16) agent.SoftwareStatus {
	for i := len(s.Events) - 1; i >= 0; i-- {
		if ev := s.Events[i]; ev.Kind == agent.EventSoftware && ev.Software.Instance == id {
			return *ev.Software
		}
	}
	return agent.SoftwareStatus{Instance: id, Total: -1}
}

// waitSW runs until /9/id reaches state (with any result).
func (s *swSim) waitSW(t *testing.T, id uint16, st agent.SoftwareState, limit time.Duration) agent.SoftwareStatus {
	t.Helper()
	s.RunUntil(s.Now.Add(limit), func() bool { return s.swStatus(id).State == st })
	got := s.swStatus(id)
	if got.State != st {
		t.Fatalf("/9/%d state %v (result %v), want %v", id, got.State, got.Result, st)
	}
	return got
}

// stateResult reads /9/id/7 and /9/id/9.
func (s *swSim) stateResult(t *testing.T, id uint16) (agent.SoftwareState, agent.SoftwareResult) {
	t.Helper()
	return agent.SoftwareState(s.readInt(t, fmt.Sprintf("/9/%d/7", id))), agent.SoftwareResult(s.readInt(t, fmt.Sprintf("/9/%d/9", id)))
}

func (s *swSim) wantState(t *testing.T, id uint16, st agent.SoftwareState, r agent.SoftwareResult) {
	t.Helper()
	if gs, gr := s.stateResult(t, id); gs != st || gr != r {
		t.Fatalf("/9/%d: state %v result %v (%d), want %v and %v (%d)", id, gs, gr, int(gr), st, r, int(r))
	}
}

// deliver pulls file name into /9/id until DELIVERED.
func (s *swSim) deliver(t *testing.T, id uint16, name string) {
	t.Helper()
	if c := s.write(t, fmt.Sprintf("/9/%d/3", id), s.files.URI(name)); c != codes.Changed {
		t.Fatalf("write /9/%d/3: %v", id, c)
	}
	st := s.waitSW(t, id, agent.SoftwareDelivered, time.Hour)
	if st.Result != agent.SoftwareResultDelivered {
		t.Fatalf("/9/%d delivered with result %v", id, st.Result)
	}
}

// install executes Install on /9/id and waits for INSTALLED.
func (s *swSim) install(t *testing.T, id uint16) {
	t.Helper()
	if c := s.exec(t, fmt.Sprintf("/9/%d/4", id)); c != codes.Changed {
		t.Fatalf("Install /9/%d: %v", id, c)
	}
	s.waitSW(t, id, agent.SoftwareInstalled, time.Minute)
	s.wantState(t, id, agent.SoftwareInstalled, agent.SoftwareResultInstalled)
}

func TestSoftwarePullInstallActivateUninstall(t *testing.T) {
	s := newSwSim(t, 1, agenttest.Faults{}, nil)
	img := image(150<<10, 21)
	s.files.Files["app.bin"] = pkg(t, img, "1.2.0", testKey)
	s.create(t, 0)
	s.wantState(t, 0, agent.SoftwareInitial, agent.SoftwareResultInitial)
	// Observe the Update State; pmin would coalesce ordinary changes,
	// state changes go anyway.
	if r := s.Server.Request(codes.PUT, "/9/0/7", nil, message.Option{ID: message.URIQuery, Value: []byte("pmin=300")}); r == nil || r.Code != codes.Changed {
		t.Fatalf("write attributes: %v", r)
	}
	if r := s.Server.Request(codes.GET, "/9/0/7", nil, agenttest.Uint(message.Observe, 0), agenttest.Uint(message.Accept, 0)); r == nil || r.Code != codes.Content {
		t.Fatalf("observe: %v", r)
	}
	for _, op := range []struct{ path, args string }{{"/9/0/4", ""}, {"/9/0/10", ""}, {"/9/0/11", ""}, {"/9/0/6", ""}} {
		if c := s.execArgs(t, op.path, op.args); c != codes.MethodNotAllowed {
			t.Errorf("execute %s in INITIAL answered %v, want 4.05", op.path, c)
		}
	}
	s.deliver(t, 0, "app.bin")
	if !s.apps.Equal(0, img) {
		t.Fatalf("slot 0 holds %d bytes, want the %d-byte image", len(s.apps.Slot(0).Data), len(img))
	}
	if n, v := s.readString(t, "/9/0/0"), s.readString(t, "/9/0/1"); n != "fw" || v != "1.2.0" {
		t.Errorf("PkgName %q PkgVersion %q, want fw 1.2.0", n, v)
	}
	if c := s.write(t, "/9/0/3", s.files.URI("app.bin")); c != codes.MethodNotAllowed {
		t.Errorf("Package URI write in DELIVERED answered %v, want 4.05", c)
	}
	if c := s.exec(t, "/9/0/10"); c != codes.MethodNotAllowed {
		t.Errorf("Activate in DELIVERED answered %v, want 4.05", c)
	}
	s.install(t, 0)
	if in := s.apps.Slot(0).Installed; in == nil || in.Version != "1.2.0" || in.Instance != 0 {
		t.Fatalf("handler installed %+v", in)
	}
	if s.readString(t, "/9/0/12") != "0" {
		t.Errorf("Activation State after Install %q, want 0", s.readString(t, "/9/0/12"))
	}
	if c := s.exec(t, "/9/0/10"); c != codes.Changed || s.readString(t, "/9/0/12") != "1" || !s.apps.Slot(0).Active {
		t.Fatalf("Activate: %v, /9/0/12 %q, handler active %v", c, s.readString(t, "/9/0/12"), s.apps.Slot(0).Active)
	}
	if c := s.exec(t, "/9/0/11"); c != codes.Changed || s.readString(t, "/9/0/12") != "0" || s.apps.Slot(0).Active {
		t.Fatalf("Deactivate: %v, /9/0/12 %q, handler active %v", c, s.readString(t, "/9/0/12"), s.apps.Slot(0).Active)
	}
	if c := s.execArgs(t, "/9/0/6", "7"); c != codes.BadRequest {
		t.Errorf("Uninstall with argument 7 answered %v, want 4.00", c)
	}
	if c := s.execArgs(t, "/9/0/6", "0"); c != codes.Changed {
		t.Fatalf("Uninstall: %v", c)
	}
	s.wantState(t, 0, agent.SoftwareInitial, agent.SoftwareResultInitial)
	if sl := s.apps.Slot(0); sl.Installed != nil || len(sl.Data) != 0 {
		t.Errorf("after Uninstall the handler keeps installed %v, %d package bytes", sl.Installed, len(sl.Data))
	}
	want := []string{"install 0 1.2.0", "activate 0", "deactivate 0", "uninstall 0 remove"}
	if !slices.Equal(s.apps.Calls, want) {
		t.Errorf("handler calls %q, want %q", s.apps.Calls, want)
	}
	s.RunFor(time.Minute)
	var seen []string
	for _, n := range s.Server.Notifications {
		seen = append(seen, string(n.Payload))
		if n.Type != message.Confirmable {
			t.Errorf("state notification %q sent %v, want CON", n.Payload, n.Type)
		}
	}
	if fmt.Sprint(seen) != "[1 2 3 4 0]" {
		t.Errorf("notified states %v, want [1 2 3 4 0]", seen)
	}
	var kinds []string
	for _, ev := range s.EventsOf(agent.EventSoftware) {
		if ev.Path != "/9/0" {
			t.Errorf("software event path %q", ev.Path)
		}
		if k := ev.Software.State.String(); len(kinds) == 0 || kinds[len(kinds)-1] != k {
			kinds = append(kinds, k)
		}
	}
	if got := strings.Join(kinds, ","); got != "initial,download started,downloaded,delivered,installed,initial" {
		t.Errorf("EventSoftware states %s", got)
	}
}

func TestSoftwareUninstallForUpdate(t *testing.T) {
	s := newSwSim(t, 2, agenttest.Faults{}, nil)
	s.files.Files["v1"] = pkg(t, image(20<<10, 22), "1.0.0", testKey)
	s.files.Files["v2"] = pkg(t, image(20<<10, 23), "2.0.0", testKey)
	s.files.Files["old"] = pkg(t, image(20<<10, 24), "0.9.0", testKey)
	s.create(t, 3)
	s.deliver(t, 3, "v1")
	s.install(t, 3)
	s.exec(t, "/9/3/10")
	if c := s.write(t, "/9/3/3", s.files.URI("v2")); c != codes.MethodNotAllowed {
		t.Errorf("Package URI write in INSTALLED answered %v, want 4.05", c)
	}
	if c := s.execArgs(t, "/9/3/6", "1"); c != codes.Changed {
		t.Fatalf("Uninstall for update: %v", c)
	}
	s.wantState(t, 3, agent.SoftwareInitial, agent.SoftwareResultInitial)
	if sl := s.apps.Slot(3); sl.Installed == nil || sl.Installed.Version != "1.0.0" || !sl.Active {
		t.Fatalf("prepared for update, the handler holds %+v active %v; the software should stay in place", sl.Installed, sl.Active)
	}
	if v := s.readString(t, "/9/3/1"); v != "1.0.0" {
		t.Errorf("PkgVersion while prepared for update %q, want 1.0.0", v)
	}
	// Older than what is in place: refused (anti-rollback), and the old
	// software is untouched.
	s.write(t, "/9/3/3", s.files.URI("old"))
	s.RunUntil(s.Now.Add(time.Hour), func() bool { return s.swStatus(3).Result >= 50 })
	s.wantState(t, 3, agent.SoftwareInitial, agent.SoftwareResultUnsupportedPackage)
	if r := s.readString(t, "/9/3/16"); !strings.Contains(r, "older") {
		t.Errorf("Status Reason %q, want the rollback named", r)
	}
	s.deliver(t, 3, "v2")
	s.install(t, 3)
	if sl := s.apps.Slot(3); sl.Installed == nil || sl.Installed.Version != "2.0.0" {
		t.Fatalf("handler installed %+v, want 2.0.0", sl.Installed)
	}
	want := []string{"install 3 1.0.0", "activate 3", "uninstall 3 update", "install 3 2.0.0"}
	if !slices.Equal(s.apps.Calls, want) {
		t.Errorf("handler calls %q, want %q", s.apps.Calls, want)
	}
}

// pushTo writes p to path block-wise (Block1, szx), from block from.
func pushTo(t *testing.T, s *swSim, path string, p []byte, szx uint8) codes.Code {
	t.Helper()
	size := 16 << szx
	var last codes.Code
	for num := 0; num*size < len(p); num++ {
		end := min((num+1)*size, len(p))
		more := end < len(p)
		r := s.Server.Request(codes.PUT, path, p[num*size:end], agenttest.Uint(message.ContentFormat, 42), agenttest.Block(message.Block1, uint32(num), more, szx))
		if r == nil {
			t.Fatalf("block %d: no answer", num)
		}
		last = r.Code
		if more && r.Code != codes.Continue {
			return r.Code
		}
	}
	return last
}

func TestSoftwarePush(t *testing.T) {
	s := newSwSim(t, 3, agenttest.Faults{}, nil)
	img := image(40<<10, 25)
	p := pkg(t, img, "3.1.0", testKey)
	s.create(t, 0)
	if r := s.Server.Request(codes.PUT, "/9/0/2", p[:1024], agenttest.Uint(message.ContentFormat, 42), agenttest.Block(message.Block1, 1, true, 6)); r.Code != codes.RequestEntityIncomplete {
		t.Errorf("block 1 first answered %v, want 4.08", r.Code)
	}
	if c := pushTo(t, s, "/9/0/2", p, 6); c != codes.Changed {
		t.Fatalf("push: %v", c)
	}
	s.wantState(t, 0, agent.SoftwareDelivered, agent.SoftwareResultDelivered)
	if !s.apps.Equal(0, img) {
		t.Fatal("slot 0 does not hold the image")
	}
	if c := pushTo(t, s, "/9/0/2", p, 6); c != codes.MethodNotAllowed {
		t.Errorf("a second push in DELIVERED answered %v, want 4.05", c)
	}
	s.install(t, 0)
	if c := pushTo(t, s, "/9/0/2", p, 6); c != codes.MethodNotAllowed {
		t.Errorf("a push in INSTALLED answered %v, want 4.05", c)
	}

	// A small package in the Create itself (the Package resource in TLV).
	small := image(300, 26)
	sp := pkg(t, small, "0.1.0", testKey)
	payload := createPayload(t, tlv.Encode, "/9", createRec("/9/5/2", lwm2m.Opaque(sp)), createRec("/9/5/8", lwm2m.Bool(true)))
	if r := s.Server.Request(codes.POST, "/9", []byte(payload), agenttest.Uint(message.ContentFormat, uint32(lwm2m.FormatTLV))); r == nil || r.Code != codes.Created {
		t.Fatalf("create with a package: %v", r)
	}
	s.wantState(t, 5, agent.SoftwareDelivered, agent.SoftwareResultDelivered)
	if !s.apps.Equal(5, small) || s.readString(t, "/9/5/8") != "1" {
		t.Fatalf("slot 5 holds the image: %v; /9/5/8 %q", s.apps.Equal(5, small), s.readString(t, "/9/5/8"))
	}
	// Update Supported Objects set: an install is followed by an update.
	updates := len(s.Server.Updates)
	s.install(t, 5)
	s.RunFor(time.Minute)
	if len(s.Server.Updates) == updates {
		t.Error("no Registration Update after an install with Update Supported Objects set")
	}
	// Uninstall in DELIVERED discards the package.
	s.create(t, 6)
	s.execArgs(t, "/9/6/6", "")
	if r := s.Server.Request(codes.PUT, "/9/6/2", sp, agenttest.Uint(message.ContentFormat, 42)); r.Code != codes.Changed {
		t.Fatalf("whole push: %v", r.Code)
	}
	s.wantState(t, 6, agent.SoftwareDelivered, agent.SoftwareResultDelivered)
	if c := s.execArgs(t, "/9/6/6", ""); c != codes.Changed {
		t.Fatalf("Uninstall in DELIVERED: %v", c)
	}
	s.wantState(t, 6, agent.SoftwareInitial, agent.SoftwareResultInitial)
	if len(s.apps.Slot(6).Data) != 0 {
		t.Error("Uninstall in DELIVERED kept the package")
	}
}

func TestSoftwareBadInputs(t *testing.T) {
	img := image(20<<10, 27)
	good := pkg(t, img, "2.0.0", testKey)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	flip := bytes.Clone(good)
	flip[len(flip)-100] ^= 1
	tests := []struct {
		name   string
		uri    string // empty: the file server's a.bin
		file   []byte
		mod    func(*agent.SoftwareConfig)
		apps   func(*agenttest.Apps)
		server func(*agenttest.FileServer)
		want   agent.SoftwareResult
	}{
		{name: "unsupported scheme", uri: "ftp://h/x", want: agent.SoftwareResultInvalidURI},
		{name: "http without a fetcher", uri: "http://h/x", want: agent.SoftwareResultInvalidURI},
		{name: "bad port", uri: "coap://h:99999/x", want: agent.SoftwareResultInvalidURI},
		{name: "userinfo", uri: "coap://u:p@h/x", want: agent.SoftwareResultInvalidURI},
		{name: "URI of 1000 bytes", uri: "coap://h/" + strings.Repeat("x", 1000), want: agent.SoftwareResultInvalidURI},
		{name: "not found", uri: "coap://" + agenttest.FilePeer + "/fw/missing", want: agent.SoftwareResultInvalidURI},
		{name: "server mute", file: good, server: func(f *agenttest.FileServer) { f.Mute = true }, want: agent.SoftwareResultConnectionLost},
		{name: "bit flip", file: flip, want: agent.SoftwareResultIntegrityFailure},
		{name: "truncated", file: good[:len(good)-1], want: agent.SoftwareResultIntegrityFailure},
		{name: "untrusted signer", file: pkg(t, img, "2.0.0", other), want: agent.SoftwareResultIntegrityFailure},
		{name: "raw image when signature required", file: img, mod: func(c *agent.SoftwareConfig) { c.RequireSignature = true }, want: agent.SoftwareResultIntegrityFailure},
		{name: "wrong hardware", file: pkgFor(t, img, fwpkg.Manifest{Version: "2.0.0", Hardware: "board-b"}), mod: func(c *agent.SoftwareConfig) { c.Hardware = "board-a" }, want: agent.SoftwareResultUnsupportedPackage},
		{name: "too large", file: good, mod: func(c *agent.SoftwareConfig) { c.MaxSize = 1000 }, want: agent.SoftwareResultNoSpace},
		{name: "storage full", file: good, apps: func(a *agenttest.Apps) { a.FailWrite = agent.ErrSoftwareNoSpace }, want: agent.SoftwareResultNoSpace},
		{name: "storage out of memory", file: good, apps: func(a *agenttest.Apps) { a.FailWrite = agent.ErrSoftwareNoMemory }, want: agent.SoftwareResultOutOfMemory},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSwSim(t, uint64(200+i), agenttest.Faults{}, func(c *agent.Config) {
				if tc.mod != nil {
					tc.mod(&c.Software)
				}
			})
			if tc.apps != nil {
				tc.apps(s.apps)
			}
			if tc.file != nil {
				s.files.Files["a.bin"] = tc.file
			}
			if tc.server != nil {
				tc.server(s.files)
			}
			uri := tc.uri
			if uri == "" {
				uri = s.files.URI("a.bin")
			}
			s.create(t, 1)
			if c := s.write(t, "/9/1/3", uri); c != codes.Changed {
				t.Fatalf("write URI: %v", c)
			}
			s.RunUntil(s.Now.Add(2*time.Hour), func() bool { return s.swStatus(1).Result >= 50 })
			s.wantState(t, 1, agent.SoftwareInitial, tc.want)
			if len(s.apps.Slot(1).Data) != 0 {
				t.Errorf("slot keeps %d bytes after the failure", len(s.apps.Slot(1).Data))
			}
			if s.readString(t, "/9/1/16") == "" {
				t.Error("no Status Reason after the failure")
			}
		})
	}
}

func TestSoftwareResumeAfterPowerCuts(t *testing.T) {
	img := image(2<<20, 28)
	p := pkg(t, img, "2.0.0", testKey)
	s := newSwSim(t, 4, agenttest.Faults{}, nil)
	s.files.Files["a.bin"] = p
	s.create(t, 2)
	s.write(t, "/9/2/3", s.files.URI("a.bin"))
	rng := rand.New(rand.NewPCG(4, 5))
	for cut := 0; cut < 6; cut++ {
		target := int64(len(p)) * int64(cut+1) / 7
		target += rng.Int64N(int64(len(p)) / 14)
		s.RunUntil(s.Now.Add(time.Hour), func() bool { return s.files.Bytes >= target })
		s.apps.PowerCut()
		if err := s.Restart(nil); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.WaitEvent(agent.EventRegistered, 10*time.Minute); !ok {
			t.Fatal("not registered after the restart")
		}
		if st := s.swStatus(2).State; st != agent.SoftwareDownloadStarted {
			t.Fatalf("after restart %d the instance is %v, want download started", cut, st)
		}
	}
	s.waitSW(t, 2, agent.SoftwareDelivered, 10*time.Hour)
	if !s.apps.Equal(2, img) {
		t.Fatal("slot 2 does not hold the image")
	}
	if ratio := float64(s.files.Bytes) / float64(len(p)); ratio > 1.10 {
		t.Errorf("fetched %.2f× the package over 6 interruptions, want ≤ 1.10", ratio)
	}
	for i, off := range s.apps.Slot(2).Opens[1:] {
		if off == 0 {
			t.Errorf("open %d restarted from 0; a checkpoint should have been resumed", i+1)
		}
	}
	s.install(t, 2)
}

func TestSoftwareTwoInstances(t *testing.T) {
	imgA, imgB := image(100<<10, 29), image(60<<10, 30)
	t.Run("one after the other", func(t *testing.T) {
		s := newSwSim(t, 5, agenttest.Faults{}, nil)
		s.files.Files["a"] = pkg(t, imgA, "1.0.0", testKey)
		s.files.Files["b"] = pkg(t, imgB, "4.0.0", testKey)
		s.create(t, 0)
		s.create(t, 1)
		s.deliver(t, 0, "a")
		s.wantState(t, 1, agent.SoftwareInitial, agent.SoftwareResultInitial)
		s.deliver(t, 1, "b")
		s.install(t, 1)
		s.install(t, 0)
		s.exec(t, "/9/1/10")
		if !s.apps.Equal(0, imgA) || !s.apps.Equal(1, imgB) {
			t.Fatal("the slots do not hold their own images")
		}
		// Both instances, their states and activation survive a restart.
		if err := s.Restart(nil); err != nil {
			t.Fatal(err)
		}
		s.WaitEvent(agent.EventRegistered, 10*time.Minute)
		reg := s.Server.Registers[len(s.Server.Registers)-1]
		if links := string(reg.Payload); !strings.Contains(links, "</9/0>") || !strings.Contains(links, "</9/1>") {
			t.Errorf("registration after the restart lists %s", links)
		}
		s.wantState(t, 0, agent.SoftwareInstalled, agent.SoftwareResultInstalled)
		s.wantState(t, 1, agent.SoftwareInstalled, agent.SoftwareResultInstalled)
		if a0, a1 := s.readString(t, "/9/0/12"), s.readString(t, "/9/1/12"); a0 != "0" || a1 != "1" {
			t.Errorf("activation after the restart %s %s, want 0 and 1", a0, a1)
		}
		if v0, v1 := s.readString(t, "/9/0/1"), s.readString(t, "/9/1/1"); v0 != "1.0.0" || v1 != "4.0.0" {
			t.Errorf("versions after the restart %q %q", v0, v1)
		}
	})
	t.Run("at the same time, with firmware", func(t *testing.T) {
		flash := &agenttest.Flash{Running: "1.0.0"}
		s := newSwSim(t, 6, agenttest.Faults{Loss: 0.05}, func(c *agent.Config) {
			c.Firmware = agent.FirmwareConfig{Handler: flash, TrustedKeys: c.Software.TrustedKeys}
			c.Device.FirmwareVersion = "1.0.0"
		})
		imgF := image(80<<10, 31)
		s.files.Files["a"] = pkg(t, imgA, "1.0.0", testKey)
		s.files.Files["b"] = pkg(t, imgB, "4.0.0", testKey)
		s.files.Files["f"] = pkg(t, imgF, "2.0.0", testKey)
		s.create(t, 0)
		s.create(t, 1)
		s.write(t, "/9/0/3", s.files.URI("a"))
		s.write(t, "/9/1/3", s.files.URI("b"))
		s.write(t, "/5/0/1", s.files.URI("f"))
		s.RunUntil(s.Now.Add(10*time.Hour), func() bool {
			return s.swStatus(0).State == agent.SoftwareDelivered && s.swStatus(1).State == agent.SoftwareDelivered && s.status().State == agent.FirmwareDownloaded
		})
		if !s.apps.Equal(0, imgA) || !s.apps.Equal(1, imgB) || !flash.Equal(imgF) {
			t.Fatalf("states %v %v %v; images in place %v %v %v", s.swStatus(0).State, s.swStatus(1).State, s.status().State,
				s.apps.Equal(0, imgA), s.apps.Equal(1, imgB), flash.Equal(imgF))
		}
	})
}

func TestSoftwareHandlerFailures(t *testing.T) {
	s := newSwSim(t, 7, agenttest.Faults{}, nil)
	s.files.Files["a"] = pkg(t, image(10<<10, 32), "1.0.0", testKey)
	s.create(t, 0)
	s.deliver(t, 0, "a")

	s.apps.FailInstall = errors.New("disk on fire")
	s.exec(t, "/9/0/4")
	s.RunUntil(s.Now.Add(time.Minute), func() bool { return s.swStatus(0).Result == agent.SoftwareResultInstallFailure })
	s.wantState(t, 0, agent.SoftwareDelivered, agent.SoftwareResultInstallFailure)
	if r := s.readString(t, "/9/0/16"); r != "disk on fire" {
		t.Errorf("Status Reason %q", r)
	}
	s.apps.FailInstall = nil
	s.install(t, 0)
	if r := s.readString(t, "/9/0/16"); r != "" {
		t.Errorf("Status Reason after a good install %q", r)
	}

	s.apps.FailActivate = errors.New("will not start")
	if c := s.exec(t, "/9/0/10"); c != codes.Changed {
		t.Fatalf("Activate: %v", c)
	}
	if a, r := s.readString(t, "/9/0/12"), s.readString(t, "/9/0/16"); a != "0" || r != "will not start" {
		t.Errorf("after a failed Activate: activation %s reason %q", a, r)
	}
	s.apps.FailActivate = nil

	s.apps.FailUninstall = errors.New("busy")
	s.execArgs(t, "/9/0/6", "0")
	s.wantState(t, 0, agent.SoftwareInstalled, agent.SoftwareResultUninstallFailure)
	if r := s.Server.Request(codes.DELETE, "/9/0", nil); r == nil || r.Code != codes.InternalServerError {
		t.Errorf("Delete of software that will not uninstall: %v, want 5.00", r)
	}
	s.apps.FailUninstall = nil

	// The stored package changed before the install: integrity failure,
	// back to INITIAL.
	s.create(t, 1)
	s.deliver(t, 1, "a")
	s.apps.Slot(1).Data[10] ^= 1
	s.exec(t, "/9/1/4")
	s.RunUntil(s.Now.Add(time.Minute), func() bool { return s.swStatus(1).Result >= 50 })
	s.wantState(t, 1, agent.SoftwareInitial, agent.SoftwareResultIntegrityFailure)

	// Delete uninstalls, and the instance goes from the registration.
	if r := s.Server.Request(codes.DELETE, "/9/0", nil); r == nil || r.Code != codes.Deleted {
		t.Fatalf("Delete: %v", r)
	}
	if r := s.Server.Request(codes.GET, "/9/0/7", nil); r == nil || r.Code != codes.NotFound {
		t.Errorf("read of a deleted instance: %v", r)
	}
	if s.apps.Slot(0).Installed != nil {
		t.Error("Delete left the software installed")
	}
	s.RunFor(time.Minute)
	if u := s.Server.Updates[len(s.Server.Updates)-1]; strings.Contains(string(u.Payload), "</9/0>") {
		t.Errorf("update after Delete still lists /9/0: %s", u.Payload)
	}
}

// TestSoftwareStoredRecordCorrupt checks that a software record that
// cannot be right is dropped alone: its instance comes back INITIAL with
// Result 57, the other instances and the firmware record as they were.
func TestSoftwareStoredRecordCorrupt(t *testing.T) {
	s := newSwSim(t, 8, agenttest.Faults{}, nil)
	s.files.Files["a"] = pkg(t, image(10<<10, 33), "1.0.0", testKey)
	for id := uint16(0); id < 4; id++ {
		s.create(t, id)
		s.deliver(t, id, "a")
	}
	s.install(t, 0)
	var env struct {
		V     int             `json:"v"`
		CRC   uint32          `json:"crc"`
		State json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(s.State(), &env); err != nil {
		t.Fatal(err)
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(env.State, &st); err != nil {
		t.Fatal(err)
	}
	var sw map[string]map[string]any
	if err := json.Unmarshal(st["sw"], &sw); err != nil {
		t.Fatal(err)
	}
	delete(sw["1"], "sha256")  // DELIVERED without a package hash
	sw["2"]["v"] = 99          // a layout this agent does not know
	sw["3"]["offset"] = "many" // does not decode
	st["sw"], _ = json.Marshal(sw)
	env.State, _ = json.Marshal(st)
	env.CRC = crc32.ChecksumIEEE(env.State)
	bad, _ := json.Marshal(env)

	s2, err := agenttest.New(s.cfg, bad, 9, agenttest.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Do(agent.CmdStart{})
	if _, ok := s2.WaitEvent(agent.EventRegistered, 10*time.Minute); !ok {
		t.Fatal("not registered")
	}
	ss := &swSim{fwSim: &fwSim{Sim: s2}}
	ss.wantState(t, 0, agent.SoftwareInstalled, agent.SoftwareResultInstalled)
	for id := uint16(1); id < 4; id++ {
		ss.wantState(t, id, agent.SoftwareInitial, agent.SoftwareResultUpdateError)
	}
}

func TestSoftwareStateStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{agent.SoftwareDownloadStarted.String(), "download started"},
		{agent.SoftwareState(9).String(), "state(9)"},
		{agent.SoftwareResultDelivered.String(), "downloaded and verified"},
		{agent.SoftwareResultInvalidURI.String(), "invalid URI"},
		{agent.SoftwareResult(55).String(), "result(55)"},
		{agent.EventSoftware.String(), "software"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// legalSoftware lists the (Update State, Update Result) pairs Object 9
// may show at rest.
func legalSoftware(st agent.SoftwareState, r agent.SoftwareResult) bool {
	switch st {
	case agent.SoftwareInitial:
		return r == agent.SoftwareResultInitial || (r >= 50 && r != agent.SoftwareResultInstallFailure && r != agent.SoftwareResultUninstallFailure)
	case agent.SoftwareDownloadStarted:
		return r == agent.SoftwareResultDownloading
	case agent.SoftwareDownloaded:
		return r == agent.SoftwareResultInitial
	case agent.SoftwareDelivered:
		return r == agent.SoftwareResultDelivered || r == agent.SoftwareResultInstallFailure
	case agent.SoftwareInstalled:
		return r == agent.SoftwareResultInstalled || r == agent.SoftwareResultUninstallFailure
	}
	return false
}

// FuzzSoftwareDatagram feeds arbitrary datagrams to an instance pulling a
// package, as if from the file server, and arbitrary Package writes to
// another: nothing panics, both state machines stay legal, and DELIVERED
// always holds a verified image.
func FuzzSoftwareDatagram(f *testing.F) {
	img := image(3000, 34)
	var buf bytes.Buffer
	if _, err := fwpkg.Build(&buf, fwpkg.Manifest{Version: "2.0.0"}, bytes.NewReader(img), nil); err != nil {
		f.Fatal(err)
	}
	p := buf.Bytes()
	f.Add([]byte{0x60, 0x45, 0, 1, 0xff, 'x'}, []byte("x"))
	f.Add([]byte{0x68, 0x45, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0xd1, 0x0a, 0x06, 0xff, 'y'}, p[:1024])
	f.Add([]byte{}, p)
	f.Fuzz(func(t *testing.T, dgram, push []byte) {
		s := newSwSim(t, 1, agenttest.Faults{}, nil)
		s.files.Files["a.bin"] = p
		s.create(t, 0)
		s.create(t, 1)
		s.write(t, "/9/0/3", s.files.URI("a.bin"))
		s.RunFor(50 * time.Millisecond)
		s.SendFrom(agenttest.FilePeer, dgram)
		s.RunFor(time.Second)
		s.Server.Request(codes.PUT, "/9/1/2", push, agenttest.Uint(message.ContentFormat, 42), agenttest.Block(message.Block1, 0, len(push) == 1024, 6))
		s.RunFor(time.Hour)
		for id := uint16(0); id < 2; id++ {
			st := s.swStatus(id)
			if !legalSoftware(st.State, st.Result) {
				t.Fatalf("/9/%d: illegal state %v result %v", id, st.State, st.Result)
			}
			if st.State == agent.SoftwareDelivered && !s.apps.Equal(id, img) && !bytes.Equal(s.apps.Slot(id).Data, push) {
				t.Fatalf("/9/%d DELIVERED with %d bytes that are neither image", id, len(s.apps.Slot(id).Data))
			}
		}
	})
}
