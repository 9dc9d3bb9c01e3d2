package agent

import (
	"crypto/ed25519"
	"errors"
	"strconv"
	"time"

	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
)

// FirmwareState is the State resource /5/0/3 (Core TS 1.1 E.6).
type FirmwareState int

// Firmware states.
const (
	FirmwareIdle        FirmwareState = 0 // before a download or after an update
	FirmwareDownloading FirmwareState = 1
	FirmwareDownloaded  FirmwareState = 2
	FirmwareUpdating    FirmwareState = 3
)

// String returns the state's name as in the object definition.
func (s FirmwareState) String() string {
	switch s {
	case FirmwareIdle:
		return "idle"
	case FirmwareDownloading:
		return "downloading"
	case FirmwareDownloaded:
		return "downloaded"
	case FirmwareUpdating:
		return "updating"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// UpdateResult is the Update Result resource /5/0/5.
type UpdateResult int

// Update results (object 5 v1.1; the same numbers as Anjay's
// anjay_fw_update_result_t).
const (
	ResultInitial             UpdateResult = 0
	ResultSuccess             UpdateResult = 1
	ResultNotEnoughSpace      UpdateResult = 2
	ResultOutOfMemory         UpdateResult = 3
	ResultConnectionLost      UpdateResult = 4
	ResultIntegrityFailure    UpdateResult = 5
	ResultUnsupportedPackage  UpdateResult = 6
	ResultInvalidURI          UpdateResult = 7
	ResultFailed              UpdateResult = 8
	ResultUnsupportedProtocol UpdateResult = 9
	ResultCancelled           UpdateResult = 10
	ResultDeferred            UpdateResult = 11
)

var resultNames = [...]string{"initial", "success", "not enough space", "out of memory",
	"connection lost", "integrity failure", "unsupported package type", "invalid URI",
	"update failed", "unsupported protocol", "update cancelled", "update deferred"}

// String returns the result's meaning ("integrity failure").
func (r UpdateResult) String() string {
	if r >= 0 && int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "result(" + strconv.Itoa(int(r)) + ")"
}

// Errors a FirmwareHandler returns to choose the Update Result; any other
// error takes the default result of the call (see FirmwareHandler).
var (
	ErrFirmwareNoSpace     = errors.New("agent: firmware: not enough space")     // Result 2
	ErrFirmwareNoMemory    = errors.New("agent: firmware: out of memory")        // Result 3
	ErrFirmwareIntegrity   = errors.New("agent: firmware: integrity failure")    // Result 5
	ErrFirmwareUnsupported = errors.New("agent: firmware: unsupported package")  // Result 6
	ErrFirmwareDeferred    = errors.New("agent: firmware: update deferred")      // Result 11
	ErrFirmwareFailed      = errors.New("agent: firmware: update failed")        // Result 8
	errFirmwareOpen        = errors.New("agent: firmware: cannot resume stream") // internal
)

// FirmwarePackage describes a downloaded package to install.
type FirmwarePackage struct {
	URI     string // where it came from; empty for a push
	Name    string // from the package manifest, when it has one
	Version string
	Size    int64  // image bytes stored
	SHA256  string // hex, of the image
}

// FirmwareHandler stores and installs firmware images. It is modelled on
// Anjay's anjay_fw_update_handlers_t; the engine calls it from its own
// goroutine (never concurrently) and treats it as storage: every call is
// expected to finish quickly, except PerformUpgrade, which may reboot.
//
// The engine verifies packages itself (length, SHA-256, signed manifest),
// hashing while it writes, and hands the handler image bytes only.
type FirmwareHandler interface {
	// StreamOpen prepares to store an image. offset is 0 for a new
	// download; a resumed download passes the image bytes the engine has
	// checkpointed: the handler keeps exactly that many bytes and appends
	// after them, or returns an error when it holds fewer (the engine then
	// starts over from 0). uri is the Package URI (empty for a push).
	// Default result on error: 2 (not enough space).
	StreamOpen(uri string, offset int64) error
	// StreamWrite appends image bytes. p is reused after the call.
	// Default result on error: 2 (not enough space).
	StreamWrite(p []byte) error
	// StreamFinish completes the stored image. Default result: 5.
	StreamFinish() error
	// Reset discards a partial or complete image.
	Reset()
	// PerformUpgrade installs the stored image. nil means the install is
	// under way and the device restarts into the new image (the engine
	// persists State 3 first and reports the outcome after the restart,
	// asking Booted). ErrFirmwareDeferred keeps the image (Result 11).
	// Default result on error: 8 (State back to Downloaded).
	PerformUpgrade(pkg FirmwarePackage) error
	// Booted is asked once after a restart with an update in progress:
	// it returns the version now running and whether pkg is installed.
	Booted(pkg FirmwarePackage) (running string, installed bool)
}

// FirmwareSyncer is implemented by handlers whose writes need a flush to
// be durable. The engine calls Sync before every checkpoint it persists,
// so that a stored offset never runs ahead of the stored bytes.
type FirmwareSyncer interface {
	Sync() error
}

// FirmwareCommitter is implemented by handlers that boot a new image on
// trial (A/B slots, MCUboot's test swap). With commit-after-proof the
// engine commits the image only once it has registered with the server
// from the new image; if that does not happen within FirmwareConfig's
// ProofTimeout it reverts and reports Result 8.
type FirmwareCommitter interface {
	Commit() error
	Revert() error
}

// FirmwareNamer is implemented by handlers that know the name and version
// of the image they stored (Anjay's get_name and get_version), for bare
// images that carry no manifest. The engine asks once a download is
// complete (after StreamFinish) and shows the answers in PkgName /5/0/6
// and PkgVersion /5/0/7, persisted with the download. A package manifest's
// name and version win: the handler's only fill in what the manifest
// left empty. An empty string means unknown, and a value longer than 255
// bytes is ignored. These values are shown, never verified: anti-rollback
// compares the signed manifest's version only.
type FirmwareNamer interface {
	PackageName() string
	PackageVersion() string
}

// maxPackageText bounds PkgName and PkgVersion (0..255 bytes in the
// object definition).
const maxPackageText = 255

// FirmwareSecurity is the credential of one pull, returned by a
// FirmwareSecurityProvider. Unset fields fall back to the configuration.
type FirmwareSecurity struct {
	// PSKIdentity and PSKKey are the DTLS-PSK credential of a coaps://
	// pull (both or neither; the configured firmware PSK, else the
	// server's, when neither).
	PSKIdentity string
	PSKKey      []byte
	// RootCAs is PEM: the certificates an https:// pull trusts, in
	// place of Config.FirmwareCAFile or the system's roots.
	RootCAs []byte
	// ClientCert and ClientKey are PEM: a certificate chain and its
	// private key that an https:// pull presents to the server (TLS
	// client authentication); both or neither.
	ClientCert []byte
	ClientKey  []byte
}

// FirmwareSecurityProvider is implemented by handlers that choose the
// credential of a pull themselves (Anjay's get_security_config). The
// engine asks it when a coaps:// or https:// pull starts or resumes,
// with the Package URI. A nil *FirmwareSecurity means the configuration
// (Config.FirmwarePSKIdentity/Key, Config.FirmwareCAFile) as without the
// hook; an error fails the pull with Update Result 9 (unsupported
// protocol), or the result its ErrFirmware* names. A coaps pull with no
// PSK from either fails the same way. The same method on a
// SoftwareHandler serves Object 9's pulls.
type FirmwareSecurityProvider interface {
	SecurityConfig(uri string) (*FirmwareSecurity, error)
}

// CoAPTxParams are CoAP transmission parameters (RFC 7252 §4.8) for the
// requests of a coap:// or coaps:// pull. Each request is sent, and
// resent after AckTimeout × [1, AckRandomFactor] doubling at each retry,
// at most MaxRetransmit times before the attempt counts as failed.
type CoAPTxParams struct {
	AckTimeout      time.Duration // ACK_TIMEOUT, at least 1 ms (default 2 s)
	AckRandomFactor float64       // ACK_RANDOM_FACTOR, from 1 to 4 (default 1.5)
	MaxRetransmit   int           // MAX_RETRANSMIT, from 0 to 20 (default 4)
}

// valid reports whether p is usable.
func (p CoAPTxParams) valid() bool {
	return p.AckTimeout >= time.Millisecond && p.AckTimeout <= 10*time.Minute &&
		p.AckRandomFactor >= 1 && p.AckRandomFactor <= 4 && p.MaxRetransmit >= 0 && p.MaxRetransmit <= 20
}

// FirmwareTxParamsProvider is implemented by handlers that tune the CoAP
// retransmission of pulls (Anjay's get_coap_tx_params). The engine asks
// it when a coap:// or coaps:// pull starts or resumes; ok false keeps the
// defaults (AckTimeout, AckRandomFactor, MaxRetransmit), and parameters
// out of range are logged and ignored. They apply to the pull's requests
// only, not to the LwM2M server's exchanges. The same method on a
// SoftwareHandler serves Object 9's pulls.
type FirmwareTxParamsProvider interface {
	CoAPTxParams(uri string) (p CoAPTxParams, ok bool)
}

// FirmwareRequestTimeouter is implemented by handlers that bound how long
// an http:// or https:// pull may wait for the server (Anjay's
// get_tcp_request_timeout). The engine asks it when such a pull starts or
// resumes; when the answer is positive and no response head or body
// bytes arrive for that long, the fetch is cancelled and the download
// fails with Update Result 4 (connection lost). Zero or negative: no
// such timeout (the connect and low-speed limits of FirmwareConfig
// still apply). The same method on a SoftwareHandler serves Object 9's
// pulls.
type FirmwareRequestTimeouter interface {
	RequestTimeout(uri string) time.Duration
}

// FirmwareConfig configures firmware update (Object 5).
type FirmwareConfig struct {
	// Handler stores and installs images; nil disables Object 5.
	Handler FirmwareHandler
	// TrustedKeys are ed25519 keys allowed to sign package manifests.
	TrustedKeys []ed25519.PublicKey
	// RequireSignature refuses unsigned packages and bare images
	// (Result 5), failing closed.
	RequireSignature bool
	// AllowDowngrade accepts packages older than the running firmware.
	AllowDowngrade bool
	// Hardware is the device's compatible string checked against the
	// manifest's (Result 6 on a mismatch).
	Hardware string
	// MaxSize is the largest image the storage takes (Result 2 beyond).
	MaxSize int64
	// ConnectTimeout fails a pull whose first response does not arrive in
	// time (Result 4); zero means 300 s.
	ConnectTimeout time.Duration
	// LowSpeedLimit and LowSpeedTime fail a pull that stays below
	// LowSpeedLimit bytes/s for LowSpeedTime (Result 4); zero means 100
	// B/s and 1000 s.
	LowSpeedLimit int64
	LowSpeedTime  time.Duration
	// NStart is how many block requests a coap(s) pull keeps in flight
	// once the first answer has told the package's size and ETag
	// (RFC 7252 §4.7 NSTART, RFC 7959 §2.4); zero means 1, one block at
	// a time. More overlaps the round trips of a fast link; the server
	// must tolerate that many requests at once.
	NStart int
	// CommitAfterProof holds the commit of a new image until the agent
	// has registered from it (FirmwareCommitter); ProofTimeout (zero: 10
	// minutes) bounds the wait.
	CommitAfterProof bool
	ProofTimeout     time.Duration
}

// limits returns the pull limits with their defaults.
func (c *FirmwareConfig) limits() dlLimits {
	return limitsOf(c.MaxSize, c.ConnectTimeout, c.LowSpeedLimit, c.LowSpeedTime, c.NStart)
}

func (c *FirmwareConfig) proofTimeout() time.Duration {
	if c.ProofTimeout > 0 {
		return c.ProofTimeout
	}
	return 10 * time.Minute
}

// FirmwareStatus is the progress of a firmware update, carried by
// EventFirmware.
type FirmwareStatus struct {
	State      FirmwareState `json:"state"`
	Result     UpdateResult  `json:"result"`
	Bytes      int64         `json:"bytes"`                 // package bytes received
	Total      int64         `json:"total"`                 // package size, -1 unknown
	HTTPStatus int           `json:"http_status,omitempty"` // of a failed HTTP pull
	Version    string        `json:"version,omitempty"`     // package version
}

// fwPersist is the firmware part of the persistent state.
type fwPersist struct {
	State  FirmwareState `json:"state"`
	Result UpdateResult  `json:"result"`
	// dlRecord is the download: URI, offset, validator, verifier, the
	// package's name, version, size and hash.
	dlRecord
	Severity   int64  `json:"severity"`
	MaxDefer   int64  `json:"max_defer,omitempty"`
	LastChange int64  `json:"last_change,omitempty"`
	Running    string `json:"running,omitempty"` // installed version after a successful update
	// Proof: a new image runs on trial until the agent registers from it.
	Proof      bool  `json:"proof,omitempty"`
	ProofUntil int64 `json:"proof_until,omitempty"`
}

var firmwareDef = &objDef{id: 5, name: "Firmware Update", version: "1.1", res: []resDef{
	{0, "Package", lwm2m.TypeOpaque, opW, false},
	{1, "Package URI", lwm2m.TypeString, opRW, false},
	{2, "Update", lwm2m.TypeNone, opE, false},
	{3, "State", lwm2m.TypeInteger, opR, false},
	{5, "Update Result", lwm2m.TypeInteger, opR, false},
	{6, "PkgName", lwm2m.TypeString, opR, false},
	{7, "PkgVersion", lwm2m.TypeString, opR, false},
	{8, "Firmware Update Protocol Support", lwm2m.TypeInteger, opR, true},
	{9, "Firmware Update Delivery Method", lwm2m.TypeInteger, opR, false},
	{10, "Cancel", lwm2m.TypeNone, opE, false},
	{11, "Severity", lwm2m.TypeInteger, opRW, false},
	{12, "Last State Change Time", lwm2m.TypeTime, opR, false},
	{13, "Maximum Defer Period", lwm2m.TypeUnsigned, opRW, false},
}}

// Protocols of /5/0/8.
const (
	protoCoAP  = 0
	protoCoAPS = 1
	protoHTTP  = 2
	protoHTTPS = 3
)

// firmware is the engine's Firmware Update object, a target of the
// download engine (download.go).
type firmware struct {
	e   *Engine
	cfg *FirmwareConfig
	h   FirmwareHandler
	dl  *download

	install  time.Time // when to call PerformUpgrade (zero: not pending)
	booted   bool      // the after-restart check ran
	reported FirmwareStatus
}

func (e *Engine) fwState() *fwPersist { return &e.st.FW }

func newFirmware(e *Engine) *firmware {
	c := &e.cfg.Firmware
	if c.Handler == nil {
		return nil
	}
	fw := &firmware{e: e, cfg: c, h: c.Handler}
	fw.dl = &download{e: e, t: fw}
	return fw
}

// protocols lists what /5/0/8 reports: CoAP always; HTTP(S) when the
// driver fetches over HTTP.
func (fw *firmware) protocols() []int64 {
	p := []int64{protoCoAP}
	if fw.e.fetchScheme("coaps") {
		p = append(p, protoCoAPS)
	}
	if fw.e.cfg.httpFetch {
		p = append(p, protoHTTP, protoHTTPS)
	}
	return p
}

func (fw *firmware) object() *object {
	st := fw.e.fwState()
	return &object{def: firmwareDef, insts: map[uint16]*instance{0: {id: 0, vals: map[uint16]map[uint16]lwm2m.Value{}}},
		dynamic: func(now time.Time, _, res uint16) (map[uint16]lwm2m.Value, bool) {
			switch res {
			case 1:
				return single(lwm2m.String(st.URI)), true
			case 3:
				return single(lwm2m.Int(int64(st.State))), true
			case 5:
				return single(lwm2m.Int(int64(st.Result))), true
			case 6:
				return single(lwm2m.String(st.Name)), true
			case 7:
				return single(lwm2m.String(st.Version)), true
			case 8:
				m := map[uint16]lwm2m.Value{}
				for i, p := range fw.protocols() {
					m[uint16(i)] = lwm2m.Int(p)
				}
				return m, true
			case 9:
				return single(lwm2m.Int(2)), true // pull and push
			case 11:
				return single(lwm2m.Int(st.Severity)), true
			case 12:
				return single(lwm2m.Value{Type: lwm2m.TypeTime, Int: st.LastChange}), true
			case 13:
				return single(lwm2m.Value{Type: lwm2m.TypeUnsigned, Int: st.MaxDefer}), true
			}
			return nil, false
		},
		write: fw.write,
		exec:  fw.exec,
	}
}

// write handles writes to /5/0/1, /5/0/11 and /5/0/13 (a Package write,
// /5/0/0, arrives through push, block by block).
func (fw *firmware) write(now time.Time, _, res uint16, v lwm2m.Value, apply bool) error {
	st := fw.e.fwState()
	switch res {
	case 0:
		// A whole (not block-wise) Package write that reached the
		// generic write path: only the NULL package (reset) gets here.
		if len(v.Bytes) != 0 {
			return errInvalid
		}
		if st.State == FirmwareUpdating {
			return errRefused
		}
		if apply {
			fw.reset(now, ResultInitial)
		}
		return nil
	case 1:
		if st.State == FirmwareUpdating {
			return errRefused
		}
		if v.Str != "" && st.State != FirmwareIdle {
			// Not a trigger in this state: rejected, nothing changes.
			return errRefused
		}
		if apply {
			if v.Str == "" {
				fw.reset(now, ResultInitial)
				return nil
			}
			if fw.e.ctl != nil {
				fw.e.ctl.gateDownload(now, fw.dl, v.Str)
				return nil
			}
			fw.dl.startPull(now, v.Str)
		}
		return nil
	case 11:
		if v.Int < 0 || v.Int > 2 {
			return errInvalid
		}
		if apply {
			st.Severity = v.Int
			fw.e.store()
		}
		return nil
	case 13:
		if v.Int < 0 || v.Int > 1<<32-1 {
			return errInvalid
		}
		if apply {
			st.MaxDefer = v.Int
			fw.e.store()
		}
		return nil
	}
	return errNoHook
}

// errRefused is an operation not allowed in the current state (4.05).
var errRefused = errors.New("agent: not allowed in this state")

func (fw *firmware) exec(now time.Time, _, res uint16, _ []byte) error {
	st := fw.e.fwState()
	switch res {
	case 2:
		if st.State != FirmwareDownloaded {
			return errRefused
		}
		if fw.e.ctl != nil {
			// Update control: the install waits for its agreement.
			if fw.e.ctl.pend[AgreeInstall].active || !fw.e.ctl.installAt.IsZero() {
				return nil
			}
			fw.e.ctl.offerInstall(now, 0)
			return nil
		}
		// Answer first; the install starts from Step.
		fw.install = now
		return nil
	case 10:
		if st.State != FirmwareDownloading && st.State != FirmwareDownloaded {
			return errRefused
		}
		fw.reset(now, ResultCancelled)
		return nil
	}
	return nil
}

// setState moves the state machine, persists it and notifies observers
// of every transition (never coalesced).
func (fw *firmware) setState(now time.Time, s FirmwareState, r UpdateResult) {
	st := fw.e.fwState()
	changed := st.State != s || st.Result != r
	if st.State != s {
		st.LastChange = now.Unix()
	}
	st.State, st.Result = s, r
	fw.e.store()
	if changed {
		fw.e.logInfo("firmware", "state", s.String(), "result", r.String())
		fw.e.obs.transition(now, lwm2m.P(5, 0, 3), lwm2m.P(5, 0, 5))
	}
	fw.report(true)
}

// report emits EventFirmware when the status changed (always when force).
func (fw *firmware) report(force bool) {
	st := fw.e.fwState()
	s := FirmwareStatus{State: st.State, Result: st.Result, Bytes: fw.dl.bytes, Total: st.Total, HTTPStatus: st.HTTPStatus, Version: st.Version}
	if s.Total == 0 && st.State != FirmwareDownloading {
		s.Total = -1
	}
	if !force && s == fw.reported {
		return
	}
	fw.reported = s
	fw.e.emit(Event{Kind: EventFirmware, Path: "/5/0", Firmware: &s})
}

// reset ends any transfer, discards the image and goes Idle with r.
func (fw *firmware) reset(now time.Time, r UpdateResult) {
	fw.e.ctl.dlReset(fw.dl, r)
	fw.dl.stop(now)
	fw.h.Reset()
	st := fw.e.fwState()
	keepRunning, keepSev, keepDefer, status := st.Running, st.Severity, st.MaxDefer, st.HTTPStatus
	*st = fwPersist{State: st.State, Result: st.Result, LastChange: st.LastChange, Running: keepRunning, Severity: keepSev, MaxDefer: keepDefer}
	if r != ResultInitial && r != ResultCancelled {
		st.HTTPStatus = status
	}
	fw.dl.clear()
	fw.install = time.Time{}
	fw.setState(now, FirmwareIdle, r)
}

// The download engine's view of Object 5 (dlTarget).

func (fw *firmware) record() *dlRecord   { return &fw.e.fwState().dlRecord }
func (fw *firmware) store() packageStore { return fw.h }
func (fw *firmware) limits() dlLimits    { return fw.cfg.limits() }
func (fw *firmware) label() string       { return "firmware" }
func (fw *firmware) packagePath() string { return "/5/0/0" }
func (fw *firmware) progress(force bool) { fw.report(force) }
func (fw *firmware) received(time.Time)  {}
func (fw *firmware) delivered(now time.Time) {
	fw.nameFromHandler()
	fw.setState(now, FirmwareDownloaded, ResultInitial)
}

// nameFromHandler fills in PkgName and PkgVersion from a FirmwareNamer
// where the manifest left them empty.
func (fw *firmware) nameFromHandler() {
	n, ok := fw.h.(FirmwareNamer)
	if !ok {
		return
	}
	st := fw.e.fwState()
	take := func(what string, v *string, get func() string) {
		if *v != "" {
			return
		}
		got := get()
		if len(got) > maxPackageText {
			fw.e.logWarn("firmware handler's package "+what+" is longer than 255 bytes; ignored", "len", len(got))
			return
		}
		*v = got
	}
	take("name", &st.Name, n.PackageName)
	take("version", &st.Version, n.PackageVersion)
}

func (fw *firmware) started(now time.Time) {
	st := fw.e.fwState()
	st.Proof, st.ProofUntil = false, 0
	fw.setState(now, FirmwareDownloading, ResultInitial)
}

func (fw *firmware) failed(now time.Time, r UpdateResult, _ error) { fw.reset(now, r) }

func (fw *firmware) idle() bool        { return fw.e.fwState().State == FirmwareIdle }
func (fw *firmware) downloading() bool { return fw.e.fwState().State == FirmwareDownloading }
func (fw *firmware) locked() bool      { return fw.e.fwState().State == FirmwareUpdating }

func (fw *firmware) nullPackage(now time.Time) error {
	fw.reset(now, ResultInitial)
	return nil
}

// policy is the verification policy for a new package.
func (fw *firmware) policy() fwpkg.Policy {
	return fwpkg.Policy{
		TrustedKeys:      fw.cfg.TrustedKeys,
		RequireSignature: fw.cfg.RequireSignature,
		AllowRaw:         !fw.cfg.RequireSignature,
		CurrentVersion:   fw.running(),
		AllowDowngrade:   fw.cfg.AllowDowngrade,
		Hardware:         fw.cfg.Hardware,
		MaxSize:          fw.cfg.MaxSize,
	}
}

// running is the firmware version now running (/3/0/3).
func (fw *firmware) running() string {
	if v := fw.e.fwState().Running; v != "" {
		return v
	}
	return orDefault(fw.e.cfg.Device.FirmwareVersion, "0.0.0")
}

func (fw *firmware) pkg() FirmwarePackage {
	st := fw.e.fwState()
	return FirmwarePackage{URI: st.URI, Name: st.Name, Version: st.Version, Size: st.Size, SHA256: st.SHA256}
}

// fire runs the firmware timers: a pending install, the pull's timers,
// the commit-after-proof deadline.
func (fw *firmware) fire(now time.Time) {
	st := fw.e.fwState()
	if !fw.install.IsZero() && !now.Before(fw.install) {
		fw.install = time.Time{}
		fw.performUpgrade(now)
	}
	if fw.dl.pull != nil {
		fw.dl.pull.fire(now)
	}
	if st.Proof && now.Unix() >= st.ProofUntil {
		fw.revert(now, "no registration from the new image")
	}
}

func (fw *firmware) next() time.Time {
	var next time.Time
	take := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	take(fw.install)
	if fw.dl.pull != nil {
		take(fw.dl.pull.next())
	}
	if st := fw.e.fwState(); st.Proof {
		take(time.Unix(st.ProofUntil, 0))
	}
	return next
}

func (fw *firmware) performUpgrade(now time.Time) {
	st := fw.e.fwState()
	if st.State != FirmwareDownloaded {
		return
	}
	fw.setState(now, FirmwareUpdating, ResultInitial)
	err := fw.h.PerformUpgrade(fw.pkg())
	switch {
	case err == nil:
		// The device restarts into the new image; the outcome is
		// reported after the restart (Booted).
		fw.e.emit(Event{Kind: EventRestart, Path: "/5/0/2"})
	case errors.Is(err, ErrFirmwareDeferred):
		fw.setState(now, FirmwareDownloaded, ResultDeferred)
		fw.e.ctl.fwInstallFailed(ResultDeferred)
	case errors.Is(err, ErrFirmwareIntegrity):
		fw.e.logWarn("firmware install refused the image", "err", err)
		fw.reset(now, ResultIntegrityFailure)
		fw.e.ctl.fwInstallFailed(ResultIntegrityFailure)
	default:
		fw.e.logWarn("firmware install failed", "err", err)
		fw.setState(now, handlerResultState(err), handlerResult(err, ResultFailed))
		fw.e.ctl.fwInstallFailed(handlerResult(err, ResultFailed))
	}
}

// handlerResultState is where a failed install leaves the state machine:
// Downloaded (the image is kept) unless the image itself is bad.
func handlerResultState(err error) FirmwareState {
	if errors.Is(err, ErrFirmwareUnsupported) {
		return FirmwareIdle
	}
	return FirmwareDownloaded
}

// boot runs once after the engine starts: it resumes an interrupted
// download, or reports the outcome of an install.
func (fw *firmware) boot(now time.Time) {
	if fw.booted {
		return
	}
	fw.booted = true
	st := fw.e.fwState()
	switch st.State {
	case FirmwareUpdating:
		running, ok := fw.h.Booted(fw.pkg())
		switch {
		case ok && fw.cfg.CommitAfterProof:
			if _, can := fw.h.(FirmwareCommitter); can {
				st.Running, st.Proof = running, true
				st.ProofUntil = now.Add(fw.cfg.proofTimeout()).Unix()
				fw.e.store()
				return // reported once registered (proven) or reverted
			}
			fallthrough
		case ok:
			st.Running = running
			fw.e.logInfo("firmware updated", "version", running)
			fw.finishInstall(now, ResultSuccess)
		default:
			fw.e.logWarn("firmware update did not take", "running", running, "wanted", st.Version)
			fw.finishInstall(now, ResultFailed)
		}
	case FirmwareDownloading:
		if st.Push {
			// A push cannot resume: the server restarts it.
			fw.dl.fail(now, ResultConnectionLost, errors.New("push interrupted by a restart"))
			return
		}
		if fw.e.ctl != nil {
			// Update control: offered again (DOWNLOAD_PENDING with the
			// bytes remaining).
			fw.e.ctl.resumeDownload(now, fw.dl)
			return
		}
		fw.dl.resumePull(now)
	case FirmwareDownloaded:
		// Kept across restarts (LwM2M 1.0 App. E): Downloaded with the
		// result from before.
	}
}

// finishInstall reports an install's outcome: State Idle with Result 1
// on success; on failure the image is kept (Downloaded, Result 8).
func (fw *firmware) finishInstall(now time.Time, r UpdateResult) {
	st := fw.e.fwState()
	st.Proof, st.ProofUntil = false, 0
	if r == ResultSuccess {
		fw.h.Reset()
		name, ver, running := st.Name, st.Version, st.Running
		*st = fwPersist{State: st.State, Result: st.Result, LastChange: st.LastChange, Running: running, Severity: st.Severity, MaxDefer: st.MaxDefer, dlRecord: dlRecord{Name: name, Version: ver}}
		fw.setState(now, FirmwareIdle, ResultSuccess)
		fw.e.ctl.fwInstallDone(now, r)
		return
	}
	fw.setState(now, FirmwareDownloaded, r)
	fw.e.ctl.fwInstallDone(now, r)
}

// registered is called after every successful Register: it commits an
// image on trial (commit-after-proof).
func (fw *firmware) registered(now time.Time) {
	st := fw.e.fwState()
	if !st.Proof {
		return
	}
	c := fw.h.(FirmwareCommitter)
	if err := c.Commit(); err != nil {
		fw.revert(now, "commit: "+err.Error())
		return
	}
	fw.finishInstall(now, ResultSuccess)
}

func (fw *firmware) revert(now time.Time, why string) {
	st := fw.e.fwState()
	fw.e.logWarn("firmware reverted", "why", why)
	st.Proof, st.Running = false, ""
	if c, ok := fw.h.(FirmwareCommitter); ok {
		if err := c.Revert(); err != nil {
			fw.e.logError("firmware revert", "err", err)
		}
	}
	fw.finishInstall(now, ResultFailed)
	fw.e.emit(Event{Kind: EventRestart, Path: "/5/0/2"})
}

// valid reports whether a stored firmware record is consistent.
func (p *fwPersist) valid() bool {
	switch {
	case p.State < FirmwareIdle || p.State > FirmwareUpdating:
		return false
	case p.Result < ResultInitial || p.Result > ResultDeferred:
		return false
	case p.Offset < 0 || p.Size < 0 || p.Severity < 0 || p.Severity > 2:
		return false
	case p.State == FirmwareDownloading && !p.Push && p.URI == "":
		return false
	case (p.State == FirmwareDownloaded || p.State == FirmwareUpdating) && p.SHA256 == "":
		return false
	}
	return len(p.URI) <= maxPackageURI
}
