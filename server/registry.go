package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/linkformat"
)

// DefaultLifetime is the registration lifetime when a client sends no lt
// parameter (Transport TS 1.1 §6.2.1, "lt": default 86400).
const DefaultLifetime = 86400 * time.Second

// ClientInfo describes a registered client. It is a snapshot: later
// updates do not change it, and changing it does not affect the server.
type ClientInfo struct {
	Endpoint string        // the ep= parameter, the client's unique name
	ID       string        // registration ID: the location is /rd/<ID>
	Lifetime time.Duration // the lt= parameter
	Binding  string        // the b= parameter, "U" when absent
	Version  string        // the lwm2m= parameter, "1.0" when absent
	SMS      string        // the sms= parameter (MSISDN), often empty
	Queue    bool          // queue mode: a Q parameter or a Q in Binding
	// RootPath is the alternate path the client announced with
	// rt="oma.lwm2m" ("" when objects live at the root, as usual).
	RootPath   string
	Links      []linkformat.Link // the registration payload
	Addr       net.Addr          // where the last Register or Update came from
	Registered time.Time         // when the client registered
	Updated    time.Time         // last Register or Update
	Expires    time.Time         // when the server removes the registration
}

// registration is one client in the registry. Guarded by Server.mu.
type registration struct {
	info  ClientInfo
	conn  *udpclient.Conn // the go-coap connection the client talks on
	timer *time.Timer     // expiry
	gen   uint64          // bumped on every re-arm, so stale timers are no-ops
}

// snapshot returns a copy of the client's information that shares nothing
// with the registry.
func (r *registration) snapshot() ClientInfo {
	ci := r.info
	ci.Links = cloneLinks(r.info.Links)
	return ci
}

func (r *registration) event(kind EventKind, now time.Time) Event {
	return Event{
		Kind:     kind,
		Endpoint: r.info.Endpoint,
		ID:       r.info.ID,
		Lifetime: r.info.Lifetime,
		Binding:  r.info.Binding,
		Version:  r.info.Version,
		Links:    cloneLinks(r.info.Links),
		Addr:     r.info.Addr,
		Time:     now,
	}
}

func cloneLinks(links []linkformat.Link) []linkformat.Link {
	if links == nil {
		return nil
	}
	out := make([]linkformat.Link, len(links))
	for i, l := range links {
		out[i] = linkformat.Link{Target: l.Target, Params: append([]linkformat.Param(nil), l.Params...)}
	}
	return out
}

// objectLinks returns the links that name objects and instances, leaving
// out the root link that carries rt="oma.lwm2m".
func objectLinks(links []linkformat.Link) []linkformat.Link {
	var out []linkformat.Link
	for _, l := range links {
		if !isRootLink(l) {
			out = append(out, l)
		}
	}
	return out
}

func isRootLink(l linkformat.Link) bool {
	for _, p := range l.Params {
		if p.Name == "rt" && p.Value == "oma.lwm2m" {
			return true
		}
	}
	return false
}

// rootPath returns the alternate path announced in links, "" for the root.
func rootPath(links []linkformat.Link) string {
	for _, l := range links {
		if isRootLink(l) {
			return strings.TrimSuffix(l.Target, "/")
		}
	}
	return ""
}

// coapHandler returns the handler of every CoAP message a client sends
// that go-coap has not matched to a request of the server: the requests of
// the registration interface, and responses. Responses reaching it are
// notifications (which processMessage has delivered) or late answers; they
// get nothing but the empty ACK go-coap sends for a confirmable message.
func (s *Server) coapHandler() mux.Handler {
	r := s.router()
	return mux.HandlerFunc(func(w mux.ResponseWriter, m *mux.Message) {
		if isResponse(m.Code()) {
			return
		}
		r.ServeCOAP(w, m)
	})
}

// router returns the CoAP routes of the registration interface.
func (s *Server) router() *mux.Router {
	r := mux.NewRouter()
	r.SetErrorHandler(s.coapError)
	r.Handle("/rd", mux.HandlerFunc(s.handleRegister))
	r.Handle("/rd/{id}", mux.HandlerFunc(s.handleRegistration))
	r.Handle("/dp", mux.HandlerFunc(s.handleSend))
	r.Handle("/bs", mux.HandlerFunc(s.handleBootstrapRequest))
	return r
}

