package agent_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/server/servertest"
)

// TestAgentOverUDP runs the native driver against the embedded server on
// loopback, and restarts it from its state directory.
func TestAgentOverUDP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, events := servertest.Start(t, ctx, server.Config{})
	dir := t.TempDir()
	cfg := agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: "udp-1", Lifetime: 300 * time.Second, StateDir: dir}

	runAgent := func() (context.CancelFunc, chan error, *agent.Agent) {
		a, err := agent.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		go func() {
			for range a.Events() {
			}
		}()
		return stop, done, a
	}

	stop, done, a := runAgent()
	if _, err := server.WaitEvent(ctx, events, "udp-1", server.EventRegistered); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, agent.CmdStart{}); !errors.Is(err, agent.ErrDuplicate) {
		t.Errorf("second start = %v, want ErrDuplicate", err)
	}
	if _, err := srv.Write(ctx, "udp-1", lwm2m.P(1, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(150)}}); err != nil {
		t.Fatal(err)
	}
	if ev, err := server.WaitEvent(ctx, events, "udp-1", server.EventUpdated); err != nil || ev.Lifetime != 150*time.Second {
		t.Fatalf("update = %+v, %v", ev, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := server.WaitEvent(ctx, events, "udp-1", server.EventDeregistered); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, agent.CmdUpdate{}); !errors.Is(err, agent.ErrClosed) {
		t.Errorf("command after Run = %v, want ErrClosed", err)
	}
	info, err := os.Stat(filepath.Join(dir, "agent-state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, want 0600", info.Mode().Perm())
	}

	// The restarted agent registers with the lifetime the server wrote.
	stop, done, _ = runAgent()
	ev, err := server.WaitEvent(ctx, events, "udp-1", server.EventRegistered)
	if err != nil || ev.Lifetime != 150*time.Second {
		t.Fatalf("after restart: %+v, %v", ev, err)
	}
	stop()
	<-done
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f")
	for _, content := range [][]byte{[]byte("old"), []byte("new")} {
		if err := agent.WriteFileAtomic(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
