package abi

import "fmt"

// Version is the value of the avc_abi_version export; see ABI.md
// "Versioning".
const Version = 1

// ImportModule is the module name of the host imports.
const ImportModule = "avc_host"

// ConfigObjectsXML is the avc_init configuration key of custom object
// definitions: an array of OMA LwM2M registry XML documents (ABI.md
// "avc_init"). It is not an AVC_* name: no environment variable holds it.
const ConfigObjectsXML = "objects_xml"

// MinEventLen is the smallest length avc_poll_event ever reports: shorter
// events are padded with spaces, so that a result r with
// -MinEventLen < r < 0 is always a result code and r <= -MinEventLen is
// always -(needed size).
const MinEventLen = 32

// Code is a result code of the exports. The values match Legato's
// le_result_t where the meaning is the same.
type Code int32

// Result codes (ABI.md "Result codes").
const (
	OK             Code = 0   // AVC_OK
	None           Code = -1  // AVC_NONE: no deadline (avc_step only)
	Fault          Code = -6  // AVC_FAULT: the engine panicked and was discarded
	BadInput       Code = -13 // AVC_BAD_INPUT: bad JSON, configuration or value
	Duplicate      Code = -14 // AVC_DUPLICATE: already in that state
	BadParameter   Code = -15 // AVC_BAD_PARAMETER: pointer or length not in a live buffer
	Unsupported    Code = -18 // AVC_UNSUPPORTED: unknown command
	NotInitialized Code = -21 // AVC_NOT_INITIALIZED: avc_init has not succeeded
	NotRegistered  Code = -25 // AVC_NOT_REGISTERED: the command needs a registration
)

var names = map[Code]string{
	OK:             "AVC_OK",
	None:           "AVC_NONE",
	Fault:          "AVC_FAULT",
	BadInput:       "AVC_BAD_INPUT",
	Duplicate:      "AVC_DUPLICATE",
	BadParameter:   "AVC_BAD_PARAMETER",
	Unsupported:    "AVC_UNSUPPORTED",
	NotInitialized: "AVC_NOT_INITIALIZED",
	NotRegistered:  "AVC_NOT_REGISTERED",
}

// String returns the code's C name, "AVC_DUPLICATE".
func (c Code) String() string {
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("AVC_%d", int32(c))
}
