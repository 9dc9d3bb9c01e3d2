package agent

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/avc-agent/avc/fwpkg"
)

// Update control, the implementation (see control.go for the contract).
//
// Every operation that may need the user's agreement goes through offer:
// with the agreement disabled it is accepted at once; enabled, it becomes
// pending, its *_PENDING status is sent and sent again every
// PendingRenotify (or, while no status handler is registered, offered
// again every NoHandlerRetry and at once when one registers). Accept runs
// it; Defer re-arms its timer. One operation of each Agreement can be
// pending at a time.
//
// The gates:
//
//   - download: a Package URI written (/5/0/1, /9/x/3). While the
//     agreement is pending the object shows Downloading (DOWNLOAD
//     STARTED) with 0 bytes, so that the server does not write another
//     URI; the pull starts on acceptance. Pushes (/5/0/0, /9/x/2) are not
//     gated: the server is sending the bytes now, block by block, and a
//     push cannot wait for a human (it cannot be resumed either).
//   - install: Execute /5/0/2 or /9/x/4; uninstall: Execute /9/x/6 of
//     installed software (discarding a delivered package is not gated).
//     Accepted while an install block is held, the operation waits
//     NoHandlerRetry and is offered again. Installs start ActionDelay
//     after acceptance; a firmware install de-registers first and
//     installs once the session is down.
//   - reboot: Execute /3/0/4; EventReboot follows ActionDelay after
//     acceptance.
//   - connection: the polling timer; accepted, the engine registers (a
//     session the activity timeout may close). CmdStart also accepts it.
//
// Update Results map onto AVCError as follows: 2 → AVCErrPkgTooBig when
// the image exceeds MaxSize, else AVCErrFlash; 3 → AVCErrRAM; 4 →
// AVCErrNetwork; 5 → AVCErrSecurityFailure when the package carried a
// manifest (a signature or hash check of a signed package failed), else
// AVCErrBadPackage; 6, 7 and 9 → AVCErrBadPackage (the package or its URI
// is unusable, not resumable); anything else → AVCErrInternal.

// ctlRecordVersion is the layout version of the persisted control record.
const ctlRecordVersion = 1

// ctlPersist is update control's part of the persistent state: settings
// (agreements, timers, APN) and what is needed to resume.
type ctlPersist struct {
	V           int                    `json:"v"`
	Agreements  [NumAgreements]bool    `json:"ua"`
	Polling     uint32                 `json:"polling,omitempty"` // minutes
	Retry       [NumRetryTimers]uint16 `json:"retry"`
	LastPoll    int64                  `json:"last_poll,omitempty"` // unix seconds
	APNName     string                 `json:"apn,omitempty"`
	APNUser     string                 `json:"apn_user,omitempty"`
	APNPassword string                 `json:"apn_password,omitempty"`
	// Resume is the last resumable status (api-reference §2 resume
	// table) and Target what it is about: 0 firmware, n+1 the Software
	// Management instance n.
	Resume AVCStatus `json:"resume,omitempty"`
	Target int       `json:"target,omitempty"`
	// Result is the last install/uninstall outcome, replayed to a
	// status handler that registers later.
	Result *StatusInfo `json:"result,omitempty"`
	// Creds are the provisioned credentials (CmdSetCredential) by
	// "type/server" ("4/0": the bootstrap PSK). The state file is
	// written with mode 0600; a host's storage keeps it as it keeps the
	// rest.
	Creds map[string][]byte `json:"creds,omitempty"`
}

func credKey(t CredentialType, server uint16) string {
	return strconv.Itoa(int(t)) + "/" + strconv.Itoa(int(server))
}

// credential returns the provisioned credential t of server, nil when
// there is none: the entry point for the bootstrap client (the bootstrap
// server address and PSK are those of server 0). Nil-safe.
func (c *control) credential(t CredentialType, server uint16) []byte {
	if c == nil {
		return nil
	}
	return c.p().Creds[credKey(t, server)]
}

// UnmarshalJSON implements json.Unmarshaler: a record that does not
// decode becomes an invalid one (dropped for the defaults by
// loadPersistent) instead of spoiling the whole state.
func (p *ctlPersist) UnmarshalJSON(b []byte) error {
	type plain ctlPersist
	var q plain
	if err := json.Unmarshal(b, &q); err != nil {
		*p = ctlPersist{}
		return nil
	}
	*p = ctlPersist(q)
	return nil
}

func defaultCtl(now time.Time) *ctlPersist {
	p := &ctlPersist{V: ctlRecordVersion, Retry: DefaultRetryTimers}
	if !now.IsZero() {
		p.LastPoll = now.Unix()
	}
	return p
}

