package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/avc-agent/avc/server"
)

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	s := newServer(t, server.Config{EventBuffer: 1})
	c := dialFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	slow, stopSlow := s.Subscribe()
	defer stopSlow()
	fast, stopFast := s.Subscribe()
	defer stopFast()

	c.register(ctx, "dev1", "300")
	if _, err := server.WaitEvent(ctx, fast, "dev1", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	c.register(ctx, "dev2", "300") // slow's buffer is full: dropped for slow
	if _, err := server.WaitEvent(ctx, fast, "dev2", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	if ev := <-slow; ev.Endpoint != "dev1" {
		t.Errorf("slow subscriber got %s first, want dev1", ev.Endpoint)
	}
	select {
	case ev := <-slow:
		t.Errorf("slow subscriber got %+v, want it dropped", ev)
	default:
	}
}

func TestWaitForContext(t *testing.T) {
	s := newServer(t, server.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.WaitFor(ctx, "dev1", server.EventRegistered); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor with a cancelled context: %v, want context.Canceled", err)
	}
}
