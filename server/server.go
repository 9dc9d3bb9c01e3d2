package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	dtlsserver "github.com/plgd-dev/go-coap/v3/dtls/server"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"
)

// Defaults applied by New for zero Config fields.
const (
	// DefaultCoAPAddr is the UDP address the server listens on when
	// Config.CoAPAddr is empty.
	DefaultCoAPAddr = "127.0.0.1:5683"
	// DefaultExpiryGrace is how long a registration outlives its lifetime
	// when Config.ExpiryGrace is zero.
	DefaultExpiryGrace = 10 * time.Second
	// DefaultRequestTimeout bounds each device operation started by the HTTP
	// API when Config.RequestTimeout is zero.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultEventBuffer is the capacity of each subscriber's channel when
	// Config.EventBuffer is zero.
	DefaultEventBuffer = 64
	// DefaultFirmwareMaxSize bounds an uploaded firmware image when
	// Config.FirmwareMaxSize is zero: 256 MiB.
	DefaultFirmwareMaxSize = 256 << 20
)

// ErrClosed is returned by Start on a server that was closed.
var ErrClosed = errors.New("server: closed")

// Config configures a [Server]. The zero value is usable: it listens for
// CoAP on DefaultCoAPAddr, serves no HTTP API and logs nothing.
type Config struct {
	// CoAPAddr is the UDP address for CoAP ("host:port"). Empty means
	// DefaultCoAPAddr; port 0 picks a free port (see Server.CoAPAddr).
	CoAPAddr string
	// CoAPSAddr is the UDP address for CoAP over DTLS ("coaps": pre-shared
	// keys with TLS_PSK_WITH_AES_128_CCM_8 and _GCM_SHA256, certificates
	// with TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 and _GCM_SHA256). Empty
	// means no coaps listener; port 0 picks a free port (see
	// Server.CoAPSAddr). Needs PSK, or Certificate and ClientCAs.
	CoAPSAddr string
	// PSK returns the pre-shared key for a client's PSK identity, or an
	// error to refuse the handshake. Used only with CoAPSAddr.
	PSK func(identity []byte) ([]byte, error)
	// Certificate is the server's certificate chain and key for DTLS
	// with certificates; ClientCAs are the trust anchors a client's
	// certificate must chain to (a client without one is refused).
	Certificate *tls.Certificate
	ClientCAs   *x509.CertPool
	// HTTPAddr is the TCP address of the HTTP JSON API. Empty means no
	// HTTP listener; Server.Handler still serves the API.
	HTTPAddr string
	// Logger receives the server's log records. Nil means discard.
	Logger *slog.Logger
	// ExpiryGrace is added to a registration's lifetime before the
	// registration expires. Zero means DefaultExpiryGrace; a negative
	// value means none.
	ExpiryGrace time.Duration
	// RequestTimeout bounds each device operation made by the HTTP API.
	// Zero means DefaultRequestTimeout. The Go API (Read, Write, ...) is
	// bounded by the caller's context only.
	RequestTimeout time.Duration
	// EventBuffer is the capacity of each Subscribe channel and of each
	// Observation's notification channel. Zero means DefaultEventBuffer.
	EventBuffer int
	// FirmwareDir is the directory of the firmware images the server
	// serves at /fw/<name> over CoAP, CoAPS and HTTP, lists and accepts
	// uploads into over the HTTP API, and sends in firmware updates (see
	// StartFOTA). Empty means no firmware service.
	FirmwareDir string
	// FirmwareMaxSize bounds an image uploaded over the HTTP API, in
	// bytes. Zero means DefaultFirmwareMaxSize.
	FirmwareMaxSize int64
	// FirmwareHost is the host name or IP address devices use to reach the
	// server, for the firmware URIs it writes to /5/0/1 and lists. Empty
	// means the host of the listen address, or, when that is unspecified
	// (0.0.0.0, ::), the local address that routes to the device.
	FirmwareHost string
	// Bootstrap holds the initial bootstrap configurations by endpoint
	// name (AnyEndpoint for all others): with any, the server also acts
	// as an LwM2M bootstrap server (see SetBootstrap and
	// docs/BOOTSTRAP.md). The PSKs they provision are accepted on coaps
	// besides those of PSK.
	Bootstrap map[string]BootstrapConfig
}

// udpReadBuffer is the receive buffer the server asks for its CoAP socket.
const udpReadBuffer = 4 << 20

