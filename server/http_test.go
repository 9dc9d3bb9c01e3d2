package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/avc-agent/avc/server"
)

func TestHTTPAPI(t *testing.T) {
	s, c := registered(t, server.Config{HTTPAddr: "127.0.0.1:0"}, "dev1")
	base := "http://" + s.HTTPAddr().String()

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		want       map[string]any // fields that must be in the JSON answer
		wantReq    string         // "METHOD /path payload" the client must receive
	}{
		{name: "unknown client", method: "GET", path: "/api/clients/nobody",
			wantStatus: 404},
		{name: "one client", method: "GET", path: "/api/clients/dev1",
			wantStatus: 200, want: map[string]any{
				"endpoint": "dev1", "lifetime": 300.0, "binding": "U", "lwm2m": "1.1",
				"objects": []any{"/1/0", "/3/0"}, "addr": c.addr(),
			}},
		{name: "read TLV", method: "GET", path: "/api/clients/dev1/read/3/0?format=tlv",
			wantStatus: 200, want: map[string]any{
				"code": "2.05", "format": "tlv", "payload_hex": "c30061766 3c10957",
				"records": []any{
					map[string]any{"path": "/3/0/0", "type": "string", "value": "avc"},
					map[string]any{"path": "/3/0/9", "type": "integer", "value": 87.0},
				},
			}},
		{name: "read text", method: "GET", path: "/api/clients/dev1/read/3/0/0?format=text",
			wantStatus: 200, want: map[string]any{
				"code": "2.05", "format": "text",
				"records": []any{map[string]any{"path": "/3/0/0", "type": "string", "value": "avc"}},
			}},
		{name: "read missing object", method: "GET", path: "/api/clients/dev1/read/5/0",
			wantStatus: 502, want: map[string]any{"code": "4.04"}},
		{name: "read unknown client", method: "GET", path: "/api/clients/nobody/read/3/0",
			wantStatus: 404},
		{name: "read bad path", method: "GET", path: "/api/clients/dev1/read/3/x",
			wantStatus: 400},
		{name: "read root", method: "GET", path: "/api/clients/dev1/read/",
			wantStatus: 400},
		{name: "read bad format", method: "GET", path: "/api/clients/dev1/read/3/0?format=xml",
			wantStatus: 400},
		{name: "write value", method: "PUT", path: "/api/clients/dev1/write/1/0/1", body: `{"value": 120}`,
			wantStatus: 200, want: map[string]any{"code": "2.04"}, wantReq: "PUT /1/0/1 120"},
		{name: "write value of the wrong type", method: "PUT", path: "/api/clients/dev1/write/1/0/1", body: `{"value": "soon"}`,
			wantStatus: 400},
		{name: "write records", method: "PUT", path: "/api/clients/dev1/write/1/0",
			body:       `{"records": [{"path": "/1/0/1", "value": 60}], "format": "tlv"}`,
			wantStatus: 200, want: map[string]any{"code": "2.04"}, wantReq: "PUT /1/0 \xc1\x01\x3c"},
		{name: "write value and records", method: "PUT", path: "/api/clients/dev1/write/1/0/1",
			body: `{"value": 1, "records": []}`, wantStatus: 400},
		{name: "write unknown field", method: "PUT", path: "/api/clients/dev1/write/1/0/1",
			body: `{"valeu": 1}`, wantStatus: 400},
		{name: "write missing resource", method: "PUT", path: "/api/clients/dev1/write/3/0/14",
			body: `{"value": "+01"}`, wantStatus: 502, want: map[string]any{"code": "4.04"}},
		{name: "execute", method: "POST", path: "/api/clients/dev1/execute/3/0/4", body: "0='now'",
			wantStatus: 200, want: map[string]any{"code": "2.04"}, wantReq: "POST /3/0/4 0='now'"},
		{name: "execute an instance", method: "POST", path: "/api/clients/dev1/execute/3/0",
			wantStatus: 400},
		{name: "discover", method: "GET", path: "/api/clients/dev1/discover/3/0",
			wantStatus: 200, want: map[string]any{
				"code": "2.05", "payload": device3Links,
				"links": []any{
					map[string]any{"target": "/3/0"},
					map[string]any{"target": "/3/0/0"},
					map[string]any{"target": "/3/0/4"},
					map[string]any{"target": "/3/0/9", "attrs": map[string]any{"pmin": "10"}},
				},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			got := doJSON(t, ctx, tt.method, base+tt.path, tt.body, tt.wantStatus)
			if tt.wantStatus >= 400 {
				if msg, _ := got["error"].(string); msg == "" {
					t.Errorf("error answer %v has no error message", got)
				}
			}
			for k, want := range tt.want {
				if k == "payload_hex" {
					want = strings.ReplaceAll(want.(string), " ", "")
				}
				if !reflect.DeepEqual(got[k], want) {
					t.Errorf("%s = %#v, want %#v", k, got[k], want)
				}
			}
			if tt.wantReq != "" {
				req := c.nextRequest(ctx)
				if s := req.Method.String() + " " + req.Path + " " + string(req.Payload); s != tt.wantReq {
					t.Errorf("client got %q, want %q", s, tt.wantReq)
				}
			}
		})
	}
}

func TestHTTPClientList(t *testing.T) {
	s := newServer(t, server.Config{})
	h := s.Handler()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, ep := range []string{"b", "a"} {
		dialFake(t, s).register(ctx, ep, "300")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/api/clients", nil))
	var got []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET /api/clients: %d %s: %v", rec.Code, rec.Body.Bytes(), err)
	}
	if len(got) != 2 || got[0]["endpoint"] != "a" || got[1]["endpoint"] != "b" {
		t.Errorf("GET /api/clients = %v, want a and b", got)
	}
}

// doJSON makes an HTTP request and decodes its JSON object answer.
func doJSON(t *testing.T, ctx context.Context, method, url, body string, wantStatus int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d %s, want %d", method, url, resp.StatusCode, b, wantStatus)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: answer %s: %v", method, url, b, err)
	}
	return m
}
