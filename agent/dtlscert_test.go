package agent_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
)

// TestAgentDTLSCertificateRefused: the agent refuses a server whose
// certificate does not chain to its trust anchors or does not name the
// server's address, and the server refuses an agent without a client
// certificate it trusts. Each is a failed handshake reported as a failed
// registration and retried; nothing is ever registered, nor sent in
// plaintext (the server's plain CoAP port sees no client).
func TestAgentDTLSCertificateRefused(t *testing.T) {
	trusted, other := agenttest.NewCA(t, "trusted-ca"), agenttest.NewCA(t, "other-ca")
	for _, tc := range []struct {
		name string
		// server: the CA of the server's certificate, the client CAs it
		// accepts and the IP its certificate names.
		serverCA, clientCA *agenttest.CA
		serverIP           net.IP
		// agent: the CA of its own certificate and the CA it trusts.
		agentCA, agentTrusts *agenttest.CA
		// why: in the agent's failure (the server's alert for a client
		// it does not trust).
		why string
	}{
		{"untrusted server certificate", other, trusted, net.IPv4(127, 0, 0, 1), trusted, trusted, "unknown authority"},
		{"server certificate for another address", trusted, trusted, net.IPv4(10, 9, 8, 7), trusted, trusted, "not 127.0.0.1"},
		{"client certificate the server does not trust", trusted, trusted, net.IPv4(127, 0, 0, 1), other, trusted, "Alert Fatal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv := agenttest.CertServer(t, ctx, tc.serverCA, tc.clientCA, tc.serverIP)
			dir := t.TempDir()
			_, certFile, keyFile := tc.agentCA.Issue(t, dir, "refused")
			a, err := agent.New(agent.Config{
				ServerURI: "coaps://" + srv.CoAPSAddr().String(), Endpoint: "refused",
				CertFile: certFile, KeyFile: keyFile, CAFile: tc.agentTrusts.File(t, dir),
				DTLSHandshakeTimeout: 2 * time.Second, DTLSRetryDelay: 200 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
			defer rcancel()
			if err := a.Run(rctx); err != nil {
				t.Fatalf("Run = %v; a refused handshake is retried until the context ends", err)
			}
			var failures []string
			for ev := range a.Events() {
				switch ev.Kind {
				case agent.EventRegistered:
					t.Fatalf("registered: %+v", ev)
				case agent.EventRegistrationFailed:
					if !strings.Contains(ev.Err, "dtls handshake") {
						t.Errorf("failure %q is not the handshake's", ev.Err)
					}
					failures = append(failures, ev.Err)
				}
			}
			// A refusal says why. (pion's server now and then answers a
			// ClientHello with a decode_error alert instead, under load:
			// that attempt fails too, and a retry gets the real answer.)
			said := false
			for _, f := range failures {
				said = said || strings.Contains(f, tc.why)
			}
			if !said {
				t.Errorf("failures %q, want one saying %q", failures, tc.why)
			}
			if len(srv.Clients()) != 0 {
				t.Errorf("clients = %+v, want none", srv.Clients())
			}
		})
	}
}

// TestConfigCertificates: certificate mode needs its three files, each
// readable and holding what it should; a PSK alone still works.
func TestConfigCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := agenttest.NewCA(t, "cfg-ca")
	_, certFile, keyFile := ca.Issue(t, dir, "cfg")
	caFile := ca.File(t, dir)
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("no certificate here\n"), 0o600)
	base := agent.Config{ServerURI: "coaps://127.0.0.1:5684", Endpoint: "cfg"}
	for _, tc := range []struct {
		name               string
		cert, key, caFile  string
		psk                bool
		wantErr, errSubstr string
	}{
		{name: "all three", cert: certFile, key: keyFile, caFile: caFile},
		{name: "psk only", psk: true},
		{name: "nothing", wantErr: "yes", errSubstr: "coaps needs"},
		{name: "no CA", cert: certFile, key: keyFile, wantErr: "yes", errSubstr: "together"},
		{name: "no key", cert: certFile, caFile: caFile, wantErr: "yes", errSubstr: "together"},
		{name: "missing cert file", cert: filepath.Join(dir, "nope.crt"), key: keyFile, caFile: caFile, wantErr: "yes", errSubstr: agent.EnvCertFile},
		{name: "CA file without a certificate", cert: certFile, key: keyFile, caFile: empty, wantErr: "yes", errSubstr: agent.EnvCAFile},
		{name: "key for another certificate", cert: certFile, key: func() string { _, _, k := ca.Issue(t, dir, "other"); return k }(), caFile: caFile, wantErr: "yes", errSubstr: agent.EnvKeyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.CertFile, c.KeyFile, c.CAFile = tc.cert, tc.key, tc.caFile
			if tc.psk {
				c.PSKIdentity, c.PSKKey = "id", []byte{1, 2, 3}
			}
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, agent.ErrConfig) || !strings.Contains(err.Error(), tc.errSubstr) {
				t.Fatalf("Validate = %v, want an ErrConfig mentioning %q", err, tc.errSubstr)
			}
		})
	}
}

