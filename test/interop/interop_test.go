//go:build integration

package interop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
)

var dir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}()

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// peer is a running lwm2m-node-lib server script.
type peer struct {
	lines chan map[string]any
	cmd   *exec.Cmd
	log   *strings.Builder
}

func startNodeServer(t *testing.T) (*peer, int) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "lwm2m-node-lib")); err != nil {
		t.Fatalf("lwm2m-node-lib is not installed (%v); run `make deps` (part of `make test`)", err)
	}
	port := freeUDPPort(t)
	cmd := exec.Command("node", "lwm2m-node-server.cjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("LWM2M_PORT=%d", port), "RUN_SECONDS=60")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &peer{lines: make(chan map[string]any, 64), cmd: cmd, log: &strings.Builder{}}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.log.WriteString(line + "\n")
			var m map[string]any
			if strings.HasPrefix(line, "RESULT ") {
				m = map[string]any{"final": strings.TrimPrefix(line, "RESULT ")}
			} else if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			p.lines <- m
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return p, port
}

// next returns the next line that has key, failing after timeout.
func (p *peer) next(t *testing.T, key string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				t.Fatalf("lwm2m-node-lib exited while waiting for %q; output:\n%s", key, p.log)
			}
			if _, has := m[key]; has {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q from lwm2m-node-lib within %v; output:\n%s", key, timeout, p.log)
		}
	}
}

// checkObserve checks, in the output of lwm2m-node-server.cjs, that
// Write-Attributes on /3/0/9 passed, and that the observation of /3/0/9
// passed with at least two notifications after the first value.
func checkObserve(t *testing.T, output string) {
	t.Helper()
	var attrs, observe map[string]any
	notifies := 0
	for _, line := range strings.Split(output, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch {
		case m["step"] == "writeAttributes" && m["path"] == "/3/0/9":
			attrs = m
		case m["step"] == "observe" && m["path"] == "/3/0/9":
			observe = m
		case m["notify"] == "/3/0/9" && m["first"] == nil:
			notifies++
		}
	}
	if attrs == nil || attrs["pass"] != true {
		t.Errorf("writeAttributes /3/0/9 did not pass: %v", attrs)
	}
	if observe == nil || observe["pass"] != true {
		t.Fatalf("observe /3/0/9 did not pass: %v", observe)
	}
	if n, _ := observe["notifies"].(float64); n < 2 || notifies < 2 {
		t.Errorf("observe /3/0/9: %v notifications reported, %d NOTIFY lines; want at least 2", observe["notifies"], notifies)
	}
	t.Logf("observe /3/0/9: first value %v, %d notifications in %v ms", observe["result"], notifies, observe["ms"])
}

// TestLwm2mNodeLib: registration, resource reads, writes (including one
// that changes the lifetime and so triggers a Registration Update), an
// Execute of /1/0/8, refused operations, Write-Attributes (pmin=0, pmax=1)
// and an observation of /3/0/9 that the agent's pmax drives, and
// de-registration, driven by lwm2m-node-lib 1.4.0 over text/plain.
func TestLwm2mNodeLib(t *testing.T) {
	p, port := startNodeServer(t)
	if m := p.next(t, "event", 20*time.Second); m["event"] != "listening" {
		t.Fatalf("first line = %v", m)
	}
	cfg := agent.Config{ServerURI: fmt.Sprintf("coap://127.0.0.1:%d", port), Endpoint: "interop-1", Lifetime: 300 * time.Second}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	go func() {
		for range a.Events() {
		}
	}()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	reg := p.next(t, "event", 20*time.Second)
	if reg["event"] != "register" || reg["ep"] != "interop-1" || reg["lwm2m"] != "1.1" || reg["lt"] != float64(300) {
		t.Fatalf("registration seen by lwm2m-node-lib = %v", reg)
	}
	res := p.next(t, "final", 45*time.Second)
	if res["final"] != "ok" {
		t.Fatalf("lwm2m-node-lib steps failed:\n%s", p.log)
	}
	for _, step := range []string{`"step":"read","path":"/3/0/0"`, `"step":"write","path":"/1/0/1"`, `"step":"execute","path":"/1/0/8"`} {
		if !strings.Contains(p.log.String(), step) {
			t.Errorf("output lacks %s", step)
		}
	}
	checkObserve(t, p.log.String())
	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Errorf("agent run: %v", err)
	}
	for {
		if m := p.next(t, "event", 15*time.Second); m["event"] == "deregister" {
			break
		}
	}
}
