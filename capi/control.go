//go:build cgo

package main

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

// Update control: the le_avc functions beyond sessions and status
// handlers (le_avc_Accept*, Defer*, BlockInstall, the timers, APN, user
// agreements...). The runner's agent (session.go) runs with
// Config.Control.Enabled; the engine does the work. The runner exists from
// the first use of libavc on when the configuration makes one, and is
// replaced when the configuration changes, so, like values.go, libavc
// keeps what the host set and hands it to every new runner
// (attachControl); while one runs, a setting goes to its agent at once.
// Getters ask the running agent (agent.Agent.Control) and otherwise answer
// from ctl.known: the host's settings, the agent's last snapshot, or the
// defaults.

// le_avc_SessionType_t values.
const (
	sessionTypeBootstrap = 0 // LE_AVC_BOOTSTRAP_SESSION
	sessionTypeDM        = 1 // LE_AVC_DM_SESSION
	sessionTypeInvalid   = 2 // LE_AVC_SESSION_INVALID
)

// le_avc_Status_t of a bootstrap session.
const statusSessionBSStarted = 14 // LE_AVC_SESSION_BS_STARTED

// natTimeoutDefault is le_avc's default NAT timeout, in seconds.
const natTimeoutDefault = 40

// controlWait bounds how long a getter waits for the running agent.
const controlWait = 2 * time.Second

// ctl is the host's update-control settings and what libavc knows of the
// agent's update control.
var ctl struct {
	mu    sync.Mutex // held while a setting is applied or replayed
	known agent.ControlState
	// Which settings the host made: these are replayed to every session.
	setAgreement [agent.NumAgreements]bool
	setPolling   bool
	setRetry     bool
	setAPN       bool
	blocks       map[uint64]bool                   // install blocks held, by reference
	creds        map[[2]int]agent.CmdSetCredential // le_avc_SetCredential, by type and server
	nextBlock    uint64
	nat          uint32     // le_avc_SetNatTimeout, seconds
	live         *liveAgent // the running session's agent once attached
	up, bsUp     bool       // a DM / bootstrap session is up
	sessionType  int        // le_avc_SessionType_t of the current or last session
}

func init() {
	ctl.known = defaultControlState()
	ctl.blocks = make(map[uint64]bool)
	ctl.nat = natTimeoutDefault
	ctl.sessionType = sessionTypeInvalid
}

// defaultControlState is what avcService starts with: agreements
// disabled, polling disabled, the default retry table, no APN.
func defaultControlState() agent.ControlState {
	return agent.ControlState{RetryTimers: agent.DefaultRetryTimers, HTTPStatus: agent.HTTPStatusUnknown}
}

// controlErr maps an engine error of an update-control command to its
// le_result_t.
func controlErr(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, agent.ErrOutOfRange):
		return errorf(rcOutOfRange, "%s: %v", name, err)
	case errors.Is(err, agent.ErrOverflow):
		return errorf(rcOverflow, "%s: %v", name, err)
	case errors.Is(err, agent.ErrBusy):
		return errorf(rcBusy, "%s: %v", name, err)
	case errors.Is(err, agent.ErrDuplicate):
		return errorf(rcDuplicate, "%s: %v", name, err)
	}
	// ErrNotPending, ErrBadValue, ErrControlOff, ErrUnknownCommand...
	return errorf(rcFault, "%s: %v", name, err)
}

// applyLocked sends cmd to the running session's agent. ctl.mu is held.
// applied is false when no agent runs (or it ended meanwhile): the caller
// keeps the setting for the next session.
func applyLocked(cmd agent.Command) (applied bool, err error) {
	l := ctl.live
	if l == nil || l.ctx.Err() != nil {
		return false, nil
	}
	err = doRunning(l, cmd)
	if errors.Is(err, agent.ErrClosed) || l.ctx.Err() != nil {
		return false, nil
	}
	return true, err
}

