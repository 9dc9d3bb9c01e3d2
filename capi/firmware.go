//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/fwpkg"
)

// Firmware update (Object 5) for C hosts: avc_fw_handlers_t is wrapped as
// an agent.FirmwareHandler that the next session's agent gets in
// agent.Config.Firmware.Handler; EventFirmware is delivered to the
// avc_fw_status_fn on the dispatcher thread.

// The C enums equal the agent's values; the array lengths below fail to
// compile if they drift.
var (
	_ [C.AVC_FW_STATE_IDLE - agent.FirmwareIdle]struct{}
	_ [agent.FirmwareIdle - C.AVC_FW_STATE_IDLE]struct{}
	_ [C.AVC_FW_STATE_DOWNLOADING - agent.FirmwareDownloading]struct{}
	_ [agent.FirmwareDownloading - C.AVC_FW_STATE_DOWNLOADING]struct{}
	_ [C.AVC_FW_STATE_DOWNLOADED - agent.FirmwareDownloaded]struct{}
	_ [agent.FirmwareDownloaded - C.AVC_FW_STATE_DOWNLOADED]struct{}
	_ [C.AVC_FW_STATE_UPDATING - agent.FirmwareUpdating]struct{}
	_ [agent.FirmwareUpdating - C.AVC_FW_STATE_UPDATING]struct{}

	_ [C.AVC_FW_RESULT_INITIAL - agent.ResultInitial]struct{}
	_ [agent.ResultInitial - C.AVC_FW_RESULT_INITIAL]struct{}
	_ [C.AVC_FW_RESULT_SUCCESS - agent.ResultSuccess]struct{}
	_ [agent.ResultSuccess - C.AVC_FW_RESULT_SUCCESS]struct{}
	_ [C.AVC_FW_RESULT_NOT_ENOUGH_SPACE - agent.ResultNotEnoughSpace]struct{}
	_ [agent.ResultNotEnoughSpace - C.AVC_FW_RESULT_NOT_ENOUGH_SPACE]struct{}
	_ [C.AVC_FW_RESULT_OUT_OF_MEMORY - agent.ResultOutOfMemory]struct{}
	_ [agent.ResultOutOfMemory - C.AVC_FW_RESULT_OUT_OF_MEMORY]struct{}
	_ [C.AVC_FW_RESULT_CONNECTION_LOST - agent.ResultConnectionLost]struct{}
	_ [agent.ResultConnectionLost - C.AVC_FW_RESULT_CONNECTION_LOST]struct{}
	_ [C.AVC_FW_RESULT_INTEGRITY_FAILURE - agent.ResultIntegrityFailure]struct{}
	_ [agent.ResultIntegrityFailure - C.AVC_FW_RESULT_INTEGRITY_FAILURE]struct{}
	_ [C.AVC_FW_RESULT_UNSUPPORTED_PACKAGE_TYPE - agent.ResultUnsupportedPackage]struct{}
	_ [agent.ResultUnsupportedPackage - C.AVC_FW_RESULT_UNSUPPORTED_PACKAGE_TYPE]struct{}
	_ [C.AVC_FW_RESULT_INVALID_URI - agent.ResultInvalidURI]struct{}
	_ [agent.ResultInvalidURI - C.AVC_FW_RESULT_INVALID_URI]struct{}
	_ [C.AVC_FW_RESULT_FAILED - agent.ResultFailed]struct{}
	_ [agent.ResultFailed - C.AVC_FW_RESULT_FAILED]struct{}
	_ [C.AVC_FW_RESULT_UNSUPPORTED_PROTOCOL - agent.ResultUnsupportedProtocol]struct{}
	_ [agent.ResultUnsupportedProtocol - C.AVC_FW_RESULT_UNSUPPORTED_PROTOCOL]struct{}
	_ [C.AVC_FW_RESULT_UPDATE_CANCELLED - agent.ResultCancelled]struct{}
	_ [agent.ResultCancelled - C.AVC_FW_RESULT_UPDATE_CANCELLED]struct{}
	_ [C.AVC_FW_RESULT_DEFERRED - agent.ResultDeferred]struct{}
	_ [agent.ResultDeferred - C.AVC_FW_RESULT_DEFERRED]struct{}

	// Handler errors are the negated results.
	_ [C.AVC_FW_ERR_NOT_ENOUGH_SPACE + agent.ResultNotEnoughSpace]struct{}
	_ [-agent.ResultNotEnoughSpace - C.AVC_FW_ERR_NOT_ENOUGH_SPACE]struct{}
	_ [C.AVC_FW_ERR_OUT_OF_MEMORY + agent.ResultOutOfMemory]struct{}
	_ [-agent.ResultOutOfMemory - C.AVC_FW_ERR_OUT_OF_MEMORY]struct{}
	_ [C.AVC_FW_ERR_INTEGRITY_FAILURE + agent.ResultIntegrityFailure]struct{}
	_ [-agent.ResultIntegrityFailure - C.AVC_FW_ERR_INTEGRITY_FAILURE]struct{}
	_ [C.AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE + agent.ResultUnsupportedPackage]struct{}
	_ [-agent.ResultUnsupportedPackage - C.AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE]struct{}
	_ [C.AVC_FW_ERR_DEFERRED + agent.ResultDeferred]struct{}
	_ [-agent.ResultDeferred - C.AVC_FW_ERR_DEFERRED]struct{}
)

