package agent_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/fwpkg"
)

// testKey signs the packages of these tests.
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

// image returns n pseudo-random bytes.
func image(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// pkg builds a signed package of img at version.
func pkg(t testing.TB, img []byte, version string, key ed25519.PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := fwpkg.Build(&buf, fwpkg.Manifest{Name: "fw", Version: version}, bytes.NewReader(img), key); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pkgFor builds a signed package of img with manifest m.
func pkgFor(t testing.TB, img []byte, m fwpkg.Manifest) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := fwpkg.Build(&buf, m, bytes.NewReader(img), testKey); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fwSim is a registered simulation with a Flash handler and a file server.
type fwSim struct {
	*agenttest.Sim
	flash *agenttest.Flash
	files *agenttest.FileServer
}

func newFwSim(t *testing.T, seed uint64, f agenttest.Faults, mod func(*agent.FirmwareConfig)) *fwSim {
	t.Helper()
	flash := &agenttest.Flash{Running: "1.0.0"}
	cfg := agent.Config{Endpoint: "fw-dev", Lifetime: 24 * time.Hour, Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"},
		Firmware: agent.FirmwareConfig{Handler: flash, TrustedKeys: []ed25519.PublicKey{testKey.Public().(ed25519.PublicKey)}}}
	if mod != nil {
		mod(&cfg.Firmware)
	}
	s := newSim(t, cfg, seed, f)
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, 10*time.Minute); !ok {
		t.Fatalf("not registered; events %v", s.Events)
	}
	return &fwSim{Sim: s, flash: flash, files: s.FileServer()}
}

// readInt reads an integer resource as text.
func (s *fwSim) readInt(t *testing.T, path string) int {
	t.Helper()
	r := s.Server.Request(codes.GET, path, nil, agenttest.Uint(message.Accept, 0))
	if r == nil || r.Code != codes.Content {
		t.Fatalf("read %s: %v", path, r)
	}
	n, err := strconv.Atoi(string(r.Payload))
	if err != nil {
		t.Fatalf("read %s: %q", path, r.Payload)
	}
	return n
}

func (s *fwSim) readString(t *testing.T, path string) string {
	t.Helper()
	r := s.Server.Request(codes.GET, path, nil, agenttest.Uint(message.Accept, 0))
	if r == nil || r.Code != codes.Content {
		t.Fatalf("read %s: %v", path, r)
	}
	return string(r.Payload)
}

func (s *fwSim) write(t *testing.T, path, v string) codes.Code {
	t.Helper()
	r := s.Server.Request(codes.PUT, path, []byte(v), agenttest.Uint(message.ContentFormat, 0))
	if r == nil {
		t.Fatalf("write %s: no answer", path)
	}
	return r.Code
}

func (s *fwSim) exec(t *testing.T, path string) codes.Code {
	t.Helper()
	r := s.Server.Request(codes.POST, path, nil)
	if r == nil {
		t.Fatalf("execute %s: no answer", path)
	}
	return r.Code
}

// state returns the last firmware status the engine reported.
func (s *fwSim) status() agent.FirmwareStatus {
	for i := len(s.Events) - 1; i >= 0; i-- {
		if s.Events[i].Kind == agent.EventFirmware {
			return *s.Events[i].Firmware
		}
	}
	return agent.FirmwareStatus{}
}

// waitRestart runs until the engine has asked for a restart (since its
// last one).
func (s *fwSim) waitRestart(limit time.Duration) bool {
	return s.RunUntil(s.Now.Add(limit), func() bool {
		evs := s.Events
		for i := len(evs) - 1; i >= 0 && evs[i].Kind != agent.EventRegistered; i-- {
			if evs[i].Kind == agent.EventRestart {
				return true
			}
		}
		return false
	})
}

// waitState runs until the firmware reaches state (with any result).
func (s *fwSim) waitState(t *testing.T, st agent.FirmwareState, limit time.Duration) agent.FirmwareStatus {
	t.Helper()
	s.RunUntil(s.Now.Add(limit), func() bool { return s.status().State == st })
	got := s.status()
	if got.State != st {
		t.Fatalf("firmware state %v (result %v), want %v", got.State, got.Result, st)
	}
	return got
}

func TestFirmwarePullUpdateReboot(t *testing.T) {
	s := newFwSim(t, 1, agenttest.Faults{}, nil)
	img := image(200<<10, 1)
	s.files.Files["a.bin"] = pkg(t, img, "2.0.0", testKey)
	if got := s.readInt(t, "/5/0/3"); got != 0 {
		t.Fatalf("initial state %d", got)
	}
	if c := s.exec(t, "/5/0/2"); c != codes.MethodNotAllowed {
		t.Errorf("Update in Idle answered %v, want 4.05", c)
	}
	if c := s.write(t, "/5/0/1", s.files.URI("a.bin")); c != codes.Changed {
		t.Fatalf("write URI: %v", c)
	}
	st := s.waitState(t, agent.FirmwareDownloaded, time.Hour)
	if st.Result != agent.ResultInitial || !s.flash.Equal(img) {
		t.Fatalf("downloaded: result %v, flash %d bytes (want %d)", st.Result, len(s.flash.Data), len(img))
	}
	if v := s.readString(t, "/5/0/7"); v != "2.0.0" {
		t.Errorf("PkgVersion = %q", v)
	}
	if c := s.write(t, "/5/0/1", s.files.URI("a.bin")); c != codes.MethodNotAllowed {
		t.Errorf("URI write while Downloaded answered %v, want 4.05", c)
	}
	if c := s.exec(t, "/5/0/2"); c != codes.Changed {
		t.Fatalf("Update: %v", c)
	}
	if !s.waitRestart(time.Minute) {
		t.Fatal("no restart after the install")
	}
	if got := s.status(); got.State != agent.FirmwareUpdating {
		t.Fatalf("state before the restart %v", got.State)
	}
	if err := s.Restart(nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, 10*time.Minute); !ok {
		t.Fatal("not registered after the restart")
	}
	if got, res := s.readInt(t, "/5/0/3"), s.readInt(t, "/5/0/5"); got != 0 || res != 1 {
		t.Errorf("after the update: state %d result %d, want 0 and 1", got, res)
	}
	if v := s.readString(t, "/3/0/3"); v != "2.0.0" {
		t.Errorf("/3/0/3 = %q, want 2.0.0", v)
	}
}

func TestFirmwareTransitionsNotified(t *testing.T) {
	s := newFwSim(t, 2, agenttest.Faults{}, nil)
	s.files.Files["a.bin"] = pkg(t, image(4000, 2), "2.0.0", testKey)
	// pmin 300 s would coalesce ordinary changes; state changes go anyway.
	if r := s.Server.Request(codes.PUT, "/5/0/3", nil, message.Option{ID: message.URIQuery, Value: []byte("pmin=300")}); r == nil || r.Code != codes.Changed {
		t.Fatalf("write attributes: %v", r)
	}
	if r := s.Server.Request(codes.GET, "/5/0/3", nil, agenttest.Uint(message.Observe, 0), agenttest.Uint(message.Accept, 0)); r == nil || r.Code != codes.Content {
		t.Fatalf("observe: %v", r)
	}
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	s.waitState(t, agent.FirmwareDownloaded, time.Hour)
	s.exec(t, "/5/0/2")
	s.waitRestart(time.Minute)
	s.RunFor(time.Minute)
	var seen []string
	for _, n := range s.Server.Notifications {
		seen = append(seen, string(n.Payload))
		if n.Type != message.Confirmable {
			t.Errorf("state notification %q sent %v, want CON", n.Payload, n.Type)
		}
	}
	if fmt.Sprint(seen) != "[1 2 3]" {
		t.Errorf("notified states %v, want [1 2 3]", seen)
	}
}

// TestFirmwareProgressEvents checks that a pull reports progress in
// steps of a percent or more: about a hundred events whatever the size,
// each with more bytes than the one before, and at least one per 16 KiB
// step for a small image.
func TestFirmwareProgressEvents(t *testing.T) {
	for _, tc := range []struct {
		size     int
		min, max int
	}{
		{size: 100 << 10, min: 5, max: 8},
		{size: 1 << 20, min: 60, max: 101},
		{size: 4 << 20, min: 90, max: 101},
	} {
		t.Run(fmt.Sprint(tc.size>>10, "KiB"), func(t *testing.T) {
			s := newFwSim(t, 3, agenttest.Faults{}, nil)
			s.files.Files["p.bin"] = pkg(t, image(tc.size, 3), "2.0.0", testKey)
			from := len(s.Events)
			s.write(t, "/5/0/1", s.files.URI("p.bin"))
			s.waitState(t, agent.FirmwareDownloaded, time.Hour)
			var n int
			var last int64
			for _, ev := range s.Events[from:] {
				if ev.Kind != agent.EventFirmware || ev.Firmware.State != agent.FirmwareDownloading || ev.Firmware.Bytes == 0 {
					continue
				}
				if ev.Firmware.Bytes <= last {
					t.Errorf("progress went from %d to %d bytes", last, ev.Firmware.Bytes)
				}
				last = ev.Firmware.Bytes
				n++
			}
			if n < tc.min || n > tc.max {
				t.Errorf("%d progress events for %d bytes, want %d..%d", n, tc.size, tc.min, tc.max)
			}
		})
	}
}

func TestFirmwarePullLossy(t *testing.T) {
	img := image(1<<20, 3)
	p := pkg(t, img, "2.0.0", testKey)
	for _, loss := range []float64{0.10, 0.25} {
		for seed := uint64(1); seed <= 2; seed++ {
			t.Run(fmt.Sprintf("loss%.0f%%/seed%d", loss*100, seed), func(t *testing.T) {
				s := newFwSim(t, seed, agenttest.Faults{Loss: loss, Duplicate: 0.05, Reorder: 0.25}, nil)
				s.files.Files["a.bin"] = p
				if c := s.write(t, "/5/0/1", s.files.URI("a.bin")); c != codes.Changed {
					t.Fatalf("write URI: %v", c)
				}
				st := s.waitState(t, agent.FirmwareDownloaded, 48*time.Hour)
				if st.Result != agent.ResultInitial || !s.flash.Equal(img) {
					t.Fatalf("result %v; flash holds the image: %v", st.Result, s.flash.Equal(img))
				}
			})
		}
	}
}

func TestFirmwareResumeAfterPowerCuts(t *testing.T) {
	img := image(4<<20, 4)
	s := newFwSim(t, 4, agenttest.Faults{}, nil)
	pullThroughPowerCuts(t, s, img, 4)
	for i, off := range s.flash.Opens[1:] {
		if off == 0 {
			t.Errorf("open %d restarted from 0; a checkpoint should have been resumed", i+1)
		}
	}
}

// pullThroughPowerCuts has s pull a package of img and cuts the power at
// ten random points of the download (rand seed), then checks that the
// image arrived whole and that the bytes fetched stayed within 1.10× the
// package.
func pullThroughPowerCuts(t *testing.T, s *fwSim, img []byte, seed uint64) {
	t.Helper()
	p := pkg(t, img, "2.0.0", testKey)
	s.files.Files["a.bin"] = p
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	rng := rand.New(rand.NewPCG(seed, seed))
	for cut := 0; cut < 10; cut++ {
		// Run to a random point of the download, then cut the power.
		target := int64(len(p)) * int64(cut+1) / 11
		target += rng.Int64N(int64(len(p)) / 22)
		s.RunUntil(s.Now.Add(time.Hour), func() bool { return s.files.Bytes >= target })
		s.flash.PowerCut()
		if err := s.Restart(nil); err != nil {
			t.Fatal(err)
		}
	}
	st := s.waitState(t, agent.FirmwareDownloaded, 10*time.Hour)
	if st.Result != agent.ResultInitial || !s.flash.Equal(img) {
		t.Fatalf("result %v; flash holds the image: %v", st.Result, s.flash.Equal(img))
	}
	if ratio := float64(s.files.Bytes) / float64(len(p)); ratio > 1.10 {
		t.Errorf("fetched %.2f× the package over 10 interruptions, want ≤ 1.10", ratio)
	}
}

func TestFirmwareChangedOnServerRestarts(t *testing.T) {
	pullChangedOnServer(t, newFwSim(t, 5, agenttest.Faults{}, nil))
}

// pullChangedOnServer has s pull a package that the server replaces by
// another once a third of it has arrived: the stored image must be the
// new one, never a splice of the two.
func pullChangedOnServer(t *testing.T, s *fwSim) {
	t.Helper()
	old, cur := image(300<<10, 5), image(300<<10, 6)
	s.files.Files["a.bin"] = pkg(t, old, "2.0.0", testKey)
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	s.RunUntil(s.Now.Add(time.Hour), func() bool { return s.files.Bytes > 100<<10 })
	s.files.Files["a.bin"] = pkg(t, cur, "2.0.1", testKey)
	st := s.waitState(t, agent.FirmwareDownloaded, time.Hour)
	if st.Result != agent.ResultInitial || !s.flash.Equal(cur) {
		t.Fatalf("result %v; flash holds the new image: %v, the old: %v", st.Result, s.flash.Equal(cur), s.flash.Equal(old))
	}
}

func TestFirmwarePush(t *testing.T) {
	s := newFwSim(t, 6, agenttest.Faults{}, nil)
	img := image(50<<10, 7)
	p := pkg(t, img, "2.0.0", testKey)
	push := func(from, to int, szx uint8) codes.Code {
		size := 16 << szx
		var last codes.Code
		for num := from; num*size < len(p) && num < to; num++ {
			end := min((num+1)*size, len(p))
			more := end < len(p)
			r := s.Server.Request(codes.PUT, "/5/0/0", p[num*size:end], agenttest.Uint(message.ContentFormat, 42),
				agenttest.Block(message.Block1, uint32(num), more, szx))
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
	// Half a push, then a new block 0 restarts it.
	if c := push(0, 20, 6); c != codes.Continue {
		t.Fatalf("first half: %v", c)
	}
	if got := s.status(); got.State != agent.FirmwareDownloading {
		t.Fatalf("state during the push %v", got.State)
	}
	// An out-of-order block is refused and changes nothing.
	if r := s.Server.Request(codes.PUT, "/5/0/0", p[30*1024:31*1024], agenttest.Uint(message.ContentFormat, 42), agenttest.Block(message.Block1, 30, true, 6)); r.Code != codes.RequestEntityIncomplete {
		t.Errorf("out-of-order block answered %v, want 4.08", r.Code)
	}
	if c := push(0, 1<<20, 6); c != codes.Changed {
		t.Fatalf("push: %v", c)
	}
	st := s.waitState(t, agent.FirmwareDownloaded, time.Minute)
	if st.Result != agent.ResultInitial || !s.flash.Equal(img) {
		t.Fatalf("result %v; flash holds the image: %v", st.Result, s.flash.Equal(img))
	}
	// The NULL package resets.
	if r := s.Server.Request(codes.PUT, "/5/0/0", nil, agenttest.Uint(message.ContentFormat, 42)); r.Code != codes.Changed {
		t.Fatalf("NULL package: %v", r.Code)
	}
	if got := s.readInt(t, "/5/0/3"); got != 0 || len(s.flash.Data) != 0 {
		t.Errorf("after the NULL package: state %d, flash %d bytes", got, len(s.flash.Data))
	}
}

func TestFirmwareBadInputs(t *testing.T) {
	img := image(20<<10, 8)
	good := pkg(t, img, "2.0.0", testKey)
	other, _ := func() (ed25519.PrivateKey, error) { return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)), nil }()
	flip := bytes.Clone(good)
	flip[len(flip)-100] ^= 1
	tests := []struct {
		name   string
		uri    string // empty: the file server's a.bin
		file   []byte
		mod    func(*agent.FirmwareConfig)
		server func(*agenttest.FileServer)
		want   agent.UpdateResult
	}{
		{name: "unsupported scheme ftp", uri: "ftp://h/x", want: agent.ResultUnsupportedProtocol},
		{name: "unsupported scheme file", uri: "file:///etc/passwd", want: agent.ResultUnsupportedProtocol},
		{name: "http without a fetcher", uri: "http://h/x", want: agent.ResultUnsupportedProtocol},
		{name: "bad port", uri: "coap://h:99999/x", want: agent.ResultInvalidURI},
		{name: "negative port", uri: "coap://h:-1/x", want: agent.ResultInvalidURI},
		{name: "bad escape", uri: "coap://h/%zz", want: agent.ResultInvalidURI},
		{name: "bad ipv6", uri: "coap://[::1/x", want: agent.ResultInvalidURI},
		{name: "empty host", uri: "coap:///x", want: agent.ResultInvalidURI},
		{name: "userinfo", uri: "coap://u:p@h/x", want: agent.ResultInvalidURI},
		{name: "not found", uri: "coap://" + agenttest.FilePeer + "/fw/missing", want: agent.ResultInvalidURI},
		{name: "server mute", file: good, server: func(f *agenttest.FileServer) { f.Mute = true }, want: agent.ResultConnectionLost},
		{name: "truncated by one byte", file: good[:len(good)-1], want: agent.ResultIntegrityFailure},
		{name: "extended by one byte", file: append(bytes.Clone(good), 0), want: agent.ResultIntegrityFailure},
		{name: "bit flip", file: flip, want: agent.ResultIntegrityFailure},
		{name: "untrusted signer", file: pkg(t, img, "2.0.0", other), want: agent.ResultIntegrityFailure},
		{name: "unsigned when required", file: pkg(t, img, "2.0.0", nil), mod: func(c *agent.FirmwareConfig) { c.RequireSignature = true }, want: agent.ResultIntegrityFailure},
		{name: "raw image when required", file: img, mod: func(c *agent.FirmwareConfig) { c.RequireSignature = true }, want: agent.ResultIntegrityFailure},
		{name: "rollback", file: pkg(t, img, "0.9.0", testKey), want: agent.ResultUnsupportedPackage},
		{name: "too large", file: good, mod: func(c *agent.FirmwareConfig) { c.MaxSize = 1000 }, want: agent.ResultNotEnoughSpace},
		{name: "flash full", file: good, mod: nil, want: agent.ResultNotEnoughSpace},
		{name: "host of 256 characters", uri: "coap://" + strings.Repeat("h", 256) + "/x", want: agent.ResultInvalidURI},
		{name: "1000 path segments", uri: "coap://h" + strings.Repeat("/a", 1000), want: agent.ResultInvalidURI},
		{name: "URI of 1000 bytes", uri: "coap://h/" + strings.Repeat("x", 1000), want: agent.ResultInvalidURI},
		{name: "coaps without a credential", uri: "coaps://h/x", want: agent.ResultUnsupportedProtocol},
		{name: "coap+tcp", uri: "coap+tcp://h/x", want: agent.ResultUnsupportedProtocol},
		{name: "signature required, no key configured", file: good, mod: func(c *agent.FirmwareConfig) { c.RequireSignature, c.TrustedKeys = true, nil }, want: agent.ResultIntegrityFailure},
		{name: "wrong hardware", file: pkgFor(t, img, fwpkg.Manifest{Version: "2.0.0", Hardware: "board-b"}), mod: func(c *agent.FirmwareConfig) { c.Hardware = "board-a" }, want: agent.ResultUnsupportedPackage},
		{name: "zero-length file", file: []byte{}, want: agent.ResultIntegrityFailure},
		{name: "header only", file: good[:len(good)-len(img)], want: agent.ResultIntegrityFailure},
		{name: "service unavailable for good", file: good, server: func(f *agenttest.FileServer) { f.Code = codes.ServiceUnavailable }, want: agent.ResultConnectionLost},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newFwSim(t, uint64(100+i), agenttest.Faults{}, tc.mod)
			if tc.name == "flash full" {
				s.flash.FailWrite = agent.ErrFirmwareNoSpace
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
			if c := s.write(t, "/5/0/1", uri); c != codes.Changed {
				t.Fatalf("write URI: %v", c)
			}
			s.RunUntil(s.Now.Add(2*time.Hour), func() bool {
				st := s.status()
				return st.State == agent.FirmwareIdle && st.Result != agent.ResultInitial
			})
			if st, res := s.readInt(t, "/5/0/3"), s.readInt(t, "/5/0/5"); st != 0 || agent.UpdateResult(res) != tc.want {
				t.Errorf("state %d result %d (%v), want 0 and %d (%v)", st, res, agent.UpdateResult(res), tc.want, tc.want)
			}
			if len(s.flash.Data) != 0 {
				t.Errorf("flash keeps %d bytes after the failure", len(s.flash.Data))
			}
		})
	}
}

