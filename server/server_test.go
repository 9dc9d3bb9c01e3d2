package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/avc-agent/avc/server"
)

func TestStartListensOnFreePort(t *testing.T) {
	s := newServer(t, server.Config{HTTPAddr: "127.0.0.1:0"})
	for name, a := range map[string]interface{ String() string }{"coap": s.CoAPAddr(), "http": s.HTTPAddr()} {
		if a == nil || strings.HasSuffix(a.String(), ":0") {
			t.Errorf("%s address = %v, want a bound port", name, a)
		}
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestNoHTTPListenerByDefault(t *testing.T) {
	s := newServer(t, server.Config{})
	if a := s.HTTPAddr(); a != nil {
		t.Errorf("HTTPAddr() = %v, want nil", a)
	}
}

func TestClose(t *testing.T) {
	s := newServer(t, server.Config{})
	events, stop := s.Subscribe()
	defer stop()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, ok := <-events; ok {
		t.Error("subscription channel still open after Close")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := s.WaitFor(ctx, "dev1", server.EventRegistered); !errors.Is(err, server.ErrClosed) {
		t.Errorf("WaitFor after Close: %v, want ErrClosed", err)
	}
	if err := s.Start(ctx); !errors.Is(err, server.ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}
