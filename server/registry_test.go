package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/server"
)

func TestRegisterResponses(t *testing.T) {
	tests := []struct {
		name    string
		links   string
		queries []string
		want    codes.Code
	}{
		{"ok", defaultLinks, []string{"ep=dev1", "lt=300", "lwm2m=1.1", "b=U"}, codes.Created},
		{"defaults", defaultLinks, []string{"ep=dev1"}, codes.Created},
		{"queue mode", defaultLinks, []string{"ep=dev1", "lwm2m=1.1", "b=U", "Q"}, codes.Created},
		{"no payload", "", []string{"ep=dev1"}, codes.Created},
		{"missing ep", defaultLinks, []string{"lt=300", "lwm2m=1.1"}, codes.BadRequest},
		{"empty ep", defaultLinks, []string{"ep=", "lt=300"}, codes.BadRequest},
		{"bad lifetime", defaultLinks, []string{"ep=dev1", "lt=soon"}, codes.BadRequest},
		{"zero lifetime", defaultLinks, []string{"ep=dev1", "lt=0"}, codes.BadRequest},
		{"bad binding", defaultLinks, []string{"ep=dev1", "b=X"}, codes.BadRequest},
		{"unsupported version", defaultLinks, []string{"ep=dev1", "lwm2m=2.0"}, codes.PreconditionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, server.Config{})
			c := dialFake(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			code, loc := c.post(ctx, "/rd", tt.links, tt.queries...)
			if code != tt.want {
				t.Fatalf("POST /rd: got %v, want %v", code, tt.want)
			}
			_, ok := s.Client("dev1")
			if created := tt.want == codes.Created; ok != created {
				t.Errorf("Client(dev1) found = %v, want %v", ok, created)
			}
			if tt.want == codes.Created && !strings.HasPrefix(loc, "/rd/") {
				t.Errorf("Location-Path = %q, want /rd/<id>", loc)
			}
		})
	}
}

func TestRegistrationDefaults(t *testing.T) {
	s := newServer(t, server.Config{})
	c := dialFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c.post(ctx, "/rd", "", "ep=dev1")
	ci, ok := s.Client("dev1")
	if !ok {
		t.Fatal("dev1 not registered")
	}
	if ci.Lifetime != server.DefaultLifetime || ci.Binding != "U" || ci.Version != "1.0" || ci.Queue {
		t.Errorf("got lifetime %v binding %q lwm2m %q queue %v, want 24h0m0s \"U\" \"1.0\" false",
			ci.Lifetime, ci.Binding, ci.Version, ci.Queue)
	}
}

func TestRegisterUpdateDeregister(t *testing.T) {
	s := newServer(t, server.Config{})
	c := dialFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	events, stop := s.Subscribe()
	defer stop()

	before := time.Now()
	loc := c.register(ctx, "dev1", "300")
	ev, err := server.WaitEvent(ctx, events, "dev1", server.EventRegistered)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Lifetime != 300*time.Second || ev.Binding != "U" || ev.Version != "1.1" || ev.Addr.String() != c.addr() {
		t.Errorf("registered event = %+v", ev)
	}
	if "/rd/"+ev.ID != loc {
		t.Errorf("event ID %q, Location-Path %q", ev.ID, loc)
	}
	ci, ok := s.Client("dev1")
	if !ok {
		t.Fatal("Client(dev1) not found")
	}
	if ci.ID != ev.ID || ci.Registered.Before(before) || !ci.Expires.After(ci.Updated.Add(299*time.Second)) {
		t.Errorf("Client(dev1) = %+v", ci)
	}
	if got := s.Clients(); len(got) != 1 || got[0].Endpoint != "dev1" {
		t.Errorf("Clients() = %+v, want dev1 only", got)
	}

	// Registration Update: new lifetime and binding, no payload.
	if code, _ := c.post(ctx, loc, "", "lt=60", "b=UQ"); code != codes.Changed {
		t.Fatalf("update: got %v, want 2.04 Changed", code)
	}
	ev, err = server.WaitEvent(ctx, events, "dev1", server.EventUpdated)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Lifetime != 60*time.Second || ev.Binding != "UQ" || ev.ID != ci.ID {
		t.Errorf("updated event = %+v", ev)
	}
	if ci, _ := s.Client("dev1"); !ci.Queue || ci.Lifetime != 60*time.Second {
		t.Errorf("after update: queue %v lifetime %v, want true 1m0s", ci.Queue, ci.Lifetime)
	}

	if code := c.deregister(ctx); code != codes.Deleted {
		t.Fatalf("deregister: got %v, want 2.02 Deleted", code)
	}
	if _, err := server.WaitEvent(ctx, events, "dev1", server.EventDeregistered); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Client("dev1"); ok {
		t.Error("dev1 still registered after deregister")
	}
}

func TestUnknownRegistration(t *testing.T) {
	s := newServer(t, server.Config{})
	c := dialFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c.register(ctx, "dev1", "300")

	tests := []struct {
		name string
		do   func() codes.Code
	}{
		{"update", func() codes.Code { code, _ := c.post(ctx, "/rd/nope", ""); return code }},
		{"update with lifetime", func() codes.Code { code, _ := c.post(ctx, "/rd/nope", "", "lt=60"); return code }},
		{"deregister", func() codes.Code {
			saved := c.location
			defer func() { c.location = saved }()
			c.location = "/rd/nope"
			return c.deregister(ctx)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.do(); got != codes.NotFound {
				t.Errorf("got %v, want 4.04 Not Found", got)
			}
		})
	}
	if _, ok := s.Client("dev1"); !ok {
		t.Error("dev1 lost its registration")
	}
}

func TestReRegistrationReplaces(t *testing.T) {
	s := newServer(t, server.Config{})
	c := dialFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	events, stop := s.Subscribe()
	defer stop()

	first := c.register(ctx, "dev1", "300")
	second := c.register(ctx, "dev1", "120")
	if first == second {
		t.Fatalf("both registrations at %s", first)
	}
	for range 2 {
		if _, err := server.WaitEvent(ctx, events, "dev1", server.EventRegistered); err != nil {
			t.Fatal(err)
		}
	}
	if code, _ := c.post(ctx, first, ""); code != codes.NotFound {
		t.Errorf("update of the replaced registration: got %v, want 4.04", code)
	}
	cs := s.Clients()
	if len(cs) != 1 || "/rd/"+cs[0].ID != second || cs[0].Lifetime != 120*time.Second {
		t.Errorf("Clients() = %+v, want only the second registration", cs)
	}
}

func TestExpiry(t *testing.T) {
	s := newServer(t, server.Config{ExpiryGrace: 10 * time.Millisecond})
	c := dialFake(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	events, stop := s.Subscribe()
	defer stop()

	c.register(ctx, "dev1", "1")
	reg, err := server.WaitEvent(ctx, events, "dev1", server.EventRegistered)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := server.WaitEvent(ctx, events, "dev1", server.EventExpired)
	if err != nil {
		t.Fatal(err)
	}
	if d := ev.Time.Sub(reg.Time); d < time.Second {
		t.Errorf("expired after %v, want at least the 1 s lifetime", d)
	}
	if _, ok := s.Client("dev1"); ok {
		t.Error("dev1 still registered after expiry")
	}
	if code, _ := c.post(ctx, c.location, ""); code != codes.NotFound {
		t.Errorf("update after expiry: got %v, want 4.04", code)
	}
}
