package agent_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	coapmsg "github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
)

// ctlSim is a simulation with update control on, a Flash firmware
// handler and a file server holding "a.bin" (a signed 200 KiB package);
// it is not started.
type ctlSim struct {
	*fwSim
	img []byte
}

func newCtlSim(t *testing.T, mod func(*agent.Config)) *ctlSim {
	t.Helper()
	flash := &agenttest.Flash{Running: "1.0.0"}
	cfg := agent.Config{Endpoint: "ctl-dev", Lifetime: 24 * time.Hour, Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"},
		Firmware: agent.FirmwareConfig{Handler: flash, TrustedKeys: []ed25519.PublicKey{testKey.Public().(ed25519.PublicKey)}},
		Control:  agent.ControlConfig{Enabled: true}}
	if mod != nil {
		mod(&cfg)
	}
	s := newSim(t, cfg, 1, agenttest.Faults{})
	c := &ctlSim{fwSim: &fwSim{Sim: s, flash: flash, files: s.FileServer()}, img: image(200<<10, 3)}
	c.files.Files["a.bin"] = pkg(t, c.img, "2.0.0", testKey)
	return c
}

// start opens a host session and waits for the registration.
func (s *ctlSim) start(t *testing.T) {
	t.Helper()
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		t.Fatal("not registered")
	}
}

func (s *ctlSim) do(t *testing.T, c agent.Command) {
	t.Helper()
	if err := s.Do(c); err != nil {
		t.Fatalf("%T: %v", c, err)
	}
}

// stamped is a status with the virtual time it was emitted at.
type stamped struct {
	agent.StatusInfo
	at time.Time
}

// statusLog records the EventStatus events with their times as the
// simulation runs (the Sim's event log carries no times).
type statusLog struct {
	s    *ctlSim
	seen int
	log  []stamped
	next int // wait looks from here: past the last status it returned
}

func (s *ctlSim) statuses() *statusLog { return &statusLog{s: s, seen: len(s.Events)} }

func (l *statusLog) collect() {
	for ; l.seen < len(l.s.Events); l.seen++ {
		if ev := l.s.Events[l.seen]; ev.Kind == agent.EventStatus {
			l.log = append(l.log, stamped{*ev.Status, l.s.Now})
		}
	}
}

// wait runs until status st has been emitted after the last status wait
// returned, or until limit passes; it returns it with its time.
func (l *statusLog) wait(t *testing.T, st agent.AVCStatus, limit time.Duration) stamped {
	t.Helper()
	var got stamped
	find := func() bool {
		l.collect()
		for i := l.next; i < len(l.log); i++ {
			if l.log[i].Status == st {
				got, l.next = l.log[i], i+1
				return true
			}
		}
		return false
	}
	ok := find() || l.s.RunUntil(l.s.Now.Add(limit), find)
	if !ok {
		t.Fatalf("no status %d within %v; got %v", st, limit, l.names())
	}
	return got
}

// has reports whether status st was collected.
func (l *statusLog) has(st agent.AVCStatus) bool {
	l.collect()
	for _, x := range l.log {
		if x.Status == st {
			return true
		}
	}
	return false
}

func (l *statusLog) names() []agent.AVCStatus {
	var out []agent.AVCStatus
	for _, x := range l.log {
		out = append(out, x.Status)
	}
	return out
}

func near(a, b time.Time) bool { d := a.Sub(b); return d > -time.Second && d < time.Second }

// Item 3: agreements disabled (the default): every operation proceeds
// without the host; only progress statuses are reported.
func TestControlAgreementsDisabledAutoAccept(t *testing.T) {
	s := newCtlSim(t, nil)
	l := s.statuses()
	s.start(t)
	l.wait(t, agent.StatusSessionStarted, time.Second)
	if c := s.write(t, "/5/0/1", s.files.URI("a.bin")); c != codes.Changed {
		t.Fatalf("write URI: %v", c)
	}
	done := l.wait(t, agent.StatusDownloadComplete, time.Hour)
	if done.TotalBytes <= 0 || done.Type != agent.UpdateFirmware || !s.flash.Equal(s.img) {
		t.Fatalf("DOWNLOAD_COMPLETE %+v, flash %d bytes", done.StatusInfo, len(s.flash.Data))
	}
	if !l.has(agent.StatusCertificationOK) || !l.has(agent.StatusDownloadInProgress) {
		t.Errorf("statuses %v: want DOWNLOAD_IN_PROGRESS and CERTIFICATION_OK", l.names())
	}
	if c := s.exec(t, "/5/0/2"); c != codes.Changed {
		t.Fatalf("Update: %v", c)
	}
	l.wait(t, agent.StatusInstallInProgress, time.Second)
	if !s.waitRestart(time.Minute) {
		t.Fatal("no install")
	}
	for _, x := range l.log {
		if strings.Contains(strings.ToLower(statusName(x.Status)), "pending") {
			t.Errorf("agreement asked (%d) with agreements disabled", x.Status)
		}
	}
}

func statusName(s agent.AVCStatus) string {
	switch s {
	case agent.StatusDownloadPending, agent.StatusInstallPending, agent.StatusUninstallPending,
		agent.StatusRebootPending, agent.StatusConnectionPending:
		return "pending"
	}
	return "other"
}

