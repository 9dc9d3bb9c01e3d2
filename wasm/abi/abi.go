package abi

import "fmt"

// Version is the value of the avc_abi_version export; see ABI.md
// "Versioning". Version 2 added the firmware imports (fw_open …
// fw_sync), version 3 the firmware hook imports (fw_get_name,
// fw_get_version, fw_get_coap_tx_params); every host must provide them.
const Version = 3

// FwTxParamsSize is the size of the buffer fw_get_coap_tx_params fills in
// (ABI.md): ack_timeout_ms (u32 LE) at 0, max_retransmit (u32 LE) at 4,
// ack_random_factor (f64 LE) at 8.
const FwTxParamsSize = 16

// FwTextMax is the capacity given to fw_get_name and fw_get_version: the
// longest PkgName or PkgVersion.
const FwTextMax = 255

// ImportModule is the module name of the host imports.
const ImportModule = "avc_host"

// ConfigObjectsXML is the avc_init configuration key of custom object
// definitions: an array of OMA LwM2M registry XML documents (ABI.md
// "avc_init"). It is not an AVC_* name: no environment variable holds it.
const ConfigObjectsXML = "objects_xml"

// ConfigReadCallbacks is the avc_init configuration key of the resources
// of ConfigObjectsXML objects whose values the host gives when a server
// reads them (lwm2m.ResourceDef.OnRead): an array of "/OBJ/RES" paths
// (ABI.md "avc_init", "read_request" events).
const ConfigReadCallbacks = "read_callbacks"

// ConfigFirmware is the avc_init configuration key that enables firmware
// update (Object 5) through the firmware imports: a JSON boolean (ABI.md
// "avc_init"). Without it the module never calls those imports.
const ConfigFirmware = "firmware"

// ConfigControl is the avc_init configuration key that turns on update
// control (agent.Config.Control: user agreements, install blocks, polling
// and retry timers, "status" events): a JSON boolean. The update-control
// commands (accept, defer, set_agreement, ...) then go through
// avc_command.
const ConfigControl = "control"

// The avc_init configuration keys of the DTLS timing for a coaps:// server
// (agent.Config.DTLSHandshakeTimeout, DTLSRetryDelay and NATTimeout), in
// milliseconds, as a JSON number or a numeric string (ABI.md "avc_init").
// Absent or 0 means the default (30 s, 60 s, 40 s); a negative NAT timeout
// turns the NAT check off.
const (
	ConfigDTLSHandshakeTimeout = "dtls_handshake_timeout_ms"
	ConfigDTLSRetryDelay       = "dtls_retry_delay_ms"
	ConfigNATTimeout           = "nat_timeout_ms"
)

// The avc_init configuration keys of DTLS with certificates (Security
// mode 2): the PEM text of the client's certificate chain, of its private
// key and of the trust anchors for the server's certificate
// (agent.Config.CertPEM, KeyPEM and CAPEM). The module reads no files:
// hosts read AVC_CERT_FILE, AVC_KEY_FILE and AVC_CA_FILE and pass their
// contents under these keys.
const (
	ConfigCertPEM = "cert_pem"
	ConfigKeyPEM  = "key_pem"
	ConfigCAPEM   = "ca_pem"
)

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

// FirmwareCode is a failure result of the firmware imports (ABI.md
// "Firmware imports"); 0 is success. A code other than FwOther names
// Update Result -code (/5/0/5), with the names and values of libavc's
// avc_fw_error_t (include/avc.h) and Anjay's ANJAY_FW_UPDATE_ERR_*. Any
// other negative value, FwOther for one, is a failure that takes the
// call's default result.
type FirmwareCode int32

// Firmware import failures.
const (
	FwOther                  FirmwareCode = -1  // AVC_FW_ERR_OTHER: the call's default result
	FwNotEnoughSpace         FirmwareCode = -2  // AVC_FW_ERR_NOT_ENOUGH_SPACE: Result 2
	FwOutOfMemory            FirmwareCode = -3  // AVC_FW_ERR_OUT_OF_MEMORY: Result 3
	FwIntegrityFailure       FirmwareCode = -5  // AVC_FW_ERR_INTEGRITY_FAILURE: Result 5
	FwUnsupportedPackageType FirmwareCode = -6  // AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE: Result 6
	FwDeferred               FirmwareCode = -11 // AVC_FW_ERR_DEFERRED: Result 11 (fw_upgrade)
)

var fwNames = map[FirmwareCode]string{
	FwOther:                  "AVC_FW_ERR_OTHER",
	FwNotEnoughSpace:         "AVC_FW_ERR_NOT_ENOUGH_SPACE",
	FwOutOfMemory:            "AVC_FW_ERR_OUT_OF_MEMORY",
	FwIntegrityFailure:       "AVC_FW_ERR_INTEGRITY_FAILURE",
	FwUnsupportedPackageType: "AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE",
	FwDeferred:               "AVC_FW_ERR_DEFERRED",
}

// String returns the code's C name, "AVC_FW_ERR_NOT_ENOUGH_SPACE".
func (c FirmwareCode) String() string {
	if n, ok := fwNames[c]; ok {
		return n
	}
	return fmt.Sprintf("AVC_FW_ERR_%d", int32(c))
}
