package server_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// A device registers with a server listening on a free port, and the
// server reports it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := s.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	events, stop := s.Subscribe() // before the device acts, so no event is missed
	defer stop()

	// The device: a bare go-coap client sending Register.
	dev, err := udp.Dial(s.CoAPAddr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dev.Close()
	resp, err := dev.Post(ctx, "/rd", message.AppLinkFormat, strings.NewReader("</1/0>,</3/0>"),
		message.Option{ID: message.URIQuery, Value: []byte("ep=dev1")},
		message.Option{ID: message.URIQuery, Value: []byte("lt=300")},
		message.Option{ID: message.URIQuery, Value: []byte("lwm2m=1.1")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("device got", resp.Code())

	ev, err := server.WaitEvent(ctx, events, "dev1", server.EventRegistered)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Kind, ev.Endpoint, ev.Lifetime, ev.Binding, ev.Version)
	for _, l := range ev.Links {
		fmt.Println(l.Target)
	}
	// Output:
	// device got Created
	// registered dev1 5m0s U 1.1
	// /1/0
	// /3/0
}

// The server observes a real agent's battery level, asks for a
// notification at least every minute, and sees the host change the level.
func ExampleServer_Observe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := s.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	dev, err := agent.New(agent.Config{ServerURI: "coap://" + s.CoAPAddr().String(), Endpoint: "dev1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stopAgent := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dev.Run(runCtx) }()
	defer func() { stopAgent(); <-done }() // de-registers before the server closes
	// Wait until the agent has the server's 2.01: it forgets observations
	// made before.
	for ev := range dev.Events() {
		if ev.Kind == agent.EventRegistered {
			break
		}
		if ctx.Err() != nil {
			fmt.Println(ctx.Err())
			return
		}
	}

	battery := lwm2m.P(3, 0, 9)
	if _, err := s.WriteAttributes(ctx, "dev1", battery, server.Attributes{Pmax: new(int64(60))}); err != nil {
		fmt.Println(err)
		return
	}
	obs, err := s.Observe(ctx, "dev1", battery, lwm2m.FormatText)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("battery", obs.Response().Records[0].Value)

	// The host reports a new level; the agent notifies the server.
	if err := dev.Do(ctx, agent.CmdSet{Path: battery, Value: lwm2m.Int(40)}); err != nil {
		fmt.Println(err)
		return
	}
	n, ok := <-obs.Notifications()
	if !ok {
		fmt.Println(obs.Err())
		return
	}
	fmt.Println("notified", n.Response.Records[0].Value)

	if err := obs.Cancel(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(obs.Err())
	// Output:
	// battery 100
	// notified 40
	// server: observation cancelled
}
