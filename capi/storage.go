//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/avc-agent/avc/agent"
)

// stateKey is the key of libavc's one persistent record (avc_storage_t).
const stateKey = "state"

// storageFirstRead is the buffer of the first read call; a larger record
// is read again with a buffer of its size.
const storageFirstRead = 64 << 10

// storageMax bounds the record a read callback may announce.
const storageMax = 64 << 20

// cStorage is the host's avc_storage_t as an agent.StateStore.
type cStorage struct {
	s    C.avc_storage_t
	user C.uintptr_t
}

var _ agent.StateStore = (*cStorage)(nil)

// Load implements agent.StateStore.
func (c *cStorage) Load() ([]byte, error) {
	key := C.CString(stateKey)
	defer C.free(unsafe.Pointer(key))
	size := storageFirstRead
	for range 3 {
		buf := C.malloc(C.size_t(size))
		if buf == nil {
			return nil, fmt.Errorf("avc_storage_t.read: out of memory for %d bytes", size)
		}
		n := int64(C.avc_call_storage_read_(&c.s, c.user, key, buf, C.size_t(size)))
		switch {
		case n < 0:
			C.free(buf)
			return nil, fmt.Errorf("avc_storage_t.read of %q returned %d", stateKey, n)
		case n == 0:
			C.free(buf)
			return nil, nil
		case n > storageMax:
			C.free(buf)
			return nil, fmt.Errorf("avc_storage_t.read of %q announces %d bytes (at most %d)", stateKey, n, storageMax)
		case n > int64(size):
			C.free(buf)
			size = int(n)
			continue
		}
		b := C.GoBytes(buf, C.int(n))
		C.free(buf)
		return b, nil
	}
	return nil, fmt.Errorf("avc_storage_t.read of %q: the record keeps growing", stateKey)
}

// Save implements agent.StateStore.
func (c *cStorage) Save(b []byte) error {
	key := C.CString(stateKey)
	defer C.free(unsafe.Pointer(key))
	var p unsafe.Pointer
	if len(b) > 0 {
		p = C.CBytes(b)
		defer C.free(p)
	}
	if rc := C.avc_call_storage_write_(&c.s, c.user, key, p, C.size_t(len(b))); rc != 0 {
		return fmt.Errorf("avc_storage_t.write of %q (%d bytes) returned %d", stateKey, len(b), int(rc))
	}
	return nil
}

// setStorage implements avc_storage_set (s nil: back to files).
func setStorage(s *C.avc_storage_t, user C.uintptr_t) error {
	const name = "avc_storage_set"
	if s != nil && (s.read == nil || s.write == nil) {
		return errorf(rcBadParameter, "%s: read and write must not be NULL", name)
	}
	if inFirmwareHandler() || onDispatcher() {
		return errorf(rcNotPermitted, "%s: not allowed from a handler", name)
	}
	var st *cStorage
	if s != nil {
		st = &cStorage{s: *s, user: user}
	}
	core.mu.Lock()
	if core.sess != nil {
		core.mu.Unlock()
		return errorf(rcNotPermitted, "%s: a session is started; stop it first (le_avc_StopSession)", name)
	}
	core.store = st
	core.gen++ // the next runner uses it
	core.mu.Unlock()
	return nil
}
