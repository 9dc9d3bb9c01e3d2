//go:build wasip1

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
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

// flush hands the engine's output to the host: first the events (the
// persistent state goes to storage_write before any datagram that may
// acknowledge the change leaves), then the datagrams.
func (d *driver) flush() {
	e := d.engine
	for ev, ok := e.PollEvent(); ok; ev, ok = e.PollEvent() {
		if ev.Kind == agent.EventStore {
			if rc := storageWrite(stateKey, ev.Data); rc != 0 {
				d.log.Warn("storage write failed", "key", stateKey, "rc", rc)
			}
		}
		b, err := json.Marshal(ev)
		if err != nil {
			d.log.Warn("drop event", "kind", ev.Kind.String(), "err", err)
			continue
		}
		d.push(b)
	}
	for dg, ok := e.PollTransmit(); ok; dg, ok = e.PollTransmit() {
		if rc := sockSend(dg.Peer, dg.Data); rc != 0 {
			// Like a lost datagram: CoAP retransmits.
			d.log.Debug("send failed", "peer", dg.Peer, "len", len(dg.Data), "rc", rc)
		}
	}
	if d.dropped > 0 {
		d.log.Warn("events dropped; the host is not polling", "count", d.dropped)
		d.dropped = 0
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

// configObjectsXML is the avc_init configuration key that carries custom
// object definitions: an array of OMA registry XML documents.
const configObjectsXML = abi.ConfigObjectsXML

// parseConfig decodes the avc_init configuration: a JSON object whose
// values are strings or numbers (AVC_LIFETIME may be 300 or "300"), except
// "objects_xml", an array of strings; null values are skipped. It returns
// the settings and the object definition documents.
func parseConfig(b []byte) (map[string]string, []string, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]string{}, nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, nil, fmt.Errorf("config: want a JSON object of AVC_* names: %v", err)
	}
	m := make(map[string]string, len(raw))
	var docs []string
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		switch {
		case bytes.Equal(v, []byte("null")):
		case k == configObjectsXML:
			if err := json.Unmarshal(v, &docs); err != nil {
				return nil, nil, fmt.Errorf("config: %s: want an array of XML documents (strings): %v", k, err)
			}
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, nil, fmt.Errorf("config: %s: %v", k, err)
			}
			m[k] = s
		case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')):
			m[k] = string(v)
		default:
			return nil, nil, fmt.Errorf("config: %s: want a string or a number, got %s", k, v)
		}
	}
	return m, docs, nil
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