// regParams are the query parameters of Register and Update.
type regParams struct {
	ep, binding, version, sms string
	lifetime                  time.Duration
	hasLT, hasB, hasSMS       bool
	queue                     bool
}

// parseRegParams parses the Uri-Query options of a Register or Update
// (Transport TS 1.1 §6.2.1, §6.2.2). Unknown parameters are ignored.
func parseRegParams(r *mux.Message) (regParams, error) {
	var p regParams
	qs, err := r.Queries()
	if err != nil {
		// No Uri-Query option at all is fine; anything else is not.
		if !errors.Is(err, message.ErrOptionNotFound) {
			return p, fmt.Errorf("bad query: %w", err)
		}
	}
	for _, q := range qs {
		name, value, _ := strings.Cut(q, "=")
		switch name {
		case "ep":
			p.ep = value
		case "lt":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil || n == 0 {
				return p, fmt.Errorf("bad lifetime %q", value)
			}
			p.lifetime, p.hasLT = time.Duration(n)*time.Second, true
		case "lwm2m":
			p.version = value
		case "b":
			if value == "" || strings.Trim(value, "UQSTN") != "" {
				return p, fmt.Errorf("bad binding %q", value)
			}
			p.binding, p.hasB = value, true
		case "sms":
			p.sms, p.hasSMS = value, true
		case "Q":
			p.queue = true
		}
	}
	return p, nil
}

// readLinks reads a Register or Update payload, which is in CoRE Link
// Format; absent means nil.
func readLinks(r *mux.Message) ([]linkformat.Link, error) {
	body, err := r.ReadBody()
	if err != nil {
		return nil, fmt.Errorf("read payload: %w", err)
	}
	if len(body) == 0 {
		return nil, nil
	}
	if cf, err := r.ContentFormat(); err == nil && cf != message.AppLinkFormat {
		return nil, fmt.Errorf("payload content format %d is not link-format", cf)
	}
	links, err := linkformat.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("bad payload: %w", err)
	}
	return links, nil
}

// handleRegister serves POST /rd, the Register operation (Core TS 1.1
// §6.2.1, Transport TS 1.1 §6.2.1).
func (s *Server) handleRegister(w mux.ResponseWriter, r *mux.Message) {
	if r.Code() != codes.POST {
		s.respond(w, codes.MethodNotAllowed, "")
		return
	}
	p, err := parseRegParams(r)
	if err != nil {
		s.respond(w, codes.BadRequest, err.Error())
		return
	}
	// "ep": Mandatory (Transport TS 1.1 §6.2.1, Register parameters).
	if p.ep == "" {
		s.respond(w, codes.BadRequest, "missing ep")
		return
	}
	if p.version == "" {
		p.version = "1.0" // lwm2m= absent means an LwM2M 1.0 client
	}
	// A version the server does not support is refused with 4.12
	// Precondition Failed (Transport TS 1.1 §6.2.1).
	if p.version != "1.0" && p.version != "1.1" {
		s.respond(w, codes.PreconditionFailed, "unsupported lwm2m version "+p.version)
		return
	}
	if !p.hasLT {
		p.lifetime = DefaultLifetime
	}
	if !p.hasB {
		p.binding = "U"
	}
	links, err := readLinks(r)
	if err != nil {
		s.respond(w, codes.BadRequest, err.Error())
		return
	}
	conn, _ := w.Conn().(*udpclient.Conn)
	addr := w.Conn().RemoteAddr()

	now := time.Now()
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		s.respond(w, codes.ServiceUnavailable, "")
		return
	}
	if old, ok := s.byEP[p.ep]; ok {
		// A new Register of a known endpoint replaces its registration.
		old.timer.Stop()
		delete(s.byID, old.info.ID)
		delete(s.byEP, p.ep)
		s.endObservations(old, ErrRegistrationEnded)
		s.log.Info("registration replaced", "ep", p.ep, "old_id", old.info.ID)
	}
	reg := &registration{
		info: ClientInfo{
			Endpoint:   p.ep,
			ID:         s.newID(),
			Lifetime:   p.lifetime,
			Binding:    p.binding,
			Version:    p.version,
			SMS:        p.sms,
			Queue:      p.queue || strings.Contains(p.binding, "Q"),
			RootPath:   rootPath(links),
			Links:      links,
			Addr:       addr,
			Registered: now,
		},
		conn: conn,
	}
	s.byEP[p.ep] = reg
	s.byID[reg.info.ID] = reg
	s.arm(reg, now)
	s.events.publish(reg.event(EventRegistered, now))
	s.logRegistration("registered", reg)
	id := reg.info.ID
	s.mu.Unlock()

	s.respond(w, codes.Created, "",
		message.Option{ID: message.LocationPath, Value: []byte("rd")},
		message.Option{ID: message.LocationPath, Value: []byte(id)})
}