// valid reports whether a stored control record is usable.
func (p *ctlPersist) valid() bool {
	if p.V != ctlRecordVersion || p.Polling > PollingTimerMax || p.Target < 0 {
		return false
	}
	for _, r := range p.Retry {
		if r > RetryTimerMax {
			return false
		}
	}
	if len(p.APNName) > APNNameMaxLen || len(p.APNUser) > APNUserMaxLen || len(p.APNPassword) > APNPasswordMaxLen {
		return false
	}
	return p.Resume >= StatusNoUpdate && p.Resume <= StatusDownloadAborted
}

// pendOp is one operation waiting for (or retrying after) agreement.
type pendOp struct {
	active  bool      // pending: Accept and Defer apply
	blocked bool      // accepted while blocked; offered again at at
	at      time.Time // re-offer time
	info    StatusInfo
	// download: d, with the URI of a new pull, or resuming, or a
	// finished one whose completion is reported on acceptance.
	d        *download
	uri      string
	resume   bool
	complete bool
	// install / uninstall target: 0 firmware, n+1 /9/n.
	target    int
	forUpdate bool
}

// control is the engine's update control; nil when disabled.
type control struct {
	e        *Engine
	handlers int
	pend     [NumAgreements]pendOp
	blocks   map[uint64]bool
	user     bool // the host opened the session
	booted   bool
	retryIdx int

	activityAt  time.Time
	pollAt      time.Time
	installAt   time.Time
	installTgt  int
	rebootAt    time.Time
	fwAfterStop bool // install the firmware once de-registered

	// The session request handler (CmdSessionRequests): sessReq is
	// whether the host has one; retryAt is the retry timer the engine
	// runs itself while it does (the registration does not retry), and
	// asked whether the acquire request of a retry is unanswered;
	// released whether EventSessionRelease was sent for this session.
	sessReq  bool
	retryAt  time.Time
	asked    bool
	released bool

	waitSession bool // a suspended download resumes with the next session
	updateType  UpdateType
	appName     string
	lastErr     AVCError
	httpStatus  uint16
}

func newControl(e *Engine) *control {
	if !e.cfg.Control.Enabled {
		return nil
	}
	c := &control{e: e, blocks: map[uint64]bool{}, httpStatus: HTTPStatusUnknown}
	if e.st.Ctl == nil {
		// Defaults are written only when the record is missing or
		// corrupt (loadPersistent drops a corrupt one).
		e.st.Ctl = defaultCtl(time.Time{})
		e.store()
	}
	return c
}

func (c *control) p() *ctlPersist { return c.e.st.Ctl }

func (c *control) activityTimeout() time.Duration {
	if t := c.e.cfg.Control.ActivityTimeout; t > 0 {
		return t
	}
	return DefaultActivityTimeout
}

func (c *control) state() ControlState {
	p := c.p()
	s := ControlState{Agreements: p.Agreements, PollingTimer: p.Polling, RetryTimers: p.Retry,
		APNName: p.APNName, APNUser: p.APNUser, APNPassword: p.APNPassword,
		UpdateType: c.updateType, AppUpdateName: c.appName, Error: c.lastErr, HTTPStatus: c.httpStatus,
		Blocks: len(c.blocks), UserSession: c.user,
		Session: c.e.reg.started, Retrying: c.retrying()}
	if p.LastPoll != 0 {
		s.LastPoll = time.Unix(p.LastPoll, 0)
	}
	for i := range c.pend {
		if c.pend[i].active {
			s.Pending = c.pend[i].info.Status
			break
		}
	}
	for k := range p.Creds {
		t, _, _ := strings.Cut(k, "/")
		if n, err := strconv.Atoi(t); err == nil && n >= 0 && n < NumCredentialTypes {
			s.Credentials[n] = true
		}
	}
	return s
}

// status emits EventStatus and remembers what a restart resumes from.
func (c *control) status(s StatusInfo, target int) {
	if s.Type != UpdateUnknown {
		c.updateType = s.Type
	}
	c.e.emit(Event{Kind: EventStatus, Status: &s})
	p := c.p()
	switch s.Status {
	case StatusDownloadPending, StatusDownloadInProgress, StatusDownloadComplete,
		StatusInstallPending, StatusInstallInProgress, StatusUninstallPending, StatusConnectionPending:
		p.Resume, p.Target = s.Status, target
	case StatusInstallComplete, StatusInstallFailed, StatusUninstallComplete, StatusUninstallFailed, StatusDownloadFailed:
		p.Resume, p.Target = StatusNoUpdate, 0
		if s.Status != StatusDownloadFailed {
			r := s
			p.Result = &r
		}
	default:
		return
	}
	c.e.store()
}

