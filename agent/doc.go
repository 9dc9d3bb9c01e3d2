// Package agent is avc's device-side LwM2M agent.
//
// It has two layers:
//
//   - [Engine], the sans-I/O core: a single-threaded state machine fed with
//     datagrams, commands and the current time, which it never reads itself.
//     It emits datagrams and [Event]s that the caller polls. It owns CoAP
//     reliability (confirmable messages, retransmission, deduplication,
//     token matching), the LwM2M registration state machine and the object
//     tree (Security /0, Server /1, Device /3).
//   - [Agent], the native Go driver: one goroutine that owns an Engine, a UDP
//     socket and a timer. The cgo library (libavc.so) and the wasm module
//     wrap the same Engine with their own thin drivers.
//
// Every embedding is configured with the same names (AVC_SERVER_URI,
// AVC_ENDPOINT, AVC_LIFETIME, AVC_STATE_DIR, AVC_LOG_LEVEL, ...); see
// [Config.Set].
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 and RFC 7252.
package agent
