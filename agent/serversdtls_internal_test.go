package agent

import (
	"errors"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// TestServerSessionReports drives the engine's side of one DTLS session
// per coaps server on a clock of its own: with several servers each coaps
// one is addressed under DTLSPeerPrefix (never its plain address) with its
// own credential; a failed handshake fails that server's Register alone,
// retried after DTLSRetryDelay, doubling; a new session re-registers with
// that server alone.
func TestServerSessionReports(t *testing.T) {
	const (
		uri1, peer1 = "coaps://127.0.0.1:5684", DTLSPeerPrefix + "127.0.0.1:5684"
		uri2, peer2 = "coaps://127.0.0.2:5684", DTLSPeerPrefix + "127.0.0.2:5684"
		uri3, peer3 = "coap://127.0.0.3", "127.0.0.3:5683"
	)
	cfg := Config{
		ServerURI: uri1, Endpoint: "sess", PSKIdentity: "id-1", PSKKey: []byte{1},
		Servers: []ServerAccount{
			{URI: uri2, ShortServerID: 2, PSKIdentity: "id-2", PSKKey: []byte{2}},
			{URI: uri3, ShortServerID: 3},
		},
		DTLSRetryDelay: time.Second,
		Rand:           mrand.NewChaCha8([32]byte{}), // a replayable run
	}
	cfg.dtls = true // the native driver's
	e, err := NewEngine(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	registers := func(now time.Time) map[string]int {
		e.Step(now)
		out := map[string]int{}
		for {
			d, ok := e.PollTransmit()
			if !ok {
				return out
			}
			m, err := decode(d.Data)
			if err != nil {
				t.Fatalf("datagram to %s: %v", d.Peer, err)
			}
			if p, _ := m.Options.Path(); m.Code == codes.POST && p == "/rd" {
				out[d.Peer]++
			} else if m.Type != message.Acknowledgement {
				out[d.Peer+" other"]++
			}
		}
	}
	failures := func() []Event {
		var out []Event
		for {
			ev, ok := e.PollEvent()
			if !ok {
				return out
			}
			if ev.Kind == EventRegistrationFailed {
				out = append(out, ev)
			}
		}
	}
	same := func(got map[string]int, want ...string) bool {
		if len(got) != len(want) {
			return false
		}
		for _, p := range want {
			if got[p] != 1 {
				return false
			}
		}
		return true
	}

	// Each server's Security instance carries its mode and credential.
	for _, tc := range []struct {
		inst uint16
		mode int64
		id   string
		key  []byte
	}{{0, secModePSK, "id-1", []byte{1}}, {1, secModePSK, "id-2", []byte{2}}, {2, secModeNoSec, "", nil}} {
		in := e.objs.objs[0].insts[tc.inst]
		mode, _ := in.value(2)
		id, _ := in.value(3)
		key, _ := in.value(5)
		if mode.Int != tc.mode || string(id.Bytes) != tc.id || string(key.Bytes) != string(tc.key) {
			t.Errorf("/0/%d: mode %d, identity %q, key %x; want %d, %q, %x", tc.inst, mode.Int, id.Bytes, key.Bytes, tc.mode, tc.id, tc.key)
		}
	}
	if err := e.HandleCommand(t0, CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if got := registers(t0); !same(got, peer1, peer2, peer3) {
		t.Fatalf("registers at start = %v, want one to each of %s, %s, %s", got, peer1, peer2, peer3)
	}
	for _, tc := range []struct {
		peer, id string
		ok       bool
	}{{peer1, "id-1", true}, {peer2, "id-2", true}, {peer3, "", false}, {DTLSPeerPrefix + "127.0.0.9:5684", "", false}} {
		c, ok := e.serverCredential(tc.peer)
		if ok != tc.ok || c.PSKIdentity != tc.id || (ok && len(c.PSKKey) != 1) {
			t.Errorf("serverCredential(%s) = %+v, %v; want identity %q, %v", tc.peer, c, ok, tc.id, tc.ok)
		}
	}

	// Server 2's handshake fails: its Register fails, named, alone.
	e.sessionFailed(t0, peer2, errors.New("timeout"))
	evs := failures()
	if len(evs) != 1 || evs[0].Server != uri2 || !evs[0].Further || !strings.Contains(evs[0].Err, "dtls handshake: timeout") {
		t.Fatalf("failures = %+v, want one for %s", evs, uri2)
	}
	if st := e.Servers(); len(st) != 3 || st[1].Registered {
		t.Fatalf("servers = %+v", st)
	}
	// Retried on its own timer: after 1 s, then 2 s after the next failure.
	if got := registers(t0.Add(999 * time.Millisecond)); got[peer2] != 0 {
		t.Errorf("register to server 2 before its retry delay: %v", got)
	}
	if got := registers(t0.Add(time.Second)); got[peer2] != 1 {
		t.Errorf("no retry to server 2 after 1 s: %v", got)
	}
	t1 := t0.Add(time.Second)
	e.sessionFailed(t1, peer2, errors.New("timeout"))
	if got := registers(t1.Add(1999 * time.Millisecond)); got[peer2] != 0 {
		t.Errorf("second retry before 2 s: %v", got)
	}
	if got := registers(t1.Add(2 * time.Second)); got[peer2] != 1 {
		t.Errorf("no second retry after 2 s: %v", got)
	}
	if evs := failures(); len(evs) != 1 || evs[0].Server != uri2 {
		t.Errorf("failures = %+v, want server 2's second", evs)
	}

	// A request in plaintext from a coaps server's address (its peer key
	// without DTLSPeerPrefix, as the UDP socket tags it) is not that
	// server's: dropped, unanswered. Over its session it is served.
	get := &message.Message{Code: codes.GET, Type: message.Confirmable, MessageID: 7, Token: []byte{1}}
	get.Options = addPath(get.Options, "/3/0/0")
	b, err := encode(get)
	if err != nil {
		t.Fatal(err)
	}
	answers := func(peer string) (n int) {
		e.HandleDatagram(t1, peer, b)
		e.Step(t1)
		for {
			d, ok := e.PollTransmit()
			if !ok {
				return n
			}
			if m, err := decode(d.Data); err == nil && d.Peer == peer && m.Type == message.Acknowledgement && m.MessageID == 7 {
				n++
			}
		}
	}
	if n := answers("127.0.0.2:5684"); n != 0 {
		t.Errorf("a plaintext request from server 2's address was answered")
	}
	if n := answers(peer2); n != 1 {
		t.Errorf("the request over server 2's session got %d answers, want 1", n)
	}

	// A new session with server 1: it alone registers anew, at once.
	t2 := t1.Add(2 * time.Second)
	e.sessionUp(t2, peer1)
	if got := registers(t2); !same(got, peer1) {
		t.Errorf("after server 1's new session: %v, want one Register to %s", got, peer1)
	}
	// Reports for other peers (a coaps pull) change nothing.
	e.sessionUp(t2, DTLSPeerPrefix+"127.0.0.9:5684")
	e.sessionFailed(t2, DTLSPeerPrefix+"127.0.0.9:5684", errors.New("x"))
	if got := registers(t2); len(got) != 0 {
		t.Errorf("after reports for an unknown peer: %v", got)
	}
	if evs := failures(); len(evs) != 0 {
		t.Errorf("failures after reports for an unknown peer: %+v", evs)
	}
}
