package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent/agenttest"
)

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"demo"}, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\n%s%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{
		"avc-demo registered",
		"Read /3/0 -> 2.05",
		"/3/0/0     Manufacturer",
		"lifetime now 2m0s",
		"de-registered",
		"demo:   done",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		want    string
	}{
		{name: "version", args: []string{"version"}, want: "avc "},
		{name: "help", args: []string{"help"}, want: "usage: avc"},
		{name: "no command", args: nil, wantErr: true},
		{name: "unknown command", args: []string{"fly"}, wantErr: true},
		{name: "run without a server", args: []string{"run", "-endpoint", "x"}, wantErr: true},
		{name: "run with a bad flag value", args: []string{"run", "-lifetime", "soon"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AVC_SERVER_URI", "")
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errOut)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output %q lacks %q", out.String(), tt.want)
			}
		})
	}
}

// TestServerBootstrapFlags: `avc server -bootstrap file` reads the
// bootstrap configurations, refusing a file that is missing or invalid,
// and -psk takes identity=hexkey.
func TestServerBootstrapFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(`{"*":{"server_uri":"coap://127.0.0.1:5683","lifetime":300}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"*":{"server_uri":"coaps://127.0.0.1"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"good file", []string{"-bootstrap", good}, ""},
		{"good file and coaps", []string{"-bootstrap", good, "-coaps", "127.0.0.1:0", "-psk", "dev=a1b2"}, ""},
		{"missing file", []string{"-bootstrap", filepath.Join(dir, "none.json")}, "no such file"},
		{"psk without key", []string{"-bootstrap", bad}, "psk"},
		{"bad psk flag", []string{"-psk", "dev"}, "identity=hexkey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // serve nothing: start, then close
			args := append([]string{"-coap", "127.0.0.1:0", "-http", "", "-log-level", "error"}, tt.args...)
			err := serverMain(ctx, args)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("serverMain(%q) = %v", args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("serverMain(%q) = %v, want an error with %q", args, err, tt.wantErr)
			}
		})
	}
}

// TestServerCertFlags: -cert, -key and -client-ca start a coaps listener
// with certificates; they go together and must hold what they say.
func TestServerCertFlags(t *testing.T) {
	dir := t.TempDir()
	ca := agenttest.NewCA(t, "cli-ca")
	_, cert, key := ca.Issue(t, dir, "cli-server")
	caFile := ca.File(t, dir)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"all three", []string{"-cert", cert, "-key", key, "-client-ca", caFile}, ""},
		{"with a psk too", []string{"-cert", cert, "-key", key, "-client-ca", caFile, "-psk", "dev=a1b2"}, ""},
		{"no client CA", []string{"-cert", cert, "-key", key}, "go together"},
		{"key is not a key", []string{"-cert", cert, "-key", caFile, "-client-ca", caFile}, "-cert/-key"},
		{"client CA without a certificate", []string{"-cert", cert, "-key", key, "-client-ca", key}, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			args := append([]string{"-coap", "127.0.0.1:0", "-coaps", "127.0.0.1:0", "-http", "", "-log-level", "error"}, tt.args...)
			err := serverMain(ctx, args)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("serverMain(%q) = %v", args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("serverMain(%q) = %v, want an error with %q", args, err, tt.wantErr)
			}
		})
	}
}
