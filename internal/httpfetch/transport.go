package httpfetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// maxHeaderBytes bounds the response header block.
const maxHeaderBytes = 64 << 10

// newTransport returns the HTTP/1.1 transport Get uses when
// Request.Transport is nil: every phase up to the response headers bounded
// by connectTimeout, no connection reuse (so nothing outlives Get), no
// transparent gzip (it would break byte offsets), proxies from the
// environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), and TLS ≥ 1.2 with
// certificate verification always on.
func newTransport(connectTimeout time.Duration, base *tls.Config) *http.Transport {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	tc := tlsConfig(base)
	return &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: d.DialContext,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialTLS(ctx, d, network, addr, tc, connectTimeout)
		},
		TLSClientConfig:        tc, // for https through an http proxy (CONNECT)
		TLSHandshakeTimeout:    connectTimeout,
		ResponseHeaderTimeout:  connectTimeout,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxHeaderBytes,
		// A non-nil empty map turns HTTP/2 off: Object 5 Protocol Support
		// announces HTTP/1.1 and HTTPS (over HTTP/1.1).
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// tlsConfig returns a copy of base (nil means system roots) that verifies
// certificates and refuses anything older than TLS 1.2. InsecureSkipVerify
// is cleared: there is no way to turn verification off through this
// package.
func tlsConfig(base *tls.Config) *tls.Config {
	c := &tls.Config{}
	if base != nil {
		c = base.Clone()
	}
	c.InsecureSkipVerify = false
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	c.NextProtos = []string{"http/1.1"}
	return c
}

// dialTLS dials addr and completes the TLS handshake within timeout. A
// handshake failure that is not a plain network failure is returned as a
// *handshakeError so that Get reports it as [ErrTLS].
func dialTLS(ctx context.Context, d *net.Dialer, network, addr string, base *tls.Config, timeout time.Duration) (net.Conn, error) {
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := base.Clone()
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		c.ServerName = host
	}
	conn := tls.Client(raw, c)
	if err := raw.SetDeadline(time.Now().Add(timeout)); err != nil {
		raw.Close()
		return nil, err
	}
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		if isNetworkFailure(err) {
			return nil, err
		}
		return nil, &handshakeError{err}
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// A handshakeError marks a TLS handshake failure caused by TLS itself
// (certificates, versions, alerts) rather than by the network.
type handshakeError struct{ err error }

// Error returns the handshake error's text.
func (e *handshakeError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error, for errors.As on x509 and tls types.
func (e *handshakeError) Unwrap() error { return e.err }

// isNetworkFailure reports whether err is a timeout, a cancellation, an EOF
// or a reset: a failure of the connection, not of TLS.
func isNetworkFailure(err error) bool {
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// isTLSError reports whether err is a TLS failure, from our own dialer or
// recognisable by type from any other transport.
func isTLSError(err error) bool {
	if _, ok := errors.AsType[*handshakeError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	_, ok := errors.AsType[tls.AlertError](err)
	return ok
}
