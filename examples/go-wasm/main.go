// Command go-wasm registers this machine to an LwM2M server with the avc
// WebAssembly agent running on wazero, prints one line per event and
// de-registers on SIGINT/SIGTERM. It is the Go twin of
// examples/node/register.mjs. Once registered, it reports the battery level
// (/3/0/9) once with the LwM2M Send operation and prints "sent: /3/0/9"
// when the server acknowledges it.
//
//	make wasm
//	AVC_SERVER_URI=coap://127.0.0.1:5683 AVC_ENDPOINT=go-wasm-demo go run ./examples/go-wasm
//
// Configuration comes from the AVC_* environment; avc.wasm from $AVC_WASM
// or build/avc.wasm. The compiled machine code is cached under the user
// cache directory, so only the first start takes seconds.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/wasm/host"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "go-wasm:", err)
		os.Exit(2)
	}
}

func run() error {
	path := os.Getenv("AVC_WASM")
	if path == "" {
		path = "build/avc.wasm"
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (build it with make wasm, or set AVC_WASM)", err)
	}
	cfg := map[string]string{}
	for _, name := range agent.ConfigNames {
		if v := os.Getenv(name); v != "" {
			cfg[name] = v
		}
	}
	if cfg[agent.EnvEndpoint] == "" {
		h, _ := os.Hostname()
		cfg[agent.EnvEndpoint] = "avc-" + h
	}
	opts := []host.Option{
		// The module filters records by AVC_LOG_LEVEL; print all it sends.
		host.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
	if dir, err := os.UserCacheDir(); err == nil {
		opts = append(opts, host.WithCompilationCacheDir(filepath.Join(dir, "avc", "wazero")))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := host.New(ctx, wasm, cfg, opts...)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sent := false
		for ev := range a.Events() {
			fmt.Println(line(ev))
			switch {
			case ev.Kind == agent.EventRegistered && !sent:
				sent = true
				// Not from this loop: Send waits for Run's answer.
				go func() {
					if err := a.Send(ctx, "/3/0/9"); err != nil {
						fmt.Fprintln(os.Stderr, "go-wasm: send /3/0/9:", err)
					}
				}()
			case ev.Kind == agent.EventSent:
				fmt.Println("sent: " + ev.Path)
			}
		}
	}()
	err = a.Run(ctx)
	<-done
	return err
}

// line formats an event as "event: registered location=/rd/x lifetime=300".
func line(ev agent.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "event: %s", ev.Kind)
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	add("location", ev.Location)
	if ev.Lifetime != 0 {
		add("lifetime", fmt.Sprint(ev.Lifetime))
	}
	add("path", ev.Path)
	add("code", ev.Code)
	add("error", ev.Err)
	if len(ev.Data) > 0 {
		add("data", fmt.Sprintf("%dB", len(ev.Data)))
	}
	return b.String()
}
