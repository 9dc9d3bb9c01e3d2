package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// defaultLinks is the registration payload of the fake client.
const defaultLinks = `</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>`

// device3TLV is a hand-built TLV payload for a Read of /3/0 (Core TS 1.1
// §7.4.3): resource 0 = "avc" (string), resource 9 = 87 (integer).
var device3TLV = []byte{
	0xC3, 0x00, 'a', 'v', 'c', // type 11 (resource), 8-bit ID 0, length 3
	0xC1, 0x09, 87, // resource 9, length 1
}

// device3Links is the fake client's answer to a Discover of /3/0.
const device3Links = `</3/0>,</3/0/0>,</3/0/4>,</3/0/9>;pmin=10`

// request is what the fake client received from the server.
type request struct {
	Method  codes.Code
	Path    string
	Format  int // content format, -1 when absent
	Payload []byte
}

// fakeObservable is the one path the fake client accepts to observe.
var fakeObservable = lwm2m.P(3, 0, 0)

// fakeClient is a minimal LwM2M client on go-coap's UDP client. It
// answers:
//
//	GET  /3/0          TLV (or link-format for Accept 40)
//	GET  /3/0/0        text/plain "avc"; with Observe=0 it adds Observe=2
//	                   and sends the token to observes, and the test sends
//	                   the notifications with notify
//	GET  /3/0/9        text/plain "87" (even with Observe=0: no observation)
//	PUT  /1/0/1, /1/0  2.04
//	POST /3/0/4        2.04
//	anything else      4.04
//
// Every PUT and POST it receives is sent to requests.
type fakeClient struct {
	t        *testing.T
	conn     *udpclient.Conn
	location string
	requests chan request
	observes chan message.Token
}

func dialFake(t *testing.T, s *server.Server) *fakeClient {
	t.Helper()
	c := &fakeClient{t: t, requests: make(chan request, 16), observes: make(chan message.Token, 16)}
	r := mux.NewRouter()
	r.DefaultHandleFunc(c.serve)
	conn, err := udp.Dial(s.CoAPAddr().String(), options.WithMux(r))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c.conn = conn
	return c
}

func (c *fakeClient) addr() string { return c.conn.LocalAddr().String() }

func (c *fakeClient) serve(w mux.ResponseWriter, r *mux.Message) {
	path, _ := r.Path()
	body, _ := r.ReadBody()
	format := -1
	if cf, err := r.ContentFormat(); err == nil {
		format = int(cf)
	}
	set := func(code codes.Code, cf message.MediaType, payload []byte) {
		if payload != nil {
			_ = w.SetResponse(code, cf, bytes.NewReader(payload))
			return
		}
		_ = w.SetResponse(code, cf, nil)
	}
	switch r.Code() {
	case codes.GET:
		accept, err := r.Accept()
		switch {
		case path == "/3/0" && err == nil && accept == message.AppLinkFormat:
			set(codes.Content, message.AppLinkFormat, []byte(device3Links))
		case path == "/3/0":
			set(codes.Content, message.AppLwm2mTLV, device3TLV)
		case path == "/3/0/0":
			if obs, err := r.Observe(); err == nil && obs == 0 {
				c.observes <- append(message.Token(nil), r.Token()...)
				_ = w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader([]byte("avc")),
					message.Option{ID: message.Observe, Value: []byte{2}})
				return
			}
			set(codes.Content, message.TextPlain, []byte("avc"))
		case path == "/3/0/9":
			set(codes.Content, message.TextPlain, []byte("87"))
		default:
			set(codes.NotFound, message.TextPlain, nil)
		}
	case codes.PUT, codes.POST:
		switch path {
		case "/1/0/1", "/1/0", "/3/0/4":
			c.requests <- request{Method: r.Code(), Path: path, Format: format, Payload: body}
			set(codes.Changed, message.TextPlain, nil)
		default:
			set(codes.NotFound, message.TextPlain, nil)
		}
	default:
		set(codes.MethodNotAllowed, message.TextPlain, nil)
	}
}