// waitAttached waits a little for a runner that is starting to take the
// settings (attachControl), so that a setting right after the first use
// reaches its engine, and its answer the caller. ctl.mu is not held.
func waitAttached() {
	if inFirmwareHandler() {
		return
	}
	core.mu.Lock()
	r := core.run
	core.mu.Unlock()
	if r == nil {
		return
	}
	deadline := time.Now().Add(controlWait)
	for time.Now().Before(deadline) && !closed(r.done) && r.ctx.Err() == nil {
		ctl.mu.Lock()
		ok := ctl.live != nil && ctl.live.a == r.a
		ctl.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// controlCommand is the shape of every setter: check, apply to the
// running agent (an engine error is returned and nothing is kept), then
// remember with keep (under ctl.mu).
func controlCommand(name string, cmd agent.Command, keep func()) error {
	lazyInit()
	if inFirmwareHandler() {
		return errorf(rcFault, "%s: not allowed from a firmware handler (the session is busy calling it)", name)
	}
	waitAttached()
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	applied, err := applyLocked(cmd)
	if applied && err != nil {
		return controlErr(name, err)
	}
	if keep != nil {
		keep()
	}
	return nil
}

// controlState is the state the getters report: the running agent's,
// else the last known.
func controlState() agent.ControlState {
	lazyInit()
	waitAttached()
	ctl.mu.Lock()
	l, st := ctl.live, ctl.known
	ctl.mu.Unlock()
	if l != nil && l.ctx.Err() == nil && !inFirmwareHandler() {
		ctx, cancel := context.WithTimeout(l.ctx, controlWait)
		got, err := l.a.Control(ctx)
		cancel()
		if err == nil {
			ctl.mu.Lock()
			if ctl.live == l {
				ctl.known = got
			}
			ctl.mu.Unlock()
			st = got
		}
	}
	if st.HTTPStatus == 0 {
		st.HTTPStatus = agent.HTTPStatusUnknown
	}
	return st
}

// readResource reads a resource of the running session's agent in its
// text form. Without a running session, or from inside a firmware handler
// (the agent's loop is busy calling it), it fails with rcFault.
func readResource(p lwm2m.Path) (string, error) {
	lazyInit()
	ctl.mu.Lock()
	l := ctl.live
	ctl.mu.Unlock()
	if l == nil || l.ctx.Err() != nil {
		return "", errorf(rcFault, "no session is running")
	}
	if inFirmwareHandler() {
		return "", errorf(rcNotPermitted, "called from inside a firmware handler")
	}
	ctx, cancel := context.WithTimeout(l.ctx, controlWait)
	defer cancel()
	v, err := l.a.ReadResource(ctx, p)
	if err != nil {
		return "", errorf(rcFault, "%v", err)
	}
	return v, nil
}

// refreshControl takes a snapshot of a's update control into ctl.known,
// so that the getters answer with the agent's last values after its
// session ended. Called from the session's event loop.
func refreshControl(a *agent.Agent, ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, controlWait)
	st, err := a.Control(c)
	cancel()
	if err != nil {
		return
	}
	ctl.mu.Lock()
	ctl.known = st
	ctl.mu.Unlock()
}

// attachControl hands the host's settings to a session's agent, whose Run
// has been started, and makes it the agent later settings go to.
func attachControl(a *agent.Agent, ctx context.Context) {
	l := &liveAgent{a: a, ctx: ctx}
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	cmds := []agent.Command{agent.CmdStatusHandlers{Count: statusHandlerCount()},
		agent.CmdSessionRequests{Handler: sessionRequestHandlerSet()}}
	for i, set := range ctl.setAgreement {
		if set {
			cmds = append(cmds, agent.CmdSetAgreement{What: agent.Agreement(i), Enable: ctl.known.Agreements[i]})
		}
	}
	if ctl.setPolling {
		// Setting the polling timer restarts its schedule: only when the
		// engine's (persisted) value differs.
		c, cancel := context.WithTimeout(ctx, controlWait)
		st, err := a.Control(c)
		for errors.Is(err, agent.ErrClosed) && c.Err() == nil {
			// Run has not started yet.
			time.Sleep(time.Millisecond)
			st, err = a.Control(c)
		}
		cancel()
		if err != nil || st.PollingTimer != ctl.known.PollingTimer {
			cmds = append(cmds, agent.CmdSetPollingTimer{Minutes: ctl.known.PollingTimer})
		}
	}
	if ctl.setRetry {
		cmds = append(cmds, agent.CmdSetRetryTimers{Minutes: slices.Clone(ctl.known.RetryTimers[:])})
	}
	if ctl.setAPN {
		cmds = append(cmds, agent.CmdSetAPN{Name: ctl.known.APNName, User: ctl.known.APNUser, Password: ctl.known.APNPassword})
	}
	for _, ref := range slices.Sorted(maps.Keys(ctl.blocks)) {
		cmds = append(cmds, agent.CmdBlockInstall{Ref: ref})
	}
	for _, k := range slices.SortedFunc(maps.Keys(ctl.creds), func(a, b [2]int) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	}) {
		cmds = append(cmds, ctl.creds[k])
	}
	for _, c := range cmds {
		err := doRunning(l, c)
		switch {
		case err == nil:
		case errors.Is(err, agent.ErrClosed), ctx.Err() != nil:
			return // Run has returned: the settings stay for the next session
		case errors.Is(err, agent.ErrUnknownCommand):
			logger.Debug("the engine does not implement update control", "cmd", agent.CommandName(c))
		default:
			logger.Warn("the agent refused an update-control setting", "cmd", agent.CommandName(c), "err", err)
		}
	}
	ctl.live = l
}

