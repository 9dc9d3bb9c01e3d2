package httpfetch

import (
	"fmt"
	"sync/atomic"
	"time"
)

// watchSteps is how many ticks one low-speed window (or idle timeout) spans:
// the rate is measured over a window that slides by 1/watchSteps of it.
const watchSteps = 10

// A watchdog measures body throughput from its own ticker, so a server that
// stops sending (a half-open connection, N10) is caught without waiting for
// the kernel. It calls fail once, with an error wrapping [ErrTooSlow], when
//   - fewer than limit bytes/s arrived over the last window, or
//   - no byte arrived for idle.
//
// The reading goroutine reports progress with add; a nil *watchdog is
// disabled and its methods do nothing.
type watchdog struct {
	n    atomic.Int64  // bytes received so far
	quit chan struct{} // closed by stop
	done chan struct{} // closed when the ticker goroutine has returned
}

// startWatchdog starts a watchdog. limit ≤ 0 or window ≤ 0 disables the rate
// check; idle ≤ 0 disables the idle check. It returns nil when both are off.
func startWatchdog(limit int64, window, idle time.Duration, fail func(error)) *watchdog {
	if limit <= 0 || window <= 0 {
		limit, window = 0, 0
	}
	if idle < 0 {
		idle = 0
	}
	if window == 0 && idle == 0 {
		return nil
	}
	span := window
	if span == 0 || idle > 0 && idle < span {
		span = idle
	}
	step := max(span/watchSteps, time.Millisecond)
	w := &watchdog{quit: make(chan struct{}), done: make(chan struct{})}
	go w.run(limit, window, idle, step, fail)
	return w
}

// sample is the byte count seen at one tick.
type sample struct {
	at time.Time
	n  int64
}

// run is the ticker goroutine.
func (w *watchdog) run(limit int64, window, idle, step time.Duration, fail func(error)) {
	defer close(w.done)
	t := time.NewTicker(step)
	defer t.Stop()
	start := time.Now()
	ring := []sample{{at: start}}
	lastN, lastProgress := int64(0), start
	for {
		var now time.Time
		select {
		case <-w.quit:
			return
		case now = <-t.C:
		}
		n := w.n.Load()
		if n != lastN {
			lastN, lastProgress = n, now
		}
		if idle > 0 && now.Sub(lastProgress) >= idle {
			fail(fmt.Errorf("%w: no data for %v", ErrTooSlow, idle))
			return
		}
		if window == 0 {
			continue
		}
		ring = append(ring, sample{now, n})
		// Keep the newest sample that is at least one window old as the
		// window's left edge.
		for len(ring) >= 2 && !ring[1].at.After(now.Add(-window)) {
			ring = ring[1:]
		}
		edge := ring[0]
		elapsed := now.Sub(edge.at)
		if elapsed < window {
			continue // less than one window observed so far
		}
		rate := float64(n-edge.n) / elapsed.Seconds()
		if rate < float64(limit) {
			fail(fmt.Errorf("%w: %.0f bytes/s over the last %v, below %d bytes/s", ErrTooSlow, rate, window, limit))
			return
		}
	}
}

// add records n more body bytes.
func (w *watchdog) add(n int) {
	if w != nil {
		w.n.Add(int64(n))
	}
}

// stop stops the watchdog and waits for its goroutine.
func (w *watchdog) stop() {
	if w != nil {
		close(w.quit)
		<-w.done
	}
}
