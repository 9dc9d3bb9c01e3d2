package agent

import (
	"encoding/json"
	"fmt"
)

// Command is an instruction from the host to the engine. The concrete
// types are CmdStart, CmdStop and CmdUpdate.
type Command interface {
	command() string
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

// ParseCommand decodes the JSON form of a command, {"cmd":"start"}, as the
// wasm module receives it.
func ParseCommand(b []byte) (Command, error) {
	var w struct {
		Cmd string `json:"cmd"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("agent: parse command: %w", err)
	}
	switch w.Cmd {
	case "start":
		return CmdStart{}, nil
	case "stop":
		return CmdStop{}, nil
	case "update":
		return CmdUpdate{}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCommand, w.Cmd)
}

// CommandName returns the JSON "cmd" name of c.
func CommandName(c Command) string { return c.command() }
