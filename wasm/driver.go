//go:build wasip1

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/wasm/abi"
)

// maxPending bounds the events waiting for avc_poll_event. When a host
// stops polling, the oldest events are dropped (and the drop is logged)
// rather than growing linear memory without bound.
const maxPending = 1024

// stateKey is the storage_write key of the engine's persistent state.
const stateKey = "state"

// driver is the module's only state. Exports run one at a time (a wasm
// instance is single-threaded), so it needs no locking.
type driver struct {
	mem     buffers
	engine  *agent.Engine // nil until avc_init succeeds, and after a panic
	log     *slog.Logger
	pending [][]byte // encoded events for avc_poll_event, oldest first
	dropped int      // events dropped since the last warning
	lastErr string

	// What a restart (agent.EventRestart) needs to make the engine again,
	// as after a reboot: the configuration of avc_init, the last stored
	// state, and the values the host set (the last per path, in the order
	// first set), which a rebooted device would set again.
	cfg   agent.Config
	state []byte
	sets  []agent.CmdSet

	// sec carries the DTLS session for a coaps:// server (dtls.go); nil
	// for coap. stopping: a stop is de-registering over it.
	sec      *agent.SecureSession
	stopping bool
	// pulls carries the DTLS sessions of coaps Package URIs (pull.go);
	// nil without firmware update.
	pulls *agent.PullLinks
}

var d = driver{log: slog.New(slog.DiscardHandler)}

// fail records msg as the last error and returns rc.
func (d *driver) fail(rc int32, format string, args ...any) int32 {
	d.lastErr = fmt.Sprintf(format, args...)
	return rc
}

// ok clears the last error.
func (d *driver) ok() int32 {
	d.lastErr = ""
	return rcOK
}

// guard is deferred by every export that calls into the engine. It turns a
// panic into AVC_FAULT, logs the stack and discards the engine, whose state
// can no longer be trusted; the host may call avc_init again.
func (d *driver) guard(op string, rc *int32) {
	r := recover()
	if r == nil {
		return
	}
	d.engine = nil
	d.log.Error("panic", "op", op, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*rc = d.fail(rcFault, "%s: panic: %v (engine discarded; call avc_init again)", op, r)
}

// maxRestarts bounds the restarts one call may make: an engine that asks
// for a restart again right after starting would otherwise loop.
const maxRestarts = 3

// flush hands the engine's output to the host: first the events (the
// persistent state goes to storage_write before any datagram that may
// acknowledge the change leaves), then the datagrams. When the engine
// asked for a restart (a firmware install), it then makes a new engine
// from the last stored state and flushes that one too.
func (d *driver) flush(now time.Time) {
	for i := 0; d.drain(now); i++ {
		if i == maxRestarts {
			d.log.Error("engine keeps asking for a restart; not restarting", "restarts", i)
			return
		}
		d.restart(now, d.engine.Started())
		if d.engine == nil {
			return
		}
	}
}

// drain moves the engine's events and datagrams to the host and reports
// whether the engine asked for a restart.
func (d *driver) drain(now time.Time) (restart bool) {
	e := d.engine
	for ev, ok := e.PollEvent(); ok; ev, ok = e.PollEvent() {
		switch ev.Kind {
		case agent.EventStore:
			d.state = ev.Data
			if rc := storageWrite(stateKey, ev.Data); rc != 0 {
				d.log.Warn("storage write failed", "key", stateKey, "rc", rc)
			}
		case agent.EventRestart:
			restart = true
		}
		if d.sec != nil {
			d.secureObserve(now, ev)
		}
		d.pushEvent(ev)
	}
	for dg, ok := e.PollTransmit(); ok; dg, ok = e.PollTransmit() {
		if d.pullTransmit(now, dg) {
			continue
		}
		if d.sec != nil {
			d.secureTransmit(dg)
		} else if rc := sockSend(dg.Peer, dg.Data); rc != 0 {
			// Like a lost datagram: CoAP retransmits.
			d.log.Debug("send failed", "peer", dg.Peer, "len", len(dg.Data), "rc", rc)
		}
	}
	if d.dropped > 0 {
		d.log.Warn("events dropped; the host is not polling", "count", d.dropped)
		d.dropped = 0
	}
	return restart
}

// pushEvent queues one event for avc_poll_event.
func (d *driver) pushEvent(ev agent.Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		d.log.Warn("drop event", "kind", ev.Kind.String(), "err", err)
		return
	}
	d.push(b)
}

// output hands the engine's output to the host after an input: through
// the DTLS session for coaps.
func (d *driver) output(now time.Time) {
	if d.sec != nil {
		d.secureSync(now)
	} else {
		d.flush(now)
	}
	d.pullSync(now)
}

