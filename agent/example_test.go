package agent_test

import (
	"fmt"
	"time"

	"github.com/avc-agent/avc/agent"
)

// The engine does no I/O: the caller passes the time in, and takes the
// datagrams to send out. Here a Start command yields the Register request.
func ExampleEngine() {
	e, err := agent.NewEngine(agent.Config{
		ServerURI: "coap://192.0.2.1:5683",
		Endpoint:  "dev-1",
		Lifetime:  300 * time.Second,
	}, nil)
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := e.HandleCommand(now, agent.CmdStart{}); err != nil {
		panic(err)
	}
	d, _ := e.PollTransmit()
	fmt.Println("send to", d.Peer)
	// Without an answer, Step says when the Register is retransmitted:
	// after ACK_TIMEOUT (2 s) times a random factor up to 1.5.
	next := e.Step(now)
	fmt.Println("retransmit within 3s:", next.Sub(now) <= 3*time.Second)
	// Output:
	// send to 192.0.2.1:5683
	// retransmit within 3s: true
}

func ExampleConfig_Set() {
	var c agent.Config
	for name, value := range map[string]string{
		agent.EnvServerURI: "coap://127.0.0.1:5683",
		agent.EnvLifetime:  "120",
	} {
		if err := c.Set(name, value); err != nil {
			panic(err)
		}
	}
	fmt.Println(c.ServerURI, c.Lifetime)
	fmt.Println(c.Set(agent.EnvLifetime, "soon"))
	// Output:
	// coap://127.0.0.1:5683 2m0s
	// agent: bad configuration: AVC_LIFETIME="soon": want seconds, 1..4294967295
}
