//go:build cgo

package main

// These tests drive capi's Go side directly (tests cannot use cgo, but the
// package code they call does). The C side, handlers included, is covered
// by testdata/*.c and bindings/python/tests.

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/linkformat"
	"github.com/avc-agent/avc/server"
)

func init() { logLevel.Set(slog.LevelError + 1) } // keep expected warnings quiet

func mustCode(t *testing.T, err error, want int) {
	t.Helper()
	if got := codeOf(err); got != want {
		t.Fatalf("code = %d (%v), want %d", got, err, want)
	}
}

func TestPollQueueDropsOldest(t *testing.T) {
	pollEnable(true)
	defer pollEnable(false)
	const n = 300
	for i := range n {
		pollPush(statusEvent{status: int32(i % 25), message: string(rune('a' + i%26))})
	}
	first, err := pollTake(0)
	if err != nil {
		t.Fatal(err)
	}
	wantDropped := uint32(n - pollQueueMax)
	if first.dropped != wantDropped {
		t.Errorf("first.dropped = %d, want %d", first.dropped, wantDropped)
	}
	if want := int32(int(wantDropped) % 25); first.status != want {
		t.Errorf("first.status = %d, want %d (the oldest kept)", first.status, want)
	}
	for i := 1; i < pollQueueMax; i++ {
		ev, err := pollTake(0)
		if err != nil {
			t.Fatalf("take %d: %v", i, err)
		}
		if ev.dropped != 0 {
			t.Fatalf("take %d: dropped = %d", i, ev.dropped)
		}
	}
	_, err = pollTake(0)
	mustCode(t, err, rcTimeout)
	_, err = pollTake(20 * time.Millisecond)
	mustCode(t, err, rcTimeout)
}

func TestPollOffAndWake(t *testing.T) {
	pollEnable(false)
	_, err := pollTake(0)
	mustCode(t, err, rcNotPermitted)

	pollEnable(true)
	errc := make(chan error, 1)
	go func() {
		_, err := pollTake(-1)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	pollEnable(false)
	select {
	case err := <-errc:
		mustCode(t, err, rcNotPermitted)
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting poller was not woken by disabling the queue")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name, setting, value string
		want                 int
		read                 string // expected read-back when want is OK
	}{
		{"unknown name", "AVC_NOPE", "x", rcNotFound, ""},
		{"lifetime", agent.EnvLifetime, "120", rcOK, "120"},
		{"bad lifetime", agent.EnvLifetime, "ten", rcFormat, "120"},
		{"default lifetime", agent.EnvLifetime, "", rcOK, "86400"},
		{"psk key hidden", agent.EnvPSKKey, "0011", rcOK, "(set)"},
		{"psk key not hex", agent.EnvPSKKey, "zz", rcFormat, "(set)"},
		{"psk key cleared", agent.EnvPSKKey, "", rcOK, ""},
		{"log level", agent.EnvLogLevel, "error", rcOK, "error"},
		{"bad log level", agent.EnvLogLevel, "loud", rcFormat, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustCode(t, configSet(tt.setting, tt.value), tt.want)
			if tt.want == rcNotFound {
				_, err := configGet(tt.setting)
				mustCode(t, err, rcNotFound)
				return
			}
			got, err := configGet(tt.setting)
			if err != nil || got != tt.read {
				t.Errorf("configGet = %q, %v; want %q", got, err, tt.read)
			}
		})
	}
	logLevel.Set(slog.LevelError + 1)
}

func TestGuardRecoversPanics(t *testing.T) {
	f := func() (rc int) {
		defer guard("f", &rc, rcFault)
		var m map[string]int
		m["x"] = 1 // panics
		return rcOK
	}
	if rc := f(); rc != rcFault {
		t.Fatalf("rc = %d, want %d", rc, rcFault)
	}
	if msg := lastError(); !strings.Contains(msg, "internal error") {
		t.Errorf("last error = %q", msg)
	}
}

func TestLogFormat(t *testing.T) {
	var b strings.Builder
	h := (&logHandler{}).WithAttrs([]slog.Attr{slog.String("a", "x y")}).WithGroup("g")
	b.WriteString(h.(*logHandler).attrs)
	appendAttr(&b, h.(*logHandler).prefix, slog.Int("n", 3))
	appendAttr(&b, "", slog.Group("grp", slog.String("k", "")))
	if got, want := b.String(), ` a="x y" g.n=3 grp.k=""`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// takeStatus polls until status arrives.
func takeStatus(t *testing.T, status int32) queuedEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var seen []int32
	for time.Now().Before(deadline) {
		ev, err := pollTake(time.Until(deadline))
		if err != nil {
			break
		}
		seen = append(seen, ev.status)
		if ev.status == status {
			return ev
		}
	}
	t.Fatalf("no status %d (seen %v)", status, seen)
	return queuedEvent{}
}

