package agent

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/linkformat"
)

// The client side of the LwM2M Bootstrap interface (Core TS 1.1 §5.2,
// §6.1): factory bootstrap from the configuration, client-initiated
// bootstrap (Bootstrap-Request, after the Client Hold Off Time),
// server-initiated bootstrap, the bootstrap operations (Write, Read,
// Delete, Discover) and Bootstrap-Finish with its consistency check.
// The registration state machine (registration.go) decides when to
// bootstrap; this file holds the accounts and the operations.

// Security modes of /0/x/2.
const (
	secModePSK   = 0
	secModeCert  = 2 // the driver holds the configured certificate (Config.CertFile)
	secModeNoSec = 3
)

// bootstrapTimeout is how long a bootstrap session may stay silent (no
// request from the bootstrap server) before the engine gives it up and
// retries: EXCHANGE_LIFETIME, as a bootstrap server finishes its
// operations in one exchange's time.
const bootstrapTimeout = ExchangeLifetime

// Target is the server the engine addresses at the moment: a driver
// opens its transport to it (a UDP socket, or a DTLS session with the
// PSK given), and opens a new one when Target changes, for example when
// a bootstrap session ends and the engine registers with the server it
// was given. The engine holds every protocol decision; the driver only
// follows Target.
type Target struct {
	// URI is the server URI ("coap://host:port" or "coaps://...").
	URI string
	// Peer is the key the engine addresses datagrams to ("host:port").
	// With several servers a coaps server's is DTLSPeerPrefix +
	// "host:port": the native driver then reaches it over a DTLS session
	// beside its UDP socket, as every coaps server among several.
	Peer string
	// Secure is set for coaps: the driver runs a DTLS session with
	// PSKIdentity and PSKKey (never logged), or with the configured
	// certificate (Config.CertFile, KeyFile, CAFile) when Certificate is
	// set.
	Secure      bool
	PSKIdentity string
	PSKKey      []byte
	Certificate bool
	// Bootstrap is set when the target is the bootstrap server.
	Bootstrap bool
}

// Equal reports whether t and u name the same server with the same
// credentials.
func (t Target) Equal(u Target) bool {
	return t.URI == u.URI && t.Peer == u.Peer && t.Secure == u.Secure && t.PSKIdentity == u.PSKIdentity &&
		bytes.Equal(t.PSKKey, u.PSKKey) && t.Certificate == u.Certificate && t.Bootstrap == u.Bootstrap
}

// account is a Security object instance read as a server account.
type account struct {
	inst      uint16
	uri       string
	addr      serverAddr
	bootstrap bool
	mode      int64
	identity  []byte
	key       []byte
	ssid      int64
	holdOff   time.Duration
}

func (a account) target() Target {
	t := Target{URI: a.uri, Peer: a.addr.peer, Bootstrap: a.bootstrap}
	switch {
	case a.addr.scheme == "coaps" && a.mode == secModeCert:
		t.Secure, t.Certificate = true, true
	case a.addr.scheme == "coaps":
		t.Secure, t.PSKIdentity, t.PSKKey = true, string(a.identity), a.key
	}
	return t
}

// value returns the single value of res in in.
func (in *instance) value(res uint16) (lwm2m.Value, bool) {
	v, ok := in.vals[res][0]
	return v, ok
}