// detachControl ends the delivery of settings to a's session.
func detachControl(a *agent.Agent) {
	ctl.mu.Lock()
	if ctl.live != nil && ctl.live.a == a {
		ctl.live = nil
	}
	ctl.up, ctl.bsUp = false, false
	ctl.mu.Unlock()
}

// noteStatus follows the session statuses reported to the handlers, for
// le_avc_IsSessionStarted and le_avc_GetSessionType.
func noteStatus(status int32) {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	switch status {
	case statusSessionStarted:
		ctl.up, ctl.sessionType = true, sessionTypeDM
	case statusSessionBSStarted:
		ctl.bsUp, ctl.sessionType = true, sessionTypeBootstrap
	case statusSessionStopped, statusSessionFailed:
		ctl.up, ctl.bsUp = false, false
	}
}

// ctlUp reports whether a DM session is up.
func ctlUp() bool {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	return ctl.up
}

// handlerCountKick wakes the goroutine that tells the running agent how
// many status handlers there are (CmdStatusHandlers) and whether it has a
// session request handler (CmdSessionRequests). It is a goroutine so
// that Add/Remove never wait for the agent (they may be called from a
// firmware handler, on the agent's loop); it always sends the current
// count, so the last count sent is right.
var handlerCountKick = make(chan struct{}, 1)
var handlerCountOnce sync.Once

func statusHandlersChanged() {
	handlerCountOnce.Do(func() { go handlerCountLoop() })
	select {
	case handlerCountKick <- struct{}{}:
	default:
	}
}

func handlerCountLoop() {
	for range handlerCountKick {
		ctl.mu.Lock()
		if _, err := applyLocked(agent.CmdStatusHandlers{Count: statusHandlerCount()}); err != nil && !errors.Is(err, agent.ErrUnknownCommand) {
			logger.Warn("the agent refused the status handler count", "err", err)
		}
		if _, err := applyLocked(agent.CmdSessionRequests{Handler: sessionRequestHandlerSet()}); err != nil && !errors.Is(err, agent.ErrUnknownCommand) {
			logger.Warn("the agent refused the session request handler", "err", err)
		}
		ctl.mu.Unlock()
	}
}

// ---- the le_avc functions ----

// agreementName is the le_avc function name suffix of each agreement.
var agreementName = [agent.NumAgreements]string{"Connect", "Download", "Install", "Uninstall", "Reboot"}