func pendingStatus(what Agreement) AVCStatus {
	return [NumAgreements]AVCStatus{StatusConnectionPending, StatusDownloadPending, StatusInstallPending,
		StatusUninstallPending, StatusRebootPending}[what]
}

// offer asks for the agreement to op (see the file comment).
func (c *control) offer(now time.Time, what Agreement, op pendOp) {
	op.info.Status = pendingStatus(what)
	if op.info.Progress == 0 {
		op.info.Progress = -1
	}
	if op.info.TotalBytes == 0 && what != AgreeDownload {
		op.info.TotalBytes = -1
	}
	op.blocked = false
	if !c.p().Agreements[what] {
		op.active = true
		c.pend[what] = op
		c.accept(now, what)
		return
	}
	op.active = true
	if c.handlers > 0 {
		op.at = now.Add(PendingRenotify)
		c.pend[what] = op
		c.status(op.info, op.target)
		return
	}
	// Nobody to ask: offered again later, or when a handler registers.
	op.at = now.Add(NoHandlerRetry)
	c.pend[what] = op
	c.p().Resume, c.p().Target = op.info.Status, op.target
	c.e.store()
}

// accept runs the pending operation what.
func (c *control) accept(now time.Time, what Agreement) {
	op := c.pend[what]
	c.pend[what] = pendOp{}
	switch what {
	case AgreeConnection:
		c.want(now)
	case AgreeDownload:
		if !c.e.reg.started {
			// AcceptDownload without a session starts one (a user
			// session, as in avcService).
			c.connect(now, true)
		}
		switch {
		case op.complete:
			c.status(StatusInfo{Status: StatusDownloadComplete, TotalBytes: 0, Progress: 100, Type: op.info.Type}, op.target)
		case op.resume:
			op.d.resumePull(now)
		default:
			op.d.startPull(now, op.uri)
		}
	case AgreeInstall, AgreeUninstall:
		if len(c.blocks) > 0 {
			// Blocked: offered again after NoHandlerRetry.
			op.active, op.blocked, op.at = false, true, now.Add(NoHandlerRetry)
			c.pend[what] = op
			c.e.logInfo("update control: install blocked; retrying", "in", NoHandlerRetry)
			return
		}
		if what == AgreeInstall {
			c.status(StatusInfo{Status: StatusInstallInProgress, TotalBytes: -1, Progress: 0, Type: op.info.Type}, op.target)
			c.installAt, c.installTgt = now.Add(ActionDelay), op.target
			return
		}
		c.uninstall(now, op)
	case AgreeReboot:
		c.rebootAt = now.Add(ActionDelay)
	}
}

// want opens a session the engine itself needs, or, with a session
// request handler, asks the host to (EventSessionAcquire).
func (c *control) want(now time.Time) {
	if c.e.reg.started {
		return
	}
	if c.sessReq {
		c.e.logInfo("update control: asking the host for a session")
		c.e.emit(Event{Kind: EventSessionAcquire})
		return
	}
	c.connect(now, false)
}

// retrying reports whether a retry timer runs.
func (c *control) retrying() bool {
	return !c.retryAt.IsZero() || (c.e.reg.started && c.e.reg.state == regWaiting)
}

// authStatus reports a DTLS handshake's start or failure.
func (c *control) authStatus(s AVCStatus) {
	if c == nil {
		return
	}
	c.status(StatusInfo{Status: s, TotalBytes: -1, Progress: -1}, 0)
}

// connect opens a session (user: the host asked for it).
func (c *control) connect(now time.Time, user bool) {
	c.user = c.user || user
	if !c.e.reg.started {
		c.retryIdx = 0
		_ = c.e.reg.start(now)
	}
}

