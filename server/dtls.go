package server

import (
	"fmt"
	"net"
	"time"

	piondtls "github.com/pion/dtls/v3"
	coapdtls "github.com/plgd-dev/go-coap/v3/dtls"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// dtlsIdleTimeout is how long a DTLS session may stay silent before the
// server drops it. go-coap's default (16 s) would end the session of every
// registered client between updates, and the server cannot open a DTLS
// session towards a client, so it is set well beyond the default lifetime.
const dtlsIdleTimeout = 25 * time.Hour

// pskCipherSuites are the DTLS-PSK cipher suites accepted on coaps.
var pskCipherSuites = []piondtls.CipherSuiteID{
	piondtls.TLS_PSK_WITH_AES_128_CCM_8,
	piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
}

// certCipherSuites are served to clients with certificates (RFC 7925).
var certCipherSuites = []piondtls.CipherSuiteID{
	piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
	piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
}

// dtlsCIDSize is the length of the Connection IDs the server gives its
// DTLS clients.
const dtlsCIDSize = 8

// startDTLS listens for coaps on Config.CoAPSAddr with the same handlers as
// the UDP server. Called by Start with s.mu held.
func (s *Server) startDTLS() error {
	cert := s.cfg.Certificate != nil
	pskOn := s.cfg.PSK != nil || len(s.bootstrap) > 0
	if !pskOn && !cert {
		return fmt.Errorf("server: CoAPSAddr %s needs Config.PSK or Config.Certificate", s.cfg.CoAPSAddr)
	}
	if cert && s.cfg.ClientCAs == nil {
		return fmt.Errorf("server: CoAPSAddr %s: Config.Certificate needs Config.ClientCAs", s.cfg.CoAPSAddr)
	}
	opts := []piondtls.ServerOption{
		// RFC 9146 Connection IDs of 8 bytes: records are routed to their
		// session by CID, so a client behind a NAT that rebinds keeps its
		// session; its address follows the latest authenticated record.
		piondtls.WithConnectionIDGenerator(piondtls.RandomCIDGenerator(dtlsCIDSize)),
	}
	var suites []piondtls.CipherSuiteID
	if pskOn {
		psk := func(identity []byte) ([]byte, error) {
			// The DM credentials this server provisions as a bootstrap
			// server, then Config.PSK.
			if key, ok := s.provisionedPSK(identity); ok {
				return key, nil
			}
			if s.cfg.PSK == nil {
				return nil, fmt.Errorf("unknown psk identity")
			}
			return s.cfg.PSK(identity)
		}
		suites = append(suites, pskCipherSuites...)
		opts = append(opts, piondtls.WithPSK(func(identity []byte) ([]byte, error) {
			key, err := psk(identity)
			if err != nil {
				s.log.Info("dtls: psk rejected", "identity", string(identity), "err", err)
			}
			return key, err
		}))
	}
	if cert {
		suites = append(suites, certCipherSuites...)
		opts = append(opts,
			piondtls.WithCertificates(*s.cfg.Certificate),
			piondtls.WithClientCAs(s.cfg.ClientCAs),
			piondtls.WithClientAuth(piondtls.RequireAndVerifyClientCert),
		)
	}
	opts = append(opts, piondtls.WithCipherSuites(suites...))
	ln, err := coapnet.NewDTLSListener("udp", s.cfg.CoAPSAddr, coapnet.NewDTLSServerOptions(opts...))
	if err != nil {
		return fmt.Errorf("server: listen coaps %s: %w", s.cfg.CoAPSAddr, err)
	}
	s.dtlsLn = ln
	s.dtls = coapdtls.NewServer(
		options.WithMux(s.coapHandler()),
		options.WithErrors(s.coapError),
		options.WithProcessReceivedMessageFunc(s.processMessage),
		options.WithInactivityMonitor(dtlsIdleTimeout, func(cc *udpclient.Conn) { _ = cc.Close() }),
	)
	srv := s.dtls
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil {
			s.log.Error("coaps server stopped", "err", err)
		}
	}()
	return nil
}

// stopDTLS stops the coaps server; Close calls it.
func (s *Server) stopDTLS() {
	if s.dtls != nil {
		s.dtls.Stop()
		_ = s.dtlsLn.Close()
	}
}

// CoAPSAddr returns the bound coaps (DTLS) address, or nil before Start
// and when Config.CoAPSAddr is empty.
func (s *Server) CoAPSAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dtlsLn == nil {
		return nil
	}
	return s.dtlsLn.Addr()
}

// isDTLS reports whether cc is a DTLS session; such a connection cannot be
// replaced by a plaintext one when it ends.
func isDTLS(cc *udpclient.Conn) bool {
	_, ok := cc.NetConn().(*piondtls.Conn)
	return ok
}
