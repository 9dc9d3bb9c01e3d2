//go:build wasip1

package main

import (
	"strings"
	"time"

	"github.com/avc-agent/avc/agent"
)

// coaps:// Package URIs: the module carries a DTLS-PSK session of its own
// to each host it pulls from over coaps (agent.PullLinks), beside the
// LwM2M server's. The engine addresses those datagrams to
// agent.DTLSPeerPrefix+"host:port"; their ciphertext goes out through
// sock_send to "host:port" and comes back through avc_on_datagram from
// there. The sessions are pumped like the server's (dtls.go). The host
// has a single socket, so a pull from the coaps address of the LwM2M
// server itself cannot have a session of its own: it rides the server's
// session instead (the engine matches the answers by message ID and
// token, whatever peer key they come under).

// pullTransmit routes one datagram of the engine to its pull session;
// false when it is not for one.
func (d *driver) pullTransmit(now time.Time, dg agent.Datagram) bool {
	if d.pulls == nil {
		return false
	}
	if addr, ok := strings.CutPrefix(dg.Peer, agent.DTLSPeerPrefix); ok && d.sec != nil && addr == d.sec.Peer() {
		d.secureTransmit(agent.Datagram{Peer: addr, Data: dg.Data})
		return true
	}
	return d.pulls.Send(now, d.engine, dg.Peer, dg.Data)
}

// pullDatagram takes one datagram from the host when a pull session is
// with its peer; false otherwise.
func (d *driver) pullDatagram(now time.Time, peer string, data []byte) bool {
	if d.pulls == nil || !d.pulls.Input(peer, data) {
		return false
	}
	d.pullSync(now)
	return true
}

// maxPullRounds bounds one pullSync.
const maxPullRounds = 16

// pullSync lets pion run, then moves everything between the pull
// sessions, the engine and the host, until nothing moves.
func (d *driver) pullSync(now time.Time) {
	if d.pulls == nil || !d.pulls.Active() {
		return // no session: nothing to pump (a pump costs ~15 µs)
	}
	for range maxPullRounds {
		pump()
		d.pulls.Update(now)
		moved := false
		for dg, ok := d.pulls.PollPlaintext(); ok && d.engine != nil; dg, ok = d.pulls.PollPlaintext() {
			d.engine.HandleDatagram(now, dg.Peer, dg.Data)
			moved = true
		}
		if moved && d.engine != nil {
			d.flush(now)
			if d.sec != nil {
				d.sendCiphertext()
			}
		}
		for addr, b, ok := d.pulls.PollOutput(); ok; addr, b, ok = d.pulls.PollOutput() {
			if rc := sockSend(addr, b); rc != 0 {
				d.log.Debug("send failed", "peer", addr, "len", len(b), "rc", rc)
			}
			moved = true
		}
		if !moved {
			return
		}
	}
}
