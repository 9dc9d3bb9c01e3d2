package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"os"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/text"
	"github.com/avc-agent/avc/wasm/abi"
)

// The exports a module must have, indexed by the fn* constants.
const (
	fnABIVersion = iota
	fnBufAlloc
	fnBufFree
	fnInit
	fnCommand
	fnOnDatagram
	fnStep
	fnPollEvent
	fnLastError
	numExports
)

var exportNames = [numExports]string{
	"avc_abi_version", "avc_buf_alloc", "avc_buf_free", "avc_init", "avc_command",
	"avc_on_datagram", "avc_step", "avc_poll_event", "avc_last_error",
}

// minEventLen: avc_poll_event results at or below -minEventLen are sizes,
// results in (-minEventLen, 0) are result codes (wasm/ABI.md).
const minEventLen = abi.MinEventLen

// Imports receives a module's avc_host import calls (wasm/ABI.md
// "Imports"). A nil field is a no-op: SockSend drops the datagram,
// StorageWrite stores nothing (and reports success), Log discards, and
// without Firmware the module has no Firmware Update object.
//
// # Notes
//
//   - The functions run synchronously inside a Module call, with the
//     module's lock held: they must not block and must not call the Module.
//   - Byte slices alias the module's memory and are valid only during the
//     call; copy what you keep.
//   - A returned error (or a panic, which is recovered) becomes a non-zero
//     result code for the module, which logs it and carries on.
type Imports struct {
	// SockSend sends one UDP datagram to peer ("host:port").
	SockSend func(peer string, data []byte) error
	// StorageWrite stores data under key ("state") durably and atomically.
	StorageWrite func(key string, data []byte) error
	// Log receives one engine log record; its time is the time of the call.
	Log func(r slog.Record)
	// Firmware stores and installs firmware images (Object 5) for the
	// firmware imports fw_open … fw_sync. When it is set, Init enables
	// firmware update in the module ("firmware": true); Sync is called
	// when it implements agent.FirmwareSyncer. Its calls follow the
	// agent.FirmwareHandler contract, on the goroutine calling the
	// Module. Errors matching agent.ErrFirmwareNoSpace, NoMemory,
	// Integrity, Unsupported and Deferred choose the Update Result, as
	// with the native engine; any other error (ErrFirmwareFailed too)
	// takes the call's default result.
	Firmware agent.FirmwareHandler
}

// Module is one instance of avc.wasm. Its methods map one to one onto the
// exports; they are safe for concurrent use (calls are serialized) and
// never block. After a trap every method returns an error matching
// ErrTrapped; after Close, ErrClosed.
type Module struct {
	mu      sync.Mutex
	ctx     context.Context // carries the module for the host functions
	mod     api.Module
	mem     api.Memory
	fn      [numExports]api.Function
	imports Imports
	stack   [5]uint64
	in, out guestBuf
	stderr  tail
	err     error // sticky: *TrapError or ErrClosed
}

// guestBuf is a buffer from avc_buf_alloc.
type guestBuf struct{ ptr, size uint32 }

type moduleKey struct{}

// ABIVersion returns avc_abi_version().
func (m *Module) ABIVersion() (int32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.call(fnABIVersion)
	return api.DecodeI32(r), err
}

// Init calls avc_init with cfg (AVC_* names and their string values) and
// the last stored state (nil on first start). With Imports.Firmware set it
// also enables firmware update ("firmware": true).
func (m *Module) Init(cfg map[string]string, state []byte) error {
	b, err := configJSON(cfg, nil, nil, m.imports.Firmware != nil)
	if err != nil {
		return fmt.Errorf("host: config: %w", err)
	}
	return m.InitJSON(b, state)
}

// InitJSON is Init with the configuration already in its JSON form, which
// it passes as it is: include "firmware": true to enable firmware update.
func (m *Module) InitJSON(cfg, state []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.put(cfg, state)
	if err != nil {
		return err
	}
	r, err := m.call(fnInit, uint64(p[0]), uint64(len(cfg)), uint64(p[1]), uint64(len(state)))
	return m.result(fnInit, r, err)
}