// fwHandlerErrors maps the avc_fw_error_t values to the agent's errors.
var fwHandlerErrors = map[int]error{
	int(C.AVC_FW_ERR_NOT_ENOUGH_SPACE):         agent.ErrFirmwareNoSpace,
	int(C.AVC_FW_ERR_OUT_OF_MEMORY):            agent.ErrFirmwareNoMemory,
	int(C.AVC_FW_ERR_INTEGRITY_FAILURE):        agent.ErrFirmwareIntegrity,
	int(C.AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE): agent.ErrFirmwareUnsupported,
	int(C.AVC_FW_ERR_DEFERRED):                 agent.ErrFirmwareDeferred,
}

// errFirmwareHandler is wrapped by every failure a C handler returns
// without one of the avc_fw_error_t values: the call's default result.
var errFirmwareHandler = errors.New("firmware handler failed")

// fwError maps a handler's return code to the error the agent expects.
func fwError(call string, rc int) error {
	if rc == 0 {
		return nil
	}
	if err, ok := fwHandlerErrors[rc]; ok {
		return fmt.Errorf("%s returned %d: %w", call, rc, err)
	}
	return fmt.Errorf("%s returned %d: %w", call, rc, errFirmwareHandler)
}

// fwMissing names the mandatory callbacks h lacks.
func fwMissing(h *C.avc_fw_handlers_t) []string {
	var missing []string
	for _, m := range []struct {
		name string
		set  bool
	}{
		{"stream_open", h.stream_open != nil},
		{"stream_write", h.stream_write != nil},
		{"stream_finish", h.stream_finish != nil},
		{"reset", h.reset != nil},
		{"perform_upgrade", h.perform_upgrade != nil},
		{"booted", h.booted != nil},
	} {
		if !m.set {
			missing = append(missing, m.name)
		}
	}
	return missing
}

// cFirmware is an avc_fw_handlers_t as an agent.FirmwareHandler. The agent
// calls it from its loop goroutine, one call at a time; each call runs the
// C callback synchronously on that goroutine's thread, with no lock held.
type cFirmware struct {
	h    C.avc_fw_handlers_t // a copy of the host's struct: C function pointers only
	user C.uintptr_t
}

// cFirmwareSyncer is a cFirmware whose sync callback is set.
type cFirmwareSyncer struct{ *cFirmware }

// cFirmwareSecure is a cFirmware whose get_security_config is set: only
// then does the agent offer coaps without a configured PSK.
type cFirmwareSecure struct{ *cFirmware }

// cFirmwareSyncSecure has both sync and get_security_config.
type cFirmwareSyncSecure struct{ *cFirmware }

