package agent

import (
	"encoding/json"
	"fmt"

	"github.com/avc-agent/avc/lwm2m"
)

// Command is an instruction from the host to the engine. The concrete
// types are CmdStart, CmdStop and CmdUpdate.
type Command interface {
	command() string
}

// CmdSet sets a value the host keeps up to date, such as the Device
// object's battery level (/3/0/9), memory free (/3/0/10) or an error code
// (/3/0/11/N). A resource-instance path of a multiple resource adds or
// replaces that instance; a zero Value (TypeNone) removes it. The value is
// converted to the resource's type; observers are notified per their
// attributes. It returns ErrBadValue for a path or value the engine
// refuses.
type CmdSet struct {
	Path  lwm2m.Path
	Value lwm2m.Value
}

// CmdStart starts a session: the engine registers to the server (and
// re-registers after failures) until CmdStop. Starting a started session
// returns ErrDuplicate.
type CmdStart struct{}

// CmdStop ends the session: the engine deregisters and reports
// EventDeregistered. Stopping a stopped session returns ErrDuplicate.
type CmdStop struct{}

// CmdUpdate sends a Registration Update now. It returns ErrNotRegistered
// when no registration is up.
type CmdUpdate struct{}

func (CmdStart) command() string  { return "start" }
func (CmdStop) command() string   { return "stop" }
func (CmdUpdate) command() string { return "update" }
func (CmdSet) command() string    { return "set" }

// CmdReadDone completes the read that EventReadRequest with Token asked
// for: the host has set the values it names (CmdSet), and the engine now
// answers the server with its values. It returns ErrBadValue when no
// read with Token waits (it was completed, or timed out).
type CmdReadDone struct {
	Token uint64
}

func (CmdReadDone) command() string { return "read_done" }

// ParseCommand decodes the JSON form of a command, as the wasm module
// receives it: {"cmd":"start"}, {"cmd":"stop"}, {"cmd":"update"}, or
// {"cmd":"set","path":"/3/0/9","value":"50"} (the value in its text/plain
// form; "type":"none" instead of a value removes a resource instance), or
// {"cmd":"send","paths":["/3/0/9","/6/0"]}, {"cmd":"read_done","token":7}
// (CmdReadDone). Update control:
// {"cmd":"accept","what":"download"}, {"cmd":"defer","what":"install",
// "minutes":30}, {"cmd":"set_agreement","what":"reboot","enable":true},
// {"cmd":"block_install","ref":1}, {"cmd":"unblock_install","ref":1},
// {"cmd":"set_polling_timer","minutes":60}, {"cmd":"set_retry_timers",
// "timers":[15,60,240,480,1440,2880,0,0]}, {"cmd":"set_apn","name":"apn",
// "user":"u","password":"p"}, {"cmd":"status_handlers","count":1},
// {"cmd":"session_requests","enable":true}, {"cmd":"link","phase":
// "auth_started"} (or "auth_failed", "failed", with "error"),
// {"cmd":"set_credential","credential":"bs_psk","server":0,"data":
// "<base64>"} (credentials sw_public_key, fw_public_key,
// bs_server_address, bs_psk_id, bs_psk). The
// agreements are named connection, download, install, uninstall, reboot.
func ParseCommand(b []byte) (Command, error) {
	var w struct {
		Cmd     string   `json:"cmd"`
		Path    string   `json:"path"`
		Value   string   `json:"value"`
		Type    string   `json:"type"`
		Paths   []string `json:"paths"`
		What    string   `json:"what"`
		Minutes uint32   `json:"minutes"`
		Enable  bool     `json:"enable"`
		Ref     uint64   `json:"ref"`
		Timers  []uint16 `json:"timers"`
		Name    string   `json:"name"`
		User    string   `json:"user"`
		Pass    string   `json:"password"`
		Count   int      `json:"count"`
		Phase   string   `json:"phase"`
		Err     string   `json:"error"`
		Cred    string   `json:"credential"`
		Server  uint16   `json:"server"`
		Data    []byte   `json:"data"`
		Token   uint64   `json:"token"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("agent: parse command: %w", err)
	}
	what := func() (Agreement, error) {
		for i, n := range agreementNames {
			if n == w.What {
				return Agreement(i), nil
			}
		}
		return 0, fmt.Errorf("%w: agreement %q", ErrBadValue, w.What)
	}
	switch w.Cmd {
	case "accept", "defer", "set_agreement":
		a, err := what()
		if err != nil {
			return nil, fmt.Errorf("agent: parse command: %w", err)
		}
		switch w.Cmd {
		case "accept":
			return CmdAccept{What: a}, nil
		case "defer":
			return CmdDefer{What: a, Minutes: w.Minutes}, nil
		}
		return CmdSetAgreement{What: a, Enable: w.Enable}, nil
	case "block_install":
		return CmdBlockInstall{Ref: w.Ref}, nil
	case "unblock_install":
		return CmdUnblockInstall{Ref: w.Ref}, nil
	case "set_polling_timer":
		return CmdSetPollingTimer{Minutes: w.Minutes}, nil
	case "set_retry_timers":
		return CmdSetRetryTimers{Minutes: w.Timers}, nil
	case "set_apn":
		return CmdSetAPN{Name: w.Name, User: w.User, Password: w.Pass}, nil
	case "status_handlers":
		return CmdStatusHandlers{Count: w.Count}, nil
	case "session_requests":
		return CmdSessionRequests{Handler: w.Enable}, nil
	case "set_credential":
		for i, n := range credentialNames {
			if n == w.Cred {
				return CmdSetCredential{Type: CredentialType(i), ServerID: w.Server, Data: w.Data}, nil
			}
		}
		return nil, fmt.Errorf("agent: parse command: %w: credential %q", ErrBadValue, w.Cred)
	case "link":
		for ph, n := range linkPhaseNames {
			if n == w.Phase {
				return CmdLink{Phase: ph, Err: w.Err}, nil
			}
		}
		return nil, fmt.Errorf("agent: parse command: %w: link phase %q", ErrBadValue, w.Phase)
	case "read_done":
		return CmdReadDone{Token: w.Token}, nil
	case "start":
		return CmdStart{}, nil
	case "stop":
		return CmdStop{}, nil
	case "update":
		return CmdUpdate{}, nil
	case "send":
		c := CmdSend{}
		for _, ps := range w.Paths {
			p, err := lwm2m.ParsePath(ps)
			if err != nil {
				return nil, fmt.Errorf("agent: parse command: %w", err)
			}
			c.Paths = append(c.Paths, p)
		}
		return c, nil
	case "set":
		p, err := lwm2m.ParsePath(w.Path)
		if err != nil {
			return nil, fmt.Errorf("agent: parse command: %w", err)
		}
		// The value travels in its text/plain form; the engine converts
		// it to the resource's type. "type":"none" removes an instance.
		v := lwm2m.String(w.Value)
		if w.Type == "none" {
			v = lwm2m.Value{}
		}
		return CmdSet{Path: p, Value: v}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCommand, w.Cmd)
}

// CommandName returns the JSON "cmd" name of c.
func CommandName(c Command) string { return c.command() }