// acceptOrDefer implements le_avc_Accept* (minutes < 0) and le_avc_Defer*.
func acceptOrDefer(what agent.Agreement, minutes int64) error {
	name := "le_avc_Accept" + agreementName[what]
	var cmd agent.Command = agent.CmdAccept{What: what}
	if minutes >= 0 {
		name = "le_avc_Defer" + agreementName[what]
		cmd = agent.CmdDefer{What: what, Minutes: uint32(minutes)}
	}
	lazyInit()
	if inFirmwareHandler() {
		return errorf(rcFault, "%s: not allowed from a firmware handler", name)
	}
	waitAttached()
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	applied, err := applyLocked(cmd)
	if !applied {
		return errorf(rcFault, "%s: nothing is pending (no session is running)", name)
	}
	return controlErr(name, err)
}

// checkRoute implements le_avc_CheckRoute: a Registration Update now.
func checkRoute() error {
	const name = "le_avc_CheckRoute"
	lazyInit()
	if inFirmwareHandler() {
		return errorf(rcFault, "%s: not allowed from a firmware handler", name)
	}
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	applied, err := applyLocked(agent.CmdUpdate{})
	if !applied {
		return errorf(rcFault, "%s: no session is running", name)
	}
	if err != nil {
		return errorf(rcFault, "%s: %v", name, err)
	}
	return nil
}

func setAgreement(what int, enable bool) error {
	const name = "le_avc_SetUserAgreement"
	if what < 0 || what >= agent.NumAgreements {
		return errorf(rcFault, "%s: unknown user agreement %d", name, what)
	}
	return controlCommand(name, agent.CmdSetAgreement{What: agent.Agreement(what), Enable: enable}, func() {
		ctl.known.Agreements[what] = enable
		ctl.setAgreement[what] = true
	})
}

func getAgreement(what int) (bool, error) {
	if what < 0 || what >= agent.NumAgreements {
		return false, errorf(rcFault, "le_avc_GetUserAgreement: unknown user agreement %d", what)
	}
	return controlState().Agreements[what], nil
}

func setPollingTimer(minutes uint32) error {
	const name = "le_avc_SetPollingTimer"
	if minutes > agent.PollingTimerMax {
		return errorf(rcOutOfRange, "%s: %d minutes: want 0 to %d", name, minutes, agent.PollingTimerMax)
	}
	return controlCommand(name, agent.CmdSetPollingTimer{Minutes: minutes}, func() {
		ctl.known.PollingTimer = minutes
		ctl.setPolling = true
	})
}

func setRetryTimers(minutes []uint16) error {
	const name = "le_avc_SetRetryTimers"
	if len(minutes) != agent.NumRetryTimers {
		return errorf(rcFault, "%s: %d values: want exactly %d", name, len(minutes), agent.NumRetryTimers)
	}
	for i, m := range minutes {
		if m > agent.RetryTimerMax {
			return errorf(rcOutOfRange, "%s: timer %d is %d minutes: want 0 to %d", name, i, m, agent.RetryTimerMax)
		}
	}
	return controlCommand(name, agent.CmdSetRetryTimers{Minutes: slices.Clone(minutes)}, func() {
		copy(ctl.known.RetryTimers[:], minutes)
		ctl.setRetry = true
	})
}

func setAPN(apn, user, pwd string) error {
	const name = "le_avc_SetApnConfig"
	for _, f := range []struct {
		what string
		v    string
		max  int
	}{{"apnName", apn, agent.APNNameMaxLen}, {"userName", user, agent.APNUserMaxLen}, {"userPwd", pwd, agent.APNPasswordMaxLen}} {
		if len(f.v) > f.max {
			return errorf(rcOverflow, "%s: %s is %d bytes: at most %d", name, f.what, len(f.v), f.max)
		}
	}
	return controlCommand(name, agent.CmdSetAPN{Name: apn, User: user, Password: pwd}, func() {
		ctl.known.APNName, ctl.known.APNUser, ctl.known.APNPassword = apn, user, pwd
		ctl.setAPN = true
	})
}

