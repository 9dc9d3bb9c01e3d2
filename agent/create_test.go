package agent_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/lwcbor"
	"github.com/avc-agent/avc/lwm2m/senml"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// createDef is a multiple-instance object with a Mandatory writable
// resource (1), an optional one (2), a read-only one (3), a multiple one
// (4) and an executable one (5).
var createDef = lwm2m.ObjectDef{ID: 3443, Name: "create test", Version: "1.0", Multiple: true, Resources: []lwm2m.ResourceDef{
	{ID: 1, Name: "Name", Operations: lwm2m.OpRead | lwm2m.OpWrite, Mandatory: true, Type: lwm2m.TypeString},
	{ID: 2, Name: "Level", Operations: lwm2m.OpRead | lwm2m.OpWrite, Type: lwm2m.TypeInteger},
	{ID: 3, Name: "Count", Operations: lwm2m.OpRead, Mandatory: true, Type: lwm2m.TypeInteger},
	{ID: 4, Name: "Levels", Operations: lwm2m.OpRead | lwm2m.OpWrite, Multiple: true, Type: lwm2m.TypeInteger},
	{ID: 5, Name: "Reset", Operations: lwm2m.OpExecute},
}}

func createConfig(t *testing.T) agent.Config {
	return agent.Config{Objects: append(testObjects(t), createDef)}
}

func createRec(path string, v lwm2m.Value) lwm2m.Record {
	p, err := lwm2m.ParsePath(path)
	if err != nil {
		panic(err)
	}
	return lwm2m.Record{Path: p, Value: v}
}

