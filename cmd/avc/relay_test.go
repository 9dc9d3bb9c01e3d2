package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRelayFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no route", nil},
		{"route without port", []string{"-route", "/coap=127.0.0.1"}},
		{"relative path", []string{"-route", "coap=127.0.0.1:5683"}},
		{"path twice", []string{"-route", "/a=127.0.0.1:5683", "-route", "/a=127.0.0.1:5684"}},
		{"datagram too big", []string{"-route", "127.0.0.1:5683", "-max-datagram", "70000"}},
		{"extra argument", []string{"-route", "127.0.0.1:5683", "now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), append([]string{"relay"}, tt.args...), &out, &errOut); err == nil {
				t.Fatalf("relay %q: no error", tt.args)
			}
		})
	}
}

// TestRelayServes starts `avc relay` with two routes: each path is a
// WebSocket endpoint (a plain GET is told to upgrade), other paths are not
// found, and the relay stops with its context.
func TestRelayServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"relay", "-listen", "127.0.0.1:0", "-log-level", "error",
			"-route", "/coap=127.0.0.1:5683", "-route", "/coaps=127.0.0.1:5684"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("relay printed nothing")
	}
	addr, ok := strings.CutPrefix(sc.Text(), "relay: listening on ws://")
	if !ok {
		t.Fatalf("first line %q", sc.Text())
	}
	go io.Copy(io.Discard, pr)
	for path, want := range map[string]int{"/coap": http.StatusUpgradeRequired, "/coaps": http.StatusUpgradeRequired, "/other": http.StatusNotFound} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("relay: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not stop")
	}
}
