//go:build integration

package behaviour_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// TestRestartWithFetchInFlight installs a firmware update, which restarts
// the engine as after a reboot, while an HTTP pull of a software package
// (Object 9) is a third done. The pull's goroutine hands its chunks to
// the engine itself, under the lock the restart holds (the restart only
// cancels it). Checked: the update completes, the pull's old fetch ends,
// and the new engine resumes the pull from a checkpoint (a Range request)
// and delivers the package.
func TestRestartWithFetchInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	app := bytes.Repeat([]byte("application image "), 60000) // about 1 MB
	var swPkg bytes.Buffer
	if _, err := fwpkg.Build(&swPkg, fwpkg.Manifest{Name: "app", Version: "1.4.0"}, bytes.NewReader(app), nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ranges []string
	var served atomic.Int64
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		w.Header().Set("ETag", `"app-1.4.0"`)
		// About 800 KB/s: the pull lasts longer than the firmware update.
		http.ServeContent(w, r, "app.avc", time.Unix(1700000000, 0), &slowReader{r: bytes.NewReader(swPkg.Bytes()), ctx: r.Context(), n: &served})
	}))
	defer files.Close()

	var fwPkg bytes.Buffer
	if _, err := fwpkg.Build(&fwPkg, fwpkg.Manifest{Name: "fw", Version: "2.0.0"}, bytes.NewReader(bytes.Repeat([]byte("fw "), 20000)), nil); err != nil {
		t.Fatal(err)
	}
	srv, events := firmwareServer(t, ctx, server.Config{CoAPAddr: "127.0.0.1:0"}, &fwPkg)
	const ep = "restart-fetch"
	_, stop := runAgent(t, ctx, agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, StateDir: t.TempDir(),
		Device: agent.DeviceInfo{FirmwareVersion: "1.0.0"}})
	defer stop()
	if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
		t.Fatal(err)
	}

	if _, _, err := srv.Create(ctx, ep, lwm2m.P(9), lwm2m.FormatTLV, []lwm2m.Record{{Path: lwm2m.P(9, 0, 3), Value: lwm2m.String(files.URL + "/app.avc")}}); err != nil {
		t.Fatalf("create /9/0 with its Package URI: %v", err)
	}
	swState := func() int64 {
		r, err := srv.Read(ctx, ep, lwm2m.P(9, 0, 7), lwm2m.FormatSenMLJSON)
		if err != nil || len(r.Records) != 1 {
			return -1
		}
		return r.Records[0].Value.Int
	}
	// A third of the package in, several checkpoints behind it.
	for swState() != 1 || served.Load() < int64(swPkg.Len()/3) { // DOWNLOAD STARTED
		if ctx.Err() != nil {
			t.Fatalf("the software pull did not start (%d bytes served)", served.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}

	f, err := srv.StartFOTA(ctx, ep, server.FOTARequest{Image: "fw.avc", Method: server.FOTAPull, Protocol: "coap"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := f.Wait(ctx); err != nil || st.Result != 1 || st.State != 0 {
		t.Fatalf("firmware update ended with %+v, %v", st, err)
	}

	for s := swState(); s != 3; s = swState() { // DELIVERED
		if ctx.Err() != nil {
			t.Fatalf("the software package was not delivered after the restart (Update State %d)", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, err := srv.Read(ctx, ep, lwm2m.P(9, 0, 1), lwm2m.FormatText); err != nil || string(v.Payload) != "1.4.0" {
		t.Errorf("/9/0/1 = %q, %v; want 1.4.0", v.Payload, err)
	}
	mu.Lock()
	defer mu.Unlock()
	resumed := false
	for _, r := range ranges {
		if strings.HasPrefix(r, "bytes=") && !strings.HasPrefix(r, "bytes=0-") {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("requests with Range %q: the pull was not resumed after the restart", ranges)
	}
}

// slowReader reads at most 8 KiB per 10 ms, until its request is over,
// and counts what it read in n.
type slowReader struct {
	r   *bytes.Reader
	ctx context.Context
	n   *atomic.Int64
}

func (s *slowReader) Read(p []byte) (int, error) {
	select {
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	case <-time.After(10 * time.Millisecond):
	}
	n, err := s.r.Read(p[:min(len(p), 8<<10)])
	s.n.Add(int64(n))
	return n, err
}

func (s *slowReader) Seek(off int64, whence int) (int64, error) { return s.r.Seek(off, whence) }

var _ io.ReadSeeker = (*slowReader)(nil)