// createPayload encodes recs at base with enc, failing the test on error.
func createPayload(t *testing.T, enc func(lwm2m.Path, []lwm2m.Record) ([]byte, error), base string, recs ...lwm2m.Record) string {
	t.Helper()
	p, err := lwm2m.ParsePath(base)
	if err != nil {
		t.Fatal(err)
	}
	b, err := enc(p, recs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func locationOf(m *message.Message) string {
	var segs []string
	for _, o := range m.Options {
		if o.ID == message.LocationPath {
			segs = append(segs, string(o.Value))
		}
	}
	if len(segs) == 0 {
		return ""
	}
	return "/" + strings.Join(segs, "/")
}

// TestCreateDelete runs Create and Delete requests in order on one
// engine; each step may read a path afterwards to check what the request
// left behind (Core TS 1.1 §6.3.6, §6.3.7).
func TestCreateDelete(t *testing.T) {
	tlvF, json := contentFormat(lwm2m.FormatTLV), contentFormat(lwm2m.FormatSenMLJSON)
	scbor, lcbor := contentFormat(lwm2m.FormatSenMLCBOR), contentFormat(lwm2m.FormatLwM2MCBOR)
	tests := []struct {
		name     string
		code     codes.Code // POST when zero
		path     string
		payload  string
		cf       message.Option // Content-Format, none when zero
		want     codes.Code
		location string // Location-Path of a 2.01
		read     string // read afterwards (text/plain for a resource)
		readCode codes.Code
		readBody string
	}{
		{name: "create with ID in TLV", path: "/3443", cf: tlvF,
			payload: createPayload(t, tlv.Encode, "/3443", createRec("/3443/7/1", lwm2m.String("seven")), createRec("/3443/7/2", lwm2m.Int(42))),
			want:    codes.Created, location: "/3443/7", read: "/3443/7/1", readCode: codes.Content, readBody: "seven"},
		{name: "create with ID in SenML-JSON", path: "/3443", cf: json,
			payload: `[{"bn":"/3443/3/","n":"1","vs":"three"},{"n":"4/0","v":1},{"n":"4/5","v":2}]`,
			want:    codes.Created, location: "/3443/3", read: "/3443/3/4/5", readCode: codes.Content, readBody: "2"},
		{name: "create without ID takes the lowest free", path: "/3443", cf: tlvF,
			payload: createPayload(t, tlv.Encode, "/3443/0", createRec("/3443/0/1", lwm2m.String("auto"))),
			want:    codes.Created, location: "/3443/0", read: "/3443/0/1", readCode: codes.Content, readBody: "auto"},
		{name: "create without ID again", path: "/3443", cf: tlvF,
			payload: createPayload(t, tlv.Encode, "/3443/0", createRec("/3443/0/1", lwm2m.String("next"))),
			want:    codes.Created, location: "/3443/1", read: "/3443/1/1", readCode: codes.Content, readBody: "next"},
		{name: "create with ID in SenML-CBOR", path: "/3443", cf: scbor,
			payload: createPayload(t, senml.EncodeCBOR, "/3443", createRec("/3443/20/1", lwm2m.String("cbor"))),
			want:    codes.Created, location: "/3443/20", read: "/3443/20/1", readCode: codes.Content, readBody: "cbor"},
		{name: "create with ID in LwM2M-CBOR", path: "/3443", cf: lcbor,
			payload: createPayload(t, lwcbor.Encode, "/3443", createRec("/3443/21/1", lwm2m.String("lw")), createRec("/3443/21/2", lwm2m.Int(-3))),
			want:    codes.Created, location: "/3443/21", read: "/3443/21/2", readCode: codes.Content, readBody: "-3"},
		{name: "create of the XML object", path: "/3442", cf: json,
			payload: `[{"bn":"/3442/4/","n":"110","vs":"from xml"},{"n":"130","v":21.5}]`,
			want:    codes.Created, location: "/3442/4", read: "/3442/4/130", readCode: codes.Content, readBody: "21.5"},

		{name: "duplicate ID", path: "/3443", cf: tlvF,
			payload: createPayload(t, tlv.Encode, "/3443", createRec("/3443/7/1", lwm2m.String("again"))),
			want:    codes.BadRequest, read: "/3443/7/1", readCode: codes.Content, readBody: "seven"},
		{name: "missing mandatory resource", path: "/3443", cf: tlvF,
			payload: createPayload(t, tlv.Encode, "/3443", createRec("/3443/8/2", lwm2m.Int(5))),
			want:    codes.BadRequest, read: "/3443/8", readCode: codes.NotFound},
		{name: "missing mandatory resource of the XML object", path: "/3442", cf: json,
			payload: `[{"bn":"/3442/5/","n":"120","v":1}]`,
			want:    codes.BadRequest, read: "/3442/5", readCode: codes.NotFound},
		{name: "empty payload lacks the mandatory resource", path: "/3443", cf: tlvF,
			want: codes.BadRequest, read: "/3443/2", readCode: codes.NotFound},
		{name: "read-only resource", path: "/3443", cf: tlvF,
			payload: createPayload(t, tlv.Encode, "/3443", createRec("/3443/9/1", lwm2m.String("x")), createRec("/3443/9/3", lwm2m.Int(1))),
			want:    codes.BadRequest, read: "/3443/9", readCode: codes.NotFound},
		{name: "executable resource", path: "/3443", cf: json,
			payload: `[{"bn":"/3443/9/","n":"1","vs":"x"},{"n":"5","vs":""}]`,
			want:    codes.BadRequest, read: "/3443/9", readCode: codes.NotFound},
		{name: "undefined resource", path: "/3443", cf: json,
			payload: `[{"bn":"/3443/9/","n":"1","vs":"x"},{"n":"99","v":1}]`,
			want:    codes.BadRequest, read: "/3443/9", readCode: codes.NotFound},
		{name: "wrong type", path: "/3443", cf: json,
			payload: `[{"bn":"/3443/10/","n":"1","vs":"x"},{"n":"2","vs":"ten"}]`,
			want:    codes.BadRequest, read: "/3443/10", readCode: codes.NotFound},
		{name: "wrong type without ID", path: "/3443", cf: tlvF,
			payload: "\xc1\x01x\xc3\x02\x00\x00\x01", // 1 = "x", 2 = a 3-byte integer
			want:    codes.BadRequest, read: "/3443/2", readCode: codes.NotFound},
		{name: "resource instance for a single resource", path: "/3443", cf: json,
			payload: `[{"bn":"/3443/11/","n":"1/0","vs":"x"}]`,
			want:    codes.BadRequest, read: "/3443/11", readCode: codes.NotFound},
		{name: "one bad instance refuses all", path: "/3443", cf: tlvF,
			payload: createPayload(t, tlv.Encode, "/3443", createRec("/3443/12/1", lwm2m.String("ok")), createRec("/3443/13/2", lwm2m.Int(1))),
			want:    codes.BadRequest, read: "/3443/12", readCode: codes.NotFound},
		{name: "text/plain", path: "/3443", payload: "x", cf: contentFormat(lwm2m.FormatText), want: codes.UnsupportedMediaType},
		{name: "opaque", path: "/3443", payload: "x", cf: contentFormat(lwm2m.FormatOpaque), want: codes.UnsupportedMediaType},
		{name: "no content format", path: "/3443", payload: "x", want: codes.BadRequest},
		{name: "bad TLV", path: "/3443", payload: "\x08\x01\x09", cf: tlvF, want: codes.BadRequest},
		{name: "single-instance Device", path: "/3", cf: tlvF,
			payload: createPayload(t, tlv.Encode, "/3", createRec("/3/1/14", lwm2m.String("+01:00"))), want: codes.MethodNotAllowed},
		{name: "single-instance Server", path: "/1", cf: tlvF,
			payload: createPayload(t, tlv.Encode, "/1", createRec("/1/1/1", lwm2m.Int(60))), want: codes.MethodNotAllowed},
		{name: "Location", path: "/6", cf: json, payload: `[]`, want: codes.MethodNotAllowed},
		{name: "Security", path: "/0", cf: json, payload: `[]`, want: codes.Unauthorized},
		{name: "missing object", path: "/5", cf: json, payload: `[]`, want: codes.NotFound},

		{name: "delete", code: codes.DELETE, path: "/3443/7", want: codes.Deleted, read: "/3443/7", readCode: codes.NotFound},
		{name: "delete a deleted instance", code: codes.DELETE, path: "/3443/7", want: codes.NotFound},
		{name: "delete a missing instance", code: codes.DELETE, path: "/3443/99", want: codes.NotFound},
		{name: "delete Device", code: codes.DELETE, path: "/3/0", want: codes.MethodNotAllowed, read: "/3/0/0", readCode: codes.Content},
		{name: "delete Server", code: codes.DELETE, path: "/1/0", want: codes.MethodNotAllowed},
		{name: "delete Security", code: codes.DELETE, path: "/0/0", want: codes.Unauthorized},
		{name: "delete an object", code: codes.DELETE, path: "/3443", want: codes.MethodNotAllowed, read: "/3443/3/1", readCode: codes.Content},
		{name: "delete a resource", code: codes.DELETE, path: "/3443/3/2", want: codes.MethodNotAllowed},
		{name: "delete the root", code: codes.DELETE, path: "/", want: codes.MethodNotAllowed},
		{name: "delete in a missing object", code: codes.DELETE, path: "/5/0", want: codes.NotFound},
		{name: "a deleted ID can be created again", path: "/3443", cf: json,
			payload: `[{"bn":"/3443/7/","n":"1","vs":"reborn"}]`,
			want:    codes.Created, location: "/3443/7", read: "/3443/7/2", readCode: codes.NotFound},
	}
	s := registered(t, createConfig(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := tt.code
			if code == 0 {
				code = codes.POST
			}
			var opts []message.Option
			if tt.cf.ID != 0 {
				opts = append(opts, tt.cf)
			}
			writes := len(s.EventsOf(agent.EventCreate))
			deletes := len(s.EventsOf(agent.EventDelete))
			r := s.Server.Request(code, tt.path, []byte(tt.payload), opts...)
			if r == nil {
				t.Fatal("no response")
			}
			if r.Code != tt.want {
				t.Fatalf("code = %v, want %v", r.Code, tt.want)
			}
			if got := locationOf(r); got != tt.location {
				t.Errorf("Location-Path = %q, want %q", got, tt.location)
			}
			ev := s.EventsOf(agent.EventCreate)[writes:]
			switch {
			case tt.want == codes.Created:
				if len(ev) != 1 || ev[0].Path != tt.location {
					t.Errorf("create events = %+v, want one for %s", ev, tt.location)
				}
			case len(ev) != 0:
				t.Errorf("create events = %+v, want none", ev)
			}
			if del := s.EventsOf(agent.EventDelete)[deletes:]; (tt.want == codes.Deleted) != (len(del) == 1) || (len(del) == 1 && del[0].Path != tt.path) {
				t.Errorf("delete events = %+v", del)
			}
			if tt.read == "" {
				return
			}
			rr := s.Server.Request(codes.GET, tt.read, nil)
			if rr == nil || rr.Code != tt.readCode {
				t.Fatalf("read %s = %v, want %v", tt.read, rr, tt.readCode)
			}
			if tt.readBody != "" && string(rr.Payload) != tt.readBody {
				t.Errorf("read %s = %q, want %q", tt.read, rr.Payload, tt.readBody)
			}
		})
	}
}

// TestCreateEmptyInstance: an object without Mandatory writable resources
// gets an instance from a payload that names it and carries no values.
func TestCreateEmptyInstance(t *testing.T) {
	def := lwm2m.ObjectDef{ID: 3444, Version: "1.0", Multiple: true, Resources: []lwm2m.ResourceDef{
		{ID: 1, Operations: lwm2m.OpRead | lwm2m.OpWrite, Type: lwm2m.TypeInteger},
	}}
	s := registered(t, agent.Config{Objects: []lwm2m.ObjectDef{def}})
	for _, tt := range []struct {
		name, payload, location string
	}{
		{"empty Object Instance TLV", "\x00\x05", "/3444/5"},
		{"empty payload", "", "/3444/0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.Server.Request(codes.POST, "/3444", []byte(tt.payload), contentFormat(lwm2m.FormatTLV))
			if r == nil || r.Code != codes.Created || locationOf(r) != tt.location {
				t.Fatalf("create = %v, want 2.01 at %s", r, tt.location)
			}
			if rr := s.Server.Request(codes.GET, tt.location, nil); rr == nil || rr.Code != codes.Content {
				t.Errorf("read %s = %v, want 2.05", tt.location, rr)
			}
		})
	}
}

