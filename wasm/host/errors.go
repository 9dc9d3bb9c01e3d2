package host

import (
	"errors"
	"fmt"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/wasm/abi"
)

// Code is a result code of the avc.wasm exports (wasm/ABI.md "Result
// codes").
type Code = abi.Code

// Result codes.
const (
	CodeOK             = abi.OK
	CodeNone           = abi.None
	CodeFault          = abi.Fault
	CodeBadInput       = abi.BadInput
	CodeDuplicate      = abi.Duplicate
	CodeBadParameter   = abi.BadParameter
	CodeUnsupported    = abi.Unsupported
	CodeNotInitialized = abi.NotInitialized
	CodeNotRegistered  = abi.NotRegistered
)

// ABIVersion is the avc.wasm ABI version this package implements.
const ABIVersion = abi.Version

// Error is a failure reported by an export: its result code and the
// module's avc_last_error text.
//
// errors.Is matches an Error against the agent package's sentinels with the
// same meaning: [agent.ErrDuplicate], [agent.ErrNotRegistered],
// [agent.ErrUnknownCommand], [agent.ErrBadValue] for a refused command
// argument (a "set" path or value), and [agent.ErrConfig] for a rejected
// configuration.
type Error struct {
	Op   string // the export, "avc_command"
	Code Code
	Msg  string // avc_last_error; may be empty
}

// Error returns the module's message and the code's name.
func (e *Error) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("%s: %s", e.Op, e.Code)
	}
	return fmt.Sprintf("%s (%s)", e.Msg, e.Code)
}

// Is implements the errors.Is matching described on Error.
func (e *Error) Is(target error) bool {
	switch target {
	case agent.ErrDuplicate:
		return e.Code == CodeDuplicate
	case agent.ErrNotRegistered:
		return e.Code == CodeNotRegistered
	case agent.ErrUnknownCommand:
		return e.Code == CodeUnsupported
	case agent.ErrBadValue:
		return e.Code == CodeBadInput && e.Op == "avc_command"
	case agent.ErrConfig:
		return e.Code == CodeBadInput && e.Op == "avc_init"
	}
	return false
}

// ErrTrapped is matched by the error of every call into a module that has
// trapped (or exited): the instance is gone and must be replaced.
var ErrTrapped = errors.New("host: module trapped")

// ErrClosed is returned by calls into a closed module.
var ErrClosed = errors.New("host: module closed")

// TrapError describes the trap that ended a module instance.
type TrapError struct {
	Op     string // the export that trapped
	Err    error  // wazero's error
	Stderr string // the end of what the module wrote to stderr (Go's fatal error report)
}

// Error describes the trap, with the module's last words on stderr.
func (e *TrapError) Error() string {
	s := fmt.Sprintf("host: %s trapped: %v", e.Op, e.Err)
	if e.Stderr != "" {
		s += "; stderr: " + e.Stderr
	}
	return s
}

// Unwrap returns ErrTrapped and wazero's error.
func (e *TrapError) Unwrap() []error { return []error{ErrTrapped, e.Err} }
