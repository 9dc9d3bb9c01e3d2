//go:build integration

package behaviour_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/server/servertest"
)

// TestFOTAEveryDelivery updates the native agent from avc's server by
// each delivery the server offers — push (Block1 writes to /5/0/0), pull
// over CoAP and pull over HTTP — with a signed package and signatures
// required, and checks the stored image, the result and /3/0/3.
func TestFOTAEveryDelivery(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   server.FOTAMethod
		protocol string
	}{
		{"push", server.FOTAPush, ""},
		{"pull coap", server.FOTAPull, "coap"},
		{"pull http", server.FOTAPull, "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pub, key, err := fwpkg.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			img := bytes.Repeat([]byte("avc firmware image "), 20000) // 380 KB
			var pkg bytes.Buffer
			if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Name: "fw", Version: "3.1.0"}, bytes.NewReader(img), key); err != nil {
				t.Fatal(err)
			}
			srv, events := firmwareServer(t, ctx, server.Config{CoAPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, &pkg)
			ep := "fota-" + string(tc.method) + tc.protocol
			stateDir := t.TempDir()
			_, stop := runAgent(t, ctx, agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, StateDir: stateDir,
				Device:   agent.DeviceInfo{FirmwareVersion: "3.0.0"},
				Firmware: agent.FirmwareConfig{TrustedKeys: []ed25519.PublicKey{pub}, RequireSignature: true}})
			defer stop()
			if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
				t.Fatal(err)
			}
			f, err := srv.StartFOTA(ctx, ep, server.FOTARequest{Image: "fw.avc", Method: tc.method, Protocol: tc.protocol})
			if err != nil {
				t.Fatal(err)
			}
			st, err := f.Wait(ctx)
			if err != nil || st.Result != 1 || st.State != 0 {
				t.Fatalf("update ended with %+v, %v", st, err)
			}
			v, err := srv.Read(ctx, ep, lwm2m.P(3, 0, 3), lwm2m.FormatText)
			if err != nil || string(v.Payload) != "3.1.0" {
				t.Errorf("/3/0/3 = %q, %v; want 3.1.0", v.Payload, err)
			}
			if b, err := os.ReadFile(filepath.Join(stateDir, "firmware", "installed")); err != nil || string(b) != "3.1.0" {
				t.Errorf("installed marker %q, %v", b, err)
			}
		})
	}
}

// TestFOTAHTTPS pulls over https from a server whose certificate the agent
// trusts through AVC_FW_CA_FILE (httpfetch's own tests cover refusing an
// untrusted one).
func TestFOTAHTTPS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img := bytes.Repeat([]byte("https image "), 10000)
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Version: "2.0.0"}, bytes.NewReader(img), nil); err != nil {
		t.Fatal(err)
	}
	files := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "fw.avc", time.Unix(1700000000, 0), bytes.NewReader(pkg.Bytes()))
	}))
	defer files.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: files.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, events := servertest.Start(t, ctx, server.Config{})
	const ep = "fota-https"
	a, stop := runAgent(t, ctx, agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, StateDir: t.TempDir(),
		FirmwareCAFile: caFile, Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"}})
	defer stop()
	statuses := make(chan agent.FirmwareStatus, 1024)
	go func() {
		for ev := range a.Events() {
			if ev.Kind == agent.EventFirmware {
				statuses <- *ev.Firmware
			}
		}
	}()
	if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Write(ctx, ep, lwm2m.P(5, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(5, 0, 1), Value: lwm2m.String(files.URL + "/fw.avc")}}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case st := <-statuses:
			if st.State == agent.FirmwareDownloaded {
				return
			}
			if st.State == agent.FirmwareIdle && st.Result != agent.ResultInitial {
				t.Fatalf("https pull failed: result %v", st.Result)
			}
		case <-ctx.Done():
			t.Fatal("https pull did not finish")
		}
	}
}

// TestFOTACAFileMissing: a CA file that cannot be read is a configuration
// error, not a silent fallback to the system's roots.
func TestFOTACAFileMissing(t *testing.T) {
	_, err := agent.New(agent.Config{ServerURI: "coap://127.0.0.1:5683", Endpoint: "x", FirmwareCAFile: filepath.Join(t.TempDir(), "none.pem")})
	if !errors.Is(err, agent.ErrConfig) {
		t.Fatalf("New with a missing CA file: %v, want ErrConfig", err)
	}
}