// Command calls avc_command with the JSON form of c: {"cmd": "start"}; for
// an agent.CmdSet {"cmd":"set","path":…,"value":…} with the value in its
// text/plain form ("type":"none" for a zero Value); for an agent.CmdSend
// {"cmd":"send","paths":[…]}. The error matches
// agent.ErrDuplicate, agent.ErrNotRegistered and agent.ErrBadValue as the
// native engine's does.
func (m *Module) Command(now time.Time, c agent.Command) error {
	b, err := commandJSON(c)
	if err != nil {
		return err
	}
	return m.CommandJSON(now, b)
}

// commandJSON is the avc_command form of c (agent.ParseCommand's input).
func commandJSON(c agent.Command) ([]byte, error) {
	if send, ok := c.(agent.CmdSend); ok {
		paths := make([]string, len(send.Paths))
		for i, p := range send.Paths {
			paths[i] = p.String()
		}
		return json.Marshal(map[string]any{"cmd": "send", "paths": paths})
	}
	if rd, ok := c.(agent.CmdReadDone); ok {
		return json.Marshal(map[string]any{"cmd": agent.CommandName(c), "token": rd.Token})
	}
	set, ok := c.(agent.CmdSet)
	if !ok {
		return json.Marshal(map[string]string{"cmd": agent.CommandName(c)})
	}
	w := map[string]string{"cmd": "set", "path": set.Path.String()}
	if set.Value.Type == lwm2m.TypeNone {
		w["type"] = "none"
	} else {
		v, err := text.Encode(set.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", agent.ErrBadValue, set.Path, err)
		}
		w["value"] = string(v)
	}
	return json.Marshal(w)
}

// pemFiles are the configuration names of PEM files whose contents the
// host passes to avc_init under the module's keys.
var pemFiles = []struct{ env, key string }{
	{agent.EnvCertFile, abi.ConfigCertPEM},
	{agent.EnvKeyFile, abi.ConfigKeyPEM},
	{agent.EnvCAFile, abi.ConfigCAPEM},
}

// configJSON is the avc_init configuration: the AVC_* settings, the
// custom object definitions under "objects_xml" when there are any, their
// read-on-demand resources under "read_callbacks", and "firmware": true
// when firmware is set. The certificate files (AVC_CERT_FILE,
// AVC_KEY_FILE, AVC_CA_FILE) are read here and passed as PEM text
// (cert_pem, key_pem, ca_pem).
func configJSON(cfg map[string]string, objectsXML [][]byte, onRead []string, firmware bool) ([]byte, error) {
	m := make(map[string]any, len(cfg)+2)
	for k, v := range cfg {
		m[k] = v
	}
	// The module reads no files: the certificate's go in as PEM text.
	for _, f := range pemFiles {
		name := cfg[f.env]
		if name == "" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", agent.ErrConfig, f.env, err)
		}
		delete(m, f.env)
		m[f.key] = string(b)
	}
	if len(objectsXML) > 0 {
		docs := make([]string, len(objectsXML))
		for i, d := range objectsXML {
			docs[i] = string(d)
		}
		m[abi.ConfigObjectsXML] = docs
	}
	if len(onRead) > 0 {
		m[abi.ConfigReadCallbacks] = onRead
	}
	if firmware {
		m[abi.ConfigFirmware] = true
	}
	return json.Marshal(m)
}

// CommandJSON calls avc_command with a raw JSON command.
func (m *Module) CommandJSON(now time.Time, cmd []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.put(cmd)
	if err != nil {
		return err
	}
	r, err := m.call(fnCommand, uint64(p[0]), uint64(len(cmd)), uint64(now.UnixMilli()))
	return m.result(fnCommand, r, err)
}

