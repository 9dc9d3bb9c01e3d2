//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

// le_avc_Status_t values libavc reports.
const (
	statusSessionStarted = 13 // LE_AVC_SESSION_STARTED
	statusSessionStopped = 15 // LE_AVC_SESSION_STOPPED
	statusSessionFailed  = 16 // LE_AVC_SESSION_FAILED
)

// le_avc_SessionRequest_t values.
const (
	sessionAcquire = 0 // LE_AVC_SESSION_ACQUIRE
	sessionRelease = 1 // LE_AVC_SESSION_RELEASE
)

// core is the configuration, the runner and the host's session.
var core struct {
	mu       sync.Mutex
	inited   bool
	cfg      agent.Config
	gen      uint64                // bumped by every configuration change
	envErrs  map[string]string     // setting name -> why its environment value was refused
	objects  []lwm2m.ObjectDef     // avc_object_define_xml, for the next runner
	fw       agent.FirmwareHandler // avc_fw_install, for the next runner; nil: the agent's default
	store    *cStorage             // avc_storage_set; nil: the file under AVC_STATE_DIR
	sess     *session              // started by the host and not stopped
	last     *session              // most recently started, possibly still stopping
	stopping []*session            // stopped, waiting for the engine's SESSION_STOPPED
	run      *runner               // the engine's agent, from the first use on
	failGen  uint64                // gen+1 of a configuration no runner could be made from
	failMsg  string                // why
}

// session is one le_avc_StartSession..StopSession span of the host.
type session struct {
	done chan struct{} // closed when the session has ended
	once sync.Once
}

func newSession() *session { return &session{done: make(chan struct{})} }

// end marks the session ended (once).
func (s *session) end() { s.once.Do(func() { close(s.done) }) }

// runner is the agent that runs the engine from the first use of libavc
// on, in on-demand mode (agent.ControlConfig.OnDemand): the engine's
// timers run whether or not a session is up, so the polling timer
// connects by itself (and at start-up after a missed poll), and the link
// to the server exists only while the engine needs it. The host's
// sessions are CmdStart and CmdStop to it. A runner is replaced, while no
// host session is started, when the configuration it was made from
// changed (avc_config_set, avc_object_define_xml, avc_fw_install,
// le_avc_SetNatTimeout).
type runner struct {
	a      *agent.Agent
	ctx    context.Context // cancelled to end the runner
	cancel context.CancelFunc
	done   chan struct{} // closed once the runner has ended
	prev   *runner       // the runner before; this one runs after it ended
	gen    uint64        // core.gen it was made from; another one makes it stale
}

// initLocked initialises the configuration once: from the environment,
// or from the defaults alone when fromEnv is false (avc_config_set came
// first). core.mu is held. It returns warnings to log after unlocking.
func initLocked(fromEnv bool) (warnings []string) {
	if core.inited {
		return nil
	}
	core.inited = true
	core.envErrs = make(map[string]string)
	core.cfg = defaultConfig()
	if fromEnv {
		// Like agent.ConfigFromEnv, but through C's getenv: Go's os
		// package sees only the environment as it was when the library
		// was loaded, not what the host setenv()s afterwards.
		for _, name := range agent.ConfigNames {
			v, ok := lookupEnv(name)
			if !ok || v == "" {
				continue
			}
			if err := core.cfg.Set(name, v); err != nil {
				core.envErrs[name] = err.Error()
				warnings = append(warnings, err.Error())
			}
		}
	}
	logLevel.Set(core.cfg.LogLevel)
	return warnings
}

// defaultConfig is the configuration without any setting: what
// agent.ConfigFromEnv returns for an empty environment.
func defaultConfig() agent.Config {
	var c agent.Config
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "device"
	}
	c.Endpoint = "avc-" + h
	return c
}

// lazyInit reads the environment if nothing initialised the configuration
// yet, and starts the agent; every le_avc export calls it first.
func lazyInit() {
	lazyInitConfig()
	// The engine runs from the first use on (its timers: the polling
	// timer connects without a session started), if the configuration
	// makes one.
	if _, err := ensureRunner(); err != nil {
		logger.Debug("no agent runs yet", "err", err)
	}
}

