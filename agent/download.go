package agent

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/fwpkg"
)

// The download engine, shared by Firmware Update (/5/0, firmware.go) and
// Software Management (/9/N, software.go). A download takes a package from
// a pull (fwpull.go) or a push (fwpush.go), verifies it while it streams
// (fwpkg), hands the image bytes to the target's storage, checkpoints its
// position in the persistent state and resumes from there after a
// restart. Everything object-specific (the state machine, the result
// codes, the handler's install calls, the status event) belongs to the
// target, a dlTarget.
//
// Downloads speak the Object 5 Update Result numbers (UpdateResult): they
// are also what drivers put in FetchEnd. A target maps them onto its own
// result resource (Object 9: softwareResultOf).

// dlRecord is the persisted part of a download. Targets embed it in their
// record, so its JSON fields sit flat among theirs (fwPersist's layout is
// unchanged by the move).
type dlRecord struct {
	URI        string `json:"uri,omitempty"`
	Push       bool   `json:"push,omitempty"`
	Offset     int64  `json:"offset,omitempty"`    // package bytes checkpointed
	Validator  string `json:"validator,omitempty"` // ETag / Last-Modified
	Total      int64  `json:"total,omitempty"`
	Verifier   []byte `json:"verifier,omitempty"` // fwpkg.Verifier at Offset
	Name       string `json:"name,omitempty"`
	Version    string `json:"version,omitempty"`
	Size       int64  `json:"size,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Restarts   int    `json:"restarts,omitempty"`
}

// packageStore is the storage half of a target's handler; FirmwareHandler
// is one, a Software Management instance adapts SoftwareHandler to it. A
// store may also implement FirmwareSyncer.
type packageStore interface {
	StreamOpen(uri string, offset int64) error
	StreamWrite(p []byte) error
	StreamFinish() error
	Reset()
}

// dlLimits are a target's transfer limits, defaults applied.
type dlLimits struct {
	maxSize       int64
	connect       time.Duration
	lowSpeedLimit int64
	lowSpeedTime  time.Duration
	nstart        int
}

// maxNStart bounds FirmwareConfig.NStart.
const maxNStart = 16

// limitsOf applies the defaults of FirmwareConfig and SoftwareConfig:
// 300 s to connect, 100 B/s over 1000 s, one block request at a time.
func limitsOf(maxSize int64, connect time.Duration, lowLimit int64, lowTime time.Duration, nstart int) dlLimits {
	l := dlLimits{maxSize: maxSize, connect: connect, lowSpeedLimit: lowLimit, lowSpeedTime: lowTime, nstart: min(max(nstart, 1), maxNStart)}
	if l.connect <= 0 {
		l.connect = 300 * time.Second
	}
	if l.lowSpeedLimit <= 0 {
		l.lowSpeedLimit = 100
	}
	if l.lowSpeedTime <= 0 {
		l.lowSpeedTime = 1000 * time.Second
	}
	return l
}

// dlTarget is what a download delivers into: the Firmware Update object or
// one Software Management instance. The download calls it on the engine's
// goroutine, in the order begin → started → (received → delivered | failed).
type dlTarget interface {
	// record is the target's persisted download record.
	record() *dlRecord
	// store is where image bytes go.
	store() packageStore
	// policy is the verification policy for a new package.
	policy() fwpkg.Policy
	// limits bounds pulls.
	limits() dlLimits
	// label names the target in logs ("firmware", "software /9/1").
	label() string
	// packagePath is the Package resource a push writes ("/5/0/0").
	packagePath() string

	// started moves the state machine to downloading (and persists it).
	started(now time.Time)
	// received is called once every package byte is in, before the
	// package is verified (Object 9's DOWNLOADED).
	received(now time.Time)
	// delivered is called once the package is verified and stored; the
	// record holds its name, version, size and hash.
	delivered(now time.Time)
	// failed ends the transfer with r (the download has stopped its
	// transfers): the target discards what was stored and moves its
	// state machine.
	failed(now time.Time, r UpdateResult, why error)
	// progress reports the status; force emits it even when unchanged.
	progress(force bool)

	// idle reports whether a new transfer may start (Object 5 Idle,
	// Object 9 INITIAL).
	idle() bool
	// downloading reports whether a transfer is in progress.
	downloading() bool
	// locked reports whether package writes are refused outright (4.05),
	// as during an Object 5 update.
	locked() bool
	// nullPackage handles an empty, non-block write of the Package
	// resource: a reset (or errRefused).
	nullPackage(now time.Time) error
}

// download is the transfer state of one target: the part that is not
// persisted (the persisted part is the target's dlRecord).
type download struct {
	e *Engine
	t dlTarget

	ver      *fwpkg.Verifier
	off      int64     // package bytes stored (record().Offset is the last checkpoint)
	bytes    int64     // package bytes received in this attempt (progress)
	lastCkpt int64     // Offset at the last checkpoint
	ckptAt   time.Time // time of the last checkpoint
	shown    int64     // bytes at the last progress report
	pull     *dlPull   // the pull in progress
	push     *dlPush   // the push in progress

	// A checkpoint whose storage sync runs on the driver's goroutine
	// (backgroundSyncer): syncing is its job ID (0: none), pending the
	// position it will persist once the sync reports success.
	syncing uint64
	pending dlCheckpoint
	// vbufs hold saved verifier states (saveVerifier): the record's, a
	// pending checkpoint's and the next one's.
	vbufs [3][]byte
}

// saveVerifier returns the verifier's saved state in a buffer that
// neither the record nor the pending checkpoint holds, so checkpoints
// reuse three buffers instead of allocating one each.
func (d *download) saveVerifier() ([]byte, error) {
	held := func(b, x []byte) bool { return cap(b) > 0 && cap(x) > 0 && &b[:1][0] == &x[:1][0] }
	rec := d.t.record()
	for i, b := range d.vbufs {
		if held(b, rec.Verifier) || held(b, d.pending.verifier) {
			continue
		}
		vb, err := d.ver.AppendBinary(b[:0])
		if err != nil {
			return nil, err
		}
		d.vbufs[i] = vb
		return vb, nil
	}
	return d.ver.MarshalBinary() // not reached: three buffers, two holders
}

// dlCheckpoint is a download position waiting for its storage sync.
type dlCheckpoint struct {
	off      int64
	verifier []byte
	ver      *fwpkg.Verifier // the transfer's verifier: a new one means a new stream
}

// backgroundSyncer is implemented by stores whose sync may run on another
// goroutine while writes go on (FileFirmware, FileSoftware: fsync of an
// *os.File covers every write made before it started). backgroundSync
// returns the sync to run, bound to the current stream; ok is false when
// there is nothing to sync. Drivers that run such syncs set
// Config.bgSync; the engine then keeps downloading while a checkpoint's
// fsync is under way and persists the checkpoint when the sync reports
// back (syncDone), instead of stalling the transfer for every fsync.
type backgroundSyncer interface {
	backgroundSync() (s bgSync, ok bool)
}

// bgSync is a storage sync that may run on another goroutine while writes
// go on: it makes the first n bytes written to f durable. It is a value,
// not a closure, so that a checkpoint allocates nothing.
type bgSync struct {
	f interface{ syncTo(n int64) error }
	n int64
}

func (s bgSync) run() error { return s.f.syncTo(s.n) }

// syncJob is a storage sync for the driver to run off the engine's
// goroutine and report with Engine.syncDone.
type syncJob struct {
	id   uint64
	sync bgSync
}

// run runs the sync.
func (j syncJob) run() error { return j.sync.run() }

// Checkpoint policy: the download position is persisted at least every
// 64 KiB or 30 s, and every 32 KiB when the data comes slower than 32 KiB
// per 20 ms. A checkpoint costs a storage sync and a state write; a crash
// costs what came after the last one. On a slow link 32 KiB halves that
// loss; on a fast one the loss is milliseconds of transfer either way and
// 64 KiB halves the syncs.
const (
	fwCheckpointBytes = 64 << 10
	fwCheckpointSlow  = 32 << 10
	fwCheckpointGap   = 20 * time.Millisecond
	fwCheckpointEvery = 30 * time.Second
	// progressStep is the fewest bytes a progress event waits for. A
	// pull of known size reports at most every percent of it, one of
	// unknown size every sixteenth of what has come so far, so a host
	// sees about a hundred events whatever the image's size.
	progressStep = 16 << 10
	// maxPackageURI bounds a Package URI (0..255 in the object
	// definitions of /5/0/1 and /9/x/3).
	maxPackageURI = 255
	// fwMaxRestarts breaks a loop of resumes that keep failing (B57).
	fwMaxRestarts = 8
)

// downloads returns every target's download: firmware first, then the
// Software Management instances in ID order.
func (e *Engine) downloads() []*download {
	var ds []*download
	if e.fw != nil {
		ds = append(ds, e.fw.dl)
	}
	if e.sw != nil {
		for _, id := range e.sw.ids() {
			ds = append(ds, e.sw.insts[id].dl)
		}
	}
	return ds
}

// findDownload returns the first download, in the order of downloads, for
// which match is true, nil when none: lookups on the data path use it
// rather than downloads, which allocates its slice.
func (e *Engine) findDownload(match func(*download) bool) *download {
	if e.fw != nil && match(e.fw.dl) {
		return e.fw.dl
	}
	if e.sw == nil {
		return nil
	}
	// The lowest instance that matches, as downloads would find it,
	// whatever the map's order.
	var found *swInstance
	for id, in := range e.sw.insts {
		if (found == nil || id < found.id) && match(in.dl) {
			found = in
		}
	}
	if found == nil {
		return nil
	}
	return found.dl
}

// pullFrom reports whether a pull in progress talks to peer.
func (e *Engine) pullFrom(peer string) bool {
	from := func(d *download) bool { return d.pull != nil && !d.pull.http && d.pull.peer == peer }
	if e.fw != nil && from(e.fw.dl) {
		return true
	}
	if e.sw != nil {
		for _, in := range e.sw.insts {
			if from(in.dl) {
				return true
			}
		}
	}
	return false
}

// pullResponse reports whether b is a response (or empty ACK/RST would
// not count: those carry no token) to the request a CoAP pull from peer
// has in flight, by its header and token alone, before decoding.
func (e *Engine) pullResponse(peer string, b []byte) bool {
	if len(b) < 4 || b[1]>>5 < 2 { // a request, or an empty message
		return false
	}
	tkl := int(b[0] & 0x0f)
	if tkl == 0 || tkl > 8 || len(b) < 4+tkl {
		return false
	}
	k := tokenKey(b[4 : 4+tkl])
	return e.findDownload(func(d *download) bool {
		p := d.pull
		if p == nil || p.http || p.peer != peer {
			return false
		}
		if p.key == k && k != (xkey{}) {
			return true
		}
		for _, pb := range p.win {
			if pb.key == k {
				return true
			}
		}
		return false
	}) != nil
}

// packageWrite returns the download a write of a Package resource (/5/0/0
// or /9/x/2) streams into, or nil when m is no such write.
func (e *Engine) packageWrite(m *message.Message) *download {
	if m.Code != codes.PUT && m.Code != codes.POST {
		return nil
	}
	var segs []string
	for _, o := range m.Options {
		if o.ID == message.URIPath {
			segs = append(segs, string(o.Value))
		}
	}
	if len(segs) != 3 {
		return nil
	}
	switch {
	case segs[0] == "5" && segs[1] == "0" && segs[2] == "0" && e.fw != nil:
		return e.fw.dl
	case segs[0] == "9" && segs[2] == "2" && e.sw != nil:
		id, err := strconv.ParseUint(segs[1], 10, 16)
		if err != nil || strconv.FormatUint(id, 10) != segs[1] {
			return nil
		}
		if in, ok := e.sw.insts[uint16(id)]; ok {
			return in.dl
		}
	}
	return nil
}

// begin starts a new transfer: a fresh record, verifier and stream, and
// the target's state machine downloading.
func (d *download) begin(now time.Time, uri string, push bool) error {
	s := d.t.store()
	s.Reset()
	*d.t.record() = dlRecord{URI: uri, Push: push, Total: -1}
	d.ver = fwpkg.NewVerifier(d.t.policy())
	d.off, d.bytes, d.shown, d.lastCkpt, d.ckptAt, d.syncing = 0, 0, 0, 0, now, 0
	if err := s.StreamOpen(uri, 0); err != nil {
		return err
	}
	d.t.started(now)
	d.e.ctl.dlStarted(d)
	return nil
}

// restartStream drops what was stored and starts the image over (the
// server's representation changed, or a resume was impossible).
func (d *download) restartStream(now time.Time) error {
	rec := d.t.record()
	rec.Restarts++
	if rec.Restarts > fwMaxRestarts {
		return fmt.Errorf("%w: restarted %d times", ErrFirmwareFailed, rec.Restarts)
	}
	s := d.t.store()
	s.Reset()
	d.ver = fwpkg.NewVerifier(d.t.policy())
	rec.Offset, rec.Verifier, rec.Validator, rec.Total = 0, nil, "", -1
	d.off, d.bytes, d.shown, d.lastCkpt, d.ckptAt, d.syncing = 0, 0, 0, 0, now, 0
	d.e.store()
	return s.StreamOpen(rec.URI, 0)
}

// data takes the next package bytes at the current offset. It returns
// the Update Result to fail with, or ResultInitial.
func (d *download) data(now time.Time, p []byte) (UpdateResult, error) {
	rec := d.t.record()
	img, err := d.ver.Write(p)
	if err != nil {
		if _, ok := d.ver.Manifest(); !ok && d.t.policy().RequireSignature {
			// Not even a package header where a signed one is required:
			// fail closed, as an integrity failure.
			return ResultIntegrityFailure, err
		}
		return verifyResult(err), err
	}
	if len(img) > 0 {
		if err := d.t.store().StreamWrite(img); err != nil {
			return handlerResult(err, ResultNotEnoughSpace), err
		}
	}
	d.off += int64(len(p))
	d.bytes += int64(len(p))
	if m, ok := d.ver.Manifest(); ok && rec.Version == "" {
		rec.Name, rec.Version = m.Name, m.Version
	}
	since, gap := d.off-d.lastCkpt, now.Sub(d.ckptAt)
	if since >= fwCheckpointBytes || (since >= fwCheckpointSlow && gap >= fwCheckpointGap) || gap >= fwCheckpointEvery {
		if !d.checkpointBehind(now) {
			if err := d.checkpoint(now); err != nil {
				return handlerResult(err, ResultNotEnoughSpace), err
			}
		}
	}
	if d.bytes-d.shown >= d.progressStep(rec.Total) {
		// Not every block: a host prints or forwards each event.
		d.shown = d.bytes
		d.t.progress(false)
		d.e.ctl.dlProgress(d)
	}
	return ResultInitial, nil
}

// progressStep is how many bytes the next progress event waits for when
// the package is total bytes long (≤ 0: unknown).
func (d *download) progressStep(total int64) int64 {
	if total > 0 {
		return max(progressStep, total/100)
	}
	return max(progressStep, d.bytes/16)
}

// checkpoint persists the download position after syncing the storage,
// so the stored offset never runs ahead of the stored bytes.
func (d *download) checkpoint(now time.Time) error {
	rec := d.t.record()
	if s, ok := d.t.store().(FirmwareSyncer); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("sync %s storage: %w", d.t.label(), err)
		}
	}
	vb, err := d.saveVerifier()
	if err != nil {
		return fmt.Errorf("save verifier: %w", err)
	}
	rec.Verifier, rec.Offset = vb, d.off
	d.lastCkpt, d.ckptAt = d.off, now
	d.syncing = 0 // this checkpoint covers a sync still under way
	d.e.storePosition()
	return nil
}

// checkpointBehind starts a checkpoint whose storage sync runs on the
// driver's goroutine, when the driver and the store can do that. It
// reports false when the caller must checkpoint synchronously. While a
// sync is under way it starts nothing and reports true: the next data
// tries again, so no checkpoint is lost, only postponed by the sync.
func (d *download) checkpointBehind(now time.Time) bool {
	if !d.e.cfg.bgSync {
		return false
	}
	bs, ok := d.t.store().(backgroundSyncer)
	if !ok {
		return false
	}
	if d.syncing != 0 {
		return true
	}
	sync, ok := bs.backgroundSync()
	if !ok {
		return false
	}
	vb, err := d.saveVerifier()
	if err != nil {
		return false // the synchronous path reports it
	}
	d.e.syncSeq++
	d.syncing = d.e.syncSeq
	d.pending = dlCheckpoint{off: d.off, verifier: vb, ver: d.ver}
	d.lastCkpt, d.ckptAt = d.off, now
	d.e.syncs = append(d.e.syncs, syncJob{id: d.syncing, sync: sync})
	return true
}

// pollSync returns the next storage sync for the driver to run.
func (e *Engine) pollSync() (syncJob, bool) {
	if len(e.syncs) == 0 {
		return syncJob{}, false
	}
	j := e.syncs[0]
	n := copy(e.syncs, e.syncs[1:]) // the array is kept for the next ones
	e.syncs[n] = syncJob{}
	e.syncs = e.syncs[:n]
	return j, true
}

// syncDone takes the outcome of a storage sync from pollSync. A sync of a
// transfer that has since ended, restarted or checkpointed synchronously
// is ignored; a failed one fails its transfer as a failed synchronous
// checkpoint does.
func (e *Engine) syncDone(now time.Time, id uint64, err error) {
	e.now = now
	d := e.syncing(id)
	if d == nil {
		return
	}
	d.syncing = 0
	if d.ver == nil || d.ver != d.pending.ver {
		return
	}
	if err != nil {
		err = fmt.Errorf("sync %s storage: %w", d.t.label(), err)
		d.fail(now, handlerResult(err, ResultNotEnoughSpace), err)
		return
	}
	rec := d.t.record()
	if d.pending.off <= rec.Offset || d.pending.off > d.off {
		return
	}
	rec.Verifier, rec.Offset = d.pending.verifier, d.pending.off
	d.e.storePosition()
}

// syncing returns the download whose background sync id is, nil when
// none (0 is no sync).
func (e *Engine) syncing(id uint64) *download {
	if id == 0 {
		return nil
	}
	return e.findDownload(func(d *download) bool { return d.syncing == id })
}

// complete verifies the finished package and delivers it to the target.
func (d *download) complete(now time.Time) {
	rec := d.t.record()
	d.syncing = 0
	d.t.received(now)
	if err := d.ver.Finish(); err != nil {
		d.fail(now, verifyResult(err), err)
		return
	}
	if err := d.t.store().StreamFinish(); err != nil {
		d.fail(now, handlerResult(err, ResultIntegrityFailure), err)
		return
	}
	sum := d.ver.ImageSHA256()
	rec.SHA256 = fmt.Sprintf("%x", sum[:])
	rec.Size = d.ver.ImageOffset()
	if m, ok := d.ver.Manifest(); ok {
		rec.Name, rec.Version = m.Name, m.Version
	}
	rec.Verifier, rec.Restarts, rec.Offset = nil, 0, d.off
	if rec.Total < 0 {
		rec.Total = d.off
	}
	signed := d.ver.Signed()
	d.ver = nil
	pull := d.pull
	d.pull, d.push = nil, nil
	d.e.logInfo(d.t.label()+" downloaded", "bytes", d.off, "version", rec.Version, "sha256", rec.SHA256)
	d.t.delivered(now)
	d.e.ctl.dlComplete(d, pull != nil && pull.http, signed)
}

// whole takes a complete package written in one piece (a Package value in
// a Create or an instance Write).
func (d *download) whole(now time.Time, p []byte) {
	d.stop(now)
	if err := d.begin(now, "", true); err != nil {
		d.fail(now, handlerResult(err, ResultNotEnoughSpace), err)
		return
	}
	if r, err := d.data(now, p); err != nil {
		d.fail(now, r, err)
		return
	}
	d.complete(now)
}

// fail ends a transfer with r.
func (d *download) fail(now time.Time, r UpdateResult, why error) {
	d.e.logWarn(d.t.label()+" download failed", "result", r.String(), "err", why)
	d.stop(now)
	d.e.ctl.dlFailed(d, r, why)
	d.t.failed(now, r, why)
}

// stop abandons any transfer.
func (d *download) stop(now time.Time) {
	d.syncing = 0 // a resume reopens the stream at the stored checkpoint
	if d.pull != nil {
		d.pull.stop(now)
		d.pull = nil
	}
	d.push = nil
}

// clear forgets the transfer state (after the target discarded its
// package).
func (d *download) clear() {
	d.ver, d.off, d.bytes, d.shown, d.syncing = nil, 0, 0, 0, 0
}

// verifyResult maps a verification error to its Update Result.
func verifyResult(err error) UpdateResult {
	switch {
	case errors.Is(err, fwpkg.ErrTooLarge):
		return ResultNotEnoughSpace
	case errors.Is(err, fwpkg.ErrUnsupported):
		return ResultUnsupportedPackage
	}
	return ResultIntegrityFailure
}

// handlerResult maps a handler error to its Update Result, def when the
// handler did not say. Software handlers' errors map to the same results
// (and on to Object 9's with softwareResultOf).
func handlerResult(err error, def UpdateResult) UpdateResult {
	for _, m := range []struct {
		err error
		r   UpdateResult
	}{
		{ErrFirmwareNoSpace, ResultNotEnoughSpace},
		{ErrFirmwareNoMemory, ResultOutOfMemory},
		{ErrFirmwareIntegrity, ResultIntegrityFailure},
		{ErrFirmwareUnsupported, ResultUnsupportedPackage},
		{ErrFirmwareDeferred, ResultDeferred},
		{ErrFirmwareFailed, ResultFailed},
		{ErrSoftwareNoSpace, ResultNotEnoughSpace},
		{ErrSoftwareNoMemory, ResultOutOfMemory},
		{ErrSoftwareIntegrity, ResultIntegrityFailure},
		{ErrSoftwareUnsupported, ResultUnsupportedPackage},
	} {
		if errors.Is(err, m.err) {
			return m.r
		}
	}
	return def
}

// checkPackageURI validates a Package URI: Result 7 for one that does not
// parse, 9 for a scheme the agent cannot fetch.
func (e *Engine) checkPackageURI(s string) (*url.URL, UpdateResult) {
	if len(s) > maxPackageURI {
		// Longer than a Package URI may be (0..255, B35): taken, and
		// reported as an invalid URI.
		return nil, ResultInvalidURI
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" || strings.ContainsAny(s, " \t\r\n\x00") {
		if err == nil && u.Scheme != "" && !e.fetchScheme(u.Scheme) {
			return nil, ResultUnsupportedProtocol
		}
		return nil, ResultInvalidURI
	}
	if !e.fetchScheme(u.Scheme) {
		return nil, ResultUnsupportedProtocol
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return nil, ResultInvalidURI
		}
	}
	if h := u.Hostname(); h == "" || len(h) > 255 {
		return nil, ResultInvalidURI
	}
	return u, ResultInitial
}

// fetchScheme reports whether the engine (with its driver) pulls over
// scheme s.
func (e *Engine) fetchScheme(s string) bool {
	switch strings.ToLower(s) {
	case "coap":
		return true
	case "coaps":
		carried := e.cfg.dtlsPull || e.cfg.dtls && !e.cfg.dtlsServerOnly
		return carried && (e.cfg.fwPSK() != nil || e.cfg.securityHooks())
	case "http", "https":
		return e.cfg.httpFetch
	}
	return false
}

// DTLSPeerPrefix marks the peer keys of datagrams that travel over DTLS
// to a host other than the LwM2M server (a coaps:// Package URI): the
// native driver opens a DTLS-PSK session to "host:port" for them with the
// firmware credential (Config.FirmwarePSKIdentity/Key, else the server's
// PSK); drivers that carry DTLS themselves do it with PullLinks.
const DTLSPeerPrefix = "dtls/"
