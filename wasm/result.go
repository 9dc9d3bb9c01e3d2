//go:build wasip1

package main

import (
	"errors"

	"github.com/avc-agent/avc/agent"
)

// abiVersion is the value of avc_abi_version; see ABI.md "Versioning".
const abiVersion = 1

// Result codes returned by the exports (ABI.md "Result codes"). The values
// match Legato's le_result_t where the meaning is the same.
const (
	rcOK             int32 = 0   // AVC_OK
	rcNone           int32 = -1  // AVC_NONE: avc_step only, no deadline
	rcFault          int32 = -6  // AVC_FAULT
	rcBadInput       int32 = -13 // AVC_BAD_INPUT
	rcDuplicate      int32 = -14 // AVC_DUPLICATE
	rcBadParameter   int32 = -15 // AVC_BAD_PARAMETER
	rcUnsupported    int32 = -18 // AVC_UNSUPPORTED
	rcNotInitialized int32 = -21 // AVC_NOT_INITIALIZED
	rcNotRegistered  int32 = -25 // AVC_NOT_REGISTERED
)

// minEventLen is the smallest length avc_poll_event ever reports: encoded
// events shorter than this are padded with spaces, so that a result r with
// -minEventLen < r < 0 is always a result code and r <= -minEventLen is
// always -(needed size).
const minEventLen = 32

// commandResult maps an error of Engine.HandleCommand to a result code.
func commandResult(err error) int32 {
	switch {
	case err == nil:
		return rcOK
	case errors.Is(err, agent.ErrDuplicate):
		return rcDuplicate
	case errors.Is(err, agent.ErrNotRegistered):
		return rcNotRegistered
	case errors.Is(err, agent.ErrUnknownCommand):
		return rcUnsupported
	}
	return rcFault
}