// blockInstall implements le_avc_BlockInstall; the reference is never 0.
func blockInstall() (uint64, error) {
	const name = "le_avc_BlockInstall"
	lazyInit()
	if inFirmwareHandler() {
		return 0, errorf(rcFault, "%s: not allowed from a firmware handler", name)
	}
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	for {
		ctl.nextBlock++
		if ctl.nextBlock != 0 && !ctl.blocks[ctl.nextBlock] {
			break
		}
	}
	ref := ctl.nextBlock
	if applied, err := applyLocked(agent.CmdBlockInstall{Ref: ref}); applied && err != nil {
		return 0, controlErr(name, err)
	}
	ctl.blocks[ref] = true
	return ref, nil
}

// unblockInstall implements le_avc_UnblockInstall; it reports whether ref
// was held.
func unblockInstall(ref uint64) bool {
	lazyInit()
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	if !ctl.blocks[ref] {
		return false
	}
	delete(ctl.blocks, ref)
	if inFirmwareHandler() {
		// Cannot wait for the agent: it is running the firmware handler.
		go func() {
			ctl.mu.Lock()
			defer ctl.mu.Unlock()
			if _, err := applyLocked(agent.CmdUnblockInstall{Ref: ref}); err != nil {
				logger.Warn("the agent refused an unblock", "err", err)
			}
		}()
		return true
	}
	if _, err := applyLocked(agent.CmdUnblockInstall{Ref: ref}); err != nil && !errors.Is(err, agent.ErrUnknownCommand) {
		logger.Warn("the agent refused an unblock", "err", err)
	}
	return true
}

// natTimeout is the NAT timeout for a new session's agent: the value set
// with le_avc_SetNatTimeout, 0 meaning disabled (a negative duration).
func natTimeout() time.Duration {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	if ctl.nat == 0 {
		return -1
	}
	return time.Duration(ctl.nat) * time.Second
}

func setNatTimeout(seconds uint32) {
	lazyInit()
	ctl.mu.Lock()
	changed := ctl.nat != seconds
	ctl.nat = seconds
	ctl.mu.Unlock()
	if changed {
		core.mu.Lock()
		core.gen++ // the next runner uses it
		core.mu.Unlock()
	}
}

func sessionStarted(serverID uint16) bool {
	lazyInit()
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	if serverID == 0 {
		return ctl.bsUp
	}
	return ctl.up
}

func sessionType() int {
	lazyInit()
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	return ctl.sessionType
}

// startDmSession implements le_avc_StartDmSession.
func startDmSession(serverID uint16) error {
	if serverID == 0 {
		return errorf(rcFault, "le_avc_StartDmSession: server 0 is the bootstrap server")
	}
	return startSession()
}

// le_avc_CredentialStatus_t values.
const (
	credentialNone = 1 // LE_AVC_NO_CREDENTIAL_PROVISIONED
	credentialBS   = 2 // LE_AVC_BS_CREDENTIAL_PROVISIONED
	credentialDM   = 3 // LE_AVC_DM_CREDENTIAL_PROVISIONED
)

// credentialStatus implements le_avc_GetCredentialStatus: DM credentials
// are the DM server's PSK (AVC_PSK_IDENTITY and AVC_PSK_KEY); bootstrap
// credentials are a bootstrap PSK identity and PSK provisioned with
// le_avc_SetCredential (kept in the persistent store).
func credentialStatus() int {
	lazyInit()
	core.mu.Lock()
	dm := core.cfg.PSKIdentity != "" && len(core.cfg.PSKKey) > 0
	core.mu.Unlock()
	if dm {
		return credentialDM
	}
	st := controlState()
	if st.Credentials[agent.CredBSPSKID] && st.Credentials[agent.CredBSPSK] {
		return credentialBS
	}
	return credentialNone
}