func TestFirmwareCancelAndReset(t *testing.T) {
	s := newFwSim(t, 9, agenttest.Faults{}, nil)
	s.files.Files["a.bin"] = pkg(t, image(500<<10, 9), "2.0.0", testKey)
	if c := s.exec(t, "/5/0/10"); c != codes.MethodNotAllowed {
		t.Errorf("Cancel in Idle answered %v, want 4.05", c)
	}
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	s.RunUntil(s.Now.Add(time.Hour), func() bool { return s.files.Bytes > 50<<10 })
	if c := s.write(t, "/5/0/1", s.files.URI("b.bin")); c != codes.MethodNotAllowed {
		t.Errorf("new URI while Downloading answered %v, want 4.05", c)
	}
	if c := s.exec(t, "/5/0/10"); c != codes.Changed {
		t.Fatalf("Cancel: %v", c)
	}
	if st, res := s.readInt(t, "/5/0/3"), s.readInt(t, "/5/0/5"); st != 0 || res != 10 {
		t.Errorf("after Cancel: state %d result %d, want 0 and 10", st, res)
	}
	before := s.files.Bytes
	s.RunFor(10 * time.Minute)
	if s.files.Bytes != before {
		t.Errorf("the pull went on after Cancel (%d more bytes)", s.files.Bytes-before)
	}
	// An empty URI resets a finished download.
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	s.waitState(t, agent.FirmwareDownloaded, time.Hour)
	if c := s.write(t, "/5/0/1", ""); c != codes.Changed {
		t.Fatalf("empty URI: %v", c)
	}
	if st, res := s.readInt(t, "/5/0/3"), s.readInt(t, "/5/0/5"); st != 0 || res != 0 || len(s.flash.Data) != 0 {
		t.Errorf("after the empty URI: state %d result %d flash %d", st, res, len(s.flash.Data))
	}
}

func TestFirmwareInstallOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prepare   func(f *agenttest.Flash)
		wantState int
		wantRes   agent.UpdateResult
		restart   bool
	}{
		{name: "deferred", prepare: func(f *agenttest.Flash) { f.DeferInstall = agent.ErrFirmwareDeferred }, wantState: 2, wantRes: agent.ResultDeferred},
		{name: "install fails", prepare: func(f *agenttest.Flash) { f.FailInstall = fmt.Errorf("boom") }, wantState: 2, wantRes: agent.ResultFailed},
		{name: "new image does not boot", prepare: func(f *agenttest.Flash) { f.Installed = "1.0.0" }, wantState: 2, wantRes: agent.ResultFailed, restart: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFwSim(t, 10, agenttest.Faults{}, nil)
			s.files.Files["a.bin"] = pkg(t, image(10<<10, 10), "2.0.0", testKey)
			s.write(t, "/5/0/1", s.files.URI("a.bin"))
			s.waitState(t, agent.FirmwareDownloaded, time.Hour)
			if tc.name != "new image does not boot" {
				tc.prepare(s.flash)
			}
			s.exec(t, "/5/0/2")
			if tc.restart {
				if !s.waitRestart(time.Minute) {
					t.Fatal("no restart")
				}
				tc.prepare(s.flash)
				if err := s.Restart(nil); err != nil {
					t.Fatal(err)
				}
				s.WaitEvent(agent.EventRegistered, 10*time.Minute)
			} else {
				s.RunFor(time.Minute)
			}
			if st, res := s.readInt(t, "/5/0/3"), s.readInt(t, "/5/0/5"); st != tc.wantState || agent.UpdateResult(res) != tc.wantRes {
				t.Errorf("state %d result %d, want %d and %d", st, res, tc.wantState, tc.wantRes)
			}
		})
	}
}

