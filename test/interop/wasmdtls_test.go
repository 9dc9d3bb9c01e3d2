//go:build integration

package interop_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/wasm/host"
)

// loadWasm returns avc.wasm: $AVC_WASM (make exports it), else built from
// ./wasm into a temporary directory.
func loadWasm(t *testing.T) []byte {
	t.Helper()
	path := os.Getenv("AVC_WASM")
	if _, err := os.Stat(path); path == "" || err != nil {
		path = filepath.Join(t.TempDir(), "avc.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-ldflags=-s -w", "-o", path, "github.com/avc-agent/avc/wasm")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build avc.wasm: %v\n%s", err, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWasmRegisterCoapsToLibcoapRD: avc.wasm in wazero registers over
// DTLS-PSK (the DTLS inside the module, OpenSSL on the other side) to
// libcoap's resource directory coap-rd-openssl, which takes LwM2M
// registrations (with -k it listens for coaps on port+1).
func TestWasmRegisterCoapsToLibcoapRD(t *testing.T) {
	rd, err := exec.LookPath("coap-rd-openssl")
	if err != nil {
		t.Fatalf("coap-rd-openssl is not installed (%v); run `make deps`", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port := freeUDPPort(t)
	const key = "secretPSK"
	cmd := exec.CommandContext(ctx, rd, "-A", "127.0.0.1", "-p", strconv.Itoa(port), "-k", key, "-h", "CoAP", "-v", "6")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	rt, err := host.NewRuntime(ctx, loadWasm(t), host.WithInterpreter())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	cfg := map[string]string{
		agent.EnvServerURI:   "coaps://127.0.0.1:" + strconv.Itoa(port+1),
		agent.EnvEndpoint:    "wasm-coap-rd",
		agent.EnvLifetime:    "300",
		agent.EnvPSKIdentity: "CoAP-client",
		agent.EnvPSKKey:      hex.EncodeToString([]byte(key)),
		// coap-rd may not listen yet when the first handshake starts.
		"dtls_handshake_timeout_ms": "2000",
		"dtls_retry_delay_ms":       "200",
	}
	a, err := host.New(ctx, nil, cfg, host.WithRuntime(rt))
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	var reg agent.Event
	for ev := range a.Events() {
		if ev.Kind == agent.EventRegistered {
			reg = ev
			break
		}
		if ev.Kind == agent.EventRegistrationFailed && !strings.Contains(ev.Err, "dtls handshake") {
			t.Fatalf("registration failed: %+v\n%s", ev, out.String())
		}
		if ctx.Err() != nil {
			t.Fatalf("no registration: %v\n%s", ctx.Err(), out.String())
		}
	}
	if !strings.HasPrefix(reg.Location, "/rd/") {
		t.Errorf("registered at %q, want a location under /rd", reg.Location)
	}
	// coap-rd 4.3.1 answers an Update with 4.05 and dies of a double
	// free on a De-register (libcoap's own coap-client does the same to
	// it), so the test ends here: the agent's de-registration goes
	// unanswered and Run gives up after its 10 s.
	cmd.Process.Kill()
	stop()
	for range a.Events() {
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
