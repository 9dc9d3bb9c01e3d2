package agent_test

import (
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
)

// FuzzHandleDatagram feeds arbitrary datagrams to a registered engine.
// Invariants: no panic; everything the engine sends decodes as CoAP; the
// engine keeps its registration and still answers a valid Read.
func FuzzHandleDatagram(f *testing.F) {
	seeds := [][]byte{
		nil,
		{0x6e, 0x8d},                         // B01 short
		{0x80, 0x01, 0, 1},                   // B02 version 2
		{0x60, 0x01, 0, 1},                   // B02 request code in an ACK
		{0x40, 0x00, 0, 1, 0xff, 1},          // B02 empty with payload
		{0x49, 0x01, 0, 1, 1, 2, 3},          // B03 TKL 9
		{0x44, 0x01, 0, 1, 1, 2},             // B03 TKL beyond datagram
		{0x40, 0x01, 0, 1, 0xf0},             // B04 delta 15
		{0x40, 0x01, 0, 1, 0x0f},             // B04 length 15
		{0x40, 0x01, 0, 1, 0xd0},             // B05 truncated ext delta
		{0x40, 0x01, 0, 1, 0xe0, 0xff},       // B05
		{0x40, 0x01, 0, 1, 0xe0, 0xff, 0xff}, // B06 option number overflow
		{0x40, 0x01, 0, 1, 0x0e, 0xff, 0xff}, // B07 length wrap
		{0x40, 0x01, 0, 1, 0xff},             // B08 marker, no payload
		{0x40, 0x01, 0, 1, 0xb1, '3', 0x01, '0', 0xff, 0xff, 0xff},
		{0x40, 0x01, 0, 1, 0xb1, '3', 0x01, '0', 0x11, 0x2a, 0x11, 0x2b}, // B09 2× content format
		{0x40, 0x03, 0, 1, 0xb1, '1', 0x01, '0', 0x01, '1', 0x11, 0x00, 0xff, '9'},
		{0x40, 0x03, 0, 1, 0xb1, '1', 0x01, '0', 0x12, 0x2d, 0x16, 0xff, 0xc8, 0x01, 0x09},
		{0x40, 0x02, 0, 1, 0xb1, '3', 0x01, '0', 0x01, '4', 0xff, 'x'},
		{0x50, 0x45, 0, 1, 0xff, 'x'},                                    // B11 response with an unknown token
		{0x70, 0x00, 0, 1},                                               // RST
		{0x40, 0x01, 0, 1, 0xb1, '3', 0x01, '0', 0xc1, 0x07},             // B14 Block2 SZX 7
		{0x40, 0x01, 0, 1, 0xb1, '3', 0x01, '0', 0xc1, 0x12, 0x01, 0x22}, // B09 two Block2
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := agenttest.New(agent.Config{}, nil, 1, agenttest.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		s.Do(agent.CmdStart{})
		if _, ok := s.WaitEvent(agent.EventRegistered, time.Minute); !ok {
			t.Fatal("not registered")
		}
		before := len(s.Wire)
		s.Inject(b)
		s.RunFor(time.Second)
		for _, w := range s.Wire[before:] {
			if !w.ToAgent && w.Msg == nil {
				t.Fatal("engine sent an undecodable datagram")
			}
		}
		if !s.Engine.Registered() {
			// Only the server's Disable (Execute /1/0/4) may end it.
			disabled := false
			for _, ev := range s.EventsOf(agent.EventExecute) {
				disabled = disabled || ev.Path == "/1/0/4"
			}
			if !disabled {
				t.Fatal("a datagram ended the registration")
			}
		}
		r := s.Server.Request(codes.GET, "/3/0/0", nil)
		if r == nil || r.Code != codes.Content || r.Type != message.Acknowledgement {
			t.Fatalf("engine no longer serves: %v", r)
		}
	})
}
