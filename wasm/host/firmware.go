package host

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/wasm/abi"
)

// The firmware imports (wasm/ABI.md "Firmware imports") call the Module's
// Imports.Firmware. A module calls them only when its avc_init
// configuration has "firmware": true, which Init adds when
// Imports.Firmware is set; without a handler they are stubs that fail with
// AVC_FW_ERR_OTHER (and fw_booted answers "not installed").

// FirmwareCode is a result of the firmware imports (wasm/ABI.md "Firmware
// imports"): 0, or a negative value -r naming Update Result r.
type FirmwareCode = abi.FirmwareCode

// fwOK is the firmware imports' success.
const fwOK FirmwareCode = 0

// fwCodes maps the agent's firmware errors to the import results that
// name their Update Result; any other error (agent.ErrFirmwareFailed
// too) is AVC_FW_ERR_OTHER, which takes the call's default result.
var fwCodes = []struct {
	err  error
	code FirmwareCode
}{
	{agent.ErrFirmwareNoSpace, abi.FwNotEnoughSpace},
	{agent.ErrFirmwareNoMemory, abi.FwOutOfMemory},
	{agent.ErrFirmwareIntegrity, abi.FwIntegrityFailure},
	{agent.ErrFirmwareUnsupported, abi.FwUnsupportedPackageType},
	{agent.ErrFirmwareDeferred, abi.FwDeferred},
}

// firmwareCode returns the import result for a handler's error.
func firmwareCode(err error) FirmwareCode {
	if err == nil {
		return fwOK
	}
	for _, c := range fwCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return abi.FwOther
}

