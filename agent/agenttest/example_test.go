package agenttest_test

import (
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
)

// A day of a one-hour lifetime runs in milliseconds on the virtual clock,
// over a network that loses one datagram in ten; the seed replays it.
func Example() {
	s, err := agenttest.New(agent.Config{Lifetime: time.Hour}, nil, 42, agenttest.Faults{Loss: 0.1})
	if err != nil {
		panic(err)
	}
	s.Do(agent.CmdStart{})
	s.RunFor(24 * time.Hour)
	fmt.Println("registered:", s.Engine.Registered())
	fmt.Println("kept alive by updates:", len(s.EventsOf(agent.EventUpdated)) >= 24)
	r := s.Server.Request(codes.GET, "/3/0/0", nil)
	fmt.Println(r.Code, string(r.Payload))
	// Output:
	// registered: true
	// kept alive by updates: true
	// Content avc
}
