package agent

import (
	"crypto/ed25519"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
)

// Software Management (LwM2M Object 9, OMA-TS-LWM2M_SwMgmt-V1_0): each
// instance manages one application package. The server creates an
// instance, delivers a package to it by pull (Package URI, /9/x/3) or push
// (Package, /9/x/2) on the same download engine as firmware update
// (download.go: verification, checkpoints, resume), then executes Install,
// Activate, Deactivate and Uninstall.
//
// Package installation state machine (/9/x/7, with the Update Result
// /9/x/9 each state shows):
//
//	INITIAL (0, result 0 or a failure)
//	  └─ Package URI / Package written → DOWNLOAD STARTED (1, result 1)
//	       └─ every byte in → DOWNLOADED (2, result 0)
//	            └─ verified → DELIVERED (3, result 3)   failure → INITIAL (5x)
//	                 └─ Install → INSTALLED (4, result 2)  failure: DELIVERED (58)
//	                      └─ Uninstall → INITIAL (0)       failure: INSTALLED (59)
//
// A download that fails goes back to INITIAL with its result (50..57). An
// empty Package URI or an empty Package cancels a download or discards a
// delivered package (INITIAL, result 0), as on Object 5. In DELIVERED,
// Uninstall discards the package. In INSTALLED, Activate and
// Deactivate drive the Activation State (/9/x/12), Uninstall with
// argument 1 ("ForUpdate") prepares for a new package: the state goes to
// INITIAL but the software stays in place (and its version is the floor
// of the anti-rollback check) until a new package is installed.
//
// # Simplifications
//
//   - Checkpoint (5), Package Settings (13), Software Component Link (17)
//     and tree length (18) are not implemented; neither are the 1.1
//     resources Start, Stop, Operational State and Purge (19-22), so the
//     object is registered as version 1.0.
//   - DOWNLOADED is transient: the engine verifies while it streams, so a
//     package is checked the moment its last byte is in. A restart in
//     DOWNLOADED resumes the pull like one in DOWNLOAD STARTED.
//   - User Name and Password (14, 15) are stored, not used: CoAP pulls
//     carry no credentials, and FetchRequest has no field for them yet.
//   - Install, Uninstall, Activate and Deactivate answer 2.04 when the
//     state allows them; the handler's verdict shows in the Update
//     Result, the Activation State and the Status Reason (16, the error
//     text of the last failure). Install runs once the Execute has been
//     answered (from Step), the others at once.

// SoftwareState is the Update State resource /9/x/7.
type SoftwareState int

// Software package installation states (Object 9 Update State).
const (
	SoftwareInitial         SoftwareState = 0 // INITIAL: before downloading
	SoftwareDownloadStarted SoftwareState = 1 // DOWNLOAD STARTED: a transfer is under way
	SoftwareDownloaded      SoftwareState = 2 // DOWNLOADED: every byte is in, being verified
	SoftwareDelivered       SoftwareState = 3 // DELIVERED: verified, ready to install
	SoftwareInstalled       SoftwareState = 4 // INSTALLED: can be activated and deactivated
)

var softwareStateNames = [...]string{"initial", "download started", "downloaded", "delivered", "installed"}