// Server is avc's embedded LwM2M 1.1 server: a registration interface on
// CoAP over UDP, device management operations and observations on
// registered clients, an event stream and an optional HTTP JSON API.
//
// Here's an example:
//
//	s := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
//	if err := s.Start(ctx); err != nil {
//		return err
//	}
//	defer s.Close()
//	ev, err := s.WaitFor(ctx, "dev1", server.EventRegistered)
//	resp, err := s.Read(ctx, "dev1", lwm2m.P(3, 0), lwm2m.FormatTLV)
//	obs, err := s.Observe(ctx, "dev1", lwm2m.P(3, 0, 9), lwm2m.FormatText)
//	for n := range obs.Notifications() { ... }
//
// # Notes
//
//   - Security: plain CoAP (NoSec), and DTLS with pre-shared keys or
//     X.509 certificates when Config.CoAPSAddr is set; no raw public keys.
//   - Bootstrap-server mode for the endpoints given a BootstrapConfig
//     (Config.Bootstrap, SetBootstrap); no Create or Delete.
//   - Queue mode (binding "Q") is recorded, but requests are sent at once.
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 §6.2 (registration) and §6.3
// (device management and service enablement).
type Server struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex // guards the fields below and the registrations
	byEP   map[string]*registration
	byID   map[string]*registration
	obs    map[string]*Observation // live observations by token
	apiObs map[string]*Observation // those the HTTP API started, by ID
	state  int                     // stateNew, stateStarted, stateClosed

	coap    *udpserver.Server
	udpConn *coapnet.UDPConn
	dtls    *dtlsserver.Server // when Config.CoAPSAddr is set
	dtlsLn  *coapnet.DTLSListener
	httpSrv *http.Server
	httpLn  net.Listener
	wg      sync.WaitGroup

	events    eventHub
	bootstrap map[string]BootstrapConfig // by endpoint (bootstrap.go)
	fw        firmwareStore              // the images in Config.FirmwareDir
	fotas     fotaTable                  // firmware updates, and their block-wise transfers
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// New returns a server configured by cfg; nothing is bound until Start.
func New(cfg Config) *Server {
	if cfg.CoAPAddr == "" {
		cfg.CoAPAddr = DefaultCoAPAddr
	}
	if cfg.ExpiryGrace == 0 {
		cfg.ExpiryGrace = DefaultExpiryGrace
	} else if cfg.ExpiryGrace < 0 {
		cfg.ExpiryGrace = 0
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	if cfg.FirmwareMaxSize <= 0 {
		cfg.FirmwareMaxSize = DefaultFirmwareMaxSize
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:    cfg,
		log:    log,
		byEP:   make(map[string]*registration),
		byID:   make(map[string]*registration),
		obs:    make(map[string]*Observation),
		apiObs: make(map[string]*Observation),
	}
	for ep, c := range cfg.Bootstrap {
		if err := s.SetBootstrap(ep, c); err != nil {
			log.Error("ignoring bootstrap configuration", "ep", ep, "err", err)
		}
	}
	s.events.init(log, cfg.EventBuffer)
	s.fw.init(cfg.FirmwareDir)
	s.fotas.init()
	return s
}

// Start binds the CoAP socket (and the HTTP listener when Config.HTTPAddr
// is set) and returns once both are listening. Serving continues in
// goroutines until Close. ctx bounds the start only.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateStarted:
		return errors.New("server: already started")
	case stateClosed:
		return ErrClosed
	}

	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", s.cfg.CoAPAddr)
	if err != nil {
		return fmt.Errorf("server: listen coap %s: %w", s.cfg.CoAPAddr, err)
	}
	var ln net.Listener
	if s.cfg.HTTPAddr != "" {
		ln, err = lc.Listen(ctx, "tcp", s.cfg.HTTPAddr)
		if err != nil {
			pc.Close()
			return fmt.Errorf("server: listen http %s: %w", s.cfg.HTTPAddr, err)
		}
	}

	if s.cfg.CoAPSAddr != "" {
		if err := s.startDTLS(); err != nil {
			pc.Close()
			if ln != nil {
				ln.Close()
			}
			return err
		}
	}

	// A burst of registrations (a fleet starting at once) must not
	// overflow the kernel's default receive buffer, or each lost one
	// waits for its CoAP retransmission (2-3 s). Best effort: the kernel
	// caps it at net.core.rmem_max.
	if err := pc.(*net.UDPConn).SetReadBuffer(udpReadBuffer); err != nil {
		s.log.Debug("cannot enlarge the coap receive buffer", "err", err)
	}
	s.udpConn = coapnet.NewUDPConn("udp", pc.(*net.UDPConn), coapnet.WithErrors(s.coapError))
	s.coap = udp.NewServer(
		options.WithMux(s.coapHandler()),
		options.WithErrors(s.coapError),
		options.WithProcessReceivedMessageFunc(s.processMessage),
	)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.coap.Serve(s.udpConn); err != nil {
			s.log.Error("coap server stopped", "err", err)
		}
	}()

	if ln != nil {
		s.httpLn = ln
		s.httpSrv = &http.Server{
			Handler:           s.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server stopped", "err", err)
			}
		}()
	}
	s.state = stateStarted
	attrs := []any{"coap", pc.LocalAddr().String()}
	if s.dtlsLn != nil {
		attrs = append(attrs, "coaps", s.dtlsLn.Addr().String())
	}
	if ln != nil {
		attrs = append(attrs, "http", ln.Addr().String())
	}
	s.log.Info("server listening", attrs...)
	return nil
}

// coapError receives go-coap's internal errors, which are about single
// datagrams and exchanges.
func (s *Server) coapError(err error) {
	s.log.Debug("coap error", "err", err)
}

// CoAPAddr returns the bound UDP address, or nil before Start.
func (s *Server) CoAPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udpConn == nil {
		return nil
	}
	return s.udpConn.LocalAddr()
}

// HTTPAddr returns the bound HTTP address, or nil before Start and when
// Config.HTTPAddr is empty.
func (s *Server) HTTPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// Close stops serving, forgets all registrations without emitting events,
// ends every observation (with ErrClosed), closes every Subscribe channel
// and waits for the serving goroutines to end. It may be called more than
// once and before Start.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return nil
	}
	started := s.state == stateStarted
	s.state = stateClosed
	for _, r := range s.byID {
		r.timer.Stop()
	}
	for _, o := range s.obs {
		s.endObservation(o, ErrClosed)
	}
	clear(s.byEP)
	clear(s.byID)
	s.mu.Unlock()
	s.fotas.stop() // ends the firmware updates, which end no later than their requests

	var errs []error
	if started {
		s.coap.Stop()
		// Stop closes the socket only once Serve has taken it; close it
		// here too in case Serve has not run yet.
		_ = s.udpConn.Close()
		s.stopDTLS()
		if s.httpSrv != nil {
			if err := s.httpSrv.Close(); err != nil {
				errs = append(errs, fmt.Errorf("server: close http: %w", err))
			}
		}
		s.wg.Wait()
	}
	s.events.close()
	if started {
		s.log.Info("server closed")
	}
	return errors.Join(errs...)
}