// lazyInitConfig reads the environment if nothing initialised the
// configuration yet.
func lazyInitConfig() {
	core.mu.Lock()
	warnings := initLocked(true)
	core.mu.Unlock()
	for _, w := range warnings {
		logger.Warn("refusing environment setting", "err", w)
	}
}

// lookupEnv reads the process environment as C sees it.
func lookupEnv(name string) (string, bool) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	v := C.getenv(cs)
	if v == nil {
		return "", false
	}
	return C.GoString(v), true
}

func knownName(name string) bool { return slices.Contains(agent.ConfigNames, name) }

// configSet implements avc_config_set.
func configSet(name, value string) error {
	if !knownName(name) {
		return errorf(rcNotFound, "avc_config_set: unknown setting %q (want one of %s)", name, strings.Join(agent.ConfigNames, ", "))
	}
	core.mu.Lock()
	defer core.mu.Unlock()
	initLocked(false)
	if value == "" {
		def := defaultConfig()
		value, _ = def.Get(name)
	}
	next := core.cfg
	if err := next.Set(name, value); err != nil {
		return errorf(rcFormat, "avc_config_set: %v", err)
	}
	core.cfg = next
	core.gen++
	delete(core.envErrs, name)
	if name == agent.EnvLogLevel {
		logLevel.Set(next.LogLevel)
	}
	return nil
}

// configGet implements avc_config_get.
func configGet(name string) (string, error) {
	if !knownName(name) {
		return "", errorf(rcNotFound, "avc_config_get: unknown setting %q (want one of %s)", name, strings.Join(agent.ConfigNames, ", "))
	}
	lazyInit()
	core.mu.Lock()
	defer core.mu.Unlock()
	v, err := core.cfg.Get(name)
	if err != nil {
		return "", errorf(rcNotFound, "avc_config_get: %v", err)
	}
	return v, nil
}

// problemsLocked lists the refused environment settings. core.mu is held.
func problemsLocked() []string {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(core.envErrs)) {
		problems = append(problems, core.envErrs[name])
	}
	return problems
}