var (
	_ agent.FirmwareHandler          = (*cFirmware)(nil)
	_ agent.FirmwareNamer            = (*cFirmware)(nil)
	_ agent.FirmwareTxParamsProvider = (*cFirmware)(nil)
	_ agent.FirmwareRequestTimeouter = (*cFirmware)(nil)
	_ agent.FirmwareSyncer           = cFirmwareSyncer{}
	_ agent.FirmwareSecurityProvider = cFirmwareSecure{}
	_ agent.FirmwareSyncer           = cFirmwareSyncSecure{}
	_ agent.FirmwareSecurityProvider = cFirmwareSyncSecure{}
)

// newCFirmware copies *h. It returns the handler the agent gets: one that
// implements agent.FirmwareSyncer when h has sync and
// agent.FirmwareSecurityProvider when h has get_security_config. The
// other optional callbacks answer "none" when NULL.
func newCFirmware(h *C.avc_fw_handlers_t, user C.uintptr_t) agent.FirmwareHandler {
	f := &cFirmware{h: *h, user: user}
	switch sync, sec := f.h.sync != nil, f.h.get_security_config != nil; {
	case sync && sec:
		return cFirmwareSyncSecure{f}
	case sync:
		return cFirmwareSyncer{f}
	case sec:
		return cFirmwareSecure{f}
	}
	return f
}

// StreamOpen implements agent.FirmwareHandler.
func (f *cFirmware) StreamOpen(uri string, offset int64) error {
	cu := C.CString(uri)
	defer C.free(unsafe.Pointer(cu))
	var rc C.int
	fwCall(func() { rc = C.avc_call_fw_stream_open_(&f.h, f.user, cu, C.int64_t(offset)) })
	return fwError("stream_open", int(rc))
}

// StreamWrite implements agent.FirmwareHandler.
func (f *cFirmware) StreamWrite(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	var rc C.int
	// p is Go memory without Go pointers, borrowed for the call only.
	fwCall(func() {
		rc = C.avc_call_fw_stream_write_(&f.h, f.user, unsafe.Pointer(&p[0]), C.size_t(len(p)))
	})
	return fwError("stream_write", int(rc))
}

// StreamFinish implements agent.FirmwareHandler.
func (f *cFirmware) StreamFinish() error {
	var rc C.int
	fwCall(func() { rc = C.avc_call_fw_stream_finish_(&f.h, f.user) })
	return fwError("stream_finish", int(rc))
}

// Reset implements agent.FirmwareHandler.
func (f *cFirmware) Reset() {
	fwCall(func() { C.avc_call_fw_reset_(&f.h, f.user) })
}

// cPackage is a FirmwarePackage's strings as C copies.
type cPackage struct {
	uri, name, version, sha256 *C.char
	size                       C.int64_t
}

func newCPackage(pkg agent.FirmwarePackage) cPackage {
	return cPackage{
		uri: C.CString(pkg.URI), name: C.CString(pkg.Name), version: C.CString(pkg.Version),
		sha256: C.CString(pkg.SHA256), size: C.int64_t(pkg.Size),
	}
}

func (p cPackage) free() {
	for _, s := range []*C.char{p.uri, p.name, p.version, p.sha256} {
		C.free(unsafe.Pointer(s))
	}
}

// PerformUpgrade implements agent.FirmwareHandler.
func (f *cFirmware) PerformUpgrade(pkg agent.FirmwarePackage) error {
	cp := newCPackage(pkg)
	defer cp.free()
	var rc C.int
	fwCall(func() {
		rc = C.avc_call_fw_perform_upgrade_(&f.h, f.user, cp.uri, cp.name, cp.version, cp.sha256, cp.size)
	})
	return fwError("perform_upgrade", int(rc))
}

