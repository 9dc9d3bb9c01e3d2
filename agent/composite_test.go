package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/senml"
)

const (
	codeFetch = codes.Code(5)
	iPatch    = codes.Code(7)
)

func TestReadComposite(t *testing.T) {
	s := registered(t, agent.Config{Lifetime: 300 * time.Second})
	paths := `[{"n":"/3/0/0"},{"n":"/1/0/1"},{"n":"/3/0/99"},{"n":"/3/0/11"}]`
	tests := []struct {
		name    string
		code    codes.Code
		path    string
		payload string
		opts    []message.Option
		want    codes.Code
		body    []string
	}{
		{name: "SenML-JSON", code: codeFetch, path: "/", payload: paths, opts: []message.Option{contentFormat(lwm2m.FormatSenMLJSON)}, want: codes.Content,
			body: []string{`"/3/0/0"`, `"vs":"avc"`, `"/1/0/1"`, `"v":300`, `"/3/0/11/0"`}},
		{name: "answer in CBOR", code: codeFetch, path: "/", payload: paths, opts: []message.Option{contentFormat(lwm2m.FormatSenMLJSON), accept(lwm2m.FormatSenMLCBOR)}, want: codes.Content},
		{name: "security", code: codeFetch, path: "/", payload: `[{"n":"/0/0"}]`, opts: []message.Option{contentFormat(lwm2m.FormatSenMLJSON)}, want: codes.Unauthorized},
		{name: "nothing readable", code: codeFetch, path: "/", payload: `[{"n":"/9/0"}]`, opts: []message.Option{contentFormat(lwm2m.FormatSenMLJSON)}, want: codes.NotFound},
		{name: "no content format", code: codeFetch, path: "/", payload: paths, want: codes.BadRequest},
		{name: "TLV request", code: codeFetch, path: "/", payload: paths, opts: []message.Option{contentFormat(lwm2m.FormatTLV)}, want: codes.UnsupportedMediaType},
		{name: "TLV answer", code: codeFetch, path: "/", payload: paths, opts: []message.Option{contentFormat(lwm2m.FormatSenMLJSON), accept(lwm2m.FormatTLV)}, want: codes.NotAcceptable},
		{name: "values in the request", code: codeFetch, path: "/", payload: `[{"n":"/3/0/0","vs":"x"}]`, opts: []message.Option{contentFormat(lwm2m.FormatSenMLJSON)}, want: codes.BadRequest},
		{name: "not on the root", code: codeFetch, path: "/3", payload: paths, opts: []message.Option{contentFormat(lwm2m.FormatSenMLJSON)}, want: codes.MethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.Server.Request(tt.code, tt.path, []byte(tt.payload), tt.opts...)
			if r == nil || r.Code != tt.want {
				t.Fatalf("= %v, want %v", r, tt.want)
			}
			for _, b := range tt.body {
				if !strings.Contains(string(r.Payload), b) {
					t.Errorf("payload %s lacks %s", r.Payload, b)
				}
			}
			if tt.name == "answer in CBOR" {
				recs, err := senml.DecodeCBOR(lwm2m.Path{}, r.Payload, nil)
				if err != nil || len(recs) != 3 {
					t.Errorf("CBOR answer: %d records, %v", len(recs), err)
				}
			}
		})
	}
}

func TestWriteComposite(t *testing.T) {
	s := registered(t, agent.Config{Lifetime: 300 * time.Second})
	ok := `[{"n":"/1/0/1","v":150},{"n":"/3/0/14","vs":"+01:00"}]`
	if r := s.Server.Request(iPatch, "/", []byte(ok), contentFormat(lwm2m.FormatSenMLJSON)); r == nil || r.Code != codes.Changed {
		t.Fatalf("write composite: %v", r)
	}
	if ev, found := s.WaitEvent(agent.EventUpdated, 10*time.Second); !found || ev.Lifetime != 150 {
		t.Errorf("no update with the new lifetime: %+v", ev)
	}
	if r := s.Server.Request(codes.GET, "/3/0/14", nil); r == nil || string(r.Payload) != "+01:00" {
		t.Errorf("utc offset = %v", r)
	}
	bad := `[{"n":"/3/0/15","vs":"Europe/Paris"},{"n":"/3/0/0","vs":"x"}]`
	if r := s.Server.Request(iPatch, "/", []byte(bad), contentFormat(lwm2m.FormatSenMLJSON)); r == nil || r.Code != codes.MethodNotAllowed {
		t.Fatalf("write composite with a read-only resource: %v, want 4.05", r)
	}
	if r := s.Server.Request(codes.GET, "/3/0/15", nil); r == nil || string(r.Payload) != "UTC" {
		t.Errorf("a refused composite write changed /3/0/15 to %v", r)
	}
}

func TestObserveComposite(t *testing.T) {
	s := registered(t, agent.Config{})
	r := s.Server.Request(codeFetch, "/", []byte(`[{"n":"/3/0/9"},{"n":"/3/0/20"}]`), contentFormat(lwm2m.FormatSenMLJSON), observeOpt(0))
	if r == nil || r.Code != codes.Content {
		t.Fatalf("observe composite: %v", r)
	}
	if _, err := r.Options.Observe(); err != nil {
		t.Fatal("no Observe option in the answer")
	}
	set(t, s, "/3/0/9", "33")
	s.RunFor(time.Second)
	if len(s.Server.Notifications) != 1 {
		t.Fatalf("notifications = %d, want 1", len(s.Server.Notifications))
	}
	n := string(s.Server.Notifications[0].Payload)
	if !strings.Contains(n, `"/3/0/9","v":33`) || !strings.Contains(n, `"/3/0/20"`) {
		t.Errorf("notification %s lacks the observed values", n)
	}
}