// accountOf reads a Security instance; the error says why it cannot be
// used.
func (e *Engine) accountOf(in *instance) (account, error) {
	a := account{inst: in.id}
	if v, ok := in.value(1); ok {
		a.bootstrap = v.Bool
	}
	v, _ := in.value(0)
	a.uri = v.Str
	addr, err := parseURI("/0/x/0", a.uri)
	if err != nil {
		return a, fmt.Errorf("server URI %q: want coap://host[:port] or coaps://host[:port]", a.uri)
	}
	a.addr = addr
	a.mode = secModeNoSec
	if v, ok := in.value(2); ok {
		a.mode = v.Int
	}
	if v, ok := in.value(3); ok {
		a.identity = v.Bytes
	}
	if v, ok := in.value(5); ok {
		a.key = v.Bytes
	}
	if v, ok := in.value(10); ok {
		a.ssid = v.Int
	}
	if v, ok := in.value(11); ok && v.Int > 0 {
		a.holdOff = time.Duration(v.Int) * time.Second
	}
	switch {
	case addr.scheme == "coap" && a.mode != secModeNoSec:
		return a, fmt.Errorf("security mode %d with a coap:// URI; want 3 (NoSec)", a.mode)
	case addr.scheme == "coaps" && a.mode == secModeCert && !e.cfg.hasCertificate(a.uri):
		return a, fmt.Errorf("certificate mode needs the device's certificate (%s, %s, %s)", EnvCertFile, EnvKeyFile, EnvCAFile)
	case addr.scheme == "coaps" && a.mode != secModePSK && a.mode != secModeCert:
		return a, fmt.Errorf("security mode %d is not supported; want 0 (PSK) or 2 (certificate) for coaps", a.mode)
	case addr.scheme == "coaps" && a.mode == secModePSK && (len(a.identity) == 0 || len(a.key) == 0):
		return a, fmt.Errorf("PSK mode without an identity (/0/x/3) and a key (/0/x/5)")
	case addr.scheme == "coaps" && !e.cfg.dtls:
		return a, fmt.Errorf("coaps is supported only by the native agent so far")
	case !a.bootstrap && (a.ssid < 1 || a.ssid > 65534):
		return a, fmt.Errorf("short server ID %d; want 1..65534", a.ssid)
	}
	return a, nil
}

// bsAccount returns the usable Bootstrap-Server account, if any. It is
// cached: only bootstrap operations change /0 (staleAccounts).
func (e *Engine) bsAccount() (account, bool) {
	if e.objs == nil {
		return account{}, false
	}
	if !e.bsCached {
		e.bsAcc, e.bsOK = e.findBSAccount()
		e.bsCached = true
	}
	return e.bsAcc, e.bsOK
}

// staleAccounts drops the cached bootstrap account after a change of /0.
func (e *Engine) staleAccounts() { e.bsCached = false }

func (e *Engine) findBSAccount() (account, bool) {
	sec := e.objs.objs[0]
	for _, id := range sec.instanceIDs() {
		in := sec.insts[id]
		if v, ok := in.value(1); !ok || !v.Bool {
			continue
		}
		a, err := e.accountOf(in)
		return a, err == nil
	}
	return account{}, false
}

// findDM returns the first usable DM server account (in /0 instance
// order) and its Server instance, or why there is none.
func (e *Engine) findDM() (account, uint16, error) {
	all, err := e.findDMs()
	if err != nil {
		return account{}, 0, err
	}
	return all[0].acc, all[0].srvInst, nil
}

// selectDM makes the first usable DM server the one the engine
// registers with, and the others further servers (servers.go).
func (e *Engine) selectDM() {
	all, _ := e.findDMs()
	e.hasDM = len(all) > 0
	e.multi = len(all) > 1
	if !e.hasDM {
		e.server, e.dm = serverAddr{}, account{}
		e.syncExtra(nil)
		return
	}
	e.server, e.dm, e.srvInst = all[0].acc.addr, all[0].acc, all[0].srvInst
	e.syncExtra(all[1:])
}

// Target returns the server the engine addresses now: the bootstrap
// server while it bootstraps (or when it has nothing else), otherwise
// its DM server. The zero Target means none.
func (e *Engine) Target() Target {
	bs, hasBS := e.bsAccount()
	if e.reg != nil && hasBS && (e.reg.bootstrapping() || e.reg.wantBoot) {
		return bs.target()
	}
	if e.hasDM {
		return e.dm.target()
	}
	if hasBS {
		return bs.target()
	}
	return Target{}
}

// fromBootstrap reports whether a datagram from peer is the bootstrap
// server's. A coaps bootstrap server is trusted only while it is the
// Target: the driver then holds the DTLS session with it, and anything
// else from its address came in plaintext.
func (e *Engine) fromBootstrap(peer string) bool {
	bs, ok := e.bsAccount()
	if !ok || bs.addr.peer != peer {
		return false
	}
	return bs.addr.scheme == "coap" || e.Target().Bootstrap
}

// acceptedPeers returns the peers whose datagrams the engine takes: the
// target, the further DM servers, and the bootstrap server when it may
// start a session.
func (e *Engine) acceptedPeers() []string {
	peers := []string{e.Target().Peer}
	for _, r := range e.extra {
		peers = append(peers, r.peer())
	}
	if bs, ok := e.bsAccount(); ok && bs.addr.scheme == "coap" && bs.addr.peer != peers[0] {
		peers = append(peers, bs.addr.peer)
	}
	return peers
}

