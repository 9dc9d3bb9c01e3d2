// Package host runs avc.wasm, the WebAssembly build of the avc agent, on
// wazero: a pure-Go WebAssembly runtime, so this package builds and runs on
// every platform Go supports, without cgo.
//
// It has three layers:
//
//   - [Runtime] compiles the module once (optionally caching the machine
//     code on disk) and instantiates it any number of times, for example
//     once per simulated device of a fleet.
//   - [Module] is one instance with its raw exports ([Module.Init],
//     [Module.Command], [Module.OnDatagram], [Module.Step],
//     [Module.PollEvent]) and the avc_host imports routed to an [Imports]
//     value. It does no I/O of its own.
//   - [Agent] is a driver with the shape of the native [agent.Agent]: it owns
//     a UDP socket and a timer, persists the state under AVC_STATE_DIR and
//     delivers events on a channel. [Agent.Set] sets the values the device
//     keeps up to date; [WithObjectsXML] defines custom objects;
//     [WithFirmware] adds firmware update (Object 5) over an
//     [agent.FirmwareHandler] of the host.
//
// # Notes
//
//   - The ABI is specified in wasm/ABI.md. A Module checks
//     avc_abi_version at instantiation and refuses other versions.
//   - Calls into one instance are serialized by a mutex; all of them are
//     non-blocking.
//   - After a trap the instance is discarded and every later call returns an
//     error matching [ErrTrapped]; the Agent then instantiates a fresh module
//     from the last stored state and starts again.
//   - Every Module provides the firmware imports of ABI version 3; they
//     reach [Imports.Firmware] (and its optional [agent.FirmwareNamer] and
//     [agent.FirmwareTxParamsProvider]) and the module calls them only
//     when that is set. A firmware install restarts the engine inside the module (an
//     [agent.EventRestart] is reported); the host does nothing for it.
//   - Modules get real randomness (crypto/rand) and the system clocks; the
//     engine itself only sees the times passed to the exports. Both matter
//     for coaps:// servers, whose DTLS session (PSK or a certificate, whose
//     AVC_CERT_FILE, AVC_KEY_FILE and AVC_CA_FILE New reads and passes as
//     PEM) runs inside the module, and for coaps:// Package URIs, each
//     pulled over a DTLS-PSK session of its own inside the module: its handshake randoms come from crypto/rand, its
//     retransmission timers from the Go runtime's clock. The Agent moves
//     only the encrypted datagrams, and gives a module it re-instantiates
//     after a trap a new socket (a server may still hold the dead
//     instance's session for the old port).
package host