func (c *control) command(now time.Time, cmd Command) error {
	p := c.p()
	switch cmd := cmd.(type) {
	case CmdAccept:
		if cmd.What < 0 || cmd.What >= NumAgreements {
			return ErrBadValue
		}
		if !c.pend[cmd.What].active {
			return ErrNotPending
		}
		c.accept(now, cmd.What)
	case CmdDefer:
		if cmd.What < 0 || cmd.What >= NumAgreements {
			return ErrBadValue
		}
		if !c.pend[cmd.What].active {
			return ErrNotPending
		}
		c.pend[cmd.What].at = now.Add(time.Duration(cmd.Minutes) * time.Minute)
		c.activityAt = time.Time{}
	case CmdSetAgreement:
		if cmd.What < 0 || cmd.What >= NumAgreements {
			return ErrBadValue
		}
		p.Agreements[cmd.What] = cmd.Enable
		c.e.store()
	case CmdBlockInstall:
		if c.blocks[cmd.Ref] {
			return ErrDuplicate
		}
		c.blocks[cmd.Ref] = true
	case CmdUnblockInstall:
		if !c.blocks[cmd.Ref] {
			return ErrBadValue
		}
		delete(c.blocks, cmd.Ref)
	case CmdSetPollingTimer:
		if cmd.Minutes > PollingTimerMax {
			return ErrOutOfRange
		}
		p.Polling, p.LastPoll = cmd.Minutes, now.Unix()
		c.pollAt = time.Time{}
		if cmd.Minutes > 0 {
			c.pollAt = now.Add(time.Duration(cmd.Minutes) * time.Minute)
		}
		c.e.store()
	case CmdSetRetryTimers:
		if len(cmd.Minutes) != NumRetryTimers {
			return ErrBadValue
		}
		for _, m := range cmd.Minutes {
			if m > RetryTimerMax {
				return ErrOutOfRange
			}
		}
		copy(p.Retry[:], cmd.Minutes)
		c.e.store()
	case CmdSetAPN:
		if len(cmd.Name) > APNNameMaxLen || len(cmd.User) > APNUserMaxLen || len(cmd.Password) > APNPasswordMaxLen {
			return ErrOverflow
		}
		p.APNName, p.APNUser, p.APNPassword = cmd.Name, cmd.User, cmd.Password
		c.e.store()
	case CmdSetCredential:
		if cmd.Type < 0 || cmd.Type >= NumCredentialTypes || len(cmd.Data) == 0 || len(cmd.Data) > MaxCredentialSize {
			return ErrBadValue
		}
		if cmd.Type == CredBSServerAddress {
			u, err := url.Parse(string(cmd.Data))
			if err != nil || (u.Scheme != "coap" && u.Scheme != "coaps") || u.Host == "" {
				return ErrBadValue
			}
		}
		if p.Creds == nil {
			p.Creds = map[string][]byte{}
		}
		p.Creds[credKey(cmd.Type, cmd.ServerID)] = append([]byte(nil), cmd.Data...)
		c.e.store()
	case CmdSessionRequests:
		c.sessReq = cmd.Handler
		if !c.sessReq && c.asked {
			// Nobody left to answer: the engine opens it itself.
			c.asked = false
			c.connect(now, false)
		}
	case CmdStatusHandlers:
		if cmd.Count < 0 {
			return ErrBadValue
		}
		was := c.handlers
		c.handlers = cmd.Count
		if was == 0 && cmd.Count > 0 {
			c.newHandler(now)
		}
	default:
		return ErrUnknownCommand
	}
	return nil
}

// newHandler offers what is pending to the first status handler, after
// replaying the stored result.
func (c *control) newHandler(now time.Time) {
	if r := c.p().Result; r != nil {
		s := *r
		c.e.emit(Event{Kind: EventStatus, Status: &s})
	}
	for i := range c.pend {
		op := &c.pend[i]
		if op.active {
			op.at = now.Add(PendingRenotify)
			c.status(op.info, op.target)
		}
	}
}

// start is CmdStart with control: ErrBusy while a registration retry
// waits; the session is the host's.
func (c *control) start(now time.Time) error {
	r := c.e.reg
	if c.retrying() {
		return ErrBusy
	}
	if r.started {
		return ErrDuplicate
	}
	c.user = true
	c.pend[AgreeConnection] = pendOp{}
	if !c.asked {
		// A new attempt, not the answer to a retry's request: the
		// retry table starts over.
		c.retryIdx = 0
	}
	c.asked = false
	return r.start(now)
}

// nextRetry is the delay before the next Register attempt from the retry
// table; false when it is exhausted (then retrying stops).
func (c *control) nextRetry() (time.Duration, bool) {
	for c.retryIdx < NumRetryTimers {
		m := c.p().Retry[c.retryIdx]
		c.retryIdx++
		if m != 0 {
			return time.Duration(m) * time.Minute, true
		}
	}
	c.retryIdx = 0
	return 0, false
}

