package agent_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/avc-agent/avc/agent"
)

// TestServerURIsPSKSyntax: AVC_SERVER_URIS carries a PSK per server
// (";psk_id=...;psk_key=HEX"); bad or incomplete credentials are refused
// by Set or Validate, and neither an error nor Get ever shows a key.
func TestServerURIsPSKSyntax(t *testing.T) {
	const secret = "00112233445566778899aabbccddeeff"
	for _, tt := range []struct {
		name, value string
		setErr      bool   // Set refuses the value
		valErr      bool   // Validate refuses the configuration
		id          string // the first further server's identity
		key         string // and key, hex
		get         string // Get's answer, when Set took the value
	}{
		{name: "psk", value: "coaps://b;ssid=2;psk_id=dev-b;psk_key=" + secret, id: "dev-b", key: secret,
			get: "coaps://b;ssid=2;psk_id=dev-b;psk_key=(set)"},
		{name: "psk first", value: "coaps://b:6000;psk_key=" + secret + ";psk_id=x", id: "x", key: secret,
			get: "coaps://b:6000;psk_id=x;psk_key=(set)"},
		{name: "mixed", value: "coap://c;ssid=3, coaps://b;psk_id=dev-b;psk_key=0a0b", get: "coap://c;ssid=3,coaps://b;psk_id=dev-b;psk_key=(set)"},
		{name: "bad hex", value: "coaps://b;psk_id=i;psk_key=zz" + secret, setErr: true},
		{name: "odd hex", value: "coaps://b;psk_id=i;psk_key=abc", setErr: true},
		{name: "empty key", value: "coaps://b;psk_id=i;psk_key=", setErr: true},
		{name: "empty identity", value: "coaps://b;psk_id=;psk_key=" + secret, setErr: true},
		{name: "unknown parameter", value: "coaps://b;psk=" + secret, setErr: true},
		{name: "no equals", value: "coaps://b;psk_key" + secret, setErr: true},
		{name: "missing key", value: "coaps://b;psk_id=i", valErr: true},
		{name: "missing identity", value: "coaps://b;psk_key=" + secret, valErr: true},
		{name: "no credential", value: "coaps://b", valErr: true},
		{name: "psk on coap", value: "coap://b;psk_id=i;psk_key=" + secret, valErr: true},
		{name: "certificate on coap", value: "coap://b;ca=/nowhere/ca.pem", valErr: true},
		{name: "psk and certificate", value: "coaps://b;psk_id=i;psk_key=" + secret + ";ca=/nowhere/ca.pem", valErr: true},
		{name: "certificate without a key", value: "coaps://b;cert=/nowhere/c.pem;ca=/nowhere/ca.pem", valErr: true},
		{name: "certificate files missing", value: "coaps://b;cert=/nowhere/c.pem;key=/nowhere/k.pem;ca=/nowhere/ca.pem", valErr: true},
		{name: "empty file name", value: "coaps://b;ca=", setErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := agent.Config{ServerURI: "coap://a", Endpoint: "e"}
			err := c.Set(agent.EnvServerURIs, tt.value)
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("set error shows the key: %v", err)
			}
			if tt.setErr {
				if !errors.Is(err, agent.ErrConfig) {
					t.Fatalf("set = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("set: %v", err)
			}
			err = c.Validate()
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("validate error shows the key: %v", err)
			}
			if tt.valErr {
				if !errors.Is(err, agent.ErrConfig) {
					t.Fatalf("validate = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if tt.id != "" {
				a := c.Servers[0]
				if a.PSKIdentity != tt.id || !bytes.Equal(a.PSKKey, mustHex(t, tt.key)) {
					t.Errorf("server = %q %x, want %q %s", a.PSKIdentity, a.PSKKey, tt.id, tt.key)
				}
			}
			if got, _ := c.Get(agent.EnvServerURIs); got != tt.get {
				t.Errorf("get = %q, want %q", got, tt.get)
			}
		})
	}
}

// TestServerURIsCoapsNeedsNativeDriver: an engine whose driver cannot
// open a DTLS session per server (no driver, or one carrying a single
// session, Config.CarryDTLS) refuses several servers when one is coaps,
// rather than talk plaintext to it.
func TestServerURIsCoapsNeedsNativeDriver(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   agent.Config
		carry bool
	}{
		{"coaps further server", agent.Config{ServerURI: "coap://a", Servers: []agent.ServerAccount{{URI: "coaps://b", PSKIdentity: "i", PSKKey: []byte{1}}}}, false},
		{"coaps first server", agent.Config{ServerURI: "coaps://a", PSKIdentity: "i", PSKKey: []byte{1}, Servers: []agent.ServerAccount{{URI: "coap://b"}}}, true},
		{"coaps further server, carried", agent.Config{ServerURI: "coap://a", Servers: []agent.ServerAccount{{URI: "coaps://b", PSKIdentity: "i", PSKKey: []byte{1}}}}, true},
	} {
		tt.cfg.Endpoint = "e"
		if tt.carry {
			tt.cfg.CarryDTLS()
		}
		if err := tt.cfg.Validate(); err != nil {
			t.Errorf("%s: validate: %v", tt.name, err)
		}
		if _, err := agent.NewEngine(tt.cfg, nil); !errors.Is(err, agent.ErrConfig) {
			t.Errorf("%s: NewEngine = %v, want ErrConfig", tt.name, err)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
