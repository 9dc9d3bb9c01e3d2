package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/linkformat"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// The bootstrap-server mode (Core TS 1.1 §5.2, §6.1): on a
// Bootstrap-Request (POST /bs?ep=...) from an endpoint the server has a
// BootstrapConfig for, it answers 2.04, then deletes the client's server
// accounts (Bootstrap-Delete "/"), writes a Security instance /0/1 and a
// Server instance /1/0 for the DM server of the configuration (and one
// more of each for every further server in Servers), and sends
// Bootstrap-Finish. It works on coap and, when Config.CoAPSAddr is set,
// coaps.

// AnyEndpoint is the endpoint name of the BootstrapConfig used for
// endpoints that have none of their own.
const AnyEndpoint = "*"

// Security modes of a BootstrapConfig.
const (
	SecurityNoSec = "nosec" // /0/x/2 = 3, for coap:// servers
	SecurityPSK   = "psk"   // /0/x/2 = 0, for coaps:// servers
)

// BootstrapConfig is what the bootstrap server provisions on a client:
// one DM server account, and optionally further ones (Servers).
type BootstrapConfig struct {
	// ServerURI is the DM server, "coap://host[:port]" or
	// "coaps://host[:port]".
	ServerURI string `json:"server_uri"`
	// ShortServerID links the Security and Server instances; zero means 1.
	ShortServerID uint16 `json:"short_server_id,omitempty"`
	// SecurityMode is SecurityNoSec or SecurityPSK; empty means PSK for
	// coaps and NoSec for coap.
	SecurityMode string `json:"security_mode,omitempty"`
	// PSKIdentity and PSKKey are the DTLS-PSK credential written to
	// /0/1/3 and /0/1/5 in PSK mode. The HTTP API and the configuration
	// file give the key in hex ("psk_key") and never show it.
	PSKIdentity string `json:"psk_identity,omitempty"`
	PSKKey      []byte `json:"-"`
	// Lifetime is the registration lifetime written to /1/0/1; zero means
	// DefaultLifetime.
	Lifetime time.Duration `json:"-"`
	// Binding is written to /1/0/7; empty means "U".
	Binding string `json:"binding,omitempty"`
	// Servers are further DM server accounts, written to the next /0 and
	// /1 instances (the client registers with each; the native avc
	// agent reaches each coaps one over a DTLS session of its own, with
	// its PSK). Their own Servers must be empty; their Short Server IDs
	// must differ.
	Servers []BootstrapConfig `json:"servers,omitempty"`
}