// boot runs once: the polling schedule and the resume table.
func (c *control) boot(now time.Time) {
	if c == nil || c.booted {
		return
	}
	c.booted = true
	p := c.p()
	if p.Polling > 0 {
		iv := time.Duration(p.Polling) * time.Minute
		last := time.Unix(p.LastPoll, 0)
		if p.LastPoll == 0 || now.Before(last) || now.Sub(last) >= iv {
			// A poll was missed (or the clock went back): connect now.
			p.LastPoll = now.Unix()
			c.pollAt = now.Add(iv)
			c.e.store()
			c.offer(now, AgreeConnection, pendOp{})
		} else {
			c.pollAt = last.Add(iv)
		}
	}
	tgt := p.Target
	switch p.Resume {
	case StatusDownloadComplete:
		if d := c.download(tgt); d != nil && c.delivered(tgt) {
			c.offer(now, AgreeDownload, pendOp{d: d, complete: true, target: tgt, info: StatusInfo{TotalBytes: 0, Type: targetType(tgt)}})
		}
	case StatusInstallPending, StatusInstallInProgress:
		if c.delivered(tgt) {
			c.offerInstall(now, tgt)
		}
	case StatusUninstallPending:
		if in := c.swInst(tgt); in != nil && in.rec().State == SoftwareInstalled {
			c.offer(now, AgreeUninstall, pendOp{target: tgt, info: StatusInfo{Type: UpdateApplication}})
		}
	case StatusConnectionPending:
		if !c.e.reg.started && !c.pend[AgreeConnection].active {
			c.offer(now, AgreeConnection, pendOp{})
		}
	}
}

func targetType(tgt int) UpdateType {
	if tgt == 0 {
		return UpdateFirmware
	}
	return UpdateApplication
}

func (c *control) swInst(tgt int) *swInstance {
	if tgt == 0 || c.e.sw == nil {
		return nil
	}
	return c.e.sw.insts[uint16(tgt-1)]
}

func (c *control) download(tgt int) *download {
	if tgt == 0 {
		if c.e.fw == nil {
			return nil
		}
		return c.e.fw.dl
	}
	if in := c.swInst(tgt); in != nil {
		return in.dl
	}
	return nil
}

// delivered reports whether target holds a verified package.
func (c *control) delivered(tgt int) bool {
	if tgt == 0 {
		return c.e.fw != nil && c.e.fwState().State == FirmwareDownloaded
	}
	in := c.swInst(tgt)
	return in != nil && in.rec().State == SoftwareDelivered
}

// targetOf names a download's target.
func (c *control) targetOf(d *download) int {
	if in, ok := d.t.(*swInstance); ok {
		return int(in.id) + 1
	}
	return 0
}

func (c *control) fire(now time.Time) {
	if c == nil {
		return
	}
	c.boot(now)
	for i := range c.pend {
		op := c.pend[i]
		if (op.active || op.blocked) && !op.at.IsZero() && !now.Before(op.at) {
			// Offered again: the same status, through the agreement.
			c.pend[i] = pendOp{}
			c.offer(now, Agreement(i), op)
		}
	}
	if !c.retryAt.IsZero() && !now.Before(c.retryAt) {
		c.retryAt = time.Time{}
		if c.sessReq {
			c.asked = true
			c.want(now)
		} else {
			c.connect(now, false)
		}
	}
	if !c.installAt.IsZero() && !now.Before(c.installAt) {
		c.installAt = time.Time{}
		c.install(now, c.installTgt)
	}
	if !c.rebootAt.IsZero() && !now.Before(c.rebootAt) {
		c.rebootAt = time.Time{}
		c.e.emit(Event{Kind: EventReboot, Path: "/3/0/4"})
	}
	if !c.pollAt.IsZero() && !now.Before(c.pollAt) {
		p := c.p()
		p.LastPoll = now.Unix()
		c.pollAt = now.Add(time.Duration(p.Polling) * time.Minute)
		c.e.store()
		if !c.e.reg.started {
			c.offer(now, AgreeConnection, pendOp{})
		}
	}
	if !c.activityAt.IsZero() && !now.Before(c.activityAt) {
		c.activityAt = time.Time{}
		if c.busy() {
			c.activityAt = now.Add(c.activityTimeout())
		} else {
			c.status(StatusInfo{Status: StatusNoUpdate, TotalBytes: -1, Progress: -1}, 0)
			switch {
			case c.user || !c.e.reg.started:
			case c.sessReq:
				if !c.released {
					c.released = true
					c.e.logInfo("update control: asking the host to close an inactive session")
					c.e.emit(Event{Kind: EventSessionRelease})
				}
			default:
				c.e.logInfo("update control: closing an inactive polling session")
				_ = c.e.reg.stop(now)
			}
		}
	}
}

// busy reports whether an update is under way (the activity timeout
// waits for it).
func (c *control) busy() bool {
	for _, op := range c.pend {
		if op.active || op.blocked {
			return true
		}
	}
	if !c.installAt.IsZero() || !c.rebootAt.IsZero() || c.fwAfterStop {
		return true
	}
	for _, d := range c.e.downloads() {
		if d.pull != nil || d.push != nil {
			return true
		}
	}
	return false
}

func (c *control) next() time.Time {
	if c == nil {
		return time.Time{}
	}
	var next time.Time
	take := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, op := range c.pend {
		if op.active || op.blocked {
			take(op.at)
		}
	}
	take(c.retryAt)
	take(c.installAt)
	take(c.rebootAt)
	take(c.pollAt)
	take(c.activityAt)
	return next
}

