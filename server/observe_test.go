package server_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// battery is the Device object's Battery Level, which the agent lets the
// host set with CmdSet.
var battery = lwm2m.P(3, 0, 9)

// device is a real agent registered with a test server.
type device struct {
	t  *testing.T
	a  *agent.Agent
	ep string
	// notified receives the path of every notification the agent sends.
	notified chan string
	stop     func() // de-registers and stops the agent; idempotent
}

// startAgent runs a real agent registering with s as ep and waits until
// both sides have the registration. The agent de-registers when the test
// ends, before the server closes.
//
// Waiting for the agent keeps the tests independent of the order in which
// the server's event and its 2.01 arrive.
func startAgent(t *testing.T, s *server.Server, ep string) *device {
	t.Helper()
	events, stop := s.Subscribe()
	defer stop()
	a, err := agent.New(agent.Config{ServerURI: "coap://" + s.CoAPAddr().String(), Endpoint: ep,
		Logger: testLogger(t).With("side", "agent")})
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	d := &device{t: t, a: a, ep: ep, notified: make(chan string, 256)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	registered := make(chan struct{}, 1)
	go func() {
		for ev := range a.Events() {
			if ev.Kind == agent.EventRegistered {
				select {
				case registered <- struct{}{}:
				default:
				}
			}
			if ev.Kind == agent.EventNotify {
				select {
				case d.notified <- ev.Path:
				default:
				}
			}
		}
	}()
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent run: %v", err)
			}
		})
	}
	t.Cleanup(d.stop)
	wctx, wcancel := context.WithTimeout(context.Background(), testTimeout)
	defer wcancel()
	if _, err := server.WaitEvent(wctx, events, ep, server.EventRegistered); err != nil {
		t.Fatalf("agent registration: %v", err)
	}
	select {
	case <-registered:
	case <-wctx.Done():
		t.Fatalf("agent registration: the agent did not report it: %v", wctx.Err())
	}
	return d
}

// withAgent starts a server and a real agent registered as "dev1".
func withAgent(t *testing.T, cfg server.Config) (*server.Server, *device) {
	t.Helper()
	s := newServer(t, cfg)
	return s, startAgent(t, s, "dev1")
}

// set sets the battery level on the agent.
func (d *device) set(ctx context.Context, level int64) {
	d.t.Helper()
	if err := d.a.Do(ctx, agent.CmdSet{Path: battery, Value: lwm2m.Int(level)}); err != nil {
		d.t.Fatalf("set battery %d: %v", level, err)
	}
}

// observe starts an observation that is cancelled when the test ends.
func observe(t *testing.T, ctx context.Context, s *server.Server, p lwm2m.Path, accept lwm2m.ContentFormat) *server.Observation {
	t.Helper()
	o, err := s.Observe(ctx, "dev1", p, accept)
	if err != nil {
		t.Fatalf("Observe %s: %v", p, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = o.Cancel(ctx)
	})
	return o
}

// next returns the next notification of o.
func next(t *testing.T, ctx context.Context, o *server.Observation) server.Notification {
	t.Helper()
	select {
	case n, ok := <-o.Notifications():
		if !ok {
			t.Fatalf("observation of %s ended: %v", o.Path(), o.Err())
		}
		if n.Err != nil {
			t.Fatalf("notification of %s: %v", o.Path(), n.Err)
		}
		return n
	case <-ctx.Done():
		t.Fatalf("no notification of %s: %v", o.Path(), ctx.Err())
	}
	return server.Notification{}
}

// valueAt returns the value of the record at p.
func valueAt(t *testing.T, recs []lwm2m.Record, p lwm2m.Path) lwm2m.Value {
	t.Helper()
	for _, r := range recs {
		if r.Path == p {
			return r.Value
		}
	}
	t.Fatalf("no record at %s in %+v", p, recs)
	return lwm2m.Value{}
}