// legal lists the (State, Result) pairs Object 5 may show at rest.
func legal(st agent.FirmwareState, r agent.UpdateResult) bool {
	switch st {
	case agent.FirmwareIdle:
		return true
	case agent.FirmwareDownloading, agent.FirmwareUpdating:
		return r == agent.ResultInitial
	case agent.FirmwareDownloaded:
		return r == agent.ResultInitial || r == agent.ResultFailed || r == agent.ResultDeferred
	}
	return false
}

// TestFirmwarePowerCutAtEveryStore cuts the power right after each state
// write of a whole update (download, checkpoints, verify, install, result)
// and checks that the agent comes back in a legal state and still
// finishes the update.
func TestFirmwarePowerCutAtEveryStore(t *testing.T) {
	img := image(160<<10, 11)
	p := pkg(t, img, "2.0.0", testKey)
	run := func(t *testing.T, cutAt int) (cut bool) {
		s := newFwSim(t, 11, agenttest.Faults{}, nil)
		s.files.Files["a.bin"] = p
		start := len(s.EventsOf(agent.EventStore))
		stores := func() int { return len(s.EventsOf(agent.EventStore)) - start }
		s.write(t, "/5/0/1", s.files.URI("a.bin"))
		stop := func() bool { return cutAt > 0 && stores() >= cutAt }
		if !s.RunUntil(s.Now.Add(time.Hour), func() bool { return stop() || s.status().State == agent.FirmwareDownloaded }) {
			t.Fatal("download did not finish")
		}
		if !stop() {
			if s.exec(t, "/5/0/2") != codes.Changed {
				t.Fatal("Update refused")
			}
			s.RunUntil(s.Now.Add(time.Minute), func() bool { return stop() || len(s.EventsOf(agent.EventRestart)) > 0 })
		}
		cut = stop()
		s.flash.PowerCut()
		if err := s.Restart(nil); err != nil {
			t.Fatal(err)
		}
		s.WaitEvent(agent.EventRegistered, 10*time.Minute)
		st, res := agent.FirmwareState(s.readInt(t, "/5/0/3")), agent.UpdateResult(s.readInt(t, "/5/0/5"))
		if !legal(st, res) {
			t.Fatalf("cut at store %d: illegal state %v result %v", cutAt, st, res)
		}
		// Finish the update from wherever it is.
		if st == agent.FirmwareIdle && res != agent.ResultSuccess {
			s.write(t, "/5/0/1", s.files.URI("a.bin"))
		}
		s.RunUntil(s.Now.Add(time.Hour), func() bool {
			st := s.status()
			return st.State == agent.FirmwareDownloaded || st.Result == agent.ResultSuccess
		})
		if s.status().State == agent.FirmwareDownloaded {
			if !s.flash.Equal(img) {
				t.Fatalf("cut at store %d: Downloaded but the flash does not hold the image", cutAt)
			}
			s.exec(t, "/5/0/2")
			s.waitRestart(time.Minute)
			if err := s.Restart(nil); err != nil {
				t.Fatal(err)
			}
			s.WaitEvent(agent.EventRegistered, 10*time.Minute)
		}
		if st, res := s.readInt(t, "/5/0/3"), s.readInt(t, "/5/0/5"); st != 0 || res != 1 || s.readString(t, "/3/0/3") != "2.0.0" {
			t.Fatalf("cut at store %d: ended in state %d result %d", cutAt, st, res)
		}
		return cut
	}
	for k := 1; ; k++ {
		if !run(t, k) {
			if k < 5 {
				t.Fatalf("only %d state writes in a whole update", k-1)
			}
			break
		}
	}
}