// setCredential implements le_avc_SetCredential: the credential goes to
// the engine's persistent store (CmdSetCredential), and is replayed to
// every new runner; a bootstrap server address also becomes
// AVC_BOOTSTRAP_URI.
func setCredential(typ int, server uint16, cred []byte) error {
	const name = "le_avc_SetCredential"
	if len(cred) == 0 || len(cred) > agent.MaxCredentialSize {
		return errorf(rcFault, "%s: %d bytes: want 1 to %d", name, len(cred), agent.MaxCredentialSize)
	}
	if typ < 0 || typ >= agent.NumCredentialTypes {
		return errorf(rcFault, "%s: unknown credential type %d", name, typ)
	}
	cmd := agent.CmdSetCredential{Type: agent.CredentialType(typ), ServerID: server, Data: slices.Clone(cred)}
	// The engine decides what it accepts; without a running one, a
	// throwaway engine answers.
	pc := probeConfig(nil)
	pc.Control.Enabled = true
	if e, err := agent.NewEngine(pc, nil); err != nil || e.HandleCommand(time.Now(), cmd) != nil {
		return errorf(rcFault, "%s: the agent refuses this credential (a bootstrap server address must be a coap:// or coaps:// URI)", name)
	}
	if typ == int(agent.CredBSServerAddress) {
		if err := configSet(agent.EnvBootstrapURI, string(cred)); err != nil {
			return errorf(rcFault, "%s: %v", name, strings.TrimPrefix(err.Error(), "avc_config_set: "))
		}
	}
	err := controlCommand(name, cmd, func() {
		ctl.known.Credentials[typ] = true
		if ctl.creds == nil {
			ctl.creds = map[[2]int]agent.CmdSetCredential{}
		}
		ctl.creds[[2]int{typ, int(server)}] = cmd
	})
	if err != nil {
		// ErrBadValue (a bad bootstrap server address) and the like.
		return errorf(rcFault, "%s: %s", name, strings.TrimPrefix(err.Error(), "le_result "))
	}
	return nil
}

// ---- communication information ----

// le_avc COMM_INFO codes libavc reports.
const (
	commUDPOpenErr = 0x01 // LE_AVC_COMM_INFO_UDP_OPEN_ERR
	commUDPSendErr = 0x03 // LE_AVC_COMM_INFO_UDP_SEND_ERR
	commBearerUp   = 0x06 // LE_AVC_COMM_INFO_BEARER_UP
	commBearerDown = 0x07 // LE_AVC_COMM_INFO_BEARER_DOWN
)

// coapCode turns a dotted CoAP code ("4.04") into its code byte (0x84).
func coapCode(dotted string) (byte, bool) {
	cls, detail, ok := strings.Cut(dotted, ".")
	if !ok || len(cls) != 1 || len(detail) != 2 {
		return 0, false
	}
	c, err1 := strconv.Atoi(cls)
	d, err2 := strconv.Atoi(detail)
	if err1 != nil || err2 != nil || c < 0 || c > 7 || d < 0 || d > 31 {
		return 0, false
	}
	return byte(c<<5 | d), true
}

// commInfoOf maps an agent event to the communication information it
// carries (see le_avc_AddCommInfoHandler in le_avc_interface.h).
func commInfoOf(ev agent.Event) (code byte, text string, ok bool) {
	coap := func(dotted, fallback string) (byte, string, bool) {
		if c, ok := coapCode(dotted); ok {
			return c, "COAP " + dotted, true
		}
		if fallback != "" {
			c, _ := coapCode(fallback)
			return c, "COAP " + fallback, true
		}
		return 0, "", false
	}
	switch ev.Kind {
	case agent.EventRegistered:
		return coap(ev.Code, "2.01")
	case agent.EventUpdated:
		return coap(ev.Code, "2.04")
	case agent.EventDeregistered:
		if ev.Err != "" {
			return coap(ev.Code, "")
		}
		return coap(ev.Code, "2.02")
	case agent.EventRegistrationFailed:
		if c, t, ok := coap(ev.Code, ""); ok {
			return c, t, true
		}
		return commUDPSendErr, "no answer: " + eventDetail(ev), true
	case agent.EventSendFailed:
		return coap(ev.Code, "")
	}
	return 0, "", false
}
