package agent_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/fwpkg"
)

// With Config.Software set, the server creates Software Management
// instances (/9/x), delivers packages to them and installs them; the
// engine reports each instance's progress in EventSoftware.
func ExampleSoftwareConfig() {
	apps := &agenttest.Apps{}
	s, err := agenttest.New(agent.Config{Software: agent.SoftwareConfig{Handler: apps}}, nil, 1, agenttest.Faults{})
	if err != nil {
		panic(err)
	}
	s.Do(agent.CmdStart{})
	s.WaitEvent(agent.EventRegistered, time.Minute)

	// The server creates /9/0 and pushes an unsigned package to it.
	s.Server.Request(codes.POST, "/9", []byte{0x00, 0}, agenttest.Uint(message.ContentFormat, 11542))
	var p bytes.Buffer
	if _, err := fwpkg.Build(&p, fwpkg.Manifest{Name: "app", Version: "1.0.0"}, bytes.NewReader(make([]byte, 700)), nil); err != nil {
		panic(err)
	}
	s.Server.Request(codes.PUT, "/9/0/2", p.Bytes(), agenttest.Uint(message.ContentFormat, 42))
	s.Server.Request(codes.POST, "/9/0/4", nil) // Install
	s.RunFor(time.Second)
	s.Server.Request(codes.POST, "/9/0/10", nil) // Activate

	last := ""
	for _, ev := range s.EventsOf(agent.EventSoftware) {
		// Progress events (Bytes growing) are left out.
		line := fmt.Sprint(ev.Path, " ", ev.Software.State, " / ", ev.Software.Result, " active: ", ev.Software.Active)
		if line != last {
			fmt.Println(line)
		}
		last = line
	}
	fmt.Println(apps.Calls)
	// Output:
	// /9/0 initial / initial active: false
	// /9/0 download started / downloading active: false
	// /9/0 downloaded / initial active: false
	// /9/0 delivered / downloaded and verified active: false
	// /9/0 installed / installed active: false
	// /9/0 installed / installed active: true
	// [install 0 1.0.0 activate 0]
}
