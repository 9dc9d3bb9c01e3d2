package agent

import "time"

// fetchMsg is one step of an HTTP(S) fetch, delivered to the native
// driver's loop. The engine's answer goes to done: the fetch goroutine
// reuses the bytes in data only after it (fetchSink), and an engine error
// stops the fetch.
type fetchMsg struct {
	id    uint64
	start *FetchStart
	data  []byte
	end   *FetchEnd
	done  chan error
}

// deliver hands a fetch step to the engine (from the loop).
func (e *Engine) deliverFetch(now time.Time, m fetchMsg) error {
	switch {
	case m.start != nil:
		return e.HandleFetchStart(now, m.id, *m.start)
	case m.end != nil:
		e.HandleFetchEnd(now, m.id, *m.end)
		return nil
	}
	return e.HandleFetchData(now, m.id, m.data)
}
