package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// sensorDef is a multiple-instance object the test agent declares: a
// mandatory writable name, a writable level, an optional note.
var sensorDef = lwm2m.ObjectDef{ID: 33100, Name: "sensor", Version: "1.0", Multiple: true, Resources: []lwm2m.ResourceDef{
	{ID: 1, Name: "Name", Operations: lwm2m.OpRead | lwm2m.OpWrite, Mandatory: true, Type: lwm2m.TypeString},
	{ID: 2, Name: "Level", Operations: lwm2m.OpRead | lwm2m.OpWrite, Type: lwm2m.TypeInteger},
	{ID: 3, Name: "Note", Operations: lwm2m.OpRead | lwm2m.OpWrite, Type: lwm2m.TypeString},
}}

// startSensorAgent runs a real agent with sensorDef, registered with s.
func startSensorAgent(t *testing.T, s *server.Server, ep string) *agent.Agent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events, unsubscribe := s.Subscribe()
	defer unsubscribe()
	a, err := agent.New(agent.Config{ServerURI: "coap://" + s.CoAPAddr().String(), Endpoint: ep,
		Objects: []lwm2m.ObjectDef{sensorDef}})
	if err != nil {
		t.Fatal(err)
	}
	agenttest.RunRegistered(t, ctx, a, events, ep)
	return a
}

func rec(path string, v lwm2m.Value) lwm2m.Record {
	p, err := lwm2m.ParsePath(path)
	if err != nil {
		panic(err)
	}
	return lwm2m.Record{Path: p, Value: v}
}

// values reads p and returns its records as path -> text.
func values(t *testing.T, s *server.Server, ep string, p lwm2m.Path) map[string]string {
	t.Helper()
	resp, err := s.Read(context.Background(), ep, p, lwm2m.FormatSenMLJSON)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	out := map[string]string{}
	for _, r := range resp.Records {
		out[r.Path.String()] = r.Value.String()
	}
	return out
}

// TestCreateWriteUpdateDelete drives a real agent through Create (the
// instance ID chosen by the server), a partial update that leaves other
// resources alone, a replacing write, and Delete.
func TestCreateWriteUpdateDelete(t *testing.T) {
	s := newServer(t, server.Config{CoAPAddr: "127.0.0.1:0"})
	startSensorAgent(t, s, "crud")
	ctx := context.Background()

	for _, format := range []lwm2m.ContentFormat{lwm2m.FormatTLV, lwm2m.FormatSenMLJSON} {
		resp, created, err := s.Create(ctx, "crud", lwm2m.P(33100), format, []lwm2m.Record{
			rec("/33100/7/1", lwm2m.String("kitchen")), rec("/33100/7/3", lwm2m.String("north wall")),
		})
		if format == lwm2m.FormatSenMLJSON {
			// The instance exists now: a second create of it conflicts.
			var ce *server.CodeError
			if !errors.As(err, &ce) || ce.Code != codes.BadRequest {
				t.Fatalf("create of an existing instance = %v, %v; want 4.00", resp, err)
			}
			continue
		}
		if err != nil || resp.Code != codes.Created || created != lwm2m.P(33100, 7) {
			t.Fatalf("create = %+v, %v, %v; want 2.01 at /33100/7", resp, created, err)
		}
	}
	if got := values(t, s, "crud", lwm2m.P(33100, 7)); got["/33100/7/1"] != "kitchen" || got["/33100/7/3"] != "north wall" {
		t.Fatalf("after create: %v", got)
	}

	if _, err := s.WriteUpdate(ctx, "crud", lwm2m.P(33100, 7), lwm2m.FormatTLV, []lwm2m.Record{rec("/33100/7/2", lwm2m.Int(9))}); err != nil {
		t.Fatal(err)
	}
	if got := values(t, s, "crud", lwm2m.P(33100, 7)); got["/33100/7/1"] != "kitchen" || got["/33100/7/2"] != "9" || got["/33100/7/3"] != "north wall" {
		t.Fatalf("a partial update changed more than /33100/7/2: %v", got)
	}
	// A replacing write of the instance drops the optional resource.
	if _, err := s.Write(ctx, "crud", lwm2m.P(33100, 7), lwm2m.FormatTLV, []lwm2m.Record{rec("/33100/7/1", lwm2m.String("hall"))}); err != nil {
		t.Fatal(err)
	}
	if got := values(t, s, "crud", lwm2m.P(33100, 7)); got["/33100/7/1"] != "hall" || got["/33100/7/3"] != "" {
		t.Fatalf("after the replacing write: %v", got)
	}

	if resp, err := s.Delete(ctx, "crud", lwm2m.P(33100, 7)); err != nil || resp.Code != codes.Deleted {
		t.Fatalf("delete = %+v, %v", resp, err)
	}
	var ce *server.CodeError
	if _, err := s.Read(ctx, "crud", lwm2m.P(33100, 7), lwm2m.FormatNone); !errors.As(err, &ce) || ce.Code != codes.NotFound {
		t.Fatalf("read after delete: %v, want 4.04", err)
	}

	// Bad requests are refused before anything is sent.
	for name, err := range map[string]error{
		"create on an instance": func() error { _, _, err := s.Create(ctx, "crud", lwm2m.P(33100, 1), lwm2m.FormatTLV, nil); return err }(),
		"delete an object":      func() error { _, err := s.Delete(ctx, "crud", lwm2m.P(33100)); return err }(),
		"update an object":      func() error { _, err := s.WriteUpdate(ctx, "crud", lwm2m.P(33100), lwm2m.FormatTLV, nil); return err }(),
	} {
		if !errors.Is(err, server.ErrBadPath) {
			t.Errorf("%s: %v, want ErrBadPath", name, err)
		}
	}
}