func TestObserve(t *testing.T) {
	tests := []struct {
		name   string
		path   lwm2m.Path
		accept lwm2m.ContentFormat
	}{
		{"resource as text", battery, lwm2m.FormatText},
		{"resource, format of the client's choice", battery, lwm2m.FormatNone},
		{"instance as TLV", lwm2m.P(3, 0), lwm2m.FormatTLV},
		{"instance as SenML JSON", lwm2m.P(3, 0), lwm2m.FormatSenMLJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := withAgent(t, server.Config{})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			o := observe(t, ctx, s, tt.path, tt.accept)
			resp := o.Response()
			if resp.Code != codes.Content {
				t.Errorf("Observe: code %v, want 2.05", resp.Code)
			}
			if tt.accept != lwm2m.FormatNone && resp.ContentFormat != tt.accept {
				t.Errorf("Observe: format %v, want %v", resp.ContentFormat, tt.accept)
			}
			if v := valueAt(t, resp.Records, battery); !reflect.DeepEqual(v, lwm2m.Int(100)) {
				t.Errorf("initial battery = %v, want 100", v)
			}
			if tt.path.Len < 3 {
				if v := valueAt(t, resp.Records, lwm2m.P(3, 0, 0)); !reflect.DeepEqual(v, lwm2m.String("avc")) {
					t.Errorf("initial manufacturer = %v, want avc", v)
				}
			}
			if o.Endpoint() != "dev1" || o.Path() != tt.path || len(o.ID()) != 8 {
				t.Errorf("observation %q %s id %q", o.Endpoint(), o.Path(), o.ID())
			}

			var last uint32
			for _, level := range []int64{40, 30} {
				dev.set(ctx, level)
				n := next(t, ctx, o)
				if v := valueAt(t, n.Response.Records, battery); !reflect.DeepEqual(v, lwm2m.Int(level)) {
					t.Errorf("notified battery = %v, want %d", v, level)
				}
				if n.Response.Code != codes.Content || n.Seq <= last || n.Time.IsZero() {
					t.Errorf("notification code %v seq %d (last %d) time %v", n.Response.Code, n.Seq, last, n.Time)
				}
				last = n.Seq
			}
		})
	}
}

func TestObserveWithAttributes(t *testing.T) {
	tests := []struct {
		name  string
		attrs server.Attributes
		sets  []int64 // battery levels set after the observation starts
		want  int64   // the value of the first notification
		link  string  // what Discover shows for /3/0/9
	}{
		// pmax=1: a notification within about a second without any change.
		{"pmax", server.Attributes{Pmin: new(int64(0)), Pmax: new(int64(1))}, nil, 100, "</3/0/9>;pmin=0;pmax=1"},
		// Only crossing gt notifies: 90 does not, 40 does.
		{"gt", server.Attributes{Gt: new(50.0)}, []int64{90, 40}, 40, "</3/0/9>;gt=50"},
		// Only crossing lt notifies: 60 does not, 30 does.
		{"lt", server.Attributes{Lt: new(50.0)}, []int64{60, 30}, 30, "</3/0/9>;lt=50"},
		// st=20: a change of 10 does not notify, one of 25 does.
		{"st", server.Attributes{St: new(20.0)}, []int64{90, 75}, 75, "</3/0/9>;st=20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := withAgent(t, server.Config{})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			resp, err := s.WriteAttributes(ctx, "dev1", battery, tt.attrs)
			if err != nil {
				t.Fatalf("WriteAttributes: %v", err)
			}
			if resp.Code != codes.Changed {
				t.Errorf("WriteAttributes: code %v, want 2.04", resp.Code)
			}
			_, dresp, err := s.Discover(ctx, "dev1", battery)
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if string(dresp.Payload) != tt.link {
				t.Errorf("Discover = %q, want %q", dresp.Payload, tt.link)
			}

			o := observe(t, ctx, s, battery, lwm2m.FormatText)
			start := time.Now()
			for _, level := range tt.sets {
				dev.set(ctx, level)
			}
			n := next(t, ctx, o)
			if v := valueAt(t, n.Response.Records, battery); !reflect.DeepEqual(v, lwm2m.Int(tt.want)) {
				t.Errorf("first notification = %v, want %d", v, tt.want)
			}
			if tt.attrs.Pmax != nil {
				if d := time.Since(start); d > 2500*time.Millisecond {
					t.Errorf("pmax=1 notification after %v", d)
				}
				// And again a second later.
				if v := valueAt(t, next(t, ctx, o).Response.Records, battery); !reflect.DeepEqual(v, lwm2m.Int(100)) {
					t.Errorf("second notification = %v, want 100", v)
				}
			}
		})
	}
}

