package agent_test

import (
	"testing"

	"github.com/avc-agent/avc/agent"
)

func TestEventQueueNeverBlocksAndKeepsOrder(t *testing.T) {
	q := agent.NewEventQueue()
	const n = 1000
	for i := 0; i < n; i++ {
		q.Push(agent.Event{Kind: agent.EventRead, Lifetime: uint32(i)}) // no reader yet: must not block
	}
	q.Close()
	q.Push(agent.Event{Kind: agent.EventWrite}) // after Close: dropped
	i := 0
	for ev := range q.C() {
		if ev.Kind != agent.EventRead || ev.Lifetime != uint32(i) {
			t.Fatalf("event %d = %+v", i, ev)
		}
		i++
	}
	if i != n {
		t.Fatalf("received %d events, want %d", i, n)
	}
}
