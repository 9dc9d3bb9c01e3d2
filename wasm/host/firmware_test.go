package host

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/wasm/abi"
)

func TestFirmwareCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want FirmwareCode
	}{
		{"nil", nil, 0},
		{"no space", fmt.Errorf("flash full: %w", agent.ErrFirmwareNoSpace), abi.FwNotEnoughSpace},
		{"no memory", agent.ErrFirmwareNoMemory, abi.FwOutOfMemory},
		{"integrity", agent.ErrFirmwareIntegrity, abi.FwIntegrityFailure},
		{"unsupported", agent.ErrFirmwareUnsupported, abi.FwUnsupportedPackageType},
		{"deferred", agent.ErrFirmwareDeferred, abi.FwDeferred},
		{"failed: the default", agent.ErrFirmwareFailed, abi.FwOther},
		{"other", errors.New("boom"), abi.FwOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := firmwareCode(tt.err); got != tt.want {
				t.Errorf("firmwareCode(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

// TestFirmwareDisabled: without a handler the module has no Object 5, and
// "firmware": true with a host whose imports are stubs still works: the
// object exists and a pull fails with the handler's default result.
func TestFirmwareDisabled(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    string
		object bool
	}{
		{"no key", `{"AVC_SERVER_URI":"coap://127.0.0.1:5683","AVC_ENDPOINT":"e"}`, false},
		{"false", `{"AVC_SERVER_URI":"coap://127.0.0.1:5683","AVC_ENDPOINT":"e","firmware":false}`, false},
		{"true", `{"AVC_SERVER_URI":"coap://127.0.0.1:5683","AVC_ENDPOINT":"e","firmware":true}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := new(recorder)
			m := newModule(t, rec)
			if err := m.InitJSON([]byte(tt.cfg), nil); err != nil {
				t.Fatal(err)
			}
			if err := m.Command(t0, agent.CmdStart{}); err != nil {
				t.Fatal(err)
			}
			reg := decode(t, rec.sent[len(rec.sent)-1].data)
			has := bytes.Contains(reg.Payload, []byte("</5/0>"))
			if has != tt.object {
				t.Errorf("register payload %q: /5/0 listed = %v, want %v", reg.Payload, has, tt.object)
			}
		})
	}
	// Module.Init adds "firmware": true when Imports.Firmware is set.
	rec := new(recorder)
	im := rec.imports()
	im.Firmware = &agenttest.Flash{}
	withFW, err := testRT.Instantiate(context.Background(), im)
	if err != nil {
		t.Fatal(err)
	}
	defer withFW.Close(context.Background())
	if err := withFW.Init(goodConfig(), nil); err != nil {
		t.Fatal(err)
	}
	if err := withFW.Command(t0, agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if reg := decode(t, rec.sent[0].data); !bytes.Contains(reg.Payload, []byte("</5/0>")) {
		t.Errorf("Init with Imports.Firmware: register payload %q lacks </5/0>", reg.Payload)
	}

	m := newModule(t, nil)
	e := wantCode(t, m.InitJSON([]byte(`{"AVC_SERVER_URI":"coap://127.0.0.1:5683","AVC_ENDPOINT":"e","firmware":"yes"}`), nil), CodeBadInput)
	if !bytes.Contains([]byte(e.Msg), []byte("firmware: want true or false")) {
		t.Errorf("avc_last_error = %q", e.Msg)
	}
}

// upgradeFlash is an agenttest.Flash that remembers the packages it was
// asked to install.
type upgradeFlash struct {
	*agenttest.Flash
	upgraded []agent.FirmwarePackage
}

func (f *upgradeFlash) PerformUpgrade(pkg agent.FirmwarePackage) error {
	f.upgraded = append(f.upgraded, pkg)
	return f.Flash.PerformUpgrade(pkg)
}

// fwTest is a firmware update of a wasm agent against the LwM2M server of
// package server (which serves /fw/<name> from its FirmwareDir) over real
// UDP.
type fwTest struct {
	t       *testing.T
	srv     *server.Server
	files   *server.Server // another host serving the same images
	image   []byte         // in fw.pkg
	flash   *upgradeFlash
	agent   *Agent
	cancel  context.CancelFunc
	runErr  chan error
	events  []agent.Event // all of them, in order
	pending <-chan agent.Event
	stopped bool // Run has returned
}

const fwEndpoint = "wasm-fw"

func startServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	cfg.CoAPAddr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := server.New(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newFWTest writes a signed package of a 20 KiB image, version 1.2.3,
// starts the servers and runs an agent with the flash, trusting the key.
func newFWTest(t *testing.T, flash *agenttest.Flash) *fwTest {
	return newFWTestWith(t, flash, server.Config{}, nil)
}

// newFWTestWith is newFWTest with the package server's configuration
// (its listeners and FirmwareDir are set here) and more agent settings.
func newFWTestWith(t *testing.T, flash *agenttest.Flash, files server.Config, extra map[string]string) *fwTest {
	pub, priv, err := fwpkg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	seed := rand.Uint64()
	t.Logf("image seed %d", seed)
	image := make([]byte, 20<<10)
	r := rand.New(rand.NewPCG(seed, 0))
	for i := range image {
		image[i] = byte(r.Uint32())
	}
	dir := t.TempDir()
	writePackage(t, filepath.Join(dir, "fw.pkg"), "1.2.3", image, priv)
	ft := &fwTest{t: t, image: image, flash: &upgradeFlash{Flash: flash}, runErr: make(chan error, 1)}
	ft.srv = startServer(t, server.Config{FirmwareDir: dir})
	files.FirmwareDir = dir
	ft.files = startServer(t, files)
	cfg := map[string]string{
		agent.EnvServerURI:     "coap://" + ft.srv.CoAPAddr().String(),
		agent.EnvEndpoint:      fwEndpoint,
		agent.EnvLifetime:      "300",
		agent.EnvStateDir:      t.TempDir(),
		agent.EnvLogLevel:      "debug",
		agent.EnvFWVersion:     "1.0.0",
		agent.EnvFWTrustedKeys: hex.EncodeToString(pub),
		agent.EnvFWRequireSig:  "true",
	}
	maps.Copy(cfg, extra)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ft.agent, err = New(context.Background(), nil, cfg, WithRuntime(testRT), WithLogger(logger), WithFirmware(ft.flash))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ft.cancel = cancel
	ft.pending = ft.agent.Events()
	go func() { ft.runErr <- ft.agent.Run(ctx) }()
	t.Cleanup(func() {
		if !ft.stopped {
			cancel()
			select {
			case <-ft.runErr:
			case <-time.After(15 * time.Second):
			}
		}
	})
	ft.next(agent.EventRegistered)
	return ft
}

func writePackage(t *testing.T, path, version string, image []byte, key ed25519.PrivateKey) {
	t.Helper()
	var b bytes.Buffer
	if _, err := fwpkg.Build(&b, fwpkg.Manifest{Name: "demo", Version: version}, bytes.NewReader(image), key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// next returns the next event of kind (skipping others), recording all.
func (ft *fwTest) next(kind agent.EventKind) agent.Event {
	ft.t.Helper()
	return ft.until(func(ev agent.Event) bool { return ev.Kind == kind }, kind.String())
}

// firmware returns the next firmware event in state s with result r.
func (ft *fwTest) firmware(s agent.FirmwareState, r agent.UpdateResult) agent.Event {
	ft.t.Helper()
	return ft.until(func(ev agent.Event) bool {
		return ev.Kind == agent.EventFirmware && ev.Firmware.State == s && ev.Firmware.Result == r
	}, fmt.Sprintf("firmware %s/%s", s, r))
}

func (ft *fwTest) until(match func(agent.Event) bool, what string) agent.Event {
	ft.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ft.pending:
			if !ok {
				ft.t.Fatalf("events closed while waiting for %s", what)
			}
			ft.events = append(ft.events, ev)
			if match(ev) {
				return ev
			}
		case <-timeout:
			ft.t.Fatalf("no %s event within 30 s; events: %v", what, kinds(ft.events))
		}
	}
}

func kinds(evs []agent.Event) []string {
	var ks []string
	for _, ev := range evs {
		k := ev.Kind.String()
		if ev.Firmware != nil {
			k += fmt.Sprintf("(%s/%d)", ev.Firmware.State, ev.Firmware.Result)
		}
		ks = append(ks, k)
	}
	return ks
}

// stop ends Run and drains the events; the flash may be read afterwards.
func (ft *fwTest) stop() {
	ft.t.Helper()
	ft.cancel()
	for ev := range ft.pending {
		ft.events = append(ft.events, ev)
	}
	err := <-ft.runErr
	ft.stopped = true
	if err != nil {
		ft.t.Fatalf("Run() = %v", err)
	}
}

func (ft *fwTest) write(uri string) {
	ft.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := lwm2m.Record{Path: lwm2m.P(5, 0, 1), Value: lwm2m.String(uri)}
	if _, err := ft.srv.Write(ctx, fwEndpoint, lwm2m.P(5, 0, 1), lwm2m.FormatText, []lwm2m.Record{rec}); err != nil {
		ft.t.Fatalf("write /5/0/1: %v", err)
	}
}

func (ft *fwTest) execute() {
	ft.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ft.srv.Execute(ctx, fwEndpoint, lwm2m.P(5, 0, 2), ""); err != nil {
		ft.t.Fatalf("execute /5/0/2: %v", err)
	}
}

func (ft *fwTest) fileURI(s *server.Server) string {
	return "coap://" + s.CoAPAddr().String() + "/fw/fw.pkg"
}

// checkUpdated checks the end of a successful update: the installed
// package is the image, the device restarted into it and reports it.
func (ft *fwTest) checkUpdated() {
	t := ft.t
	t.Helper()
	sum := sha256.Sum256(ft.image)
	if len(ft.flash.upgraded) != 1 {
		t.Fatalf("PerformUpgrade called %d times, want 1", len(ft.flash.upgraded))
	}
	pkg := ft.flash.upgraded[0]
	if pkg.SHA256 != hex.EncodeToString(sum[:]) || pkg.Size != int64(len(ft.image)) || pkg.Version != "1.2.3" || pkg.Name != "demo" {
		t.Errorf("installed %+v, want the 20 KiB image of demo 1.2.3 (sha256 %x)", pkg, sum)
	}
	if ft.flash.Running != "1.2.3" || ft.flash.Pending {
		t.Errorf("flash runs %q (pending %v), want 1.2.3", ft.flash.Running, ft.flash.Pending)
	}
	var seq []string
	for _, ev := range ft.events {
		switch {
		case ev.Kind == agent.EventRestart || ev.Kind == agent.EventRegistered:
			seq = append(seq, ev.Kind.String())
		case ev.Kind == agent.EventFirmware && (len(seq) == 0 || seq[len(seq)-1] != ev.Firmware.State.String()):
			seq = append(seq, ev.Firmware.State.String())
		}
	}
	// The new engine reports the outcome as it starts, before it has
	// registered again.
	want := []string{"registered", "downloading", "downloaded", "updating", "restart", "idle", "registered"}
	if fmt.Sprint(seq) != fmt.Sprint(want) {
		t.Errorf("events %v, want %v", seq, want)
	}
}

// TestAgentFirmwareUpdate pulls a signed package over CoAP, installs it,
// restarts and reports Update Result 1, against the LwM2M server of
// package server: from the server itself, with its FOTA driving the
// update, and from another host (a peer that is not the LwM2M server).
func TestAgentFirmwareUpdate(t *testing.T) {
	t.Run("FOTA from the LwM2M server", func(t *testing.T) {
		ft := newFWTest(t, &agenttest.Flash{})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		f, err := ft.srv.StartFOTA(ctx, fwEndpoint, server.FOTARequest{Image: "fw.pkg"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Wait(ctx)
		if err != nil || st.Phase != server.FOTADone || st.Result != 1 {
			t.Fatalf("FOTA ended in %s with result %d: %v", st.Phase, st.Result, err)
		}
		ft.firmware(agent.FirmwareIdle, agent.ResultSuccess)
		resp, err := ft.srv.Read(ctx, fwEndpoint, lwm2m.P(3, 0, 3), lwm2m.FormatText)
		if err != nil || string(resp.Payload) != "1.2.3" {
			t.Errorf("read /3/0/3 = %v, %v; want 1.2.3", resp, err)
		}
		ft.stop()
		ft.checkUpdated()
	})
	t.Run("pull from another host", func(t *testing.T) {
		ft := newFWTest(t, &agenttest.Flash{})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// A value the host set survives the restart: the module sets it
		// again in the new engine.
		if err := ft.agent.Set(ctx, "/3/0/9", "77"); err != nil {
			t.Fatal(err)
		}
		ft.write(ft.fileURI(ft.files))
		ev := ft.firmware(agent.FirmwareDownloaded, agent.ResultInitial)
		if ev.Firmware.Version != "1.2.3" || ev.Firmware.Total <= int64(len(ft.image)) {
			t.Errorf("downloaded %+v, want version 1.2.3 and the package size", *ev.Firmware)
		}
		ft.execute()
		ft.next(agent.EventRestart)
		ft.firmware(agent.FirmwareIdle, agent.ResultSuccess)
		ft.next(agent.EventRegistered)
		resp, err := ft.srv.Read(ctx, fwEndpoint, lwm2m.P(3, 0, 9), lwm2m.FormatText)
		if err != nil || string(resp.Payload) != "77" {
			t.Errorf("read /3/0/9 after the restart = %v, %v; want 77", resp, err)
		}
		ft.stop()
		ft.checkUpdated()
	})
}

// TestAgentFirmwareErrors: a handler's errors choose the Update Result
// through the import result codes, as they do in the native engine.
func TestAgentFirmwareErrors(t *testing.T) {
	tests := []struct {
		name    string
		flash   agenttest.Flash
		execute bool
		state   agent.FirmwareState
		result  agent.UpdateResult
	}{
		{"write: no space", agenttest.Flash{FailWrite: agent.ErrFirmwareNoSpace}, false, agent.FirmwareIdle, agent.ResultNotEnoughSpace},
		{"write: no memory", agenttest.Flash{FailWrite: fmt.Errorf("ram: %w", agent.ErrFirmwareNoMemory)}, false, agent.FirmwareIdle, agent.ResultOutOfMemory},
		{"write: other error", agenttest.Flash{FailWrite: errors.New("flash broke")}, false, agent.FirmwareIdle, agent.ResultNotEnoughSpace},
		{"install: deferred", agenttest.Flash{DeferInstall: agent.ErrFirmwareDeferred}, true, agent.FirmwareDownloaded, agent.ResultDeferred},
		{"install: unsupported", agenttest.Flash{FailInstall: agent.ErrFirmwareUnsupported}, true, agent.FirmwareIdle, agent.ResultUnsupportedPackage},
		{"install: other error", agenttest.Flash{FailInstall: errors.New("boot loader busy")}, true, agent.FirmwareDownloaded, agent.ResultFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flash := tt.flash
			ft := newFWTest(t, &flash)
			ft.write(ft.fileURI(ft.srv))
			if tt.execute {
				ft.firmware(agent.FirmwareDownloaded, agent.ResultInitial)
				ft.execute()
			}
			ft.firmware(tt.state, tt.result)
			ft.stop()
			for _, ev := range ft.events {
				if ev.Kind == agent.EventRestart {
					t.Errorf("restart after a failed update")
				}
			}
		})
	}
}

// TestUpdateControlOverABI: with "control": true in avc_init the module
// takes the update-control commands through avc_command, with their
// errors as AVC_FAULT; without it they are refused.
func TestUpdateControlOverABI(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newModule(t, nil)
	if err := m.InitJSON([]byte(`{"AVC_SERVER_URI":"coap://127.0.0.1:5683","AVC_ENDPOINT":"e","control":true}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := m.CommandJSON(now, []byte(`{"cmd":"set_agreement","what":"download","enable":true}`)); err != nil {
		t.Errorf("set_agreement: %v", err)
	}
	if err := m.CommandJSON(now, []byte(`{"cmd":"set_polling_timer","minutes":60}`)); err != nil {
		t.Errorf("set_polling_timer: %v", err)
	}
	e := wantCode(t, m.CommandJSON(now, []byte(`{"cmd":"set_polling_timer","minutes":525601}`)), CodeFault)
	if !strings.Contains(e.Msg, "out of range") {
		t.Errorf("avc_last_error = %q", e.Msg)
	}
	wantCode(t, m.CommandJSON(now, []byte(`{"cmd":"accept","what":"install"}`)), CodeFault)
	wantCode(t, m.CommandJSON(now, []byte(`{"cmd":"accept","what":"everything"}`)), CodeBadInput)

	off := newModule(t, nil)
	if err := off.InitJSON([]byte(`{"AVC_SERVER_URI":"coap://127.0.0.1:5683","AVC_ENDPOINT":"e"}`), nil); err != nil {
		t.Fatal(err)
	}
	e = wantCode(t, off.CommandJSON(now, []byte(`{"cmd":"set_polling_timer","minutes":60}`)), CodeFault)
	if !strings.Contains(e.Msg, "update control is off") {
		t.Errorf("without control: avc_last_error = %q", e.Msg)
	}
}