func TestObserveCancel(t *testing.T) {
	s, dev := withAgent(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	res := observe(t, ctx, s, battery, lwm2m.FormatText)
	inst := observe(t, ctx, s, lwm2m.P(3, 0), lwm2m.FormatTLV)

	if err := res.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if _, ok := <-res.Notifications(); ok {
		t.Error("notification channel open after Cancel")
	}
	if err := res.Err(); !errors.Is(err, server.ErrCancelled) {
		t.Errorf("Err after Cancel = %v, want ErrCancelled", err)
	}
	if err := res.Cancel(ctx); err != nil {
		t.Errorf("second Cancel: %v", err)
	}

	// The agent notifies every observation of a change at once and
	// reports its notifications in order, so everything it sent for the
	// first change comes before the instance notification of the second:
	// nothing may be for the cancelled resource observation.
	// /3/0 also holds the current time (/3/0/13): a second that ticks
	// over brings a notification of its own, with the battery level of
	// before; the one for each change must follow, with the new level.
	before := valueAt(t, inst.Response().Records, battery)
	for _, level := range []int64{40, 30} {
		dev.set(ctx, level)
		for {
			v := valueAt(t, next(t, ctx, inst).Response.Records, battery)
			if reflect.DeepEqual(v, lwm2m.Int(level)) {
				break
			}
			if !reflect.DeepEqual(v, before) {
				t.Fatalf("instance notification: battery %v, want %d (or %v, before the change)", v, level, before)
			}
		}
		before = lwm2m.Int(level)
	}
	for seen := 0; seen < 2; {
		select {
		case p := <-dev.notified:
			switch p {
			case "/3/0":
				seen++
			case battery.String():
				t.Errorf("the agent notified %s after Cancel", p)
			}
		case <-ctx.Done():
			t.Fatalf("agent notifications: %v", ctx.Err())
		}
	}
}

func TestObservationEndsWithRegistration(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, s *server.Server, dev *device)
	}{
		{"de-registration", func(_ *testing.T, _ *server.Server, dev *device) { dev.stop() }},
		{"new registration", func(t *testing.T, s *server.Server, _ *device) { startAgent(t, s, "dev1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dev := withAgent(t, server.Config{})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			o, err := s.Observe(ctx, "dev1", battery, lwm2m.FormatText)
			if err != nil {
				t.Fatalf("Observe: %v", err)
			}
			tt.end(t, s, dev)
			for range o.Notifications() {
			}
			if err := o.Err(); !errors.Is(err, server.ErrRegistrationEnded) {
				t.Errorf("Err = %v, want ErrRegistrationEnded", err)
			}
		})
	}
}

func TestObserveRefused(t *testing.T) {
	s, _ := registered(t, server.Config{}, "dev1") // the fake client knows no Observe
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tests := []struct {
		name     string
		path     lwm2m.Path
		want     error
		wantCode codes.Code
	}{
		{"client keeps no observation", battery, server.ErrNotObserved, codes.Content},
		{"missing object", lwm2m.P(5, 0), nil, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := s.Observe(ctx, "dev1", tt.path, lwm2m.FormatNone)
			var ce *server.CodeError
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Observe: %v, want %v", err, tt.want)
			case tt.want == nil && (!errors.As(err, &ce) || ce.Code != tt.wantCode || ce.Op != "observe"):
				t.Fatalf("Observe: %v, want a %v CodeError", err, tt.wantCode)
			}
			if o == nil || o.Response() == nil || o.Response().Code != tt.wantCode {
				t.Fatalf("Observe: observation %+v, want one with a %v response", o, tt.wantCode)
			}
			if _, ok := <-o.Notifications(); ok || o.Err() == nil {
				t.Errorf("observation alive after %v", err)
			}
		})
	}
	if _, err := s.Observe(ctx, "nobody", battery, lwm2m.FormatText); !errors.Is(err, server.ErrNotRegistered) {
		t.Errorf("Observe of an unknown client: %v, want ErrNotRegistered", err)
	}
}

// TestUnknownNotificationIsReset: a notification whose token is no
// observation's gets RST with its message ID, confirmable or not.
func TestUnknownNotificationIsReset(t *testing.T) {
	s := newServer(t, server.Config{})
	tests := []struct {
		name string
		typ  message.Type
	}{
		{"non-confirmable", message.NonConfirmable},
		{"confirmable", message.Confirmable},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mid := int32(0x4200 + i)
			got := rawNotify(t, s, tt.typ, mid, []byte{1, 2, 3, 4, 5, 6, 7, byte(i)})
			if got.Type != message.Reset || got.Code != codes.Empty || got.MessageID != mid || len(got.Token) != 0 {
				t.Errorf("answer %v %v mid %#x token %x, want an empty RST with mid %#x", got.Type, got.Code, got.MessageID, got.Token, mid)
			}
		})
	}
}