// Item 3: with the agreement enabled and a handler, *_PENDING is sent
// again every 30 minutes until accepted.
func TestControlRenotifyEvery30Minutes(t *testing.T) {
	s := newCtlSim(t, nil)
	s.do(t, agent.CmdSetAgreement{What: agent.AgreeDownload, Enable: true})
	s.do(t, agent.CmdStatusHandlers{Count: 1})
	l := s.statuses()
	s.start(t)
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	first := l.wait(t, agent.StatusDownloadPending, time.Second)
	if got := s.readInt(t, "/5/0/3"); got != int(agent.FirmwareDownloading) || len(s.files.Requests) != 0 {
		t.Fatalf("while pending: state %d, %d requests to the file server", got, len(s.files.Requests))
	}
	if st := s.Engine.Control(); st.Pending != agent.StatusDownloadPending {
		t.Errorf("Control().Pending = %d", st.Pending)
	}
	second := l.wait(t, agent.StatusDownloadPending, time.Hour)
	// The first status is stamped when the server's request returns, one
	// network latency (10 ms) late; the later ones exactly.
	if d := second.at.Sub(first.at); d > agent.PendingRenotify || d < agent.PendingRenotify-20*time.Millisecond {
		t.Fatalf("re-notified after %v, want %v", d, agent.PendingRenotify)
	}
	third := l.wait(t, agent.StatusDownloadPending, time.Hour)
	if d := third.at.Sub(second.at); d != agent.PendingRenotify {
		t.Fatalf("re-notified again after %v", d)
	}
	s.do(t, agent.CmdAccept{What: agent.AgreeDownload})
	l.wait(t, agent.StatusDownloadComplete, time.Hour)
}

// Item 3: Accept and Defer outside the matching pending state fail with
// ErrNotPending.
func TestControlAcceptOutsidePending(t *testing.T) {
	s := newCtlSim(t, nil)
	s.start(t)
	for w := agent.Agreement(0); w < agent.NumAgreements; w++ {
		if err := s.Do(agent.CmdAccept{What: w}); !errors.Is(err, agent.ErrNotPending) {
			t.Errorf("Accept(%d) = %v, want ErrNotPending", w, err)
		}
		if err := s.Do(agent.CmdDefer{What: w, Minutes: 5}); !errors.Is(err, agent.ErrNotPending) {
			t.Errorf("Defer(%d) = %v, want ErrNotPending", w, err)
		}
	}
	// A reboot pending does not make a download acceptable.
	s.do(t, agent.CmdSetAgreement{What: agent.AgreeReboot, Enable: true})
	s.do(t, agent.CmdStatusHandlers{Count: 1})
	s.exec(t, "/3/0/4")
	if err := s.Do(agent.CmdAccept{What: agent.AgreeDownload}); !errors.Is(err, agent.ErrNotPending) {
		t.Errorf("Accept(download) with a reboot pending = %v", err)
	}
	if err := s.Do(agent.CmdAccept{What: agent.AgreeReboot}); err != nil {
		t.Errorf("Accept(reboot) = %v", err)
	}
}

// Item 3: Defer re-arms only the deferred operation's timer.
func TestControlDeferRearmsOnlyThatTimer(t *testing.T) {
	s := newCtlSim(t, nil)
	s.do(t, agent.CmdSetAgreement{What: agent.AgreeDownload, Enable: true})
	s.do(t, agent.CmdSetAgreement{What: agent.AgreeReboot, Enable: true})
	s.do(t, agent.CmdStatusHandlers{Count: 1})
	l := s.statuses()
	s.start(t)
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	dl := l.wait(t, agent.StatusDownloadPending, time.Second)
	s.exec(t, "/3/0/4")
	rb := l.wait(t, agent.StatusRebootPending, time.Second)
	s.do(t, agent.CmdDefer{What: agent.AgreeDownload, Minutes: 10})
	deferredAt := s.Now
	dl2 := l.wait(t, agent.StatusDownloadPending, time.Hour)
	if d := dl2.at.Sub(deferredAt); d != 10*time.Minute {
		t.Errorf("deferred download offered again after %v, want 10m", d)
	}
	rb2 := l.wait(t, agent.StatusRebootPending, time.Hour)
	if d := rb2.at.Sub(rb.at); d > agent.PendingRenotify || d < agent.PendingRenotify-20*time.Millisecond {
		t.Errorf("reboot re-notified after %v, want %v (untouched by the defer)", d, agent.PendingRenotify)
	}
	_ = dl
	// Accept works before the timer fires; the reboot follows 2 s later.
	s.do(t, agent.CmdAccept{What: agent.AgreeReboot})
	at := s.Now
	ev, ok := s.WaitEvent(agent.EventReboot, time.Minute)
	if !ok || ev.Path != "/3/0/4" || s.Now.Sub(at) != agent.ActionDelay {
		t.Errorf("reboot %v after %v, want after %v", ok, s.Now.Sub(at), agent.ActionDelay)
	}
}

// Item 3: without a status handler a pending agreement is offered again
// after 3 minutes, and at once when a handler registers, which also gets
// the stored result.
func TestControlNoHandler(t *testing.T) {
	s := newCtlSim(t, nil)
	s.do(t, agent.CmdSetAgreement{What: agent.AgreeInstall, Enable: true})
	l := s.statuses()
	s.start(t)
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	l.wait(t, agent.StatusDownloadComplete, time.Hour)
	s.exec(t, "/5/0/2")
	execAt := s.Now
	s.RunFor(time.Minute)
	if l.has(agent.StatusInstallPending) {
		t.Fatal("INSTALL_PENDING sent with no handler")
	}
	if st := s.Engine.Control(); st.Pending != agent.StatusInstallPending || st.UpdateType != agent.UpdateFirmware {
		t.Fatalf("Control() = %+v", st)
	}
	// The agreement is disabled meanwhile: the re-offer at 3 minutes
	// accepts it.
	s.do(t, agent.CmdSetAgreement{What: agent.AgreeInstall, Enable: false})
	got := l.wait(t, agent.StatusInstallInProgress, 5*time.Minute)
	if d := got.at.Sub(execAt); !near(got.at, execAt.Add(agent.NoHandlerRetry)) {
		t.Fatalf("re-offered after %v, want %v", d, agent.NoHandlerRetry)
	}

	// Second part: a handler registering gets the pending offer at once.
	s2 := newCtlSim(t, nil)
	s2.do(t, agent.CmdSetAgreement{What: agent.AgreeReboot, Enable: true})
	l2 := s2.statuses()
	s2.start(t)
	s2.exec(t, "/3/0/4")
	s2.RunFor(30 * time.Second)
	s2.do(t, agent.CmdStatusHandlers{Count: 1})
	l2.collect()
	if n := len(l2.log); n == 0 || l2.log[n-1].Status != agent.StatusRebootPending || !l2.log[n-1].at.Equal(s2.Now) {
		t.Fatalf("no immediate REBOOT_PENDING on handler registration: %v", l2.names())
	}

	// Third part: a stored result is replayed to a new handler.
	s.RunFor(time.Minute) // the install ran in the first sim
	s.RunUntil(s.Now.Add(time.Minute), func() bool { return len(s.EventsOf(agent.EventRestart)) > 0 })
	if err := s.Reboot(nil); err != nil {
		t.Fatal(err)
	}
	l3 := s.statuses()
	s.RunFor(time.Second)
	if !l3.has(agent.StatusInstallComplete) {
		t.Fatalf("no INSTALL_COMPLETE after the install: %v", l3.names())
	}
	n := len(l3.log)
	s.do(t, agent.CmdStatusHandlers{Count: 0})
	s.do(t, agent.CmdStatusHandlers{Count: 1})
	l3.collect()
	replayed := false
	for _, x := range l3.log[n:] {
		replayed = replayed || x.Status == agent.StatusInstallComplete
	}
	if !replayed {
		t.Errorf("INSTALL_COMPLETE not replayed to a new handler: %v", l3.names()[n:])
	}
}