// Booted implements agent.FirmwareHandler: booted returns 1 when pkg is
// installed; anything else means it is not.
func (f *cFirmware) Booted(pkg agent.FirmwarePackage) (string, bool) {
	cp := newCPackage(pkg)
	defer cp.free()
	buf := (*C.char)(C.calloc(C.AVC_FW_VERSION_MAX, 1))
	if buf == nil {
		logger.Error("firmware handler: booted: out of memory")
		return "", false
	}
	defer C.free(unsafe.Pointer(buf))
	var rc C.int
	fwCall(func() {
		rc = C.avc_call_fw_booted_(&f.h, f.user, cp.uri, cp.name, cp.version, cp.sha256, cp.size, buf, C.AVC_FW_VERSION_MAX)
	})
	// Terminated whatever the handler wrote.
	unsafe.Slice((*byte)(unsafe.Pointer(buf)), C.AVC_FW_VERSION_MAX)[C.AVC_FW_VERSION_MAX-1] = 0
	running := C.GoString(buf)
	if rc != 1 && rc != 0 {
		logger.Warn("firmware handler: booted failed; the package counts as not installed", "rc", int(rc))
	}
	return running, rc == 1
}

// Sync implements agent.FirmwareSyncer.
func (f cFirmwareSyncer) Sync() error {
	var rc C.int
	fwCall(func() { rc = C.avc_call_fw_sync_(&f.h, f.user) })
	return fwError("sync", int(rc))
}

// Sync implements agent.FirmwareSyncer.
func (f cFirmwareSyncSecure) Sync() error { return cFirmwareSyncer(f).Sync() }

// SecurityConfig implements agent.FirmwareSecurityProvider.
func (f cFirmwareSyncSecure) SecurityConfig(uri string) (*agent.FirmwareSecurity, error) {
	return cFirmwareSecure(f).SecurityConfig(uri)
}

// fwText copies a string a get_name or get_version callback returned.
func fwText(call string, s *C.char) string {
	if s == nil {
		return ""
	}
	// Read at most one byte past the limit: a longer string is the
	// agent's to refuse, and an unterminated one is not read further.
	n := 0
	p := unsafe.Slice((*byte)(unsafe.Pointer(s)), 257)
	for n < len(p) && p[n] != 0 {
		n++
	}
	if n == len(p) {
		logger.Warn("firmware handler: " + call + " returned more than 256 bytes; ignored")
		return ""
	}
	return string(p[:n])
}

// PackageName implements agent.FirmwareNamer with get_name.
func (f *cFirmware) PackageName() string {
	if f.h.get_name == nil {
		return ""
	}
	var s *C.char
	fwCall(func() { s = C.avc_call_fw_get_name_(&f.h, f.user) })
	return fwText("get_name", s)
}

// PackageVersion implements agent.FirmwareNamer with get_version.
func (f *cFirmware) PackageVersion() string {
	if f.h.get_version == nil {
		return ""
	}
	var s *C.char
	fwCall(func() { s = C.avc_call_fw_get_version_(&f.h, f.user) })
	return fwText("get_version", s)
}

// SecurityConfig implements agent.FirmwareSecurityProvider with
// get_security_config; the pointers it fills in are copied at once.
func (f cFirmwareSecure) SecurityConfig(uri string) (*agent.FirmwareSecurity, error) {
	cu := C.CString(uri)
	defer C.free(unsafe.Pointer(cu))
	out := (*C.avc_fw_security_config_t)(C.calloc(1, C.sizeof_avc_fw_security_config_t))
	if out == nil {
		return nil, fmt.Errorf("get_security_config: %w", agent.ErrFirmwareNoMemory)
	}
	defer C.free(unsafe.Pointer(out))
	var rc C.int
	fwCall(func() { rc = C.avc_call_fw_get_security_config_(&f.h, f.user, out, cu) })
	if err := fwError("get_security_config", int(rc)); err != nil {
		return nil, err
	}
	sec := &agent.FirmwareSecurity{}
	if out.psk_identity != nil {
		sec.PSKIdentity = C.GoString(out.psk_identity)
	}
	if out.psk_key != nil && out.psk_key_len > 0 {
		if out.psk_key_len > 1<<16 {
			return nil, errors.New("get_security_config: psk_key_len over 64 KiB")
		}
		sec.PSKKey = C.GoBytes(out.psk_key, C.int(out.psk_key_len))
	}
	for _, m := range []struct {
		p   *C.char
		dst *[]byte
	}{{out.ca_pem, &sec.RootCAs}, {out.client_cert_pem, &sec.ClientCert}, {out.client_key_pem, &sec.ClientKey}} {
		if m.p != nil {
			*m.dst = []byte(C.GoString(m.p))
		}
	}
	if sec.PSKIdentity == "" && len(sec.PSKKey) == 0 && len(sec.RootCAs) == 0 && len(sec.ClientCert) == 0 && len(sec.ClientKey) == 0 {
		return nil, nil // left zeroed: the configuration
	}
	return sec, nil
}