// accountInstances returns the Security and Server instances the
// engine starts with: those provisioned by the last bootstrap (stored
// state), otherwise the factory ones from the configuration: the DM
// server of ServerURI as /0/0 and /1/0, and the bootstrap server of
// BootstrapURI as the next /0 instance.
func (e *Engine) accountInstances() (sec, srv map[uint16]*instance) {
	if b := e.st.Boot; b != nil {
		return b.instances()
	}
	c := &e.cfg
	sec, srv = map[uint16]*instance{}, map[uint16]*instance{}
	next := uint16(0)
	if c.ServerURI != "" {
		ssid := int64(c.ssid())
		mode, identity, key := int64(secModeNoSec), []byte(nil), []byte(nil)
		switch a, _ := parseServerURI(c.ServerURI); {
		case a.scheme == "coaps" && c.certConfigured():
			mode = secModeCert // the driver holds the certificate itself
		case a.scheme == "coaps":
			mode, identity, key = secModePSK, []byte(c.PSKIdentity), bytes.Clone(c.PSKKey)
		}
		sec[0] = &instance{id: 0, vals: map[uint16]map[uint16]lwm2m.Value{
			0:  single(lwm2m.String(c.ServerURI)),
			1:  single(lwm2m.Bool(false)),
			2:  single(lwm2m.Int(mode)),
			3:  single(lwm2m.Opaque(identity)),
			4:  single(lwm2m.Opaque(nil)),
			5:  single(lwm2m.Opaque(key)),
			10: single(lwm2m.Int(ssid)),
		}}
		srv[0] = defaultServerInstance(0, ssid)
		next = 1
		// Further DM servers (Config.Servers): their lifetime and binding
		// live in their Server instance; a coaps one's credential in its
		// Security instance, like the first server's.
		for _, a := range c.extraServers() {
			mode, identity, key := int64(secModeNoSec), []byte(nil), []byte(nil)
			switch u, _ := parseURI(EnvServerURIs, a.URI); {
			case u.scheme == "coaps" && len(a.PSKKey) > 0:
				mode, identity, key = secModePSK, []byte(a.PSKIdentity), bytes.Clone(a.PSKKey)
			case u.scheme == "coaps":
				mode = secModeCert // the device's certificate, held by the driver
			}
			sec[next] = &instance{id: next, vals: map[uint16]map[uint16]lwm2m.Value{
				0:  single(lwm2m.String(a.URI)),
				1:  single(lwm2m.Bool(false)),
				2:  single(lwm2m.Int(mode)),
				3:  single(lwm2m.Opaque(identity)),
				4:  single(lwm2m.Opaque(nil)),
				5:  single(lwm2m.Opaque(key)),
				10: single(lwm2m.Int(int64(a.ShortServerID))),
			}}
			in := defaultServerInstance(next, int64(a.ShortServerID))
			lt := uint32(a.Lifetime / time.Second)
			if w, ok := e.st.Lifetimes[a.ShortServerID]; ok && w.Conf == lt && w.Lifetime > 0 {
				lt = w.Lifetime // written by a server, kept across restarts
			}
			in.vals[1] = single(lwm2m.Int(int64(lt)))
			in.vals[7] = single(lwm2m.String("U"))
			srv[next] = in
			next++
		}
	}
	if c.BootstrapURI != "" {
		mode, identity, key := int64(secModeNoSec), []byte(nil), []byte(nil)
		if a, _ := parseURI(EnvBootstrapURI, c.BootstrapURI); a.scheme == "coaps" {
			if p := c.bootstrapPSK(); p != nil {
				mode, identity, key = secModePSK, []byte(p.identity), bytes.Clone(p.key)
			}
		}
		sec[next] = &instance{id: next, vals: map[uint16]map[uint16]lwm2m.Value{
			0:  single(lwm2m.String(c.BootstrapURI)),
			1:  single(lwm2m.Bool(true)),
			2:  single(lwm2m.Int(mode)),
			3:  single(lwm2m.Opaque(identity)),
			4:  single(lwm2m.Opaque(nil)),
			5:  single(lwm2m.Opaque(key)),
			11: single(lwm2m.Int(int64(c.BootstrapHoldOff / time.Second))),
		}}
	}
	return sec, srv
}