// Item 4: an accepted install while blocked is retried every 3 minutes
// until unblocked; it starts 2 s after acceptance and closes the session
// before PerformUpgrade.
func TestControlBlockedInstallRetries(t *testing.T) {
	s := newCtlSim(t, nil)
	l := s.statuses()
	s.start(t)
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	l.wait(t, agent.StatusDownloadComplete, time.Hour)
	s.do(t, agent.CmdBlockInstall{Ref: 1})
	s.do(t, agent.CmdBlockInstall{Ref: 2})
	if err := s.Do(agent.CmdBlockInstall{Ref: 1}); !errors.Is(err, agent.ErrDuplicate) {
		t.Errorf("BlockInstall reused ref = %v", err)
	}
	if err := s.Do(agent.CmdUnblockInstall{Ref: 9}); !errors.Is(err, agent.ErrBadValue) {
		t.Errorf("UnblockInstall unknown ref = %v", err)
	}
	s.exec(t, "/5/0/2")
	execAt := s.Now
	s.RunFor(5 * time.Minute)
	s.do(t, agent.CmdUnblockInstall{Ref: 1})
	s.RunFor(2 * time.Minute) // 7 min: still blocked by ref 2
	if l.has(agent.StatusInstallInProgress) || s.flash.Pending {
		t.Fatal("installed while blocked")
	}
	s.do(t, agent.CmdUnblockInstall{Ref: 2})
	got := l.wait(t, agent.StatusInstallInProgress, 5*time.Minute)
	if !near(got.at, execAt.Add(3*agent.NoHandlerRetry)) {
		t.Fatalf("install accepted %v after the Execute, want at the 9-minute retry", got.at.Sub(execAt))
	}
	if !s.waitRestart(time.Minute) {
		t.Fatal("no PerformUpgrade")
	}
	if len(s.Server.Deregisters) != 1 {
		t.Errorf("%d de-registrations before the install, want 1", len(s.Server.Deregisters))
	}
	if d := s.Now.Sub(got.at); d < agent.ActionDelay {
		t.Errorf("install %v after acceptance, want at least %v", d, agent.ActionDelay)
	}
	if !l.has(agent.StatusSessionStopped) {
		t.Error("no SESSION_STOPPED before the firmware install")
	}
}

// Item 6: a 60-minute polling timer with a reboot at minute 20 connects
// at minute 60; the activity timeout closes that (polling) session.
func TestControlPollingSurvivesReboot(t *testing.T) {
	s := newCtlSim(t, nil)
	t0 := s.Now
	s.do(t, agent.CmdSetPollingTimer{Minutes: 60})
	s.RunFor(20 * time.Minute)
	if err := s.Reboot(nil); err != nil {
		t.Fatal(err)
	}
	if st := s.Engine.Control(); st.PollingTimer != 60 || !st.LastPoll.Equal(t0) {
		t.Fatalf("after the reboot: %+v", st)
	}
	l := s.statuses()
	if _, ok := s.WaitEvent(agent.EventRegistered, 2*time.Hour); !ok {
		t.Fatal("polling timer never connected")
	}
	if reg := s.Server.Registers; len(reg) != 1 || !near(s.Now, t0.Add(60*time.Minute)) {
		t.Fatalf("connected at minute %v, want 60", s.Now.Sub(t0).Minutes())
	}
	started := l.wait(t, agent.StatusSessionStarted, time.Second)
	nu := l.wait(t, agent.StatusNoUpdate, time.Minute)
	if d := nu.at.Sub(started.at); d < agent.DefaultActivityTimeout || d > agent.DefaultActivityTimeout+time.Second {
		t.Errorf("NO_UPDATE %v after the session started, want %v", d, agent.DefaultActivityTimeout)
	}
	if _, ok := s.WaitEvent(agent.EventDeregistered, time.Minute); !ok || s.Engine.Started() {
		t.Error("the polling session was not closed")
	}
	// The next poll follows an hour after the last.
	if _, ok := s.WaitEvent(agent.EventRegistered, 2*time.Hour); !ok || !near(s.Now, t0.Add(120*time.Minute)) {
		t.Errorf("second poll at minute %v, want 120", s.Now.Sub(t0).Minutes())
	}
	// A missed poll (the device was off past it) connects at start-up.
	s.RunFor(30 * time.Second)
	s.RunFor(70 * time.Minute) // poll 180 is due
	s.Now = s.Now.Add(2 * time.Hour)
	if err := s.Reboot(nil); err != nil {
		t.Fatal(err)
	}
	n := len(s.Server.Registers)
	s.RunFor(time.Second)
	if len(s.Server.Registers) != n+1 {
		t.Error("missed poll: no connection at start-up")
	}
}