// handleRegistration serves POST /rd/<id> (Update, Core TS 1.1 §6.2.2) and
// DELETE /rd/<id> (De-register, §6.2.3).
func (s *Server) handleRegistration(w mux.ResponseWriter, r *mux.Message) {
	id := r.RouteParams.Vars["id"]
	switch r.Code() {
	case codes.POST:
		s.handleUpdate(w, r, id)
	case codes.DELETE:
		s.handleDeregister(w, id)
	default:
		s.respond(w, codes.MethodNotAllowed, "")
	}
}

func (s *Server) handleUpdate(w mux.ResponseWriter, r *mux.Message, id string) {
	p, err := parseRegParams(r)
	if err != nil {
		s.respond(w, codes.BadRequest, err.Error())
		return
	}
	links, err := readLinks(r)
	if err != nil {
		s.respond(w, codes.BadRequest, err.Error())
		return
	}
	conn, _ := w.Conn().(*udpclient.Conn)
	addr := w.Conn().RemoteAddr()

	now := time.Now()
	s.mu.Lock()
	reg, ok := s.byID[id]
	if !ok {
		s.mu.Unlock()
		s.respond(w, codes.NotFound, "unknown registration")
		return
	}
	if p.hasLT {
		reg.info.Lifetime = p.lifetime
	}
	if p.hasB {
		reg.info.Binding = p.binding
		reg.info.Queue = p.queue || strings.Contains(p.binding, "Q")
	} else if p.queue {
		reg.info.Queue = true
	}
	if p.hasSMS {
		reg.info.SMS = p.sms
	}
	if links != nil {
		reg.info.Links = links
		reg.info.RootPath = rootPath(links)
	}
	// The client may come back from another address (NAT rebinding).
	reg.info.Addr = addr
	if conn != nil {
		reg.conn = conn
	}
	s.arm(reg, now)
	s.events.publish(reg.event(EventUpdated, now))
	s.logRegistration("updated", reg)
	s.mu.Unlock()

	s.respond(w, codes.Changed, "")
}

func (s *Server) handleDeregister(w mux.ResponseWriter, id string) {
	now := time.Now()
	s.mu.Lock()
	reg, ok := s.byID[id]
	if !ok {
		s.mu.Unlock()
		s.respond(w, codes.NotFound, "unknown registration")
		return
	}
	s.remove(reg)
	s.events.publish(reg.event(EventDeregistered, now))
	s.log.Info("deregistered", "ep", reg.info.Endpoint, "id", id, "addr", addrString(reg.info.Addr))
	s.mu.Unlock()

	s.respond(w, codes.Deleted, "")
}

// arm (re)starts reg's expiry timer from now. Called with s.mu held.
func (s *Server) arm(reg *registration, now time.Time) {
	if reg.timer != nil {
		reg.timer.Stop()
	}
	reg.info.Updated = now
	d := reg.info.Lifetime + s.cfg.ExpiryGrace
	reg.info.Expires = now.Add(d)
	reg.gen++
	gen := reg.gen
	reg.timer = time.AfterFunc(d, func() { s.expire(reg, gen) })
}

// expire removes reg unless it was updated, replaced or removed since the
// timer of generation gen was armed.
func (s *Server) expire(reg *registration, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[reg.info.ID] != reg || reg.gen != gen {
		return
	}
	s.remove(reg)
	s.events.publish(reg.event(EventExpired, time.Now()))
	s.log.Info("expired", "ep", reg.info.Endpoint, "id", reg.info.ID, "lifetime", int64(reg.info.Lifetime/time.Second))
}

