//go:build cgo

package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestEveryDeclaredFunctionIsExported: each function le_avc_interface.h
// declares has an //export in capi, and the header declares the 43 of
// api-reference §1.6. (scripts/test-c.sh checks the built libraries with
// nm.)
func TestEveryDeclaredFunctionIsExported(t *testing.T) {
	hdr, err := os.ReadFile("../include/le_avc_interface.h")
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^[a-z_A-Z][\w* ]*?\b(le_avc_[A-Z]\w*)\s*\(`)
	var declared []string
	for _, m := range decl.FindAllSubmatch(hdr, -1) {
		declared = append(declared, string(m[1]))
	}
	slices.Sort(declared)
	declared = slices.Compact(declared)
	if len(declared) != 43 {
		t.Errorf("le_avc_interface.h declares %d le_avc functions, want 43: %v", len(declared), declared)
	}
	files, _ := filepath.Glob("*.go")
	exported := map[string]bool{}
	exp := regexp.MustCompile(`(?m)^//export (\w+)$`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range exp.FindAllSubmatch(b, -1) {
			exported[string(m[1])] = true
		}
	}
	for _, name := range declared {
		if !exported[name] {
			t.Errorf("%s is declared but not exported", name)
		}
	}
}

func TestCoAPCode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want byte
		ok   bool
	}{
		{"2.01", 0x41, true}, {"2.04", 0x44, true}, {"2.31", 0x5F, true}, {"4.04", 0x84, true},
		{"4.13", 0x8D, true}, {"5.03", 0xA3, true}, {"", 0, false}, {"404", 0, false}, {"4.4", 0, false},
		{"8.00", 0, false}, {"4.32", 0, false},
	} {
		got, ok := coapCode(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("coapCode(%q) = %#x, %v; want %#x, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCommInfoOf(t *testing.T) {
	for _, tc := range []struct {
		ev   agent.Event
		code byte
		text string
		ok   bool
	}{
		{agent.Event{Kind: agent.EventRegistered, Location: "/rd/1"}, 0x41, "COAP 2.01", true},
		{agent.Event{Kind: agent.EventUpdated}, 0x44, "COAP 2.04", true},
		{agent.Event{Kind: agent.EventDeregistered}, 0x42, "COAP 2.02", true},
		{agent.Event{Kind: agent.EventDeregistered, Err: "timeout"}, 0, "", false},
		{agent.Event{Kind: agent.EventRegistrationFailed, Code: "4.03"}, 0x83, "COAP 4.03", true},
		{agent.Event{Kind: agent.EventRegistrationFailed, Err: "timeout"}, commUDPSendErr, "no answer: timeout", true},
		{agent.Event{Kind: agent.EventSendFailed, Code: "4.04"}, 0x84, "COAP 4.04", true},
		{agent.Event{Kind: agent.EventRead, Path: "/3/0"}, 0, "", false},
	} {
		code, text, ok := commInfoOf(tc.ev)
		if code != tc.code || text != tc.text || ok != tc.ok {
			t.Errorf("commInfoOf(%v) = %#x %q %v; want %#x %q %v", tc.ev.Kind, code, text, ok, tc.code, tc.text, tc.ok)
		}
	}
}

// resetControl forgets every update-control setting of this process.
func resetControl() {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	ctl.known = defaultControlState()
	ctl.setAgreement = [agent.NumAgreements]bool{}
	ctl.setPolling, ctl.setRetry, ctl.setAPN = false, false, false
	clear(ctl.blocks)
}

// TestControlWithoutSession: the return codes and the kept values when no
// session runs (capi/testdata/lecontrol.c checks the same from C).
func TestControlWithoutSession(t *testing.T) {
	resetControl()
	t.Cleanup(resetControl)
	mustCode(t, acceptOrDefer(agent.AgreeDownload, -1), rcFault)
	mustCode(t, acceptOrDefer(agent.AgreeConnection, 5), rcFault)
	mustCode(t, setPollingTimer(agent.PollingTimerMax+1), rcOutOfRange)
	mustCode(t, setPollingTimer(agent.PollingTimerMax), rcOK)
	mustCode(t, setRetryTimers(make([]uint16, 7)), rcFault)
	mustCode(t, setRetryTimers([]uint16{1, 2, 3, 4, 5, 6, 7, agent.RetryTimerMax + 1}), rcOutOfRange)
	mustCode(t, setAPN(string(make([]byte, agent.APNNameMaxLen+1)), "", ""), rcOverflow)
	mustCode(t, setAgreement(agent.NumAgreements, true), rcFault)
	mustCode(t, setAgreement(int(agent.AgreeInstall), true), rcOK)
	st := controlState()
	if st.PollingTimer != agent.PollingTimerMax || st.RetryTimers != agent.DefaultRetryTimers ||
		!st.Agreements[agent.AgreeInstall] || st.HTTPStatus != agent.HTTPStatusUnknown {
		t.Errorf("state = %+v", st)
	}
	ref, err := blockInstall()
	mustCode(t, err, rcOK)
	if ref == 0 || !unblockInstall(ref) || unblockInstall(ref) {
		t.Errorf("block %d: unblocked once, and not twice?", ref)
	}
}

// TestControlInSession: settings made before a session reach its agent,
// settings made during it go to the agent at once, and getters answer
// from the agent.
func TestControlInSession(t *testing.T) {
	resetControl()
	t.Cleanup(resetControl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pollEnable(true)
	defer pollEnable(false)

	mustCode(t, configSet(agent.EnvStateDir, t.TempDir()), rcOK)
	t.Cleanup(func() {
		_ = configSet(agent.EnvStateDir, "")
		retireRunner(t) // it must not write into the removed directory
	})
	mustCode(t, configSet(agent.EnvServerURI, "coap://"+srv.CoAPAddr().String()), rcOK)
	mustCode(t, configSet(agent.EnvEndpoint, "capi-control"), rcOK)
	retry := []uint16{1, 2, 3, 4, 5, 6, 7, 8}
	mustCode(t, setRetryTimers(retry), rcOK)
	mustCode(t, setAPN("internet", "u", "p"), rcOK)
	mustCode(t, setAgreement(int(agent.AgreeReboot), true), rcOK)
	ref, err := blockInstall()
	mustCode(t, err, rcOK)

	mustCode(t, startSession(), rcOK)
	takeStatus(t, statusSessionStarted)
	if !sessionStarted(0xFFFF) || sessionType() != sessionTypeDM {
		t.Errorf("IsSessionStarted %v, session type %d; want true, DM", sessionStarted(0xFFFF), sessionType())
	}
	// The replay happens while the session starts; wait for the agent.
	deadline := time.Now().Add(5 * time.Second)
	var st agent.ControlState
	for time.Now().Before(deadline) {
		ctl.mu.Lock()
		attached := ctl.live != nil
		ctl.mu.Unlock()
		if attached {
			st = controlState()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !slices.Equal(st.RetryTimers[:], retry) || st.APNName != "internet" || !st.Agreements[agent.AgreeReboot] || st.Blocks != 1 {
		t.Errorf("the agent's state %+v lacks the settings made before the session", st)
	}
	// le_avc_ReadLwm2mResource reads through the running agent.
	if v, err := readResource(lwm2m.P(1, 0, 6)); err != nil || v != "1" {
		t.Errorf("read /1/0/6 = %q, %v; want 1", v, err)
	}
	if v, err := readResource(lwm2m.P(3, 0, 7, 0)); err != nil || v != "5000" {
		t.Errorf("read /3/0/7/0 = %q, %v; want 5000", v, err)
	}
	if _, err := readResource(lwm2m.P(0, 0, 5)); err == nil {
		t.Error("the Security object's secret key was read")
	}
	mustCode(t, acceptOrDefer(agent.AgreeInstall, -1), rcFault)
	mustCode(t, acceptOrDefer(agent.AgreeDownload, 30), rcFault)
	mustCode(t, setPollingTimer(agent.PollingTimerMax+1), rcOutOfRange)
	mustCode(t, setPollingTimer(30), rcOK)
	if got := controlState().PollingTimer; got != 30 {
		t.Errorf("polling timer from the agent = %d, want 30", got)
	}
	if !unblockInstall(ref) {
		t.Error("unblock refused")
	}
	if got := controlState().Blocks; got != 0 {
		t.Errorf("blocks = %d after unblocking, want 0", got)
	}
	mustCode(t, checkRoute(), rcOK)

	mustCode(t, stopSession(), rcOK)
	takeStatus(t, statusSessionStopped)
	if sessionStarted(0xFFFF) || sessionType() != sessionTypeDM {
		t.Errorf("after stop: IsSessionStarted %v, session type %d; want false, DM (the last)", sessionStarted(0xFFFF), sessionType())
	}
	if got := controlState().PollingTimer; got != 30 {
		t.Errorf("polling timer after the session = %d, want 30 (the last known)", got)
	}
	mustCode(t, checkRoute(), rcFault)
}

// retireRunner ends the runner, as a process exit would, and waits until
// its state is saved.
func retireRunner(t *testing.T) {
	t.Helper()
	core.mu.Lock()
	r := core.run
	core.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the runner did not end")
	}
}

// setLastPoll rewrites the engine state under dir as if the 1-minute
// polling timer had last polled at at: an engine made from the state
// sets it at that time, and its stored state replaces the file.
func setLastPoll(t *testing.T, dir string, at time.Time) {
	t.Helper()
	path := filepath.Join(dir, agent.StateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := agent.NewEngine(agent.Config{ServerURI: "coap://127.0.0.1", Endpoint: "capi-poll",
		Control: agent.ControlConfig{Enabled: true}}, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.HandleCommand(at, agent.CmdSetPollingTimer{Minutes: 1}); err != nil {
		t.Fatal(err)
	}
	var state []byte
	for {
		ev, ok := e.PollEvent()
		if !ok {
			break
		}
		if ev.Kind == agent.EventStore {
			state = ev.Data
		}
	}
	if state == nil {
		t.Fatal("the engine stored nothing")
	}
	if err := os.WriteFile(path, state, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runnerLinked reports whether the runner's agent has a socket open.
func runnerLinked() bool {
	core.mu.Lock()
	r := core.run
	core.mu.Unlock()
	return r != nil && r.a.LocalAddr() != nil
}

// TestPollingWithoutSession: the engine runs from the first use of
// libavc, not only in a session: a polling timer set (or persisted)
// connects when it is due, and at start-up after a missed poll, while the
// host never calls le_avc_StartSession; between sessions no socket is
// open.
func TestPollingWithoutSession(t *testing.T) {
	resetControl()
	t.Cleanup(resetControl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pollEnable(true)
	defer pollEnable(false)
	dir := t.TempDir()
	mustCode(t, configSet(agent.EnvStateDir, dir), rcOK)
	t.Cleanup(func() { _ = configSet(agent.EnvStateDir, "") })
	mustCode(t, configSet(agent.EnvServerURI, "coap://"+srv.CoAPAddr().String()), rcOK)
	mustCode(t, configSet(agent.EnvEndpoint, "capi-poll"), rcOK)
	t.Cleanup(func() {
		_ = stopSession()
		retireRunner(t)
	})

	// le_avc_SetPollingTimer alone: persisted by the engine, no session,
	// no socket.
	mustCode(t, setPollingTimer(1), rcOK)
	if got := controlState().PollingTimer; got != 1 {
		t.Fatalf("polling timer = %d, want 1 (from the engine)", got)
	}
	if runnerLinked() || sessionStarted(0xFFFF) {
		t.Fatal("a link or session without any reason")
	}
	retireRunner(t)

	for _, tc := range []struct {
		name     string
		lastPoll time.Duration // before now
		min, max time.Duration // when SESSION_STARTED may come
	}{
		// Restarted 57 s into a 1-minute interval: the poll is due in 2 to 3 s (the epoch is in whole seconds).
		{"due", 57 * time.Second, 1500 * time.Millisecond, 6 * time.Second},
		// Restarted after the poll was missed: it connects at once.
		{"missed", 10 * time.Minute, 0, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setLastPoll(t, dir, time.Now().Add(-tc.lastPoll))
			for { // drop what earlier runs left in the queue
				if _, err := pollTake(0); err != nil {
					break
				}
			}
			start := time.Now()
			// Any first use starts the engine: here a getter.
			if got := controlState().PollingTimer; got != 1 {
				t.Fatalf("polling timer after the restart = %d, want 1", got)
			}
			takeStatus(t, statusSessionStarted)
			if took := time.Since(start); took < tc.min || took > tc.max {
				t.Errorf("SESSION_STARTED after %v, want between %v and %v", took, tc.min, tc.max)
			}
			if !sessionStarted(0xFFFF) || !runnerLinked() {
				t.Error("the poll's session is up without a socket?")
			}
			core.mu.Lock()
			hostSession := core.sess != nil
			core.mu.Unlock()
			if hostSession {
				t.Error("the poll's session counts as the host's")
			}
			// StopSession closes the session the engine opened, and the
			// link with it.
			mustCode(t, stopSession(), rcOK)
			takeStatus(t, statusSessionStopped)
			deadline := time.Now().Add(5 * time.Second)
			for runnerLinked() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if runnerLinked() {
				t.Error("the socket stays open after the session")
			}
			retireRunner(t)
		})
	}
}