// OnDatagram calls avc_on_datagram with a datagram received from peer
// (the "host:port" key the module sent to).
func (m *Module) OnDatagram(now time.Time, peer string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.put([]byte(peer), data)
	if err != nil {
		return err
	}
	r, err := m.call(fnOnDatagram, uint64(p[0]), uint64(len(peer)), uint64(p[1]), uint64(len(data)), uint64(now.UnixMilli()))
	return m.result(fnOnDatagram, r, err)
}

// Step calls avc_step and returns the time it must be called next; the
// zero time means no timer is pending.
func (m *Module) Step(now time.Time) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.call(fnStep, uint64(now.UnixMilli()))
	if err != nil {
		return time.Time{}, err
	}
	switch v := int64(r); {
	case v >= 0:
		return time.UnixMilli(v), nil
	case v == int64(CodeNone):
		return time.Time{}, nil
	default:
		return time.Time{}, m.fail(fnStep, Code(v))
	}
}

// PollEventJSON returns the next event in its JSON form, or nil when none
// is pending. It grows its buffer as avc_poll_event asks.
func (m *Module) PollEventJSON() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ensure(&m.out, 1024); err != nil {
		return nil, err
	}
	for {
		r, err := m.call(fnPollEvent, uint64(m.out.ptr), uint64(m.out.size))
		if err != nil {
			return nil, err
		}
		switch n := api.DecodeI32(r); {
		case n == 0:
			return nil, nil
		case n > 0:
			b, ok := m.mem.Read(m.out.ptr, uint32(n))
			if !ok {
				return nil, fmt.Errorf("host: avc_poll_event returned %d bytes outside memory", n)
			}
			return bytes.TrimRight(bytes.Clone(b), " "), nil
		case n <= -minEventLen:
			if err := m.ensure(&m.out, uint32(-n)); err != nil {
				return nil, err
			}
		default:
			return nil, m.fail(fnPollEvent, Code(n))
		}
	}
}

// PollEvent returns the next event decoded. ok is false when none is
// pending. An event that cannot be decoded (an event kind newer than this
// package) is consumed and reported as an error with ok true; callers log
// it and keep polling.
func (m *Module) PollEvent() (ev agent.Event, ok bool, err error) {
	b, err := m.PollEventJSON()
	if err != nil || b == nil {
		return agent.Event{}, false, err
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return agent.Event{}, true, fmt.Errorf("host: decode event %s: %w", b, err)
	}
	return ev, true, nil
}

// ControlJSON returns avc_control(): the update-control snapshot in its
// JSON form (wasm/ABI.md). A module without that export (older than the
// export) answers an error.
func (m *Module) ControlJSON() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	fn := m.mod.ExportedFunction("avc_control")
	if fn == nil {
		return nil, errors.New("host: this avc.wasm has no avc_control (an older module)")
	}
	if err := m.ensure(&m.out, 1024); err != nil {
		return nil, err
	}
	for {
		s := m.stack[:]
		s[0], s[1] = uint64(m.out.ptr), uint64(m.out.size)
		if err := fn.CallWithStack(m.ctx, s); err != nil {
			m.err = &TrapError{Op: "avc_control", Err: err, Stderr: m.stderr.String()}
			m.mod.Close(m.ctx)
			return nil, m.err
		}
		switch n := api.DecodeI32(s[0]); {
		case n > 0:
			b, ok := m.mem.Read(m.out.ptr, uint32(n))
			if !ok {
				return nil, fmt.Errorf("host: avc_control returned %d bytes outside memory", n)
			}
			return bytes.Clone(b), nil
		case n <= -minEventLen:
			if err := m.ensure(&m.out, uint32(-n)); err != nil {
				return nil, err
			}
		default:
			msg, _ := m.lastError()
			return nil, &Error{Op: "avc_control", Code: Code(n), Msg: msg}
		}
	}
}

// Control returns the update-control snapshot decoded (the le_avc
// getters' view); an *Error with CodeFault when the module runs without
// update control.
func (m *Module) Control() (agent.ControlState, error) {
	var st agent.ControlState
	b, err := m.ControlJSON()
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("host: decode avc_control %s: %w", b, err)
	}
	return st, nil
}