// Item 5: the activity timeout closes polling sessions, not the host's.
func TestControlActivityTimeoutUserSession(t *testing.T) {
	s := newCtlSim(t, func(c *agent.Config) { c.Control.ActivityTimeout = 5 * time.Second })
	l := s.statuses()
	s.start(t)
	if err := s.Do(agent.CmdStart{}); !errors.Is(err, agent.ErrDuplicate) {
		t.Errorf("second CmdStart = %v, want ErrDuplicate", err)
	}
	l.wait(t, agent.StatusNoUpdate, 10*time.Second)
	s.RunFor(time.Minute)
	if !s.Engine.Registered() || len(s.Server.Deregisters) != 0 || !s.Engine.Control().UserSession {
		t.Fatal("the activity timeout closed the host's session")
	}
}

// Item 6: the retry timers are walked in order on a refusing server,
// zeros skipped, and retrying stops when they are exhausted; CmdStart is
// ErrBusy meanwhile. Range checks of the settings.
func TestControlRetryTimers(t *testing.T) {
	s := newCtlSim(t, nil)
	if err := s.Do(agent.CmdSetRetryTimers{Minutes: []uint16{1, 2}}); !errors.Is(err, agent.ErrBadValue) {
		t.Errorf("7 retry timers = %v", err)
	}
	if err := s.Do(agent.CmdSetRetryTimers{Minutes: []uint16{1, 2, 3, 4, 5, 6, 7, agent.RetryTimerMax + 1}}); !errors.Is(err, agent.ErrOutOfRange) {
		t.Errorf("retry timer beyond max = %v", err)
	}
	if err := s.Do(agent.CmdSetPollingTimer{Minutes: agent.PollingTimerMax + 1}); !errors.Is(err, agent.ErrOutOfRange) {
		t.Errorf("polling timer beyond max = %v", err)
	}
	if err := s.Do(agent.CmdSetAPN{Name: strings.Repeat("a", agent.APNNameMaxLen+1)}); !errors.Is(err, agent.ErrOverflow) {
		t.Errorf("long APN = %v", err)
	}
	s.do(t, agent.CmdSetAPN{Name: "internet", User: "u", Password: "p"})
	if st := s.Engine.Control(); st.RetryTimers != agent.DefaultRetryTimers || st.APNName != "internet" || st.HTTPStatus != agent.HTTPStatusUnknown {
		t.Fatalf("Control() = %+v", st)
	}
	s.Server.RegisterCode = codes.Forbidden
	l := s.statuses()
	s.do(t, agent.CmdStart{})
	l.wait(t, agent.StatusSessionFailed, time.Second)
	if err := s.Do(agent.CmdStart{}); !errors.Is(err, agent.ErrBusy) {
		t.Errorf("CmdStart while retrying = %v, want ErrBusy", err)
	}
	s.RunFor(7 * 24 * time.Hour)
	var at []time.Time
	for _, w := range s.WireTo(false, func(m *coapmsg.Message) bool { return agenttest.Path(m) == "/rd" }) {
		at = append(at, w.At)
	}
	want := []int{15, 60, 240, 480, 1440, 2880}
	if len(at) != len(want)+1 {
		t.Fatalf("%d Register attempts, want %d", len(at), len(want)+1)
	}
	for i, m := range want {
		if d := at[i+1].Sub(at[i]); d < time.Duration(m)*time.Minute || d > time.Duration(m)*time.Minute+time.Second {
			t.Errorf("retry %d after %v, want %dm", i+1, d, m)
		}
	}
	if s.Engine.Started() {
		t.Error("still started after the retry timers ran out")
	}
}

// Item 5: StopSession during a download suspends it (DOWNLOAD_PENDING with
// the bytes remaining); with the agreement disabled it resumes with the
// next session.
func TestControlStopSuspendsDownload(t *testing.T) {
	s := newCtlSim(t, nil)
	l := s.statuses()
	s.start(t)
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	s.RunFor(time.Second)
	s.do(t, agent.CmdStop{})
	p := l.wait(t, agent.StatusDownloadPending, time.Second)
	total := int32(len(s.files.Files["a.bin"]))
	if p.TotalBytes <= 0 || p.TotalBytes >= total {
		t.Fatalf("DOWNLOAD_PENDING with %d bytes remaining of %d", p.TotalBytes, total)
	}
	n := len(s.files.Requests)
	s.RunFor(10 * time.Minute)
	if len(s.files.Requests) > n+1 {
		t.Fatalf("download went on while suspended: %d requests", len(s.files.Requests)-n)
	}
	s.start(t)
	l.wait(t, agent.StatusDownloadComplete, time.Hour)
	if !s.flash.Equal(s.img) {
		t.Fatal("resumed image differs")
	}
}

// Item 5: AcceptDownload without a session starts one.
func TestControlAcceptDownloadStartsSession(t *testing.T) {
	s := newCtlSim(t, nil)
	s.do(t, agent.CmdSetAgreement{What: agent.AgreeDownload, Enable: true})
	s.do(t, agent.CmdStatusHandlers{Count: 1})
	l := s.statuses()
	s.start(t)
	s.write(t, "/5/0/1", s.files.URI("a.bin"))
	l.wait(t, agent.StatusDownloadPending, time.Second)
	s.do(t, agent.CmdStop{})
	s.RunFor(time.Minute)
	s.do(t, agent.CmdAccept{What: agent.AgreeDownload})
	if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok || !s.Engine.Control().UserSession {
		t.Fatal("AcceptDownload did not open a (user) session")
	}
	l.wait(t, agent.StatusDownloadComplete, time.Hour)
}

