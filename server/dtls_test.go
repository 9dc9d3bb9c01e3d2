package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/avc-agent/avc/server"
)

func TestCoAPSConfig(t *testing.T) {
	ctx := context.Background()

	s := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if s.CoAPSAddr() != nil {
		t.Errorf("CoAPSAddr = %v without Config.CoAPSAddr", s.CoAPSAddr())
	}
	s.Close()

	s = server.New(server.Config{CoAPAddr: "127.0.0.1:0", CoAPSAddr: "127.0.0.1:0"})
	if err := s.Start(ctx); err == nil || !strings.Contains(err.Error(), "PSK") {
		t.Errorf("Start without PSK = %v, want an error", err)
	}
	s.Close()

	s = server.New(server.Config{CoAPAddr: "127.0.0.1:0", CoAPSAddr: "127.0.0.1:0", PSK: func([]byte) ([]byte, error) { return []byte("k"), nil }})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if s.CoAPSAddr() == nil || s.CoAPSAddr().String() == s.CoAPAddr().String() {
		t.Errorf("CoAPSAddr = %v, CoAPAddr = %v", s.CoAPSAddr(), s.CoAPAddr())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