// defaultServerInstance is a Server instance with the defaults of the
// resources the engine reads.
func defaultServerInstance(id uint16, ssid int64) *instance {
	return &instance{id: id, vals: map[uint16]map[uint16]lwm2m.Value{
		0:  single(lwm2m.Int(ssid)),
		2:  single(lwm2m.Int(0)),
		3:  single(lwm2m.Int(0)),
		5:  single(lwm2m.Int(int64(disableTimeout / time.Second))),
		6:  single(lwm2m.Bool(true)),
		23: single(lwm2m.Bool(false)),
	}}
}

// bootRecord is the stored form of what a bootstrap provisioned: the
// single resources of every Security and Server instance, by instance
// and resource ID. Secret keys are in it: the state is stored like a
// credential (files 0600) and never logged.
type bootRecord struct {
	Security map[uint16]map[uint16]lwm2m.Value `json:"security"`
	Server   map[uint16]map[uint16]lwm2m.Value `json:"server"`
	// Access holds the Access Control instances by instance ID (acl.go).
	Access map[uint16]aclRecord `json:"access,omitempty"`
}

// maxAccounts bounds the Security and Server instances a bootstrap
// server may create.
const maxAccounts = 16

func recordOf(o *object) map[uint16]map[uint16]lwm2m.Value {
	out := make(map[uint16]map[uint16]lwm2m.Value, len(o.insts))
	for id, in := range o.insts {
		r := make(map[uint16]lwm2m.Value, len(in.vals))
		for res, vs := range in.vals {
			if v, ok := vs[0]; ok {
				r[res] = v
			}
		}
		out[id] = r
	}
	return out
}

// snapshotBoot records the Security and Server objects; the active
// server's lifetime and binding live in the persistent state.
func (e *Engine) snapshotBoot() *bootRecord {
	return &bootRecord{Security: recordOf(e.objs.objs[0]), Server: recordOf(e.objs.objs[1]), Access: aclRecordsOf(e.objs.objs[2])}
}

func (b *bootRecord) instances() (sec, srv map[uint16]*instance) {
	build := func(rec map[uint16]map[uint16]lwm2m.Value) map[uint16]*instance {
		out := make(map[uint16]*instance, len(rec))
		for id, r := range rec {
			in := &instance{id: id, vals: make(map[uint16]map[uint16]lwm2m.Value, len(r))}
			for res, v := range r {
				in.vals[res] = single(v)
			}
			out[id] = in
		}
		return out
	}
	return build(b.Security), build(b.Server)
}

// valid reports whether a stored record can be used: known resources of
// the right types, at most one bootstrap account, bounded sizes.
func (b *bootRecord) valid() bool {
	check := func(def *objDef, rec map[uint16]map[uint16]lwm2m.Value) bool {
		if len(rec) > maxAccounts {
			return false
		}
		for _, r := range rec {
			for res, v := range r {
				d, ok := def.resource(res)
				if !ok || d.multi || d.ops&opE != 0 || v.Type != d.typ {
					return false
				}
			}
		}
		return true
	}
	if !check(securityDef, b.Security) || !check(serverDef, b.Server) || !validACLRecords(b.Access) {
		return false
	}
	n := 0
	for _, r := range b.Security {
		if v, ok := r[1]; ok && v.Bool {
			n++
		}
	}
	return n <= 1
}

// ---- the bootstrap operations ----

// serveBootstrap answers a request of the bootstrap server (Core TS 1.1
// §6.1.7): Bootstrap-Write (PUT), -Read (GET), -Discover (GET with
// Accept: link-format), -Delete (DELETE) and -Finish (POST /bs).
func (e *Engine) serveBootstrap(now time.Time, m *message.Message) *message.Message {
	if id, bad := badCriticalOption(m); bad {
		e.logDebug("bad option", "option", int(id))
		return reply(codes.BadOption)
	}
	if !e.reg.started {
		return reply(codes.ServiceUnavailable)
	}
	e.reg.bootstrapActivity(now)
	segs := stringOpts(m, message.URIPath)
	if len(segs) == 1 && segs[0] == "bs" {
		if m.Code != codes.POST {
			return reply(codes.MethodNotAllowed)
		}
		return e.bootstrapFinish(now)
	}
	p, err := lwm2m.ParseSegments(segs)
	if err != nil {
		return reply(codes.BadRequest)
	}
	var resp *message.Message
	switch m.Code {
	case codes.GET:
		if acc, ok := uintOpt(m, message.Accept); ok && acc == uint32(lwm2m.FormatLinkFormat) {
			resp = e.bootstrapDiscover(p)
			break
		}
		if p.Len == 0 || (p.Obj() != 1 && p.Obj() != 2) {
			// Core TS 1.1 §5.2.7.5: Bootstrap-Read targets the Server
			// and Access Control objects only.
			resp = reply(codes.Unauthorized)
			break
		}
		resp = e.read(now, p, m)
	case codes.PUT:
		resp = e.bootstrapWrite(now, p, m)
	case codes.DELETE:
		resp = e.bootstrapDelete(p)
	default:
		resp = reply(codes.MethodNotAllowed)
	}
	e.logDebug("bootstrap served", "code", m.Code.String(), "path", p.String(), "status", codeString(resp.Code))
	return resp
}

