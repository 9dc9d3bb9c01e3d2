package agent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

func TestReadResource(t *testing.T) {
	s := registered(t, agent.Config{Endpoint: "read-1", Lifetime: 300 * time.Second, Device: agent.DeviceInfo{Manufacturer: "Acme"}})
	for _, tc := range []struct {
		path lwm2m.Path
		want string
		err  bool
	}{
		{path: lwm2m.P(3, 0, 0), want: "Acme"},
		{path: lwm2m.P(1, 0, 1), want: "300"},
		{path: lwm2m.P(1, 0, 6), want: "1"},
		{path: lwm2m.P(3, 0, 7, 0), want: "5000"},
		{path: lwm2m.P(3, 0, 7), err: true},     // a multiple resource as a whole
		{path: lwm2m.P(3, 0), err: true},        // an instance
		{path: lwm2m.P(0, 0, 5), err: true},     // the secret key
		{path: lwm2m.P(3, 0, 99), err: true},    // no such resource
		{path: lwm2m.P(3, 0, 7, 42), err: true}, // no such instance
	} {
		got, err := s.Engine.ReadResource(s.Now, tc.path)
		switch {
		case tc.err && !errors.Is(err, agent.ErrBadValue):
			t.Errorf("ReadResource(%s) = %q, %v; want ErrBadValue", tc.path, got, err)
		case !tc.err && (err != nil || got != tc.want):
			t.Errorf("ReadResource(%s) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}
