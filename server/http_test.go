package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

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

func TestHTTPAttributes(t *testing.T) {
	s, _ := withAgent(t, server.Config{HTTPAddr: "127.0.0.1:0"})
	base := "http://" + s.HTTPAddr().String() + "/api/clients/"
	tests := []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantCode   string
		wantAttrs  map[string]any // Discover's attributes of path afterwards
	}{
		{"set", "dev1/attributes/3/0/9", `{"pmin": 0, "pmax": 30, "st": 2.5}`, 200, "2.04",
			map[string]any{"pmin": "0", "pmax": "30", "st": "2.5"}},
		{"unset", "dev1/attributes/3/0/9", `{"unset": ["pmax", "st"]}`, 200, "2.04",
			map[string]any{"pmin": "0"}},
		{"negative period", "dev1/attributes/3/0/9", `{"pmin": -1}`, 400, "", nil},
		{"none", "dev1/attributes/3/0/9", `{}`, 400, "", nil},
		{"unknown field", "dev1/attributes/3/0/9", `{"pmn": 1}`, 400, "", nil},
		{"root", "dev1/attributes/", `{"pmin": 1}`, 400, "", nil},
		{"unknown client", "nobody/attributes/3/0/9", `{"pmin": 1}`, 404, "", nil},
		{"refused by the client", "dev1/attributes/3/0", `{"gt": 1}`, 502, "4.00", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			got := doJSON(t, ctx, "PUT", base+tt.path, tt.body, tt.wantStatus)
			if code, _ := got["code"].(string); code != tt.wantCode {
				t.Errorf("code %q, want %q (%v)", code, tt.wantCode, got)
			}
			if tt.wantAttrs == nil {
				return
			}
			disc := doJSON(t, ctx, "GET", base+"dev1/discover/3/0/9", "", 200)
			links, _ := disc["links"].([]any)
			if len(links) != 1 {
				t.Fatalf("discover links %v", disc["links"])
			}
			if attrs := links[0].(map[string]any)["attrs"]; !reflect.DeepEqual(attrs, tt.wantAttrs) {
				t.Errorf("attributes %v, want %v", attrs, tt.wantAttrs)
			}
		})
	}
}

func TestHTTPObserve(t *testing.T) {
	s, dev := withAgent(t, server.Config{HTTPAddr: "127.0.0.1:0"})
	base := "http://" + s.HTTPAddr().String() + "/api/clients/dev1"
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	resp, body := doHTTP(t, ctx, "POST", base+"/observe/3/0/9?format=text", "")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("observe: status %d %s", resp.StatusCode, body)
	}
	var started struct {
		ID      string           `json:"id"`
		Code    string           `json:"code"`
		Format  string           `json:"format"`
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(body, &started); err != nil {
		t.Fatalf("observe answer %s: %v", body, err)
	}
	want := []map[string]any{{"path": "/3/0/9", "type": "integer", "value": 100.0}}
	if started.ID == "" || started.Code != "2.05" || started.Format != "text" || !reflect.DeepEqual(started.Records, want) {
		t.Errorf("observe answer %s", body)
	}
	obsURL := base + "/observations/" + started.ID
	if loc := resp.Header.Get("Location"); loc != "/api/clients/dev1/observations/"+started.ID {
		t.Errorf("Location %q", loc)
	}
	_, body = doHTTP(t, ctx, "GET", base+"/observations", "")
	if want := `[{"id":"` + started.ID + `","path":"/3/0/9","format":"text"}]`; compactJSON(t, body) != want {
		t.Errorf("observations %s, want %s", body, want)
	}

	stream, events := openEvents(t, ctx, obsURL+"/events")
	defer stream.Body.Close()
	if resp, _ := doHTTP(t, ctx, "GET", obsURL+"/events", ""); resp.StatusCode != http.StatusConflict {
		t.Errorf("second event stream: status %d, want 409", resp.StatusCode)
	}

	for _, level := range []int64{40, 30} {
		dev.set(ctx, level)
		ev := nextEvent(t, ctx, events)
		var n struct {
			Seq     uint32           `json:"seq"`
			Time    time.Time        `json:"time"`
			Code    string           `json:"code"`
			Records []map[string]any `json:"records"`
		}
		if err := json.Unmarshal([]byte(ev["data"]), &n); err != nil {
			t.Fatalf("event %v: %v", ev, err)
		}
		want := []map[string]any{{"path": "/3/0/9", "type": "integer", "value": float64(level)}}
		if n.Seq == 0 || ev["id"] != strconv.Itoa(int(n.Seq)) || n.Time.IsZero() || n.Code != "2.05" || !reflect.DeepEqual(n.Records, want) {
			t.Errorf("event %v", ev)
		}
	}

	if got := doJSON(t, ctx, "DELETE", obsURL, "", 200); got["code"] != "2.05" {
		t.Errorf("cancel answer %v", got)
	}
	if ev := nextEvent(t, ctx, events); ev["event"] != "end" || !strings.Contains(ev["data"], "cancelled") {
		t.Errorf("last event %v, want an end event", ev)
	}
	if ev, ok := <-events; ok {
		t.Errorf("event %v after the end", ev)
	}

	tests := []struct {
		name       string
		method     string
		url        string
		wantStatus int
		wantCode   string
	}{
		{"cancelled observation", "DELETE", obsURL, 404, ""},
		{"events of a cancelled observation", "GET", obsURL + "/events", 404, ""},
		{"unknown client", "POST", strings.Replace(base, "dev1", "nobody", 1) + "/observe/3/0/9", 404, ""},
		{"missing object", "POST", base + "/observe/5/0", 502, "4.04"},
		{"bad format", "POST", base + "/observe/3/0/9?format=xml", 400, ""},
		{"root", "POST", base + "/observe/", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := doJSON(t, ctx, tt.method, tt.url, "", tt.wantStatus)
			if code, _ := got["code"].(string); code != tt.wantCode {
				t.Errorf("code %q, want %q", code, tt.wantCode)
			}
		})
	}
}

// doHTTP makes an HTTP request and returns the response and its body.
func doHTTP(t *testing.T, ctx context.Context, method, url, body string) (*http.Response, []byte) {
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
	return resp, b
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return buf.String()
}

// openEvents opens a Server-Sent Events stream and returns its events,
// each a map of field name to value ("event", "id", "data"); the channel
// closes at the end of the stream.
func openEvents(t *testing.T, ctx context.Context, url string) (*http.Response, <-chan map[string]string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("GET %s: status %d, Content-Type %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan map[string]string, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		ev := map[string]string{}
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if len(ev) > 0 {
					events <- ev
				}
				ev = map[string]string{}
				continue
			}
			name, value, _ := strings.Cut(line, ":")
			ev[name] = strings.TrimPrefix(value, " ")
		}
	}()
	return resp, events
}

func nextEvent(t *testing.T, ctx context.Context, events <-chan map[string]string) map[string]string {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("event stream ended")
		}
		return ev
	case <-ctx.Done():
		t.Fatalf("no event: %v", ctx.Err())
		return nil
	}
}
