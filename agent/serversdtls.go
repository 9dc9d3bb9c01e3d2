package agent

import (
	"strings"
	"time"
)

// The engine's side of a DTLS session per coaps server when there are
// several servers (servers.go): the driver asks which credential a
// DTLSPeerPrefix peer of a DM server takes, and reports each session's
// handshake. The engine decides what follows: a Register anew after a
// new session, the server's own retry timers after a failed handshake.

// serverCredential returns the Target (URI, credential) of the DM server
// the engine addresses as peer, a DTLSPeerPrefix key; false when peer is
// none of them (a coaps pull, for example).
func (e *Engine) serverCredential(peer string) (Target, bool) {
	if !strings.HasPrefix(peer, DTLSPeerPrefix) {
		return Target{}, false
	}
	r := e.regByPeer(peer)
	if r == nil {
		return Target{}, false
	}
	acc := e.dm
	if r.extra {
		acc = r.acc
	}
	t := acc.target()
	return t, t.Secure
}

// sessionUp is the driver's report that a DTLS session with the DM
// server at peer is up. LwM2M requires a Register after every new DTLS
// session (Core TS 1.1 §6.2, "re-register"): the server at peer alone
// registers anew, at once; the others are not touched. A De-register
// dropped while the handshake ran goes out again at once. A registration
// that is waiting (to retry, or disabled) or stopped is left to its own
// timers.
func (e *Engine) sessionUp(now time.Time, peer string) {
	e.now = now
	r := e.regByPeer(peer)
	if r == nil {
		return
	}
	switch r.state {
	case regRegistering, regRegistered, regUpdating:
		if !r.started {
			return
		}
		e.logInfo("new dtls session; registering anew", "server_uri", r.uri())
		// What went into the lost session (or was dropped while the
		// handshake ran) is replaced by the Register.
		e.tr.cancelPeer(r.peer())
		r.location = ""
		r.register(now)
	case regDeregistering:
		e.tr.cancelPeer(r.peer())
		r.deregister(now)
	}
}

// sessionFailed is the driver's report that a DTLS handshake with the DM
// server at peer failed. Nothing went to the server: the exchanges with
// it are forgotten and its registration fails like a Register the server
// refused, with err in the event (EventRegistrationFailed, naming the
// server), and is retried on the registration's own timers; the other
// servers' registrations are not touched.
func (e *Engine) sessionFailed(now time.Time, peer string, err error) {
	e.now = now
	r := e.regByPeer(peer)
	if r == nil || (!r.started && r.state != regDeregistering) {
		return
	}
	e.tr.cancelPeer(r.peer())
	if !r.extra {
		e.ctl.authStatus(StatusAuthFailed) // le_avc's AUTH_FAILED
	}
	switch r.state {
	case regRegistering, regRegistered, regUpdating:
		r.state = regRegistering
		r.failedWith(now, Event{Kind: EventRegistrationFailed, Err: "dtls handshake: " + err.Error()}, e.cfg.dtlsRetryDelay())
	case regDeregistering:
		// The De-register cannot reach the server: it ends unanswered.
		r.deregistered(now, Event{Kind: EventDeregistered, Location: r.location, Err: "dtls handshake: " + err.Error()})
	}
}

// sessionLost is the driver's report that the DTLS session with the DM
// server at peer ended (the server closed it, or the socket failed). A
// registration it carried is renewed at once: the Register opens a new
// session, after which sessionUp registers over it. A session that never
// carried a registration fails the Register in progress instead, so a
// server that keeps closing sessions is retried on the back-off timers,
// not in a storm of handshakes.
func (e *Engine) sessionLost(now time.Time, peer string) {
	e.now = now
	r := e.regByPeer(peer)
	if r == nil || !r.started {
		return
	}
	switch r.state {
	case regRegistered, regUpdating:
		e.tr.cancelPeer(r.peer())
		r.location = ""
		r.register(now)
	case regRegistering:
		e.tr.cancelPeer(r.peer())
		r.failedWith(now, Event{Kind: EventRegistrationFailed, Err: "dtls session closed before the registration"}, e.cfg.dtlsRetryDelay())
	}
}

// serverSessions reports whether some DM server is reached over a DTLS
// session of its own (a DTLSPeerPrefix peer), which the driver opens
// beside its main socket.
func (e *Engine) serverSessions() bool {
	if !e.hasDM {
		return false
	}
	for _, r := range e.registrations() {
		if strings.HasPrefix(r.peer(), DTLSPeerPrefix) {
			return true
		}
	}
	return false
}
