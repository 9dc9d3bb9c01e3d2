//go:build integration

package behaviour_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
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
			srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", FirmwareDir: t.TempDir()})
			if err := srv.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			if _, err := srv.PutFirmware("fw.avc", &pkg); err != nil {
				t.Fatal(err)
			}
			events, unsubscribe := srv.Subscribe()
			defer unsubscribe()
			ep := "fota-" + string(tc.method) + tc.protocol
			stateDir := t.TempDir()
			a, err := agent.New(agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, StateDir: stateDir,
				Device:   agent.DeviceInfo{FirmwareVersion: "3.0.0"},
				Firmware: agent.FirmwareConfig{TrustedKeys: []ed25519.PublicKey{pub}, RequireSignature: true}})
			if err != nil {
				t.Fatal(err)
			}
			actx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Run(actx) }()
			defer func() { stop(); <-done }()
			go func() {
				for range a.Events() {
				}
			}()
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
