//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/avc-agent/avc/agent"
)

// statusEvent is one le_avc status report, or (fw set) a firmware status
// for the avc_fw_status_fn.
type statusEvent struct {
	status   int32 // le_avc_Status_t
	total    int32 // totalNumBytes, -1 unknown
	progress int32 // percent, -1 unknown
	message  string
	fw       *agent.FirmwareStatus
	comm     *commEvent // set: communication information for the CommInfo handlers
	sessReq  *int32     // set: le_avc_SessionRequest_t for the session request handler
	run      func()     // set: a call to make on the dispatcher (object callbacks, objects.go)
}

// commEvent is one communication-information report.
type commEvent struct {
	code byte
	text string
}

type commHandler struct {
	fn  C.le_avc_CommInfoHandlerFunc_t
	ctx C.uintptr_t
}

type sessionRequestHandler struct {
	fn  C.le_avc_SessionRequestHandlerFunc_t
	ctx C.uintptr_t
}

type statusHandler struct {
	fn  C.le_avc_StatusHandlerFunc_t
	ctx C.uintptr_t
}

// disp is the status handler table and the dispatcher that calls them.
// Handlers run on one goroutine locked to its own OS thread, one at a time,
// with mu released.
var disp struct {
	mu       sync.Mutex
	idle     *sync.Cond // signalled when calling changes
	handlers map[uintptr]statusHandler
	comms    map[uintptr]commHandler           // CommInfo handlers; references share nextRef
	sessReq  map[uintptr]sessionRequestHandler // at most one
	nextRef  uintptr
	calling  uintptr // reference of the handler running now, 0 if none
	queue    []statusEvent
	wake     chan struct{}
	thread   C.pthread_t // the dispatcher's OS thread, once started
	started  bool
	once     sync.Once
}

func init() {
	disp.idle = sync.NewCond(&disp.mu)
	disp.handlers = make(map[uintptr]statusHandler)
	disp.comms = make(map[uintptr]commHandler)
	disp.sessReq = make(map[uintptr]sessionRequestHandler)
	disp.wake = make(chan struct{}, 1)
}

// startDispatcher starts the dispatcher thread once.
func startDispatcher() {
	disp.once.Do(func() {
		ready := make(chan struct{})
		go dispatchLoop(ready)
		<-ready
	})
}

func dispatchLoop(ready chan<- struct{}) {
	// The goroutine keeps this thread for the life of the process, so every
	// handler call happens on the same OS thread.
	runtime.LockOSThread()
	t := C.pthread_self()
	disp.mu.Lock()
	disp.thread, disp.started = t, true
	disp.mu.Unlock()
	close(ready)
	for range disp.wake {
		for {
			disp.mu.Lock()
			if len(disp.queue) == 0 {
				disp.mu.Unlock()
				break
			}
			ev := disp.queue[0]
			disp.queue[0] = statusEvent{}
			disp.queue = disp.queue[1:]
			if ev.run != nil {
				disp.mu.Unlock()
				runSafely(ev.run)
				continue
			}
			if ev.fw != nil {
				disp.mu.Unlock()
				deliverFirmwareSafely(ev.fw)
				continue
			}
			if ev.comm != nil {
				refs := slices.Sorted(maps.Keys(disp.comms))
				disp.mu.Unlock()
				deliverComm(refs, ev.comm)
				continue
			}
			if ev.sessReq != nil {
				refs := slices.Sorted(maps.Keys(disp.sessReq))
				disp.mu.Unlock()
				for _, ref := range refs {
					deliverSessionRequest(ref, *ev.sessReq)
				}
				continue
			}
			refs := slices.Sorted(maps.Keys(disp.handlers))
			disp.mu.Unlock()
			for _, ref := range refs {
				deliver(ref, ev)
			}
		}
	}
}

// deliver calls the handler ref with ev, unless it was removed since the
// event was taken from the queue.
func deliver(ref uintptr, ev statusEvent) {
	disp.mu.Lock()
	h, ok := disp.handlers[ref]
	if !ok {
		disp.mu.Unlock()
		return
	}
	callOut(ref, func() {
		C.avc_call_status_(h.fn, C.int32_t(ev.status), C.int32_t(ev.total), C.int32_t(ev.progress), h.ctx)
	})
}