// Item 7: the resume table after a restart.
func TestControlResumeTable(t *testing.T) {
	t.Run("download in progress", func(t *testing.T) {
		s := newCtlSim(t, nil)
		s.start(t)
		s.do(t, agent.CmdSetAgreement{What: agent.AgreeDownload, Enable: true})
		s.do(t, agent.CmdStatusHandlers{Count: 1})
		l := s.statuses()
		s.write(t, "/5/0/1", s.files.URI("a.bin"))
		l.wait(t, agent.StatusDownloadPending, time.Second)
		s.do(t, agent.CmdAccept{What: agent.AgreeDownload})
		s.RunFor(time.Second)
		s.flash.PowerCut()
		if err := s.Reboot(nil); err != nil {
			t.Fatal(err)
		}
		l = s.statuses()
		s.do(t, agent.CmdStatusHandlers{Count: 1})
		s.RunFor(time.Second)
		got := l.wait(t, agent.StatusDownloadPending, time.Second)
		if total := int32(len(s.files.Files["a.bin"])); got.TotalBytes <= 0 || got.TotalBytes >= total {
			t.Fatalf("DOWNLOAD_PENDING with %d bytes of %d", got.TotalBytes, total)
		}
		s.do(t, agent.CmdAccept{What: agent.AgreeDownload})
		l.wait(t, agent.StatusDownloadComplete, time.Hour)
		if !s.flash.Equal(s.img) {
			t.Fatal("resumed image differs")
		}
	})
	t.Run("download complete", func(t *testing.T) {
		s := newCtlSim(t, nil)
		l := s.statuses()
		s.start(t)
		s.write(t, "/5/0/1", s.files.URI("a.bin"))
		l.wait(t, agent.StatusDownloadComplete, time.Hour)
		s.do(t, agent.CmdSetAgreement{What: agent.AgreeDownload, Enable: true})
		if err := s.Reboot(nil); err != nil {
			t.Fatal(err)
		}
		l = s.statuses()
		s.do(t, agent.CmdStatusHandlers{Count: 1})
		if got := l.wait(t, agent.StatusDownloadPending, time.Second); got.TotalBytes != 0 {
			t.Errorf("DOWNLOAD_PENDING with %d bytes, want 0", got.TotalBytes)
		}
	})
	for _, row := range []struct {
		name  string
		agree agent.Agreement
		want  agent.AVCStatus
		setup func(t *testing.T, s *ctlSim, l *statusLog)
	}{
		{"install pending", agent.AgreeInstall, agent.StatusInstallPending, func(t *testing.T, s *ctlSim, l *statusLog) {
			s.write(t, "/5/0/1", s.files.URI("a.bin"))
			l.wait(t, agent.StatusDownloadComplete, time.Hour)
			s.exec(t, "/5/0/2")
		}},
		{"connection pending", agent.AgreeConnection, agent.StatusConnectionPending, func(t *testing.T, s *ctlSim, l *statusLog) {
			s.do(t, agent.CmdStop{})
			s.do(t, agent.CmdSetPollingTimer{Minutes: 1})
			s.RunFor(time.Minute)
		}},
	} {
		t.Run(row.name, func(t *testing.T) {
			s := newCtlSim(t, nil)
			l := s.statuses()
			s.start(t)
			s.do(t, agent.CmdSetAgreement{What: row.agree, Enable: true})
			s.do(t, agent.CmdStatusHandlers{Count: 1})
			row.setup(t, s, l)
			l.wait(t, row.want, time.Second)
			if err := s.Reboot(nil); err != nil {
				t.Fatal(err)
			}
			l = s.statuses()
			s.do(t, agent.CmdStatusHandlers{Count: 1})
			l.wait(t, row.want, time.Second)
		})
	}
	t.Run("after a firmware install", func(t *testing.T) {
		s := newCtlSim(t, nil)
		l := s.statuses()
		s.start(t)
		s.write(t, "/5/0/1", s.files.URI("a.bin"))
		l.wait(t, agent.StatusDownloadComplete, time.Hour)
		s.exec(t, "/5/0/2")
		if !s.waitRestart(time.Minute) {
			t.Fatal("no install")
		}
		s.do(t, agent.CmdSetAgreement{What: agent.AgreeConnection, Enable: true})
		if err := s.Reboot(nil); err != nil {
			t.Fatal(err)
		}
		l = s.statuses()
		s.do(t, agent.CmdStatusHandlers{Count: 1}) // the app registers at start-up
		s.RunFor(time.Second)
		l.collect()
		names := l.names()
		if len(names) < 2 || names[0] != agent.StatusConnectionPending || names[1] != agent.StatusInstallComplete {
			t.Fatalf("after the install: %v, want CONNECTION_PENDING then INSTALL_COMPLETE", names)
		}
	})
}

// Item 9: the control record persists, and a corrupt one loads as the
// defaults without failing.
func TestControlPersistentStore(t *testing.T) {
	s := newCtlSim(t, nil)
	s.do(t, agent.CmdSetAgreement{What: agent.AgreeInstall, Enable: true})
	s.do(t, agent.CmdSetRetryTimers{Minutes: []uint16{1, 2, 3, 4, 5, 6, 7, 8}})
	s.do(t, agent.CmdSetAPN{Name: "apn"})
	if err := s.Reboot(nil); err != nil {
		t.Fatal(err)
	}
	st := s.Engine.Control()
	if !st.Agreements[agent.AgreeInstall] || st.RetryTimers[7] != 8 || st.APNName != "apn" {
		t.Fatalf("after a restart: %+v", st)
	}
	// A state written without update control, and one whose control
	// record is corrupt (right checksum, wrong content), load with the
	// defaults.
	plain := newSim(t, agent.Config{Endpoint: "plain"}, 1, agenttest.Faults{})
	plain.Do(agent.CmdStart{})
	plain.RunFor(time.Second)
	body := []byte(`{"lifetime":86400,"binding":"U","ctl":{"v":1,"retry":"garbage"}}`)
	corrupt := []byte(fmt.Sprintf(`{"v":1,"crc":%d,"state":%s}`, crc32.ChecksumIEEE(body), body))
	for _, state := range [][]byte{plain.State(), corrupt} {
		e, err := agent.NewEngine(agent.Config{ServerURI: agenttest.ServerURI, Endpoint: "x", Control: agent.ControlConfig{Enabled: true}}, state)
		if err != nil {
			t.Fatal(err)
		}
		if st := e.Control(); st.RetryTimers != agent.DefaultRetryTimers || st.Agreements != [agent.NumAgreements]bool{} {
			t.Errorf("defaults: %+v", st)
		}
	}
}

