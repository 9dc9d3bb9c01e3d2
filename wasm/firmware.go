//go:build wasip1

package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/wasm/abi"
)

// The firmware imports (ABI.md "Firmware imports"). The module calls them
// only when avc_init's configuration enables firmware update
// ("firmware": true); every host must still provide them, because wasm
// imports are resolved at instantiation.

//go:wasmimport avc_host fw_open
func hostFwOpen(uri string, offset int64) int32

//go:wasmimport avc_host fw_write
func hostFwWrite(data unsafe.Pointer, n uint32) int32

//go:wasmimport avc_host fw_finish
func hostFwFinish() int32

//go:wasmimport avc_host fw_reset
func hostFwReset()

//go:wasmimport avc_host fw_upgrade
func hostFwUpgrade(pkg string) int32

//go:wasmimport avc_host fw_booted
func hostFwBooted(pkg string, out unsafe.Pointer, size uint32) int32

//go:wasmimport avc_host fw_sync
func hostFwSync() int32

//go:wasmimport avc_host fw_get_name
func hostFwGetName(out unsafe.Pointer, size uint32) int32

//go:wasmimport avc_host fw_get_version
func hostFwGetVersion(out unsafe.Pointer, size uint32) int32

//go:wasmimport avc_host fw_get_coap_tx_params
func hostFwGetCoapTxParams(uri string, out unsafe.Pointer) int32

// maxFwVersion is the size of the buffer fw_booted writes the running
// version into: /3/0/3 holds at most 255 bytes.
const maxFwVersion = 255

// hostFirmware is the engine's agent.FirmwareHandler (and
// agent.FirmwareSyncer): every call goes to the host's firmware imports,
// and their result codes become the agent's firmware errors. It holds no
// state of its own.
type hostFirmware struct{}

// fwPackage is the JSON form of agent.FirmwarePackage given to fw_upgrade
// and fw_booted.
type fwPackage struct {
	URI     string `json:"uri"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

func packageJSON(p agent.FirmwarePackage) string {
	b, _ := json.Marshal(fwPackage{URI: p.URI, Name: p.Name, Version: p.Version, Size: p.Size, SHA256: p.SHA256})
	return string(b)
}

// fwErrors maps the negative results of the firmware imports that name an
// Update Result to the agent's errors; any other negative result is a
// failure with the call's default result.
var fwErrors = map[abi.FirmwareCode]error{
	abi.FwNotEnoughSpace:         agent.ErrFirmwareNoSpace,
	abi.FwOutOfMemory:            agent.ErrFirmwareNoMemory,
	abi.FwIntegrityFailure:       agent.ErrFirmwareIntegrity,
	abi.FwUnsupportedPackageType: agent.ErrFirmwareUnsupported,
	abi.FwDeferred:               agent.ErrFirmwareDeferred,
}

// fwResult turns an import's result into an error: nil for 0 and above.
func fwResult(op string, rc int32) error {
	if rc >= 0 {
		return nil
	}
	if err, ok := fwErrors[abi.FirmwareCode(rc)]; ok {
		return fmt.Errorf("host %s: %w", op, err)
	}
	return fmt.Errorf("host %s failed (%d)", op, rc)
}

// StreamOpen implements agent.FirmwareHandler.
func (hostFirmware) StreamOpen(uri string, offset int64) error {
	return fwResult("fw_open", hostFwOpen(uri, offset))
}

// StreamWrite implements agent.FirmwareHandler.
func (hostFirmware) StreamWrite(p []byte) error {
	return fwResult("fw_write", hostFwWrite(unsafe.Pointer(unsafe.SliceData(p)), uint32(len(p))))
}

// StreamFinish implements agent.FirmwareHandler.
func (hostFirmware) StreamFinish() error { return fwResult("fw_finish", hostFwFinish()) }

// Reset implements agent.FirmwareHandler.
func (hostFirmware) Reset() { hostFwReset() }

// PerformUpgrade implements agent.FirmwareHandler.
func (hostFirmware) PerformUpgrade(pkg agent.FirmwarePackage) error {
	return fwResult("fw_upgrade", hostFwUpgrade(packageJSON(pkg)))
}

// Booted implements agent.FirmwareHandler. A failing fw_booted counts as
// "not installed", with the running version unknown.
func (hostFirmware) Booted(pkg agent.FirmwarePackage) (string, bool) {
	out := make([]byte, maxFwVersion) // zeroed: the version ends at the first NUL
	rc := hostFwBooted(packageJSON(pkg), unsafe.Pointer(unsafe.SliceData(out)), uint32(len(out)))
	if rc < 0 {
		d.log.Warn("firmware booted check failed", "rc", rc)
		return "", false
	}
	if i := bytes.IndexByte(out, 0); i >= 0 {
		out = out[:i]
	}
	return string(out), rc == 1
}

// Sync implements agent.FirmwareSyncer.
func (hostFirmware) Sync() error { return fwResult("fw_sync", hostFwSync()) }

// The hooks (ABI.md "Firmware hook imports"). The engine has no http(s)
// pulls here, and its coaps pulls take the configured firmware PSK, so
// only the namer and the CoAP transmission parameters have imports.
var (
	_ agent.FirmwareNamer            = hostFirmware{}
	_ agent.FirmwareTxParamsProvider = hostFirmware{}
)

// hostText runs fw_get_name or fw_get_version: the result is the text's
// full length, of which at most abi.FwTextMax bytes were written.
func hostText(op string, get func(unsafe.Pointer, uint32) int32) string {
	out := make([]byte, abi.FwTextMax)
	n := get(unsafe.Pointer(unsafe.SliceData(out)), uint32(len(out)))
	switch {
	case n <= 0:
		return ""
	case int(n) > len(out):
		d.log.Warn("firmware "+op+" is longer than 255 bytes; ignored", "len", n)
		return ""
	}
	return string(out[:n])
}

// PackageName implements agent.FirmwareNamer.
func (hostFirmware) PackageName() string { return hostText("fw_get_name", hostFwGetName) }

// PackageVersion implements agent.FirmwareNamer.
func (hostFirmware) PackageVersion() string { return hostText("fw_get_version", hostFwGetVersion) }

// CoAPTxParams implements agent.FirmwareTxParamsProvider: the buffer
// holds the defaults on entry; result 0 means the host filled it in.
func (hostFirmware) CoAPTxParams(uri string) (agent.CoAPTxParams, bool) {
	var out [abi.FwTxParamsSize]byte
	binary.LittleEndian.PutUint32(out[0:], uint32(agent.AckTimeout/time.Millisecond))
	binary.LittleEndian.PutUint32(out[4:], agent.MaxRetransmit)
	binary.LittleEndian.PutUint64(out[8:], math.Float64bits(agent.AckRandomFactor))
	if hostFwGetCoapTxParams(uri, unsafe.Pointer(&out[0])) != 0 {
		return agent.CoAPTxParams{}, false
	}
	return agent.CoAPTxParams{
		AckTimeout:      time.Duration(binary.LittleEndian.Uint32(out[0:])) * time.Millisecond,
		MaxRetransmit:   int(min(binary.LittleEndian.Uint32(out[4:]), 1<<20)),
		AckRandomFactor: math.Float64frombits(binary.LittleEndian.Uint64(out[8:])),
	}, true
}