// LastError returns avc_last_error(): the message of the last failed call.
func (m *Module) LastError() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastError()
}

// Err returns the error that ended the module (a *TrapError, or ErrClosed)
// or nil while it is usable.
func (m *Module) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Close releases the instance. Closing twice, or after a trap, is a no-op.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil
	}
	m.err = ErrClosed
	return m.mod.Close(ctx)
}

// call invokes export fn with m.mu held. A wazero error is a trap: the
// instance is closed and the error becomes sticky.
func (m *Module) call(fn int, args ...uint64) (uint64, error) {
	if m.err != nil {
		return 0, m.err
	}
	s := m.stack[:]
	copy(s, args)
	if err := m.fn[fn].CallWithStack(m.ctx, s); err != nil {
		m.err = &TrapError{Op: exportNames[fn], Err: err, Stderr: m.stderr.String()}
		m.mod.Close(m.ctx)
		return 0, m.err
	}
	return s[0], nil
}

// result turns an i32 result code into an error.
func (m *Module) result(fn int, r uint64, err error) error {
	if err != nil {
		return err
	}
	if rc := api.DecodeI32(r); rc != 0 {
		return m.fail(fn, Code(rc))
	}
	return nil
}

// fail builds the Error for a failed export, with avc_last_error's text.
func (m *Module) fail(fn int, c Code) error {
	msg, err := m.lastError()
	if err != nil {
		return err
	}
	return &Error{Op: exportNames[fn], Code: c, Msg: msg}
}

func (m *Module) lastError() (string, error) {
	if err := m.ensure(&m.out, 1024); err != nil {
		return "", err
	}
	for {
		r, err := m.call(fnLastError, uint64(m.out.ptr), uint64(m.out.size))
		if err != nil {
			return "", err
		}
		n := api.DecodeI32(r)
		if n < 0 {
			return "", fmt.Errorf("host: avc_last_error: %s", Code(n))
		}
		if uint32(n) > m.out.size {
			if err := m.ensure(&m.out, uint32(n)); err != nil {
				return "", err
			}
			continue
		}
		b, _ := m.mem.Read(m.out.ptr, uint32(n))
		return string(b), nil
	}
}

// put copies parts into the input buffer, one after the other, and
// returns their addresses.
func (m *Module) put(parts ...[]byte) ([]uint32, error) {
	var total int
	for _, p := range parts {
		total += len(p)
	}
	if total > 1<<24 {
		return nil, fmt.Errorf("host: %d bytes of input is too large", total)
	}
	if err := m.ensure(&m.in, uint32(total)); err != nil {
		return nil, err
	}
	ptrs := make([]uint32, len(parts))
	off := m.in.ptr
	for i, p := range parts {
		ptrs[i] = off
		if !m.mem.Write(off, p) {
			return nil, fmt.Errorf("host: write %d bytes at %#x: outside memory", len(p), off)
		}
		off += uint32(len(p))
	}
	return ptrs, nil
}

// ensure makes b at least n bytes (and at least 1 KiB), reallocating in
// the guest in powers of two.
func (m *Module) ensure(b *guestBuf, n uint32) error {
	if b.ptr != 0 && b.size >= n {
		return nil
	}
	size := max(uint32(1024), uint32(1)<<bits.Len32(max(n, 1)-1))
	r, err := m.call(fnBufAlloc, uint64(size))
	if err != nil {
		return err
	}
	p := api.DecodeU32(r)
	if p == 0 {
		return fmt.Errorf("host: avc_buf_alloc(%d) failed", size)
	}
	if b.ptr != 0 {
		if _, err := m.call(fnBufFree, uint64(b.ptr)); err != nil {
			return err
		}
	}
	*b = guestBuf{ptr: p, size: size}
	return nil
}

// tail keeps the last 4 KiB written to it, and copies everything to w.
type tail struct {
	w io.Writer
	b []byte
}

