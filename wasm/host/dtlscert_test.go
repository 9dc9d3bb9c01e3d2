package host

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestAgentDTLSCertificate: avc.wasm in wazero registers over coaps with
// X.509 certificates (Security mode 2, the host reading AVC_CERT_FILE,
// AVC_KEY_FILE and AVC_CA_FILE and passing the PEM to the module), the
// server reads /3/0 through the session, and the agent de-registers.
func TestAgentDTLSCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca := agenttest.NewCA(t, "wasm-ca")
	srv := agenttest.CertServer(t, ctx, ca, ca, net.IPv4(127, 0, 0, 1))
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()
	dir := t.TempDir()
	_, certFile, keyFile := ca.Issue(t, dir, "wasm-cert")
	cfg := map[string]string{
		agent.EnvServerURI: "coaps://" + srv.CoAPSAddr().String(),
		agent.EnvEndpoint:  "wasm-cert",
		agent.EnvLifetime:  "300",
		agent.EnvCertFile:  certFile,
		agent.EnvKeyFile:   keyFile,
		agent.EnvCAFile:    ca.File(t, dir),
	}
	a, err := New(ctx, nil, cfg, WithRuntime(testRT))
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	evs := a.Events()
	if ev := nextEvent(t, evs, agent.EventRegistered, agent.EventRegistrationFailed); ev.Kind != agent.EventRegistered {
		t.Fatalf("first event %+v, want registered", ev)
	}
	if _, err := server.WaitEvent(ctx, events, "wasm-cert", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Read(ctx, "wasm-cert", lwm2m.P(3, 0), lwm2m.FormatTLV)
	if err != nil || resp.Code != codes.Content || len(resp.Records) == 0 {
		t.Fatalf("read /3/0 = %v, %v", resp, err)
	}
	stop()
	nextEvent(t, evs, agent.EventDeregistered)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAgentDTLSCertificateRefused: avc.wasm refuses a server whose
// certificate does not chain to its trust anchors, or does not name the
// server's address, as the native agent does: each attempt is a failed
// registration, nothing registers.
func TestAgentDTLSCertificateRefused(t *testing.T) {
	trusted, other := agenttest.NewCA(t, "trusted-ca"), agenttest.NewCA(t, "other-ca")
	for _, tc := range []struct {
		name     string
		serverCA *agenttest.CA
		serverIP net.IP
		why      string
	}{
		{"untrusted server certificate", other, net.IPv4(127, 0, 0, 1), "unknown authority"},
		{"server certificate for another address", trusted, net.IPv4(10, 9, 8, 7), "not 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			srv := agenttest.CertServer(t, ctx, tc.serverCA, trusted, tc.serverIP)
			dir := t.TempDir()
			_, certFile, keyFile := trusted.Issue(t, dir, "refused")
			a, err := New(ctx, nil, map[string]string{
				agent.EnvServerURI: "coaps://" + srv.CoAPSAddr().String(),
				agent.EnvEndpoint:  "refused",
				agent.EnvCertFile:  certFile,
				agent.EnvKeyFile:   keyFile,
				agent.EnvCAFile:    trusted.File(t, dir),
			}, WithRuntime(testRT))
			if err != nil {
				t.Fatal(err)
			}
			actx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- a.Run(actx) }()
			defer func() { stop(); <-done }()
			ev := nextEvent(t, a.Events(), agent.EventRegistered, agent.EventRegistrationFailed)
			if ev.Kind != agent.EventRegistrationFailed || !strings.Contains(ev.Err, tc.why) {
				t.Errorf("first event %s %q, want registration_failed saying %q", ev.Kind, ev.Err, tc.why)
			}
			if len(srv.Clients()) != 0 {
				t.Errorf("clients = %+v, want none", srv.Clients())
			}
		})
	}
}

// TestCertificateFilesInModule: the module itself reads no files: the
// certificate file names given to avc_init directly are refused with a
// configuration error saying what to pass instead, and a host given a
// missing file fails with agent.ErrConfig.
func TestCertificateFilesInModule(t *testing.T) {
	ctx := context.Background()
	m, err := testRT.Instantiate(ctx, Imports{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	err = m.InitJSON([]byte(`{"AVC_SERVER_URI":"coaps://127.0.0.1:5684","AVC_ENDPOINT":"f","AVC_CERT_FILE":"/c.pem","AVC_KEY_FILE":"/k.pem","AVC_CA_FILE":"/ca.pem"}`), nil)
	if err == nil || !strings.Contains(err.Error(), "cert_pem") {
		t.Errorf("init with file names = %v, want a refusal naming cert_pem", err)
	}
	_, err = New(ctx, nil, map[string]string{
		agent.EnvServerURI: "coaps://127.0.0.1:5684", agent.EnvEndpoint: "f",
		agent.EnvCertFile: "/nonexistent.pem", agent.EnvKeyFile: "/nonexistent.key", agent.EnvCAFile: "/nonexistent-ca.pem",
	}, WithRuntime(testRT))
	if !errors.Is(err, agent.ErrConfig) {
		t.Errorf("New with a missing certificate file = %v, want agent.ErrConfig", err)
	}
}