// TestConfigCertificatePEM: the certificate as PEM bytes (CertPEM,
// KeyPEM, CAPEM: avc.wasm's cert_pem, key_pem, ca_pem) is checked as the
// files are, and wins over them.
func TestConfigCertificatePEM(t *testing.T) {
	dir := t.TempDir()
	ca := agenttest.NewCA(t, "pem-ca")
	_, certFile, keyFile := ca.Issue(t, dir, "pem")
	read := func(name string) []byte {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certPEM, keyPEM, caPEM := read(certFile), read(keyFile), read(ca.File(t, dir))
	_, _, otherKey := ca.Issue(t, dir, "other")
	for _, tc := range []struct {
		name           string
		cert, key, cas []byte
		files          bool // also name files that do not exist
		errSubstr      string
	}{
		{name: "all three", cert: certPEM, key: keyPEM, cas: caPEM},
		{name: "PEM wins over files", cert: certPEM, key: keyPEM, cas: caPEM, files: true},
		{name: "no CA", cert: certPEM, key: keyPEM, errSubstr: "together"},
		{name: "CA without a certificate", cert: certPEM, key: keyPEM, cas: []byte("junk"), errSubstr: agent.EnvCAFile},
		{name: "key for another certificate", cert: certPEM, key: read(otherKey), cas: caPEM, errSubstr: agent.EnvKeyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := agent.Config{ServerURI: "coaps://127.0.0.1:5684", Endpoint: "pem", CertPEM: tc.cert, KeyPEM: tc.key, CAPEM: tc.cas}
			if tc.files {
				c.CertFile, c.KeyFile, c.CAFile = filepath.Join(dir, "no.crt"), filepath.Join(dir, "no.key"), filepath.Join(dir, "no.pem")
			}
			err := c.Validate()
			switch {
			case tc.errSubstr == "" && err != nil:
				t.Fatalf("Validate = %v", err)
			case tc.errSubstr != "" && (!errors.Is(err, agent.ErrConfig) || !strings.Contains(err.Error(), tc.errSubstr)):
				t.Fatalf("Validate = %v, want an ErrConfig mentioning %q", err, tc.errSubstr)
			}
		})
	}
}

// clientHelloSNI returns the server_name of the DTLS ClientHello in b and
// whether it has the extension (RFC 6066 §3), or an error when b is not
// an unfragmented ClientHello record.
func clientHelloSNI(b []byte) (string, bool, error) {
	bad := errors.New("not a ClientHello record")
	// Record header (13) then handshake header (12).
	if len(b) < 25 || b[0] != 22 || b[13] != 1 {
		return "", false, bad
	}
	p := b[25:]
	next := func(n int) ([]byte, error) {
		if len(p) < n {
			return nil, bad
		}
		v := p[:n]
		p = p[n:]
		return v, nil
	}
	vec := func(lenBytes int) ([]byte, error) {
		l, err := next(lenBytes)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, c := range l {
			n = n<<8 | int(c)
		}
		return next(n)
	}
	if _, err := next(2 + 32); err != nil { // version, random
		return "", false, err
	}
	for _, lb := range []int{1, 1, 2, 1} { // session id, cookie, suites, compression
		if _, err := vec(lb); err != nil {
			return "", false, err
		}
	}
	exts, err := vec(2)
	if err != nil {
		return "", false, err
	}
	for len(exts) >= 4 {
		typ, n := int(exts[0])<<8|int(exts[1]), int(exts[2])<<8|int(exts[3])
		if len(exts) < 4+n {
			return "", false, bad
		}
		data := exts[4 : 4+n]
		exts = exts[4+n:]
		if typ != 0 {
			continue
		}
		// server_name_list: list length (2), type (1), name length (2), name.
		if len(data) < 5 {
			return "", false, bad
		}
		return string(data[5:]), true, nil
	}
	return "", false, nil
}

// TestDTLSServerNameIndication: the agent never sends an IP literal as
// SNI (RFC 6066 §3), and sends none with a PSK; with a certificate and a
// DNS name it names the server. A fake server takes the first ClientHello
// and answers nothing.
func TestDTLSServerNameIndication(t *testing.T) {
	dir := t.TempDir()
	ca := agenttest.NewCA(t, "sni-ca")
	_, certFile, keyFile := ca.Issue(t, dir, "sni-client")
	caFile := ca.File(t, dir)
	for _, tc := range []struct {
		name    string
		host    string
		cert    bool
		wantSNI string // "" for none
	}{
		{"psk, IP literal", "127.0.0.1", false, ""},
		{"psk, DNS name", "localhost", false, ""},
		{"certificate, IP literal", "127.0.0.1", true, ""},
		{"certificate, DNS name", "localhost", true, "localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The fake server listens where the agent will send: the
			// address its name resolves to first.
			addr, err := net.ResolveUDPAddr("udp", net.JoinHostPort(tc.host, "0"))
			if err != nil {
				t.Fatal(err)
			}
			pc, err := net.ListenUDP("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			port := pc.LocalAddr().(*net.UDPAddr).Port
			cfg := agent.Config{ServerURI: "coaps://" + net.JoinHostPort(tc.host, strconv.Itoa(port)), Endpoint: "sni",
				DTLSHandshakeTimeout: time.Second, DTLSRetryDelay: time.Hour}
			if tc.cert {
				cfg.CertFile, cfg.KeyFile, cfg.CAFile = certFile, keyFile, caFile
			} else {
				cfg.PSKIdentity, cfg.PSKKey = "sni", []byte{1, 2, 3, 4}
			}
			a, err := agent.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			go func() {
				for range a.Events() {
				}
			}()
			defer func() { cancel(); <-done }()
			buf := make([]byte, 2048)
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := pc.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("no ClientHello: %v", err)
			}
			sni, has, err := clientHelloSNI(buf[:n])
			if err != nil {
				t.Fatalf("%v: % x", err, buf[:min(n, 64)])
			}
			switch {
			case tc.wantSNI == "" && has:
				t.Errorf("SNI %q sent, want none", sni)
			case tc.wantSNI != "" && sni != tc.wantSNI:
				t.Errorf("SNI %q (present %v), want %q", sni, has, tc.wantSNI)
			}
		})
	}
}
