//go:build wasip1

package main

import (
	"errors"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/avc-agent/avc/agent"
)

// coaps: the module carries the DTLS session to a coaps:// server itself
// (agent.SecureSession over pion/dtls), between the engine, which sees
// plaintext CoAP from and to the server's peer key as over UDP, and the
// host, which moves only ciphertext datagrams (sock_send, avc_on_datagram)
// and time. pion runs on goroutines, which run only while an export
// yields: pump lets them run until they are idle, after every input and in
// every avc_step, and avc_step asks to be called again every 50 ms while a
// handshake runs, so that pion's retransmission timers fire.
//
// The session policy is the native driver's (agent.SecureSession): the
// engine starts its session once the handshake succeeded; a failed
// handshake is an EventRegistrationFailed retried with back-off; a lost
// session, a failed registration or the NAT timeout lead to a new
// handshake and a new engine (from the stored state) that registers anew.
// Datagrams from any other peer are dropped, and nothing goes to the
// server in plaintext.

// maxPumpRounds bounds one pump: a goroutine that keeps yielding would
// otherwise never let it end.
const maxPumpRounds = 200

var runnable = []metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}}

// pump yields to the other goroutines until none is ready to run.
func pump() {
	for range maxPumpRounds {
		runtime.Gosched()
		metrics.Read(runnable)
		if runnable[0].Value.Kind() != metrics.KindUint64 || runnable[0].Value.Uint64() == 0 {
			return
		}
	}
}

// secureCommand handles the commands that concern the session when the
// module carries DTLS; handled is false for the engine's own.
//
// start opens the session (the engine starts once it is up); stop
// de-registers over an established session, and otherwise ends the
// handshakes and reports "deregistered" at once, as an engine that was not
// registered does.
func (d *driver) secureCommand(now time.Time, c agent.Command) (handled bool, err error) {
	s := d.sec
	switch c.(type) {
	case agent.CmdStart:
		if s.Active() || d.engine.Started() {
			return true, agent.ErrDuplicate
		}
		s.Open(now)
		d.stopping = false
		return true, nil
	case agent.CmdStop:
		if !s.Active() {
			return false, nil // the engine answers (ErrDuplicate)
		}
		d.stopping = true
		if s.Up() && d.engine.Started() {
			return false, nil // de-register over the session; closed after
		}
		s.Close()
		if d.engine.Started() {
			// Registered over a session that is gone: the new session
			// would have registered anew, so start afresh, unregistered.
			d.renew(now, false)
		}
		d.pushEvent(agent.Event{Kind: agent.EventDeregistered, Server: d.cfg.ServerURI})
		return true, nil
	}
	return false, nil
}

// secureSync lets pion run, then moves everything between the session,
// the engine and the host: session changes, decrypted datagrams into the
// engine, the engine's output, ciphertext out.
func (d *driver) secureSync(now time.Time) {
	s := d.sec
	for range 4 { // a change may start a handshake, whose output needs a pump
		pump()
		changed := false
		for _, ch := range s.Update(now) {
			changed = true
			switch ch.Kind {
			case agent.SessionUp:
				if ch.Renewed {
					d.renew(now, true)
				}
				if d.engine == nil {
					return
				}
				if err := d.engine.HandleCommand(now, agent.CmdStart{}); err != nil && !errors.Is(err, agent.ErrDuplicate) {
					d.log.Warn("start over the new dtls session", "err", err)
				}
			case agent.SessionFailed:
				d.pushEvent(ch.Event)
			case agent.SessionLost:
				if d.stopping {
					// Lost while de-registering: no new session; the
					// stop ends here, unconfirmed.
					d.stopping = false
					s.Close()
					d.renew(now, false)
					d.pushEvent(agent.Event{Kind: agent.EventDeregistered, Server: d.cfg.ServerURI, Err: ch.Err.Error()})
				}
			}
		}
		for b, ok := s.PollPlaintext(); ok; b, ok = s.PollPlaintext() {
			d.engine.HandleDatagram(now, s.Peer(), b)
		}
		if s.CheckNAT(now, d.engine.PendingTransmit()) {
			changed = true // the engine's datagrams are dropped in flush
		}
		d.flush(now)
		if d.engine == nil {
			return
		}
		d.sendCiphertext()
		if !changed {
			return
		}
	}
}

// sendCiphertext passes the session's datagrams to the host.
func (d *driver) sendCiphertext() {
	s := d.sec
	for b, ok := s.PollOutput(); ok; b, ok = s.PollOutput() {
		if rc := sockSend(s.Peer(), b); rc != 0 {
			d.log.Debug("send failed", "peer", s.Peer(), "len", len(b), "rc", rc)
		}
	}
}

// secureTransmit routes one datagram of the engine: into the session for
// the server, nowhere for any other peer (the native driver's DTLS socket
// talks to the server only).
func (d *driver) secureTransmit(dg agent.Datagram) {
	if dg.Peer != d.sec.Peer() {
		d.log.Debug("no dtls session with peer; dropped", "peer", dg.Peer, "len", len(dg.Data))
		return
	}
	if err := d.sec.Send(dg.Data); err != nil {
		// Like a lost datagram: CoAP retransmits.
		d.log.Debug("send", "err", err)
	}
}

// secureObserve shows the session an event of the engine; a finished
// stop closes the session.
func (d *driver) secureObserve(now time.Time, ev agent.Event) {
	d.sec.Observe(now, ev)
	if ev.Kind == agent.EventDeregistered && d.stopping {
		d.stopping = false
		d.sec.Close()
	}
}

// secureDatagram takes one datagram from the host: ciphertext from the
// server; anything from another peer is dropped.
func (d *driver) secureDatagram(now time.Time, peer string, data []byte) {
	if peer != d.sec.Peer() {
		d.log.Debug("datagram outside the dtls session; dropped", "peer", peer, "len", len(data))
		return
	}
	d.sec.Input(now, data)
	d.secureSync(now)
}

// secureStep is step for coaps: the session's timers, then the engine's
// (only while the session is up, or before the engine started: an engine
// whose session is gone waits for the next one); it returns the earlier
// deadline.
func (d *driver) secureStep(now time.Time) time.Time {
	for i := 0; ; i++ {
		d.secureSync(now)
		if d.engine == nil {
			return time.Time{}
		}
		e := d.engine
		var next time.Time
		if d.sec.Up() || !e.Started() {
			next = e.Step(now)
			d.secureSync(now) // with the NAT check before the engine's output
			if !d.sec.Up() {
				next = time.Time{} // the engine waits for the next session
			}
		}
		if d.engine == nil {
			return time.Time{}
		}
		if d.engine == e || i == maxRestarts {
			return earliest(next, d.sec.Next(now))
		}
		// A restart or a new session replaced the engine: its timers.
	}
}

// secureSession prepares cfg for a coaps:// server, which the module
// carries the DTLS session to, and returns that session; nil for coap.
func secureSession(cfg *agent.Config) (*agent.SecureSession, error) {
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(cfg.ServerURI)), "coaps:") {
		return nil, nil
	}
	cfg.CarryDTLS()
	return agent.NewSecureSession(*cfg)
}

// renew replaces the engine by a new one from the stored state, as after
// a restart, for a new DTLS session; start says whether it starts.
func (d *driver) renew(now time.Time, start bool) {
	d.restart(now, start)
}

// earliest returns the earlier of two deadlines, the zero time meaning
// none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