// TestCreateDeleteUpdateRegistration: the server learns the new object
// list from a Registration Update after a Create and after a Delete.
func TestCreateDeleteUpdateRegistration(t *testing.T) {
	s := registered(t, createConfig(t))
	if links := string(s.Server.Registers[0].Payload); !strings.Contains(links, "</3443>") {
		t.Fatalf("registration links %q lack the empty object </3443>", links)
	}
	steps := []struct {
		name, path string
		code       codes.Code
		payload    string
		format     lwm2m.ContentFormat
		want       codes.Code
		has, lacks []string // in the update's links
	}{
		{name: "create", path: "/3443", code: codes.POST, format: lwm2m.FormatSenMLJSON,
			payload: `[{"bn":"/3443/2/","n":"1","vs":"two"}]`, want: codes.Created,
			has: []string{"</3443/2>"}, lacks: []string{"</3443>,", "</3443/0>"}},
		{name: "create another", path: "/3443", code: codes.POST, format: lwm2m.FormatSenMLJSON,
			payload: `[{"bn":"/3443/0/","n":"1","vs":"zero"}]`, want: codes.Created,
			has: []string{"</3443/0>", "</3443/2>"}},
		{name: "delete", path: "/3443/2", code: codes.DELETE, want: codes.Deleted,
			has: []string{"</3443/0>"}, lacks: []string{"</3443/2>"}},
		{name: "delete the last", path: "/3443/0", code: codes.DELETE, want: codes.Deleted,
			has: []string{"</3443>"}, lacks: []string{"</3443/0>"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			n := len(s.Server.Updates)
			var opts []message.Option
			if st.format != 0 {
				opts = append(opts, contentFormat(st.format))
			}
			if r := s.Server.Request(st.code, st.path, []byte(st.payload), opts...); r == nil || r.Code != st.want {
				t.Fatalf("%v %s = %v, want %v", st.code, st.path, r, st.want)
			}
			s.RunFor(10 * time.Second)
			if got := len(s.Server.Updates) - n; got != 1 {
				t.Fatalf("updates = %d, want 1", got)
			}
			u := s.Server.Updates[n]
			if cf, err := u.Options.ContentFormat(); err != nil || cf != message.AppLinkFormat {
				t.Errorf("update content format = %v, %v; want link-format", cf, err)
			}
			links := string(u.Payload) + ","
			for _, want := range st.has {
				if !strings.Contains(links, want) {
					t.Errorf("update links %q lack %q", u.Payload, want)
				}
			}
			for _, bad := range st.lacks {
				if strings.Contains(links, bad) {
					t.Errorf("update links %q hold %q", u.Payload, bad)
				}
			}
		})
	}
	// A refused Create changes no link: no update.
	n := len(s.Server.Updates)
	if r := s.Server.Request(codes.POST, "/3443", []byte(`[{"bn":"/3443/1/","n":"2","v":1}]`), contentFormat(lwm2m.FormatSenMLJSON)); r == nil || r.Code != codes.BadRequest {
		t.Fatalf("create without the mandatory resource = %v", r)
	}
	s.RunFor(10 * time.Second)
	if len(s.Server.Updates) != n {
		t.Errorf("a refused create sent %d updates", len(s.Server.Updates)-n)
	}
}

