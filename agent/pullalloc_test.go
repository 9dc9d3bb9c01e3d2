package agent_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/server/servertest"
)

// TestPullAllocationsIndependentOfSize pulls a 2 MiB and a 16 MiB image
// with a real agent, state directory and file storage, over coap from
// libcoap's server and over http, and checks that the larger pull
// allocates less than one object more per 64 KiB checkpoint: blocks and
// checkpoints allocate nothing (what a pull allocates is bounded: about a
// hundred progress events, whatever the size), so a pull of any size
// leaves the Go heap, and the process's memory, as it found it. This is
// what keeps the peak memory growth of `make bench` independent of the
// image size.
func TestPullAllocationsIndependentOfSize(t *testing.T) {
	small, large := image(2<<20, 1), image(16<<20, 2)
	for _, tc := range []struct {
		name  string
		serve func(t *testing.T, name string, img []byte) string // the URI
	}{
		{"coap", func(t *testing.T, name string, img []byte) string {
			return agenttest.LibcoapFileServer(t, "coap-server-notls", "", name, img).URI
		}},
		{"http", func(t *testing.T, name string, img []byte) string {
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.ServeContent(w, r, name, time.Unix(1, 0), bytes.NewReader(img))
			}))
			t.Cleanup(s.Close)
			return s.URL + "/" + name
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			smallURI, largeURI := tc.serve(t, "small.bin", small), tc.serve(t, "large.bin", large)
			srv, events := servertest.Start(t, ctx, server.Config{})
			cfg := agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: "alloc", Lifetime: 300 * time.Second, StateDir: t.TempDir()}
			a, err := agent.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() { cancel(); <-done }()
			if _, err := server.WaitEvent(ctx, events, "alloc", server.EventRegistered); err != nil {
				t.Fatal(err)
			}
			pull := func(uri string) uint64 {
				t.Helper()
				write := func(v string) {
					t.Helper()
					if _, err := srv.Write(ctx, "alloc", lwm2m.P(5, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(5, 0, 1), Value: lwm2m.String(v)}}); err != nil {
						t.Fatal(err)
					}
				}
				write("") // back to Idle
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				write(uri)
				st := agenttest.AwaitDownload(a.Events())
				runtime.ReadMemStats(&after)
				if st.State != agent.FirmwareDownloaded {
					t.Fatalf("pull of %s ended %+v", uri, st)
				}
				return after.Mallocs - before.Mallocs
			}
			pull(smallURI) // what the first pull sets up once (the servers' too)
			s, l := pull(smallURI), pull(largeURI)
			checkpoints := uint64(len(large)-len(small)) / (64 << 10)
			t.Logf("allocations: 2 MiB pull %d, 16 MiB pull %d", s, l)
			if l > s && l-s >= checkpoints {
				t.Errorf("the 16 MiB pull allocated %d objects more than the 2 MiB one: %d checkpoints more, so some allocate", l-s, checkpoints)
			}
		})
	}
}
