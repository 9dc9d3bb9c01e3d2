package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
)

// stateVersion is the version of the persistent state's layout.
const stateVersion = 1

// persistent is the part of the engine's state that survives restarts:
// the values a server may write and that LwM2M says are kept.
type persistent struct {
	Lifetime  uint32 `json:"lifetime"`   // /1/0/1, seconds
	Binding   string `json:"binding"`    // /1/0/7
	UTCOffset string `json:"utc_offset"` // /3/0/14
	Timezone  string `json:"timezone"`   // /3/0/15
	ClockSkew int64  `json:"clock_skew"` // /3/0/13 written minus engine time, seconds
	// ConfLifetime is the configured lifetime when the state was written:
	// a server-written lifetime survives restarts until the operator
	// configures a different one.
	ConfLifetime uint32 `json:"conf_lifetime"`
	// FW is the Firmware Update object's state (firmware.go).
	FW fwPersist `json:"fw"`
	// SW holds the Software Management instances' records by instance ID
	// (software.go); each is versioned and checked on its own.
	SW swRecords `json:"sw,omitempty"`
	// Ctl is update control's record (controlimpl.go): agreements,
	// polling and retry timers, last-poll epoch, APN, resume state. A
	// state without one (written before it existed, or with control
	// off) loads with nil, and update control writes its defaults.
	Ctl *ctlPersist `json:"ctl,omitempty"`
	// Boot is what the last bootstrap provisioned (bootstrap.go): the
	// Security and Server objects, credentials included. Without one the
	// engine starts from the configuration (factory bootstrap).
	Boot *bootRecord `json:"boot,omitempty"`
	// RegFailures counts consecutive failed Registers towards the
	// fallback to bootstrap (Config.BootstrapAfterFailures).
	RegFailures int `json:"reg_failures,omitempty"`
	// Lifetimes are the lifetimes servers wrote to the Server instances
	// of further configured servers (Config.Servers), by Short Server
	// ID, each with the configured lifetime it replaced: it applies
	// until the operator configures another (servers.go). A bootstrap's
	// servers keep theirs in Boot.
	Lifetimes map[uint16]lifetimeRecord `json:"lifetimes,omitempty"`
}

// lifetimeRecord is a server-written lifetime and the configured one it
// replaced, in seconds.
type lifetimeRecord struct {
	Lifetime uint32 `json:"lifetime"`
	Conf     uint32 `json:"conf"`
}

// swRecords are the Software Management records. A record that does not
// decode is dropped alone, like one that decodes but is not valid (see
// loadPersistent).
type swRecords map[uint16]*swPersist

// UnmarshalJSON implements json.Unmarshaler: it decodes each record on
// its own, so that one bad record cannot spoil the others.
func (r *swRecords) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(swRecords, len(raw))
	for k, v := range raw {
		id, err := strconv.ParseUint(k, 10, 16)
		if err != nil {
			continue // not an instance ID: nothing to keep
		}
		p := new(swPersist)
		if err := json.Unmarshal(v, p); err != nil {
			p = droppedSoftware()
		}
		out[uint16(id)] = p
	}
	*r = out
	return nil
}

func defaultPersistent(c *Config) persistent {
	return persistent{
		Lifetime:     uint32(c.lifetime().Seconds()),
		ConfLifetime: uint32(c.lifetime().Seconds()),
		Binding:      c.binding(),
		UTCOffset:    orDefault(c.Device.UTCOffset, "+00:00"),
		Timezone:     orDefault(c.Device.Timezone, "UTC"),
		FW:           fwPersist{Severity: 1, dlRecord: dlRecord{Total: -1}},
	}
}

// envelope is the stored form: a version and a checksum around the state,
// so that a torn or corrupted record is detected rather than half-used.
type envelope struct {
	Version int             `json:"v"`
	CRC     uint32          `json:"crc"`
	State   json.RawMessage `json:"state"`
}

var errBadState = errors.New("agent: bad stored state")

// stateEncoder is the scratch space persistent.appendTo keeps between
// calls (every firmware checkpoint stores): the state's JSON and its
// encoder.
type stateEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// marshal returns the stored form of p (appendTo a new slice).
func (p *persistent) marshal(se *stateEncoder) []byte { return p.appendTo(nil, se) }

// appendTo appends the stored form of p to dst: the JSON of an envelope
// around it, written directly rather than by marshalling the envelope,
// which would copy and re-validate the state. se, when not nil, holds the
// state's JSON meanwhile and is kept for the next call; with it and a dst
// of room enough, appendTo allocates nothing of its own.
func (p *persistent) appendTo(dst []byte, se *stateEncoder) []byte {
	if se == nil {
		se = new(stateEncoder)
	}
	if se.enc == nil {
		se.enc = json.NewEncoder(&se.buf)
	}
	se.buf.Reset()
	se.enc.Encode(p)
	body := bytes.TrimSuffix(se.buf.Bytes(), []byte("\n"))
	b := dst
	if b == nil {
		b = make([]byte, 0, len(body)+40)
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, stateVersion, 10)
	b = append(b, `,"crc":`...)
	b = strconv.AppendUint(b, uint64(crc32.ChecksumIEEE(body)), 10)
	b = append(b, `,"state":`...)
	b = append(b, body...)
	return append(b, '}')
}

func loadPersistent(b []byte) (persistent, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return persistent{}, fmt.Errorf("%w: %v", errBadState, err)
	}
	if env.Version != stateVersion {
		return persistent{}, fmt.Errorf("%w: version %d", errBadState, env.Version)
	}
	if crc32.ChecksumIEEE(env.State) != env.CRC {
		return persistent{}, fmt.Errorf("%w: checksum mismatch", errBadState)
	}
	var p persistent
	if err := json.Unmarshal(env.State, &p); err != nil {
		return persistent{}, fmt.Errorf("%w: %v", errBadState, err)
	}
	if p.Lifetime == 0 || (p.Binding != "U" && p.Binding != "UQ") {
		return persistent{}, fmt.Errorf("%w: out-of-range values", errBadState)
	}
	if !p.FW.valid() {
		// A firmware record that cannot be right (B57) is dropped alone:
		// Idle with Result 8, the rest of the state kept.
		p.FW = fwPersist{State: FirmwareIdle, Result: ResultFailed, Severity: 1}
	}
	if p.Boot != nil && !p.Boot.valid() {
		// A provisioning record that cannot be right is dropped: the
		// factory configuration applies, and bootstraps again.
		p.Boot = nil
	}
	if p.RegFailures < 0 {
		p.RegFailures = 0
	}
	if p.Ctl != nil && !p.Ctl.valid() {
		// A control record that cannot be right is dropped alone: the
		// defaults replace it.
		p.Ctl = nil
	}
	for id, r := range p.SW {
		if r == nil || !r.valid() {
			// Likewise a software record (another layout version, or an
			// inconsistent one): the instance stays, INITIAL with
			// Result 57.
			p.SW[id] = droppedSoftware()
		}
	}
	return p, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