// bootstrapWrite handles a Bootstrap-Write. On /0 and /1 it creates the
// instances it names and writes any resource; elsewhere it is a Write
// of existing instances. Nothing changes when a value is refused.
func (e *Engine) bootstrapWrite(now time.Time, p lwm2m.Path, m *message.Message) *message.Message {
	if p.Len == 0 {
		return reply(codes.BadRequest)
	}
	if p.Obj() == 2 {
		return e.bootstrapWriteACL(p, m)
	}
	if p.Obj() > 1 {
		_, ws, errResp := e.writesAt(now, p, m)
		if errResp != nil {
			return errResp
		}
		e.applyWrites(now, ws, false)
		e.emit(Event{Kind: EventWrite, Path: p.String()})
		return reply(codes.Changed)
	}
	o := e.objs.objs[p.Obj()]
	recs, errResp := e.decodeWrite(p, m)
	if errResp != nil {
		return errResp
	}
	// Stage the new instances, check them, then swap them in.
	staged := make(map[uint16]*instance, len(o.insts))
	for id, in := range o.insts {
		c := &instance{id: id, vals: make(map[uint16]map[uint16]lwm2m.Value, len(in.vals))}
		for res, vs := range in.vals {
			c.vals[res] = vs
		}
		staged[id] = c
	}
	for _, r := range recs {
		if !p.Contains(r.Path) || r.Path.Len != 3 {
			return reply(codes.BadRequest)
		}
		d, ok := o.def.resource(r.Path.Res())
		if !ok || d.ops&opE != 0 || d.multi {
			// A resource avc does not implement (SMS, OSCORE links...):
			// accepted and ignored.
			continue
		}
		v, err := r.Value.Convert(d.typ)
		if err != nil || !validBootstrapValue(p.Obj(), d.id, v) {
			return reply(codes.BadRequest)
		}
		in, ok := staged[r.Path.Inst()]
		if !ok {
			if len(staged) >= maxAccounts {
				return reply(codes.BadRequest)
			}
			in = &instance{id: r.Path.Inst(), vals: map[uint16]map[uint16]lwm2m.Value{}}
			if p.Obj() == 1 {
				in = defaultServerInstance(in.id, 0)
				delete(in.vals, 0)
			}
			staged[in.id] = in
		}
		in.vals[d.id] = single(v)
	}
	if p.Obj() == 0 {
		n := 0
		for _, in := range staged {
			if v, ok := in.value(1); ok && v.Bool {
				n++
			}
		}
		if n > 1 {
			return reply(codes.BadRequest) // at most one bootstrap account
		}
		if bs, ok := e.bsAccount(); ok {
			if v, _ := staged[bs.inst].value(1); !v.Bool {
				// The bootstrap account cannot be turned into another
				// one: that would delete it.
				return reply(codes.BadRequest)
			}
		}
	}
	o.insts = staged
	e.staleAccounts()
	e.logInfo("bootstrap write", "path", p.String())
	return reply(codes.Changed)
}

// validBootstrapValue checks the values of /0 and /1 resources the
// engine relies on.
func validBootstrapValue(obj, res uint16, v lwm2m.Value) bool {
	switch {
	case obj == 0 && res == 2:
		return v.Int >= 0 && v.Int <= 4
	case (obj == 0 && res == 10) || (obj == 1 && res == 0):
		return v.Int >= 1 && v.Int <= 65534
	case obj == 0 && (res == 11 || res == 12):
		return v.Int >= 0 && v.Int <= 1<<32-1
	case obj == 1 && res == 1:
		return v.Int > 0 && v.Int <= 1<<32-1
	case obj == 1 && (res == 2 || res == 3 || res == 5):
		return v.Int >= 0
	}
	return true
}

