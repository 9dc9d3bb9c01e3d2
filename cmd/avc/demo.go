package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// demo starts the embedded server and a native agent on loopback, shows
// the registration, a Read of /3/0, a lifetime write with the update it
// causes, and the de-registration, then returns.
func demo(ctx context.Context, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0", Logger: logger})
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("demo: start server: %w", err)
	}
	defer srv.Close()
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()
	uri := "coap://" + srv.CoAPAddr().String()
	fmt.Fprintf(stdout, "server: LwM2M server listening on %s\n", uri)

	const ep = "avc-demo"
	cfg := agent.Config{ServerURI: uri, Endpoint: ep, Lifetime: 300 * time.Second, Logger: logger}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	done := make(chan error, 1)
	go func() { done <- a.Run(agentCtx) }()
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for ev := range a.Events() {
			if ev.Kind != agent.EventStore {
				fmt.Fprint(stdout, "agent:  ")
				printEvent(stdout, ev)
			}
		}
	}()

	ev, err := server.WaitEvent(ctx, events, ep, server.EventRegistered)
	if err != nil {
		return fmt.Errorf("demo: waiting for the registration: %w", err)
	}
	fmt.Fprintf(stdout, "server: %s registered from %s: lifetime %s, lwm2m %s, binding %s, objects %s\n",
		ev.Endpoint, ev.Addr, ev.Lifetime, ev.Version, ev.Binding, linksString(ev))

	resp, err := srv.Read(ctx, ep, lwm2m.P(3, 0), lwm2m.FormatTLV)
	if err != nil {
		return fmt.Errorf("demo: read /3/0: %w", err)
	}
	fmt.Fprintf(stdout, "server: Read /3/0 -> %s (%s, %d bytes)\n", codeText(resp), resp.ContentFormat, len(resp.Payload))
	for _, r := range resp.Records {
		fmt.Fprintf(stdout, "          %-10s %-28s %s\n", r.Path, deviceResourceName(r.Path), r.Value)
	}

	fmt.Fprintln(stdout, "server: Write /1/0/1 (lifetime) = 120")
	if _, err := srv.Write(ctx, ep, lwm2m.P(1, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(120)}}); err != nil {
		return fmt.Errorf("demo: write /1/0/1: %w", err)
	}
	up, err := server.WaitEvent(ctx, events, ep, server.EventUpdated)
	if err != nil {
		return fmt.Errorf("demo: waiting for the registration update: %w", err)
	}
	fmt.Fprintf(stdout, "server: %s sent a Registration Update: lifetime now %s\n", up.Endpoint, up.Lifetime)

	fmt.Fprintln(stdout, "demo:   stopping the agent")
	stopAgent()
	if _, err := server.WaitEvent(ctx, events, ep, server.EventDeregistered); err != nil {
		return fmt.Errorf("demo: waiting for the de-registration: %w", err)
	}
	fmt.Fprintf(stdout, "server: %s de-registered\n", ep)
	if err := <-done; err != nil {
		return err
	}
	<-printed
	fmt.Fprintln(stdout, "demo:   done")
	return nil
}

func codeText(r *server.Response) string {
	c := uint8(r.Code)
	return fmt.Sprintf("%d.%02d", c>>5, c&0x1f)
}

func linksString(ev server.Event) string {
	var b strings.Builder
	for i, l := range ev.Links {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("<" + l.Target + ">")
	}
	return b.String()
}

var deviceNames = map[uint16]string{
	0: "Manufacturer", 1: "Model Number", 2: "Serial Number", 3: "Firmware Version",
	6: "Available Power Sources", 7: "Power Source Voltage", 8: "Power Source Current",
	9: "Battery Level", 10: "Memory Free", 11: "Error Code", 13: "Current Time",
	14: "UTC Offset", 15: "Timezone", 16: "Supported Binding", 17: "Device Type",
	18: "Hardware Version", 19: "Software Version", 20: "Battery Status", 21: "Memory Total",
}

func deviceResourceName(p lwm2m.Path) string {
	if p.Len >= 3 && p.Obj() == 3 {
		return deviceNames[p.Res()]
	}
	return ""
}
