package server_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/udp"

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