// bootstrapDelete handles a Bootstrap-Delete of "/", "/0", "/1" or one
// of their instances. The Bootstrap-Server account is never deleted; the
// other objects keep their instances (they mirror the device).
func (e *Engine) bootstrapDelete(p lwm2m.Path) *message.Message {
	bsInst := -1
	if bs, ok := e.bsAccount(); ok {
		bsInst = int(bs.inst)
	}
	sec, srv, aco := e.objs.objs[0], e.objs.objs[1], e.objs.objs[2]
	clearSec := func() {
		for id := range sec.insts {
			if int(id) != bsInst {
				delete(sec.insts, id)
			}
		}
	}
	switch {
	case p.Len == 0:
		clearSec()
		clear(srv.insts)
		clear(aco.insts)
	case p.Len == 1 && p.Obj() == 2:
		clear(aco.insts)
	case p.Len == 2 && p.Obj() == 2:
		delete(aco.insts, p.Inst())
	case p.Len == 1 && p.Obj() == 0:
		clearSec()
	case p.Len == 1 && p.Obj() == 1:
		clear(srv.insts)
	case p.Len == 2 && p.Obj() == 0:
		if int(p.Inst()) == bsInst {
			return reply(codes.BadRequest)
		}
		delete(sec.insts, p.Inst())
	case p.Len == 2 && p.Obj() == 1:
		delete(srv.insts, p.Inst())
	default:
		return reply(codes.BadRequest)
	}
	e.staleAccounts()
	e.logInfo("bootstrap delete", "path", p.String())
	return reply(codes.Deleted)
}

// bootstrapDiscover answers a Bootstrap-Discover of "/" or of an object
// (Core TS 1.1 §5.2.7.3): the object instances, the LwM2M version, the
// Short Server ID and URI of each DM server account.
func (e *Engine) bootstrapDiscover(p lwm2m.Path) *message.Message {
	if p.Len > 1 {
		return reply(codes.BadRequest)
	}
	var links []linkformat.Link
	if p.Len == 0 {
		links = append(links, linkformat.Link{Target: "/", Params: []linkformat.Param{{Name: "lwm2m", Value: "1.1"}}})
	} else if _, ok := e.objs.objs[p.Obj()]; !ok {
		return reply(codes.NotFound)
	}
	for _, o := range e.objs.list() {
		if p.Len == 1 && o.def.id != p.Obj() {
			continue
		}
		ids := o.instanceIDs()
		if o.def.version != "" && o.def.version != "1.0" || len(ids) == 0 {
			l := linkformat.Link{Target: fmt.Sprintf("/%d", o.def.id)}
			if o.def.version != "" && o.def.version != "1.0" {
				l.Params = []linkformat.Param{{Name: "ver", Value: o.def.version}}
			}
			links = append(links, l)
		}
		for _, id := range ids {
			in := o.insts[id]
			l := linkformat.Link{Target: fmt.Sprintf("/%d/%d", o.def.id, id)}
			switch o.def.id {
			case 0:
				if v, ok := in.value(1); !ok || !v.Bool {
					if v, ok := in.value(10); ok {
						l.Params = append(l.Params, linkformat.Param{Name: "ssid", Value: fmt.Sprint(v.Int)})
					}
					if v, ok := in.value(0); ok {
						l.Params = append(l.Params, linkformat.Param{Name: "uri", Value: v.Str, Quoted: true})
					}
				}
			case 1:
				if v, ok := in.value(0); ok {
					l.Params = append(l.Params, linkformat.Param{Name: "ssid", Value: fmt.Sprint(v.Int)})
				}
			}
			links = append(links, l)
		}
	}
	return replyContent(lwm2m.FormatLinkFormat, linkformat.Format(links))
}

// bootstrapFinish checks the provisioned configuration (Core TS 1.1
// §5.2.7.7): at least one usable DM server account, a /0 instance with a
// /1 instance of the same Short Server ID. Otherwise 4.06 Not
// Acceptable with the reason, and the session goes on. On success the
// engine registers once the 2.04 is on its way (afterServe).
func (e *Engine) bootstrapFinish(now time.Time) *message.Message {
	if _, _, err := e.findDM(); err != nil {
		e.logWarn("bootstrap finish refused", "err", err)
		m := reply(codes.NotAcceptable)
		m.Options = addUint(m.Options, message.ContentFormat, uint32(lwm2m.FormatText))
		m.Payload = []byte(err.Error())
		return m
	}
	e.reg.bsFinished = true
	return reply(codes.Changed)
}