// CoAPTxParams implements agent.FirmwareTxParamsProvider with
// get_coap_tx_params (NULL: the defaults).
func (f *cFirmware) CoAPTxParams(uri string) (agent.CoAPTxParams, bool) {
	if f.h.get_coap_tx_params == nil {
		return agent.CoAPTxParams{}, false
	}
	cu := C.CString(uri)
	defer C.free(unsafe.Pointer(cu))
	out := (*C.avc_fw_coap_tx_params_t)(C.calloc(1, C.sizeof_avc_fw_coap_tx_params_t))
	if out == nil {
		return agent.CoAPTxParams{}, false
	}
	defer C.free(unsafe.Pointer(out))
	out.ack_timeout_ms = C.uint32_t(agent.AckTimeout / time.Millisecond)
	out.ack_random_factor = C.double(agent.AckRandomFactor)
	out.max_retransmit = C.uint32_t(agent.MaxRetransmit)
	var rc C.int
	fwCall(func() { rc = C.avc_call_fw_get_coap_tx_params_(&f.h, f.user, out, cu) })
	if rc != 0 {
		return agent.CoAPTxParams{}, false
	}
	return agent.CoAPTxParams{
		AckTimeout:      time.Duration(out.ack_timeout_ms) * time.Millisecond,
		AckRandomFactor: float64(out.ack_random_factor),
		MaxRetransmit:   int(min(out.max_retransmit, 1<<20)),
	}, true
}

// RequestTimeout implements agent.FirmwareRequestTimeouter with
// get_tcp_request_timeout (NULL: none).
func (f *cFirmware) RequestTimeout(uri string) time.Duration {
	if f.h.get_tcp_request_timeout == nil {
		return 0
	}
	cu := C.CString(uri)
	defer C.free(unsafe.Pointer(cu))
	var ms C.int64_t
	fwCall(func() { ms = C.avc_call_fw_get_tcp_request_timeout_(&f.h, f.user, cu) })
	if ms <= 0 {
		return 0
	}
	return time.Duration(min(int64(ms), int64(24*time.Hour/time.Millisecond))) * time.Millisecond
}

// fwThreads counts, per OS thread, the firmware handler calls running on
// it, so that exports called from inside a handler can refuse what would
// deadlock: waiting for the session whose loop is running the handler.
var fwThreads struct {
	mu sync.Mutex
	m  map[C.pthread_t]int
}

// fwCall runs call (a C handler call) with the goroutine locked to its
// thread and the thread marked as inside a firmware handler.
func fwCall(call func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t := C.pthread_self()
	fwThreads.mu.Lock()
	if fwThreads.m == nil {
		fwThreads.m = make(map[C.pthread_t]int)
	}
	fwThreads.m[t]++
	fwThreads.mu.Unlock()
	defer func() {
		fwThreads.mu.Lock()
		if fwThreads.m[t]--; fwThreads.m[t] <= 0 {
			delete(fwThreads.m, t)
		}
		fwThreads.mu.Unlock()
	}()
	call()
}

// inFirmwareHandler reports whether the calling C thread is inside a
// firmware handler call.
func inFirmwareHandler() bool {
	t := C.pthread_self()
	fwThreads.mu.Lock()
	defer fwThreads.mu.Unlock()
	return fwThreads.m[t] > 0
}

// errInFirmwareHandler is returned by exports that must not be called from
// a firmware handler.
func errInFirmwareHandler(name string) error {
	return errorf(rcNotPermitted, "%s: not allowed from a firmware handler (the session is busy calling it)", name)
}

// fwEndWait bounds how long avc_fw_install waits for a stopped session to
// end (its de-registration takes at most 10 s).
const fwEndWait = 15 * time.Second