// callOut runs call, a call into a C handler ref looked up under
// disp.mu, which it must hold: ref is marked as being called (so that
// removing it waits), the lock is released for the call, and a panic in
// it is recovered and logged.
func callOut(ref uintptr, call func()) {
	disp.calling = ref
	disp.mu.Unlock()
	defer func() {
		disp.mu.Lock()
		disp.calling = 0
		disp.idle.Broadcast()
		disp.mu.Unlock()
	}()
	runSafely(call)
}

// deliverSessionRequest calls the session request handler ref, unless it
// was removed meanwhile.
func deliverSessionRequest(ref uintptr, request int32) {
	disp.mu.Lock()
	h, ok := disp.sessReq[ref]
	if !ok {
		disp.mu.Unlock()
		return
	}
	callOut(ref, func() { C.avc_call_session_request_(h.fn, C.int32_t(request), h.ctx) })
}

// emitSessionRequest asks the session request handler to open
// (sessionAcquire) or close (sessionRelease) a session.
func emitSessionRequest(request int32) {
	disp.mu.Lock()
	none := len(disp.sessReq) == 0
	disp.mu.Unlock()
	if none {
		// Removed meanwhile: the engine is told (sessionRequestsChanged)
		// and acts by itself.
		return
	}
	enqueue(statusEvent{sessReq: &request})
}

// runSafely calls fn with a recovered panic.
func runSafely(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			logger.Error("recovered panic in dispatcher", "panic", fmt.Sprint(r))
		}
	}()
	fn()
}

// deliverFirmwareSafely is deliverFirmware with a recovered panic.
func deliverFirmwareSafely(st *agent.FirmwareStatus) { runSafely(func() { deliverFirmware(st) }) }

// deliverComm calls the CommInfo handlers refs with ev, skipping those
// removed meanwhile. The string is a C copy freed after the last call.
func deliverComm(refs []uintptr, ev *commEvent) {
	if len(refs) == 0 {
		return
	}
	cs := C.CString(ev.text)
	defer C.free(unsafe.Pointer(cs))
	for _, ref := range refs {
		func() {
			disp.mu.Lock()
			h, ok := disp.comms[ref]
			if !ok {
				disp.mu.Unlock()
				return
			}
			callOut(ref, func() { C.avc_call_comm_info_(h.fn, C.uint8_t(ev.code), cs, h.ctx) })
		}()
	}
}

// emitComm reports communication information to the CommInfo handlers
// (on the dispatcher thread). The text is cut to LE_AVC_COMM_INFO_STR_MAX_LEN.
func emitComm(code byte, text string) {
	if len(text) > int(C.LE_AVC_COMM_INFO_STR_MAX_LEN) {
		text = text[:C.LE_AVC_COMM_INFO_STR_MAX_LEN]
	}
	disp.mu.Lock()
	none := len(disp.comms) == 0
	disp.mu.Unlock()
	if none {
		return
	}
	enqueue(statusEvent{comm: &commEvent{code: code, text: text}})
}

// emitStatus reports a status to every handler (asynchronously, on the
// dispatcher thread) and to the poll queue.
func emitStatus(ev statusEvent) {
	noteStatus(ev.status)
	enqueue(ev)
	pollPush(ev)
}

// enqueue hands ev to the dispatcher thread.
func enqueue(ev statusEvent) {
	startDispatcher()
	disp.mu.Lock()
	disp.queue = append(disp.queue, ev)
	disp.mu.Unlock()
	select {
	case disp.wake <- struct{}{}:
	default:
	}
}

// onDispatcher reports whether the calling C thread is the dispatcher's
// (a call from inside a handler).
func onDispatcher() bool {
	self := C.pthread_self()
	disp.mu.Lock()
	defer disp.mu.Unlock()
	return disp.started && C.pthread_equal(self, disp.thread) != 0
}