// commitBootstrap makes what the bootstrap server provisioned current
// and durable: the DM server is selected, its lifetime and binding move
// into the persistent state, and the Security and Server objects are
// stored, so that a restart registers without bootstrapping again.
func (e *Engine) commitBootstrap() {
	e.selectDM()
	if !e.hasDM {
		return
	}
	in := e.objs.objs[1].insts[e.srvInst]
	if v, ok := in.value(1); ok && v.Int > 0 && v.Int <= 1<<32-1 {
		e.st.Lifetime = uint32(v.Int)
	}
	if v, ok := in.value(7); ok {
		switch b := strings.TrimSpace(v.Str); {
		case b == "U" || b == "UQ":
			e.st.Binding = b
		case strings.HasPrefix(b, "UQ"):
			e.st.Binding = "UQ"
		default:
			e.st.Binding = "U"
		}
	}
	delete(in.vals, 1)
	delete(in.vals, 7)
	e.aclDefaults()
	e.st.Boot = e.snapshotBoot()
	e.st.RegFailures = 0
	e.store()
}

// bootstrapRequestMessage is the Bootstrap-Request (POST /bs?ep=...).
func (e *Engine) bootstrapRequestMessage() *message.Message {
	m := &message.Message{Code: codes.POST, Options: make(message.Options, 0, 4)}
	m.Options = addPath(m.Options, "bs")
	m.Options = addString(m.Options, message.URIQuery, "ep="+url.QueryEscape(e.cfg.Endpoint))
	return m
}

// ---- when to bootstrap (the registration state machine) ----

// bootstrapping reports whether a bootstrap session is due or running.
func (r *registration) bootstrapping() bool {
	switch r.state {
	case regBSHoldOff, regBSRequest, regBootstrapping:
		return true
	}
	return false
}

// needBootstrap reports whether the next Register must be a bootstrap:
// there is a bootstrap server, and no usable DM server or a fallback or
// trigger asked for it.
func (r *registration) needBootstrap() bool {
	if _, ok := r.e.bsAccount(); !ok {
		return false
	}
	return r.wantBoot || !r.e.hasDM
}

// fallBack counts a failed Register towards the fallback to bootstrap
// and reports whether it is time (Core TS 1.1 §6.2.1.1: a client whose
// servers all refuse it falls back to its bootstrap server). The count
// is persistent, so that restarts and new DTLS sessions do not reset it.
func (r *registration) fallBack() bool {
	if _, ok := r.e.bsAccount(); !ok {
		return false
	}
	n := r.e.cfg.bootstrapAfter()
	if n == 0 {
		return false
	}
	r.e.st.RegFailures++
	r.e.store()
	return r.e.st.RegFailures >= n
}

// bootstrap starts a client-initiated bootstrap: the Bootstrap-Request
// goes out after the bootstrap account's Client Hold Off Time (/0/x/11),
// during which the bootstrap server may start the session itself.
func (r *registration) bootstrap(now time.Time) {
	bs, _ := r.e.bsAccount()
	r.e.obs.clearPeer(r.peer())
	r.location = ""
	r.state = regBSHoldOff
	r.retryAt = now.Add(bs.holdOff)
	if bs.holdOff > 0 {
		r.e.logInfo("bootstrap: holding off", "server_uri", bs.uri, "hold_off", bs.holdOff)
		return
	}
	r.bootstrapRequest(now)
}

// bootstrapRequest sends the Bootstrap-Request (POST /bs?ep=...).
func (r *registration) bootstrapRequest(now time.Time) {
	bs, ok := r.e.bsAccount()
	if !ok {
		r.bootstrapFailed(now, nil, "no bootstrap server account")
		return
	}
	r.state = regBSRequest
	r.bsDeadline = time.Time{}
	r.sessionStarted(bs)
	r.e.logInfo("bootstrap request", "server_uri", bs.uri, "endpoint", r.e.cfg.Endpoint)
	r.e.tr.request(now, bs.addr.peer, r.e.bootstrapRequestMessage(), func(now time.Time, resp *message.Message) {
		if r.state != regBSRequest {
			return // the session went on without this answer, or ended
		}
		if resp == nil || resp.Code != codes.Changed {
			r.bootstrapFailed(now, resp, "Bootstrap-Request refused")
			return
		}
		r.state = regBootstrapping
		r.bsDeadline = now.Add(bootstrapTimeout)
	})
}