// String returns the state's name as in the object definition, in lower
// case ("download started").
func (s SoftwareState) String() string {
	if s >= 0 && int(s) < len(softwareStateNames) {
		return softwareStateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// SoftwareResult is the Update Result resource /9/x/9.
type SoftwareResult int

// Software update results (Object 9 Update Result; the same numbers as
// Anjay's anjay_sw_mgmt_update_result_t).
const (
	SoftwareResultInitial            SoftwareResult = 0  // initial value, and after Uninstall
	SoftwareResultDownloading        SoftwareResult = 1  // the download is under way
	SoftwareResultInstalled          SoftwareResult = 2  // software successfully installed
	SoftwareResultDelivered          SoftwareResult = 3  // downloaded and integrity verified
	SoftwareResultNoSpace            SoftwareResult = 50 // not enough storage
	SoftwareResultOutOfMemory        SoftwareResult = 51 // out of memory during the download
	SoftwareResultConnectionLost     SoftwareResult = 52 // connection lost during the download
	SoftwareResultIntegrityFailure   SoftwareResult = 53 // package integrity check failure
	SoftwareResultUnsupportedPackage SoftwareResult = 54 // unsupported package type
	SoftwareResultInvalidURI         SoftwareResult = 56 // invalid URI
	SoftwareResultUpdateError        SoftwareResult = 57 // device defined update error
	SoftwareResultInstallFailure     SoftwareResult = 58 // software installation failure
	SoftwareResultUninstallFailure   SoftwareResult = 59 // uninstallation failure
)

var softwareResultNames = map[SoftwareResult]string{
	SoftwareResultInitial:            "initial",
	SoftwareResultDownloading:        "downloading",
	SoftwareResultInstalled:          "installed",
	SoftwareResultDelivered:          "downloaded and verified",
	SoftwareResultNoSpace:            "not enough storage",
	SoftwareResultOutOfMemory:        "out of memory",
	SoftwareResultConnectionLost:     "connection lost",
	SoftwareResultIntegrityFailure:   "integrity failure",
	SoftwareResultUnsupportedPackage: "unsupported package type",
	SoftwareResultInvalidURI:         "invalid URI",
	SoftwareResultUpdateError:        "update error",
	SoftwareResultInstallFailure:     "installation failure",
	SoftwareResultUninstallFailure:   "uninstallation failure",
}

// String returns the result's meaning ("integrity failure").
func (r SoftwareResult) String() string {
	if n, ok := softwareResultNames[r]; ok {
		return n
	}
	return "result(" + strconv.Itoa(int(r)) + ")"
}

// softwareResultOf maps a download's outcome (Object 5 numbering, see
// download.go) onto Object 9's Update Result. Object 9 has no
// "unsupported protocol": a URI the agent cannot fetch is an invalid URI.
func softwareResultOf(r UpdateResult) SoftwareResult {
	switch r {
	case ResultInitial, ResultCancelled:
		return SoftwareResultInitial
	case ResultNotEnoughSpace:
		return SoftwareResultNoSpace
	case ResultOutOfMemory:
		return SoftwareResultOutOfMemory
	case ResultConnectionLost:
		return SoftwareResultConnectionLost
	case ResultIntegrityFailure:
		return SoftwareResultIntegrityFailure
	case ResultUnsupportedPackage:
		return SoftwareResultUnsupportedPackage
	case ResultInvalidURI, ResultUnsupportedProtocol:
		return SoftwareResultInvalidURI
	}
	return SoftwareResultUpdateError
}

// Errors a SoftwareHandler returns to choose the Update Result; any other
// error takes the default result of the call (see SoftwareHandler). The
// ErrFirmware errors of the same meaning are recognised too.
var (
	ErrSoftwareNoSpace     = errors.New("agent: software: not enough storage")  // Result 50
	ErrSoftwareNoMemory    = errors.New("agent: software: out of memory")       // Result 51
	ErrSoftwareIntegrity   = errors.New("agent: software: integrity failure")   // Result 53
	ErrSoftwareUnsupported = errors.New("agent: software: unsupported package") // Result 54
)

// SoftwarePackage describes the package of one Software Management
// instance.
type SoftwarePackage struct {
	Instance uint16 // the Object 9 instance, /9/Instance
	URI      string // where it came from; empty for a push
	Name     string // from the package manifest, when it has one
	Version  string
	Size     int64  // image bytes stored
	SHA256   string // hex, of the image
}

// SoftwareHandler stores, installs and runs application packages for
// Software Management (Object 9). Every call names the instance it is
// for; the engine calls the handler from its own goroutine (never
// concurrently) and expects every call to finish quickly.
//
// The engine verifies packages itself (length, SHA-256, signed manifest),
// hashing while it writes, and hands the handler image bytes only; a
// handler may also implement SoftwareSyncer.
type SoftwareHandler interface {
	// StreamOpen prepares to store instance inst's package. offset is 0
	// for a new download; a resumed download passes the image bytes the
	// engine has checkpointed: the handler keeps exactly that many bytes
	// and appends after them, or returns an error when it holds fewer
	// (the engine then starts over from 0). uri is the Package URI (empty
	// for a push). Default result on error: 50 (not enough storage).
	StreamOpen(inst uint16, uri string, offset int64) error
	// StreamWrite appends image bytes. p is reused after the call.
	// Default result on error: 50.
	StreamWrite(inst uint16, p []byte) error
	// StreamFinish completes the stored package. Default result: 53.
	StreamFinish(inst uint16) error
	// Reset discards instance inst's stored package, partial or complete
	// (not the installed software).
	Reset(inst uint16)
	// Install installs the stored package, replacing the software in
	// place after an Uninstall for update; the new software starts
	// deactivated. ErrSoftwareIntegrity or ErrSoftwareUnsupported discard
	// the package (Result 53 or 54, INITIAL); any other error keeps it
	// (Result 58, DELIVERED).
	Install(pkg SoftwarePackage) error
	// Uninstall removes the installed software, or with forUpdate
	// prepares it to be replaced by the next package (it stays in
	// place). Error: Result 59, still INSTALLED.
	Uninstall(pkg SoftwarePackage, forUpdate bool) error
	// Activate and Deactivate start and stop the installed software
	// (Activation State /9/x/12). An error leaves the state as it was.
	Activate(pkg SoftwarePackage) error
	Deactivate(pkg SoftwarePackage) error
}

// SoftwareSyncer is implemented by software handlers whose writes need a
// flush to be durable; the engine calls Sync before every checkpoint it
// persists (see FirmwareSyncer).
type SoftwareSyncer interface {
	Sync(inst uint16) error
}

// SoftwareConfig configures Software Management (Object 9).
type SoftwareConfig struct {
	// Handler stores and installs packages; nil disables Object 9.
	Handler SoftwareHandler
	// TrustedKeys are ed25519 keys allowed to sign package manifests.
	TrustedKeys []ed25519.PublicKey
	// RequireSignature refuses unsigned packages and bare images
	// (Result 53), failing closed.
	RequireSignature bool
	// AllowDowngrade accepts a package older than the software it
	// replaces (after Uninstall for update).
	AllowDowngrade bool
	// Hardware is the device's compatible string checked against the
	// manifest's (Result 54 on a mismatch).
	Hardware string
	// MaxSize is the largest image the storage takes (Result 50 beyond).
	MaxSize int64
	// ConnectTimeout, LowSpeedLimit and LowSpeedTime bound pulls as in
	// FirmwareConfig (Result 52); zero means 300 s, 100 B/s and 1000 s.
	ConnectTimeout time.Duration
	LowSpeedLimit  int64
	LowSpeedTime   time.Duration
	// NStart is FirmwareConfig.NStart for the packages' pulls.
	NStart int
	// MaxInstances bounds the instances a server may create; zero means
	// 16.
	MaxInstances int
}

func (c *SoftwareConfig) limits() dlLimits {
	return limitsOf(c.MaxSize, c.ConnectTimeout, c.LowSpeedLimit, c.LowSpeedTime, c.NStart)
}

func (c *SoftwareConfig) maxInstances() int {
	if c.MaxInstances > 0 {
		return c.MaxInstances
	}
	return 16
}

// SoftwareStatus is the state of one Software Management instance,
// carried by EventSoftware (whose Path is "/9/<Instance>").
type SoftwareStatus struct {
	Instance   uint16         `json:"instance"`
	State      SoftwareState  `json:"state"`
	Result     SoftwareResult `json:"result"`
	Active     bool           `json:"active"`
	Bytes      int64          `json:"bytes"`                 // package bytes received
	Total      int64          `json:"total"`                 // package size, -1 unknown
	HTTPStatus int            `json:"http_status,omitempty"` // of a failed HTTP pull
	Name       string         `json:"name,omitempty"`        // package name
	Version    string         `json:"version,omitempty"`     // package version
}

// swRecordVersion is the layout version of a persisted instance record
// (swPersist.V); a record of another version is dropped alone.
const swRecordVersion = 1

// swPersist is one Software Management instance's part of the persistent
// state.
type swPersist struct {
	V      int            `json:"v"`
	State  SoftwareState  `json:"state"`
	Result SoftwareResult `json:"result"`
	// dlRecord is the package being (or last) downloaded.
	dlRecord
	// Installed: software is in place (INSTALLED, or INITIAL after an
	// Uninstall for update), with this name and version.
	Installed        bool   `json:"installed,omitempty"`
	InstalledName    string `json:"installed_name,omitempty"`
	InstalledVersion string `json:"installed_version,omitempty"`
	Active           bool   `json:"active,omitempty"`         // /9/x/12
	UpdateObjects    bool   `json:"update_objects,omitempty"` // /9/x/8
	User             string `json:"user,omitempty"`           // /9/x/14
	Password         string `json:"password,omitempty"`       // /9/x/15
	Reason           string `json:"reason,omitempty"`         // /9/x/16
}

// valid reports whether a stored instance record is consistent.
func (p *swPersist) valid() bool {
	_, known := softwareResultNames[p.Result]
	switch {
	case p.V != swRecordVersion || !known:
		return false
	case p.State < SoftwareInitial || p.State > SoftwareInstalled:
		return false
	case p.Offset < 0 || p.Size < 0:
		return false
	case (p.State == SoftwareDownloadStarted || p.State == SoftwareDownloaded) && !p.Push && p.URI == "":
		return false
	case (p.State == SoftwareDelivered || p.State == SoftwareInstalled) && p.SHA256 == "":
		return false
	case p.State == SoftwareInstalled && !p.Installed:
		return false
	}
	return len(p.URI) <= maxPackageURI
}

// droppedSoftware is what replaces a record that cannot be right: INITIAL
// with Result 57, the instance kept.
func droppedSoftware() *swPersist {
	return &swPersist{V: swRecordVersion, State: SoftwareInitial, Result: SoftwareResultUpdateError, dlRecord: dlRecord{Total: -1}}
}

var softwareDef = &objDef{id: 9, name: "LWM2M Software Management", version: "1.0", multiple: true, res: []resDef{
	{0, "PkgName", lwm2m.TypeString, opR, false},
	{1, "PkgVersion", lwm2m.TypeString, opR, false},
	{2, "Package", lwm2m.TypeOpaque, opW, false},
	{3, "Package URI", lwm2m.TypeString, opW, false},
	{4, "Install", lwm2m.TypeNone, opE, false},
	{6, "Uninstall", lwm2m.TypeNone, opE, false},
	{7, "Update State", lwm2m.TypeInteger, opR, false},
	{8, "Update Supported Objects", lwm2m.TypeBoolean, opRW, false},
	{9, "Update Result", lwm2m.TypeInteger, opR, false},
	{10, "Activate", lwm2m.TypeNone, opE, false},
	{11, "Deactivate", lwm2m.TypeNone, opE, false},
	{12, "Activation State", lwm2m.TypeBoolean, opR, false},
	{14, "User Name", lwm2m.TypeString, opW, false},
	{15, "Password", lwm2m.TypeString, opW, false},
	{16, "Status Reason", lwm2m.TypeString, opR, false},
}}

// software is the engine's Software Management object.
type software struct {
	e      *Engine
	cfg    *SoftwareConfig
	h      SoftwareHandler
	insts  map[uint16]*swInstance
	booted bool // the after-restart resume ran
}

// swInstance is one instance, a target of the download engine.
type swInstance struct {
	sw       *software
	id       uint16
	dl       *download
	install  time.Time // when to call Install (zero: not pending)
	reported SoftwareStatus
}

func newSoftware(e *Engine) *software {
	c := &e.cfg.Software
	if c.Handler == nil {
		return nil
	}
	sw := &software{e: e, cfg: c, h: c.Handler, insts: map[uint16]*swInstance{}}
	for id := range e.st.SW {
		sw.add(id)
	}
	return sw
}

func (sw *software) add(id uint16) *swInstance {
	in := &swInstance{sw: sw, id: id}
	in.dl = &download{e: sw.e, t: in}
	sw.insts[id] = in
	return in
}

// ids returns the instance IDs in order.
func (sw *software) ids() []uint16 {
	if len(sw.insts) == 0 {
		return nil
	}
	ids := make([]uint16, 0, len(sw.insts))
	for id := range sw.insts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (sw *software) object() *object {
	o := &object{def: softwareDef, insts: map[uint16]*instance{}, write: sw.write, exec: sw.exec,
		created: sw.created, deleting: sw.deleting, maxInsts: sw.cfg.maxInstances()}
	for id := range sw.insts {
		o.insts[id] = &instance{id: id, vals: map[uint16]map[uint16]lwm2m.Value{}}
	}
	o.dynamic = func(_ time.Time, inst, res uint16) (map[uint16]lwm2m.Value, bool) {
		in, ok := sw.insts[inst]
		if !ok {
			return nil, false
		}
		st := in.rec()
		switch res {
		case 0:
			return single(lwm2m.String(in.pkg().Name)), true
		case 1:
			return single(lwm2m.String(in.pkg().Version)), true
		case 7:
			return single(lwm2m.Int(int64(st.State))), true
		case 8:
			return single(lwm2m.Bool(st.UpdateObjects)), true
		case 9:
			return single(lwm2m.Int(int64(st.Result))), true
		case 12:
			return single(lwm2m.Bool(st.Active)), true
		case 16:
			return single(lwm2m.String(st.Reason)), true
		}
		return nil, false
	}
	return o
}

// created makes the record of an instance a server created.
func (sw *software) created(now time.Time, id uint16) {
	if sw.e.st.SW == nil {
		sw.e.st.SW = map[uint16]*swPersist{}
	}
	sw.e.st.SW[id] = &swPersist{V: swRecordVersion, dlRecord: dlRecord{Total: -1}}
	in := sw.add(id)
	sw.e.store()
	sw.e.logInfo("software instance created", "path", in.label())
	in.report(true)
}

// deleting removes an instance a server deletes: its transfer stops, its
// package is discarded and installed software uninstalled; when that
// fails the instance stays.
func (sw *software) deleting(now time.Time, id uint16) error {
	in, ok := sw.insts[id]
	if !ok {
		return nil
	}
	st := in.rec()
	in.dl.stop(now)
	if st.Installed {
		if err := sw.h.Uninstall(in.installedPkg(), false); err != nil {
			st.Reason = err.Error()
			in.setState(now, st.State, SoftwareResultUninstallFailure)
			return err
		}
	}
	sw.h.Reset(id)
	delete(sw.insts, id)
	delete(sw.e.st.SW, id)
	sw.e.store()
	sw.e.logInfo("software instance deleted", "path", in.label())
	return nil
}

// write handles writes to /9/x/2 (a whole package, from a Create or an
// instance Write; block-wise and resource writes go to pushRequest), 3,
// 8, 14 and 15. inst may not exist yet while a Create is validated: it is
// then INITIAL.
func (sw *software) write(now time.Time, inst, res uint16, v lwm2m.Value, apply bool) error {
	in := sw.insts[inst]
	state := SoftwareInitial
	if in != nil {
		state = in.rec().State
	}
	switch res {
	case 2:
		if state == SoftwareInstalled || (len(v.Bytes) > 0 && state != SoftwareInitial) {
			return errRefused
		}
		if apply {
			if len(v.Bytes) == 0 {
				in.reset(now, SoftwareResultInitial, "")
				return nil
			}
			in.dl.whole(now, v.Bytes)
		}
		return nil
	case 3:
		if (v.Str != "" && state != SoftwareInitial) || state == SoftwareInstalled {
			// Not a trigger in this state: rejected, nothing changes.
			return errRefused
		}
		if apply {
			if v.Str == "" {
				in.reset(now, SoftwareResultInitial, "")
				return nil
			}
			if sw.e.ctl != nil {
				sw.e.ctl.gateDownload(now, in.dl, v.Str)
				return nil
			}
			in.dl.startPull(now, v.Str)
		}
		return nil
	case 8, 14, 15:
		if len(v.Str) > 255 {
			return errInvalid
		}
		if apply {
			st := in.rec()
			switch res {
			case 8:
				st.UpdateObjects = v.Bool
			case 14:
				st.User = v.Str
			case 15:
				st.Password = v.Str
			}
			sw.e.store()
		}
		return nil
	}
	return errInvalid
}

// exec handles Install (4), Uninstall (6), Activate (10) and Deactivate
// (11); each is refused (4.05) in a state the object definition does not
// allow it in.
func (sw *software) exec(now time.Time, inst, res uint16, args []byte) error {
	in := sw.insts[inst]
	if in == nil {
		return errRefused
	}
	st := in.rec()
	switch res {
	case 4:
		if st.State != SoftwareDelivered {
			return errRefused
		}
		if c := sw.e.ctl; c != nil {
			// Update control: the install waits for its agreement.
			if !c.pend[AgreeInstall].active && c.installAt.IsZero() {
				c.offerInstall(now, int(inst)+1)
			}
			return nil
		}
		// Answer first; the install runs from Step.
		in.install = now
	case 6:
		forUpdate, err := uninstallArg(args)
		if err != nil {
			return errInvalid
		}
		switch st.State {
		case SoftwareDelivered:
			in.reset(now, SoftwareResultInitial, "")
		case SoftwareInstalled:
			if c := sw.e.ctl; c != nil {
				// Update control: the uninstall waits for its agreement.
				if !c.pend[AgreeUninstall].active {
					c.offerUninstall(now, in, forUpdate)
				}
				return nil
			}
			in.uninstall(now, forUpdate)
		default:
			return errRefused
		}
	case 10, 11:
		if st.State != SoftwareInstalled {
			return errRefused
		}
		in.activate(now, res == 10)
	}
	return nil
}

// uninstallArg reads the argument of Uninstall: none or 0 uninstalls, 1
// ("ForUpdate") prepares for an update. Both the bare argument ("1") and
// a value ("0='1'") are taken.
func uninstallArg(b []byte) (forUpdate bool, err error) {
	args, err := ParseExecArgs(b)
	if err != nil || len(args) > 1 {
		return false, errInvalid
	}
	if len(args) == 0 {
		return false, nil
	}
	a := args[0]
	v := strconv.Itoa(a.Digit)
	if a.HasValue {
		v = a.Value
	}
	switch v {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, errInvalid
}

func (in *swInstance) rec() *swPersist { return in.sw.e.st.SW[in.id] }

// pkg describes the instance's package: the one downloaded, or else the
// software installed.
func (in *swInstance) pkg() SoftwarePackage {
	st := in.rec()
	if st.Name == "" && st.Version == "" && st.SHA256 == "" && st.Installed {
		return in.installedPkg()
	}
	return SoftwarePackage{Instance: in.id, URI: st.URI, Name: st.Name, Version: st.Version, Size: st.Size, SHA256: st.SHA256}
}

// installedPkg describes the software in place.
func (in *swInstance) installedPkg() SoftwarePackage {
	st := in.rec()
	p := SoftwarePackage{Instance: in.id, Name: st.InstalledName, Version: st.InstalledVersion}
	if st.State == SoftwareInstalled {
		p.URI, p.Size, p.SHA256 = st.URI, st.Size, st.SHA256
	}
	return p
}

// setState moves the state machine, persists it and notifies observers
// of every transition (never coalesced), like Object 5's.
func (in *swInstance) setState(now time.Time, s SoftwareState, r SoftwareResult) {
	st := in.rec()
	changed := st.State != s || st.Result != r
	st.State, st.Result = s, r
	in.sw.e.store()
	if changed {
		in.sw.e.logInfo("software", "path", in.label(), "state", s.String(), "result", r.String())
		in.sw.e.obs.transition(now, lwm2m.P(9, in.id, 7), lwm2m.P(9, in.id, 9))
	}
	in.report(true)
}

// report emits EventSoftware when the status changed (always when force).
func (in *swInstance) report(force bool) {
	st := in.rec()
	p := in.pkg()
	s := SoftwareStatus{Instance: in.id, State: st.State, Result: st.Result, Active: st.Active, Bytes: in.dl.bytes, Total: st.Total,
		HTTPStatus: st.HTTPStatus, Name: p.Name, Version: p.Version}
	if s.Total == 0 && st.State != SoftwareDownloadStarted {
		s.Total = -1
	}
	if !force && s == in.reported {
		return
	}
	in.reported = s
	in.sw.e.emit(Event{Kind: EventSoftware, Path: lwm2m.P(9, in.id).String(), Software: &s})
}

// reset ends any transfer, discards the package and goes INITIAL with r;
// installed software (after an Uninstall for update) stays as it is.
func (in *swInstance) reset(now time.Time, r SoftwareResult, reason string) {
	if r == SoftwareResultInitial {
		in.sw.e.ctl.dlReset(in.dl, ResultInitial)
	}
	in.dl.stop(now)
	in.sw.h.Reset(in.id)
	st := in.rec()
	status := st.HTTPStatus
	*st = swPersist{V: swRecordVersion, State: st.State, Result: st.Result, dlRecord: dlRecord{Total: -1},
		Installed: st.Installed, InstalledName: st.InstalledName, InstalledVersion: st.InstalledVersion, Active: st.Active,
		UpdateObjects: st.UpdateObjects, User: st.User, Password: st.Password, Reason: reason}
	if r != SoftwareResultInitial {
		st.HTTPStatus = status
	}
	in.dl.clear()
	in.install = time.Time{}
	in.setState(now, SoftwareInitial, r)
}

// performInstall runs a pending Install.
func (in *swInstance) performInstall(now time.Time) {
	st := in.rec()
	if st.State != SoftwareDelivered {
		return
	}
	err := in.sw.h.Install(in.pkg())
	switch r := handlerResult(err, ResultFailed); {
	case err == nil:
		activeWas := st.Active
		st.Installed, st.InstalledName, st.InstalledVersion, st.Active, st.Reason = true, st.Name, st.Version, false, ""
		in.sw.e.logInfo("software installed", "path", in.label(), "name", st.Name, "version", st.Version)
		in.setState(now, SoftwareInstalled, SoftwareResultInstalled)
		if activeWas {
			in.sw.e.obs.transition(now, lwm2m.P(9, in.id, 12))
		}
		in.objectsChanged(now, false)
	case r == ResultIntegrityFailure || r == ResultUnsupportedPackage:
		in.sw.e.logWarn("software install refused the package", "path", in.label(), "err", err)
		in.reset(now, softwareResultOf(r), err.Error())
	default:
		in.sw.e.logWarn("software install failed", "path", in.label(), "err", err)
		st.Reason = err.Error()
		in.setState(now, SoftwareDelivered, SoftwareResultInstallFailure)
	}
}

// uninstall runs Uninstall in INSTALLED.
func (in *swInstance) uninstall(now time.Time, forUpdate bool) {
	st := in.rec()
	if err := in.sw.h.Uninstall(in.installedPkg(), forUpdate); err != nil {
		in.sw.e.logWarn("software uninstall failed", "path", in.label(), "for_update", forUpdate, "err", err)
		st.Reason = err.Error()
		in.setState(now, SoftwareInstalled, SoftwareResultUninstallFailure)
		return
	}
	in.sw.e.logInfo("software uninstalled", "path", in.label(), "for_update", forUpdate)
	if forUpdate {
		// The software stays in place until a new package replaces it;
		// the state machine is ready for that package.
		st.Reason = ""
		in.setState(now, SoftwareInitial, SoftwareResultInitial)
		in.objectsChanged(now, true)
		return
	}
	activeWas := st.Active
	st.Installed, st.InstalledName, st.InstalledVersion, st.Active = false, "", "", false
	in.reset(now, SoftwareResultInitial, "")
	if activeWas {
		in.sw.e.obs.transition(now, lwm2m.P(9, in.id, 12))
	}
	in.objectsChanged(now, true)
}

// activate runs Activate (on) or Deactivate in INSTALLED.
func (in *swInstance) activate(now time.Time, on bool) {
	st := in.rec()
	if st.Active == on {
		return
	}
	call, verb := in.sw.h.Deactivate, "deactivate"
	if on {
		call, verb = in.sw.h.Activate, "activate"
	}
	if err := call(in.installedPkg()); err != nil {
		in.sw.e.logWarn("software "+verb+" failed", "path", in.label(), "err", err)
		st.Reason = err.Error()
		in.sw.e.store()
		in.report(true)
		return
	}
	st.Active, st.Reason = on, ""
	in.sw.e.store()
	in.sw.e.logInfo("software "+verb+"d", "path", in.label())
	in.sw.e.obs.transition(now, lwm2m.P(9, in.id, 12))
	in.report(true)
	in.objectsChanged(now, true)
}

// objectsChanged follows an operation that may have changed the
// client's objects: with Update Supported Objects set, the server is told
// in a Registration Update at once (once the request is answered, when
// one is being served).
func (in *swInstance) objectsChanged(now time.Time, serving bool) {
	if !in.rec().UpdateObjects {
		return
	}
	r := in.sw.e.reg
	if serving {
		r.wantUpdat = true
		return
	}
	_ = r.triggerUpdate(now) // not registered: the next Register carries them
}

// boot runs once after the engine starts: it resumes interrupted pulls.
// An interrupted push fails (Result 52): the server restarts it.
func (sw *software) boot(now time.Time) {
	if sw.booted {
		return
	}
	sw.booted = true
	for _, id := range sw.ids() {
		in := sw.insts[id]
		st := in.rec()
		if st.State != SoftwareDownloadStarted && st.State != SoftwareDownloaded {
			continue
		}
		if st.Push {
			in.dl.fail(now, ResultConnectionLost, errors.New("push interrupted by a restart"))
			continue
		}
		if st.State == SoftwareDownloaded {
			// Cut between the last byte and the verdict: the bytes after
			// the last checkpoint are fetched again.
			in.setState(now, SoftwareDownloadStarted, SoftwareResultDownloading)
		}
		if sw.e.ctl != nil {
			sw.e.ctl.resumeDownload(now, in.dl)
			continue
		}
		in.dl.resumePull(now)
	}
}

// fire runs the instances' timers: pending installs and pulls.
func (sw *software) fire(now time.Time) {
	for _, id := range sw.ids() {
		in, ok := sw.insts[id]
		if !ok {
			continue
		}
		if !in.install.IsZero() && !now.Before(in.install) {
			in.install = time.Time{}
			in.performInstall(now)
		}
		if in.dl.pull != nil {
			in.dl.pull.fire(now)
		}
	}
}

func (sw *software) next() time.Time {
	var next time.Time
	take := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, in := range sw.insts {
		take(in.install)
		if in.dl.pull != nil {
			take(in.dl.pull.next())
		}
	}
	return next
}

// The download engine's view of an instance (dlTarget).

func (in *swInstance) record() *dlRecord   { return &in.rec().dlRecord }
func (in *swInstance) store() packageStore { return swStore{h: in.sw.h, inst: in.id} }
func (in *swInstance) limits() dlLimits    { return in.sw.cfg.limits() }
func (in *swInstance) label() string       { return "software " + lwm2m.P(9, in.id).String() }
func (in *swInstance) packagePath() string { return lwm2m.P(9, in.id, 2).String() }
func (in *swInstance) progress(force bool) { in.report(force) }
func (in *swInstance) idle() bool          { return in.rec().State == SoftwareInitial }
func (in *swInstance) downloading() bool   { return in.rec().State == SoftwareDownloadStarted }
func (in *swInstance) locked() bool        { return false }

func (in *swInstance) policy() fwpkg.Policy {
	c, st := in.sw.cfg, in.rec()
	p := fwpkg.Policy{
		TrustedKeys:      c.TrustedKeys,
		RequireSignature: c.RequireSignature,
		AllowRaw:         !c.RequireSignature,
		AllowDowngrade:   c.AllowDowngrade,
		Hardware:         c.Hardware,
		MaxSize:          c.MaxSize,
	}
	if st.Installed {
		p.CurrentVersion = st.InstalledVersion
	}
	return p
}

func (in *swInstance) started(now time.Time) {
	in.rec().Reason = ""
	in.setState(now, SoftwareDownloadStarted, SoftwareResultDownloading)
}

func (in *swInstance) received(now time.Time) {
	in.setState(now, SoftwareDownloaded, SoftwareResultInitial)
}

func (in *swInstance) delivered(now time.Time) {
	in.setState(now, SoftwareDelivered, SoftwareResultDelivered)
}

func (in *swInstance) failed(now time.Time, r UpdateResult, why error) {
	reason := ""
	if why != nil {
		reason = why.Error()
	}
	in.reset(now, softwareResultOf(r), reason)
}

func (in *swInstance) nullPackage(now time.Time) error {
	if in.rec().State == SoftwareInstalled {
		return errRefused
	}
	in.reset(now, SoftwareResultInitial, "")
	return nil
}

// swStore adapts a SoftwareHandler to one instance's packageStore.
type swStore struct {
	h    SoftwareHandler
	inst uint16
}

func (s swStore) StreamOpen(uri string, offset int64) error {
	return s.h.StreamOpen(s.inst, uri, offset)
}
func (s swStore) StreamWrite(p []byte) error { return s.h.StreamWrite(s.inst, p) }
func (s swStore) StreamFinish() error        { return s.h.StreamFinish(s.inst) }
func (s swStore) Reset()                     { s.h.Reset(s.inst) }

// backgroundSync implements backgroundSyncer for the default file
// handler; other handlers sync on the engine's goroutine.
func (s swStore) backgroundSync() (bgSync, bool) {
	if f, ok := s.h.(*FileSoftware); ok {
		return f.backgroundSync(s.inst)
	}
	return bgSync{}, false
}

// Sync implements FirmwareSyncer with the handler's SoftwareSyncer, if
// it has one.
func (s swStore) Sync() error {
	if y, ok := s.h.(SoftwareSyncer); ok {
		return y.Sync(s.inst)
	}
	return nil
}
