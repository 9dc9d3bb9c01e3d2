// Command go-example registers a native Go agent to the LwM2M server named
// by AVC_SERVER_URI, prints one line per event, and de-registers cleanly on
// SIGINT or SIGTERM. Once registered, it reports the battery level
// (/3/0/9) once with the LwM2M Send operation and prints "sent: /3/0/9"
// when the server acknowledges it.
//
//	AVC_SERVER_URI=coap://127.0.0.1:5683 AVC_ENDPOINT=dev1 go run ./examples/go
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

func main() {
	cfg, err := agent.ConfigFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	sent := false
	for ev := range a.Events() {
		switch ev.Kind {
		case agent.EventRegistered:
			if !sent {
				sent = true
				// Not from this loop: Do waits for Run, which may be waiting
				// for this loop to take an event.
				go func() {
					if err := a.Do(ctx, agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9)}}); err != nil {
						fmt.Fprintln(os.Stderr, "send /3/0/9:", err)
					}
				}()
			}
		case agent.EventSent:
			fmt.Println("sent: " + ev.Path)
		}
		line := "event: " + ev.Kind.String()
		if ev.Location != "" {
			line += " location=" + ev.Location
		}
		if ev.Path != "" {
			line += " path=" + ev.Path
		}
		if ev.Err != "" {
			line += " error=" + ev.Err
		}
		fmt.Println(line)
	}
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