// touch notes activity in the session.
func (c *control) touch(now time.Time) {
	if c == nil || c.activityAt.IsZero() {
		return
	}
	c.activityAt = now.Add(c.activityTimeout())
}

// Hooks called by the rest of the engine; all are no-ops on a nil
// control.

// registered: a Register succeeded.
func (c *control) registered(now time.Time) {
	if c == nil {
		return
	}
	c.retryIdx = 0
	c.retryAt, c.asked, c.released = time.Time{}, false, false
	c.pend[AgreeConnection] = pendOp{}
	c.status(StatusInfo{Status: StatusSessionStarted, TotalBytes: -1, Progress: -1}, 0)
	c.activityAt = now.Add(c.activityTimeout())
	if c.waitSession {
		c.waitSession = false
		if op := c.pend[AgreeDownload]; op.active && op.resume {
			c.accept(now, AgreeDownload)
		}
	}
}

// registerFailed: a Register failed; it returns the retry delay, or
// false to stop retrying.
func (c *control) registerFailed(now time.Time) (time.Duration, bool) {
	c.status(StatusInfo{Status: StatusSessionFailed, TotalBytes: -1, Progress: -1}, 0)
	d, ok := c.nextRetry()
	if ok && c.sessReq {
		// With a session request handler the engine runs the retry
		// timer itself and asks the host when it fires; the
		// registration stops meanwhile.
		c.retryAt = now.Add(d)
		c.e.logInfo("update control: retry timer armed; the host will be asked", "in", d)
		return 0, false
	}
	return d, ok
}

// stopped: the session is down (de-registered or stopped).
func (c *control) stopped(now time.Time) {
	if c == nil {
		return
	}
	c.user = false
	c.released = false
	c.activityAt = time.Time{}
	c.status(StatusInfo{Status: StatusSessionStopped, TotalBytes: -1, Progress: -1}, 0)
	// A download in progress is suspended until the next session.
	for _, d := range c.e.downloads() {
		if d.pull == nil {
			continue
		}
		if d.ver != nil && d.off > d.t.record().Offset {
			_ = d.checkpoint(now)
		}
		d.stop(now)
		rec := d.t.record()
		remaining := int64(-1)
		if rec.Total > 0 {
			remaining = rec.Total - rec.Offset
		}
		tgt := c.targetOf(d)
		op := pendOp{active: true, d: d, resume: true, target: tgt,
			info: StatusInfo{Status: StatusDownloadPending, TotalBytes: int32(remaining), Progress: -1, Type: targetType(tgt)}}
		c.status(op.info, tgt)
		if c.p().Agreements[AgreeDownload] && c.handlers > 0 {
			op.at = now.Add(PendingRenotify)
		} else {
			// Resumed by the next session.
			c.waitSession = true
		}
		c.pend[AgreeDownload] = op
		break
	}
	if c.fwAfterStop {
		c.fwAfterStop = false
		if c.e.fw != nil {
			c.e.fw.install = now
		}
	}
}

// gateDownload holds a pull for the download agreement.
func (c *control) gateDownload(now time.Time, d *download, uri string) {
	if _, r := c.e.checkPackageURI(uri); r != ResultInitial {
		d.startPull(now, uri) // fails at once, as without control
		return
	}
	d.stop(now)
	d.t.store().Reset()
	*d.t.record() = dlRecord{URI: uri, Total: -1}
	d.clear()
	d.t.started(now)
	tgt := c.targetOf(d)
	c.offer(now, AgreeDownload, pendOp{d: d, uri: uri, target: tgt, info: StatusInfo{TotalBytes: -1, Type: targetType(tgt)}})
}

// resumeDownload is a pull interrupted by a restart: offered again with
// the bytes remaining.
func (c *control) resumeDownload(now time.Time, d *download) {
	rec := d.t.record()
	remaining := int64(-1)
	if rec.Total > 0 {
		remaining = rec.Total - rec.Offset
	}
	tgt := c.targetOf(d)
	c.offer(now, AgreeDownload, pendOp{d: d, resume: true, target: tgt, info: StatusInfo{TotalBytes: int32(remaining), Type: targetType(tgt)}})
}

// offerInstall holds an Execute of Install for the install agreement.
func (c *control) offerInstall(now time.Time, tgt int) {
	info := StatusInfo{Type: targetType(tgt)}
	if in := c.swInst(tgt); in != nil {
		c.appName = in.rec().Name
	}
	c.offer(now, AgreeInstall, pendOp{target: tgt, info: info})
}

