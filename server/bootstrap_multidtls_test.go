package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestBootstrapSeveralServersOverDTLS: a bootstrap server provisions two
// coaps DM servers, each with a PSK of its own; the agent registers with
// both over DTLS, each session with its own credential, keeps the
// provisioned keys only in its state file (mode 0600), and after a
// restart registers with both again from that state without asking the
// bootstrap server.
func TestBootstrapSeveralServersOverDTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
	defer cancel()
	ids := [2]string{"dev-md-1", "dev-md-2"}
	keys := [2][]byte{bytes.Repeat([]byte{0x11}, 16), bytes.Repeat([]byte{0x22}, 16)}
	var dms [2]*server.Server
	var evs [2]<-chan server.Event
	for i := range dms {
		dms[i] = newServer(t, server.Config{CoAPSAddr: "127.0.0.1:0", PSK: func(id []byte) ([]byte, error) {
			if string(id) != ids[i] {
				return nil, fmt.Errorf("unknown identity %q", id)
			}
			return keys[i], nil
		}})
		ch, stop := dms[i].Subscribe()
		defer stop()
		evs[i] = ch
	}
	bcfg := server.BootstrapConfig{ServerURI: "coaps://" + dms[0].CoAPSAddr().String(), ShortServerID: 101, Lifetime: 120 * time.Second,
		PSKIdentity: ids[0], PSKKey: keys[0],
		Servers: []server.BootstrapConfig{{ServerURI: "coaps://" + dms[1].CoAPSAddr().String(), ShortServerID: 102, Lifetime: 90 * time.Second,
			PSKIdentity: ids[1], PSKKey: keys[1]}}}
	bs := newServer(t, server.Config{Bootstrap: map[string]server.BootstrapConfig{"dev-md": bcfg}})
	bsEvents, stopBS := bs.Subscribe()
	defer stopBS()
	dir := t.TempDir()
	cfg := agent.Config{Endpoint: "dev-md", StateDir: dir, BootstrapURI: "coap://" + bs.CoAPAddr().String(),
		DTLSHandshakeTimeout: time.Second, DTLSRetryDelay: 200 * time.Millisecond}

	check := func(round string) {
		t.Helper()
		for i, lt := range []time.Duration{120 * time.Second, 90 * time.Second} {
			reg, err := server.WaitEvent(ctx, evs[i], "dev-md", server.EventRegistered)
			if err != nil {
				t.Fatalf("%s: not registered with DM server %d: %v", round, i+1, err)
			}
			if reg.Lifetime != lt {
				t.Errorf("%s: DM server %d: lifetime %v, want %v", round, i+1, reg.Lifetime, lt)
			}
			resp, err := dms[i].Read(ctx, "dev-md", lwm2m.P(3, 0, 0), lwm2m.FormatText)
			if err != nil || string(resp.Payload) != "avc" {
				t.Errorf("%s: DM server %d reads /3/0/0: %v, %v", round, i+1, resp, err)
			}
		}
	}

	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	go func() {
		for range a.Events() {
		}
	}()
	check("after the bootstrap")
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := server.WaitEvent(ctx, bsEvents, "dev-md", server.EventBootstrapped); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, agent.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("state file (with the provisioned keys) mode %v, want 0600", m)
	}

	runAgent(t, cfg)
	check("after the restart")
	select {
	case ev := <-bsEvents:
		t.Errorf("bootstrap server event after the restart: %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}