// countEvents counts the events of kind emitted so far.
func countEvents(s *ctlSim, kind agent.EventKind) int { return len(s.EventsOf(kind)) }

// le_avc_AddSessionRequestEventHandler: with a session request handler the
// engine asks the host (EventSessionAcquire) instead of opening a session
// for its polling timer, answers the host's CmdStart, and asks it to close
// an inactive session (EventSessionRelease) instead of closing it; without
// the handler any more, it opens the session itself.
func TestControlSessionRequests(t *testing.T) {
	t.Run("polling timer", func(t *testing.T) {
		s := newCtlSim(t, func(c *agent.Config) { c.Control.ActivityTimeout = 5 * time.Second })
		s.do(t, agent.CmdSessionRequests{Handler: true})
		s.do(t, agent.CmdSetPollingTimer{Minutes: 1})
		t0 := s.Now
		if _, ok := s.WaitEvent(agent.EventSessionAcquire, 2*time.Minute); !ok || !near(s.Now, t0.Add(time.Minute)) {
			t.Fatalf("no acquire request at minute 1 (now %v)", s.Now.Sub(t0))
		}
		s.RunFor(time.Minute / 2)
		if len(s.Server.Registers) != 0 || s.Engine.Started() {
			t.Fatal("the engine opened the session itself")
		}
		// The host answers.
		s.start(t)
		s.RunFor(time.Minute)
		if countEvents(s, agent.EventSessionRelease) != 0 || !s.Engine.Registered() {
			t.Error("the host's session was released or closed")
		}
		s.do(t, agent.CmdStop{})
	})
	t.Run("release", func(t *testing.T) {
		s := newCtlSim(t, func(c *agent.Config) { c.Control.ActivityTimeout = 5 * time.Second })
		s.do(t, agent.CmdSetPollingTimer{Minutes: 1})
		// No handler yet: the poll opens the session itself.
		if _, ok := s.WaitEvent(agent.EventRegistered, 2*time.Minute); !ok {
			t.Fatal("the poll did not connect")
		}
		s.do(t, agent.CmdSessionRequests{Handler: true})
		if _, ok := s.WaitEvent(agent.EventSessionRelease, 10*time.Second); !ok {
			t.Fatal("no release request after the activity timeout")
		}
		s.RunFor(time.Minute / 2)
		if !s.Engine.Registered() || len(s.Server.Deregisters) != 0 || countEvents(s, agent.EventSessionRelease) != 1 {
			t.Fatalf("the engine closed the session itself, or asked %d times", countEvents(s, agent.EventSessionRelease))
		}
		s.do(t, agent.CmdStop{})
		if _, ok := s.WaitEvent(agent.EventDeregistered, 10*time.Second); !ok {
			t.Fatal("CmdStop did not close it")
		}
	})
	t.Run("retry", func(t *testing.T) {
		s := newCtlSim(t, nil)
		s.Server.RegisterCode = codes.Forbidden
		s.do(t, agent.CmdSessionRequests{Handler: true})
		l := s.statuses()
		s.do(t, agent.CmdStart{})
		failed := l.wait(t, agent.StatusSessionFailed, time.Second)
		if err := s.Do(agent.CmdStart{}); !errors.Is(err, agent.ErrBusy) || !s.Engine.Control().Retrying {
			t.Errorf("CmdStart while the retry timer runs = %v, want ErrBusy", err)
		}
		// The first retry timer (15 min): asked, not retried.
		if _, ok := s.WaitEvent(agent.EventSessionAcquire, time.Hour); !ok {
			t.Fatal("no acquire request for the retry")
		}
		if d := s.Now.Sub(failed.at); d < 15*time.Minute || d > 15*time.Minute+time.Second {
			t.Errorf("asked after %v, want 15m", d)
		}
		if len(s.Server.Registers) != 1 {
			t.Fatalf("%d Registers: the engine retried itself", len(s.Server.Registers))
		}
		s.do(t, agent.CmdStart{})
		second := l.wait(t, agent.StatusSessionFailed, time.Second)
		// The answer to a retry's request goes on with the table (60 min
		// next), it does not start it over.
		if _, ok := s.WaitEvent(agent.EventSessionAcquire, 2*time.Hour); !ok {
			t.Fatal("no second acquire request")
		}
		if d := s.Now.Sub(second.at); d < 60*time.Minute || d > 60*time.Minute+time.Second {
			t.Errorf("second request after %v, want 60m", d)
		}
		// The handler goes away while the engine waits for an answer: it
		// connects itself.
		s.do(t, agent.CmdSessionRequests{Handler: false})
		s.RunFor(time.Second)
		if len(s.Server.Registers) != 3 {
			t.Errorf("%d Registers after the handler went away, want 3", len(s.Server.Registers))
		}
	})
}