// firmwarePackage is the JSON form of agent.FirmwarePackage that
// fw_upgrade and fw_booted receive.
type firmwarePackage struct {
	URI     string `json:"uri"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

func decodePackage(b []byte) (agent.FirmwarePackage, error) {
	var p firmwarePackage
	if err := json.Unmarshal(b, &p); err != nil {
		return agent.FirmwarePackage{}, err
	}
	return agent.FirmwarePackage{URI: p.URI, Name: p.Name, Version: p.Version, Size: p.Size, SHA256: p.SHA256}, nil
}

// defineFirmwareImports adds the firmware imports to the avc_host builder.
func defineFirmwareImports(b wazero.HostModuleBuilder) {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	rc := []api.ValueType{i32}
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwOpen), []api.ValueType{i32, i32, i64}, rc).
		WithParameterNames("uri_ptr", "uri_len", "offset").WithResultNames("rc").
		Export("fw_open")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwWrite), []api.ValueType{i32, i32}, rc).
		WithParameterNames("data_ptr", "data_len").WithResultNames("rc").
		Export("fw_write")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwFinish), nil, rc).
		WithResultNames("rc").
		Export("fw_finish")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwReset), nil, nil).
		Export("fw_reset")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwUpgrade), []api.ValueType{i32, i32}, rc).
		WithParameterNames("pkg_ptr", "pkg_len").WithResultNames("rc").
		Export("fw_upgrade")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwBooted), []api.ValueType{i32, i32, i32, i32}, rc).
		WithParameterNames("pkg_ptr", "pkg_len", "out_ptr", "out_cap").WithResultNames("installed").
		Export("fw_booted")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwSync), nil, rc).
		WithResultNames("rc").
		Export("fw_sync")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwGetName), []api.ValueType{i32, i32}, rc).
		WithParameterNames("out_ptr", "out_cap").WithResultNames("len").
		Export("fw_get_name")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwGetVersion), []api.ValueType{i32, i32}, rc).
		WithParameterNames("out_ptr", "out_cap").WithResultNames("len").
		Export("fw_get_version")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fwGetCoapTxParams), []api.ValueType{i32, i32, i32}, rc).
		WithParameterNames("uri_ptr", "uri_len", "out_ptr").WithResultNames("rc").
		Export("fw_get_coap_tx_params")
}

// firmwareOf returns the calling module's firmware handler, or nil.
func firmwareOf(ctx context.Context) agent.FirmwareHandler {
	if m := moduleOf(ctx); m != nil {
		return m.imports.Firmware
	}
	return nil
}

// callFirmware runs f, turning an error into its import result and a
// panic into AVC_FW_ERR_OTHER: an import must never trap the module.
func callFirmware(f func() error) (code FirmwareCode) {
	defer func() {
		if recover() != nil {
			code = abi.FwOther
		}
	}()
	return firmwareCode(f())
}

// fwOpen is fw_open(uri_ptr, uri_len, offset i64) -> rc: StreamOpen.
func fwOpen(ctx context.Context, mod api.Module, stack []uint64) {
	h := firmwareOf(ctx)
	uri, ok := read(mod, stack[0], stack[1])
	code := abi.FwOther
	if h != nil && ok {
		code = callFirmware(func() error { return h.StreamOpen(string(uri), int64(stack[2])) })
	}
	stack[0] = api.EncodeI32(int32(code))
}

// fwWrite is fw_write(data_ptr, data_len) -> rc: StreamWrite. The slice
// aliases the module's memory, valid during the call only, as
// StreamWrite's contract allows.
func fwWrite(ctx context.Context, mod api.Module, stack []uint64) {
	h := firmwareOf(ctx)
	data, ok := read(mod, stack[0], stack[1])
	code := abi.FwOther
	if h != nil && ok {
		code = callFirmware(func() error { return h.StreamWrite(data) })
	}
	stack[0] = api.EncodeI32(int32(code))
}

// fwFinish is fw_finish() -> rc: StreamFinish.
func fwFinish(ctx context.Context, _ api.Module, stack []uint64) {
	code := abi.FwOther
	if h := firmwareOf(ctx); h != nil {
		code = callFirmware(h.StreamFinish)
	}
	stack[0] = api.EncodeI32(int32(code))
}

// fwReset is fw_reset(): Reset.
func fwReset(ctx context.Context, _ api.Module, _ []uint64) {
	if h := firmwareOf(ctx); h != nil {
		callFirmware(func() error { h.Reset(); return nil })
	}
}

// fwUpgrade is fw_upgrade(pkg_ptr, pkg_len) -> rc: PerformUpgrade.
func fwUpgrade(ctx context.Context, mod api.Module, stack []uint64) {
	h := firmwareOf(ctx)
	b, ok := read(mod, stack[0], stack[1])
	code := abi.FwOther
	if h != nil && ok {
		if pkg, err := decodePackage(b); err == nil {
			code = callFirmware(func() error { return h.PerformUpgrade(pkg) })
		}
	}
	stack[0] = api.EncodeI32(int32(code))
}

// fwBooted is fw_booted(pkg_ptr, pkg_len, out_ptr, out_cap) -> installed:
// Booted. It writes the running version to out (at most out_cap bytes)
// and returns 1 when the package is installed, 0 when not, AVC_FW_ERR_OTHER
// when it cannot tell.
func fwBooted(ctx context.Context, mod api.Module, stack []uint64) {
	h := firmwareOf(ctx)
	b, ok := read(mod, stack[0], stack[1])
	out, size := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	code := abi.FwOther
	if h != nil && ok {
		if pkg, err := decodePackage(b); err == nil {
			var running string
			var installed bool
			code = callFirmware(func() error {
				running, installed = h.Booted(pkg)
				return nil
			})
			if code == fwOK {
				v := []byte(running)[:min(len(running), int(size))]
				if !mod.Memory().Write(out, v) {
					code = abi.FwOther
				} else if installed {
					code = 1
				}
			}
		}
	}
	stack[0] = api.EncodeI32(int32(code))
}

// fwSync is fw_sync() -> rc: Sync, when the handler is an
// agent.FirmwareSyncer; otherwise there is nothing to flush.
func fwSync(ctx context.Context, _ api.Module, stack []uint64) {
	code := abi.FwOther
	if h := firmwareOf(ctx); h != nil {
		code = fwOK
		if s, ok := h.(agent.FirmwareSyncer); ok {
			code = callFirmware(s.Sync)
		}
	}
	stack[0] = api.EncodeI32(int32(code))
}

// fwText writes a handler's name or version for fw_get_name and
// fw_get_version: at most out_cap bytes to out, returning the full length
// (0: none, also without an agent.FirmwareNamer).
func fwText(ctx context.Context, mod api.Module, stack []uint64, get func(agent.FirmwareNamer) string) {
	var v string
	if n, ok := firmwareOf(ctx).(agent.FirmwareNamer); ok {
		callFirmware(func() error { v = get(n); return nil })
	}
	out, size := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if !mod.Memory().Write(out, []byte(v)[:min(len(v), int(size))]) {
		v = ""
	}
	stack[0] = api.EncodeI32(int32(min(len(v), 1<<30)))
}

// fwGetName is fw_get_name(out_ptr, out_cap) -> len: PackageName.
func fwGetName(ctx context.Context, mod api.Module, stack []uint64) {
	fwText(ctx, mod, stack, agent.FirmwareNamer.PackageName)
}

// fwGetVersion is fw_get_version(out_ptr, out_cap) -> len: PackageVersion.
func fwGetVersion(ctx context.Context, mod api.Module, stack []uint64) {
	fwText(ctx, mod, stack, agent.FirmwareNamer.PackageVersion)
}

// fwGetCoapTxParams is fw_get_coap_tx_params(uri_ptr, uri_len, out_ptr)
// -> rc: CoAPTxParams, written as abi.FwTxParamsSize little-endian bytes
// (ack_timeout_ms u32, max_retransmit u32, ack_random_factor f64); 0 when
// written, 1 to keep the defaults (also without an
// agent.FirmwareTxParamsProvider).
func fwGetCoapTxParams(ctx context.Context, mod api.Module, stack []uint64) {
	code := int32(1)
	uri, ok := read(mod, stack[0], stack[1])
	if tp, has := firmwareOf(ctx).(agent.FirmwareTxParamsProvider); has && ok {
		var p agent.CoAPTxParams
		var set bool
		if callFirmware(func() error { p, set = tp.CoAPTxParams(string(uri)); return nil }) == fwOK && set {
			var b [abi.FwTxParamsSize]byte
			binary.LittleEndian.PutUint32(b[0:], uint32(min(max(p.AckTimeout/time.Millisecond, 0), math.MaxUint32)))
			binary.LittleEndian.PutUint32(b[4:], uint32(min(max(p.MaxRetransmit, 0), math.MaxUint32)))
			binary.LittleEndian.PutUint64(b[8:], math.Float64bits(p.AckRandomFactor))
			if mod.Memory().Write(api.DecodeU32(stack[2]), b[:]) {
				code = 0
			}
		}
	}
	stack[0] = api.EncodeI32(code)
}
