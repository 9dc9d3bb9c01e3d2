package server_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

func TestCodeError(t *testing.T) {
	tests := []struct {
		name string
		err  *server.CodeError
		want string
	}{
		{"not found", &server.CodeError{Op: "read", Path: lwm2m.P(3, 0, 9), Code: codes.NotFound}, "server: read /3/0/9: 4.04 NotFound"},
		{"method not allowed", &server.CodeError{Op: "write", Path: lwm2m.P(3, 0, 0), Code: codes.MethodNotAllowed}, "server: write /3/0/0: 4.05 MethodNotAllowed"},
		{"internal error", &server.CodeError{Op: "execute", Path: lwm2m.P(3, 0, 4), Code: codes.InternalServerError}, "server: execute /3/0/4: 5.00 InternalServerError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			var ce *server.CodeError
			if !errors.As(fmt.Errorf("wrapped: %w", tt.err), &ce) || ce.Code != tt.err.Code {
				t.Error("errors.As does not find the CodeError")
			}
		})
	}
}
