package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avc-agent/avc/server"
)

func TestRenderProgress(t *testing.T) {
	tests := []struct {
		name        string
		phase       string
		done, total int64
		want        string
	}{
		{name: "phase only", phase: "updating", want: "updating"},
		{name: "nothing sent yet", phase: "downloading", total: 1000, want: "downloading"},
		{name: "unknown total", phase: "downloading", done: 10, want: "downloading"},
		{name: "half", phase: "downloading", done: 500, total: 1000,
			want: "downloading [===============>              ]  50%  500 B / 1000 B"},
		{name: "all", phase: "downloaded", done: 100 << 10, total: 100 << 10,
			want: "downloaded  [==============================] 100%  100.0 KiB / 100.0 KiB"},
		{name: "more than all", phase: "downloading", done: 3 << 20, total: 2 << 20,
			want: "downloading [==============================] 100%  2.0 MiB / 2.0 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			renderProgress(&b, tt.phase, tt.done, tt.total)
			got := b.String()
			if !strings.HasPrefix(got, "\r") || len(got) != 81 {
				t.Errorf("%q: want a carriage return and 80 columns", got)
			}
			if got := strings.TrimRight(got[1:], " "); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// fakeAPI is avc server's HTTP API as fota uses it, answering from a
// script.
type fakeAPI struct {
	t           *testing.T
	startStatus int      // of POST .../fota
	startBody   string   // its body
	streams     []string // the bodies of the successive event streams
	status      string   // the body of GET .../fota/{id}

	mu      sync.Mutex
	upload  []byte
	started map[string]any
}

// sse renders statuses as an event stream, the last as an end event too
// when it is final.
func sse(sts ...string) string {
	var b strings.Builder
	for _, st := range sts {
		b.WriteString("data: " + st + "\n\n")
	}
	if last := sts[len(sts)-1]; strings.Contains(last, `"final":true`) {
		b.WriteString("event: end\ndata: " + last + "\n\n")
	}
	return b.String()
}

func status(phase string, state, result int, bytes, total int64, final bool, errText string) string {
	b, _ := json.Marshal(map[string]any{
		"id": "f00d", "endpoint": "dev1", "image": "fw.bin", "phase": phase,
		"state": state, "state_name": server.FirmwareStateName(state),
		"result": result, "result_text": server.UpdateResultText(result),
		"bytes": bytes, "total": total, "final": final, "error": errText,
	})
	return string(b)
}

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == "PUT" && r.URL.Path == "/api/firmware/fw.bin":
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.upload = b
		a.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"name":"fw.bin","size":%d,"sha256":"abcd"}`, len(b))
	case r.Method == "POST" && r.URL.Path == "/api/clients/dev1/fota":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		a.mu.Lock()
		a.started = body
		a.mu.Unlock()
		w.Header().Set("Location", "/api/clients/dev1/fota/f00d")
		w.WriteHeader(a.startStatus)
		io.WriteString(w, a.startBody)
	case r.Method == "GET" && r.URL.Path == "/api/clients/dev1/fota/f00d/events":
		a.mu.Lock()
		if len(a.streams) == 0 {
			a.mu.Unlock()
			http.Error(w, `{"error":"no more streams"}`, http.StatusNotFound)
			return
		}
		body := a.streams[0]
		a.streams = a.streams[1:]
		a.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, body)
	case r.Method == "GET" && r.URL.Path == "/api/clients/dev1/fota/f00d":
		io.WriteString(w, a.status)
	default:
		a.t.Errorf("unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

func TestFOTACommand(t *testing.T) {
	image := bytes.Repeat([]byte("firmware"), 2560)
	file := filepath.Join(t.TempDir(), "fw.bin")
	if err := os.WriteFile(file, image, 0o644); err != nil {
		t.Fatal(err)
	}
	total := int64(len(image))
	start := status("downloading", 0, 0, 0, total, false, "")
	tests := []struct {
		name       string
		args       []string
		api        *fakeAPI // nil: none needed
		wantErr    string   // "" for success
		wantOut    string
		wantStderr []string
		wantStart  map[string]any
		wantUpload bool
	}{
		{
			name: "push with upload",
			args: []string{"-endpoint", "dev1", "-upload", file, "-method", "push"},
			api: &fakeAPI{startStatus: 202, startBody: start, streams: []string{sse(start,
				status("downloading", 1, 0, total/2, total, false, ""),
				status("downloaded", 2, 0, total, total, false, ""),
				status("updating", 3, 0, total, total, false, ""),
				status("done", 0, 1, total, total, true, ""))}},
			wantOut:    "fota: dev1: updated to fw.bin: result 1, firmware updated successfully",
			wantStderr: []string{"uploaded " + file + " as fw.bin (20.0 KiB, sha256 abcd)", " 50%  10.0 KiB / 20.0 KiB", "updating"},
			wantStart:  map[string]any{"image": "fw.bin", "method": "push", "update": true},
			wantUpload: true,
		},
		{
			name: "pull over http, download only",
			args: []string{"-endpoint", "dev1", "-image", "fw.bin", "-protocol", "http", "-download-only"},
			api: &fakeAPI{startStatus: 202, startBody: start, streams: []string{sse(start,
				status("downloaded", 2, 0, 0, total, true, ""))}},
			wantOut:   "fota: dev1: holds fw.bin, not updated (-download-only)",
			wantStart: map[string]any{"image": "fw.bin", "method": "pull", "protocol": "http", "update": false},
		},
		{
			name: "integrity failure",
			args: []string{"-endpoint", "dev1", "-image", "fw.bin"},
			api: &fakeAPI{startStatus: 202, startBody: start, streams: []string{sse(start,
				status("failed", 0, 5, 0, total, true, "update result 5 (integrity check failure for new downloaded package)"))}},
			wantErr: "fota: dev1: update failed in state idle: update result 5 (integrity check failure for new downloaded package)",
		},
		{
			name: "cancelled",
			args: []string{"-endpoint", "dev1", "-image", "fw.bin"},
			api: &fakeAPI{startStatus: 202, startBody: start, streams: []string{sse(start,
				status("failed", 1, 0, 0, total, true, "server: firmware update cancelled"))}},
			wantErr: "update failed in state downloading: server: firmware update cancelled; Update Result 0: initial value",
		},
		{
			name: "stream breaks off",
			args: []string{"-endpoint", "dev1", "-image", "fw.bin"},
			api: &fakeAPI{startStatus: 202, startBody: start,
				streams: []string{sse(start, status("updating", 3, 0, 0, total, false, ""))},
				status:  status("done", 0, 1, 0, total, true, "")},
			wantOut: "updated to fw.bin",
		},
		{
			name:    "unknown client",
			args:    []string{"-endpoint", "dev1", "-image", "fw.bin"},
			api:     &fakeAPI{startStatus: 404, startBody: `{"error":"server: client not registered: \"dev1\""}`},
			wantErr: `fota: start on dev1: 404 Not Found: server: client not registered: "dev1"`,
		},
		{
			name:    "busy",
			args:    []string{"-endpoint", "dev1", "-image", "fw.bin"},
			api:     &fakeAPI{startStatus: 409, startBody: `{"error":"server: firmware update already under way"}`},
			wantErr: "409 Conflict: server: firmware update already under way",
		},
		{name: "no endpoint", args: []string{"-image", "fw.bin"}, wantErr: "-endpoint is required"},
		{name: "no image", args: []string{"-endpoint", "dev1"}, wantErr: "-image or -upload is required"},
		{name: "bad method", args: []string{"-endpoint", "dev1", "-image", "x", "-method", "mail"}, wantErr: "bad -method"},
		{name: "push with a protocol", args: []string{"-endpoint", "dev1", "-image", "x", "-method", "push", "-protocol", "http"},
			wantErr: "-protocol is for pulls only"},
		{name: "missing upload", args: []string{"-endpoint", "dev1", "-upload", filepath.Join(t.TempDir(), "none.bin")},
			wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := tt.api
			if api == nil {
				api = &fakeAPI{}
			}
			api.t = t
			srv := httptest.NewServer(api)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			err := fotaMain(ctx, append([]string{"-api", srv.URL}, tt.args...), &out, &errOut)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v\nstderr: %s", err, errOut.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.wantOut)
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(errOut.String(), want) {
					t.Errorf("stderr %q lacks %q", errOut.String(), want)
				}
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			if tt.wantStart != nil {
				got, _ := json.Marshal(api.started)
				want, _ := json.Marshal(tt.wantStart)
				if !bytes.Equal(got, want) {
					t.Errorf("started with %s, want %s", got, want)
				}
			}
			if tt.wantUpload != (api.upload != nil) || (tt.wantUpload && !bytes.Equal(api.upload, image)) {
				t.Errorf("uploaded %d bytes, want upload %v", len(api.upload), tt.wantUpload)
			}
		})
	}
}

// TestFOTACommandAgainstServer checks fota against the real HTTP API: the
// upload lands in the firmware directory, and the API's errors come
// through.
func TestFOTACommandAgainstServer(t *testing.T) {
	dir := t.TempDir()
	s := server.New(server.Config{CoAPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", FirmwareDir: dir})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	file := filepath.Join(t.TempDir(), "fw-2.0.bin")
	if err := os.WriteFile(file, []byte("new firmware"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := fotaMain(ctx, []string{"-api", "http://" + s.HTTPAddr().String(), "-endpoint", "nobody", "-upload", file}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "404 Not Found: server: client not registered") {
		t.Errorf("error %v, want the server's 404", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "fw-2.0.bin")); err != nil || string(b) != "new firmware" {
		t.Errorf("uploaded image: %q, %v", b, err)
	}
}
