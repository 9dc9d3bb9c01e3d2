package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
	"github.com/tetratelabs/wazero/api"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

// testRT is the runtime every test instantiates from: avc.wasm from
// $AVC_WASM, or built from ./wasm into a temporary directory, so that
// `go test ./...` needs no prior make step.
var testRT *Runtime

// wasmPath is where testRT's module came from.
var wasmPath string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	flag.Parse()
	path := os.Getenv("AVC_WASM")
	if _, err := os.Stat(path); path == "" || err != nil {
		dir, err := os.MkdirTemp("", "avc-wasm-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "avc.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-ldflags=-s -w", "-o", path, "github.com/avc-agent/avc/wasm")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build avc.wasm: %v\n%s", err, out)
			return 1
		}
	}
	wasmPath = path
	wasm, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	// The interpreter: compiling avc.wasm to machine code takes seconds
	// (tens on a busy machine) the first time, which the tests do not need.
	testRT, err = NewRuntime(ctx, wasm, WithInterpreter())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testRT.Close(ctx)
	if testing.Verbose() {
		fmt.Printf("avc.wasm: %s, %d bytes, compiled in %v\n", path, len(wasm), testRT.CompileTime)
	}
	return m.Run()
}

// recorder is an Imports that records what the module does.
type recorder struct {
	mu     sync.Mutex
	sent   []sentDatagram
	stored map[string][]byte
	logs   []slog.Record
}

type sentDatagram struct {
	peer string
	data []byte
}

func (r *recorder) imports() Imports {
	return Imports{
		SockSend: func(peer string, data []byte) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.sent = append(r.sent, sentDatagram{peer, bytes.Clone(data)})
			return nil
		},
		StorageWrite: func(key string, data []byte) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.stored == nil {
				r.stored = make(map[string][]byte)
			}
			r.stored[key] = bytes.Clone(data)
			return nil
		},
		Log: func(rec slog.Record) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.logs = append(r.logs, rec)
		},
	}
}

func newModule(t *testing.T, rec *recorder) *Module {
	t.Helper()
	if rec == nil {
		rec = new(recorder)
	}
	m, err := testRT.Instantiate(context.Background(), rec.imports())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

const testPeer = "127.0.0.1:5683"

func goodConfig() map[string]string {
	return map[string]string{
		agent.EnvServerURI: "coap://" + testPeer,
		agent.EnvEndpoint:  "wasm-test",
		agent.EnvLifetime:  "300",
		agent.EnvLogLevel:  "debug",
	}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func wantCode(t *testing.T, err error, want Code) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want an *Error with %s", err, want)
	}
	if e.Code != want {
		t.Fatalf("code = %s (%q), want %s", e.Code, e.Msg, want)
	}
	return e
}

func TestABIVersion(t *testing.T) {
	m := newModule(t, nil)
	v, err := m.ABIVersion()
	if err != nil || v != ABIVersion || ABIVersion != 3 {
		t.Fatalf("ABIVersion() = %d, %v; want %d (3)", v, err, ABIVersion)
	}
}

func TestInitBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		want string // in avc_last_error
	}{
		{"not json", `nope`, "JSON object"},
		{"not an object", `["AVC_SERVER_URI"]`, "JSON object"},
		{"empty", `{}`, "AVC_SERVER_URI is required"},
		{"bad scheme", `{"AVC_SERVER_URI":"http://x","AVC_ENDPOINT":"e"}`, "want coap://host[:port]"},
		{"unknown name", `{"AVC_SERVER_URI":"coap://x","AVC_ENDPOINT":"e","AVC_COLOUR":"red"}`, `unknown setting "AVC_COLOUR"`},
		{"bad lifetime", `{"AVC_SERVER_URI":"coap://x","AVC_ENDPOINT":"e","AVC_LIFETIME":"soon"}`, "AVC_LIFETIME"},
		{"bad value type", `{"AVC_SERVER_URI":"coap://x","AVC_ENDPOINT":true}`, "want a string or a number"},
		{"all problems", `{"AVC_LOG_LEVEL":"loud"}`, `AVC_LOG_LEVEL="loud": want debug, info, warn or error; agent: bad configuration: AVC_SERVER_URI is required; agent: bad configuration: AVC_ENDPOINT is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModule(t, nil)
			err := m.InitJSON([]byte(tt.cfg), nil)
			e := wantCode(t, err, CodeBadInput)
			if !strings.Contains(e.Msg, tt.want) {
				t.Errorf("avc_last_error = %q, want it to mention %q", e.Msg, tt.want)
			}
			if !errors.Is(err, agent.ErrConfig) {
				t.Errorf("errors.Is(%v, agent.ErrConfig) = false", err)
			}
			if msg, _ := m.LastError(); msg != e.Msg {
				t.Errorf("LastError() = %q, want %q", msg, e.Msg)
			}
			// A failed init may be retried.
			if err := m.Init(goodConfig(), nil); err != nil {
				t.Fatalf("init after a failed init: %v", err)
			}
			if msg, _ := m.LastError(); msg != "" {
				t.Errorf("LastError() after success = %q, want empty", msg)
			}
			wantCode(t, m.Init(goodConfig(), nil), CodeDuplicate)
		})
	}
}

func TestInitNumbersAndState(t *testing.T) {
	m := newModule(t, nil)
	cfg := `{"AVC_SERVER_URI":"coap://127.0.0.1:5683","AVC_ENDPOINT":"e","AVC_LIFETIME":300,"AVC_BOOTSTRAP_URI":null}`
	// A stored state that cannot be parsed is ignored, never an error.
	if err := m.InitJSON([]byte(cfg), []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
}

func TestBeforeInit(t *testing.T) {
	m := newModule(t, nil)
	wantCode(t, m.Command(t0, agent.CmdStart{}), CodeNotInitialized)
	wantCode(t, m.OnDatagram(t0, testPeer, []byte{0x40, 0x01, 0, 1}), CodeNotInitialized)
	_, err := m.Step(t0)
	wantCode(t, err, CodeNotInitialized)
	if ev, ok, err := m.PollEvent(); ok || err != nil {
		t.Fatalf("PollEvent() = %v, %v, %v; want none", ev, ok, err)
	}
}

func TestCommands(t *testing.T) {
	rec := new(recorder)
	m := newModule(t, rec)
	if err := m.Init(goodConfig(), nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		cmd  string
		want Code
		is   error
	}{
		{"bad json", `{"cmd":`, CodeBadInput, nil},
		{"no cmd", `{"command":"start"}`, CodeBadInput, nil},
		{"unknown", `{"cmd":"fly"}`, CodeUnsupported, agent.ErrUnknownCommand},
		{"update unregistered", `{"cmd":"update"}`, CodeNotRegistered, agent.ErrNotRegistered},
		{"stop stopped", `{"cmd":"stop"}`, CodeDuplicate, agent.ErrDuplicate},
		{"start", `{"cmd":"start"}`, CodeOK, nil},
		{"start started", `{"cmd":"start"}`, CodeDuplicate, agent.ErrDuplicate},
		{"stop", `{"cmd":"stop"}`, CodeOK, nil},
	}
	for _, s := range steps {
		err := m.CommandJSON(t0, []byte(s.cmd))
		if s.want == CodeOK {
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			continue
		}
		e := wantCode(t, err, s.want)
		if e.Msg == "" {
			t.Errorf("%s: empty avc_last_error", s.name)
		}
		if s.is != nil && !errors.Is(err, s.is) {
			t.Errorf("%s: errors.Is(%v, %v) = false", s.name, err, s.is)
		}
	}
	// start sent a Register to the server through sock_send.
	if len(rec.sent) == 0 || rec.sent[0].peer != testPeer {
		t.Fatalf("sent = %v, want a Register to %s", rec.sent, testPeer)
	}
	msg := decode(t, rec.sent[0].data)
	if msg.Code != codes.POST || pathOf(msg) != "/rd" {
		t.Errorf("first datagram = %v %s, want POST /rd", msg.Code, pathOf(msg))
	}
	// stop while registering ends the session at once.
	ev, ok, err := m.PollEvent()
	if err != nil || !ok || ev.Kind != agent.EventDeregistered {
		t.Fatalf("PollEvent() = %+v, %v, %v; want deregistered", ev, ok, err)
	}
	if len(rec.logs) == 0 {
		t.Error("no log records at AVC_LOG_LEVEL=debug")
	}
}

func TestStep(t *testing.T) {
	rec := new(recorder)
	m := newModule(t, rec)
	if err := m.Init(goodConfig(), nil); err != nil {
		t.Fatal(err)
	}
	next, err := m.Step(t0)
	if err != nil || !next.IsZero() {
		t.Fatalf("Step() before start = %v, %v; want no deadline", next, err)
	}
	if err := m.Command(t0, agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	next, err = m.Step(t0)
	if err != nil || next.IsZero() || !next.After(t0) || next.Sub(t0) > 3*time.Second {
		t.Fatalf("Step() after start = %v, %v; want the retransmission deadline within ACK_TIMEOUT·1.5", next, err)
	}
	n := len(rec.sent)
	if _, err := m.Step(next); err != nil {
		t.Fatal(err)
	}
	if len(rec.sent) != n+1 {
		t.Errorf("Step at the deadline sent %d datagrams, want 1 retransmission", len(rec.sent)-n)
	}
}

// rawPoll calls avc_poll_event(ptr, size) directly.
func rawPoll(t *testing.T, m *Module, ptr, size uint32) int32 {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.call(fnPollEvent, uint64(ptr), uint64(size))
	if err != nil {
		t.Fatal(err)
	}
	return api.DecodeI32(r)
}

func TestPollEventSmallBuffer(t *testing.T) {
	m := newModule(t, nil)
	if err := m.Init(goodConfig(), nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Command(t0, agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Command(t0, agent.CmdStop{}); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	err := m.ensure(&m.out, 1024)
	buf := m.out
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	r := rawPoll(t, m, buf.ptr, 4)
	if r > -minEventLen {
		t.Fatalf("avc_poll_event(buf, 4) = %d, want -(size) <= -%d", r, minEventLen)
	}
	if r2 := rawPoll(t, m, 0, 0); r2 != r {
		t.Fatalf("avc_poll_event(0, 0) = %d, want %d: the event must be kept", r2, r)
	}
	// The event fits but the buffer is not one of ours.
	if r3 := rawPoll(t, m, 8, uint32(-r)); r3 != int32(CodeBadParameter) {
		t.Fatalf("avc_poll_event(8, %d) = %d, want AVC_BAD_PARAMETER", -r, r3)
	}
	if n := rawPoll(t, m, buf.ptr, uint32(-r)); n != -r {
		t.Fatalf("avc_poll_event(buf, %d) = %d, want %d", -r, n, -r)
	}
	m.mu.Lock()
	b, _ := m.mem.Read(buf.ptr, uint32(-r))
	got := string(bytes.TrimSpace(b))
	m.mu.Unlock()
	if !strings.HasPrefix(got, `{"kind":"deregistered"`) {
		t.Fatalf("event = %s, want a deregistered event", got)
	}
	if r := rawPoll(t, m, buf.ptr, buf.size); r != 0 {
		t.Fatalf("avc_poll_event after the last event = %d, want 0", r)
	}
}

func TestBadPointers(t *testing.T) {
	m := newModule(t, nil)
	m.mu.Lock()
	defer m.mu.Unlock()
	call := func(fn int, args ...uint64) int32 {
		t.Helper()
		r, err := m.call(fn, args...)
		if err != nil {
			t.Fatalf("%s trapped: %v", exportNames[fn], err)
		}
		return api.DecodeI32(r)
	}
	if p := call(fnBufAlloc, 0); p != 0 {
		t.Errorf("avc_buf_alloc(0) = %#x, want 0", p)
	}
	if p := call(fnBufAlloc, api.EncodeI32(-5)); p != 0 {
		t.Errorf("avc_buf_alloc(-5) = %#x, want 0", p)
	}
	if rc := call(fnBufFree, 12345); rc != int32(CodeBadParameter) {
		t.Errorf("avc_buf_free(12345) = %d, want AVC_BAD_PARAMETER", rc)
	}
	p := uint32(call(fnBufAlloc, 64))
	tests := []struct {
		name string
		ptr  uint32
		n    int32
	}{
		{"far outside memory", 0xffff_ff00, 10},
		{"not a buffer", 16, 10},
		{"past the end", p, 65},
		{"straddles the end", p + 60, 10},
		{"negative length", p, -1},
	}
	for _, tt := range tests {
		if rc := call(fnInit, uint64(tt.ptr), api.EncodeI32(tt.n), 0, 0); rc != int32(CodeBadParameter) {
			t.Errorf("%s: avc_init = %d, want AVC_BAD_PARAMETER", tt.name, rc)
		}
	}
	// Inside the buffer, at an offset, is fine (the content is not JSON).
	if rc := call(fnInit, uint64(p+8), 8, 0, 0); rc != int32(CodeBadInput) {
		t.Errorf("avc_init(inside) = %d, want AVC_BAD_INPUT", rc)
	}
	if rc := call(fnBufFree, uint64(p)); rc != 0 {
		t.Errorf("avc_buf_free = %d", rc)
	}
	if rc := call(fnInit, uint64(p), 8, 0, 0); rc != int32(CodeBadParameter) {
		t.Errorf("avc_init(freed buffer) = %d, want AVC_BAD_PARAMETER", rc)
	}
}

func TestGarbageDatagrams(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	rec := new(recorder)
	m := newModule(t, rec)
	if err := m.Init(goodConfig(), nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Command(t0, agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	inputs := [][]byte{
		nil,
		{0},
		{0x40},
		{0x40, 0x01, 0x12, 0x34},           // CON GET, no options
		{0x48, 0x01, 0x12, 0x34, 1, 2},     // token length larger than the rest
		{0x40, 0x01, 0x12, 0x34, 0xff},     // payload marker without payload
		{0x40, 0x01, 0x12, 0x34, 0xbd, 20}, // option length past the end
		{0x60, 0x45, 0x00, 0x01},           // ACK for nothing
		{0x70, 0x00, 0x00, 0x01},           // RST for nothing
		bytes.Repeat([]byte{0xff}, 70<<10), // larger than any datagram
	}
	for range 500 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if len(b) > 0 && rng.IntN(2) == 0 {
			b[0] = 0x40 | b[0]&0x0f // version 1
		}
		inputs = append(inputs, b)
	}
	for i, b := range inputs {
		for _, peer := range []string{testPeer, "10.0.0.1:9", "", "\xff\xfe"} {
			now := t0.Add(time.Duration(i) * time.Millisecond)
			if err := m.OnDatagram(now, peer, b); err != nil {
				t.Fatalf("input %d (%x) from %q: %v", i, b, peer, err)
			}
			if _, err := m.Step(now); err != nil {
				t.Fatalf("step after input %d: %v", i, err)
			}
		}
	}
	for {
		_, ok, err := m.PollEvent()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
	}
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestTrapIsSticky(t *testing.T) {
	m := newModule(t, nil)
	if err := m.Init(goodConfig(), nil); err != nil {
		t.Fatal(err)
	}
	// Closing the wazero instance behind the Module's back makes the next
	// call fail the way a trap does.
	m.mod.Close(context.Background())
	_, err := m.Step(t0)
	if !errors.Is(err, ErrTrapped) {
		t.Fatalf("Step() after the instance died = %v, want ErrTrapped", err)
	}
	var te *TrapError
	if !errors.As(err, &te) || te.Op != "avc_step" {
		t.Fatalf("err = %#v, want a *TrapError for avc_step", err)
	}
	if err := m.Command(t0, agent.CmdStart{}); !errors.Is(err, ErrTrapped) {
		t.Fatalf("Command() after a trap = %v, want ErrTrapped", err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRecord(t *testing.T) {
	r := decodeRecord(slog.LevelWarn, []byte(`{"msg":"registered","server_uri":"coap://x","lifetime":300,"ok":true,"g":{"a":1}}`))
	if r.Message != "registered" || r.Level != slog.LevelWarn {
		t.Fatalf("record = %q %v", r.Message, r.Level)
	}
	var got []string
	r.Attrs(func(a slog.Attr) bool {
		got = append(got, a.String())
		return true
	})
	if want := "server_uri=coap://x lifetime=300 ok=true g=[a=1]"; strings.Join(got, " ") != want {
		t.Errorf("attrs = %q, want %q", strings.Join(got, " "), want)
	}
	if r := decodeRecord(slog.LevelInfo, []byte("plain text")); r.Message != "plain text" {
		t.Errorf("non-JSON record = %q", r.Message)
	}
}

// lwm2mServer is a minimal LwM2M server on a real UDP socket: it answers
// Register with 2.01 Location-Path rd/x, Update with 2.04 and De-register
// with 2.02, and can send requests to the client.
type lwm2mServer struct {
	t    *testing.T
	conn *net.UDPConn

	mu     sync.Mutex
	client *net.UDPAddr
	log    []string              // "POST /rd ep=… lt=…"
	bodies []string              // the payload of each request in log
	acks   chan *message.Message // responses to our requests
	mid    uint16
}

func newLwM2MServer(t *testing.T) *lwm2mServer {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &lwm2mServer{t: t, conn: conn, acks: make(chan *message.Message, 16), mid: 0x4000}
	t.Cleanup(func() { conn.Close() })
	go s.serve()
	return s
}

func (s *lwm2mServer) uri() string { return "coap://" + s.conn.LocalAddr().String() }

func (s *lwm2mServer) serve() {
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := decodeMsg(buf[:n])
		if err != nil {
			continue
		}
		if m.Type == message.Acknowledgement || m.Type == message.Reset {
			s.acks <- m
			continue
		}
		if m.Code >= 64 {
			// A separate response (read callbacks): acknowledged, and
			// delivered like a piggybacked one.
			if m.Type == message.Confirmable {
				s.conn.WriteToUDP(encodeMsg(&message.Message{Type: message.Acknowledgement, MessageID: m.MessageID}), addr)
			}
			s.acks <- m
			continue
		}
		req := m.Code.String() + " " + pathOf(m)
		if q := queries(m); q != "" {
			req += " " + q
		}
		resp := &message.Message{Type: message.Acknowledgement, MessageID: m.MessageID, Token: m.Token}
		switch {
		case m.Code == codes.POST && pathOf(m) == "/rd":
			resp.Code = codes.Created
			resp.Options = resp.Options.Add(message.Option{ID: message.LocationPath, Value: []byte("rd")})
			resp.Options = resp.Options.Add(message.Option{ID: message.LocationPath, Value: []byte("x")})
		case m.Code == codes.POST && pathOf(m) == "/rd/x":
			resp.Code = codes.Changed
		case m.Code == codes.POST && pathOf(m) == "/dp":
			resp.Code = codes.Changed // Send
		case m.Code == codes.DELETE && pathOf(m) == "/rd/x":
			resp.Code = codes.Deleted
		default:
			resp.Code = codes.NotFound
		}
		s.mu.Lock()
		s.client = addr
		s.log = append(s.log, req)
		s.bodies = append(s.bodies, string(m.Payload))
		s.mu.Unlock()
		s.conn.WriteToUDP(encodeMsg(resp), addr)
	}
}

// request sends a confirmable request to the client.
func (s *lwm2mServer) request(code codes.Code, path string, payload []byte, opts ...message.Option) {
	s.mu.Lock()
	s.mid++
	m := &message.Message{Type: message.Confirmable, Code: code, MessageID: int32(s.mid), Token: []byte{1, 2, 3, 4}, Payload: payload}
	addr := s.client
	s.mu.Unlock()
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		m.Options = m.Options.Add(message.Option{ID: message.URIPath, Value: []byte(seg)})
	}
	for _, o := range opts {
		m.Options = m.Options.Add(o)
	}
	if _, err := s.conn.WriteToUDP(encodeMsg(m), addr); err != nil {
		s.t.Error(err)
	}
}

func (s *lwm2mServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func decodeMsg(b []byte) (*message.Message, error) {
	m := &message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(bytes.Clone(b), m); err != nil {
		return nil, err
	}
	return m, nil
}

func decode(t *testing.T, b []byte) *message.Message {
	t.Helper()
	m, err := decodeMsg(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func encodeMsg(m *message.Message) []byte {
	n, _ := coder.DefaultCoder.Size(*m)
	b := make([]byte, n)
	coder.DefaultCoder.Encode(*m, b)
	return b
}

func pathOf(m *message.Message) string {
	var segs []string
	for _, o := range m.Options {
		if o.ID == message.URIPath {
			segs = append(segs, string(o.Value))
		}
	}
	return "/" + strings.Join(segs, "/")
}

func queries(m *message.Message) string {
	var qs []string
	for _, o := range m.Options {
		if o.ID == message.URIQuery {
			qs = append(qs, string(o.Value))
		}
	}
	return strings.Join(qs, "&")
}

// nextEvent waits for the next event of one of the kinds, skipping others.
func nextEvent(t *testing.T, evs <-chan agent.Event, kinds ...agent.EventKind) agent.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("events closed while waiting for %v", kinds)
			}
			t.Logf("event: %s %+v", ev.Kind, ev)
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
		case <-timeout:
			t.Fatalf("no %v event within 20 s", kinds)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestAgentRegistration(t *testing.T) {
	srv := newLwM2MServer(t)
	dir := t.TempDir()
	cfg := map[string]string{
		agent.EnvServerURI: srv.uri(),
		agent.EnvEndpoint:  "wasm-test",
		agent.EnvLifetime:  "300",
		agent.EnvStateDir:  dir,
		agent.EnvLogLevel:  "debug",
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(context.Background(), nil, cfg, WithRuntime(testRT), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	evs := a.Events()

	ev := nextEvent(t, evs, agent.EventRegistered)
	if ev.Location != "/rd/x" || ev.Lifetime != 300 || ev.Server != srv.uri() {
		t.Fatalf("registered = %+v", ev)
	}
	if err := a.Do(ctx, agent.CmdStart{}); !errors.Is(err, agent.ErrDuplicate) {
		t.Errorf("Do(start) while started = %v, want ErrDuplicate", err)
	}
	if err := a.Do(ctx, agent.CmdUpdate{}); err != nil {
		t.Fatalf("Do(update) = %v", err)
	}
	nextEvent(t, evs, agent.EventUpdated)

	// The server writes the lifetime: the module stores its state (the host
	// writes the state file) and sends an Update with the new lifetime.
	srv.request(codes.PUT, "/1/0/1", []byte("600"), message.Option{ID: message.ContentFormat, Value: []byte{0}})
	st := nextEvent(t, evs, agent.EventStore)
	if len(st.Data) == 0 {
		t.Fatal("store event without data")
	}
	ev = nextEvent(t, evs, agent.EventUpdated)
	if ev.Lifetime != 600 {
		t.Errorf("updated after the write = %+v, want lifetime 600", ev)
	}
	select {
	case ack := <-srv.acks:
		if ack.Code != codes.Changed {
			t.Errorf("write answered %v, want 2.04", ack.Code)
		}
	case <-time.After(5 * time.Second):
		t.Error("write not answered")
	}
	saved, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil || !bytes.Equal(saved, st.Data) {
		t.Errorf("state file = %q, %v; want the store event's data %q", saved, err, st.Data)
	}

	cancel()
	ev = nextEvent(t, evs, agent.EventDeregistered)
	if ev.Location != "/rd/x" || ev.Err != "" {
		t.Errorf("deregistered = %+v", ev)
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run() = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for range evs {
	}
	if err := a.Do(context.Background(), agent.CmdUpdate{}); !errors.Is(err, agent.ErrClosed) {
		t.Errorf("Do after Run = %v, want ErrClosed", err)
	}

	reqs := srv.requests()
	want := []string{"POST /rd", "POST /rd/x", "POST /rd/x lt=600", "DELETE /rd/x"}
	if len(reqs) != len(want) {
		t.Fatalf("server saw %q, want %d requests like %q", reqs, len(want), want)
	}
	for i, w := range want {
		if !strings.HasPrefix(reqs[i], w) {
			t.Errorf("request %d = %q, want %q…", i, reqs[i], w)
		}
	}
	if !strings.Contains(reqs[0], "ep=wasm-test") || !strings.Contains(reqs[0], "lt=300") {
		t.Errorf("register = %q, want ep=wasm-test and lt=300", reqs[0])
	}

	// A new agent on the same state directory starts from the stored
	// state: it registers with the lifetime the server wrote.
	a2, err := New(context.Background(), nil, cfg, WithRuntime(testRT))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { runErr <- a2.Run(ctx2) }()
	ev = nextEvent(t, a2.Events(), agent.EventRegistered)
	if ev.Lifetime != 600 {
		t.Errorf("registered after restart = %+v, want the stored lifetime 600", ev)
	}
	cancel2()
	nextEvent(t, a2.Events(), agent.EventDeregistered)
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}

func TestAgentRecoversFromTrap(t *testing.T) {
	srv := newLwM2MServer(t)
	cfg := map[string]string{
		agent.EnvServerURI: srv.uri(),
		agent.EnvEndpoint:  "wasm-trap",
	}
	a, err := New(context.Background(), nil, cfg, WithRuntime(testRT))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	nextEvent(t, a.Events(), agent.EventRegistered)
	// Kill the instance the way a trap would; the next call finds it dead.
	// Run replaces it with a fresh one, which registers again.
	a.Module().mod.Close(context.Background())
	// The command reaches the fresh instance: still registering
	// (ErrNotRegistered), or registered already when the loop met the dead
	// instance before the command arrived (nil). Never the trap itself.
	if err := a.Do(ctx, agent.CmdUpdate{}); err != nil && !errors.Is(err, agent.ErrNotRegistered) {
		t.Errorf("Do(update) after the trap = %v, want nil or ErrNotRegistered", err)
	}
	nextEvent(t, a.Events(), agent.EventRegistered)
	cancel()
	nextEvent(t, a.Events(), agent.EventDeregistered)
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}

// TestCompilerWithCache compiles avc.wasm to machine code with an on-disk
// cache (slow the first time on a machine, fast afterwards).
func TestCompilerWithCache(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles avc.wasm to machine code")
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt, err := NewRuntime(ctx, wasm, WithCompilationCacheDir(filepath.Join(os.TempDir(), "avc-wazero-cache")))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	t.Logf("compiled in %v", rt.CompileTime)
	m, err := rt.Instantiate(ctx, Imports{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(goodConfig(), nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Command(t0, agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
}

// objectXML is the registry description of test object 3442.
func objectXML(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../lwm2m/testdata/3442-test.xml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInitObjectsXML(t *testing.T) {
	xml := objectXML(t)
	withObjects := func(v any) []byte {
		m := map[string]any{}
		for k, s := range goodConfig() {
			m[k] = s
		}
		m["objects_xml"] = v
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bad := []struct {
		name string
		cfg  []byte
	}{
		{"not an array", withObjects(string(xml))},
		{"not strings", withObjects([]int{1})},
		{"bad XML", withObjects([]string{"<LWM2M>"})},
		{"second document bad", withObjects([]string{string(xml), "<html/>"})},
		{"built-in object", withObjects([]string{strings.Replace(string(xml), "<ObjectID>3442<", "<ObjectID>3<", 1)})},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			m := newModule(t, nil)
			err := m.InitJSON(tt.cfg, nil)
			e := wantCode(t, err, CodeBadInput)
			if !errors.Is(err, agent.ErrConfig) || e.Msg == "" {
				t.Errorf("err = %v, want agent.ErrConfig with a message", err)
			}
		})
	}
	// null is skipped; an empty array defines nothing.
	for _, v := range []any{nil, []string{}} {
		if err := newModule(t, nil).InitJSON(withObjects(v), nil); err != nil {
			t.Errorf("objects_xml %v: %v", v, err)
		}
	}

	m := newModule(t, nil)
	if err := m.InitJSON(withObjects([]string{string(xml)}), nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		cmd  string
		want Code
	}{
		{"string", `{"cmd":"set","path":"/3442/0/110","value":"hello"}`, CodeOK},
		{"integer", `{"cmd":"set","path":"/3442/0/120","value":"42"}`, CodeOK},
		{"instance", `{"cmd":"set","path":"/3442/0/180/1","value":"-1"}`, CodeOK},
		{"remove instance", `{"cmd":"set","path":"/3442/0/180/1","type":"none"}`, CodeOK},
		{"battery", `{"cmd":"set","path":"/3/0/9","value":"50"}`, CodeOK},
		{"bad integer", `{"cmd":"set","path":"/3442/0/120","value":"x"}`, CodeBadInput},
		{"executable", `{"cmd":"set","path":"/3442/0/200","value":"1"}`, CodeBadInput},
		{"undefined object", `{"cmd":"set","path":"/3443/0/1","value":"1"}`, CodeBadInput},
		{"remove single", `{"cmd":"set","path":"/3442/0/110","type":"none"}`, CodeBadInput},
		{"bad path", `{"cmd":"set","path":"/3442/x","value":"1"}`, CodeBadInput},
		{"number value", `{"cmd":"set","path":"/3/0/9","value":50}`, CodeBadInput},
	}
	for _, s := range steps {
		err := m.CommandJSON(t0, []byte(s.cmd))
		if s.want == CodeOK {
			if err != nil {
				t.Errorf("%s: %v", s.name, err)
			}
			continue
		}
		e := wantCode(t, err, s.want)
		if e.Msg == "" || !errors.Is(err, agent.ErrBadValue) {
			t.Errorf("%s: err = %v, want agent.ErrBadValue with a message", s.name, err)
		}
	}
	// Module.Command encodes typed values in their text form.
	for _, v := range []lwm2m.Value{lwm2m.Int(7), lwm2m.Float(2.5), lwm2m.Bool(true), lwm2m.Opaque([]byte{1, 2}), lwm2m.Link(3, 0)} {
		p := map[lwm2m.Type]lwm2m.Path{
			lwm2m.TypeInteger: lwm2m.P(3442, 0, 120), lwm2m.TypeFloat: lwm2m.P(3442, 0, 130),
			lwm2m.TypeBoolean: lwm2m.P(3442, 0, 140), lwm2m.TypeOpaque: lwm2m.P(3442, 0, 150),
			lwm2m.TypeObjlnk: lwm2m.P(3442, 0, 170),
		}[v.Type]
		if err := m.Command(t0, agent.CmdSet{Path: p, Value: v}); err != nil {
			t.Errorf("Command(set %s %v) = %v", p, v, err)
		}
	}
	if err := m.Command(t0, agent.CmdSet{Path: lwm2m.P(3442, 0, 180, 4)}); err != nil {
		t.Errorf("Command(remove) = %v", err)
	}
}

// readValue has srv GET path from the client as text/plain and returns
// the answer.
func (s *lwm2mServer) readValue(t *testing.T, path string) *message.Message {
	t.Helper()
	for {
		select {
		case <-s.acks: // drop stale answers
			continue
		default:
		}
		break
	}
	s.request(codes.GET, path, nil, message.Option{ID: message.Accept, Value: []byte{}})
	select {
	case ack := <-s.acks:
		return ack
	case <-time.After(10 * time.Second):
		t.Fatalf("GET %s not answered", path)
		return nil
	}
}

// TestAgentReadCallbacks: a resource marked with WithReadCallbacks is
// read from the host: an empty ACK, a read_request event, and once the
// host has set the value and sent CmdReadDone, a separate response with
// it.
func TestAgentReadCallbacks(t *testing.T) {
	srv := newLwM2MServer(t)
	cfg := map[string]string{agent.EnvServerURI: srv.uri(), agent.EnvEndpoint: "wasm-readcb"}
	if _, err := New(context.Background(), nil, cfg, WithRuntime(testRT), WithObjectsXML(objectXML(t)), WithReadCallbacks("/3442/200")); !errors.Is(err, agent.ErrConfig) {
		t.Fatalf("New with an executable read callback = %v, want agent.ErrConfig", err)
	}
	a, err := New(context.Background(), nil, cfg, WithRuntime(testRT), WithObjectsXML(objectXML(t)), WithReadCallbacks("/3442/130"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Set(ctx, "/3442/0/130", "1.5"); err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	evs := a.Events()
	nextEvent(t, evs, agent.EventRegistered)

	srv.request(codes.GET, "/3442/0/130", nil, message.Option{ID: message.Accept, Value: []byte{}})
	ev := nextEvent(t, evs, agent.EventReadRequest)
	if len(ev.Paths) != 1 || ev.Paths[0] != "/3442/0/130" {
		t.Errorf("read request paths %v, want [/3442/0/130]", ev.Paths)
	}
	next := func() *message.Message {
		select {
		case m := <-srv.acks:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
			return nil
		}
	}
	if ack := next(); ack.Type != message.Acknowledgement || ack.Code != codes.Empty {
		t.Fatalf("first answer %v, want an empty ACK", ack)
	}
	if err := a.Set(ctx, "/3442/0/130", "36.6"); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, agent.CmdReadDone{Token: ev.Token}); err != nil {
		t.Fatal(err)
	}
	if r := next(); r.Type != message.Confirmable || r.Code != codes.Content || string(r.Payload) != "36.6" {
		t.Errorf("separate response %v %v %q, want CON 2.05 36.6", r.Type, r.Code, r.Payload)
	}
	cancel()
	nextEvent(t, evs, agent.EventDeregistered)
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}

func TestAgentObjectsAndSet(t *testing.T) {
	srv := newLwM2MServer(t)
	cfg := map[string]string{
		agent.EnvServerURI: srv.uri(),
		agent.EnvEndpoint:  "wasm-objects",
	}
	if _, err := New(context.Background(), nil, cfg, WithRuntime(testRT), WithObjectsXML([]byte("<LWM2M>"))); !errors.Is(err, agent.ErrConfig) {
		t.Fatalf("New with bad XML = %v, want agent.ErrConfig", err)
	}
	a, err := New(context.Background(), nil, cfg, WithRuntime(testRT), WithObjectsXML(objectXML(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Before Run: applied to the module, in place when the session starts.
	if err := a.Set(ctx, "/3442/0/110", "before"); err != nil {
		t.Fatalf("Set before Run = %v", err)
	}
	if err := a.Set(ctx, "/3442/0/120", "x"); !errors.Is(err, agent.ErrBadValue) {
		t.Errorf("Set of a bad integer = %v, want agent.ErrBadValue", err)
	}
	if err := a.Set(ctx, "/3442/zero", "x"); !errors.Is(err, agent.ErrBadValue) {
		t.Errorf("Set of a bad path = %v, want agent.ErrBadValue", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	evs := a.Events()
	nextEvent(t, evs, agent.EventRegistered)

	check := func(path, want string) {
		t.Helper()
		ack := srv.readValue(t, path)
		if ack.Code != codes.Content || string(ack.Payload) != want {
			t.Errorf("GET %s = %v %q, want 2.05 %q", path, ack.Code, ack.Payload, want)
		}
	}
	check("/3442/0/110", "before")
	if err := a.Set(ctx, "/3442/0/110", "during"); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, "/3/0/9", "42"); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, agent.CmdSet{Path: lwm2m.P(3442, 0, 130), Value: lwm2m.Float(21.5)}); err != nil {
		t.Fatal(err)
	}
	check("/3442/0/110", "during")
	check("/3/0/9", "42")
	check("/3442/0/130", "21.5")
	if err := a.Set(ctx, "/3442/0/200", "1"); !errors.Is(err, agent.ErrBadValue) {
		t.Errorf("Set of an executable resource = %v, want agent.ErrBadValue", err)
	}

	// After a trap the fresh instance gets the values back.
	a.Module().mod.Close(context.Background())
	if err := a.Do(ctx, agent.CmdUpdate{}); err != nil && !errors.Is(err, agent.ErrNotRegistered) {
		t.Errorf("Do(update) after the trap = %v, want nil or ErrNotRegistered (see TestAgentRecoversFromTrap)", err)
	}
	nextEvent(t, evs, agent.EventRegistered)
	check("/3442/0/110", "during")
	check("/3/0/9", "42")

	cancel()
	nextEvent(t, evs, agent.EventDeregistered)
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if err := a.Set(context.Background(), "/3/0/9", "1"); !errors.Is(err, agent.ErrClosed) {
		t.Errorf("Set after Run = %v, want agent.ErrClosed", err)
	}
	// The value set before Run created instance 0: the Register lists it.
	srv.mu.Lock()
	reg, body := srv.log[0], srv.bodies[0]
	srv.mu.Unlock()
	if !strings.HasPrefix(reg, "POST /rd ") || !strings.Contains(body, "</3442/0>") {
		t.Errorf("first request %q with payload %q, want a Register listing </3442/0>", reg, body)
	}
}

func TestCommandJSON(t *testing.T) {
	cmds := []agent.Command{
		agent.CmdStart{}, agent.CmdStop{}, agent.CmdUpdate{},
		agent.CmdSet{Path: lwm2m.P(3, 0, 9), Value: lwm2m.String("50")},
		agent.CmdSet{Path: lwm2m.P(3442, 0, 130), Value: lwm2m.Float(-2.5)},
		agent.CmdSet{Path: lwm2m.P(3, 0, 11, 1)},
		agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9), lwm2m.P(6, 0)}},
		agent.CmdReadDone{Token: 1 << 40},
	}
	want := []agent.Command{
		cmds[0], cmds[1], cmds[2], cmds[3],
		agent.CmdSet{Path: lwm2m.P(3442, 0, 130), Value: lwm2m.String("-2.5")},
		cmds[5], cmds[6], cmds[7],
	}
	for i, c := range cmds {
		b, err := commandJSON(c)
		if err != nil {
			t.Fatalf("%#v: %v", c, err)
		}
		got, err := agent.ParseCommand(b)
		if err != nil {
			t.Fatalf("ParseCommand(%s): %v", b, err)
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want[i]) {
			t.Errorf("%s parses as %#v, want %#v", b, got, want[i])
		}
	}
}

func TestAgentSend(t *testing.T) {
	srv := newLwM2MServer(t)
	cfg := map[string]string{
		agent.EnvServerURI: srv.uri(),
		agent.EnvEndpoint:  "wasm-send",
	}
	a, err := New(context.Background(), nil, cfg, WithRuntime(testRT))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Send(ctx, "/3/0/9"); !errors.Is(err, agent.ErrClosed) {
		t.Errorf("Send before Run = %v, want agent.ErrClosed", err)
	}
	if err := a.Set(ctx, "/3/0/9", "73"); err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	evs := a.Events()
	nextEvent(t, evs, agent.EventRegistered)
	for _, bad := range [][]string{nil, {"/3/x"}, {"/0/0"}} {
		if err := a.Send(ctx, bad...); !errors.Is(err, agent.ErrBadValue) {
			t.Errorf("Send(%q) = %v, want agent.ErrBadValue", bad, err)
		}
	}
	if err := a.Send(ctx, "/3/0/9"); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, evs, agent.EventSent); ev.Path != "/3/0/9" {
		t.Errorf("sent event path = %q, want /3/0/9", ev.Path)
	}
	srv.mu.Lock()
	sawDP := slices.ContainsFunc(srv.log, func(r string) bool { return strings.HasPrefix(r, "POST /dp") })
	srv.mu.Unlock()
	if !sawDP {
		t.Error("no POST /dp reached the server")
	}
	cancel()
	nextEvent(t, evs, agent.EventDeregistered)
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}
