package agent

import (
	"encoding/json"
	"fmt"
)

// EventKind says what an [Event] reports.
type EventKind uint8

// Event kinds. Their text names (see String) are the "kind" field of the
// JSON form that the wasm module and the bindings exchange.
const (
	// EventRegistered: the server accepted the registration; a DM session
	// is up (le_avc: LE_AVC_SESSION_STARTED).
	EventRegistered EventKind = iota + 1
	// EventUpdated: the server acknowledged a Registration Update.
	EventUpdated
	// EventDeregistered: the session is down after a Deregister or a Stop
	// command (le_avc: LE_AVC_SESSION_STOPPED).
	EventDeregistered
	// EventRegistrationFailed: registering failed: the server refused it or
	// did not answer (le_avc: LE_AVC_SESSION_FAILED). The engine retries.
	EventRegistrationFailed
	// EventRead, EventWrite and EventExecute report a server operation on
	// Path that succeeded. Write and Execute are what hosts act on.
	EventRead
	EventWrite
	EventExecute
	// EventReboot: the server executed Device /3/0/4. The host reboots.
	EventReboot
	// EventFactoryReset: the server executed Device /3/0/5.
	EventFactoryReset
	// EventNotify: an Observe notification for Path was sent.
	EventNotify
	// EventSent: the server acknowledged a Send (CmdSend); Path names the
	// first path reported.
	EventSent
	// EventSendFailed: the server refused a Send (Code), or its values
	// could not be encoded; they are dropped.
	EventSendFailed
	// EventSleep: in queue mode, the queue window passed with nothing in
	// flight; the client is unreachable until it sends again, and the host
	// may power down its radio until the deadline Step returns.
	EventSleep
	// EventWake: a sleeping queue-mode client has something to send.
	EventWake
	// EventCreate: the server created the object instance Path.
	EventCreate
	// EventDelete: the server deleted the object instance Path.
	EventDelete
	// EventStore: the engine's persistent state changed; Data holds the new
	// state, which the host stores atomically and passes back to NewEngine
	// after a restart.
	EventStore
	// EventFirmware: the firmware update (Object 5) changed state or made
	// progress; Firmware holds the status.
	EventFirmware
	// EventRestart: the engine must be restarted from its stored state, as
	// after a reboot: a firmware install (or a revert) needs it. A driver
	// that cannot restart the process makes a new engine.
	EventRestart
	// EventSoftware: a Software Management instance (Object 9, Path
	// "/9/<instance>") was created, changed state, made download progress
	// or was activated or deactivated; Software holds its status.
	EventSoftware
	// EventStatus: an update-control status (le_avc), with Status; only
	// with Config.Control.Enabled.
	EventStatus
	// EventBootstrapStarted: a bootstrap session with Server (the
	// bootstrap server) started: a Bootstrap-Request went out, or the
	// bootstrap server started one itself (le_avc:
	// LE_AVC_SESSION_BS_STARTED).
	EventBootstrapStarted
	// EventBootstrapFinished: the bootstrap server sent Bootstrap-Finish
	// and the configuration it provisioned is stored; the engine now
	// registers with the DM server it was given.
	EventBootstrapFinished
	// EventBootstrapFailed: a bootstrap session failed (Err, Code); the
	// engine retries.
	EventBootstrapFailed
	// EventSessionAcquire and EventSessionRelease: with a session request
	// handler (CmdSessionRequests), update control asks the host to open
	// a session it needs, or to close an inactive one (le_avc
	// LE_AVC_SESSION_ACQUIRE, LE_AVC_SESSION_RELEASE).
	EventSessionAcquire
	EventSessionRelease
	// EventReadRequest: a server reads resources declared with
	// lwm2m.ResourceDef.OnRead (Paths, under the request's Path). The
	// engine has acknowledged the request and waits: the host sets their
	// values (CmdSet) and then completes the read with CmdReadDone{Token};
	// the engine answers from its values then, or after
	// Config.ReadTimeout without it (readcb.go).
	EventReadRequest
)

var eventNames = map[EventKind]string{
	EventRegistered:         "registered",
	EventUpdated:            "updated",
	EventDeregistered:       "deregistered",
	EventRegistrationFailed: "registration_failed",
	EventRead:               "read",
	EventWrite:              "write",
	EventExecute:            "execute",
	EventReboot:             "reboot",
	EventFactoryReset:       "factory_reset",
	EventNotify:             "notify",
	EventSent:               "sent",
	EventSendFailed:         "send_failed",
	EventSleep:              "sleep",
	EventWake:               "wake",
	EventCreate:             "create",
	EventDelete:             "delete",
	EventStore:              "store",
	EventFirmware:           "firmware",
	EventRestart:            "restart",
	EventSoftware:           "software",
	EventStatus:             "status",
	EventBootstrapStarted:   "bootstrap_started",
	EventBootstrapFinished:  "bootstrap_finished",
	EventBootstrapFailed:    "bootstrap_failed",
	EventSessionAcquire:     "session_acquire",
	EventSessionRelease:     "session_release",
	EventReadRequest:        "read_request",
}

// String returns the kind's snake_case name.
func (k EventKind) String() string {
	if n, ok := eventNames[k]; ok {
		return n
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// MarshalText implements encoding.TextMarshaler.
func (k EventKind) MarshalText() ([]byte, error) {
	if n, ok := eventNames[k]; ok {
		return []byte(n), nil
	}
	return nil, fmt.Errorf("agent: unknown event kind %d", uint8(k))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *EventKind) UnmarshalText(b []byte) error {
	for kind, n := range eventNames {
		if n == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("agent: unknown event kind %q", b)
}

// Event is something the engine reports to its host. Only the fields that
// matter for Kind are set.
type Event struct {
	Kind EventKind `json:"kind"`
	// Server is the server URI the event concerns.
	Server string `json:"server,omitempty"`
	// Further is set when the event concerns a further DM server
	// (Config.Servers) rather than the first one, whose registration is
	// the session hosts follow: a host that tracks one session ignores
	// the registration events of further servers.
	Further bool `json:"further,omitempty"`
	// Location is the registration's location path ("/rd/5a3f").
	Location string `json:"location,omitempty"`
	// Lifetime is the registration lifetime in seconds.
	Lifetime uint32 `json:"lifetime,omitempty"`
	// Path is the LwM2M path of a server operation ("/3/0").
	Path string `json:"path,omitempty"`
	// Code is a CoAP response code in dotted form ("4.04").
	Code string `json:"code,omitempty"`
	// Err describes a failure.
	Err string `json:"error,omitempty"`
	// Data is the payload of EventStore (the persistent state) or the
	// arguments of EventExecute.
	Data []byte `json:"data,omitempty"`
	// Firmware is the status of EventFirmware.
	Firmware *FirmwareStatus `json:"firmware,omitempty"`
	// Status is the update-control status of EventStatus.
	Status *StatusInfo `json:"status,omitempty"`
	// Software is the status of EventSoftware.
	Software *SoftwareStatus `json:"software,omitempty"`
	// Token identifies the read of EventReadRequest, for CmdReadDone.
	Token uint64 `json:"token,omitempty"`
	// Paths are the resources whose values EventReadRequest asks for.
	Paths []string `json:"paths,omitempty"`
}

// MarshalJSON is json.Marshal of the event; it exists so that drivers
// share one wire form.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(plain(e))
}