// TestComposite reads and writes several objects in one request each, in
// SenML JSON and SenML CBOR, against a real agent.
func TestComposite(t *testing.T) {
	s := newServer(t, server.Config{CoAPAddr: "127.0.0.1:0"})
	startSensorAgent(t, s, "comp")
	ctx := context.Background()
	if _, _, err := s.Create(ctx, "comp", lwm2m.P(33100), lwm2m.FormatTLV, []lwm2m.Record{rec("/33100/0/1", lwm2m.String("a"))}); err != nil {
		t.Fatal(err)
	}
	for _, format := range []lwm2m.ContentFormat{lwm2m.FormatSenMLJSON, lwm2m.FormatSenMLCBOR} {
		t.Run(format.String(), func(t *testing.T) {
			level := int64(len(format.String()))
			resp, err := s.WriteComposite(ctx, "comp", format, []lwm2m.Record{
				rec("/33100/0/2", lwm2m.Int(level)), rec("/1/0/1", lwm2m.Int(3000+level)),
			})
			if err != nil || resp.Code != codes.Changed {
				t.Fatalf("write-composite = %+v, %v", resp, err)
			}
			resp, err = s.ReadComposite(ctx, "comp", []lwm2m.Path{lwm2m.P(33100, 0, 2), lwm2m.P(1, 0, 1), lwm2m.P(3, 0, 0)}, format)
			if err != nil || resp.ContentFormat != format {
				t.Fatalf("read-composite = %+v, %v", resp, err)
			}
			got := map[string]string{}
			for _, r := range resp.Records {
				got[r.Path.String()] = r.Value.String()
			}
			if got["/33100/0/2"] != lwm2m.Int(level).String() || got["/1/0/1"] != lwm2m.Int(3000+level).String() || got["/3/0/0"] == "" {
				t.Fatalf("read-composite records = %v", got)
			}
		})
	}
	// All or nothing: a composite write with one read-only resource
	// changes nothing.
	var ce *server.CodeError
	_, err := s.WriteComposite(ctx, "comp", lwm2m.FormatSenMLJSON, []lwm2m.Record{
		rec("/33100/0/2", lwm2m.Int(77)), rec("/3/0/0", lwm2m.String("nope")),
	})
	if !errors.As(err, &ce) {
		t.Fatalf("write-composite with a read-only resource: %v, want a CoAP error", err)
	}
	if got := values(t, s, "comp", lwm2m.P(33100, 0, 2)); got["/33100/0/2"] == "77" {
		t.Fatal("a refused composite write changed a value")
	}
	for name, err := range map[string]error{
		"tlv read-composite": func() error {
			_, err := s.ReadComposite(ctx, "comp", []lwm2m.Path{lwm2m.P(3, 0)}, lwm2m.FormatTLV)
			return err
		}(),
		"no paths": func() error { _, err := s.ReadComposite(ctx, "comp", nil, lwm2m.FormatSenMLJSON); return err }(),
		"instance in a composite write": func() error {
			_, err := s.WriteComposite(ctx, "comp", lwm2m.FormatSenMLJSON, []lwm2m.Record{{Path: lwm2m.P(3, 0)}})
			return err
		}(),
	} {
		if err == nil || errors.As(err, &ce) {
			t.Errorf("%s: %v, want a request error", name, err)
		}
	}
}

