//go:build wasip1

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/avc-agent/avc/agent"
)

// The exports. ABI.md documents each one; the comments here are
// summaries. Pointers and lengths are i32, times i64 milliseconds since the
// Unix epoch.

// avcABIVersion returns the ABI version (ABI.md "Versioning").
//
//go:wasmexport avc_abi_version
func avcABIVersion() int32 { return abiVersion }

// avcBufAlloc returns a buffer of n bytes owned by the host until
// avc_buf_free, or 0 when n is not in 1..16 MiB.
//
//go:wasmexport avc_buf_alloc
func avcBufAlloc(n int32) (p uint32) {
	defer func() {
		if r := recover(); r != nil {
			p = 0
			d.fail(rcFault, "avc_buf_alloc: panic: %v", r)
		}
	}()
	p = d.mem.alloc(n)
	if p == 0 {
		d.fail(rcBadParameter, "avc_buf_alloc: size %d: want 1..%d", n, maxBuffer)
	}
	return p
}

// avcBufFree releases a buffer from avc_buf_alloc.
//
//go:wasmexport avc_buf_free
func avcBufFree(p uint32) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			rc = d.fail(rcFault, "avc_buf_free: panic: %v", r)
		}
	}()
	if !d.mem.free(p) {
		return d.fail(rcBadParameter, "avc_buf_free: %#x is not a live buffer", p)
	}
	return rcOK
}

// avcInit creates the engine from a JSON configuration and the last stored
// state.
//
//go:wasmexport avc_init
func avcInit(cfgPtr uint32, cfgLen int32, statePtr uint32, stateLen int32) (rc int32) {
	defer d.guard("avc_init", &rc)
	if d.engine != nil {
		return d.fail(rcDuplicate, "avc_init: already initialized")
	}
	cb, err := d.mem.view(cfgPtr, cfgLen)
	if err != nil {
		return d.fail(rcBadParameter, "avc_init: config: %v", err)
	}
	sb, err := d.mem.view(statePtr, stateLen)
	if err != nil {
		return d.fail(rcBadParameter, "avc_init: state: %v", err)
	}
	mc, err := parseConfig(cb)
	if err != nil {
		return d.fail(rcBadInput, "avc_init: %v", err)
	}
	var cfg agent.Config
	objs, objErr := parseObjects(mc.docs)
	if objErr == nil {
		objErr = markOnRead(objs, mc.onRead)
	}
	cfg.Objects = objs
	if mc.firmware {
		// Object 5, stored and installed by the host (firmware.go). The
		// engine pulls over CoAP, and over coaps with a firmware PSK
		// through the module's own DTLS sessions (pull.go): HTTP(S)
		// fetches are not part of the ABI.
		cfg.Firmware.Handler = hostFirmware{}
		cfg.CarryPullDTLS()
	}
	cfg.Control.Enabled = mc.control
	mc.apply(&cfg) // DTLS timing and certificate
	err = cfg.ApplyMap(mc.settings)
	if err == nil {
		err = checkFiles(&cfg)
	}
	if err != nil || objErr != nil {
		// Report every problem at once, as agent.New does.
		return d.fail(rcBadInput, "avc_init: %s", oneLine(errors.Join(objErr, err, cfg.Validate())))
	}
	log := slog.New(newHostHandler(cfg.LogLevel))
	cfg.Logger = log
	sec, err := secureSession(&cfg) // coaps: dtls.go
	if err != nil {
		return d.fail(rcBadInput, "avc_init: %s", oneLine(err))
	}
	e, err := agent.NewEngine(cfg, bytes.Clone(sb))
	if err != nil {
		return d.fail(rcBadInput, "avc_init: %s", oneLine(err))
	}
	if d.sec != nil {
		d.sec.Close() // of an engine discarded after a panic
	}
	if d.pulls != nil {
		d.pulls.Close()
	}
	d.pulls = nil
	if mc.firmware {
		d.pulls = agent.NewPullLinks(cfg)
	}
	d.engine, d.log, d.sec, d.stopping = e, log, sec, false
	d.cfg, d.state, d.sets = cfg, bytes.Clone(sb), nil
	d.flush(time.Time{}) // nothing here can ask for a restart
	return d.ok()
}

