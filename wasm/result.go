//go:build wasip1

package main

import (
	"errors"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/wasm/abi"
)

// abiVersion is the value of avc_abi_version.
const abiVersion = abi.Version

// Result codes returned by the exports, as int32 for the wasm signatures.
const (
	rcOK             = int32(abi.OK)
	rcNone           = int32(abi.None)
	rcFault          = int32(abi.Fault)
	rcBadInput       = int32(abi.BadInput)
	rcDuplicate      = int32(abi.Duplicate)
	rcBadParameter   = int32(abi.BadParameter)
	rcUnsupported    = int32(abi.Unsupported)
	rcNotInitialized = int32(abi.NotInitialized)
	rcNotRegistered  = int32(abi.NotRegistered)
)

// minEventLen is abi.MinEventLen.
const minEventLen = abi.MinEventLen

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
	case errors.Is(err, agent.ErrBadValue):
		return rcBadInput
	}
	return rcFault
}
