package agent

import (
	"fmt"
	"strings"
	"time"

	"github.com/avc-agent/avc/lwm2m"
)

// Several DM servers (Core TS 1.1 §6.2: a client registers with each
// LwM2M Server it has an account for). Every usable DM server account,
// a non-bootstrap Security (/0) instance with the Server (/1) instance of
// the same Short Server ID, gets a registration of its own: Register,
// Updates at its own lifetime, retries with their own back-off, its own
// location, De-register, Disable (/1/x/4) and the update trigger
// (/1/x/8). The first account in /0 order is the primary one: its
// registration (Engine.reg) is the one Target names, whose lifetime and
// binding live in the persistent state, which falls back to bootstrap and
// which update control follows. The others (Engine.extra) have their
// lifetime in their /1 instance. With more than one server the Access
// Control object /2 is enforced (acl.go).
//
// Transport: coap servers are reached through the driver's one UDP
// socket. With several servers every coaps server, the primary one too,
// is addressed under DTLSPeerPrefix + "host:port", so that the driver
// reaches it over a DTLS session of its own, with the credential of its
// Security instance (Engine.serverCredential), and a plaintext datagram
// from its address is never taken as its. The driver reports each
// session's handshake (Engine.sessionUp, sessionFailed): a new session
// re-registers with that server only; a failed handshake fails that
// server's Register, which is retried on its own timers, while the
// other servers stay registered.

// dmAccount is a usable DM server account and its Server instance.
type dmAccount struct {
	acc     account
	srvInst uint16
}

