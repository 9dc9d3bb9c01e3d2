//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"unsafe"
)

// Result codes. The avc_result_t values equal the le_result_t values of the
// same meaning; the array lengths below fail to compile if they drift.
const (
	rcOK           = int(C.AVC_OK)
	rcNotFound     = int(C.AVC_ERR_NOT_FOUND)
	rcNotPermitted = int(C.AVC_ERR_NOT_PERMITTED)
	rcFault        = int(C.AVC_ERR_FAULT)
	rcTimeout      = int(C.AVC_ERR_TIMEOUT)
	rcOverflow     = int(C.AVC_ERR_OVERFLOW)
	rcFormat       = int(C.AVC_ERR_FORMAT)
	rcBadParameter = int(C.AVC_ERR_BAD_PARAMETER)
	rcDuplicate    = int(C.LE_DUPLICATE)
	rcOutOfRange   = int(C.LE_OUT_OF_RANGE)
	rcBusy         = int(C.LE_BUSY)
	rcUnsupported  = int(C.LE_UNSUPPORTED)
)

var (
	_ [C.AVC_OK - C.LE_OK]struct{}
	_ [C.LE_OK - C.AVC_OK]struct{}
	_ [C.AVC_ERR_NOT_FOUND - C.LE_NOT_FOUND]struct{}
	_ [C.AVC_ERR_NOT_PERMITTED - C.LE_NOT_PERMITTED]struct{}
	_ [C.AVC_ERR_FAULT - C.LE_FAULT]struct{}
	_ [C.AVC_ERR_TIMEOUT - C.LE_TIMEOUT]struct{}
	_ [C.AVC_ERR_OVERFLOW - C.LE_OVERFLOW]struct{}
	_ [C.AVC_ERR_FORMAT - C.LE_FORMAT_ERROR]struct{}
	_ [C.AVC_ERR_BAD_PARAMETER - C.LE_BAD_PARAMETER]struct{}
	_ [C.LE_FAULT - C.AVC_ERR_FAULT]struct{}
	_ [C.LE_NOT_FOUND - C.AVC_ERR_NOT_FOUND]struct{}
	_ [C.LE_NOT_PERMITTED - C.AVC_ERR_NOT_PERMITTED]struct{}
	_ [C.LE_TIMEOUT - C.AVC_ERR_TIMEOUT]struct{}
	_ [C.LE_OVERFLOW - C.AVC_ERR_OVERFLOW]struct{}
	_ [C.LE_FORMAT_ERROR - C.AVC_ERR_FORMAT]struct{}
	_ [C.LE_BAD_PARAMETER - C.AVC_ERR_BAD_PARAMETER]struct{}
)

// codeError is an error that carries the result code an export returns.
type codeError struct {
	code int
	msg  string
}

func (e *codeError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &codeError{code: code, msg: fmt.Sprintf(format, args...)}
}

// codeOf maps err to its result code: 0 for nil, the carried code for a
// codeError, LE_FAULT otherwise.
func codeOf(err error) int {
	if err == nil {
		return rcOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	return rcFault
}

// leResultNames are the le_result_t names, indexed by -value.
var leResultNames = [...]string{
	"LE_OK", "LE_NOT_FOUND", "LE_NOT_POSSIBLE", "LE_OUT_OF_RANGE", "LE_NO_MEMORY",
	"LE_NOT_PERMITTED", "LE_FAULT", "LE_COMM_ERROR", "LE_TIMEOUT", "LE_OVERFLOW",
	"LE_UNDERFLOW", "LE_WOULD_BLOCK", "LE_DEADLOCK", "LE_FORMAT_ERROR", "LE_DUPLICATE",
	"LE_BAD_PARAMETER", "LE_CLOSED", "LE_BUSY", "LE_UNSUPPORTED", "LE_IO_ERROR",
	"LE_NOT_IMPLEMENTED", "LE_UNAVAILABLE", "LE_TERMINATED", "LE_IN_PROGRESS", "LE_SUSPENDED",
}

// The last name is LE_SUSPENDED, -24.
var (
	_ [len(leResultNames) - 1 + C.LE_SUSPENDED]struct{}
	_ [-C.LE_SUSPENDED - (len(leResultNames) - 1)]struct{}
)

var avcResultNames = map[int]string{
	rcOK:           "AVC_OK",
	rcNotFound:     "AVC_ERR_NOT_FOUND",
	rcNotPermitted: "AVC_ERR_NOT_PERMITTED",
	rcFault:        "AVC_ERR_FAULT",
	rcTimeout:      "AVC_ERR_TIMEOUT",
	rcOverflow:     "AVC_ERR_OVERFLOW",
	rcFormat:       "AVC_ERR_FORMAT",
	rcBadParameter: "AVC_ERR_BAD_PARAMETER",
}

// staticStrings holds C copies of constant strings handed to C, allocated
// once and never freed, so C may keep them for the life of the process.
var staticStrings struct {
	mu sync.Mutex
	m  map[string]*C.char
}

func staticCString(s string) *C.char {
	staticStrings.mu.Lock()
	defer staticStrings.mu.Unlock()
	if p, ok := staticStrings.m[s]; ok {
		return p
	}
	if staticStrings.m == nil {
		staticStrings.m = make(map[string]*C.char)
	}
	p := C.CString(s)
	staticStrings.m[s] = p
	return p
}

// lastErrors holds each C thread's last error message, keyed by
// pthread_self(): an exported function runs on the calling C thread for
// its whole duration.
var lastErrors struct {
	mu sync.Mutex
	m  map[C.pthread_t]string
}

// maxLastErrors bounds the table; threads that exit leave entries behind.
const maxLastErrors = 1024

func setLastError(msg string) {
	t := C.pthread_self()
	lastErrors.mu.Lock()
	defer lastErrors.mu.Unlock()
	if msg == "" {
		delete(lastErrors.m, t)
		return
	}
	if lastErrors.m == nil || len(lastErrors.m) >= maxLastErrors {
		lastErrors.m = make(map[C.pthread_t]string)
	}
	lastErrors.m[t] = msg
}

func lastError() string {
	t := C.pthread_self()
	lastErrors.mu.Lock()
	defer lastErrors.mu.Unlock()
	return lastErrors.m[t]
}

// result records err as the calling thread's last error and returns its
// code.
func result(err error) int {
	if err == nil {
		setLastError("")
		return rcOK
	}
	setLastError(err.Error())
	return codeOf(err)
}

// guard is deferred by every export: it turns a panic into the fault code
// stored in *rc (rc may be nil for void functions), logs it with its stack
// and records it as the last error.
func guard[T any](name string, rc *T, fault T) {
	r := recover()
	if r == nil {
		return
	}
	msg := fmt.Sprintf("%s: internal error: %v", name, r)
	logger.Error("recovered panic", "func", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	func() {
		defer func() { _ = recover() }()
		setLastError(msg)
	}()
	if rc != nil {
		*rc = fault
	}
}

// copyOut copies s into the C buffer buf of size bytes, NUL-terminated and
// truncated to size-1 bytes. It reports whether s fitted.
func copyOut(buf *C.char, size C.size_t, s string) bool {
	if buf == nil || size == 0 {
		return len(s) == 0
	}
	dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(size))
	n := copy(dst[:len(dst)-1], s)
	dst[n] = 0
	return n == len(s)
}
