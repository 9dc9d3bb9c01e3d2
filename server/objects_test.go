package server_test

import (
	"testing"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

func TestTypeOf(t *testing.T) {
	tests := []struct {
		name string
		path lwm2m.Path
		want lwm2m.Type
	}{
		{"security server uri", lwm2m.P(0, 0, 0), lwm2m.TypeString},
		{"security bootstrap flag", lwm2m.P(0, 1, 1), lwm2m.TypeBoolean},
		{"security secret key", lwm2m.P(0, 0, 5), lwm2m.TypeOpaque},
		{"server lifetime", lwm2m.P(1, 0, 1), lwm2m.TypeInteger},
		{"server notification storing", lwm2m.P(1, 0, 6), lwm2m.TypeBoolean},
		{"server binding", lwm2m.P(1, 0, 7), lwm2m.TypeString},
		{"server update trigger", lwm2m.P(1, 0, 8), lwm2m.TypeNone},
		{"device manufacturer", lwm2m.P(3, 0, 0), lwm2m.TypeString},
		{"device reboot", lwm2m.P(3, 0, 4), lwm2m.TypeNone},
		{"device power source instance", lwm2m.P(3, 0, 6, 1), lwm2m.TypeInteger},
		{"device current time", lwm2m.P(3, 0, 13), lwm2m.TypeTime},
		{"device memory total", lwm2m.P(3, 0, 21), lwm2m.TypeInteger},
		{"unknown resource", lwm2m.P(3, 0, 99), lwm2m.TypeNone},
		{"firmware package", lwm2m.P(5, 0, 0), lwm2m.TypeOpaque},
		{"firmware package uri", lwm2m.P(5, 0, 1), lwm2m.TypeString},
		{"firmware update", lwm2m.P(5, 0, 2), lwm2m.TypeNone},
		{"firmware state", lwm2m.P(5, 0, 3), lwm2m.TypeInteger},
		{"firmware update result", lwm2m.P(5, 0, 5), lwm2m.TypeInteger},
		{"unknown object", lwm2m.P(7, 0, 1), lwm2m.TypeNone},
		{"instance", lwm2m.P(3, 0), lwm2m.TypeNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := server.TypeOf(tt.path); got != tt.want {
				t.Errorf("TypeOf(%s) = %s, want %s", tt.path, got, tt.want)
			}
		})
	}
}