// remove drops reg, and the observations made on it, from the registry.
// Called with s.mu held.
func (s *Server) remove(reg *registration) {
	reg.timer.Stop()
	delete(s.byID, reg.info.ID)
	if s.byEP[reg.info.Endpoint] == reg {
		delete(s.byEP, reg.info.Endpoint)
	}
	s.endObservations(reg, ErrRegistrationEnded)
}

// newID returns a short random registration ID not in use. Called with
// s.mu held.
func (s *Server) newID() string {
	return randomID(func(id string) bool { _, ok := s.byID[id]; return ok })
}

// randomID returns 8 random hex digits for which taken is false.
func randomID(taken func(string) bool) string {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		if id := hex.EncodeToString(b[:]); !taken(id) {
			return id
		}
	}
}

func (s *Server) logRegistration(msg string, reg *registration) {
	s.log.Info(msg,
		"ep", reg.info.Endpoint,
		"id", reg.info.ID,
		"lifetime", int64(reg.info.Lifetime/time.Second),
		"binding", reg.info.Binding,
		"lwm2m", reg.info.Version,
		"objects", string(linkformat.Format(objectLinks(reg.info.Links))),
		"addr", addrString(reg.info.Addr))
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// respond sets the response to a CoAP request, with diag as a diagnostic
// payload when not empty.
func (s *Server) respond(w mux.ResponseWriter, code codes.Code, diag string, opts ...message.Option) {
	var body io.ReadSeeker
	if diag != "" {
		body = bytes.NewReader([]byte(diag))
	}
	if err := w.SetResponse(code, message.TextPlain, body, opts...); err != nil {
		s.log.Debug("cannot set coap response", "code", codeString(code), "err", err)
	}
}

// Clients returns the registered clients, ordered by endpoint name.
func (s *Server) Clients() []ClientInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ClientInfo, 0, len(s.byEP))
	for _, reg := range s.byEP {
		out = append(out, reg.snapshot())
	}
	slices.SortFunc(out, func(a, b ClientInfo) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return out
}

// Client returns the registration of endpoint ep, if it is registered.
func (s *Server) Client(ep string) (ClientInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg, ok := s.byEP[ep]
	if !ok {
		return ClientInfo{}, false
	}
	return reg.snapshot(), true
}

// target returns what an operation on ep needs: the registration, the
// connection to send on and the client's alternate root path.
func (s *Server) target(ep string) (*registration, *udpclient.Conn, string, error) {
	s.mu.Lock()
	reg, ok := s.byEP[ep]
	if !ok {
		s.mu.Unlock()
		return nil, nil, "", fmt.Errorf("%w: %q", ErrNotRegistered, ep)
	}
	conn, addr, root := reg.conn, reg.info.Addr, reg.info.RootPath
	coap := s.coap
	s.mu.Unlock()

	if conn != nil && conn.Context().Err() == nil {
		return reg, conn, root, nil
	}
	if conn != nil && isDTLS(conn) {
		// Never replace a DTLS session by plaintext; the client must
		// handshake again.
		return nil, nil, "", fmt.Errorf("server: DTLS session with %q closed", ep)
	}
	// go-coap closes idle connections; get a new one for the same peer.
	ua, ok := addr.(*net.UDPAddr)
	if !ok || coap == nil {
		return nil, nil, "", fmt.Errorf("server: no connection to %q", ep)
	}
	conn, err := coap.NewConn(ua)
	if err != nil {
		return nil, nil, "", fmt.Errorf("server: connect to %q: %w", ep, err)
	}
	s.mu.Lock()
	if s.byEP[ep] == reg {
		reg.conn = conn
	}
	s.mu.Unlock()
	return reg, conn, root, nil
}

// pathString returns the Uri-Path of p for a client whose objects live
// under root.
func pathString(root string, p lwm2m.Path) string {
	if p.Len == 0 {
		if root == "" {
			return "/"
		}
		return root
	}
	return root + p.String()
}