// addStatusHandler registers fn and returns its reference (never 0).
func addStatusHandler(fn C.le_avc_StatusHandlerFunc_t, ctx C.uintptr_t) uintptr {
	startDispatcher()
	disp.mu.Lock()
	defer disp.mu.Unlock()
	ref := newRefLocked()
	disp.handlers[ref] = statusHandler{fn: fn, ctx: ctx}
	return ref
}

// newRefLocked returns an unused handler reference (never 0). disp.mu is
// held.
func newRefLocked() uintptr {
	for {
		disp.nextRef++
		if disp.nextRef == 0 {
			continue
		}
		_, s := disp.handlers[disp.nextRef]
		_, c := disp.comms[disp.nextRef]
		_, r := disp.sessReq[disp.nextRef]
		if !s && !c && !r {
			return disp.nextRef
		}
	}
}

// statusHandlerCount is how many status handlers are registered.
func statusHandlerCount() int {
	disp.mu.Lock()
	defer disp.mu.Unlock()
	return len(disp.handlers)
}

// addCommHandler registers a CommInfo handler and returns its reference.
func addCommHandler(fn C.le_avc_CommInfoHandlerFunc_t, ctx C.uintptr_t) uintptr {
	startDispatcher()
	disp.mu.Lock()
	defer disp.mu.Unlock()
	ref := newRefLocked()
	disp.comms[ref] = commHandler{fn: fn, ctx: ctx}
	return ref
}

// removeCommHandler unregisters a CommInfo handler, with the waiting rules
// of removeStatusHandler. It reports whether ref was registered.
func removeCommHandler(ref uintptr) bool {
	inFw := inFirmwareHandler()
	self := C.pthread_self()
	disp.mu.Lock()
	defer disp.mu.Unlock()
	if _, ok := disp.comms[ref]; !ok {
		return false
	}
	delete(disp.comms, ref)
	onDispatcher := disp.started && C.pthread_equal(self, disp.thread) != 0
	for !onDispatcher && !inFw && disp.calling == ref {
		disp.idle.Wait()
	}
	return true
}

// addSessionRequestHandler registers the session request handler; ok is
// false when one is registered already.
func addSessionRequestHandler(fn C.le_avc_SessionRequestHandlerFunc_t, ctx C.uintptr_t) (ref uintptr, ok bool) {
	startDispatcher()
	disp.mu.Lock()
	if len(disp.sessReq) > 0 {
		disp.mu.Unlock()
		return 0, false
	}
	ref = newRefLocked()
	disp.sessReq[ref] = sessionRequestHandler{fn: fn, ctx: ctx}
	disp.mu.Unlock()
	statusHandlersChanged() // the engine learns it has one
	return ref, true
}

// removeSessionRequestHandler reports whether ref was registered.
func removeSessionRequestHandler(ref uintptr) bool {
	disp.mu.Lock()
	if _, ok := disp.sessReq[ref]; !ok {
		disp.mu.Unlock()
		return false
	}
	delete(disp.sessReq, ref)
	disp.mu.Unlock()
	statusHandlersChanged()
	return true
}

// sessionRequestHandlerSet reports whether a session request handler is
// registered.
func sessionRequestHandlerSet() bool {
	disp.mu.Lock()
	defer disp.mu.Unlock()
	return len(disp.sessReq) > 0
}

// removeStatusHandler unregisters ref. Unless it is called on the
// dispatcher thread (from inside a handler) or from a firmware handler
// (whose session loop a status handler may be waiting for), it waits for a
// call of that handler in progress to return. It reports whether ref was
// registered.
func removeStatusHandler(ref uintptr) bool {
	inFw := inFirmwareHandler()
	self := C.pthread_self()
	disp.mu.Lock()
	defer disp.mu.Unlock()
	if _, ok := disp.handlers[ref]; !ok {
		return false
	}
	delete(disp.handlers, ref)
	onDispatcher := disp.started && C.pthread_equal(self, disp.thread) != 0
	for !onDispatcher && !inFw && disp.calling == ref {
		disp.idle.Wait()
	}
	return true
}