// installFirmware implements avc_fw_install (h non-nil) and
// avc_fw_uninstall (h nil): the handler of the sessions started from now
// on. It waits for a stopped session that is still ending, so that the
// previous handler is no longer in use when it returns.
func installFirmware(name string, h agent.FirmwareHandler) error {
	if inFirmwareHandler() {
		return errInFirmwareHandler(name)
	}
	timer := time.NewTimer(fwEndWait)
	defer timer.Stop()
	for {
		core.mu.Lock()
		if core.sess != nil {
			core.mu.Unlock()
			return errorf(rcNotPermitted, "%s: a session is started; stop it first (le_avc_StopSession)", name)
		}
		last := core.last
		if last == nil || ended(last) {
			core.fw = h
			core.gen++
			core.mu.Unlock()
			go ensureRunner() // the runner must not call the old handler
			return nil
		}
		core.mu.Unlock()
		select {
		case <-last.done:
		case <-timer.C:
			return errorf(rcTimeout, "%s: the stopped session did not end within %v", name, fwEndWait)
		}
	}
}

func ended(s *session) bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// setTrustedKey implements avc_fw_set_trusted_key.
func setTrustedKey(key string) error {
	if strings.TrimSpace(key) != "" {
		if _, err := fwpkg.ParsePublicKey(key); err != nil || strings.Contains(key, ",") {
			return errorf(rcFormat, "avc_fw_set_trusted_key: want one Ed25519 public key in hex or base64")
		}
	}
	if err := configSet(agent.EnvFWTrustedKeys, key); err != nil {
		return errorf(codeOf(err), "avc_fw_set_trusted_key: %s", strings.TrimPrefix(err.Error(), "avc_config_set: "))
	}
	return nil
}

// fwStat is the avc_fw_status_fn and the bookkeeping that lets
// avc_fw_set_status_handler wait for a call of the previous one.
var fwStat struct {
	mu      sync.Mutex
	idle    *sync.Cond // signalled when calling changes
	fn      C.avc_fw_status_fn
	ctx     C.uintptr_t
	gen     uint64 // bumped by every avc_fw_set_status_handler
	calling uint64 // gen of the callback running now, 0 if none
}

func init() { fwStat.idle = sync.NewCond(&fwStat.mu) }

// setFirmwareStatusHandler implements avc_fw_set_status_handler.
func setFirmwareStatusHandler(fn C.avc_fw_status_fn, ctx C.uintptr_t) {
	noWait := onDispatcher() || inFirmwareHandler()
	fwStat.mu.Lock()
	defer fwStat.mu.Unlock()
	fwStat.gen++
	fwStat.fn, fwStat.ctx = fn, ctx
	gen := fwStat.gen
	for !noWait && fwStat.calling != 0 && fwStat.calling != gen {
		fwStat.idle.Wait()
	}
}

// emitFirmware queues st for the status callback, when one is set.
func emitFirmware(st agent.FirmwareStatus) {
	fwStat.mu.Lock()
	set := fwStat.fn != nil
	fwStat.mu.Unlock()
	if set {
		enqueue(statusEvent{fw: &st})
	}
}

// deliverFirmware calls the status callback with st; it runs on the
// dispatcher thread.
func deliverFirmware(st *agent.FirmwareStatus) {
	fwStat.mu.Lock()
	fn, ctx, gen := fwStat.fn, fwStat.ctx, fwStat.gen
	if fn == nil {
		fwStat.mu.Unlock()
		return
	}
	fwStat.calling = gen
	fwStat.mu.Unlock()
	defer func() {
		fwStat.mu.Lock()
		fwStat.calling = 0
		fwStat.idle.Broadcast()
		fwStat.mu.Unlock()
	}()
	v := C.CString(st.Version)
	defer C.free(unsafe.Pointer(v))
	C.avc_call_fw_status_(fn, ctx, C.int(st.State), C.int(st.Result), C.int64_t(st.Bytes),
		C.int64_t(st.Total), C.int(st.HTTPStatus), v)
}
