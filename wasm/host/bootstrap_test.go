package host

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestAgentBootstrap: avc.wasm configured with nothing but a bootstrap
// server URI bootstraps from an avc server in bootstrap mode and
// registers with the DM server it is given, through the host's one UDP
// socket (the engine's logic; the host only follows the peers it names).
func TestAgentBootstrap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dm := server.New(server.Config{CoAPAddr: "127.0.0.1:0", Logger: logger})
	if err := dm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer dm.Close()
	bs := server.New(server.Config{CoAPAddr: "127.0.0.1:0", Logger: logger, Bootstrap: map[string]server.BootstrapConfig{
		"wasm-bs": {ServerURI: "coap://" + dm.CoAPAddr().String(), ShortServerID: 7, Lifetime: 120 * time.Second},
	}})
	if err := bs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	dmEvents, stop := dm.Subscribe()
	defer stop()

	a, err := New(ctx, nil, map[string]string{
		agent.EnvBootstrapURI: "coap://" + bs.CoAPAddr().String(),
		agent.EnvEndpoint:     "wasm-bs",
		agent.EnvStateDir:     t.TempDir(),
	}, WithRuntime(testRT), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx) }()
	evs := a.Events()
	nextEvent(t, evs, agent.EventBootstrapStarted)
	nextEvent(t, evs, agent.EventBootstrapFinished)
	ev := nextEvent(t, evs, agent.EventRegistered)
	if ev.Server != "coap://"+dm.CoAPAddr().String() || ev.Lifetime != 120 {
		t.Errorf("registered = %+v", ev)
	}
	if _, err := server.WaitEvent(ctx, dmEvents, "wasm-bs", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	resp, err := dm.Read(ctx, "wasm-bs", lwm2m.P(1, 0, 0), lwm2m.FormatText)
	if err != nil || string(resp.Payload) != "7" {
		t.Errorf("read /1/0/0 = %v, %v; want 7", resp, err)
	}
	stopRun()
	if err := <-runErr; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	for range evs {
	}
}