// offerUninstall holds an Execute of Uninstall.
func (c *control) offerUninstall(now time.Time, in *swInstance, forUpdate bool) {
	c.appName = in.rec().InstalledName
	c.offer(now, AgreeUninstall, pendOp{target: int(in.id) + 1, forUpdate: forUpdate, info: StatusInfo{Type: UpdateApplication}})
}

// install runs an accepted install (ActionDelay after acceptance).
func (c *control) install(now time.Time, tgt int) {
	if tgt == 0 {
		fw := c.e.fw
		if fw == nil {
			return
		}
		switch c.e.reg.state {
		case regRegistered, regUpdating, regRegistering:
			// Close the session first; install once it is down.
			c.fwAfterStop = true
			_ = c.e.reg.stop(now)
		default:
			if c.e.reg.state == regDeregistering {
				c.fwAfterStop = true
				return
			}
			fw.install = now
		}
		return
	}
	in := c.swInst(tgt)
	if in == nil {
		return
	}
	in.performInstall(now)
	st := in.rec()
	if st.State == SoftwareInstalled {
		c.status(StatusInfo{Status: StatusInstallComplete, TotalBytes: -1, Progress: 100, Type: UpdateApplication}, tgt)
		return
	}
	c.lastErr = AVCErrInternal
	c.status(StatusInfo{Status: StatusInstallFailed, TotalBytes: -1, Progress: -1, Type: UpdateApplication, Error: c.lastErr}, tgt)
}

func (c *control) uninstall(now time.Time, op pendOp) {
	in := c.swInst(op.target)
	if in == nil || in.rec().State != SoftwareInstalled {
		return
	}
	c.status(StatusInfo{Status: StatusUninstallInProgress, TotalBytes: -1, Progress: 0, Type: UpdateApplication}, op.target)
	in.uninstall(now, op.forUpdate)
	if in.rec().Result == SoftwareResultUninstallFailure {
		c.lastErr = AVCErrInternal
		c.status(StatusInfo{Status: StatusUninstallFailed, TotalBytes: -1, Progress: -1, Type: UpdateApplication, Error: c.lastErr}, op.target)
		return
	}
	c.status(StatusInfo{Status: StatusUninstallComplete, TotalBytes: -1, Progress: 100, Type: UpdateApplication}, op.target)
}

// fwInstallFailed: PerformUpgrade refused or deferred.
func (c *control) fwInstallFailed(r UpdateResult) {
	if c == nil {
		return
	}
	c.lastErr = avcErrorOf(r, nil, false)
	c.status(StatusInfo{Status: StatusInstallFailed, TotalBytes: -1, Progress: -1, Type: UpdateFirmware, Error: c.lastErr}, 0)
}

// fwInstallDone: the outcome of a firmware install after the restart:
// a connection is needed to report it (CONNECTION_PENDING), then the
// result.
func (c *control) fwInstallDone(now time.Time, r UpdateResult) {
	if c == nil {
		return
	}
	if !c.e.reg.started {
		c.offer(now, AgreeConnection, pendOp{})
	}
	s := StatusInfo{Status: StatusInstallComplete, TotalBytes: -1, Progress: 100, Type: UpdateFirmware}
	if r != ResultSuccess {
		c.lastErr = AVCErrInternal
		s = StatusInfo{Status: StatusInstallFailed, TotalBytes: -1, Progress: -1, Type: UpdateFirmware, Error: c.lastErr}
	}
	c.status(s, 0)
}

// dlStarted, dlProgress, dlComplete and dlFailed report a transfer.
func (c *control) dlStarted(d *download) {
	if c == nil {
		return
	}
	c.lastErr = AVCErrNone
	tgt := c.targetOf(d)
	c.status(StatusInfo{Status: StatusDownloadInProgress, TotalBytes: -1, Progress: 0, Type: targetType(tgt)}, tgt)
}

func (c *control) dlProgress(d *download) {
	if c == nil {
		return
	}
	rec := d.t.record()
	s := StatusInfo{Status: StatusDownloadInProgress, TotalBytes: -1, Progress: -1, Type: targetType(c.targetOf(d))}
	if rec.Total > 0 {
		s.TotalBytes = int32(rec.Total)
		s.Progress = int32(d.off * 100 / rec.Total)
	}
	c.status(s, c.targetOf(d))
}

func (c *control) dlComplete(d *download, http, signed bool) {
	if c == nil {
		return
	}
	rec := d.t.record()
	tgt := c.targetOf(d)
	c.httpStatus = HTTPStatusUnknown
	if http {
		c.httpStatus = 200
	}
	if in := c.swInst(tgt); in != nil {
		c.appName = in.rec().Name
	}
	c.status(StatusInfo{Status: StatusDownloadComplete, TotalBytes: int32(rec.Total), Progress: 100, Type: targetType(tgt)}, tgt)
	if signed {
		c.status(StatusInfo{Status: StatusCertificationOK, TotalBytes: -1, Progress: -1, Type: targetType(tgt)}, tgt)
	}
}

