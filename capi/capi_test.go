//go:build cgo

package main

// These tests drive capi's Go side directly (tests cannot use cgo, but the
// package code they call does). The C side, handlers included, is covered
// by testdata/*.c and bindings/python/tests.

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
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