// restart replaces the engine with a new one made from the last stored
// state, as after a reboot: it gets the values the host set, and starts
// when start is set (the old one was started). The old session is not de-registered; the
// new engine registers again. Making it cannot fail with the same
// configuration and a state the engine wrote; if it does all the same, the
// engine is discarded as after a panic.
func (d *driver) restart(now time.Time, started bool) {
	carry := d.engine.HostInputs() // status handlers and install blocks
	e, err := agent.NewEngine(d.cfg, bytes.Clone(d.state))
	if err != nil {
		d.engine = nil
		d.log.Error("restart failed; engine discarded", "err", err)
		return
	}
	d.engine = e
	d.log.Info("engine restarted", "start", started)
	for _, c := range d.sets {
		if err := e.HandleCommand(now, c); err != nil {
			d.log.Warn("restore value", "path", c.Path.String(), "err", err)
		}
	}
	for _, c := range carry {
		if err := e.HandleCommand(now, c); err != nil {
			d.log.Warn("restore update control", "cmd", agent.CommandName(c), "err", err)
		}
	}
	if started {
		if err := e.HandleCommand(now, agent.CmdStart{}); err != nil {
			d.log.Warn("start after restart", "err", err)
		}
	}
}

// remember records a value the engine accepted, for restarts.
func (d *driver) remember(c agent.CmdSet) {
	for i := range d.sets {
		if d.sets[i].Path == c.Path {
			d.sets[i] = c
			return
		}
	}
	d.sets = append(d.sets, c)
}

// step runs the engine's timers and returns its next deadline, that of
// the new engine when the timers led to a restart.
func (d *driver) step(now time.Time) time.Time {
	t := d.engineStep(now)
	if d.pulls == nil {
		return t
	}
	d.pullSync(now)
	return earliest(t, d.pulls.Next(now))
}

// engineStep is step without the pull sessions.
func (d *driver) engineStep(now time.Time) time.Time {
	if d.sec != nil {
		return d.secureStep(now)
	}
	for {
		e := d.engine
		t := e.Step(now)
		d.flush(now)
		if d.engine == e || d.engine == nil {
			return t
		}
	}
}

// push queues one encoded event, padded to minEventLen.
func (d *driver) push(b []byte) {
	if n := minEventLen - len(b); n > 0 {
		b = append(b, bytes.Repeat([]byte(" "), n)...)
	}
	if len(d.pending) >= maxPending {
		d.pending[0] = nil
		d.pending = d.pending[1:]
		d.dropped++
	}
	d.pending = append(d.pending, b)
}

// configObjectsXML and configFirmware are the avc_init configuration keys
// that are not AVC_* names: custom object definitions (an array of OMA
// registry XML documents) and the switch of firmware update (a boolean).
const (
	configObjectsXML    = abi.ConfigObjectsXML
	configReadCallbacks = abi.ConfigReadCallbacks
	configFirmware      = abi.ConfigFirmware
	configControl       = abi.ConfigControl
)

// moduleConfig is the decoded avc_init configuration.
type moduleConfig struct {
	settings map[string]string // AVC_* names
	docs     []string          // objects_xml
	onRead   []string          // read_callbacks: "/OBJ/RES" paths
	firmware bool              // firmware
	control  bool              // control
	// dtls_handshake_timeout_ms, dtls_retry_delay_ms, nat_timeout_ms
	handshakeTimeout, retryDelay, natTimeout time.Duration
	// cert_pem, key_pem, ca_pem
	certPEM, keyPEM, caPEM string
}

// pemKeys are the configuration keys of PEM texts.
var pemKeys = map[string]func(*moduleConfig) *string{
	abi.ConfigCertPEM: func(mc *moduleConfig) *string { return &mc.certPEM },
	abi.ConfigKeyPEM:  func(mc *moduleConfig) *string { return &mc.keyPEM },
	abi.ConfigCAPEM:   func(mc *moduleConfig) *string { return &mc.caPEM },
}

// durationKeys are the configuration keys given in milliseconds.
var durationKeys = map[string]func(*moduleConfig) *time.Duration{
	abi.ConfigDTLSHandshakeTimeout: func(mc *moduleConfig) *time.Duration { return &mc.handshakeTimeout },
	abi.ConfigDTLSRetryDelay:       func(mc *moduleConfig) *time.Duration { return &mc.retryDelay },
	abi.ConfigNATTimeout:           func(mc *moduleConfig) *time.Duration { return &mc.natTimeout },
}

// apply sets the durations and the certificate on cfg.
func (mc *moduleConfig) apply(cfg *agent.Config) {
	cfg.DTLSHandshakeTimeout = mc.handshakeTimeout
	cfg.DTLSRetryDelay = mc.retryDelay
	cfg.NATTimeout = mc.natTimeout
	cfg.CertPEM, cfg.KeyPEM, cfg.CAPEM = pemBytes(mc.certPEM), pemBytes(mc.keyPEM), pemBytes(mc.caPEM)
}