func (c *control) dlFailed(d *download, r UpdateResult, why error) {
	if c == nil || r == ResultCancelled || r == ResultInitial {
		return
	}
	if errors.Is(why, errDownloadTimeout) {
		// The connect or low-speed limit ran out (le_avc's 300 s and
		// 1000 s below 100 B/s): DOWNLOAD_TIMEOUT says why, then
		// DOWNLOAD_FAILED reports the outcome.
		tgt := c.targetOf(d)
		c.status(StatusInfo{Status: StatusDownloadTimeout, TotalBytes: -1, Progress: -1, Type: targetType(tgt), Error: AVCErrNetwork}, tgt)
	}
	rec := d.t.record()
	tgt := c.targetOf(d)
	hadManifest := false
	if d.ver != nil {
		_, hadManifest = d.ver.Manifest()
	}
	if rec.HTTPStatus != 0 {
		c.httpStatus = uint16(rec.HTTPStatus)
	}
	c.lastErr = avcErrorOf(r, why, hadManifest)
	if r == ResultIntegrityFailure && hadManifest {
		c.status(StatusInfo{Status: StatusCertificationKO, TotalBytes: -1, Progress: -1, Type: targetType(tgt), Error: c.lastErr}, tgt)
	}
	c.status(StatusInfo{Status: StatusDownloadFailed, TotalBytes: -1, Progress: -1, Type: targetType(tgt), Error: c.lastErr}, tgt)
}

// errDownloadTimeout is wrapped by the failure of a pull that ran out of
// its connect or low-speed time (DOWNLOAD_TIMEOUT).
var errDownloadTimeout = errors.New("download timed out")

// dlReset: the target of d is reset (/5/0/1 written empty, /5/0/10 or a
// Software Management reset) with r. A transfer under way, or waiting for
// the download agreement, was aborted by the server: DOWNLOAD_ABORTED,
// and the pending agreement is withdrawn. Failures were reported by
// dlFailed already.
func (c *control) dlReset(d *download, r UpdateResult) {
	if c == nil || (r != ResultInitial && r != ResultCancelled) {
		return
	}
	op := &c.pend[AgreeDownload]
	pending := (op.active || op.blocked) && op.d == d
	if !pending && d.pull == nil && d.push == nil {
		return
	}
	if pending {
		*op = pendOp{}
		c.waitSession = false
	}
	tgt := c.targetOf(d)
	c.status(StatusInfo{Status: StatusDownloadAborted, TotalBytes: -1, Progress: -1, Type: targetType(tgt)}, tgt)
	c.p().Resume, c.p().Target = StatusNoUpdate, 0
	c.e.store()
}

// bootstrapStarted and bootstrapEnded are update control's entry points
// for the bootstrap client: call bootstrapStarted when a bootstrap session
// is up (the Bootstrap-Request was accepted), and bootstrapEnded when it
// is over (Bootstrap-Finish, or a failure). They report le_avc's
// SESSION_BS_STARTED, then SESSION_STOPPED or SESSION_FAILED; the DM
// session that follows reports SESSION_STARTED through registered as
// usual. Both are no-ops without update control.
func (c *control) bootstrapStarted() {
	if c == nil {
		return
	}
	c.status(StatusInfo{Status: StatusSessionBSStarted, TotalBytes: -1, Progress: -1}, 0)
}

func (c *control) bootstrapEnded(failed bool) {
	if c == nil {
		return
	}
	s := StatusSessionStopped
	if failed {
		s = StatusSessionFailed
	}
	c.status(StatusInfo{Status: s, TotalBytes: -1, Progress: -1}, 0)
}

// avcErrorOf maps an Update Result onto AVCError (see the file comment).
func avcErrorOf(r UpdateResult, why error, signed bool) AVCError {
	switch r {
	case ResultNotEnoughSpace:
		if errors.Is(why, fwpkg.ErrTooLarge) {
			return AVCErrPkgTooBig
		}
		return AVCErrFlash
	case ResultOutOfMemory:
		return AVCErrRAM
	case ResultConnectionLost:
		return AVCErrNetwork
	case ResultIntegrityFailure:
		if signed {
			return AVCErrSecurityFailure
		}
		return AVCErrBadPackage
	case ResultUnsupportedPackage, ResultInvalidURI, ResultUnsupportedProtocol:
		return AVCErrBadPackage
	}
	return AVCErrInternal
}
