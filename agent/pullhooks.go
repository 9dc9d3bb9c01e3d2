package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The optional hooks a handler offers for its pulls (FirmwareSecurityProvider,
// FirmwareTxParamsProvider, FirmwareRequestTimeouter): the engine asks
// them once when a pull starts or resumes and keeps the answers in the
// dlPull for the whole attempt.

// pullHooks returns the handler whose hooks apply to d's pulls: the
// FirmwareHandler of Object 5, or the SoftwareHandler of an Object 9
// instance.
func pullHooks(d *download) any {
	s := d.t.store()
	if ss, ok := s.(swStore); ok {
		return ss.h
	}
	return s
}

// errNoPSK fails a coaps pull that has no credential.
var errNoPSK = errors.New("no DTLS-PSK credential for a coaps Package URI")

// askHooks asks the handler's hooks for the pull's URI. It returns the
// Update Result to fail with when the pull cannot go on.
func (p *dlPull) askHooks() (UpdateResult, error) {
	d := p.d
	h := pullHooks(d)
	uri := d.t.record().URI
	scheme := strings.ToLower(p.u.Scheme)
	if scheme == "coaps" || scheme == "https" {
		var sec *FirmwareSecurity
		if sp, ok := h.(FirmwareSecurityProvider); ok {
			s, err := sp.SecurityConfig(uri)
			if err != nil {
				return handlerResult(err, ResultUnsupportedProtocol), fmt.Errorf("%s security configuration: %w", d.t.label(), err)
			}
			sec = s
		}
		switch scheme {
		case "coaps":
			if sec != nil && (sec.PSKIdentity != "" || len(sec.PSKKey) > 0) {
				if sec.PSKIdentity == "" || len(sec.PSKKey) == 0 {
					return ResultUnsupportedProtocol, fmt.Errorf("%s security configuration: a PSK needs both identity and key", d.t.label())
				}
				p.psk = &pskCred{identity: sec.PSKIdentity, key: append([]byte(nil), sec.PSKKey...)}
			} else {
				p.psk = d.e.cfg.fwPSK()
			}
			if p.psk == nil {
				return ResultUnsupportedProtocol, errNoPSK
			}
		case "https":
			if sec != nil && (len(sec.RootCAs) > 0 || len(sec.ClientCert) > 0 || len(sec.ClientKey) > 0) {
				c := *sec
				if _, err := c.TLSConfig(nil); err != nil {
					return ResultUnsupportedProtocol, fmt.Errorf("%s security configuration: %w", d.t.label(), err)
				}
				p.tls = &c
			}
		}
	}
	if p.http {
		if rt, ok := h.(FirmwareRequestTimeouter); ok {
			p.reqTimeout = max(rt.RequestTimeout(uri), 0)
		}
		return ResultInitial, nil
	}
	if tp, ok := h.(FirmwareTxParamsProvider); ok {
		if tx, ok := tp.CoAPTxParams(uri); ok {
			if tx.valid() {
				p.tx = &tx
			} else {
				d.e.logWarn(d.t.label()+" CoAP transmission parameters out of range; using the defaults",
					"ack_timeout", tx.AckTimeout, "ack_random_factor", tx.AckRandomFactor, "max_retransmit", tx.MaxRetransmit)
			}
		}
	}
	return ResultInitial, nil
}

// retime applies the pull's transmission parameters to the request just
// sent, whose exchange is key: its first timeout is drawn from AckTimeout ×
// [1, AckRandomFactor] instead of the defaults, and it is resent at most
// MaxRetransmit times.
func (p *dlPull) retime(now time.Time, key xkey) {
	if p.tx == nil {
		return
	}
	x, ok := p.d.e.tr.exchanges[key]
	if !ok {
		return
	}
	span := time.Duration(float64(p.tx.AckTimeout) * (p.tx.AckRandomFactor - 1))
	x.timeout = p.tx.AckTimeout
	if span > 0 {
		x.timeout += time.Duration(p.d.e.randUint64() % uint64(span+1))
	}
	x.deadline = now.Add(x.timeout)
	x.maxSends = p.tx.MaxRetransmit + 1
}

// maxRetransmit is MAX_RETRANSMIT for x: a pull's own, or the default.
func (x *exchange) maxRetransmit() int {
	if x.maxSends > 0 {
		return x.maxSends - 1
	}
	return MaxRetransmit
}

// stallAt is when an HTTP fetch in flight has waited for the server for
// the request timeout (zero: no such deadline).
func (p *dlPull) stallAt() time.Time {
	if !p.http || !p.waiting || p.reqTimeout <= 0 {
		return time.Time{}
	}
	return p.lastIO.Add(p.reqTimeout)
}

// PullPSK returns the DTLS-PSK credential for the datagrams the engine
// addresses to peer, a DTLSPeerPrefix key: that of the coaps pull in
// progress (from its handler's FirmwareSecurityProvider, or the
// configuration), else the configured firmware credential. Drivers that
// carry such datagrams over DTLS ask it when they open a session to peer.
func (e *Engine) PullPSK(peer string) (identity string, key []byte, ok bool) {
	if c := e.pullPSK(peer); c != nil {
		return c.identity, c.key, true
	}
	return "", nil, false
}

func (e *Engine) pullPSK(peer string) *pskCred {
	d := e.findDownload(func(d *download) bool {
		p := d.pull
		return p != nil && !p.http && p.peer == peer && p.psk != nil
	})
	if d != nil {
		return d.pull.psk
	}
	return e.cfg.fwPSK()
}

// securityHooks reports whether a handler of c chooses pull credentials
// itself, which makes coaps pulls possible without a configured PSK.
func (c *Config) securityHooks() bool {
	if _, ok := c.Firmware.Handler.(FirmwareSecurityProvider); ok {
		return true
	}
	_, ok := c.Software.Handler.(FirmwareSecurityProvider)
	return ok
}

// TLSConfig returns the TLS configuration of an https pull with s: base
// (nil: none; it is cloned, never changed) with RootCAs and the client
// certificate replaced by s's, when set. It fails when RootCAs holds no
// PEM certificate, or the client certificate and key do not parse or do
// not match.
func (s *FirmwareSecurity) TLSConfig(base *tls.Config) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		c = base.Clone()
	}
	if len(s.RootCAs) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(s.RootCAs) {
			return nil, errors.New("no PEM certificate in RootCAs")
		}
		c.RootCAs = pool
	}
	if len(s.ClientCert) > 0 || len(s.ClientKey) > 0 {
		cert, err := tls.X509KeyPair(s.ClientCert, s.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
