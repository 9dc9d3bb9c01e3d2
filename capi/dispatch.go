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
			if ev.fw != nil {
				disp.mu.Unlock()
				deliverFirmwareSafely(ev.fw)
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
	disp.calling = ref
	disp.mu.Unlock()
	defer func() {
		disp.mu.Lock()
		disp.calling = 0
		disp.idle.Broadcast()
		disp.mu.Unlock()
		if r := recover(); r != nil {
			logger.Error("recovered panic in dispatcher", "panic", fmt.Sprint(r))
		}
	}()
	C.avc_call_status_(h.fn, C.int32_t(ev.status), C.int32_t(ev.total), C.int32_t(ev.progress), h.ctx)
}

// deliverFirmwareSafely is deliverFirmware with a recovered panic.
func deliverFirmwareSafely(st *agent.FirmwareStatus) {
	defer func() {
		if r := recover(); r != nil {
			logger.Error("recovered panic in dispatcher", "panic", fmt.Sprint(r))
		}
	}()
	deliverFirmware(st)
}

// emitStatus reports a status to every handler (asynchronously, on the
// dispatcher thread) and to the poll queue.
func emitStatus(ev statusEvent) {
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
	for {
		disp.nextRef++
		if _, used := disp.handlers[disp.nextRef]; disp.nextRef != 0 && !used {
			break
		}
	}
	disp.handlers[disp.nextRef] = statusHandler{fn: fn, ctx: ctx}
	return disp.nextRef
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