// TestDeleteEndsObservation: observations of a deleted instance, or of a
// resource in it, end with 4.04 (RFC 7641 §3.2); an observation of the
// object is notified of the change.
func TestDeleteEndsObservation(t *testing.T) {
	s := registered(t, createConfig(t))
	if r := s.Server.Request(codes.POST, "/3443", []byte(`[{"bn":"/3443/0/","n":"1","vs":"zero"}]`), contentFormat(lwm2m.FormatSenMLJSON)); r == nil || r.Code != codes.Created {
		t.Fatalf("create = %v", r)
	}
	observe := agenttest.Uint(message.Observe, 0)
	tokens := map[string][]byte{}
	for _, path := range []string{"/3443/0", "/3443/0/1", "/3443"} {
		r := s.Server.Request(codes.GET, path, nil, observe)
		if r == nil || r.Code != codes.Content {
			t.Fatalf("observe %s = %v", path, r)
		}
		if _, err := r.Options.Observe(); err != nil {
			t.Fatalf("observe %s: no Observe option in the response", path)
		}
		tokens[path] = r.Token
	}
	// An attribute on the instance goes with it.
	if r := s.Server.Request(codes.PUT, "/3443/0", nil, message.Option{ID: message.URIQuery, Value: []byte("pmax=30")}); r == nil || r.Code != codes.Changed {
		t.Fatalf("write attributes = %v", r)
	}
	notes := len(s.Server.Notifications)
	if r := s.Server.Request(codes.DELETE, "/3443/0", nil); r == nil || r.Code != codes.Deleted {
		t.Fatalf("delete = %v", r)
	}
	s.RunFor(time.Second)
	for _, path := range []string{"/3443/0", "/3443/0/1"} {
		ends := s.WireTo(false, func(m *message.Message) bool {
			return bytes.Equal(m.Token, tokens[path]) && m.Code == codes.NotFound
		})
		if len(ends) != 1 {
			t.Errorf("observation of %s: %d 4.04 answers, want 1", path, len(ends))
		}
	}
	var objectNotes int
	for _, m := range s.Server.Notifications[notes:] {
		if bytes.Equal(m.Token, tokens["/3443"]) && m.Code == codes.Content {
			objectNotes++
		}
	}
	if objectNotes != 1 {
		t.Errorf("observation of /3443: %d notifications after the delete, want 1", objectNotes)
	}
	// The ended observations stay ended: an instance created again with
	// the same ID is not notified to them, and has no attributes.
	if r := s.Server.Request(codes.POST, "/3443", []byte(`[{"bn":"/3443/0/","n":"1","vs":"again"}]`), contentFormat(lwm2m.FormatSenMLJSON)); r == nil || r.Code != codes.Created {
		t.Fatalf("create again = %v", r)
	}
	s.RunFor(time.Minute)
	for _, m := range s.Server.Notifications[notes:] {
		if bytes.Equal(m.Token, tokens["/3443/0"]) || bytes.Equal(m.Token, tokens["/3443/0/1"]) {
			t.Errorf("notification %v for an ended observation", m)
		}
	}
	r := s.Server.Request(codes.GET, "/3443/0", nil, accept(lwm2m.FormatLinkFormat))
	if r == nil || r.Code != codes.Content || strings.Contains(string(r.Payload), "pmax") {
		t.Errorf("discover the new instance = %v, want no attributes", r)
	}
}
