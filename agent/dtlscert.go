package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/pion/dtls/v3"
)

// certCipherSuites are offered for DTLS with certificates: the one LwM2M
// mandates (RFC 7925) and its GCM sibling.
var certCipherSuites = []dtls.CipherSuiteID{
	dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
	dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
}

// DTLSCredentials is what a DTLS session authenticates with: a pre-shared
// key (Security mode 0), or a certificate with the trust anchors for the
// server's (mode 2). A certificate wins over a PSK.
type DTLSCredentials struct {
	PSKIdentity string
	PSKKey      []byte
	// Certificate is the client's chain and private key.
	Certificate *tls.Certificate
	// RootCAs are the trust anchors the server's certificate must chain
	// to; required with Certificate.
	RootCAs *x509.CertPool
}

func (c DTLSCredentials) certificate() bool { return c.Certificate != nil }

// certConfigured reports whether c names a certificate for DTLS
// (Security mode 2): as files or as PEM bytes.
func (c *Config) certConfigured() bool {
	return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" || len(c.CertPEM) > 0 || len(c.KeyPEM) > 0 || len(c.CAPEM) > 0
}

// validateDTLS checks that a coaps configuration has a usable credential.
func (c *Config) validateDTLS() error {
	switch {
	case c.certConfigured():
		_, err := c.dtlsCredentials()
		return err
	case c.PSKIdentity == "" || len(c.PSKKey) == 0:
		return fmt.Errorf("%w: %s=%q: coaps needs %s and %s, or %s, %s and %s", ErrConfig, EnvServerURI, c.ServerURI,
			EnvPSKIdentity, EnvPSKKey, EnvCertFile, EnvKeyFile, EnvCAFile)
	}
	return nil
}

// dtlsCredentials loads the credential of the LwM2M server's session:
// the certificate (PEM bytes, else files) when one is configured, else
// the PSK.
func (c *Config) dtlsCredentials() (DTLSCredentials, error) {
	if !c.certConfigured() {
		return DTLSCredentials{PSKIdentity: c.PSKIdentity, PSKKey: c.PSKKey}, nil
	}
	var cred DTLSCredentials
	var err error
	switch {
	case len(c.CertPEM) > 0 && len(c.KeyPEM) > 0 && len(c.CAPEM) > 0:
		cred, err = certificateFromPEM(c.CertPEM, c.KeyPEM, c.CAPEM)
	case len(c.CertPEM) > 0 || len(c.KeyPEM) > 0 || len(c.CAPEM) > 0:
		return DTLSCredentials{}, fmt.Errorf("%w: %s=%q: certificates need the certificate, key and CA PEM together", ErrConfig, EnvServerURI, c.ServerURI)
	case c.CertFile == "" || c.KeyFile == "" || c.CAFile == "":
		return DTLSCredentials{}, fmt.Errorf("%w: %s=%q: certificates need %s, %s and %s together", ErrConfig, EnvServerURI, c.ServerURI, EnvCertFile, EnvKeyFile, EnvCAFile)
	default:
		cred, err = loadCertificate(c.CertFile, c.KeyFile, c.CAFile)
	}
	if err != nil {
		return DTLSCredentials{}, fmt.Errorf("%w: %s/%s/%s: %v", ErrConfig, EnvCertFile, EnvKeyFile, EnvCAFile, err)
	}
	return cred, nil
}

// loadCertificate loads a certificate credential from PEM files: the
// client's chain and key, and the trust anchors for the server's
// certificate.
func loadCertificate(certFile, keyFile, caFile string) (DTLSCredentials, error) {
	var pems [3][]byte
	for i, name := range []string{certFile, keyFile, caFile} {
		b, err := os.ReadFile(name)
		if err != nil {
			return DTLSCredentials{}, err
		}
		pems[i] = b
	}
	return certificateFromPEM(pems[0], pems[1], pems[2])
}

// certificateFromPEM makes a certificate credential of PEM text. A CA
// text without a certificate is an error: an empty pool would trust
// nothing, silently.
func certificateFromPEM(certPEM, keyPEM, caPEM []byte) (DTLSCredentials, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return DTLSCredentials{}, fmt.Errorf("certificate and key: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return DTLSCredentials{}, errors.New("trust anchors: no PEM certificate")
	}
	return DTLSCredentials{Certificate: &cert, RootCAs: roots}, nil
}

// certOptions are the client options of certificate mode for a server
// whose host is host. A DNS name is sent as SNI and must be in the
// server's certificate; an IP literal is never sent as SNI (RFC 6066) and
// must be one of the certificate's IP address SANs. The chain is verified
// against RootCAs by pion.
func certOptions(cred DTLSCredentials, host string) []dtls.ClientOption {
	opts := []dtls.ClientOption{
		dtls.WithCertificates(*cred.Certificate),
		dtls.WithRootCAs(cred.RootCAs),
		dtls.WithCipherSuites(certCipherSuites...),
	}
	if ip := net.ParseIP(host); ip != nil {
		opts = append(opts, dtls.WithVerifyPeerCertificate(func(_ [][]byte, chains [][]*x509.Certificate) error {
			if len(chains) == 0 || len(chains[0]) == 0 {
				return errors.New("agent: dtls: no verified server certificate")
			}
			return chains[0][0].VerifyHostname(ip.String())
		}))
	} else {
		opts = append(opts, dtls.WithServerName(host))
	}
	return opts
}
