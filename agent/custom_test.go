package agent_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

func testObjects(t *testing.T) []lwm2m.ObjectDef {
	t.Helper()
	b, err := os.ReadFile("../lwm2m/testdata/3442-test.xml")
	if err != nil {
		t.Fatal(err)
	}
	defs, err := lwm2m.ParseObjectXML(b)
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// TestCustomObjectFromXML: an object declared from OMA registry XML is
// registered, filled by the host and operated on by the server.
func TestCustomObjectFromXML(t *testing.T) {
	s := registered(t, agent.Config{Objects: testObjects(t)})
	if links := string(s.Server.Registers[0].Payload); !strings.Contains(links, "</3442>;ver=1.1") {
		t.Errorf("registration links %q lack the empty multiple-instance object </3442>", links)
	}
	for path, v := range map[string]string{"/3442/0/110": "hello", "/3442/0/120": "42", "/3442/0/130": "21.5", "/3442/0/180/3": "7", "/3442/1/110": "second"} {
		p, _ := lwm2m.ParsePath(path)
		if err := s.Do(agent.CmdSet{Path: p, Value: lwm2m.String(v)}); err != nil {
			t.Fatalf("set %s: %v", path, err)
		}
	}
	s.RunFor(5 * time.Second)
	if last := s.Server.Updates[len(s.Server.Updates)-1]; !strings.Contains(string(last.Payload), "</3442/0>") || !strings.Contains(string(last.Payload), "</3442/1>") {
		t.Errorf("update links %q lack the new instances", last.Payload)
	}
	tests := []struct {
		name, path    string
		code          codes.Code
		payload, want string
	}{
		{name: "read string", path: "/3442/0/110", want: "hello"},
		{name: "read float", path: "/3442/0/130", want: "21.5"},
		{name: "read multiple instance", path: "/3442/0/180/3", want: "7"},
		{name: "write integer", path: "/3442/0/120", code: codes.PUT, payload: "55"},
		{name: "read it back", path: "/3442/0/120", want: "55"},
		{name: "write read-only", path: "/3442/0/125", code: codes.PUT, payload: "1"},
		{name: "execute", path: "/3442/0/200", code: codes.POST},
		{name: "read second instance", path: "/3442/1/110", want: "second"},
		{name: "read unset resource", path: "/3442/1/120"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := tt.code
			if code == 0 {
				code = codes.GET
			}
			var r = s.Server.Request(code, tt.path, []byte(tt.payload), contentFormatIf(code))
			if r == nil {
				t.Fatal("no response")
			}
			switch {
			case tt.want != "":
				if r.Code != codes.Content || string(r.Payload) != tt.want {
					t.Errorf("= %v %q, want 2.05 %q", r.Code, r.Payload, tt.want)
				}
			case tt.name == "write read-only":
				if r.Code != codes.MethodNotAllowed {
					t.Errorf("= %v, want 4.05", r.Code)
				}
			case tt.name == "read unset resource":
				if r.Code != codes.NotFound {
					t.Errorf("= %v, want 4.04", r.Code)
				}
			default:
				if r.Code != codes.Changed {
					t.Errorf("= %v, want 2.04", r.Code)
				}
			}
		})
	}
	if ev := s.EventsOf(agent.EventExecute); len(ev) == 0 || ev[len(ev)-1].Path != "/3442/0/200" {
		t.Errorf("execute events = %+v", ev)
	}
	// Bad values from the host are refused without creating anything.
	if err := s.Do(agent.CmdSet{Path: lwm2m.P(3442, 9, 120), Value: lwm2m.String("many")}); !errors.Is(err, agent.ErrBadValue) {
		t.Errorf("set a non-integer: %v", err)
	}
	if r := s.Server.Request(codes.GET, "/3442/9", nil); r == nil || r.Code != codes.NotFound {
		t.Errorf("a refused set created an instance: %v", r)
	}
}

func contentFormatIf(code codes.Code) message.Option {
	if code == codes.PUT {
		return contentFormat(lwm2m.FormatText)
	}
	return accept(lwm2m.FormatText)
}

func TestCustomObjectClashesWithBuiltin(t *testing.T) {
	_, err := agent.NewEngine(agent.Config{ServerURI: "coap://x", Endpoint: "e", Objects: []lwm2m.ObjectDef{{ID: 3}}}, nil)
	if !errors.Is(err, agent.ErrConfig) {
		t.Errorf("declaring object 3 = %v, want ErrConfig", err)
	}
}