// TestHTTPCreateCompositeDelete goes through the HTTP JSON API: create,
// partial update (POST write), read-composite, write-composite, delete.
func TestHTTPCreateCompositeDelete(t *testing.T) {
	s := newServer(t, server.Config{CoAPAddr: "127.0.0.1:0"})
	startSensorAgent(t, s, "http-comp")
	h := httptest.NewServer(s.Handler())
	defer h.Close()
	call := func(method, path, body string, want int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, h.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		var raw bytes.Buffer
		raw.ReadFrom(resp.Body)
		json.Unmarshal(raw.Bytes(), &out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw.String(), want)
		}
		return out
	}
	out := call("POST", "/api/clients/http-comp/create/33100", `{"records":[{"path":"4/1","value":"garage"}]}`, 200)
	if out["code"] != "2.01" || out["location"] != "/33100/4" {
		t.Fatalf("create = %v", out)
	}
	call("POST", "/api/clients/http-comp/write/33100/4", `{"records":[{"path":"2","value":5}]}`, 200)
	out = call("POST", "/api/clients/http-comp/read-composite", `{"paths":["/33100/4/1","/33100/4/2"],"format":"senml-cbor"}`, 200)
	recs, _ := out["records"].([]any)
	if out["format"] != "senml-cbor" || len(recs) != 2 {
		t.Fatalf("read-composite = %v", out)
	}
	call("POST", "/api/clients/http-comp/write-composite", `{"records":[{"path":"/33100/4/2","value":6},{"path":"/33100/4/3","value":"x"}]}`, 200)
	if got := values(t, s, "http-comp", lwm2m.P(33100, 4)); got["/33100/4/2"] != "6" || got["/33100/4/3"] != "x" || got["/33100/4/1"] != "garage" {
		t.Fatalf("after the HTTP writes: %v", got)
	}
	call("POST", "/api/clients/http-comp/write-composite", `{"records":[{"path":"4/2","value":6}]}`, 400)
	call("DELETE", "/api/clients/http-comp/instances/33100/4", "", 200)
	call("DELETE", "/api/clients/http-comp/instances/33100", "", 400)
	call("DELETE", "/api/clients/http-comp/instances/33100/4", "", 502)
}

