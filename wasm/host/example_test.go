package host_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/wasm/host"
)

// An agent running avc.wasm, configured like every avc embedding and shaped
// like the native agent.Agent.
func ExampleNew() {
	wasm, err := os.ReadFile("build/avc.wasm")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a, err := host.New(ctx, wasm, map[string]string{
		agent.EnvServerURI: "coap://127.0.0.1:5683",
		agent.EnvEndpoint:  "wasm-demo",
		agent.EnvStateDir:  "/var/lib/avc",
	}, host.WithCompilationCacheDir(os.TempDir()+"/avc-wazero-cache"))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for ev := range a.Events() {
			fmt.Println("event:", ev.Kind, ev.Location)
		}
	}()
	if err := a.Run(ctx); err != nil { // until Ctrl-C, then de-registers
		log.Fatal(err)
	}
}

// Driving one module instance by hand: what a fleet simulator does for each
// simulated device, with its own clock and network.
func ExampleRuntime() {
	ctx := context.Background()
	wasm, err := os.ReadFile("build/avc.wasm")
	if err != nil {
		log.Fatal(err)
	}
	rt, err := host.NewRuntime(ctx, wasm)
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Instantiate(ctx, host.Imports{
		SockSend: func(peer string, data []byte) error {
			fmt.Printf("send %d bytes to %s\n", len(data), peer)
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := m.Init(map[string]string{agent.EnvServerURI: "coap://192.0.2.1", agent.EnvEndpoint: "sim-1"}, nil); err != nil {
		log.Fatal(err)
	}
	if err := m.Command(now, agent.CmdStart{}); err != nil {
		log.Fatal(err)
	}
	next, _ := m.Step(now)
	fmt.Println("step again in", next.Sub(now) > 0)
	// The Register is unanswered: feed the server's datagrams with
	// m.OnDatagram, call m.Step at each deadline and drain m.PollEvent.
}
