//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

import (
	"sync"
	"time"
	"unsafe"
)

// queuedEvent is a statusEvent in the poll queue.
type queuedEvent struct {
	statusEvent
	dropped uint32 // events dropped just before this one
}

// pollq is the opt-in event queue behind avc_poll_event.
var pollq struct {
	mu      sync.Mutex
	on      bool
	q       []queuedEvent
	changed chan struct{} // closed and replaced whenever q or on changes
}

func init() { pollq.changed = make(chan struct{}) }

const pollQueueMax = int(C.AVC_EVENT_QUEUE_MAX)

// pollNotifyLocked wakes every waiter.
func pollNotifyLocked() {
	close(pollq.changed)
	pollq.changed = make(chan struct{})
}

func pollEnable(on bool) {
	pollq.mu.Lock()
	defer pollq.mu.Unlock()
	if pollq.on == on {
		return
	}
	pollq.on = on
	pollq.q = nil
	pollNotifyLocked()
}

func pollPush(ev statusEvent) {
	pollq.mu.Lock()
	defer pollq.mu.Unlock()
	if !pollq.on {
		return
	}
	next := queuedEvent{statusEvent: ev}
	if len(pollq.q) >= pollQueueMax {
		// Drop the oldest; the event that is now oldest carries the count.
		carry := pollq.q[0].dropped + 1
		pollq.q[0] = queuedEvent{}
		pollq.q = pollq.q[1:]
		if len(pollq.q) > 0 {
			pollq.q[0].dropped += carry
		} else {
			next.dropped = carry
		}
	}
	pollq.q = append(pollq.q, next)
	pollNotifyLocked()
}

// pollTake waits up to timeout (negative: forever) for an event.
func pollTake(timeout time.Duration) (queuedEvent, error) {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		pollq.mu.Lock()
		if !pollq.on {
			pollq.mu.Unlock()
			return queuedEvent{}, errorf(rcNotPermitted, "avc_poll_event: the event queue is off; call avc_events_enable_poll(1) first")
		}
		if len(pollq.q) > 0 {
			ev := pollq.q[0]
			pollq.q[0] = queuedEvent{}
			pollq.q = pollq.q[1:]
			pollq.mu.Unlock()
			return ev, nil
		}
		changed := pollq.changed
		pollq.mu.Unlock()
		if timeout == 0 {
			return queuedEvent{}, errorf(rcTimeout, "avc_poll_event: no event")
		}
		select {
		case <-changed:
		case <-expired:
			return queuedEvent{}, errorf(rcTimeout, "avc_poll_event: no event within %v", timeout)
		}
	}
}

// fillEvent copies ev into the C struct.
func fillEvent(dst *C.avc_event_t, ev queuedEvent) {
	dst._type = C.AVC_EVENT_STATUS
	dst.status = C.int32_t(ev.status)
	dst.total_num_bytes = C.int32_t(ev.total)
	dst.progress = C.int32_t(ev.progress)
	dst.dropped = C.uint32_t(ev.dropped)
	msg := unsafe.Slice((*byte)(unsafe.Pointer(&dst.message[0])), len(dst.message))
	n := copy(msg[:len(msg)-1], ev.message)
	msg[n] = 0
}
