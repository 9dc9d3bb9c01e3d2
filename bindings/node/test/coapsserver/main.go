// Command coapsserver runs avc's embedded LwM2M server with a coaps
// (DTLS-PSK) listener for the Node binding's tests, which have no DTLS of
// their own to talk to: it prints {"coap": addr, "coaps": addr, "http":
// addr} as one JSON line once listening, and exits when its standard
// input ends (so it never outlives the test that started it). Firmware
// images PUT through the HTTP API are served over coap and coaps.
//
// With -certdir the coaps listener also takes X.509 certificates: a new
// CA issues the server's certificate (for 127.0.0.1) and a client's,
// written to the directory as client.crt, client.key and ca.pem.
//
//	go run ./bindings/node/test/coapsserver -identity dev-psk -key 0123…
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/avc-agent/avc/server"
)

func main() {
	identity := flag.String("identity", "dev-psk", "the one PSK `identity` the server knows")
	keyHex := flag.String("key", "", "its key, in `hex`")
	certDir := flag.String("certdir", "", "also accept certificates: write a client's to `dir`")
	flag.Parse()
	key, err := hex.DecodeString(*keyHex)
	if err != nil || len(key) == 0 {
		fmt.Fprintln(os.Stderr, "coapsserver: -key: want hex")
		os.Exit(2)
	}
	fwDir, err := os.MkdirTemp("", "coapsserver-fw")
	if err != nil {
		fmt.Fprintln(os.Stderr, "coapsserver:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(fwDir)
	cfg := server.Config{
		CoAPAddr:    "127.0.0.1:0",
		CoAPSAddr:   "127.0.0.1:0",
		HTTPAddr:    "127.0.0.1:0",
		FirmwareDir: fwDir,
		PSK: func(id []byte) ([]byte, error) {
			if string(id) != *identity {
				return nil, fmt.Errorf("unknown identity %q", id)
			}
			return key, nil
		},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if *certDir != "" {
		if err := certificates(&cfg, *certDir); err != nil {
			fmt.Fprintln(os.Stderr, "coapsserver:", err)
			os.Exit(1)
		}
	}
	srv := server.New(cfg)
	if err := srv.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "coapsserver:", err)
		os.Exit(1)
	}
	defer srv.Close()
	if err := json.NewEncoder(os.Stdout).Encode(map[string]string{
		"coap":  srv.CoAPAddr().String(),
		"coaps": srv.CoAPSAddr().String(),
		"http":  srv.HTTPAddr().String(),
	}); err != nil {
		os.Exit(1)
	}
	io.Copy(io.Discard, os.Stdin)
}

// certificates makes a CA, the server's certificate for 127.0.0.1 (set in
// cfg with the CA as the client trust anchor) and a client's, written to
// dir with the CA.
func certificates(cfg *server.Config, dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "coapsserver-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	issue := func(serial int64, cn string, ips ...net.IP) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
	}
	srvCert, srvKey, err := issue(2, "coapsserver", net.IPv4(127, 0, 0, 1))
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cfg.Certificate, cfg.ClientCAs = &pair, pool
	cliCert, cliKey, err := issue(3, "node-client")
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{
		"client.crt": cliCert, "client.key": cliKey,
		"ca.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