// TestFOTACoaps pulls over coaps:// from avc server's DTLS listener with
// the firmware credential (AVC_FW_PSK_IDENTITY/KEY) while the LwM2M
// session itself is plain coap, and checks /5/0/8 offers CoAPS.
func TestFOTACoaps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := []byte("0123456789abcdef")
	srv, events := coapsFirmwareServer(t, ctx, "fw-puller", key, "4.0.0", bytes.Repeat([]byte("coaps image "), 20000))
	const ep = "fota-coaps"
	stateDir := t.TempDir()
	_, stop := runAgent(t, ctx, agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, StateDir: stateDir,
		FirmwarePSKIdentity: "fw-puller", FirmwarePSKKey: key, Device: agent.DeviceInfo{FirmwareVersion: "3.0.0"}})
	defer stop()
	if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	protos, err := srv.Read(ctx, ep, lwm2m.P(5, 0, 8), lwm2m.FormatSenMLJSON)
	if err != nil {
		t.Fatal(err)
	}
	offers := false
	for _, r := range protos.Records {
		if r.Value.Int == 1 {
			offers = true
		}
	}
	if !offers {
		t.Errorf("/5/0/8 = %v, want CoAPS (1) among them", protos.Records)
	}
	updateOverCoaps(t, ctx, srv, ep, "4.0.0")
}

// coapsFirmwareServer starts avc server with a coaps listener that takes
// the PSK identity with key only, and a firmware directory holding
// fw.avc, a package of img at version; it returns the server (closed when
// the test ends) and its events.
func coapsFirmwareServer(t *testing.T, ctx context.Context, identity string, key []byte, version string, img []byte) (*server.Server, <-chan server.Event) {
	t.Helper()
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Version: version}, bytes.NewReader(img), nil); err != nil {
		t.Fatal(err)
	}
	return firmwareServer(t, ctx, server.Config{CoAPAddr: "127.0.0.1:0", CoAPSAddr: "127.0.0.1:0",
		PSK: func(id []byte) ([]byte, error) {
			if string(id) != identity {
				return nil, errors.New("unknown identity")
			}
			return key, nil
		}}, &pkg)
}

// firmwareServer starts avc server with cfg and a firmware directory of
// its own holding fw.avc, the package pkg; it returns the server (closed
// when the test ends) and its events.
func firmwareServer(t *testing.T, ctx context.Context, cfg server.Config, pkg io.Reader) (*server.Server, <-chan server.Event) {
	t.Helper()
	cfg.FirmwareDir = t.TempDir()
	srv := server.New(cfg)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.PutFirmware("fw.avc", pkg); err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := srv.Subscribe()
	t.Cleanup(unsubscribe)
	return srv, events
}

// updateOverCoaps runs a FOTA of fw.avc on ep pulled over coaps and
// checks that it succeeded and that ep now runs version.
func updateOverCoaps(t *testing.T, ctx context.Context, srv *server.Server, ep, version string) {
	t.Helper()
	f, err := srv.StartFOTA(ctx, ep, server.FOTARequest{Image: "fw.avc", Protocol: "coaps"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(f.Status().URI, "coaps://") {
		t.Fatalf("package URI %q, want coaps", f.Status().URI)
	}
	st, err := f.Wait(ctx)
	if err != nil || st.Result != 1 {
		t.Fatalf("update ended with %+v, %v", st, err)
	}
	if v, err := srv.Read(ctx, ep, lwm2m.P(3, 0, 3), lwm2m.FormatText); err != nil || string(v.Payload) != version {
		t.Errorf("/3/0/3 = %q, %v; want %s", v.Payload, err, version)
	}
}

// runAgent runs a native agent for cfg; stop ends it (de-registering)
// and waits, to be deferred before the server's Close. Its events queue
// without bound; a test reads them or leaves them.
func runAgent(t *testing.T, ctx context.Context, cfg agent.Config) (a *agent.Agent, stop func()) {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	return a, func() { cancel(); <-done }
}
