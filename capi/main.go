//go:build cgo

// Command capi is libavc, avc's C ABI. Build it as a shared or static
// library, not as a program:
//
//	go build -buildmode=c-shared  -o build/libavc.so ./capi
//	go build -buildmode=c-archive -o build/libavc.a  ./capi
//
// It implements the Legato le_avc personality declared in include/legato.h
// and include/le_avc_interface.h, and avc's own API in include/avc.h; those
// hand-written headers are the interface (the header cgo generates next to
// the library is not). Each session runs an [agent.Agent]; status events are
// delivered to C handlers on one library-owned dispatcher thread and,
// optionally, to a poll queue.
//
// # Notes
//
//   - Every exported function recovers a Go panic and returns an error code
//     (LE_FAULT / AVC_ERR_FAULT), so a bug in avc never unwinds into C.
//   - C pointers that are only passed back to C (handler context pointers,
//     the log callback's user pointer) and the handler references libavc
//     hands out cross the boundary as uintptr_t, never as Go pointer types:
//     C callers commonly pass small integers as void*, which the Go runtime
//     rejects when it finds them in a pointer slot of a goroutine stack.
//     That is why capi.h suppresses the public prototypes (AVC_NO_PROTOTYPES)
//     and the exports declare ABI-identical types instead.
//   - No internal lock is held while C code (a handler or the log callback)
//     runs.
//   - Firmware handlers (avc_fw_install, firmware.go) are storage: the
//     session's agent calls them synchronously from its loop goroutine.
//     Exports that would wait for that loop (avc_set_value, avc_send,
//     avc_fw_install) refuse to run inside a handler instead of deadlocking.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#include "capi.h"
*/
import "C"

func main() {}
