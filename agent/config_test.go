package agent_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
)

func TestConfigSet(t *testing.T) {
	tests := []struct {
		name, key, value string
		check            func(agent.Config) bool
		wantErr          bool
	}{
		{name: "server uri", key: agent.EnvServerURI, value: "coap://h:1", check: func(c agent.Config) bool { return c.ServerURI == "coap://h:1" }},
		{name: "lifetime", key: agent.EnvLifetime, value: " 60 ", check: func(c agent.Config) bool { return c.Lifetime == time.Minute }},
		{name: "zero lifetime", key: agent.EnvLifetime, value: "0", wantErr: true},
		{name: "negative lifetime", key: agent.EnvLifetime, value: "-5", wantErr: true},
		{name: "huge lifetime", key: agent.EnvLifetime, value: "4294967296", wantErr: true},
		{name: "log level", key: agent.EnvLogLevel, value: "debug", check: func(c agent.Config) bool { return c.LogLevel == slog.LevelDebug }},
		{name: "bad log level", key: agent.EnvLogLevel, value: "loud", wantErr: true},
		{name: "psk key hex", key: agent.EnvPSKKey, value: "00ff", check: func(c agent.Config) bool { return len(c.PSKKey) == 2 && c.PSKKey[1] == 0xff }},
		{name: "psk key not hex", key: agent.EnvPSKKey, value: "zz", wantErr: true},
		{name: "unknown name", key: "AVC_NOPE", value: "1", wantErr: true},
		{name: "fw connect timeout", key: agent.EnvFWConnect, value: "30", check: func(c agent.Config) bool {
			return c.Firmware.ConnectTimeout == 30*time.Second && c.Software.ConnectTimeout == 30*time.Second
		}},
		{name: "fw connect timeout zero", key: agent.EnvFWConnect, value: "0", wantErr: true},
		{name: "fw low speed", key: agent.EnvFWLowSpeed, value: "50, 600", check: func(c agent.Config) bool {
			return c.Firmware.LowSpeedLimit == 50 && c.Firmware.LowSpeedTime == 10*time.Minute && c.Software.LowSpeedLimit == 50
		}},
		{name: "fw low speed one number", key: agent.EnvFWLowSpeed, value: "50", wantErr: true},
		{name: "fw low speed zero", key: agent.EnvFWLowSpeed, value: "0,10", wantErr: true},
		{name: "fw coap nstart", key: agent.EnvFWNStart, value: " 4", check: func(c agent.Config) bool {
			return c.Firmware.NStart == 4 && c.Software.NStart == 4
		}},
		{name: "fw coap nstart zero", key: agent.EnvFWNStart, value: "0", wantErr: true},
		{name: "fw coap nstart too many", key: agent.EnvFWNStart, value: "17", wantErr: true},
		{name: "fw coap nstart not a number", key: agent.EnvFWNStart, value: "four", wantErr: true},
		{name: "fw psk key hex", key: agent.EnvFWPSKKey, value: "0a0b", check: func(c agent.Config) bool { return len(c.FirmwarePSKKey) == 2 }},
		{name: "fw psk key not hex", key: agent.EnvFWPSKKey, value: "xyz", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c agent.Config
			err := c.Set(tt.key, tt.value)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set(%s, %q) = %v, want error %v", tt.key, tt.value, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, agent.ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("Set(%s, %q) gave %+v", tt.key, tt.value, c)
			}
		})
	}
}

func TestConfigGetNeverReturnsSecrets(t *testing.T) {
	var c agent.Config
	if err := c.Set(agent.EnvPSKKey, "a1b2"); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get(agent.EnvPSKKey); strings.Contains(v, "a1b2") {
		t.Errorf("Get returned the key: %q", v)
	}
	if err := c.Set(agent.EnvFWPSKKey, "c3d4"); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get(agent.EnvFWPSKKey); strings.Contains(v, "c3d4") {
		t.Errorf("Get returned the firmware key: %q", v)
	}
	if v, _ := c.Get(agent.EnvFWLowSpeed); v != "100,1000" {
		t.Errorf("Get(%s) = %q, want the defaults 100,1000", agent.EnvFWLowSpeed, v)
	}
	for _, name := range agent.ConfigNames {
		if _, err := c.Get(name); err != nil {
			t.Errorf("Get(%s): %v", name, err)
		}
	}
}

func TestConfigValidateJoinsProblems(t *testing.T) {
	tests := []struct {
		name string
		cfg  agent.Config
		want []string
	}{
		{"empty", agent.Config{}, []string{"AVC_SERVER_URI is required", "AVC_ENDPOINT is required"}},
		{"bad scheme", agent.Config{ServerURI: "http://x", Endpoint: "e"}, []string{"want coap://"}},
		{"coaps not yet", agent.Config{ServerURI: "coaps://x", Endpoint: "e"}, []string{"coaps"}},
		{"bad port", agent.Config{ServerURI: "coap://x:99999", Endpoint: "e"}, []string{"bad port"}},
		{"endpoint with query chars", agent.Config{ServerURI: "coap://x", Endpoint: "a&b"}, []string{"AVC_ENDPOINT"}},
		{"fractional lifetime", agent.Config{ServerURI: "coap://x", Endpoint: "e", Lifetime: 1500 * time.Millisecond}, []string{"whole seconds"}},
		{"binding", agent.Config{ServerURI: "coap://x", Endpoint: "e", Binding: "T"}, []string{"binding"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := agent.NewEngine(tt.cfg, nil); err == nil {
				t.Error("NewEngine accepted an invalid config")
			}
		})
	}
}

func TestConfigApply(t *testing.T) {
	env := map[string]string{agent.EnvServerURI: "coap://[::1]:5683", agent.EnvEndpoint: "x", agent.EnvLifetime: "bad"}
	var c agent.Config
	err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), agent.EnvLifetime) {
		t.Fatalf("ApplyEnv error = %v, want one about %s", err, agent.EnvLifetime)
	}
	if c.ServerURI != "coap://[::1]:5683" || c.Endpoint != "x" {
		t.Errorf("good values not applied: %+v", c)
	}
	var m agent.Config
	if err := m.ApplyMap(map[string]string{"AVC_BOGUS": "1"}); err == nil {
		t.Error("ApplyMap accepted an unknown name")
	}
}

func TestServerPeer(t *testing.T) {
	tests := []struct {
		uri, want string
		wantErr   bool
	}{
		{uri: "coap://127.0.0.1", want: "127.0.0.1:5683"},
		{uri: "coap://example.com:5684", want: "example.com:5684"},
		{uri: "coap://[::1]:9000", want: "[::1]:9000"},
		{uri: "http://x", wantErr: true},
		{uri: "coap://:5683", wantErr: true},
	}
	for _, tt := range tests {
		got, err := agent.ServerPeer(tt.uri)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ServerPeer(%q) = %q, %v; want %q (error %v)", tt.uri, got, err, tt.want, tt.wantErr)
		}
	}
}
