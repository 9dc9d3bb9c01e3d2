//go:build integration

package interop_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/server/servertest"
)

// TestFirmwarePullFromLibcoap pulls a 1 MiB package from libcoap's example
// server (coap-server-notls with dynamic resources: the package is PUT
// first, block-wise, then served with Block2, ETag and Size2), verifies it
// and installs it.
func TestFirmwarePullFromLibcoap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	img := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Name: "fw", Version: "2.0.0"}, bytes.NewReader(img), nil); err != nil {
		t.Fatal(err)
	}
	fs := agenttest.LibcoapFileServer(t, "coap-server-notls", "", "fw.avc", pkg.Bytes())
	uri := fs.URI
	srv, events := servertest.Start(t, ctx, server.Config{})
	ep := "fw-libcoap"
	cfg := agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, StateDir: t.TempDir(), Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"}}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { stop(); <-done }()
	if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Write(ctx, ep, lwm2m.P(5, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(5, 0, 1), Value: lwm2m.String(uri)}}); err != nil {
		t.Fatal(err)
	}
	last := agenttest.AwaitDownload(a.Events())
	if last.State != agent.FirmwareDownloaded {
		t.Fatalf("pull from coap-server-notls ended in state %v, result %v\n%s", last.State, last.Result, fs.Output())
	}
	stored, err := os.ReadFile(filepath.Join(cfg.StateDir, "firmware", "image.bin"))
	if err != nil || sha256.Sum256(stored) != sha256.Sum256(img) {
		t.Fatalf("stored image differs (%d bytes, %v)", len(stored), err)
	}
	if last.Total != int64(pkg.Len()) || last.Version != "2.0.0" {
		t.Errorf("status total %d version %q; want %d (Size2) and 2.0.0", last.Total, last.Version, pkg.Len())
	}
}

// TestFirmwarePullCoapsFromLibcoap pulls a package over coaps (DTLS-PSK)
// from libcoap's coap-server-openssl and coap-server-gnutls: the package is
// PUT over plain coap first (with -k the servers listen for coap on port
// and coaps on port+1).
func TestFirmwarePullCoapsFromLibcoap(t *testing.T) {
	for _, name := range []string{"coap-server-openssl", "coap-server-gnutls"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			img := bytes.Repeat([]byte("coaps from libcoap "), 15000)
			var pkg bytes.Buffer
			if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Version: "2.0.0"}, bytes.NewReader(img), nil); err != nil {
				t.Fatal(err)
			}
			fs := agenttest.LibcoapFileServer(t, name, "secretPSK", "fw.avc", pkg.Bytes())
			port := fs.Port
			srv, events := servertest.Start(t, ctx, server.Config{})
			ep := "fw-" + name
			cfg := agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, StateDir: t.TempDir(),
				FirmwarePSKIdentity: "CoAP-client", FirmwarePSKKey: []byte("secretPSK"), Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"}}
			a, err := agent.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			actx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Run(actx) }()
			defer func() { stop(); <-done }()
			if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
				t.Fatal(err)
			}
			uri := "coaps://127.0.0.1:" + strconv.Itoa(port+1) + "/fw.avc"
			if _, err := srv.Write(ctx, ep, lwm2m.P(5, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(5, 0, 1), Value: lwm2m.String(uri)}}); err != nil {
				t.Fatal(err)
			}
			last := agenttest.AwaitDownload(a.Events())
			if last.State != agent.FirmwareDownloaded {
				t.Fatalf("coaps pull ended in state %v, result %v\n%s", last.State, last.Result, fs.Output())
			}
			stored, err := os.ReadFile(filepath.Join(cfg.StateDir, "firmware", "image.bin"))
			if err != nil || !bytes.Equal(stored, img) {
				t.Fatalf("stored image differs (%d bytes, %v)", len(stored), err)
			}
		})
	}
}