// avcCommand applies one JSON command, {"cmd":"start"} or
// {"cmd":"set","path":"/3/0/9","value":"50"}.
//
//go:wasmexport avc_command
func avcCommand(p uint32, n int32, nowMs int64) (rc int32) {
	defer d.guard("avc_command", &rc)
	if d.engine == nil {
		return d.fail(rcNotInitialized, "avc_command: not initialized")
	}
	b, err := d.mem.view(p, n)
	if err != nil {
		return d.fail(rcBadParameter, "avc_command: %v", err)
	}
	var w struct {
		Cmd *string `json:"cmd"`
	}
	if err := json.Unmarshal(b, &w); err != nil || w.Cmd == nil {
		if err == nil {
			return d.fail(rcBadInput, `avc_command: want {"cmd":"…"}`)
		}
		return d.fail(rcBadInput, "avc_command: %v", err)
	}
	c, err := agent.ParseCommand(b)
	if err != nil {
		if errors.Is(err, agent.ErrUnknownCommand) {
			return d.fail(rcUnsupported, "avc_command: %v", err)
		}
		// A known command with bad arguments ("set" with a bad path).
		return d.fail(rcBadInput, "avc_command: %v", err)
	}
	now := msTime(nowMs)
	handled := false
	if d.sec != nil {
		handled, err = d.secureCommand(now, c)
	}
	if !handled {
		err = d.engine.HandleCommand(now, c)
	}
	if set, ok := c.(agent.CmdSet); ok && err == nil {
		d.remember(set)
	}
	d.output(now)
	if rc := commandResult(err); rc != rcOK {
		return d.fail(rc, "avc_command %s: %v", *w.Cmd, err)
	}
	return d.ok()
}

// avcOnDatagram feeds one received datagram.
//
//go:wasmexport avc_on_datagram
func avcOnDatagram(peerPtr uint32, peerLen int32, dataPtr uint32, dataLen int32, nowMs int64) (rc int32) {
	defer d.guard("avc_on_datagram", &rc)
	if d.engine == nil {
		return d.fail(rcNotInitialized, "avc_on_datagram: not initialized")
	}
	peer, err := d.mem.view(peerPtr, peerLen)
	if err != nil {
		return d.fail(rcBadParameter, "avc_on_datagram: peer: %v", err)
	}
	data, err := d.mem.view(dataPtr, dataLen)
	if err != nil {
		return d.fail(rcBadParameter, "avc_on_datagram: data: %v", err)
	}
	// The engine copies what it keeps; data may be reused after return.
	now := msTime(nowMs)
	switch p := string(peer); {
	case d.sec != nil && p == d.sec.Peer():
		d.secureDatagram(now, p, data)
	case d.pullDatagram(now, p, data):
	case d.sec != nil:
		d.secureDatagram(now, p, data) // dropped: outside every session
	default:
		d.engine.HandleDatagram(now, p, data)
		d.flush(now)
		d.pullSync(now)
	}
	return d.ok()
}

// avcStep runs the timers due at now_ms and returns the next deadline.
//
//go:wasmexport avc_step
func avcStep(nowMs int64) (next int64) {
	var rc int32
	defer func() {
		if rc != rcOK {
			next = int64(rc)
		}
	}()
	defer d.guard("avc_step", &rc)
	if d.engine == nil {
		rc = d.fail(rcNotInitialized, "avc_step: not initialized")
		return 0
	}
	t := d.step(msTime(nowMs))
	d.ok()
	return deadlineMs(t)
}

// avcPollEvent copies the oldest pending event into buf.
//
//go:wasmexport avc_poll_event
func avcPollEvent(buf uint32, size int32) (rc int32) {
	defer d.guard("avc_poll_event", &rc)
	if len(d.pending) == 0 {
		d.ok()
		return 0
	}
	ev := d.pending[0]
	if size >= 0 && int(size) < len(ev) {
		d.ok()
		return -int32(len(ev))
	}
	out, err := d.mem.view(buf, size)
	if err != nil {
		return d.fail(rcBadParameter, "avc_poll_event: %v", err)
	}
	copy(out, ev)
	d.pending[0] = nil
	d.pending = d.pending[1:]
	d.ok()
	return int32(len(ev))
}

// avcControl copies the update-control snapshot (agent.ControlState as
// JSON) into buf.
//
//go:wasmexport avc_control
func avcControl(buf uint32, size int32) (rc int32) {
	defer d.guard("avc_control", &rc)
	if d.engine == nil {
		return d.fail(rcNotInitialized, "avc_control: not initialized")
	}
	if !d.engine.ControlEnabled() {
		return d.fail(rcFault, "avc_control: %v", agent.ErrControlOff)
	}
	b, err := json.Marshal(d.engine.Control())
	if err != nil {
		return d.fail(rcFault, "avc_control: %v", err)
	}
	if size >= 0 && int(size) < len(b) {
		d.ok()
		return -int32(len(b))
	}
	out, err := d.mem.view(buf, size)
	if err != nil {
		return d.fail(rcBadParameter, "avc_control: %v", err)
	}
	copy(out, b)
	d.ok()
	return int32(len(b))
}

// avcLastError copies the message of the last failed call into buf.
//
//go:wasmexport avc_last_error
func avcLastError(buf uint32, size int32) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			rc = rcFault
		}
	}()
	n := min(int(max(size, 0)), len(d.lastErr))
	out, err := d.mem.view(buf, int32(n))
	if err != nil {
		return rcBadParameter
	}
	copy(out, d.lastErr)
	return int32(len(d.lastErr))
}

// oneLine joins the lines of a joined error with "; ".
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