// staleLocked reports whether r was made from another configuration than
// the current one. core.mu is held.
func staleLocked(r *runner) bool { return r.gen != core.gen }

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ensureRunner makes the runner if there is none (or it ended, or it is
// stale while no host session is started) and the configuration allows
// one. It reports the runner, or why there is none.
func ensureRunner() (*runner, error) {
	if inFirmwareHandler() {
		// The runner's loop is calling the handler: use it as it is.
		core.mu.Lock()
		r := core.run
		core.mu.Unlock()
		if r == nil {
			return nil, errorf(rcFault, "no agent runs")
		}
		return r, nil
	}
	nat := natTimeout() // before core.mu: ctl.mu is never taken under it
	core.mu.Lock()
	r := core.run
	alive := r != nil && !closed(r.done) && r.ctx.Err() == nil
	if alive && (core.sess != nil || !staleLocked(r)) {
		core.mu.Unlock()
		return r, nil
	}
	if core.failGen == core.gen+1 {
		core.mu.Unlock()
		return nil, errorf(rcFault, "%s", core.failMsg)
	}
	if problems := problemsLocked(); len(problems) > 0 {
		core.failGen = core.gen + 1
		core.failMsg = "bad configuration: " + strings.Join(problems, "; ")
		core.mu.Unlock()
		return nil, errorf(rcFault, "%s", core.failMsg)
	}
	cfg := core.cfg
	cfg.Objects = core.objects
	// The le_avc personality: user agreements, install blocks, polling
	// and retry timers, le_avc statuses (control.go), with the engine
	// running between sessions.
	cfg.Control.Enabled = true
	cfg.Control.OnDemand = true
	// le_avc_SetNatTimeout: quiet for longer than this, the next send
	// starts a new DTLS session (0 disables).
	cfg.NATTimeout = nat
	if core.fw != nil {
		cfg.Firmware.Handler = core.fw
	}
	if core.store != nil {
		cfg.StateStore = core.store
	}
	gen := core.gen
	core.mu.Unlock()

	// agent.New may log (and read the state file): no lock held.
	cfg.Logger = logger
	a, err := agent.New(cfg)
	core.mu.Lock()
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", "; ")
		if core.gen == gen {
			core.failGen, core.failMsg = gen+1, msg
		}
		stale := r != nil && core.run == r && core.sess == nil
		core.mu.Unlock()
		if stale {
			// The configuration no longer makes an agent: the old one
			// stops too.
			retire(r)
		}
		logger.Debug("no agent", "err", msg)
		return nil, errorf(rcFault, "%s", msg)
	}
	if cur := core.run; cur != r && cur != nil && !closed(cur.done) {
		// Another caller made one meanwhile: use it.
		core.mu.Unlock()
		return cur, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	nr := &runner{a: a, ctx: ctx, cancel: cancel, done: make(chan struct{}), prev: r, gen: gen}
	core.run = nr
	core.mu.Unlock()
	if r != nil {
		// Stale: it ends (de-registering if it must), and nr runs after
		// it; values and settings go to nr from now on.
		retire(r)
	}
	startDispatcher()
	go nr.run()
	return nr, nil
}

// retire ends r: it de-registers if it must, and values and settings no
// longer go to it.
func retire(r *runner) {
	r.cancel()
	detachValues(r.a)
	detachControl(r.a)
}

// do sends cmd to r's agent, waiting for its Run to start (after the
// runner before it has ended).
func (r *runner) do(cmd agent.Command) error {
	for {
		err := r.a.Do(r.ctx, cmd)
		if !errors.Is(err, agent.ErrClosed) || closed(r.done) || r.ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// runnerFor returns the runner, made if need be, for a function that
// needs one; without a usable configuration it fails with rcFault.
func runnerFor(name string) (*runner, error) {
	r, err := ensureRunner()
	if err != nil {
		return nil, errorf(rcFault, "%s: %s", name, strings.TrimPrefix(err.Error(), "le_result "))
	}
	return r, nil
}

// sessMu serialises le_avc_StartSession and le_avc_StopSession, so that
// their commands reach the engine in the order the host made them.
var sessMu sync.Mutex

// startSession implements le_avc_StartSession: CmdStart to the runner.
func startSession() error {
	const name = "le_avc_StartSession"
	lazyInit()
	sessMu.Lock()
	defer sessMu.Unlock()
	core.mu.Lock()
	if core.sess != nil {
		core.mu.Unlock()
		return errorf(rcDuplicate, "%s: a session is already started", name)
	}
	problems := problemsLocked()
	core.mu.Unlock()
	if len(problems) > 0 {
		err := errorf(rcFault, "%s: bad configuration: %s", name, strings.Join(problems, "; "))
		logger.Warn("session not started", "err", err)
		return err
	}
	if inFirmwareHandler() {
		return errorf(rcBusy, "%s: not allowed from a firmware handler", name)
	}
	r, err := ensureRunner()
	if err != nil {
		logger.Warn("session not started", "err", err)
		return errorf(rcFault, "%s: %v", name, err)
	}
	core.mu.Lock()
	prev := core.last
	s := newSession()
	core.sess, core.last = s, s
	core.mu.Unlock()
	if prev != nil && !closed(prev.done) {
		// The previous session is still ending: this one starts once it
		// has (the host is told with SESSION_STARTED or _FAILED).
		go func() {
			<-prev.done
			sessMu.Lock()
			defer sessMu.Unlock()
			core.mu.Lock()
			mine := core.sess == s
			core.mu.Unlock()
			if !mine {
				// Stopped before it could start: the stopper is owed
				// SESSION_STOPPED.
				s.end()
				emitStatus(statusEvent{status: statusSessionStopped, total: -1, progress: -1})
				return
			}
			if err := startOn(r, s); err != nil {
				logger.Warn("session not started", "err", err)
				emitStatus(statusEvent{status: statusSessionFailed, total: -1, progress: -1, message: err.Error()})
			}
		}()
		return nil
	}
	return startOn(r, s)
}

// startOn sends CmdStart for s to r. sessMu is held.
func startOn(r *runner, s *session) error {
	const name = "le_avc_StartSession"
	err := r.do(agent.CmdStart{})
	if err == nil {
		emitComm(commBearerUp, "session: network in use")
		return nil
	}
	core.mu.Lock()
	if core.sess == s {
		core.sess = nil
	}
	core.mu.Unlock()
	s.end()
	switch {
	case errors.Is(err, agent.ErrDuplicate):
		return errorf(rcDuplicate, "%s: a session is already up", name)
	case errors.Is(err, agent.ErrBusy):
		return errorf(rcBusy, "%s: a connection is being retried", name)
	}
	return errorf(rcFault, "%s: %v", name, err)
}

// stopSession implements le_avc_StopSession: CmdStop to the runner. It
// also stops a session the engine opened by itself (a poll).
func stopSession() error {
	const name = "le_avc_StopSession"
	lazyInit()
	sessMu.Lock()
	defer sessMu.Unlock()
	core.mu.Lock()
	s, r := core.sess, core.run
	core.sess = nil
	alive := r != nil && !closed(r.done) && r.ctx.Err() == nil
	if s != nil && alive {
		// Before the command: its SESSION_STOPPED may come at once.
		core.stopping = append(core.stopping, s)
	}
	core.mu.Unlock()
	if !alive {
		if s == nil {
			return errorf(rcDuplicate, "%s: no session is started", name)
		}
		s.end()
		emitStatus(statusEvent{status: statusSessionStopped, total: -1, progress: -1})
		return nil
	}
	if inFirmwareHandler() {
		// The loop is calling the handler: stop once it returns.
		go func() {
			if err := r.do(agent.CmdStop{}); err != nil && s != nil {
				owed(s)
			}
		}()
		return nil
	}
	err := r.do(agent.CmdStop{})
	switch {
	case err == nil:
		// SESSION_STOPPED follows from the engine; it ends s.
		return nil
	case s == nil:
		return errorf(rcDuplicate, "%s: no session is started", name)
	}
	// The engine had no session any more (it gave up retrying): the host
	// is owed SESSION_STOPPED.
	owed(s)
	return nil
}

// owed ends the stopped session s for which the engine reports nothing,
// with the SESSION_STOPPED the host is owed.
func owed(s *session) {
	core.mu.Lock()
	core.stopping = slices.DeleteFunc(core.stopping, func(x *session) bool { return x == s })
	core.mu.Unlock()
	s.end()
	emitStatus(statusEvent{status: statusSessionStopped, total: -1, progress: -1})
}

// sessionDown is called when the engine reports a session down
// (SESSION_STOPPED, or SESSION_FAILED): the stopped host sessions have
// ended; otherwise the started one has if the engine no longer has a
// session (it gave up retrying, or closed it for an install), and the host
// may start again.
func sessionDown(a *agent.Agent, stopped bool, ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, controlWait)
	st, err := a.Control(c)
	cancel()
	engineSession := err == nil && st.Session
	core.mu.Lock()
	defer core.mu.Unlock()
	if stopped && len(core.stopping) > 0 {
		for _, s := range core.stopping {
			s.end()
		}
		core.stopping = nil
		return
	}
	if !engineSession && core.sess != nil {
		core.sess.end()
		core.sess = nil
	}
}

// run drives the runner: it waits for the previous one to end, runs the
// agent and turns its events into le_avc statuses and session requests.
func (r *runner) run() {
	defer close(r.done)
	defer r.cancel()
	if r.prev != nil {
		<-r.prev.done
		r.prev = nil // only this goroutine reads it; do not chain every runner ever
	}
	emit := func(status int, msg string) {
		emitStatus(statusEvent{status: int32(status), total: -1, progress: -1, message: msg})
	}
	a := r.a
	defer func() {
		if rec := recover(); rec != nil {
			logger.Error("recovered panic in the agent's runner", "panic", fmt.Sprint(rec))
			r.detach()
			emit(statusSessionFailed, fmt.Sprint("internal error: ", rec))
		}
	}()
	if r.ctx.Err() != nil {
		r.detach()
		return
	}

	errc := make(chan error, 1)
	running, ran := context.WithCancel(context.Background())
	go func() {
		err := a.Run(r.ctx)
		ran()
		errc <- err
	}()
	// The values set with avc_set_value: the remembered ones now, later
	// ones as they are set, until the runner ends.
	attachValues(a, running)
	defer detachValues(a)
	// The update-control settings and handler counts likewise (control.go).
	attachControl(a, running)
	defer detachControl(a)
	// The engine reports every le_avc status itself (EventStatus); libavc
	// maps no event of its own, so nothing is reported twice. It reports a
	// session status just after the registration event it follows from;
	// that event's detail (the location, the error) becomes the status's
	// message, as statusOf would give it.
	detail := map[int]string{}
	for ev := range a.Events() {
		switch {
		case ev.Kind == agent.EventStatus && ev.Status != nil:
			st := int(ev.Status.Status)
			msg := ""
			if isSessionStatus(st) {
				msg = detail[st]
				delete(detail, st)
			} else if ev.Status.Error != agent.AVCErrNone {
				msg = fmt.Sprintf("le_avc_ErrorCode_t %d", ev.Status.Error)
			}
			emitStatus(statusEvent{status: int32(st), total: ev.Status.TotalBytes, progress: ev.Status.Progress, message: msg})
			switch st {
			case statusSessionStopped:
				emitComm(commBearerDown, "session: network released")
				sessionDown(a, true, running)
			case statusSessionFailed:
				sessionDown(a, false, running)
			}
			refreshControl(a, running)
		case ev.Kind == agent.EventSessionAcquire:
			emitSessionRequest(sessionAcquire)
		case ev.Kind == agent.EventSessionRelease:
			emitSessionRequest(sessionRelease)
		default:
			if status, msg, ok := statusOf(ev); ok {
				detail[status] = msg
			}
		}
		if code, text, ok := commInfoOf(ev); ok {
			emitComm(code, text)
		}
		if ev.Kind == agent.EventFirmware && ev.Firmware != nil {
			emitFirmware(*ev.Firmware)
		}
		objectEvent(a, running, ev)
	}
	err := <-errc
	up := ctlUp()
	r.detach()
	if err != nil {
		logger.Warn("the agent ended", "err", err)
		if !errors.Is(err, context.Canceled) {
			emitComm(commUDPOpenErr, err.Error())
		}
	}
	switch {
	case up:
		// Ended while a session was up (it de-registered, or the link
		// failed): the session is down.
		emitComm(commBearerDown, "session: network released")
		emit(statusSessionStopped, errText(err))
	case err != nil:
		emit(statusSessionFailed, errText(err))
	}
}

// detach forgets r as the runner and ends the host's sessions, so that
// StartSession works again (with a new runner) and StopSession reports
// LE_DUPLICATE.
func (r *runner) detach() {
	core.mu.Lock()
	defer core.mu.Unlock()
	if core.run == r {
		core.run = nil
		if core.sess != nil {
			core.sess.end()
			core.sess = nil
		}
		if core.last != nil {
			core.last.end()
		}
		for _, s := range core.stopping {
			s.end()
		}
		core.stopping = nil
	}
}

// isSessionStatus reports whether status is a session's le_avc status
// (SESSION_STARTED, SESSION_BS_STARTED, SESSION_STOPPED, SESSION_FAILED).
func isSessionStatus(status int) bool {
	return status >= statusSessionStarted && status <= statusSessionFailed
}

// detach forgets s as the started session, so that StartSession works
// again and StopSession reports LE_DUPLICATE.
func (s *session) detach() {
	core.mu.Lock()
	if core.sess == s {
		core.sess = nil
	}
	core.mu.Unlock()
}

// statusOf maps an agent event to the le_avc status that reports it. Only
// the session's life has one: updated, read, write, execute, reboot,
// factory_reset, notify, sleep, wake, store and kinds added later are
// not reported through le_avc (ok is false).
func statusOf(ev agent.Event) (status int, msg string, ok bool) {
	if ev.Further {
		return 0, "", false // a further server's registration is not the le_avc session
	}
	switch ev.Kind {
	case agent.EventRegistered:
		return statusSessionStarted, ev.Location, true
	case agent.EventDeregistered:
		return statusSessionStopped, eventDetail(ev), true
	case agent.EventRegistrationFailed:
		return statusSessionFailed, eventDetail(ev), true
	}
	return 0, "", false
}

func eventDetail(ev agent.Event) string {
	switch {
	case ev.Err != "" && ev.Code != "" && !strings.Contains(ev.Err, ev.Code):
		return ev.Err + " (" + ev.Code + ")"
	case ev.Err != "":
		return ev.Err
	case ev.Code != "":
		return "server answered " + ev.Code
	}
	return ""
}

func errText(err error) string {
	if err == nil || errors.Is(err, context.Canceled) {
		return ""
	}
	return err.Error()
}
