package agent

import "sync"

// EventQueue delivers events on a channel without ever blocking the
// producer: pushed events wait in an unbounded queue until the consumer
// receives them, so a slow reader never stalls the protocol. Drivers use it
// for their Events channel.
type EventQueue struct {
	ch     chan Event
	wake   chan struct{}
	mu     sync.Mutex
	queue  []Event
	closed bool
}

// NewEventQueue returns a queue whose feeding goroutine is running.
func NewEventQueue() *EventQueue {
	q := &EventQueue{ch: make(chan Event), wake: make(chan struct{}, 1)}
	go q.feed()
	return q
}

// C returns the channel events arrive on. It is closed after Close, once
// every queued event has been received.
func (q *EventQueue) C() <-chan Event { return q.ch }

// Push queues events. Pushing after Close drops them.
func (q *EventQueue) Push(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	if !q.closed {
		q.queue = append(q.queue, evs...)
	}
	q.mu.Unlock()
	q.signal()
}

// Close ends the queue; the channel closes once it is drained.
func (q *EventQueue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *EventQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *EventQueue) feed() {
	defer close(q.ch)
	// Two slices take turns: Push appends to one while feed sends the
	// other, so a steady stream of events allocates nothing.
	var spare []Event
	for {
		q.mu.Lock()
		batch := q.queue
		q.queue, spare = spare, nil
		closed := q.closed
		q.mu.Unlock()
		for _, ev := range batch {
			q.ch <- ev
		}
		clear(batch) // drop what the events point to
		spare = batch[:0]
		if len(batch) > 0 {
			continue
		}
		if closed {
			return
		}
		<-q.wake
	}
}