// TestObserveComposite observes a Device resource and a custom one with
// one FETCH; a change of either is notified with both values, and Cancel
// (a FETCH with Observe=1) ends it on both sides.
func TestObserveComposite(t *testing.T) {
	s := newServer(t, server.Config{CoAPAddr: "127.0.0.1:0"})
	a := startSensorAgent(t, s, "obs-comp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := s.Create(ctx, "obs-comp", lwm2m.P(33100), lwm2m.FormatTLV, []lwm2m.Record{rec("/33100/0/1", lwm2m.String("a")), rec("/33100/0/2", lwm2m.Int(1))}); err != nil {
		t.Fatal(err)
	}
	for _, format := range []lwm2m.ContentFormat{lwm2m.FormatSenMLCBOR, lwm2m.FormatSenMLJSON} {
		t.Run(format.String(), func(t *testing.T) {
			o, err := s.ObserveComposite(ctx, "obs-comp", []lwm2m.Path{lwm2m.P(3, 0, 9), lwm2m.P(33100, 0, 2)}, format)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(o.Response().Records); n != 2 {
				t.Fatalf("first answer has %d records, want 2: %+v", n, o.Response())
			}
			level := int64(40 + len(format.String()))
			if err := a.Do(ctx, agent.CmdSet{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(level)}); err != nil {
				t.Fatal(err)
			}
			select {
			case n := <-o.Notifications():
				got := map[string]string{}
				for _, r := range n.Response.Records {
					got[r.Path.String()] = r.Value.String()
				}
				if n.Err != nil || got["/3/0/9"] != lwm2m.Int(level).String() || got["/33100/0/2"] != "1" {
					t.Fatalf("notification = %v (%v)", got, n.Err)
				}
			case <-ctx.Done():
				t.Fatal("no notification after the change")
			}
			if err := o.Cancel(ctx); err != nil {
				t.Fatalf("cancel: %v", err)
			}
			if err := a.Do(ctx, agent.CmdSet{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(level + 1)}); err != nil {
				t.Fatal(err)
			}
			select {
			case n, ok := <-o.Notifications():
				if ok {
					t.Fatalf("a notification after Cancel: %+v", n)
				}
			case <-time.After(300 * time.Millisecond):
				t.Fatal("the channel stayed open after Cancel")
			}
		})
	}
}

// TestHTTPSendStream: a client's Send operations arrive on the HTTP API's
// event stream as "send" events with their records.
func TestHTTPSendStream(t *testing.T) {
	s := newServer(t, server.Config{CoAPAddr: "127.0.0.1:0"})
	a := startSensorAgent(t, s, "sender")
	h := httptest.NewServer(s.Handler())
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.URL+"/api/clients/sender/send/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("send stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := a.Do(ctx, agent.CmdSet{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(61)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9)}}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "send" {
			var out struct {
				Endpoint string `json:"endpoint"`
				Records  []struct {
					Path  string          `json:"path"`
					Value json.RawMessage `json:"value"`
				} `json:"records"`
			}
			if err := json.Unmarshal([]byte(v), &out); err != nil {
				t.Fatalf("send event %q: %v", v, err)
			}
			if out.Endpoint != "sender" || len(out.Records) != 1 || out.Records[0].Path != "/3/0/9" || string(out.Records[0].Value) != "61" {
				t.Fatalf("send event = %+v", out)
			}
			return
		}
	}
	t.Fatalf("the stream ended without a send event: %v", sc.Err())
}

// TestServerBlockwise: a value larger than one block goes to the agent
// in Block1 requests and comes back in Block2 responses, both through the
// server's own requests, and through the HTTP API.
func TestServerBlockwise(t *testing.T) {
	s := newServer(t, server.Config{CoAPAddr: "127.0.0.1:0"})
	startSensorAgent(t, s, "blocks")
	ctx := context.Background()
	note := strings.Repeat("0123456789abcdef", 300) // 4800 bytes
	if _, _, err := s.Create(ctx, "blocks", lwm2m.P(33100), lwm2m.FormatTLV, []lwm2m.Record{
		rec("/33100/2/1", lwm2m.String("big")), rec("/33100/2/3", lwm2m.String(note)),
	}); err != nil {
		t.Fatalf("create with a 4800-byte value: %v", err)
	}
	resp, err := s.Read(ctx, "blocks", lwm2m.P(33100, 2, 3), lwm2m.FormatText)
	if err != nil || string(resp.Payload) != note {
		t.Fatalf("read back %d bytes, %v; want the 4800-byte note", len(resp.Payload), err)
	}
	h := httptest.NewServer(s.Handler())
	defer h.Close()
	body, _ := json.Marshal(map[string]any{"value": strings.ToUpper(note)})
	r, err := http.NewRequest("PUT", h.URL+"/api/clients/blocks/write/33100/2/3", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.DefaultClient.Do(r)
	if err != nil || hr.StatusCode != 200 {
		t.Fatalf("HTTP write of 4800 bytes: %v %v", hr, err)
	}
	hr.Body.Close()
	if got := values(t, s, "blocks", lwm2m.P(33100, 2, 3)); got["/33100/2/3"] != strings.ToUpper(note) {
		t.Fatalf("after the HTTP write: %d bytes", len(got["/33100/2/3"]))
	}
}
