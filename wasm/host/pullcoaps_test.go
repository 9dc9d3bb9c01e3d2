package host

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestAgentFirmwarePullCoaps: avc.wasm pulls a signed package over coaps
// from another host (the package server's coaps listener, DTLS-PSK with
// the firmware credential), carrying that DTLS session inside the module
// beside its coap session to the LwM2M server; it installs it and
// reports success. Nothing the host sends to the package server is
// plaintext CoAP, and /5/0/8 lists coaps.
func TestAgentFirmwarePullCoaps(t *testing.T) {
	files := server.Config{
		CoAPSAddr: "127.0.0.1:0",
		PSK: func(identity []byte) ([]byte, error) {
			if string(identity) != "fw-client" {
				return nil, fmt.Errorf("unknown identity %q", identity)
			}
			return testPSK, nil
		},
	}
	ft := newFWTestWith(t, &agenttest.Flash{}, files, map[string]string{
		agent.EnvFWPSKIdentity: "fw-client",
		agent.EnvFWPSKKey:      hex.EncodeToString(testPSK),
	})
	var mu sync.Mutex
	plain, records := 0, 0
	coapsAddr := ft.files.CoAPSAddr().String()
	ft.agent.sendHook = func(peer string, data []byte) {
		if peer != coapsAddr {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if len(data) == 0 || data[0] < 20 || data[0] > 25 {
			plain++
		} else {
			records++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := ft.srv.Read(ctx, fwEndpoint, lwm2m.P(5, 0, 8), lwm2m.FormatTLV)
	if err != nil {
		t.Fatal(err)
	}
	var protos []int64
	for _, r := range resp.Records {
		protos = append(protos, r.Value.Int)
	}
	if !slices.Contains(protos, 1) {
		t.Errorf("/5/0/8 = %v, want coaps (1) listed", protos)
	}
	ft.write("coaps://" + coapsAddr + "/fw/fw.pkg")
	ev := ft.firmware(agent.FirmwareDownloaded, agent.ResultInitial)
	if ev.Firmware.Version != "1.2.3" {
		t.Errorf("downloaded %+v, want version 1.2.3", *ev.Firmware)
	}
	ft.execute()
	ft.next(agent.EventRestart)
	ft.firmware(agent.FirmwareIdle, agent.ResultSuccess)
	ft.next(agent.EventRegistered)
	ft.stop()
	ft.checkUpdated()
	mu.Lock()
	defer mu.Unlock()
	if plain > 0 || records == 0 {
		t.Errorf("to the package server: %d DTLS records, %d other datagrams; want records only", records, plain)
	}
}

// TestAgentFirmwarePullCoapsLibcoap: avc.wasm pulls a package over coaps
// from libcoap's coap-server-openssl (DTLS-PSK, identity "CoAP-client"
// and key "secretPSK" as the firmware credential), the package PUT over
// plain coap first (with -k the server listens for coap on port and
// coaps on port+1).
func TestAgentFirmwarePullCoapsLibcoap(t *testing.T) {
	img := bytes.Repeat([]byte("coaps from libcoap into wasm "), 2000)
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Version: "2.0.0"}, bytes.NewReader(img), nil); err != nil {
		t.Fatal(err)
	}
	fs := agenttest.LibcoapFileServer(t, "coap-server-openssl", "secretPSK", "fw.avc", pkg.Bytes())
	port := fs.Port
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startServer(t, server.Config{})
	flash := &agenttest.Flash{}
	cfg := map[string]string{
		agent.EnvServerURI:     "coap://" + srv.CoAPAddr().String(),
		agent.EnvEndpoint:      "wasm-fw-libcoap",
		agent.EnvLifetime:      "300",
		agent.EnvFWVersion:     "1.0.0",
		agent.EnvFWPSKIdentity: "CoAP-client",
		agent.EnvFWPSKKey:      hex.EncodeToString([]byte("secretPSK")),
	}
	a, err := New(ctx, nil, cfg, WithRuntime(testRT), WithFirmware(flash))
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { stop(); <-done }()
	evs := a.Events()
	nextEvent(t, evs, agent.EventRegistered)
	uri := "coaps://127.0.0.1:" + strconv.Itoa(port+1) + "/fw.avc"
	if _, err := srv.Write(ctx, "wasm-fw-libcoap", lwm2m.P(5, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(5, 0, 1), Value: lwm2m.String(uri)}}); err != nil {
		t.Fatal(err)
	}
	last := agenttest.AwaitDownload(evs)
	if last.State != agent.FirmwareDownloaded {
		t.Fatalf("coaps pull ended in state %v, result %v\n%s", last.State, last.Result, fs.Output())
	}
	if !flash.Equal(img) {
		t.Fatalf("stored image differs: %d bytes, want %d", len(flash.Data), len(img))
	}
}

// TestAgentFOTAOverServerSession: an agent registered over coaps pulls a
// package from its LwM2M server's own coaps address (the server's FOTA
// picks coaps for a DTLS client). The host has one socket, so the pull
// rides the server's DTLS session; the update completes with Result 1.
func TestAgentFOTAOverServerSession(t *testing.T) {
	dir := t.TempDir()
	image := bytes.Repeat([]byte("over the server's own session "), 700)
	pub, priv, err := fwpkg.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	writePackage(t, filepath.Join(dir, "fw.pkg"), "1.2.3", image, priv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := server.New(server.Config{
		CoAPAddr:    "127.0.0.1:0",
		CoAPSAddr:   "127.0.0.1:0",
		FirmwareDir: dir,
		PSK:         func([]byte) ([]byte, error) { return testPSK, nil },
	})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	flash := &upgradeFlash{Flash: &agenttest.Flash{}}
	a, err := New(ctx, nil, map[string]string{
		agent.EnvServerURI:     "coaps://" + srv.CoAPSAddr().String(),
		agent.EnvEndpoint:      "wasm-fota-coaps",
		agent.EnvLifetime:      "300",
		agent.EnvPSKIdentity:   "dev-psk",
		agent.EnvPSKKey:        hex.EncodeToString(testPSK),
		agent.EnvFWVersion:     "1.0.0",
		agent.EnvFWTrustedKeys: hex.EncodeToString(pub),
	}, WithRuntime(testRT), WithFirmware(flash))
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { stop(); <-done }()
	nextEvent(t, a.Events(), agent.EventRegistered)
	f, err := srv.StartFOTA(ctx, "wasm-fota-coaps", server.FOTARequest{Image: "fw.pkg"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Wait(ctx)
	if err != nil || st.Phase != server.FOTADone || st.Result != 1 {
		t.Fatalf("FOTA ended in %s with result %d: %v", st.Phase, st.Result, err)
	}
	if !strings.HasPrefix(st.URI, "coaps://"+srv.CoAPSAddr().String()) {
		t.Errorf("FOTA pulled from %q, want the server's coaps address", st.URI)
	}
	if flash.Running != "1.2.3" {
		t.Errorf("running %q after the update, want 1.2.3", flash.Running)
	}
}