// sessionStarted reports a bootstrap session (le_avc:
// LE_AVC_SESSION_BS_STARTED).
func (r *registration) sessionStarted(bs account) {
	r.e.emit(Event{Kind: EventBootstrapStarted, Server: bs.uri})
	r.e.ctl.bootstrapStarted()
}

// bootstrapActivity notes a request of the bootstrap server. One
// arriving outside a session starts a server-initiated bootstrap: the
// registration, if any, is dropped until Bootstrap-Finish.
func (r *registration) bootstrapActivity(now time.Time) {
	switch r.state {
	case regBSRequest, regBootstrapping:
	default:
		bs, _ := r.e.bsAccount()
		r.e.logInfo("server-initiated bootstrap", "server_uri", bs.uri)
		r.e.obs.clearPeer(r.peer())
		r.location = ""
		r.sessionStarted(bs)
	}
	r.state = regBootstrapping
	r.bsDeadline = now.Add(bootstrapTimeout)
}

// bootstrapFailed ends a bootstrap session that failed and schedules the
// next attempt: the DM server again when there is a usable one (the
// fallback alternates), the bootstrap server otherwise.
func (r *registration) bootstrapFailed(now time.Time, resp *message.Message, why string) {
	bs, _ := r.e.bsAccount()
	ev := Event{Kind: EventBootstrapFailed, Server: bs.uri, Err: why}
	if resp != nil {
		ev.Code = codeString(resp.Code)
		ev.Err = why + ": server answered " + ev.Code
	} else if why == "Bootstrap-Request refused" {
		ev.Err = "Bootstrap-Request: no response"
	}
	r.e.emit(ev)
	r.e.ctl.bootstrapEnded(true)
	r.e.selectDM()
	if r.e.hasDM && r.wantBoot {
		r.wantBoot = false
		r.e.st.RegFailures = 0
		r.e.store()
	}
	r.bsFailures++
	r.state = regWaiting
	r.location = ""
	delay := retryBase << min(r.bsFailures-1, 20)
	if delay > retryMax || delay <= 0 {
		delay = retryMax
	}
	if r.e.ctl != nil {
		d, ok := r.e.ctl.registerFailed(now)
		if !ok {
			r.e.logWarn("bootstrap failed; retry timers exhausted", "server_uri", bs.uri, "err", ev.Err)
			r.started = false
			r.reset()
			return
		}
		delay = d
	}
	r.retryAt = now.Add(delay)
	r.e.logWarn("bootstrap failed", "server_uri", bs.uri, "err", ev.Err, "retry_in", delay)
}

// bootstrapDone runs once the 2.04 to Bootstrap-Finish is queued: the
// provisioned configuration is committed and the engine registers with
// the DM server it was given.
func (r *registration) bootstrapDone(now time.Time) {
	r.bsFinished = false
	bs, _ := r.e.bsAccount()
	r.e.commitBootstrap()
	r.wantBoot = false
	r.failures, r.bsFailures = 0, 0
	r.bsDeadline = time.Time{}
	r.state = regIdle
	r.e.logInfo("bootstrap finished", "server_uri", bs.uri, "dm_server_uri", r.e.dm.uri)
	r.e.emit(Event{Kind: EventBootstrapFinished, Server: bs.uri})
	r.e.ctl.bootstrapEnded(false)
	r.register(now)
}

// connectFailed is the driver's report that it could not open the
// transport to the DM server (a DTLS handshake failed): it counts as a
// refused Register towards the fallback to bootstrap, which changes
// Target when it is time. Bootstrap server failures are not counted.
func (e *Engine) connectFailed(now time.Time, err error) {
	e.now = now
	t := e.Target()
	e.emit(Event{Kind: EventRegistrationFailed, Server: t.URI, Err: err.Error()})
	if t.Bootstrap || !e.hasDM {
		return
	}
	if e.reg.fallBack() {
		e.logWarn("cannot reach the DM server; falling back to bootstrap", "server_uri", t.URI, "failures", e.st.RegFailures)
		e.reg.wantBoot = true
	}
}
