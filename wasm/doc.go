//go:build wasip1

// Command wasm is avc's WebAssembly reactor, avc.wasm: a thin driver that
// exposes the sans-I/O [agent.Engine] to any WASI preview 1 host (wazero,
// node:wasi, browsers through a WASI shim).
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags='-s -w' -o build/avc.wasm ./wasm
//
// The module only marshals between the host ABI and the engine: it never
// reads a clock (time comes from the now_ms arguments), opens a socket or a
// file, or blocks. For a coaps:// server it also carries the DTLS session
// (dtls.go): pion/dtls runs on goroutines, which the exports let run until
// they are idle (its retransmission timers use the Go runtime's clock);
// the engine sees plaintext. Datagrams go out through the
// avc_host.sock_send import, log records through avc_host.log and the
// persistent state through avc_host.storage_write; with firmware update
// enabled, images go to the host through the avc_host.fw_* imports
// (firmware.go). Events are polled with avc_poll_event.
//
// Beyond marshalling, the driver does one thing the engine asks of every
// driver: on agent.EventRestart (after a firmware install) it makes a new
// engine from the last stored state, gives it the values the host set and
// starts it, as after a reboot.
//
// # Notes
//
//   - ABI.md in this directory is the specification of the exports, the
//     imports, the result codes and the versioning rules.
//   - Every export recovers panics and returns a result code; a panic inside
//     the engine discards the engine (AVC_FAULT), after which avc_init may be
//     called again with the last stored state.
//   - Calls must be serialized: a module instance is single-threaded.
//
// See github.com/avc-agent/avc/wasm/host for the Go host and bindings/node
// for the Node host.
package main

// main is never called: a c-shared wasip1 build is a reactor whose
// _initialize export runs package initialization only.
func main() {}