// pemBytes is a PEM text as bytes, nil when empty.
func pemBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// checkFiles refuses the certificate file names: the module reads no
// files, its host passes their contents (cert_pem, key_pem, ca_pem).
func checkFiles(cfg *agent.Config) error {
	if cfg.CertFile == "" && cfg.KeyFile == "" && cfg.CAFile == "" {
		return nil
	}
	return fmt.Errorf("%w: avc.wasm reads no files: pass the PEM texts of %s, %s and %s as %q, %q and %q (the wazero and Node hosts read the files themselves)",
		agent.ErrConfig, agent.EnvCertFile, agent.EnvKeyFile, agent.EnvCAFile, abi.ConfigCertPEM, abi.ConfigKeyPEM, abi.ConfigCAPEM)
}

// parseConfig decodes the avc_init configuration: a JSON object whose
// values are strings or numbers (AVC_LIFETIME may be 300 or "300"), except
// "objects_xml", an array of strings, and "firmware", a boolean; null
// values are skipped.
func parseConfig(b []byte) (moduleConfig, error) {
	mc := moduleConfig{settings: map[string]string{}}
	if len(bytes.TrimSpace(b)) == 0 {
		return mc, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return mc, fmt.Errorf("config: want a JSON object of AVC_* names: %v", err)
	}
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		switch {
		case bytes.Equal(v, []byte("null")):
		case k == configObjectsXML:
			if err := json.Unmarshal(v, &mc.docs); err != nil {
				return mc, fmt.Errorf("config: %s: want an array of XML documents (strings): %v", k, err)
			}
		case k == configReadCallbacks:
			if err := json.Unmarshal(v, &mc.onRead); err != nil {
				return mc, fmt.Errorf("config: %s: want an array of \"/OBJ/RES\" paths (strings): %v", k, err)
			}
		case k == configFirmware:
			if err := json.Unmarshal(v, &mc.firmware); err != nil {
				return mc, fmt.Errorf("config: %s: want true or false, got %s", k, v)
			}
		case k == configControl:
			if err := json.Unmarshal(v, &mc.control); err != nil {
				return mc, fmt.Errorf("config: %s: want true or false, got %s", k, v)
			}
		case pemKeys[k] != nil:
			if err := json.Unmarshal(v, pemKeys[k](&mc)); err != nil {
				return mc, fmt.Errorf("config: %s: want the PEM text as a string: %v", k, err)
			}
		case durationKeys[k] != nil:
			ms, err := strconv.ParseInt(strings.Trim(string(v), `"`), 10, 64)
			if err != nil || ms > math.MaxInt64/int64(time.Millisecond) || ms < math.MinInt64/int64(time.Millisecond) {
				return mc, fmt.Errorf("config: %s: want milliseconds, got %s", k, v)
			}
			*durationKeys[k](&mc) = time.Duration(ms) * time.Millisecond
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return mc, fmt.Errorf("config: %s: %v", k, err)
			}
			mc.settings[k] = s
		case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')):
			mc.settings[k] = string(v)
		default:
			return mc, fmt.Errorf("config: %s: want a string or a number, got %s", k, v)
		}
	}
	return mc, nil
}

// parseObjects parses the objects_xml documents into object definitions,
// in order (a later definition of an object ID replaces an earlier one).
func parseObjects(docs []string) ([]lwm2m.ObjectDef, error) {
	var defs []lwm2m.ObjectDef
	for i, doc := range docs {
		ds, err := lwm2m.ParseObjectXML([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("config: %s[%d]: %v", configObjectsXML, i, err)
		}
		defs = append(defs, ds...)
	}
	return defs, nil
}

// markOnRead marks the resources named by paths ("/OBJ/RES", the
// read_callbacks key) as read on demand in defs; each must name a
// readable resource of one of defs.
func markOnRead(defs []lwm2m.ObjectDef, paths []string) error {
	var errs []error
	for _, ps := range paths {
		p, err := lwm2m.ParsePath(ps)
		if err != nil || p.Len != 2 {
			errs = append(errs, fmt.Errorf("config: %s: %q: want \"/OBJ/RES\"", configReadCallbacks, ps))
			continue
		}
		found := false
		for i := range defs {
			if defs[i].ID != p.Obj() {
				continue
			}
			// The path's second number is the resource ID.
			if r, ok := defs[i].Resource(p.Inst()); ok && r.Operations&lwm2m.OpRead != 0 {
				r.OnRead, found = true, true
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("config: %s: %q: no readable resource of an %s object", configReadCallbacks, ps, configObjectsXML))
		}
	}
	return errors.Join(errs...)
}

// msTime converts an export's now_ms argument.
func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

// deadlineMs converts Step's result to avc_step's: milliseconds since the
// epoch rounded up, so that calling avc_step at that time finds the timer
// due; rcNone for no deadline.
func deadlineMs(t time.Time) int64 {
	if t.IsZero() {
		return int64(rcNone)
	}
	ns := t.UnixNano()
	ms := ns / 1e6
	if ns%1e6 > 0 {
		ms++
	}
	return max(ms, 0)
}
