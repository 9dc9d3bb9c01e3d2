package httpfetch

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// newTLSServer starts an https server for h, with cfg (may be nil) as its
// TLS configuration, closed at cleanup.
func newTLSServer(t *testing.T, h http.Handler, cfg *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = cfg
	srv.Config.ErrorLog = quietLog
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// trust returns a TLS configuration whose only root is cert.
func trust(cert *x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool}
}

// expiredCert returns a self-signed certificate for 127.0.0.1 that expired
// an hour ago.
func expiredCert(t *testing.T) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "expired"},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(-time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf
}

func TestGetTLS(t *testing.T) {
	t.Parallel()
	file := serveFile(fileV1, `"v1"`)
	srv := newTLSServer(t, file, nil)
	good := trust(srv.Certificate())

	expired, expiredLeaf := expiredCert(t)
	expiredSrv := newTLSServer(t, file, &tls.Config{Certificates: []tls.Certificate{expired}})

	old := newTLSServer(t, file, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	plain := newServer(t, file)

	skip := good.Clone()
	skip.RootCAs = nil
	skip.InsecureSkipVerify = true
	wrongHost := good.Clone()
	wrongHost.ServerName = "wrong.example"
	defaultTransport := http.DefaultTransport.(*http.Transport).Clone()

	tests := []struct {
		name      string
		url       string
		cfg       *tls.Config
		transport http.RoundTripper
		want      error
	}{
		{"trusted", srv.URL, good, nil, nil},
		{"unknown authority (system roots)", srv.URL, nil, nil, ErrTLS},
		{"InsecureSkipVerify is ignored", srv.URL, skip, nil, ErrTLS},
		{"wrong host name", srv.URL, wrongHost, nil, ErrTLS},
		{"expired", expiredSrv.URL, trust(expiredLeaf), nil, ErrTLS},
		{"TLS 1.1 only server", old.URL, trust(old.Certificate()), nil, ErrTLS},
		{"plain HTTP on the https port", "https" + plain.URL[len("http"):], good, nil, ErrTLS},
		{"custom Transport, unknown authority", srv.URL, nil, defaultTransport, ErrTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := request(tt.url)
			req.TLSConfig, req.Transport = tt.cfg, tt.transport
			s := &memSink{}
			err := Get(t.Context(), req, s)
			wantErr(t, err, tt.want)
			if tt.want == nil {
				checkSink(t, s, fileV1, Response{200, 0, fileSize, `"v1"`})
				return
			}
			if errors.Is(err, ErrConnect) {
				t.Errorf("Get: %v is also ErrConnect", err)
			}
			if len(s.starts) != 0 {
				t.Errorf("Start called: %+v", s.starts)
			}
		})
	}
	if skip.InsecureSkipVerify != true {
		t.Error("Get modified the caller's tls.Config")
	}
}

func TestGetTLSCertificateError(t *testing.T) {
	t.Parallel()
	srv := newTLSServer(t, serveFile(fileV1, ""), nil)
	err := Get(t.Context(), request(srv.URL), &memSink{})
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); !ok {
		t.Errorf("Get: %v, want a *tls.CertificateVerificationError inside", err)
	}
}

func TestGetRedirectScheme(t *testing.T) {
	t.Parallel()
	var plainRec recorder
	plain := newServer(t, plainRec.wrap(serveFile(fileV1, `"v1"`)))
	secure := newTLSServer(t, http.RedirectHandler(plain.URL+"/fw.bin", http.StatusFound), nil)
	secureFile := newTLSServer(t, serveFile(fileV1, `"v1"`), nil)
	upgrade := newServer(t, http.RedirectHandler(secureFile.URL+"/fw.bin", http.StatusMovedPermanently))

	t.Run("https to http refused", func(t *testing.T) {
		t.Parallel()
		req := request(secure.URL)
		req.TLSConfig = trust(secure.Certificate())
		wantErr(t, Get(t.Context(), req, &memSink{}), ErrRedirect)
		if n := len(plainRec.all()); n != 0 {
			t.Errorf("%d requests reached the http server", n)
		}
	})
	t.Run("http to https followed", func(t *testing.T) {
		t.Parallel()
		req := request(upgrade.URL)
		req.TLSConfig = trust(secureFile.Certificate())
		s := &memSink{}
		wantErr(t, Get(t.Context(), req, s), nil)
		checkSink(t, s, fileV1, Response{200, 0, fileSize, `"v1"`})
	})
}