// observeToken returns the token of the next observation of fakeObservable.
func (c *fakeClient) observeToken(ctx context.Context) message.Token {
	c.t.Helper()
	select {
	case tok := <-c.observes:
		return tok
	case <-ctx.Done():
		c.t.Fatalf("no observation reached the client: %v", ctx.Err())
		return nil
	}
}

// notify sends a notification for token with a text/plain payload and
// sequence number seq (none when negative). A confirmable one returns once
// the server acknowledged it.
func (c *fakeClient) notify(ctx context.Context, token message.Token, typ message.Type, code codes.Code, seq int, payload string) error {
	m := c.conn.AcquireMessage(ctx)
	defer c.conn.ReleaseMessage(m)
	m.SetType(typ)
	m.SetCode(code)
	m.SetToken(token)
	m.SetMessageID(c.conn.GetMessageID())
	if seq >= 0 {
		m.SetObserve(uint32(seq))
	}
	if payload != "" {
		m.SetContentFormat(message.TextPlain)
		m.SetBody(bytes.NewReader([]byte(payload)))
	}
	return c.conn.WriteMessage(m)
}

// nextRequest returns the next PUT or POST the fake client received.
func (c *fakeClient) nextRequest(ctx context.Context) request {
	c.t.Helper()
	select {
	case r := <-c.requests:
		return r
	case <-ctx.Done():
		c.t.Fatalf("no request reached the client: %v", ctx.Err())
		return request{}
	}
}

func queries(qs ...string) []message.Option {
	opts := make([]message.Option, len(qs))
	for i, q := range qs {
		opts[i] = message.Option{ID: message.URIQuery, Value: []byte(q)}
	}
	return opts
}

// post sends a POST to path with a link-format payload (none when empty)
// and returns the response code and Location-Path.
func (c *fakeClient) post(ctx context.Context, path, links string, qs ...string) (codes.Code, string) {
	c.t.Helper()
	var (
		resp *pool.Message
		err  error
	)
	if links != "" {
		resp, err = c.conn.Post(ctx, path, message.AppLinkFormat, strings.NewReader(links), queries(qs...)...)
	} else {
		resp, err = c.conn.Post(ctx, path, message.TextPlain, nil, queries(qs...)...)
	}
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	loc, _ := resp.Options().LocationPath()
	return resp.Code(), loc
}

// register registers as ep with lifetime lt (seconds) and remembers the
// location.
func (c *fakeClient) register(ctx context.Context, ep, lt string) string {
	c.t.Helper()
	code, loc := c.post(ctx, "/rd", defaultLinks, "ep="+ep, "lt="+lt, "lwm2m=1.1", "b=U")
	if code != codes.Created {
		c.t.Fatalf("register: got %v, want 2.01 Created", code)
	}
	if !strings.HasPrefix(loc, "/rd/") || len(loc) <= len("/rd/") {
		c.t.Fatalf("register: Location-Path %q, want /rd/<id>", loc)
	}
	c.location = loc
	return loc
}

func (c *fakeClient) deregister(ctx context.Context) codes.Code {
	c.t.Helper()
	resp, err := c.conn.Delete(ctx, c.location)
	if err != nil {
		c.t.Fatalf("DELETE %s: %v", c.location, err)
	}
	return resp.Code()
}

// newServer starts a server on a free local port with a test logger.
func newServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	if cfg.CoAPAddr == "" {
		cfg.CoAPAddr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s := server.New(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// registered starts a server, registers a fake client as ep and waits
// until the server reports it.
func registered(t *testing.T, cfg server.Config, ep string) (*server.Server, *fakeClient) {
	t.Helper()
	s := newServer(t, cfg)
	c := dialFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	events, stop := s.Subscribe()
	defer stop()
	c.register(ctx, ep, "300")
	if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
		t.Fatalf("wait for registration: %v", err)
	}
	return s, c
}

// testLogger returns a logger that writes to t.Log until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

var _ io.Writer = (*testWriter)(nil)

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}
