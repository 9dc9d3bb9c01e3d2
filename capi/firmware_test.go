//go:build cgo

package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

func TestFirmwareHandlerErrors(t *testing.T) {
	tests := []struct {
		name string
		rc   int
		want error // nil: success
	}{
		{"ok", 0, nil},
		{"not enough space", -2, agent.ErrFirmwareNoSpace},
		{"out of memory", -3, agent.ErrFirmwareNoMemory},
		{"integrity failure", -5, agent.ErrFirmwareIntegrity},
		{"unsupported package", -6, agent.ErrFirmwareUnsupported},
		{"deferred", -11, agent.ErrFirmwareDeferred},
		{"other negative", -1, errFirmwareHandler},
		{"connection lost is no handler code", -4, errFirmwareHandler},
		{"positive", 7, errFirmwareHandler},
	}
	sentinels := []error{agent.ErrFirmwareNoSpace, agent.ErrFirmwareNoMemory, agent.ErrFirmwareIntegrity,
		agent.ErrFirmwareUnsupported, agent.ErrFirmwareDeferred, agent.ErrFirmwareFailed, errFirmwareHandler}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fwError("stream_write", tt.rc)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("fwError(%d) = %v, want nil", tt.rc, err)
				}
				return
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(fwError(%d), %v) = %v", tt.rc, s, got)
				}
			}
		})
	}
}

// memFirmware is a FirmwareHandler in memory: a download slot and the
// image "installed" by PerformUpgrade.
type memFirmware struct {
	mu        sync.Mutex
	slot      []byte
	installed []byte
	booted    int
}

func (m *memFirmware) StreamOpen(string, int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slot = m.slot[:0]
	return nil
}

func (m *memFirmware) StreamWrite(p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slot = append(m.slot, p...)
	return nil
}

func (m *memFirmware) StreamFinish() error { return nil }

func (m *memFirmware) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slot = nil
}

func (m *memFirmware) PerformUpgrade(agent.FirmwarePackage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.installed = bytes.Clone(m.slot)
	return nil
}

func (m *memFirmware) Booted(pkg agent.FirmwarePackage) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.booted++
	return "2.0.0", int64(len(m.installed)) == pkg.Size
}

// TestFirmwareInstalledHandlerServesFOTA: the handler installed for the
// next session is the session agent's Object 5 handler, through a whole
// update driven by the embedded server (pull over CoAP, Update, restart).
func TestFirmwareInstalledHandlerServesFOTA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	image := bytes.Repeat([]byte("avc firmware image "), 5000) // ~95 KB: a checkpoint
	if err := os.WriteFile(filepath.Join(dir, "fw.bin"), image, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0", FirmwareDir: dir})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	pollEnable(true)
	defer pollEnable(false)
	const ep = "capi-fota"
	h := &memFirmware{}
	mustCode(t, installFirmware("test", h), rcOK)
	t.Cleanup(func() { mustCode(t, installFirmware("test", nil), rcOK) })
	mustCode(t, configSet(agent.EnvServerURI, "coap://"+srv.CoAPAddr().String()), rcOK)
	mustCode(t, configSet(agent.EnvEndpoint, ep), rcOK)
	logLevel.Set(slog.LevelError + 1) // configSet read the configuration's level
	mustCode(t, startSession(), rcOK)
	takeStatus(t, statusSessionStarted)
	mustCode(t, installFirmware("test", h), rcNotPermitted)

	f, err := srv.StartFOTA(ctx, ep, server.FOTARequest{Image: "fw.bin"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Wait(ctx)
	if err != nil {
		t.Fatalf("fota: %v (status %+v)", err, st)
	}
	if st.Result != int(agent.ResultSuccess) || st.State != int(agent.FirmwareIdle) {
		t.Errorf("fota ended with State %d, Result %d; want 0, 1", st.State, st.Result)
	}
	h.mu.Lock()
	if !bytes.Equal(h.installed, image) || h.booted != 1 {
		t.Errorf("installed %d bytes (equal: %v), booted asked %d times; want the %d image bytes, once",
			len(h.installed), bytes.Equal(h.installed, image), h.booted, len(image))
	}
	h.mu.Unlock()
	readText(t, srv, ep, lwm2m.P(3, 0, 3), "2.0.0")

	mustCode(t, stopSession(), rcOK)
	// Waits for the stopped session to end: the handler is then unused.
	mustCode(t, installFirmware("test", nil), rcOK)
	takeStatus(t, statusSessionStopped)
}
