package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/avc-agent/avc/internal/wsrelay"
)

// relayRoute is one -route flag: a URL path and the UDP server it is
// pinned to.
type relayRoute struct{ path, server string }

// parseRoute parses "/path=host:port", or "host:port" for the path "/".
func parseRoute(v string) (relayRoute, error) {
	path, server, ok := strings.Cut(v, "=")
	if !ok {
		path, server = "/", v
	}
	if !strings.HasPrefix(path, "/") {
		return relayRoute{}, fmt.Errorf("route %q: the path must start with /", v)
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		return relayRoute{}, fmt.Errorf("route %q: want [/path=]host:port: %w", v, err)
	}
	return relayRoute{path: path, server: server}, nil
}

// relayMain runs `avc relay`: a WebSocket↔UDP relay for avc.wasm in a
// browser. It prints "relay: listening on ws://ADDR" once it accepts
// sessions, then runs until ctx ends.
func relayMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("avc relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8090", "TCP `address` of the WebSocket listener")
	var routes []relayRoute
	fs.Func("route", "`[/path=]host:port`: WebSocket sessions at path (default /) relay to this UDP server only (repeatable)", func(v string) error {
		r, err := parseRoute(v)
		if err != nil {
			return err
		}
		for _, o := range routes {
			if o.path == r.path {
				return fmt.Errorf("route %q: path %s given twice", v, r.path)
			}
		}
		routes = append(routes, r)
		return nil
	})
	var origins []string
	fs.Func("origin", "an `origin` (scheme://host:port) whose pages may open sessions (repeatable; default any)", func(v string) error {
		origins = append(origins, v)
		return nil
	})
	maxSessions := fs.Int("max-sessions", 64, "sessions at once per route (0: no limit)")
	maxDatagram := fs.Int("max-datagram", wsrelay.DefaultMaxDatagram, "largest datagram in `bytes`")
	defLevel := os.Getenv("AVC_LOG_LEVEL")
	if defLevel == "" {
		defLevel = "info"
	}
	levelName := fs.String("log-level", defLevel, "log `level`: debug, info, warn or error (env AVC_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: avc relay -route [/path=]host:port ... [flags]\n\n"+
			"Relays WebSocket sessions to an LwM2M server over UDP, for avc.wasm in a\n"+
			"browser: one binary message is one datagram; each session has its own UDP\n"+
			"socket, connected to its route's server only.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("relay: unexpected arguments %q", fs.Args())
	}
	if len(routes) == 0 {
		fs.Usage()
		return fmt.Errorf("relay: no -route given")
	}
	if *maxDatagram <= 0 || *maxDatagram > wsrelay.DefaultMaxDatagram {
		return fmt.Errorf("relay: -max-datagram must be in 1..%d", wsrelay.DefaultMaxDatagram)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*levelName)); err != nil {
		return fmt.Errorf("relay: bad log level %q: %w", *levelName, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r.path, &wsrelay.Relay{
			Server:      r.server,
			MaxDatagram: *maxDatagram,
			Origins:     origins,
			MaxSessions: *maxSessions,
			Logger:      log.With("route", r.path),
		})
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	fmt.Fprintf(stdout, "relay: listening on ws://%s\n", ln.Addr())
	for _, r := range routes {
		fmt.Fprintf(stdout, "relay: ws://%s%s -> udp %s\n", ln.Addr(), r.path, r.server)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("relay: %w", err)
	case <-ctx.Done():
	}
	// Hijacked sessions end with ctx (BaseContext); Shutdown stops the
	// listener.
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("relay: shutdown: %w", err)
	}
	return nil
}