func TestFirmwareStoredStateCorrupt(t *testing.T) {
	s := newFwSim(t, 12, agenttest.Faults{}, nil)
	s.files.Files["a.bin"] = pkg(t, image(10<<10, 12), "2.0.0", testKey)
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	s.waitState(t, agent.FirmwareDownloaded, time.Hour)
	st := s.State()
	for _, cut := range []int{0, 1, len(st) / 2, len(st) - 1} {
		bad := bytes.Clone(st[:cut])
		if _, err := agent.NewEngine(agent.Config{ServerURI: agenttest.ServerURI, Endpoint: "x", Firmware: agent.FirmwareConfig{Handler: &agenttest.Flash{}}}, bad); err != nil {
			t.Errorf("torn state (%d bytes) made NewEngine fail: %v", cut, err)
		}
	}
}

// FuzzFirmwareDatagram feeds arbitrary datagrams to an engine pulling a
// package, as if from the file server, and arbitrary Package writes from
// the LwM2M server: nothing panics, the state machine stays legal, and a
// Downloaded state always holds a verified image.
func FuzzFirmwareDatagram(f *testing.F) {
	img := image(3000, 30)
	var buf bytes.Buffer
	if _, err := fwpkg.Build(&buf, fwpkg.Manifest{Version: "2.0.0"}, bytes.NewReader(img), nil); err != nil {
		f.Fatal(err)
	}
	p := buf.Bytes()
	f.Add([]byte{0x60, 0x45, 0, 1, 0xff, 'x'}, []byte("x"))
	f.Add([]byte{0x68, 0x45, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0xd1, 0x0a, 0x06, 0xff, 'y'}, p[:1024])
	f.Add([]byte{}, p)
	f.Fuzz(func(t *testing.T, dgram, push []byte) {
		s := newFwSim(t, 1, agenttest.Faults{}, nil)
		s.files.Files["a.bin"] = p
		s.write(t, "/5/0/1", s.files.URI("a.bin"))
		s.RunFor(50 * time.Millisecond)
		s.SendFrom(agenttest.FilePeer, dgram)
		s.RunFor(time.Second)
		s.Server.Request(codes.PUT, "/5/0/0", push, agenttest.Uint(message.ContentFormat, 42), agenttest.Block(message.Block1, 0, len(push) == 1024, 6))
		s.RunFor(time.Hour)
		st := s.status()
		if !legal(st.State, st.Result) {
			t.Fatalf("illegal state %v result %v", st.State, st.Result)
		}
		if st.State == agent.FirmwareDownloaded && !s.flash.Equal(img) && !bytes.Equal(s.flash.Data, push) {
			t.Fatalf("Downloaded with %d bytes that are neither image", len(s.flash.Data))
		}
	})
}
