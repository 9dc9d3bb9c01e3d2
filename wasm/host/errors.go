package host

import (
	"errors"
	"fmt"

	"github.com/avc-agent/avc/agent"
)

// Code is a result code of the avc.wasm exports (wasm/ABI.md "Result
// codes"). The values match Legato's le_result_t where the meaning is the
// same.
type Code int32

// Result codes.
const (
	CodeOK             Code = 0   // AVC_OK
	CodeNone           Code = -1  // AVC_NONE: no deadline (avc_step only)
	CodeFault          Code = -6  // AVC_FAULT: the engine panicked and was discarded
	CodeBadInput       Code = -13 // AVC_BAD_INPUT: bad JSON, configuration or value
	CodeDuplicate      Code = -14 // AVC_DUPLICATE: already in that state
	CodeBadParameter   Code = -15 // AVC_BAD_PARAMETER: pointer or length not in a live buffer
	CodeUnsupported    Code = -18 // AVC_UNSUPPORTED: unknown command
	CodeNotInitialized Code = -21 // AVC_NOT_INITIALIZED: avc_init has not succeeded
	CodeNotRegistered  Code = -25 // AVC_NOT_REGISTERED: the command needs a registration
)

var codeNames = map[Code]string{
	CodeOK:             "AVC_OK",
	CodeNone:           "AVC_NONE",
	CodeFault:          "AVC_FAULT",
	CodeBadInput:       "AVC_BAD_INPUT",
	CodeDuplicate:      "AVC_DUPLICATE",
	CodeBadParameter:   "AVC_BAD_PARAMETER",
	CodeUnsupported:    "AVC_UNSUPPORTED",
	CodeNotInitialized: "AVC_NOT_INITIALIZED",
	CodeNotRegistered:  "AVC_NOT_REGISTERED",
}

// String returns the code's C name, "AVC_DUPLICATE".
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("AVC_%d", int32(c))
}

// ABIVersion is the avc.wasm ABI version this package implements.
const ABIVersion = 1

// Error is a failure reported by an export: its result code and the
// module's avc_last_error text.
//
// errors.Is matches an Error against the agent package's sentinels with the
// same meaning: [agent.ErrDuplicate], [agent.ErrNotRegistered],
// [agent.ErrUnknownCommand], and [agent.ErrConfig] for a rejected
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