// MarshalJSON writes the configuration with the lifetime in seconds and
// "psk_key": "(set)" in place of the key.
func (c BootstrapConfig) MarshalJSON() ([]byte, error) {
	type plain BootstrapConfig
	out := struct {
		plain
		Lifetime int64  `json:"lifetime,omitempty"`
		PSKKey   string `json:"psk_key,omitempty"`
	}{plain: plain(c), Lifetime: int64(c.Lifetime / time.Second)}
	if len(c.PSKKey) > 0 {
		out.PSKKey = "(set)"
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads the form MarshalJSON writes, with "psk_key" in hex.
func (c *BootstrapConfig) UnmarshalJSON(b []byte) error {
	type plain BootstrapConfig
	var in struct {
		plain
		Lifetime int64  `json:"lifetime,omitempty"`
		PSKKey   string `json:"psk_key,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*c = BootstrapConfig(in.plain)
	if in.Lifetime < 0 || in.Lifetime > 1<<32-1 {
		return fmt.Errorf("lifetime %d: want 0..4294967295 seconds", in.Lifetime)
	}
	c.Lifetime = time.Duration(in.Lifetime) * time.Second
	if in.PSKKey != "" {
		k, err := hex.DecodeString(in.PSKKey)
		if err != nil {
			return fmt.Errorf("psk_key: want hex")
		}
		c.PSKKey = k
	}
	return nil
}

// ParseBootstrapConfigs reads a bootstrap configuration file: a JSON
// object of BootstrapConfigs by endpoint name (AnyEndpoint for the
// others), each validated.
func ParseBootstrapConfigs(b []byte) (map[string]BootstrapConfig, error) {
	var m map[string]BootstrapConfig
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("server: bootstrap configuration: %w", err)
	}
	var errs []error
	for ep, c := range m {
		if err := c.validate(); err != nil {
			errs = append(errs, fmt.Errorf("server: bootstrap configuration of %q: %w", ep, err))
		}
	}
	return m, errors.Join(errs...)
}

// mode returns the security mode, defaults applied.
func (c *BootstrapConfig) mode() string {
	if c.SecurityMode != "" {
		return c.SecurityMode
	}
	if strings.HasPrefix(c.ServerURI, "coaps:") {
		return SecurityPSK
	}
	return SecurityNoSec
}

func (c *BootstrapConfig) validate() error {
	u, err := url.Parse(c.ServerURI)
	if err != nil || (u.Scheme != "coap" && u.Scheme != "coaps") || u.Hostname() == "" {
		return badInput("server_uri %q: want coap://host[:port] or coaps://host[:port]", c.ServerURI)
	}
	switch m := c.mode(); {
	case m == SecurityNoSec && u.Scheme == "coaps", m == SecurityPSK && u.Scheme == "coap":
		return badInput("security_mode %q does not fit %s", m, c.ServerURI)
	case m == SecurityPSK && (c.PSKIdentity == "" || len(c.PSKKey) == 0):
		return badInput("security_mode psk needs psk_identity and psk_key")
	case m != SecurityPSK && m != SecurityNoSec:
		return badInput("security_mode %q: want %s or %s", m, SecurityNoSec, SecurityPSK)
	}
	if c.ShortServerID == 65535 {
		return badInput("short_server_id 65535 is reserved")
	}
	if c.Lifetime < 0 || c.Lifetime%time.Second != 0 {
		return badInput("lifetime %v: want whole seconds", c.Lifetime)
	}
	if b := c.Binding; b != "" && strings.Trim(b, "UQSTN") != "" {
		return badInput("binding %q", b)
	}
	ssids := map[uint16]bool{c.ssid(): true}
	for i := range c.Servers {
		f := &c.Servers[i]
		if len(f.Servers) > 0 {
			return badInput("servers[%d]: a further server has no servers of its own", i)
		}
		if err := f.validate(); err != nil {
			return badInput("servers[%d]: %v", i, err)
		}
		if ssids[f.ssid()] {
			return badInput("servers[%d]: short_server_id %d used twice", i, f.ssid())
		}
		ssids[f.ssid()] = true
	}
	return nil
}

// ssid returns the Short Server ID, default applied.
func (c *BootstrapConfig) ssid() uint16 {
	if c.ShortServerID == 0 {
		return 1
	}
	return c.ShortServerID
}

// SetBootstrap sets the bootstrap configuration of endpoint ep
// (AnyEndpoint for every endpoint without its own).
func (s *Server) SetBootstrap(ep string, c BootstrapConfig) error {
	if ep == "" {
		return badInput("empty endpoint name")
	}
	if err := c.validate(); err != nil {
		return err
	}
	c.PSKKey = bytes.Clone(c.PSKKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bootstrap == nil {
		s.bootstrap = make(map[string]BootstrapConfig)
	}
	s.bootstrap[ep] = c
	return nil
}

// Bootstrap returns the bootstrap configuration set for ep.
func (s *Server) Bootstrap(ep string) (BootstrapConfig, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.bootstrap[ep]
	return c, ok
}

// DeleteBootstrap removes the bootstrap configuration of ep and reports
// whether there was one.
func (s *Server) DeleteBootstrap(ep string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.bootstrap[ep]
	delete(s.bootstrap, ep)
	return ok
}

// Bootstraps returns the endpoint names that have a bootstrap
// configuration, in order.
func (s *Server) Bootstraps() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	eps := make([]string, 0, len(s.bootstrap))
	for ep := range s.bootstrap {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	return eps
}

// bootstrapFor returns the configuration that applies to ep.
func (s *Server) bootstrapFor(ep string) (BootstrapConfig, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.bootstrap[ep]; ok {
		return c, true
	}
	c, ok := s.bootstrap[AnyEndpoint]
	return c, ok
}

// provisionedPSK returns the key of a DM credential the bootstrap
// configurations provision, for the coaps listener.
func (s *Server) provisionedPSK(identity []byte) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.bootstrap {
		for _, a := range append([]BootstrapConfig{c}, c.Servers...) {
			if a.mode() == SecurityPSK && a.PSKIdentity == string(identity) {
				return bytes.Clone(a.PSKKey), true
			}
		}
	}
	return nil, false
}

// bootstrapTimeout bounds a whole provisioning session.
const bootstrapTimeout = 2 * time.Minute

// handleBootstrapRequest answers a Bootstrap-Request and provisions the
// client.
func (s *Server) handleBootstrapRequest(w mux.ResponseWriter, r *mux.Message) {
	if r.Code() != codes.POST {
		s.respond(w, codes.MethodNotAllowed, "")
		return
	}
	var ep string
	qs, _ := r.Queries()
	for _, q := range qs {
		if v, ok := strings.CutPrefix(q, "ep="); ok {
			ep, _ = url.QueryUnescape(v)
		}
	}
	if ep == "" {
		s.respond(w, codes.BadRequest, "missing ep")
		return
	}
	c, ok := s.bootstrapFor(ep)
	if !ok {
		// Core TS 1.1 §5.2.7.1: 4.00 for an endpoint the bootstrap
		// server does not know.
		s.log.Info("bootstrap request refused: no configuration", "ep", ep, "addr", addrString(w.Conn().RemoteAddr()))
		s.respond(w, codes.BadRequest, "no bootstrap configuration for "+ep)
		return
	}
	s.log.Info("bootstrap request", "ep", ep, "addr", addrString(w.Conn().RemoteAddr()), "server_uri", c.ServerURI)
	s.respond(w, codes.Changed, "")
	conn := w.Conn()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(conn.Context(), bootstrapTimeout)
		defer cancel()
		ev := Event{Kind: EventBootstrapped, Endpoint: ep, Addr: conn.RemoteAddr(), Time: time.Now()}
		if err := provision(ctx, conn, c); err != nil {
			ev.Kind, ev.Err = EventBootstrapFailed, err.Error()
			s.log.Warn("bootstrap failed", "ep", ep, "err", err)
		} else {
			s.log.Info("bootstrapped", "ep", ep, "server_uri", c.ServerURI)
		}
		ev.Time = time.Now()
		s.events.publish(ev)
	}()
}

// bootstrapRecords returns the Security /0/<inst> and Server
// /1/<srvInst> records of c.
func bootstrapRecords(c BootstrapConfig, inst, srvInst uint16) (sec, srv []lwm2m.Record) {
	ssid := int64(c.ssid())
	lt := c.Lifetime
	if lt == 0 {
		lt = DefaultLifetime
	}
	binding := c.Binding
	if binding == "" {
		binding = "U"
	}
	p := func(res uint16) lwm2m.Path { return lwm2m.P(0, inst, res) }
	mode, identity, key := int64(3), []byte{}, []byte{}
	if c.mode() == SecurityPSK {
		mode, identity, key = 0, []byte(c.PSKIdentity), c.PSKKey
	}
	sec = []lwm2m.Record{
		{Path: p(0), Value: lwm2m.String(c.ServerURI)},
		{Path: p(1), Value: lwm2m.Bool(false)},
		{Path: p(2), Value: lwm2m.Int(mode)},
		{Path: p(3), Value: lwm2m.Opaque(identity)},
		{Path: p(4), Value: lwm2m.Opaque([]byte{})},
		{Path: p(5), Value: lwm2m.Opaque(key)},
		{Path: p(10), Value: lwm2m.Int(ssid)},
	}
	srv = []lwm2m.Record{
		{Path: lwm2m.P(1, srvInst, 0), Value: lwm2m.Int(ssid)},
		{Path: lwm2m.P(1, srvInst, 1), Value: lwm2m.Int(int64(lt / time.Second))},
		{Path: lwm2m.P(1, srvInst, 6), Value: lwm2m.Bool(true)},
		{Path: lwm2m.P(1, srvInst, 7), Value: lwm2m.String(binding)},
	}
	return sec, srv
}

// provision runs the bootstrap operations on conn: Delete "/", Discover
// /0 to find the instance of the client's Bootstrap-Server account, Write
// the DM account to the lowest other /0 instance and /1/0 (TLV), each
// further server's to the next ones, Bootstrap-Finish.
func provision(ctx context.Context, conn mux.Conn, c BootstrapConfig) error {
	check := func(op string, m interface{ Code() codes.Code }, err error, want codes.Code) error {
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if m.Code() != want {
			return fmt.Errorf("%s: client answered %s", op, codeString(m.Code()))
		}
		return nil
	}
	m, err := conn.Delete(ctx, "/")
	if err := check("bootstrap-delete /", m, err, codes.Deleted); err != nil {
		return err
	}
	conn.ReleaseMessage(m)
	// Core TS 1.1 §5.2.7.3: in a Bootstrap-Discover the Bootstrap-Server
	// account is the /0 instance without an ssid.
	m, err = conn.Get(ctx, "/0", message.Option{ID: message.Accept, Value: []byte{byte(lwm2m.FormatLinkFormat)}})
	if err := check("bootstrap-discover /0", m, err, codes.Content); err != nil {
		return err
	}
	body, err := m.ReadBody()
	conn.ReleaseMessage(m)
	if err != nil {
		return fmt.Errorf("bootstrap-discover /0: %w", err)
	}
	links, err := linkformat.Parse(body)
	if err != nil {
		return fmt.Errorf("bootstrap-discover /0: %w", err)
	}
	used := map[uint16]bool{}
	for _, l := range links {
		if p, err := lwm2m.ParsePath(l.Target); err == nil && p.Len == 2 {
			used[p.Inst()] = true
		}
	}
	type write struct {
		path lwm2m.Path
		recs []lwm2m.Record
	}
	var writes []write
	inst := uint16(0)
	for i, a := range append([]BootstrapConfig{c}, c.Servers...) {
		for used[inst] {
			inst++
		}
		used[inst] = true
		sec, srv := bootstrapRecords(a, inst, uint16(i))
		writes = append(writes, write{lwm2m.P(0, inst), sec}, write{lwm2m.P(1, uint16(i)), srv})
	}
	for _, w := range writes {
		body, err := tlv.Encode(w.path, w.recs)
		if err != nil {
			return fmt.Errorf("bootstrap-write %s: %w", w.path, err)
		}
		m, err := conn.Put(ctx, w.path.String(), message.MediaType(lwm2m.FormatTLV), bytes.NewReader(body))
		if err := check("bootstrap-write "+w.path.String(), m, err, codes.Changed); err != nil {
			return err
		}
		conn.ReleaseMessage(m)
	}
	m, err = conn.Post(ctx, "/bs", message.TextPlain, nil)
	if err := check("bootstrap-finish", m, err, codes.Changed); err != nil {
		if m != nil {
			if body, rerr := m.ReadBody(); rerr == nil && len(body) > 0 {
				return fmt.Errorf("%w: %s", err, body)
			}
		}
		return err
	}
	conn.ReleaseMessage(m)
	return nil
}

// ---- HTTP API ----

// apiBootstrapList answers GET /api/bootstrap: the configurations by
// endpoint name, keys hidden.
func (s *Server) apiBootstrapList(w http.ResponseWriter, _ *http.Request) {
	out := map[string]BootstrapConfig{}
	for _, ep := range s.Bootstraps() {
		if c, ok := s.Bootstrap(ep); ok {
			out[ep] = c
		}
	}
	s.writeJSON(w, http.StatusOK, out)
}

// apiBootstrapGet answers GET /api/bootstrap/{ep}.
func (s *Server) apiBootstrapGet(w http.ResponseWriter, r *http.Request) {
	c, ok := s.Bootstrap(r.PathValue("ep"))
	if !ok {
		s.writeJSON(w, http.StatusNotFound, errorJSON{Error: "no bootstrap configuration for " + r.PathValue("ep")})
		return
	}
	s.writeJSON(w, http.StatusOK, c)
}

// apiBootstrapPut answers PUT /api/bootstrap/{ep}: the body is a
// BootstrapConfig in JSON (lifetime in seconds, psk_key in hex).
func (s *Server) apiBootstrapPut(w http.ResponseWriter, r *http.Request) {
	var c BootstrapConfig
	if err := decodeBody(w, r, &c); err != nil {
		s.apiError(w, err)
		return
	}
	if err := s.SetBootstrap(r.PathValue("ep"), c); err != nil {
		s.apiError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, c)
}

// apiBootstrapDelete answers DELETE /api/bootstrap/{ep}.
func (s *Server) apiBootstrapDelete(w http.ResponseWriter, r *http.Request) {
	if !s.DeleteBootstrap(r.PathValue("ep")) {
		s.writeJSON(w, http.StatusNotFound, errorJSON{Error: "no bootstrap configuration for " + r.PathValue("ep")})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
