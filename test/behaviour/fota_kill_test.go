//go:build integration

package behaviour_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/server/servertest"
)

// throttled writes a response at about rate bytes/s and counts what it
// wrote, so that a killed client leaves little in the socket buffers and
// the test can measure what was fetched.
type throttled struct {
	http.ResponseWriter
	n    *atomic.Int64
	rate int
}

func (w throttled) Write(p []byte) (int, error) {
	const chunk = 8 << 10
	written := 0
	for len(p) > 0 {
		k := min(len(p), chunk)
		n, err := w.ResponseWriter.Write(p[:k])
		written += n
		w.n.Add(int64(n))
		if err != nil {
			return written, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[k:]
		time.Sleep(time.Duration(k) * time.Second / time.Duration(w.rate))
	}
	return written, nil
}

// TestFOTAKillResume kills the agent process (SIGKILL) at random points of
// a 4 MiB HTTP pull ten times: every restart resumes from the last
// checkpoint, the stored image is the package's, at most 1.10× the
// package is fetched, and the update then installs.
func TestFOTAKillResume(t *testing.T) {
	bin := artefact(t, "AVC_CLI", "avc")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, events := servertest.Start(t, ctx, server.Config{})

	img := make([]byte, 4<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	var pkg bytes.Buffer
	if _, err := fwpkg.Build(&pkg, fwpkg.Manifest{Name: "fw", Version: "2.0.0"}, bytes.NewReader(img), nil); err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("ETag", `"pkg-1"`)
		http.ServeContent(throttled{w, &served, 1 << 20}, req, "fw.avc", time.Unix(1700000000, 0), bytes.NewReader(pkg.Bytes()))
	}))
	defer files.Close()

	ep := "fota-kill"
	stateDir := t.TempDir()
	env := map[string]string{
		agent.EnvServerURI: "coap://" + srv.CoAPAddr().String(),
		agent.EnvEndpoint:  ep,
		agent.EnvLifetime:  "300",
		agent.EnvLogLevel:  "info",
		agent.EnvStateDir:  stateDir,
		agent.EnvFWVersion: "1.0.0",
	}
	var out syncBuffer
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run")
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
			t.Fatalf("no registration: %v\n%s", err, out.String())
		}
		return cmd
	}
	cmd := start()
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("agent output:\n%s", out.String())
		}
	}()
	if _, err := srv.Write(ctx, ep, lwm2m.P(5, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(5, 0, 1), Value: lwm2m.String(files.URL + "/fw.avc")}}); err != nil {
		t.Fatal(err)
	}
	for kill := 0; kill < 10; kill++ {
		time.Sleep(time.Duration(150+r.IntN(200)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		cmd = start()
	}
	state := func() (int, int) {
		st, err1 := srv.Read(ctx, ep, lwm2m.P(5, 0, 3), lwm2m.FormatText)
		res, err2 := srv.Read(ctx, ep, lwm2m.P(5, 0, 5), lwm2m.FormatText)
		if err1 != nil || err2 != nil {
			return -1, -1
		}
		a, _ := strconv.Atoi(string(st.Payload))
		b, _ := strconv.Atoi(string(res.Payload))
		return a, b
	}
	for {
		st, res := state()
		if st == 2 {
			break
		}
		if st == 0 && res != 0 {
			t.Fatalf("download failed with result %d", res)
		}
		if ctx.Err() != nil {
			t.Fatal("download did not finish")
		}
		time.Sleep(100 * time.Millisecond)
	}
	stored, err := os.ReadFile(filepath.Join(stateDir, "firmware", "image.bin"))
	if err != nil || sha256.Sum256(stored) != sha256.Sum256(img) {
		t.Fatalf("stored image differs from the package's (%d bytes, %v)", len(stored), err)
	}
	ratio := float64(served.Load()) / float64(pkg.Len())
	t.Logf("fetched %.3f× the package over 10 kills", ratio)
	if ratio > 1.10 {
		t.Errorf("fetched %.2f× the package over 10 kills, want ≤ 1.10", ratio)
	}

	if _, err := srv.Execute(ctx, ep, lwm2m.P(5, 0, 2), ""); err != nil {
		t.Fatal(err)
	}
	// The agent restarts its engine as after a reboot and registers again.
	if _, err := server.WaitEvent(ctx, events, ep, server.EventRegistered); err != nil {
		t.Fatalf("no registration after the install: %v", err)
	}
	for {
		st, res := state()
		if st == 0 && res == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after the install: state %d result %d", st, res)
		}
		time.Sleep(100 * time.Millisecond)
	}
	v, err := srv.Read(ctx, ep, lwm2m.P(3, 0, 3), lwm2m.FormatText)
	if err != nil || string(v.Payload) != "2.0.0" {
		t.Errorf("/3/0/3 = %q, %v; want 2.0.0", v.Payload, err)
	}
}