func TestSessionLifecycle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	pollEnable(true)
	defer pollEnable(false)

	mustCode(t, configSet(agent.EnvServerURI, ""), rcOK)
	mustCode(t, startSession(), rcFault)
	mustCode(t, stopSession(), rcDuplicate)

	mustCode(t, configSet(agent.EnvServerURI, "coap://"+srv.CoAPAddr().String()), rcOK)
	mustCode(t, configSet(agent.EnvEndpoint, "capi-test"), rcOK)
	for round := range 3 {
		mustCode(t, startSession(), rcOK)
		mustCode(t, startSession(), rcDuplicate)
		ev := takeStatus(t, statusSessionStarted)
		if !strings.HasPrefix(ev.message, "/rd/") {
			t.Errorf("round %d: STARTED message = %q, want the location", round, ev.message)
		}
		mustCode(t, stopSession(), rcOK)
		mustCode(t, stopSession(), rcDuplicate)
		takeStatus(t, statusSessionStopped)
	}

	// Stop at once, start again at once: the second session runs after the
	// first has ended, and each ends with STOPPED.
	mustCode(t, startSession(), rcOK)
	mustCode(t, stopSession(), rcOK)
	mustCode(t, startSession(), rcOK)
	takeStatus(t, statusSessionStopped)
	takeStatus(t, statusSessionStarted)
	mustCode(t, stopSession(), rcOK)
	takeStatus(t, statusSessionStopped)
}

func TestStatusOf(t *testing.T) {
	want := map[agent.EventKind]int{
		agent.EventRegistered:         statusSessionStarted,
		agent.EventDeregistered:       statusSessionStopped,
		agent.EventRegistrationFailed: statusSessionFailed,
	}
	// Every kind, including notify, sleep, wake and kinds not defined yet:
	// only the session's life has an le_avc status.
	for k := agent.EventKind(0); k < agent.EventStore+8; k++ {
		status, _, ok := statusOf(agent.Event{Kind: k, Location: "/rd/x"})
		if w, has := want[k]; ok != has || status != w {
			t.Errorf("statusOf(%s) = %d, %v; want %d, %v", k, status, ok, w, has)
		}
	}
	if _, msg, _ := statusOf(agent.Event{Kind: agent.EventRegistered, Location: "/rd/x"}); msg != "/rd/x" {
		t.Errorf("STARTED message = %q, want the location", msg)
	}
}

func TestDefineObjects(t *testing.T) {
	t.Cleanup(func() { defineObjects(nil, true) })
	xml, err := os.ReadFile("../lwm2m/testdata/3442-test.xml")
	if err != nil {
		t.Fatal(err)
	}
	mustCode(t, defineObjects([]byte("<LWM2M>"), false), rcFormat)
	mustCode(t, defineObjects([]byte("<LWM2M/>"), false), rcFormat)
	mustCode(t, setValue("/3442/0/110", "x", false), rcBadParameter)
	mustCode(t, defineObjects(xml, false), rcOK)
	mustCode(t, defineObjects(xml, false), rcOK) // replaces, does not duplicate
	core.mu.Lock()
	n := len(core.objects)
	core.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d objects defined, want 1", n)
	}
	builtin := strings.Replace(string(xml), "<ObjectID>3442</ObjectID>", "<ObjectID>4</ObjectID>", 1)
	mustCode(t, defineObjects([]byte(builtin), false), rcBadParameter)
	mustCode(t, setValue("/3442/0/110", "x", false), rcOK)
	mustCode(t, setValue("/3442/0/120", "x", false), rcBadParameter)
	mustCode(t, setValue("/3442/0/180/3", "-4", false), rcOK)
	mustCode(t, setValue("/3442/0/180/3", "", true), rcOK)
	mustCode(t, setValue("/3442/0/110", "", true), rcBadParameter)
	mustCode(t, setValue("/3442/0/200", "1", false), rcBadParameter)
	mustCode(t, setValue("3442/0/110", "no leading slash", false), rcOK)
	mustCode(t, setValue("/3442/0/110/0/1", "x", false), rcBadParameter)
}

