package server

import (
	"errors"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
)

// Sentinel errors. Operations wrap them with context; test with errors.Is.
var (
	// ErrNotRegistered: the endpoint named in an operation has no
	// registration.
	ErrNotRegistered = errors.New("server: client not registered")
	// ErrFormat: the content format cannot be used for the operation and
	// path (for example text/plain for an object instance).
	ErrFormat = errors.New("server: unsupported content format")
	// ErrBadPath: the path cannot be used for the operation (for example
	// Execute on an object instance).
	ErrBadPath = errors.New("server: bad path for operation")
	// ErrBadAttributes: Write-Attributes was given no attribute, a
	// negative period, a non-finite threshold or an unknown name to unset.
	ErrBadAttributes = errors.New("server: bad attributes")
	// ErrNotObserved: the client answered an Observe request, or sent a
	// notification, without an Observe option, so it keeps no observation
	// (RFC 7641 §3.1 and §3.2).
	ErrNotObserved = errors.New("server: client keeps no observation")
	// ErrCancelled: the observation was cancelled with
	// [Observation.Cancel].
	ErrCancelled = errors.New("server: observation cancelled")
	// ErrRegistrationEnded: the registration an observation belonged to
	// ended: the client de-registered, its registration expired or a new
	// Register replaced it (Core TS 1.1 §6.4.1: the server must observe
	// again after a new registration).
	ErrRegistrationEnded = errors.New("server: registration ended")
)

// CodeError reports a client's answer that is not a success (2.xx) to an
// operation on Path. Code is the CoAP response code, such as 4.04 Not
// Found or 4.05 Method Not Allowed (Core TS 1.1 §6.3, Transport TS 1.1
// §6.4).
type CodeError struct {
	// Op is "read", "write", "execute", "discover", "observe", "cancel"
	// (an Observe cancellation), "notify" (a notification with an error
	// code, which ends the observation) or "write-attributes".
	Op   string
	Path lwm2m.Path
	Code codes.Code
}

// Error returns "server: read /3/0/9: 4.04 NotFound".
func (e *CodeError) Error() string {
	return fmt.Sprintf("server: %s %s: %s %s", e.Op, e.Path, codeString(e.Code), e.Code)
}

// inputError marks an error in what the caller asked for, as opposed to
// what the client answered. The HTTP API maps it to 400.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error {
	return &inputError{fmt.Errorf(format, args...)}
}

// codeString formats a CoAP code in its dotted form, "2.05".
func codeString(c codes.Code) string {
	return fmt.Sprintf("%d.%02d", uint8(c)>>5, uint8(c)&0x1f)
}

// success reports whether c is a 2.xx code.
func success(c codes.Code) bool { return uint8(c)>>5 == 2 }
