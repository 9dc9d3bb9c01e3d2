package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/linkformat"
)

// EventKind says what an [Event] reports. Its values are the lower-case
// words used in logs and by the CLI.
type EventKind string

// Event kinds.
const (
	// EventRegistered: a client registered (Register, §6.2.1), possibly
	// replacing an earlier registration of the same endpoint.
	EventRegistered EventKind = "registered"
	// EventUpdated: a client sent a Registration Update (§6.2.2).
	EventUpdated EventKind = "updated"
	// EventDeregistered: a client sent De-register (§6.2.3).
	EventDeregistered EventKind = "deregistered"
	// EventExpired: a registration's lifetime (plus Config.ExpiryGrace)
	// ran out without an update, and the server removed it.
	EventExpired EventKind = "expired"
	// EventSend: a registered client reported values with the Send
	// operation (§6.4.3); Records holds them.
	EventSend EventKind = "send"
	// EventBootstrapped: in bootstrap-server mode, a client that sent a
	// Bootstrap-Request was provisioned and accepted Bootstrap-Finish.
	EventBootstrapped EventKind = "bootstrapped"
	// EventBootstrapFailed: provisioning a client failed; Err says why.
	EventBootstrapFailed EventKind = "bootstrap_failed"
)

// Event reports a change of a client's registration. The fields other than
// Kind, Endpoint, ID and Time describe the registration as it stands after
// the change (as it stood before, for deregistered and expired).
type Event struct {
	Kind     EventKind
	Endpoint string
	ID       string // registration ID, the <id> of /rd/<id>
	Lifetime time.Duration
	Binding  string
	Version  string // the lwm2m= parameter, e.g. "1.1"
	Links    []linkformat.Link
	Addr     net.Addr
	Time     time.Time
	// Records are the values of an EventSend.
	Records []lwm2m.Record
	// Err describes the failure of an EventBootstrapFailed.
	Err string
}

// eventHub fans events out to subscribers without ever blocking the sender.
type eventHub struct {
	log    *slog.Logger
	buffer int

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch      chan Event
	dropped int
}

func (h *eventHub) init(log *slog.Logger, buffer int) {
	h.log = log
	h.buffer = buffer
	h.subs = make(map[*subscriber]struct{})
}

// publish hands ev to every subscriber that has room for it and drops it
// for the others.
func (h *eventHub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.ch <- ev:
		default:
			sub.dropped++
			h.log.Warn("event dropped for slow subscriber", "kind", string(ev.Kind), "ep", ev.Endpoint, "dropped", sub.dropped)
		}
	}
}

func (h *eventHub) subscribe() (<-chan Event, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := &subscriber{ch: make(chan Event, h.buffer)}
	if h.closed {
		close(sub.ch)
		return sub.ch, func() {}
	}
	h.subs[sub] = struct{}{}
	return sub.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[sub]; ok {
			delete(h.subs, sub)
			close(sub.ch)
		}
	}
}

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		close(sub.ch)
	}
	clear(h.subs)
}

// Subscribe returns a channel that receives every event from now on, and a
// function that ends the subscription and closes the channel.
//
// # Notes
//
//   - Each subscriber has its own buffer of Config.EventBuffer events. The
//     server never waits for a subscriber: when a buffer is full, the event
//     is dropped for that subscriber and a warning is logged.
//   - Close closes every subscription channel; Subscribe on a closed server
//     returns a closed channel.
//   - The cancel function may be called more than once.
func (s *Server) Subscribe() (<-chan Event, func()) {
	return s.events.subscribe()
}

// WaitFor waits for the next event of kind for endpoint ep that happens
// after the call, and returns it. It fails with ctx's error, or with
// ErrClosed when the server closes first.
//
// WaitFor cannot see an event that happened before it was called. To wait
// for the effect of an action without a race, Subscribe before the action
// and use [WaitEvent] on the channel.
func (s *Server) WaitFor(ctx context.Context, ep string, kind EventKind) (Event, error) {
	ch, cancel := s.Subscribe()
	defer cancel()
	return WaitEvent(ctx, ch, ep, kind)
}

// WaitEvent reads ch, a channel from Subscribe, until an event of kind for
// endpoint ep arrives, and returns it; other events are discarded. An empty
// ep matches any endpoint. It fails with ctx's error, or with ErrClosed when
// ch is closed.
func WaitEvent(ctx context.Context, ch <-chan Event, ep string, kind EventKind) (Event, error) {
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return Event{}, ErrClosed
			}
			if ev.Kind == kind && (ep == "" || ev.Endpoint == ep) {
				return ev, nil
			}
		case <-ctx.Done():
			return Event{}, fmt.Errorf("server: wait for %s of %q: %w", kind, ep, ctx.Err())
		}
	}
}
