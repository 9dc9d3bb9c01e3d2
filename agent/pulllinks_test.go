package agent_test

import (
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
)

// pollOutput waits (pion's goroutines run natively) for the next datagram
// of p.
func pollOutput(t *testing.T, p *agent.PullLinks) (string, []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if addr, b, ok := p.PollOutput(); ok {
			return addr, b
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no datagram from the pull links within 5 s")
	return "", nil
}

// TestPullLinks: the side sessions of a driver-carried coaps pull. A
// datagram for a DTLSPeerPrefix peer opens a DTLS session to its address
// (a ClientHello, never the datagram in plaintext); other peers are left
// to the driver; a handshake that outlasts the timeout ends, and the next
// datagram opens a new one; without a credential nothing is sent.
func TestPullLinks(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	cfg := agent.Config{ServerURI: "coap://127.0.0.1:5683", Endpoint: "pull-links",
		FirmwarePSKIdentity: "fw", FirmwarePSKKey: []byte("0123456789abcdef"), DTLSHandshakeTimeout: 10 * time.Second}
	cfg.CarryPullDTLS()
	e, err := agent.NewEngine(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := agent.NewPullLinks(cfg)
	coapGet := []byte{0x40, 0x01, 0x12, 0x34}

	if p.Send(t0, e, "127.0.0.1:5683", coapGet) {
		t.Fatal("Send took a datagram for a plain peer")
	}
	if p.Active() {
		t.Fatal("active before any coaps datagram")
	}
	peer := agent.DTLSPeerPrefix + "127.0.0.1:5684"
	if !p.Send(t0, e, peer, coapGet) {
		t.Fatal("Send left a coaps peer's datagram to the driver")
	}
	addr, b := pollOutput(t, p)
	if addr != "127.0.0.1:5684" || len(b) < 14 || b[0] != 22 || b[13] != 1 {
		t.Fatalf("first datagram to %s starts % x, want a ClientHello record to 127.0.0.1:5684", addr, b[:min(len(b), 14)])
	}
	if !p.Input("127.0.0.1:5684", []byte{0}) || p.Input("127.0.0.1:9999", []byte{0}) {
		t.Error("Input routes by the session's address only")
	}
	if next := p.Next(t0); next.IsZero() || next.Sub(t0) > 100*time.Millisecond {
		t.Errorf("Next = %v while handshaking, want within 100 ms", next.Sub(t0))
	}
	// No answer within the handshake timeout: the session ends.
	p.Update(t0.Add(10 * time.Second))
	for _, _, ok := p.PollOutput(); ok; _, _, ok = p.PollOutput() {
		// A retransmitted ClientHello may have been queued.
	}
	if p.Active() {
		t.Fatal("still active after the handshake timeout")
	}
	if !p.Next(t0).IsZero() {
		t.Error("Next without a session, want none")
	}
	// The next datagram opens a new session.
	p.Send(t0.Add(11*time.Second), e, peer, coapGet)
	if addr, b := pollOutput(t, p); addr != "127.0.0.1:5684" || b[0] != 22 {
		t.Fatalf("after the timeout: datagram to %s type %d, want a new ClientHello", addr, b[0])
	}
	p.Close()

	// Without a credential nothing leaves.
	bare := agent.Config{ServerURI: "coap://127.0.0.1:5683", Endpoint: "pull-links-bare"}
	bare.CarryPullDTLS()
	e2, err := agent.NewEngine(bare, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2 := agent.NewPullLinks(bare)
	if !p2.Send(t0, e2, peer, coapGet) || p2.Active() {
		t.Error("a coaps datagram without a credential must be taken and dropped")
	}
}