// The link statuses (le_avc AUTH_STARTED, AUTH_FAILED) come from the
// driver's CmdLink, and a failed link fails the Register in flight at once
// (then the retry table), or ends a De-register in flight.
func TestControlLinkStatuses(t *testing.T) {
	s := newCtlSim(t, nil)
	l := s.statuses()
	s.do(t, agent.CmdLink{Phase: agent.LinkAuthStarted})
	l.wait(t, agent.StatusAuthStarted, 0)
	s.do(t, agent.CmdStart{})
	s.do(t, agent.CmdLink{Phase: agent.LinkAuthFailed, Err: "bad key"})
	failedAuth := l.wait(t, agent.StatusAuthFailed, 0)
	failed := l.wait(t, agent.StatusSessionFailed, 0)
	if !failed.at.Equal(failedAuth.at) || countEvents(s, agent.EventRegistrationFailed) != 1 {
		t.Errorf("SESSION_FAILED at %v after AUTH_FAILED at %v, %d registration failures; want at once, 1",
			failed.at, failedAuth.at, countEvents(s, agent.EventRegistrationFailed))
	}
	if st := s.Engine.Control(); !st.Retrying || !st.Session {
		t.Errorf("after the failed link: %+v, want the retry timer running", st)
	}
	// The first retry (15 min) registers.
	if _, ok := s.WaitEvent(agent.EventRegistered, 16*time.Minute); !ok {
		t.Fatal("no retry after the failed link")
	}
	// A link lost while de-registering: the session is down at once.
	s.do(t, agent.CmdStop{})
	s.do(t, agent.CmdLink{Phase: agent.LinkFailed, Err: "socket closed"})
	l.wait(t, agent.StatusSessionStopped, 0)
	if s.Engine.NeedsLink() || s.Engine.Started() {
		t.Error("the engine still needs the link after it failed while de-registering")
	}
	if err := s.Do(agent.CmdLink{Phase: 99}); !errors.Is(err, agent.ErrBadValue) {
		t.Errorf("unknown phase = %v, want ErrBadValue", err)
	}
}

// DOWNLOAD_TIMEOUT: a pull that runs out of its connect time (le_avc's
// 300 s) reports DOWNLOAD_TIMEOUT, then DOWNLOAD_FAILED (network error).
// DOWNLOAD_ABORTED: the server resets the download (/5/0/1 written empty)
// while it waits for the agreement or transfers; the agreement is
// withdrawn.
func TestControlDownloadTimeoutAndAborted(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		s := newCtlSim(t, nil)
		l := s.statuses()
		s.start(t)
		s.files.Mute = true
		t0 := s.Now
		s.write(t, "/5/0/1", s.files.URI("a.bin"))
		to := l.wait(t, agent.StatusDownloadTimeout, time.Hour)
		failed := l.wait(t, agent.StatusDownloadFailed, 0)
		if d := to.at.Sub(t0); d < 300*time.Second {
			t.Errorf("DOWNLOAD_TIMEOUT after %v, want the 300 s connect time at least", d)
		}
		if !failed.at.Equal(to.at) || failed.Error != agent.AVCErrNetwork || to.Type != agent.UpdateFirmware {
			t.Errorf("DOWNLOAD_FAILED %+v at %v after DOWNLOAD_TIMEOUT %+v at %v", failed.StatusInfo, failed.at, to.StatusInfo, to.at)
		}
	})
	t.Run("aborted while pending", func(t *testing.T) {
		s := newCtlSim(t, nil)
		s.do(t, agent.CmdSetAgreement{What: agent.AgreeDownload, Enable: true})
		s.do(t, agent.CmdStatusHandlers{Count: 1})
		l := s.statuses()
		s.start(t)
		s.write(t, "/5/0/1", s.files.URI("a.bin"))
		l.wait(t, agent.StatusDownloadPending, time.Second)
		if c := s.write(t, "/5/0/1", ""); c != codes.Changed {
			t.Fatalf("reset: %v", c)
		}
		l.wait(t, agent.StatusDownloadAborted, 0)
		if err := s.Do(agent.CmdAccept{What: agent.AgreeDownload}); !errors.Is(err, agent.ErrNotPending) {
			t.Errorf("AcceptDownload after the abort = %v, want ErrNotPending", err)
		}
		s.RunFor(time.Hour)
		if len(s.files.Requests) != 0 || l.has(agent.StatusDownloadComplete) {
			t.Error("the aborted download ran")
		}
	})
	t.Run("aborted in progress", func(t *testing.T) {
		s := newCtlSim(t, nil)
		l := s.statuses()
		s.start(t)
		s.write(t, "/5/0/1", s.files.URI("a.bin"))
		l.wait(t, agent.StatusDownloadInProgress, time.Second)
		s.write(t, "/5/0/1", "")
		l.wait(t, agent.StatusDownloadAborted, 0)
		s.RunFor(time.Hour)
		if l.has(agent.StatusDownloadComplete) || l.has(agent.StatusDownloadFailed) {
			t.Errorf("statuses after the abort: %v", l.names())
		}
	})
}

// le_avc_SetCredential: credentials go to the persistent store and
// survive a reboot; Control reports which types are provisioned; bad
// values are refused.
func TestControlCredentials(t *testing.T) {
	s := newCtlSim(t, nil)
	for _, bad := range []agent.CmdSetCredential{
		{Type: agent.CredBSPSK},
		{Type: agent.CredBSPSK, Data: make([]byte, agent.MaxCredentialSize+1)},
		{Type: agent.NumCredentialTypes, Data: []byte{1}},
		{Type: agent.CredBSServerAddress, Data: []byte("bs.example.com")},
		{Type: agent.CredBSServerAddress, Data: []byte("http://bs.example.com")},
	} {
		if err := s.Do(bad); !errors.Is(err, agent.ErrBadValue) {
			t.Errorf("%v: %v, want ErrBadValue", bad.Type, err)
		}
	}
	s.do(t, agent.CmdSetCredential{Type: agent.CredBSServerAddress, Data: []byte("coaps://bs.example.com")})
	s.do(t, agent.CmdSetCredential{Type: agent.CredBSPSKID, Data: []byte("id")})
	s.do(t, agent.CmdSetCredential{Type: agent.CredBSPSK, Data: []byte{1, 2, 3}})
	want := [agent.NumCredentialTypes]bool{false, false, true, true, true}
	if got := s.Engine.Control().Credentials; got != want {
		t.Fatalf("Credentials = %v, want %v", got, want)
	}
	if err := s.Reboot(nil); err != nil {
		t.Fatal(err)
	}
	if got := s.Engine.Control().Credentials; got != want {
		t.Errorf("after a reboot: Credentials = %v, want %v", got, want)
	}
	if strings.Contains(fmt.Sprint(s.Engine.Control()), "\x01\x02\x03") {
		t.Error("the snapshot shows a key")
	}
}