// rawNotify sends a notification with token from a new UDP socket and
// returns the server's answer.
func rawNotify(t *testing.T, s *server.Server, typ message.Type, mid int32, token message.Token) message.Message {
	t.Helper()
	c, err := net.Dial("udp", s.CoAPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := message.Message{Type: typ, Code: codes.Content, MessageID: mid, Token: token,
		Options: message.Options{{ID: message.Observe, Value: []byte{9}}, {ID: message.ContentFormat, Value: []byte{}}},
		Payload: []byte("87")}
	b := make([]byte, 64)
	size, err := coder.DefaultCoder.Encode(n, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b[:size]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	size, err = c.Read(b)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	var got message.Message
	if _, err := coder.DefaultCoder.Decode(b[:size], &got); err != nil {
		t.Fatalf("answer %x: %v", b[:size], err)
	}
	return got
}

func TestCloseEndsObservations(t *testing.T) {
	s, c := registered(t, server.Config{}, "dev1")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	o, err := s.Observe(ctx, "dev1", fakeObservable, lwm2m.FormatText)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	c.observeToken(ctx)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok := <-o.Notifications(); ok {
		t.Error("notification channel open after Close")
	}
	if err := o.Err(); !errors.Is(err, server.ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", err)
	}
}

// TestNotifications checks what the server does with each notification,
// sent by the fake client on its own schedule.
func TestNotifications(t *testing.T) {
	s, c := registered(t, server.Config{}, "dev1")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	o, err := s.Observe(ctx, "dev1", fakeObservable, lwm2m.FormatText)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	if v := valueAt(t, o.Response().Records, fakeObservable); !reflect.DeepEqual(v, lwm2m.String("avc")) {
		t.Errorf("initial value %v", v)
	}
	token := c.observeToken(ctx)

	sends := []struct {
		name    string
		typ     message.Type
		code    codes.Code
		seq     int // -1: no Observe option
		payload string
		want    string // the payload delivered; "" when dropped
	}{
		{"non-confirmable", message.NonConfirmable, codes.Content, 3, "a", "a"},
		{"confirmable, acknowledged", message.Confirmable, codes.Content, 4, "b", "b"},
		{"stale sequence number dropped", message.NonConfirmable, codes.Content, 4, "x", ""},
		{"older sequence number dropped", message.NonConfirmable, codes.Content, 1, "y", ""},
		{"half the space ahead", message.NonConfirmable, codes.Content, 1<<23 + 3, "c", "c"},
		{"just behind", message.NonConfirmable, codes.Content, 1 << 23, "z", ""},
		{"top of the space", message.NonConfirmable, codes.Content, 1<<24 - 1, "d", "d"},
		{"wrapped around", message.NonConfirmable, codes.Content, 2, "e", "e"},
	}
	for _, sd := range sends {
		if err := c.notify(ctx, token, sd.typ, sd.code, sd.seq, sd.payload); err != nil {
			t.Fatalf("%s: notify: %v", sd.name, err)
		}
		if sd.want == "" {
			continue // the next delivered notification shows it was dropped
		}
		n := next(t, ctx, o)
		if got := string(n.Response.Payload); got != sd.want || n.Seq != uint32(sd.seq) {
			t.Errorf("%s: delivered %q seq %d, want %q seq %d", sd.name, got, n.Seq, sd.want, sd.seq)
		}
		if v := valueAt(t, n.Response.Records, fakeObservable); !reflect.DeepEqual(v, lwm2m.String(sd.want)) {
			t.Errorf("%s: record %v", sd.name, v)
		}
	}

	// The token from another address is not the observation's.
	if got := rawNotify(t, s, message.NonConfirmable, 0x4242, token); got.Type != message.Reset || got.MessageID != 0x4242 {
		t.Errorf("notification from elsewhere: answer %v mid %#x, want RST", got.Type, got.MessageID)
	}

	// An error code ends the observation (RFC 7641 §3.2).
	if err := c.notify(ctx, token, message.NonConfirmable, codes.NotFound, -1, ""); err != nil {
		t.Fatal(err)
	}
	n := next(t, ctx, o)
	if n.Response.Code != codes.NotFound || n.Seq != 0 {
		t.Errorf("final notification %v seq %d, want 4.04 without sequence number", n.Response.Code, n.Seq)
	}
	if _, ok := <-o.Notifications(); ok {
		t.Error("observation alive after a 4.04 notification")
	}
	var ce *server.CodeError
	if err := o.Err(); !errors.As(err, &ce) || ce.Op != "notify" || ce.Code != codes.NotFound {
		t.Errorf("Err = %v, want a 4.04 notify CodeError", err)
	}
}
