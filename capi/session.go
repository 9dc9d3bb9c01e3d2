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

// core is the configuration and the session.
var core struct {
	mu      sync.Mutex
	inited  bool
	cfg     agent.Config
	envErrs map[string]string     // setting name -> why its environment value was refused
	objects []lwm2m.ObjectDef     // avc_object_define_xml, for the next session
	fw      agent.FirmwareHandler // avc_fw_install, for the next session; nil: the agent's default
	sess    *session              // started and not stopped
	last    *session              // most recently created, possibly still stopping
}

// session is one StartSession..StopSession span, run by one agent.Agent.
type session struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the session has ended
	prev   *session      // the session before; this one runs after it ended
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
// yet; every le_avc export calls it first.
func lazyInit() {
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

// startSession implements le_avc_StartSession.
func startSession() error {
	lazyInit()
	nat := natTimeout() // before core.mu: ctl.mu is never taken under it
	core.mu.Lock()
	if core.sess != nil {
		core.mu.Unlock()
		return errorf(rcDuplicate, "le_avc_StartSession: a session is already started")
	}
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(core.envErrs)) {
		problems = append(problems, core.envErrs[name])
	}
	cfg := core.cfg
	cfg.Objects = core.objects
	// The le_avc personality: user agreements, install blocks, polling
	// and retry timers, le_avc statuses (control.go).
	cfg.Control.Enabled = true
	// le_avc_SetNatTimeout: quiet for longer than this, the next send
	// starts a new DTLS session (0 disables).
	cfg.NATTimeout = nat
	if core.fw != nil {
		cfg.Firmware.Handler = core.fw
	}
	if len(problems) > 0 {
		core.mu.Unlock()
		err := errorf(rcFault, "le_avc_StartSession: bad configuration: %s", strings.Join(problems, "; "))
		logger.Warn("session not started", "err", err)
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{ctx: ctx, cancel: cancel, done: make(chan struct{}), prev: core.last}
	core.sess, core.last = s, s
	core.mu.Unlock()

	// agent.New may log (and read the state file): no lock held.
	cfg.Logger = logger
	a, err := agent.New(cfg)
	if err != nil {
		core.mu.Lock()
		if core.sess == s {
			core.sess = nil
		}
		core.mu.Unlock()
		go s.abandon()
		msg := strings.ReplaceAll(err.Error(), "\n", "; ")
		logger.Warn("session not started", "err", msg)
		return errorf(rcFault, "le_avc_StartSession: %s", msg)
	}
	startDispatcher()
	go s.run(a)
	return nil
}

// stopSession implements le_avc_StopSession.
func stopSession() error {
	lazyInit()
	core.mu.Lock()
	s := core.sess
	core.sess = nil
	core.mu.Unlock()
	if s == nil {
		return errorf(rcDuplicate, "le_avc_StopSession: no session is started")
	}
	s.cancel()
	return nil
}

// abandon ends a session whose agent could not be created. If it was
// stopped meanwhile, the stopper is owed SESSION_STOPPED.
func (s *session) abandon() {
	defer close(s.done)
	if s.prev != nil {
		<-s.prev.done
		s.prev = nil
	}
	if s.ctx.Err() != nil {
		emitStatus(statusEvent{status: statusSessionStopped, total: -1, progress: -1})
	}
	s.cancel()
}

// run drives one session: it waits for the previous session to end, runs
// the agent and turns its events into le_avc statuses.
func (s *session) run(a *agent.Agent) {
	defer close(s.done)
	defer s.cancel()
	if s.prev != nil {
		<-s.prev.done
		s.prev = nil // only this goroutine reads it; do not chain every session ever
	}
	last := 0 // last session status reported for this session
	emit := func(status int, msg string) {
		last = status
		emitStatus(statusEvent{status: int32(status), total: -1, progress: -1, message: msg})
	}
	defer func() {
		if r := recover(); r != nil {
			logger.Error("recovered panic in session", "panic", fmt.Sprint(r))
			s.detach()
			emit(statusSessionFailed, fmt.Sprint("internal error: ", r))
		}
	}()
	if s.ctx.Err() != nil {
		// Stopped before it could start.
		emit(statusSessionStopped, "")
		return
	}

	errc := make(chan error, 1)
	running, ran := context.WithCancel(context.Background())
	go func() {
		err := a.Run(s.ctx)
		ran()
		errc <- err
	}()
	// The values set with avc_set_value: the remembered ones now, later
	// ones as they are set, until the session ends.
	attachValues(a, running)
	defer detachValues(a)
	// The update-control settings likewise (control.go).
	attachControl(a, running)
	defer detachControl(a)
	emitComm(commBearerUp, "session: network in use")
	// With update control the engine reports every le_avc status itself,
	// session statuses included (EventStatus); libavc maps no event of its
	// own, so nothing is reported twice.
	// The engine reports a session status just after the registration
	// event it follows from; that event's detail (the location, the
	// error) becomes the status's message, as statusOf would give it.
	detail := map[int]string{}
	for ev := range a.Events() {
		switch {
		case ev.Kind == agent.EventStatus && ev.Status != nil:
			st := int(ev.Status.Status)
			msg := ""
			if isSessionStatus(st) {
				last = st
				msg = detail[st]
				delete(detail, st)
			} else if ev.Status.Error != agent.AVCErrNone {
				msg = fmt.Sprintf("le_avc_ErrorCode_t %d", ev.Status.Error)
			}
			emitStatus(statusEvent{status: int32(st), total: ev.Status.TotalBytes, progress: ev.Status.Progress, message: msg})
			refreshControl(a, running)
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
	}
	err := <-errc
	stopped := s.ctx.Err() != nil
	s.detach()
	if err != nil {
		logger.Warn("session ended", "err", err)
		if !errors.Is(err, context.Canceled) {
			emitComm(commUDPOpenErr, err.Error())
		}
	}
	emitComm(commBearerDown, "session: network released")
	switch {
	case stopped || last == statusSessionStarted:
		// Stopped by le_avc_StopSession (the de-registration may have
		// timed out) or lost while up: the session is down.
		if last != statusSessionStopped {
			emit(statusSessionStopped, errText(err))
		}
	case err != nil:
		// Ended by itself before it was up (e.g. the server's name does
		// not resolve).
		emit(statusSessionFailed, errText(err))
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