// readText reads p from ep as text/plain until it equals want.
func readText(t *testing.T, srv *server.Server, ep string, p lwm2m.Path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got string
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var resp *server.Response
		resp, err = srv.Read(ctx, ep, p, lwm2m.FormatText)
		cancel()
		if err == nil && len(resp.Records) == 1 {
			got = resp.Records[0].Value.String()
			if got == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("read %s = %q, %v; want %q", p, got, err, want)
}

func TestValuesAgainstServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	xml, err := os.ReadFile("../lwm2m/testdata/3442-test.xml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { defineObjects(nil, true) })

	pollEnable(true)
	defer pollEnable(false)
	const ep = "capi-values"
	mustCode(t, configSet(agent.EnvServerURI, "coap://"+srv.CoAPAddr().String()), rcOK)
	mustCode(t, configSet(agent.EnvEndpoint, ep), rcOK)
	mustCode(t, defineObjects(xml, false), rcOK)
	// Set before the session: remembered, given to the session's engine.
	mustCode(t, setValue("/3442/0/110", "before", false), rcOK)
	mustCode(t, setValue("/3/0/9", "77", false), rcOK)

	mustCode(t, startSession(), rcOK)
	takeStatus(t, statusSessionStarted)
	readText(t, srv, ep, lwm2m.P(3442, 0, 110), "before")
	readText(t, srv, ep, lwm2m.P(3, 0, 9), "77")

	// Set while it runs: the server reads the new value.
	mustCode(t, setValue("/3442/0/110", "during", false), rcOK)
	readText(t, srv, ep, lwm2m.P(3442, 0, 110), "during")
	mustCode(t, setValue("/3442/0/130", "21.5", false), rcOK)
	readText(t, srv, ep, lwm2m.P(3442, 0, 130), "21.5")
	mustCode(t, setValue("/3442/0/120", "x", false), rcBadParameter)
	// The registration announces the instance that the values created.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ci, _ := srv.Client(ep)
		if strings.Contains(linksString(ci), "</3442/0>") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration links %s lack </3442/0>", linksString(ci))
		}
		time.Sleep(20 * time.Millisecond)
	}

	mustCode(t, stopSession(), rcOK)
	takeStatus(t, statusSessionStopped)

	// The next session starts with the values set so far.
	mustCode(t, startSession(), rcOK)
	takeStatus(t, statusSessionStarted)
	readText(t, srv, ep, lwm2m.P(3442, 0, 110), "during")
	readText(t, srv, ep, lwm2m.P(3, 0, 9), "77")
	mustCode(t, stopSession(), rcOK)
	takeStatus(t, statusSessionStopped)
}

func linksString(ci server.ClientInfo) string { return string(linkformat.Format(ci.Links)) }

func TestSend(t *testing.T) {
	mustCode(t, send(nil), rcBadParameter)
	mustCode(t, send([]string{"/3/0/9"}), rcNotPermitted)
	mustCode(t, send([]string{"/3/x"}), rcBadParameter)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	events, unsub := srv.Subscribe()
	defer unsub()

	pollEnable(true)
	defer pollEnable(false)
	const ep = "capi-send"
	mustCode(t, configSet(agent.EnvServerURI, "coap://"+srv.CoAPAddr().String()), rcOK)
	mustCode(t, configSet(agent.EnvEndpoint, ep), rcOK)
	mustCode(t, setValue("/3/0/9", "64", false), rcOK)
	mustCode(t, startSession(), rcOK)
	takeStatus(t, statusSessionStarted)
	mustCode(t, send([]string{"/0/0"}), rcBadParameter)
	mustCode(t, send([]string{"/3/0/9"}), rcOK)
	timeout := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case ev := <-events:
			if ev.Kind != server.EventSend || ev.Endpoint != ep {
				continue
			}
			if len(ev.Records) != 1 || ev.Records[0].Path != lwm2m.P(3, 0, 9) || ev.Records[0].Value.String() != "64" {
				t.Fatalf("send records = %v, want /3/0/9 = 64", ev.Records)
			}
			got = true
		case <-timeout:
			t.Fatal("no send event")
		}
	}
	mustCode(t, stopSession(), rcOK)
	takeStatus(t, statusSessionStopped)
	mustCode(t, send([]string{"/3/0/9"}), rcNotPermitted)
}