const tailSize = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	if t.w != nil {
		t.w.Write(p)
	}
	t.b = append(t.b, p...)
	if len(t.b) > tailSize {
		t.b = append(t.b[:0], t.b[len(t.b)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return string(bytes.TrimSpace(t.b)) }

// instantiateImports defines the avc_host module in rt. Its functions find
// the calling Module in the context of the call.
func instantiateImports(ctx context.Context, rt wazero.Runtime) error {
	i32 := api.ValueTypeI32
	b := rt.NewHostModuleBuilder(abi.ImportModule)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(sockSend), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("peer_ptr", "peer_len", "data_ptr", "data_len").WithResultNames("rc").
		Export("sock_send")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(logRecord), []api.ValueType{i32, i32, i32}, nil).
		WithParameterNames("level", "ptr", "len").
		Export("log")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(storageWrite), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("key_ptr", "key_len", "data_ptr", "data_len").WithResultNames("rc").
		Export("storage_write")
	defineFirmwareImports(b)
	_, err := b.Instantiate(ctx)
	return err
}

func moduleOf(ctx context.Context) *Module {
	m, _ := ctx.Value(moduleKey{}).(*Module)
	return m
}

func read(mod api.Module, p, n uint64) ([]byte, bool) {
	return mod.Memory().Read(api.DecodeU32(p), api.DecodeU32(n))
}

func sockSend(ctx context.Context, mod api.Module, stack []uint64) {
	m := moduleOf(ctx)
	peer, ok1 := read(mod, stack[0], stack[1])
	data, ok2 := read(mod, stack[2], stack[3])
	rc := CodeBadParameter
	if m != nil && ok1 && ok2 {
		rc = guardImport(m.imports.SockSend, string(peer), data)
	}
	stack[0] = api.EncodeI32(int32(rc))
}

func storageWrite(ctx context.Context, mod api.Module, stack []uint64) {
	m := moduleOf(ctx)
	key, ok1 := read(mod, stack[0], stack[1])
	data, ok2 := read(mod, stack[2], stack[3])
	rc := CodeBadParameter
	if m != nil && ok1 && ok2 {
		if m.imports.StorageWrite == nil {
			rc = CodeOK
		} else {
			rc = guardImport(m.imports.StorageWrite, string(key), data)
		}
	}
	stack[0] = api.EncodeI32(int32(rc))
}

func logRecord(ctx context.Context, mod api.Module, stack []uint64) {
	m := moduleOf(ctx)
	b, ok := read(mod, stack[1], stack[2])
	if m == nil || !ok || m.imports.Log == nil {
		return
	}
	r := decodeRecord(slog.Level(api.DecodeI32(stack[0])), b)
	defer func() { recover() }()
	m.imports.Log(r)
}

// guardImport calls f, turning an error or a panic into a result code: an
// import must never trap the module.
func guardImport(f func(string, []byte) error, s string, b []byte) (rc Code) {
	if f == nil {
		return CodeUnsupported
	}
	defer func() {
		if recover() != nil {
			rc = CodeFault
		}
	}()
	if err := f(s, b); err != nil {
		return CodeFault
	}
	return CodeOK
}

// decodeRecord turns the module's JSON log record into a slog.Record,
// keeping the attributes in order.
func decodeRecord(level slog.Level, b []byte) slog.Record {
	r := slog.NewRecord(time.Now(), level, "", 0)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		r.Message = string(b)
		return r
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		k, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			break
		}
		if s, ok := v.(string); ok && k == slog.MessageKey {
			r.Message = s
			continue
		}
		r.AddAttrs(attrOf(k, v))
	}
	return r
}

func attrOf(k string, v any) slog.Attr {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return slog.Int64(k, i)
		}
		f, _ := v.Float64()
		return slog.Float64(k, f)
	case string:
		return slog.String(k, v)
	case bool:
		return slog.Bool(k, v)
	case map[string]any:
		as := make([]any, 0, len(v))
		for gk, gv := range v {
			as = append(as, attrOf(gk, gv))
		}
		return slog.Group(k, as...)
	}
	return slog.Any(k, v)
}
