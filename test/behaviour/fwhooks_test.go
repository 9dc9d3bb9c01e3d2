//go:build integration

package behaviour_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/server/servertest"
)

// securedFirmware is the default file handler plus the pull hooks: the
// credential of every coaps/https pull and an http request timeout.
type securedFirmware struct {
	*agent.FileFirmware
	sec     *agent.FirmwareSecurity
	timeout time.Duration
}

func (f *securedFirmware) SecurityConfig(string) (*agent.FirmwareSecurity, error) { return f.sec, nil }
func (f *securedFirmware) RequestTimeout(string) time.Duration                    { return f.timeout }

// TestFOTAHookCoaps pulls over coaps from avc server's DTLS listener with
// the PSK the handler's SecurityConfig gives; nothing is configured, so
// the handshake can only succeed with the hook's credential.
func TestFOTAHookCoaps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := []byte("hook-key-0123456")
	srv, events := coapsFirmwareServer(t, ctx, "hook-puller", key, "5.0.0", bytes.Repeat([]byte("coaps hook image "), 10000))
	const ep = "fota-hook-coaps"
	stateDir := t.TempDir()
	h := &securedFirmware{FileFirmware: &agent.FileFirmware{Dir: filepath.Join(stateDir, "firmware")},
		sec: &agent.FirmwareSecurity{PSKIdentity: "hook-puller", PSKKey: key}}
	_, stop := runAgent(t, ctx, agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, StateDir: stateDir,
		Device: agent.DeviceInfo{FirmwareVersion: "4.0.0"}, Firmware: agent.FirmwareConfig{Handler: h}})
	defer stop()
	if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	updateOverCoaps(t, ctx, srv, ep, "5.0.0")
}

// TestFOTAHookHTTPS: an https pull trusts the certificate the handler's
// SecurityConfig gives (no AVC_FW_CA_FILE), and the handler's request
// timeout ends a pull whose server stops sending with Result 4.
func TestFOTAHookHTTPS(t *testing.T) {
	img := bytes.Repeat([]byte("https hook image "), 10000)
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Version: "2.0.0"}, bytes.NewReader(img), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		stall   bool
		trust   bool
		timeout time.Duration
		connect time.Duration
		want    agent.FirmwareStatus // State and Result
	}{
		{name: "trusted by the hook", trust: true, want: agent.FirmwareStatus{State: agent.FirmwareDownloaded}},
		{name: "not trusted without it", connect: 3 * time.Second, want: agent.FirmwareStatus{State: agent.FirmwareIdle, Result: agent.ResultConnectionLost}},
		{name: "request timeout", trust: true, stall: true, timeout: 2 * time.Second, want: agent.FirmwareStatus{State: agent.FirmwareIdle, Result: agent.ResultConnectionLost}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			release := make(chan struct{})
			defer close(release)
			files := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.stall {
					w.Header().Set("Content-Length", "100000")
					w.Write(pkg.Bytes()[:1000])
					w.(http.Flusher).Flush()
					select {
					case <-release:
					case <-r.Context().Done():
					}
					return
				}
				http.ServeContent(w, r, "fw.avc", time.Unix(1700000000, 0), bytes.NewReader(pkg.Bytes()))
			}))
			defer files.Close()
			srv, events := servertest.Start(t, ctx, server.Config{})
			const ep = "fota-hook-https"
			stateDir := t.TempDir()
			h := &securedFirmware{FileFirmware: &agent.FileFirmware{Dir: filepath.Join(stateDir, "firmware")}, timeout: tc.timeout}
			if tc.trust {
				h.sec = &agent.FirmwareSecurity{RootCAs: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: files.Certificate().Raw})}
			}
			a, stop := runAgent(t, ctx, agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, StateDir: stateDir,
				Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"}, Firmware: agent.FirmwareConfig{Handler: h, ConnectTimeout: tc.connect}})
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
			start := time.Now()
			if _, err := srv.Write(ctx, ep, lwm2m.P(5, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(5, 0, 1), Value: lwm2m.String(files.URL + "/fw.avc")}}); err != nil {
				t.Fatal(err)
			}
			for {
				select {
				case st := <-statuses:
					if st.State != agent.FirmwareDownloaded && (st.State != agent.FirmwareIdle || st.Result == agent.ResultInitial) {
						continue
					}
					if st.State != tc.want.State || st.Result != tc.want.Result {
						t.Fatalf("pull ended in state %v result %v, want %v and %v", st.State, st.Result, tc.want.State, tc.want.Result)
					}
					if tc.stall && time.Since(start) < tc.timeout {
						t.Errorf("stalled pull ended after %v, before the %v request timeout", time.Since(start), tc.timeout)
					}
					return
				case <-ctx.Done():
					t.Fatal("the https pull did not end")
				}
			}
		})
	}
}
