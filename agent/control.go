package agent

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Update control: the le_avc personality of the engine (Legato's
// AirVantage connector). With Config.Control.Enabled the engine asks the
// host before it downloads, installs, uninstalls, reboots or connects
// (user agreements), reports le_avc statuses (EventStatus), honours install
// blocks, and runs the polling and retry timers. Without it the engine
// accepts everything at once, as a plain LwM2M client does.
//
// The numbers of every type below are le_avc's (api-reference §1.4), so
// the C ABI passes them through unchanged.

// AVCStatus is an update status (le_avc_Status_t).
type AVCStatus int

// Update statuses.
const (
	StatusNoUpdate            AVCStatus = 0
	StatusDownloadPending     AVCStatus = 1
	StatusDownloadInProgress  AVCStatus = 2
	StatusDownloadComplete    AVCStatus = 3
	StatusDownloadFailed      AVCStatus = 4
	StatusInstallPending      AVCStatus = 5
	StatusInstallInProgress   AVCStatus = 6
	StatusInstallComplete     AVCStatus = 7
	StatusInstallFailed       AVCStatus = 8
	StatusUninstallPending    AVCStatus = 9
	StatusUninstallInProgress AVCStatus = 10
	StatusUninstallComplete   AVCStatus = 11
	StatusUninstallFailed     AVCStatus = 12
	StatusSessionStarted      AVCStatus = 13
	StatusSessionBSStarted    AVCStatus = 14
	StatusSessionStopped      AVCStatus = 15
	StatusSessionFailed       AVCStatus = 16
	StatusRebootPending       AVCStatus = 17
	StatusConnectionPending   AVCStatus = 18
	StatusAuthStarted         AVCStatus = 19
	StatusAuthFailed          AVCStatus = 20
	StatusCertificationOK     AVCStatus = 21
	StatusCertificationKO     AVCStatus = 22
	StatusDownloadTimeout     AVCStatus = 23
	StatusDownloadAborted     AVCStatus = 24
)

// Agreement names an operation that may need the user's agreement
// (le_avc_UserAgreement_t).
type Agreement int

// Agreements.
const (
	AgreeConnection Agreement = 0
	AgreeDownload   Agreement = 1
	AgreeInstall    Agreement = 2
	AgreeUninstall  Agreement = 3
	AgreeReboot     Agreement = 4
)

// agreementNames are the agreements' names in the JSON command form.
var agreementNames = [NumAgreements]string{"connection", "download", "install", "uninstall", "reboot"}

// String returns the agreement's name ("download").
func (a Agreement) String() string {
	if a >= 0 && int(a) < len(agreementNames) {
		return agreementNames[a]
	}
	return "agreement(" + strconv.Itoa(int(a)) + ")"
}

// NumAgreements is how many Agreement values there are.
const NumAgreements = 5

// UpdateType is the kind of the pending update (le_avc_UpdateType_t).
type UpdateType int

// Update types.
const (
	UpdateUnknown      UpdateType = 0
	UpdateFirmware     UpdateType = 1
	UpdateFramework    UpdateType = 2
	UpdateApplication  UpdateType = 3
	UpdateFileTransfer UpdateType = 4
)

// AVCError says why the last update failed (le_avc_ErrorCode_t).
type AVCError int

// Update errors.
const (
	AVCErrNone            AVCError = 0
	AVCErrBadPackage      AVCError = 1
	AVCErrInternal        AVCError = 2
	AVCErrSecurityFailure AVCError = 3
	AVCErrRAM             AVCError = 4
	AVCErrNetwork         AVCError = 5
	AVCErrFlash           AVCError = 6
	AVCErrPkgTooBig       AVCError = 7
)

// CredentialType names a credential le_avc_SetCredential provisions
// (le_avc_CredentialType_t).
type CredentialType int

// Credential types.
const (
	CredSWPublicKey     CredentialType = 0 // key that signs application packages
	CredFWPublicKey     CredentialType = 1 // key that signs firmware packages
	CredBSServerAddress CredentialType = 2 // bootstrap server URI
	CredBSPSKID         CredentialType = 3 // bootstrap DTLS PSK identity
	CredBSPSK           CredentialType = 4 // bootstrap DTLS PSK
)

// NumCredentialTypes is how many CredentialType values there are.
const NumCredentialTypes = 5

// credentialNames are the credential types' names in the JSON command
// form.
var credentialNames = [NumCredentialTypes]string{"sw_public_key", "fw_public_key", "bs_server_address", "bs_psk_id", "bs_psk"}

// MaxCredentialSize is the largest credential (LE_AVC_MAX_CREDENTIAL_SIZE).
const MaxCredentialSize = 4096

// Limits of the update-control settings (le_avc's defines).
const (
	PollingTimerMax   = 525600 // minutes
	RetryTimerMax     = 20160  // minutes
	NumRetryTimers    = 8
	APNNameMaxLen     = 48
	APNUserMaxLen     = 28
	APNPasswordMaxLen = 28
	// HTTPStatusUnknown is GetHttpStatus's answer when no download ran.
	HTTPStatusUnknown = 0xFFFF
)

// DefaultRetryTimers is le_avc's retry table, in minutes.
var DefaultRetryTimers = [NumRetryTimers]uint16{15, 60, 240, 480, 1440, 2880, 0, 0}

// Timings of update control (Legato's avcServer constants).
const (
	// PendingRenotify is how often a *_PENDING status is offered again
	// while the host neither accepts nor defers it.
	PendingRenotify = 30 * time.Minute
	// NoHandlerRetry is when an agreement is offered again while no
	// status handler is registered, and how often a blocked install or
	// uninstall is retried.
	NoHandlerRetry = 3 * time.Minute
	// ActionDelay is how long after its acceptance an install or a reboot
	// starts.
	ActionDelay = 2 * time.Second
	// DefaultActivityTimeout ends a session nobody uses (NO_UPDATE).
	DefaultActivityTimeout = 20 * time.Second
)

// Errors of the update-control commands, with the le_result_t each maps
// to.
var (
	// ErrNotPending: Accept or Defer outside the matching pending state
	// (LE_FAULT).
	ErrNotPending = errors.New("agent: nothing of that kind is pending")
	// ErrOutOfRange: a timer value beyond its limit (LE_OUT_OF_RANGE).
	ErrOutOfRange = errors.New("agent: value out of range")
	// ErrOverflow: a string longer than its limit (LE_OVERFLOW).
	ErrOverflow = errors.New("agent: value too long")
	// ErrBusy: a connection is being retried (LE_BUSY).
	ErrBusy = errors.New("agent: busy")
)

// ControlConfig configures update control.
type ControlConfig struct {
	// Enabled turns update control on (the le_avc personality).
	Enabled bool
	// ActivityTimeout ends a session the host did not open after this
	// long without activity, reporting NO_UPDATE; zero means
	// DefaultActivityTimeout.
	ActivityTimeout time.Duration
	// OnDemand makes the native driver's Run keep no session of its own:
	// it runs the engine's timers without a socket, opens the link (the
	// socket, and the DTLS handshake for coaps) when the engine needs it
	// (NeedsLink: a CmdStart, the polling timer, a resumed connection)
	// and closes it when the session has ended, until its context ends.
	// This is how a host that starts and stops sessions itself (le_avc)
	// keeps the polling and retry timers running between sessions.
	OnDemand bool
}

// StatusInfo is the payload of EventStatus: a status with le_avc's
// totalNumBytes and progress (-1 when unknown).
type StatusInfo struct {
	Status     AVCStatus  `json:"status"`
	TotalBytes int32      `json:"total_bytes"`
	Progress   int32      `json:"progress"`
	Type       UpdateType `json:"type"`
	// Error is set with the *_FAILED statuses.
	Error AVCError `json:"error,omitempty"`
}

// ControlState is a snapshot of update control, for the le_avc getters.
// Its JSON form is what the wasm module's avc_control returns.
type ControlState struct {
	// Agreements are the user agreements, by Agreement (connection,
	// download, install, uninstall, reboot).
	Agreements   [NumAgreements]bool    `json:"agreements"`
	PollingTimer uint32                 `json:"polling_timer"` // minutes; 0 disabled
	RetryTimers  [NumRetryTimers]uint16 `json:"retry_timers"`  // minutes
	APNName      string                 `json:"apn_name"`
	APNUser      string                 `json:"apn_user"`
	APNPassword  string                 `json:"apn_password"`
	// Pending is the status waiting for the host's answer
	// (StatusNoUpdate when none).
	Pending    AVCStatus  `json:"pending"`
	UpdateType UpdateType `json:"update_type"`
	// AppUpdateName is the Object 9 package name of a pending
	// application update.
	AppUpdateName string   `json:"app_update_name"`
	Error         AVCError `json:"error"`
	// HTTPStatus is the status of the last HTTP download, or
	// HTTPStatusUnknown.
	HTTPStatus  uint16    `json:"http_status"`
	Blocks      int       `json:"blocks"` // install blocks held
	UserSession bool      `json:"user_session"`
	LastPoll    time.Time `json:"last_poll,omitzero"`
	// Session is whether a session is started (CmdStart, or opened by
	// update control), up or still registering or retrying.
	Session bool `json:"session"`
	// Retrying is whether a retry timer runs (StartSession answers
	// LE_BUSY).
	Retrying bool `json:"retrying"`
	// Credentials tells, by CredentialType, whether one is provisioned
	// (CmdSetCredential) for any server; the values stay inside.
	Credentials [NumCredentialTypes]bool `json:"credentials"`
}

// CmdAccept accepts the pending operation What (le_avc_Accept*). It
// returns ErrNotPending unless that operation is pending. Accepting a
// download while no session is up starts one.
type CmdAccept struct{ What Agreement }

// CmdDefer defers the pending operation What by Minutes
// (le_avc_Defer*, DeferConnect): only its timer is re-armed; it is
// offered again when the timer fires. It returns ErrNotPending unless
// that operation is pending.
type CmdDefer struct {
	What    Agreement
	Minutes uint32
}

// CmdSetAgreement enables or disables the user agreement for What.
type CmdSetAgreement struct {
	What   Agreement
	Enable bool
}

// CmdBlockInstall takes an install block under the host's reference Ref
// (le_avc_BlockInstall); installs and uninstalls wait while any is held.
// Reusing a held Ref returns ErrDuplicate.
type CmdBlockInstall struct{ Ref uint64 }

// CmdUnblockInstall releases the block Ref; an unknown Ref returns
// ErrBadValue.
type CmdUnblockInstall struct{ Ref uint64 }

// CmdSetPollingTimer sets the polling interval in minutes (0 disables);
// beyond PollingTimerMax it returns ErrOutOfRange.
type CmdSetPollingTimer struct{ Minutes uint32 }

// CmdSetRetryTimers sets the retry table in minutes: exactly
// NumRetryTimers values (ErrBadValue otherwise), each at most
// RetryTimerMax (ErrOutOfRange).
type CmdSetRetryTimers struct{ Minutes []uint16 }

// CmdSetAPN sets the APN configuration; a value beyond its length limit
// returns ErrOverflow.
type CmdSetAPN struct{ Name, User, Password string }

// CmdSetCredential provisions a credential (le_avc_SetCredential) for
// the server ServerID (0 the bootstrap server) in the persistent store,
// replacing an earlier one of the same type and server. Data holds 1 to
// MaxCredentialSize bytes; a bootstrap server address must be a coap:// or
// coaps:// URI. Otherwise it returns ErrBadValue. The store keeps it
// across restarts; the bootstrap client reads the bootstrap credentials
// from it.
type CmdSetCredential struct {
	Type     CredentialType
	ServerID uint16
	Data     []byte
}

// CmdSessionRequests tells the engine whether the host has a session
// request handler (le_avc_AddSessionRequestEventHandler). With one, the
// engine neither opens nor closes a session by itself: where it would open
// one (the polling timer, an accepted or resumed connection, a retry of
// the retry table) it emits EventSessionAcquire, and where it would close
// an inactive session it did not open for the host it emits
// EventSessionRelease; the host answers with CmdStart or CmdStop. Sessions
// the host asks for (CmdStart, accepting a download) and the close before
// a firmware install are not forwarded.
type CmdSessionRequests struct{ Handler bool }

// LinkPhase is a step of the driver's link to the server (CmdLink).
type LinkPhase int

// Link phases.
const (
	// LinkAuthStarted: a DTLS handshake with the server started
	// (le_avc LE_AVC_AUTH_STARTED).
	LinkAuthStarted LinkPhase = iota + 1
	// LinkAuthFailed: the DTLS handshake failed (LE_AVC_AUTH_FAILED);
	// what waited to be sent to the server fails as unanswered.
	LinkAuthFailed
	// LinkFailed: the link could not be opened (the socket, the name);
	// what waited to be sent fails as unanswered.
	LinkFailed
)

// linkPhaseNames are the phases' names in the JSON command form.
var linkPhaseNames = map[LinkPhase]string{LinkAuthStarted: "auth_started", LinkAuthFailed: "auth_failed", LinkFailed: "failed"}

// CmdLink reports a step of the driver's link to the server, so that the
// engine, not the driver, decides what follows: a failed link fails a
// Register in flight at once (EventRegistrationFailed, then the retry
// policy) instead of after the CoAP timeouts, and ends a De-register in
// flight. Drivers that open the link on demand report every phase; any
// driver may report the DTLS ones.
type CmdLink struct {
	Phase LinkPhase
	// Err says why the link failed.
	Err string
}

// CmdStatusHandlers tells the engine how many status handlers the host
// has: with none, pending agreements wait; when the first registers,
// pending operations and stored results are offered to it at once.
type CmdStatusHandlers struct{ Count int }

func (CmdAccept) command() string         { return "accept" }
func (CmdDefer) command() string          { return "defer" }
func (CmdSetAgreement) command() string   { return "set_agreement" }
func (CmdBlockInstall) command() string   { return "block_install" }
func (CmdUnblockInstall) command() string { return "unblock_install" }
func (CmdSetPollingTimer) command() string {
	return "set_polling_timer"
}
func (CmdSetRetryTimers) command() string { return "set_retry_timers" }
func (CmdSetAPN) command() string         { return "set_apn" }
func (CmdStatusHandlers) command() string { return "status_handlers" }
func (CmdSessionRequests) command() string {
	return "session_requests"
}
func (CmdLink) command() string { return "link" }
func (CmdSetCredential) command() string {
	return "set_credential"
}

// ErrControlOff: an update-control command while Config.Control.Enabled
// is false.
var ErrControlOff = errors.New("agent: update control is off")

// Control returns a snapshot of update control.
func (e *Engine) Control() ControlState {
	if e.ctl == nil {
		return ControlState{HTTPStatus: HTTPStatusUnknown}
	}
	return e.ctl.state()
}

// ControlEnabled reports whether the engine has update control
// (Config.Control.Enabled).
func (e *Engine) ControlEnabled() bool { return e.ctl != nil }

// NeedsLink reports whether the engine needs its link to the server now:
// a session is being opened, is up or is being closed, or datagrams wait
// to be sent. A driver that opens the link on demand
// (ControlConfig.OnDemand) opens it while this holds and closes it once it
// no longer does.
func (e *Engine) NeedsLink() bool {
	switch e.reg.state {
	case regRegistering, regRegistered, regUpdating, regDeregistering:
		return true
	}
	return e.pendingTransmit() || len(e.tr.exchanges) > 0
}

// link applies CmdLink.
func (e *Engine) link(now time.Time, c CmdLink) error {
	switch c.Phase {
	case LinkAuthStarted:
		e.ctl.authStatus(StatusAuthStarted)
		return nil
	case LinkAuthFailed:
		e.ctl.authStatus(StatusAuthFailed)
	case LinkFailed:
	default:
		return fmt.Errorf("%w: link phase %d", ErrBadValue, c.Phase)
	}
	why := c.Err
	if why == "" {
		why = "link failed"
	}
	e.logWarn("link to the server failed", "server_uri", e.cfg.ServerURI, "err", why)
	// What waited to go out never will.
	e.out, e.outHead = nil, 0
	r := e.reg
	switch r.state {
	case regRegistering, regRegistered, regUpdating:
		// Unanswered: a failed registration (the retry policy decides
		// when to try again; a session that was up registers anew).
		e.tr.cancelPeer(e.Target().Peer)
		r.location = ""
		r.registerFailed(now, nil)
	case regDeregistering:
		e.tr.cancelPeer(e.Target().Peer)
		r.reset()
		e.emit(Event{Kind: EventDeregistered, Err: why})
		e.ctl.stopped(now)
	default:
		e.tr.cancelPeer(e.Target().Peer)
	}
	return nil
}

// controlCommand applies an update-control command.
func (e *Engine) controlCommand(now time.Time, c Command) error {
	if e.ctl == nil {
		return ErrControlOff
	}
	return e.ctl.command(now, c)
}

// HostInputs returns the commands that carry what the host told update
// control (its status handlers, its install blocks) to a new engine: a
// driver that replaces the engine while the host keeps running (a
// simulated reboot after an install, a new DTLS session) applies them to
// the new one, in order, before starting it. Nil without update control.
func (e *Engine) HostInputs() []Command {
	if e.ctl == nil {
		return nil
	}
	cmds := []Command{CmdStatusHandlers{Count: e.ctl.handlers}}
	refs := make([]uint64, 0, len(e.ctl.blocks))
	for ref := range e.ctl.blocks {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	for _, ref := range refs {
		cmds = append(cmds, CmdBlockInstall{Ref: ref})
	}
	return cmds
}

// replaceEngine makes a new engine from cfg and state to take over from
// old, carrying the host's update-control inputs across.
func replaceEngine(now time.Time, cfg Config, state []byte, old *Engine) (*Engine, error) {
	ne, err := NewEngine(cfg, state)
	if err != nil {
		return nil, err
	}
	for _, c := range old.HostInputs() {
		if err := ne.HandleCommand(now, c); err != nil {
			return nil, fmt.Errorf("carry %T to the new engine: %w", c, err)
		}
	}
	return ne, nil
}

// StateStore keeps the engine's persistent state (the EventStore data:
// update control's settings and resume record among it) for the native
// driver, in place of the file under Config.StateDir: a host's flash, for
// example (libavc's avc_storage_set). The state is one versioned,
// checksummed record; the engine drops one that does not verify and
// starts from the defaults, which it stores at once.
type StateStore interface {
	// Load returns the stored record, nil when there is none. An error
	// is logged and treated as no record.
	Load() ([]byte, error)
	// Save stores b durably and atomically: all of it, or the previous
	// record stays. An error is logged; the next change is saved again.
	// Save must not keep b: the Agent reuses it once Save returns.
	Save(b []byte) error
}
