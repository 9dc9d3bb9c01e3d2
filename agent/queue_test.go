package agent_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
)

func TestQueueModeRegistersWithQ(t *testing.T) {
	s := registered(t, agent.Config{Binding: "UQ"})
	q := agenttest.Queries(s.Server.Registers[0])
	if !slices.Contains(q, "b=U") || !slices.Contains(q, "Q") {
		t.Errorf("register queries %v, want b=U and Q", q)
	}
}

// TestQueueModeSleepStoreWake: the client sleeps after the queue window;
// notifications due while asleep are stored, the client wakes with a
// Registration Update, and the stored notifications follow it in order.
func TestQueueModeSleepStoreWake(t *testing.T) {
	s := observeBattery(t, agent.Config{Binding: "UQ", Lifetime: 86400 * time.Second}, nil)
	lastExchange := s.Now
	if _, ok := s.WaitEvent(agent.EventSleep, 2*time.Minute); !ok {
		t.Fatal("queue-mode client never slept")
	}
	if slept := s.Now.Sub(lastExchange); slept < agent.MaxTransmitWait-time.Second || slept > agent.MaxTransmitWait+time.Second {
		t.Errorf("slept %v after the last exchange, want the queue window (%v)", slept, agent.MaxTransmitWait)
	}
	if !s.Engine.Asleep() {
		t.Fatal("Asleep() = false after the sleep event")
	}
	updatesBefore := len(s.Server.Updates)
	set(t, s, "/3/0/9", "40")
	set(t, s, "/3/0/9", "30") // stored too, while the update is in flight
	if len(s.EventsOf(agent.EventWake)) != 1 {
		t.Fatalf("wake events = %d, want 1", len(s.EventsOf(agent.EventWake)))
	}
	s.RunFor(5 * time.Second)
	if len(s.Server.Updates) != updatesBefore+1 {
		t.Fatalf("no Registration Update on waking")
	}
	if got := payloads(s.Server.Notifications); strings.Join(got, ",") != "40,30" {
		t.Fatalf("notifications = %q, want the stored 40 then 30", got)
	}
	// On the wire, the update precedes the notifications.
	var order []string
	for _, w := range s.WireTo(false, nil) {
		if w.Msg == nil {
			continue
		}
		if w.Msg.Code == codes.POST && agenttest.Path(w.Msg) == "/rd/a1" {
			order = append(order, "update")
		}
		if _, err := w.Msg.Options.Observe(); err == nil && w.Msg.Code == codes.Content && w.Msg.Type != message.Acknowledgement {
			order = append(order, "notify")
		}
	}
	if strings.Join(order, ",") != "update,notify,notify" {
		t.Errorf("wire order = %v, want update before the notifications", order)
	}
}

// TestQueueModeWakesForTimers: a sleeping client wakes for its
// Registration Update and for pmax.
func TestQueueModeWakesForTimers(t *testing.T) {
	s := observeBattery(t, agent.Config{Binding: "UQ", Lifetime: 86400 * time.Second}, map[string][]string{"/3/0/9": {"pmax=600"}})
	s.RunFor(2 * time.Hour)
	sleeps, wakes := len(s.EventsOf(agent.EventSleep)), len(s.EventsOf(agent.EventWake))
	if sleeps < 10 || wakes < 10 {
		t.Errorf("in 2 h with pmax=600: %d sleeps and %d wakes, want about 12 each", sleeps, wakes)
	}
	if n := len(s.Server.Notifications); n < 11 || n > 13 {
		t.Errorf("notifications in 2 h with pmax=600 = %d, want about 12", n)
	}
	if len(s.Server.Updates) < 11 {
		t.Errorf("updates = %d: a sleeping client must wake with an update before notifying", len(s.Server.Updates))
	}
}

func TestNonQueueModeNeverSleeps(t *testing.T) {
	s := registered(t, agent.Config{})
	s.RunFor(time.Hour)
	if len(s.EventsOf(agent.EventSleep)) != 0 || s.Engine.Asleep() {
		t.Error("a U-binding client slept")
	}
}