// findDMs returns the usable DM server accounts in /0 instance order, or
// why there is none.
func (e *Engine) findDMs() ([]dmAccount, error) {
	sec, srv := e.objs.objs[0], e.objs.objs[1]
	why := "no LwM2M Server account in /0"
	var out []dmAccount
	for _, id := range sec.instanceIDs() {
		in := sec.insts[id]
		if v, ok := in.value(1); ok && v.Bool {
			continue
		}
		a, err := e.accountOf(in)
		if err != nil {
			why = fmt.Sprintf("/0/%d: %v", id, err)
			continue
		}
		found := false
		for _, sid := range srv.instanceIDs() {
			if v, ok := srv.insts[sid].value(0); ok && v.Int == a.ssid {
				out = append(out, dmAccount{acc: a, srvInst: sid})
				found = true
				break
			}
		}
		if !found {
			why = fmt.Sprintf("/0/%d: no /1 instance with Short Server ID %d", id, a.ssid)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s", why)
	}
	if len(out) > 1 && e.cfg.sideDTLS() {
		for i := range out {
			if a := &out[i].acc; a.addr.scheme == "coaps" {
				a.addr.peer = DTLSPeerPrefix + a.addr.peer
			}
		}
	}
	return out, nil
}

// serverURIsOf returns the URIs of accts.
func serverURIsOf(accts []ServerAccount) []string {
	out := make([]string, len(accts))
	for i, a := range accts {
		out[i] = a.URI
	}
	return out
}

// syncExtra makes the further registrations follow the accounts after
// the primary one: a registration whose account is gone is dropped (its
// exchanges and observations with it), a new account gets a new
// registration, started by startExtras. A driver that cannot open a
// DTLS session per server (Config.sideDTLS) gets coap servers beside a
// coap primary server only.
func (e *Engine) syncExtra(accts []dmAccount) {
	var keep []*registration
	for _, a := range accts {
		if !e.cfg.sideDTLS() && (e.dm.addr.scheme != "coap" || a.acc.addr.scheme != "coap") {
			e.logWarn("ignoring a further LwM2M server: this driver supports several servers over coap only", "server_uri", a.acc.uri, "ssid", a.acc.ssid)
			continue
		}
		if strings.TrimPrefix(a.acc.addr.peer, DTLSPeerPrefix) == strings.TrimPrefix(e.server.peer, DTLSPeerPrefix) {
			e.logWarn("ignoring a further LwM2M server at the first server's address", "server_uri", a.acc.uri, "ssid", a.acc.ssid)
			continue
		}
		var r *registration
		for _, old := range e.extra {
			if old != nil && old.acc.ssid == a.acc.ssid && old.acc.uri == a.acc.uri && old.acc.addr.peer == a.acc.addr.peer {
				r = old
				break
			}
		}
		if r == nil {
			r = &registration{e: e, extra: true}
		}
		r.acc, r.srvInst = a.acc, a.srvInst
		keep = append(keep, r)
	}
	for _, old := range e.extra {
		gone := true
		for _, r := range keep {
			if r == old {
				gone = false
			}
		}
		if gone {
			e.tr.cancelPeer(old.peer())
			old.reset()
			old.started = false
		}
	}
	e.extra = keep
}

// startExtras starts the further registrations not started yet.
func (e *Engine) startExtras(now time.Time) {
	for _, r := range e.extra {
		if !r.started {
			r.started = true
			r.failures = 0
			r.register(now)
		}
	}
}

// stopExtras de-registers every further server.
func (e *Engine) stopExtras(now time.Time) {
	for _, r := range e.extra {
		if r.started {
			r.stop(now)
		}
	}
}

// busy reports whether a De-register is in flight with any server.
func (e *Engine) busy() bool {
	for _, r := range e.registrations() {
		if r.busy() {
			return true
		}
	}
	return false
}

// registrations returns the primary registration and the further ones.
func (e *Engine) registrations() []*registration {
	return append([]*registration{e.reg}, e.extra...)
}

// regByPeer returns the registration of the DM server at peer.
func (e *Engine) regByPeer(peer string) *registration {
	if e.hasDM && peer == e.server.peer {
		return e.reg
	}
	for _, r := range e.extra {
		if r.acc.addr.peer == peer {
			return r
		}
	}
	return nil
}

// regBySSID returns the registration of the server with Short Server ID
// ssid (0: the primary one).
func (e *Engine) regBySSID(ssid uint16) *registration {
	if ssid == 0 || (e.hasDM && int64(ssid) == e.dm.ssid) {
		return e.reg
	}
	for _, r := range e.extra {
		if r.acc.ssid == int64(ssid) {
			return r
		}
	}
	return nil
}

// regBySrvInst returns the registration whose Server instance is inst.
func (e *Engine) regBySrvInst(inst uint16) *registration {
	if e.hasDM && inst == e.srvInst {
		return e.reg
	}
	for _, r := range e.extra {
		if r.srvInst == inst {
			return r
		}
	}
	return nil
}

// isDMPeer reports whether peer is one of the DM servers.
func (e *Engine) isDMPeer(peer string) bool { return e.regByPeer(peer) != nil }

// ssidOf returns the Short Server ID of the DM server at peer (0 when
// peer is none).
func (e *Engine) ssidOf(peer string) uint16 {
	if r := e.regByPeer(peer); r != nil {
		return r.ssid()
	}
	return 0
}

// peer returns the registration's server peer.
func (r *registration) peer() string {
	if r.extra {
		return r.acc.addr.peer
	}
	return r.e.server.peer
}

// uri returns the registration's server URI.
func (r *registration) uri() string {
	if r.extra {
		return r.acc.uri
	}
	return r.e.dm.uri
}

// ssid returns the registration's Short Server ID.
func (r *registration) ssid() uint16 {
	if r.extra {
		return uint16(r.acc.ssid)
	}
	return uint16(r.e.dm.ssid)
}

// serverInst returns the registration's Server instance, if any.
func (r *registration) serverInst() (*instance, bool) {
	inst := r.srvInst
	if !r.extra {
		if !r.e.hasDM {
			return nil, false
		}
		inst = r.e.srvInst
	}
	in, ok := r.e.objs.objs[1].insts[inst]
	return in, ok
}

// lifetime is the lifetime the registration asks for: the persistent
// state's for the primary server, /1/x/1 for the others.
func (r *registration) lifetime() uint32 {
	if !r.extra {
		return r.e.st.Lifetime
	}
	if in, ok := r.serverInst(); ok {
		if v, ok := in.value(1); ok && v.Int > 0 && v.Int <= 1<<32-1 {
			return uint32(v.Int)
		}
	}
	return uint32(r.e.cfg.lifetime() / time.Second)
}

// binding is the binding the registration sends: queue mode is for a
// single server only.
func (r *registration) binding() string {
	if r.extra || len(r.e.extra) > 0 {
		return "U"
	}
	return r.e.st.Binding
}

// event emits ev as the registration's server's.
func (r *registration) event(ev Event) {
	if r.extra {
		if ev.Server == "" {
			ev.Server = r.acc.uri
		}
		ev.Further = true
	}
	r.e.emit(ev)
}

// cancelExchanges forgets the registration's outstanding exchanges: the
// further server's with it alone; the primary's every exchange except
// those with the further servers (pulls included, as before several
// servers).
func (r *registration) cancelExchanges() {
	if r.extra {
		r.e.tr.cancelPeer(r.peer())
		return
	}
	r.e.tr.cancelExcept(func(peer string) bool {
		for _, x := range r.e.extra {
			if x.peer() == peer {
				return true
			}
		}
		return false
	})
}

// serverValueOf returns a resource of the Server instance of the DM
// server at peer (the primary's when peer is none of them).
func (e *Engine) serverValueOf(peer string, res uint16) lwm2m.Value {
	if r := e.regByPeer(peer); r != nil {
		if in, ok := r.serverInst(); ok {
			v, _ := in.value(res)
			return v
		}
	}
	return e.serverValue(res)
}

// ServerState describes one DM server's registration (Engine.Servers).
type ServerState struct {
	// URI and ShortServerID name the server.
	URI           string
	ShortServerID uint16
	// Registered is set while a registration is up; Location is its
	// location ("/rd/abc") and Lifetime the lifetime the server knows.
	Registered bool
	Location   string
	Lifetime   uint32
}

// Servers returns the state of every DM server the engine registers
// with, the first (Target's) first.
func (e *Engine) Servers() []ServerState {
	var out []ServerState
	if !e.hasDM {
		return nil
	}
	for _, r := range e.registrations() {
		out = append(out, ServerState{URI: r.uri(), ShortServerID: r.ssid(), Registered: r.location != "",
			Location: r.location, Lifetime: r.sentLifetime})
	}
	return out
}

// keepLifetime stores lt, written to the Server instance inst of a
// further server, so that it outlives a restart: in the bootstrap record
// when a bootstrap provisioned the servers, otherwise beside the
// configured lifetime it replaces.
func (e *Engine) keepLifetime(inst uint16, lt uint32) {
	if b := e.st.Boot; b != nil {
		if r, ok := b.Server[inst]; ok {
			r[1] = lwm2m.Int(int64(lt))
			e.store()
		}
		return
	}
	in, ok := e.objs.objs[1].insts[inst]
	if !ok {
		return
	}
	v, _ := in.value(0)
	ssid := uint16(v.Int)
	for _, a := range e.cfg.extraServers() {
		if a.ShortServerID != ssid {
			continue
		}
		if e.st.Lifetimes == nil {
			e.st.Lifetimes = map[uint16]lifetimeRecord{}
		}
		e.st.Lifetimes[ssid] = lifetimeRecord{Lifetime: lt, Conf: uint32(a.Lifetime / time.Second)}
		e.store()
	}
}