// ctlSwSim is a Software Management simulation with update control on:
// /9/0 holds an installed application, the session is up.
func ctlSwSim(t *testing.T) (*swSim, *ctlSim) {
	t.Helper()
	s := newSwSim(t, 5, agenttest.Faults{}, func(c *agent.Config) { c.Control.Enabled = true })
	s.files.Files["app"] = pkg(t, image(20<<10, 31), "1.0.0", testKey)
	s.create(t, 0)
	s.deliver(t, 0, "app")
	s.install(t, 0)
	return s, &ctlSim{fwSim: s.fwSim}
}

// Object 9 uninstall under the uninstall agreement: Execute /9/0/6 waits
// for it (UNINSTALL_PENDING, re-sent every 30 minutes, deferred by
// DeferUninstall), a block holds the accepted uninstall for 3-minute
// retries, and only acceptance while unblocked uninstalls.
func TestControlUninstallAgreement(t *testing.T) {
	s, c := ctlSwSim(t)
	c.do(t, agent.CmdSetAgreement{What: agent.AgreeUninstall, Enable: true})
	c.do(t, agent.CmdStatusHandlers{Count: 1})
	l := c.statuses()
	if code := s.execArgs(t, "/9/0/6", ""); code != codes.Changed {
		t.Fatalf("Uninstall: %v", code)
	}
	first := l.wait(t, agent.StatusUninstallPending, time.Second)
	st := s.Engine.Control()
	if first.Type != agent.UpdateApplication || st.Pending != agent.StatusUninstallPending || st.AppUpdateName == "" {
		t.Fatalf("UNINSTALL_PENDING %+v; Control %+v", first.StatusInfo, st)
	}
	s.wantState(t, 0, agent.SoftwareInstalled, agent.SoftwareResultInstalled)
	if err := s.Do(agent.CmdAccept{What: agent.AgreeInstall}); !errors.Is(err, agent.ErrNotPending) {
		t.Errorf("AcceptInstall while an uninstall is pending = %v", err)
	}
	// Re-sent after 30 minutes.
	again := l.wait(t, agent.StatusUninstallPending, time.Hour)
	if d := again.at.Sub(first.at); d > agent.PendingRenotify || d < agent.PendingRenotify-20*time.Millisecond {
		t.Errorf("re-sent after %v, want %v", d, agent.PendingRenotify)
	}
	// DeferUninstall(10): offered again 10 minutes later, not before.
	c.do(t, agent.CmdDefer{What: agent.AgreeUninstall, Minutes: 10})
	deferredAt := s.Now
	again = l.wait(t, agent.StatusUninstallPending, time.Hour)
	if d := again.at.Sub(deferredAt); d != 10*time.Minute {
		t.Errorf("offered again %v after the defer, want 10m", d)
	}
	// Blocked: accepted, but nothing happens; offered again after 3 min.
	c.do(t, agent.CmdBlockInstall{Ref: 1})
	calls := len(s.apps.Calls)
	c.do(t, agent.CmdAccept{What: agent.AgreeUninstall})
	acceptedAt := s.Now
	retry := l.wait(t, agent.StatusUninstallPending, time.Hour)
	if d := retry.at.Sub(acceptedAt); d != agent.NoHandlerRetry {
		t.Errorf("blocked uninstall offered again after %v, want %v", d, agent.NoHandlerRetry)
	}
	if l.has(agent.StatusUninstallInProgress) || len(s.apps.Calls) != calls {
		t.Fatalf("uninstalled while blocked: statuses %v, handler calls %q", l.names(), s.apps.Calls)
	}
	s.wantState(t, 0, agent.SoftwareInstalled, agent.SoftwareResultInstalled)
	// Unblocked and accepted: it runs.
	c.do(t, agent.CmdUnblockInstall{Ref: 1})
	c.do(t, agent.CmdAccept{What: agent.AgreeUninstall})
	l.wait(t, agent.StatusUninstallInProgress, time.Second)
	done := l.wait(t, agent.StatusUninstallComplete, time.Minute)
	if done.Type != agent.UpdateApplication {
		t.Errorf("UNINSTALL_COMPLETE %+v", done.StatusInfo)
	}
	s.wantState(t, 0, agent.SoftwareInitial, agent.SoftwareResultInitial)
	if got := s.apps.Calls[len(s.apps.Calls)-1]; !strings.HasPrefix(got, "uninstall 0") {
		t.Errorf("last handler call %q, want the uninstall", got)
	}
}

// The resume row UNINSTALL_PENDING ⇒ UNINSTALL_PENDING: an uninstall
// waiting for its agreement at a reboot is offered again after it, to
// the handler that registers, and accepting it then uninstalls.
func TestControlResumeUninstallPending(t *testing.T) {
	s, c := ctlSwSim(t)
	c.do(t, agent.CmdSetAgreement{What: agent.AgreeUninstall, Enable: true})
	c.do(t, agent.CmdStatusHandlers{Count: 1})
	l := c.statuses()
	s.execArgs(t, "/9/0/6", "")
	before := l.wait(t, agent.StatusUninstallPending, time.Second)
	if err := s.Reboot(nil); err != nil {
		t.Fatal(err)
	}
	l = c.statuses()
	s.RunFor(time.Second)
	if l.has(agent.StatusUninstallPending) {
		t.Error("offered before a status handler registered")
	}
	c.do(t, agent.CmdStatusHandlers{Count: 1})
	after := l.wait(t, agent.StatusUninstallPending, 0)
	if after.Type != before.Type || s.Engine.Control().Pending != agent.StatusUninstallPending {
		t.Fatalf("after the reboot: %+v, Control %+v", after.StatusInfo, s.Engine.Control())
	}
	c.do(t, agent.CmdAccept{What: agent.AgreeUninstall})
	l.wait(t, agent.StatusUninstallComplete, time.Minute)
	s.wantState(t, 0, agent.SoftwareInitial, agent.SoftwareResultInitial)
}
