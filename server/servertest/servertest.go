// Package servertest starts avc's LwM2M server for tests, the way
// net/http/httptest starts an HTTP server.
package servertest

import (
	"context"
	"testing"

	"github.com/avc-agent/avc/server"
)

// Start starts an LwM2M server with cfg for the rest of the test, on a
// free loopback CoAP port when cfg.CoAPAddr is empty, and subscribes to
// its events. The test's cleanup ends the subscription and closes the
// server; a server that cannot start fails the test.
func Start(t testing.TB, ctx context.Context, cfg server.Config) (*server.Server, <-chan server.Event) {
	t.Helper()
	if cfg.CoAPAddr == "" {
		cfg.CoAPAddr = "127.0.0.1:0"
	}
	srv := server.New(cfg)
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("start the LwM2M server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	events, unsubscribe := srv.Subscribe()
	t.Cleanup(unsubscribe) // runs first
	return srv, events
}
