//go:build integration

package behaviour_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/server/servertest"
	"github.com/avc-agent/avc/wasm/host"
)

// root is the repository root.
var root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}()

// artefact returns the path of a built file, from its environment variable
// or build/, and fails the test when it is missing.
func artefact(t *testing.T, env, name string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(root, "build", name)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing (%v); run `make build` first", p, err)
	}
	return p
}

// running is an embedding that was started.
type running struct {
	stop   func() error // graceful stop; returns once the embedding exited
	output func() string
}

// embedding starts one agent embedding configured by env.
type embedding struct {
	name string
	// started and stopped are markers the embedding prints for the
	// session events (empty for in-process embeddings, checked by events).
	started, stopped string
	// sends: once registered, the embedding reports the battery level
	// /3/0/9 with the LwM2M Send operation (the c example is written
	// against le_avc only and does not); sent is the line it prints then
	// (empty for in-process embeddings).
	sends bool
	sent  string
	// dtls: the embedding speaks coaps (DTLS-PSK) from AVC_PSK_IDENTITY
	// and AVC_PSK_KEY; certs: also with certificates (AVC_CERT_FILE...).
	dtls, certs bool
	start       func(t *testing.T, env map[string]string) running
}

func TestScenarioEveryEmbedding(t *testing.T) {
	for _, e := range embeddings() {
		t.Run(e.name, func(t *testing.T) {
			scenario(t, e, "")
		})
	}
}

// TestScenarioOverCoaps runs the same scenario over coaps: the server
// listens for DTLS only on the port the agent is given, with a pre-shared
// key (one identity) or with certificates (its own and its clients' from
// one CA); every embedding that speaks DTLS takes its credential from the
// same configuration names.
func TestScenarioOverCoaps(t *testing.T) {
	for _, mode := range []string{"psk", "cert"} {
		for _, e := range embeddings() {
			if !e.dtls || (mode == "cert" && !e.certs) {
				continue
			}
			t.Run(mode+"/"+e.name, func(t *testing.T) {
				scenario(t, e, mode)
			})
		}
	}
}

// scenarioPSK is the key of the coaps scenario's identity "bh-psk".
var scenarioPSK = []byte{0x5c, 0x3a, 0x11, 0x42, 0x9e, 0x07, 0xd4, 0x61, 0x2b, 0x88, 0xf0, 0x13, 0x6a, 0xc5, 0x39, 0x7e}

// scenario: register → the server reads /3/0 → writes /1/0/1 (lifetime) →
// the agent sends a Registration Update with the new lifetime → the server
// writes pmax=1 on /3/0/9, observes it and gets a notification, cancels →
// executes /1/0/8 → another update → the agent stops and de-registers.
// An embedding that sends reports /3/0/9 = 100 right after registering.
func scenario(t *testing.T, e embedding, dtls string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := server.Config{CoAPAddr: "127.0.0.1:0"}
	env := map[string]string{}
	switch dtls {
	case "psk":
		cfg.CoAPSAddr = "127.0.0.1:0"
		cfg.PSK = func(identity []byte) ([]byte, error) {
			if string(identity) != "bh-psk" {
				return nil, fmt.Errorf("unknown identity %q", identity)
			}
			return scenarioPSK, nil
		}
		env[agent.EnvPSKIdentity] = "bh-psk"
		env[agent.EnvPSKKey] = fmt.Sprintf("%x", scenarioPSK)
	case "cert":
		dir := t.TempDir()
		ca := agenttest.NewCA(t, "bh-ca")
		pair, _, _ := ca.Issue(t, dir, "bh-server", net.IPv4(127, 0, 0, 1))
		_, certFile, keyFile := ca.Issue(t, dir, "bh-client")
		cfg.CoAPSAddr, cfg.Certificate, cfg.ClientCAs = "127.0.0.1:0", &pair, ca.Pool()
		env[agent.EnvCertFile], env[agent.EnvKeyFile], env[agent.EnvCAFile] = certFile, keyFile, ca.File(t, dir)
	}
	srv := server.New(cfg)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()

	ep := "bh-" + e.name
	uri := "coap://" + srv.CoAPAddr().String()
	if dtls != "" {
		ep += "-" + dtls
		uri = "coaps://" + srv.CoAPSAddr().String()
	}
	for k, v := range map[string]string{
		agent.EnvServerURI: uri,
		agent.EnvEndpoint:  ep,
		agent.EnvLifetime:  "300",
		agent.EnvLogLevel:  "warn",
		agent.EnvStateDir:  t.TempDir(),
	} {
		env[k] = v
	}
	r := e.start(t, env)
	stopped := false
	defer func() {
		if !stopped {
			r.stop()
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", e.name, r.output())
		}
	}()

	reg, err := server.WaitEvent(ctx, events, ep, server.EventRegistered)
	if err != nil {
		t.Fatalf("no registration: %v", err)
	}
	if reg.Lifetime != 300*time.Second || reg.Version != "1.1" || reg.Binding != "U" {
		t.Errorf("registration = lifetime %v, lwm2m %q, binding %q; want 300s, 1.1, U", reg.Lifetime, reg.Version, reg.Binding)
	}
	if !hasLink(reg, "/3/0") || !hasLink(reg, "/1/0") || hasLink(reg, "/0/0") {
		t.Errorf("registration objects = %v; want /1/0 and /3/0 without /0/0", reg.Links)
	}

	if e.sends {
		sent, err := server.WaitEvent(ctx, events, ep, server.EventSend)
		if err != nil {
			t.Fatalf("no send after the registration: %v", err)
		}
		if len(sent.Records) != 1 || sent.Records[0].Path != lwm2m.P(3, 0, 9) || sent.Records[0].Value.String() != "100" {
			t.Errorf("send records = %v; want /3/0/9 = 100", sent.Records)
		}
	}

	resp, err := srv.Read(ctx, ep, lwm2m.P(3, 0), lwm2m.FormatTLV)
	if err != nil {
		t.Fatalf("read /3/0: %v", err)
	}
	vals := map[string]string{}
	for _, rec := range resp.Records {
		vals[rec.Path.String()] = rec.Value.String()
	}
	if vals["/3/0/0"] == "" || vals["/3/0/2"] != ep || vals["/3/0/16"] != "U" || vals["/3/0/11/0"] != "0" {
		t.Errorf("read /3/0 = %v", vals)
	}

	if _, err := srv.Write(ctx, ep, lwm2m.P(1, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(120)}}); err != nil {
		t.Fatalf("write /1/0/1: %v", err)
	}
	up, err := server.WaitEvent(ctx, events, ep, server.EventUpdated)
	if err != nil {
		t.Fatalf("no registration update after the lifetime write: %v", err)
	}
	if up.Lifetime != 120*time.Second {
		t.Errorf("update lifetime = %v, want 120s", up.Lifetime)
	}
	if lt, err := srv.Read(ctx, ep, lwm2m.P(1, 0, 1), lwm2m.FormatText); err != nil || string(lt.Payload) != "120" {
		t.Errorf("read /1/0/1 = %v, %v; want 120", lt, err)
	}
	// Observe: with pmax=1 the agent notifies every second by itself.
	pmax := int64(1)
	if _, err := srv.WriteAttributes(ctx, ep, lwm2m.P(3, 0, 9), server.Attributes{Pmax: &pmax}); err != nil {
		t.Fatalf("write attributes /3/0/9: %v", err)
	}
	obs, err := srv.Observe(ctx, ep, lwm2m.P(3, 0, 9), lwm2m.FormatText)
	if err != nil {
		t.Fatalf("observe /3/0/9: %v", err)
	}
	select {
	case n := <-obs.Notifications():
		if n.Err != nil || len(n.Response.Records) != 1 || n.Response.Records[0].Value.String() != "100" {
			t.Errorf("notification = %+v", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5 s of pmax=1")
	}
	if err := obs.Cancel(ctx); err != nil {
		t.Errorf("cancel observation: %v", err)
	}

	if _, err := srv.Execute(ctx, ep, lwm2m.P(1, 0, 8), ""); err != nil {
		t.Fatalf("execute /1/0/8: %v", err)
	}
	if _, err := server.WaitEvent(ctx, events, ep, server.EventUpdated); err != nil {
		t.Fatalf("no registration update after /1/0/8: %v", err)
	}

	if err := r.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	stopped = true
	if _, err := server.WaitEvent(ctx, events, ep, server.EventDeregistered); err != nil {
		t.Fatalf("no de-registration: %v", err)
	}
	out := r.output()
	for _, m := range []string{e.started, e.stopped, e.sent} {
		if m != "" && !strings.Contains(out, m) {
			t.Errorf("output lacks %q", m)
		}
	}
}

func hasLink(ev server.Event, target string) bool {
	for _, l := range ev.Links {
		if l.Target == target {
			return true
		}
	}
	return false
}

func embeddings() []embedding {
	return []embedding{
		{name: "go", sends: true, dtls: true, certs: true, start: startNative},
		{name: "go-example", started: "event: registered", stopped: "event: deregistered", sends: true, sent: "sent: /3/0/9", dtls: true, certs: true, start: startGoExample},
		{name: "c", started: "LE_AVC_SESSION_STARTED", stopped: "LE_AVC_SESSION_STOPPED", dtls: true, certs: true, start: startC},
		{name: "python", started: "SESSION_STARTED", stopped: "SESSION_STOPPED", sends: true, sent: "send requested: /3/0/9", dtls: true, certs: true, start: startPython},
		{name: "wazero", sends: true, dtls: true, start: startWazero},
		{name: "node", started: "registered", stopped: "deregistered", sends: true, sent: "sent: /3/0/9", dtls: true, start: startNode},
	}
}

// eventLog collects in-process events as text.
type eventLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *eventLog) add(ev agent.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, "%s %s %s\n", ev.Kind, ev.Location, ev.Path)
}

// note adds a line that is not an event.
func (l *eventLog) note(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(&l.buf, line)
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func startNative(t *testing.T, env map[string]string) running {
	var cfg agent.Config
	if err := cfg.ApplyMap(env); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return runInProcess(a.Run, a.Events(), func(ctx context.Context) error {
		return a.Do(ctx, agent.CmdSend{Paths: []lwm2m.Path{lwm2m.P(3, 0, 9)}})
	})
}

func startWazero(t *testing.T, env map[string]string) running {
	wasm, err := os.ReadFile(artefact(t, "AVC_WASM", "avc.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := host.New(context.Background(), wasm, env)
	if err != nil {
		t.Fatal(err)
	}
	return runInProcess(a.Run, a.Events(), func(ctx context.Context) error {
		return a.Send(ctx, "/3/0/9")
	})
}

// runInProcess runs an in-process agent; on its first registered event it
// calls send (from another goroutine: it waits for run) and logs a failure
// as a "send: <error>" line.
func runInProcess(run func(context.Context) error, events <-chan agent.Event, send func(context.Context) error) running {
	ctx, cancel := context.WithCancel(context.Background())
	log := &eventLog{}
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	drained := make(chan struct{})
	go func() {
		sent := false
		for ev := range events {
			log.add(ev)
			if ev.Kind == agent.EventRegistered && !sent {
				sent = true
				go func() {
					if err := send(ctx); err != nil {
						log.note("send: " + err.Error())
					}
				}()
			}
		}
		close(drained)
	}()
	return running{
		stop: func() error {
			cancel()
			err := <-done
			<-drained
			if !strings.Contains(log.String(), "deregistered") {
				return fmt.Errorf("no deregistered event; events:\n%s", log)
			}
			return err
		},
		output: log.String,
	}
}

// startProcess runs a command with env added to the environment; stop
// sends SIGTERM and expects exit status 0 within 20 s.
func startProcess(t *testing.T, env map[string]string, extra []string, name string, args ...string) running {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, extra...)
	var out syncBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return running{
		stop: func() error {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				if err != nil {
					return fmt.Errorf("%s exited: %v", name, err)
				}
				return nil
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				return fmt.Errorf("%s did not exit within 20 s of SIGTERM", name)
			}
		},
		output: out.String,
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildOnce builds helper binaries once per test run.
var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
)

func buildOnce(t *testing.T, key string, build func(dir string) (string, error)) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[key]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "avc-behaviour-")
	if err != nil {
		t.Fatal(err)
	}
	p, err := build(dir)
	if err != nil {
		t.Fatalf("build %s: %v", key, err)
	}
	buildCache[key] = p
	return p
}

func run(dir string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %v\n%s", name, args, err, out)
	}
	return nil
}

func startGoExample(t *testing.T, env map[string]string) running {
	bin := buildOnce(t, "go-example", func(dir string) (string, error) {
		p := filepath.Join(dir, "go-example")
		return p, run(root, "go", "build", "-o", p, "./examples/go")
	})
	return startProcess(t, env, nil, bin)
}

func startC(t *testing.T, env map[string]string) running {
	lib := artefact(t, "AVC_LIBRARY", "libavc.so")
	bin := buildOnce(t, "c-example", func(dir string) (string, error) {
		p := filepath.Join(dir, "register")
		return p, run(root, "cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", filepath.Join(root, "include"),
			"-o", p, filepath.Join(root, "examples", "c", "register.c"), "-L", filepath.Dir(lib), "-lavc")
	})
	return startProcess(t, env, []string{"LD_LIBRARY_PATH=" + filepath.Dir(lib)}, bin)
}

func startPython(t *testing.T, env map[string]string) running {
	lib := artefact(t, "AVC_LIBRARY", "libavc.so")
	return startProcess(t, env, []string{"AVC_LIBRARY=" + lib, "PYTHONPATH=" + filepath.Join(root, "bindings", "python"), "PYTHONUNBUFFERED=1"},
		"python3", filepath.Join(root, "examples", "python", "register.py"))
}

func startNode(t *testing.T, env map[string]string) running {
	wasm := artefact(t, "AVC_WASM", "avc.wasm")
	return startProcess(t, env, []string{"AVC_WASM=" + wasm}, "node", filepath.Join(root, "examples", "node", "register.mjs"))
}

// TestLeAvcDocProgram builds a C program written only from Legato's le_avc
// documentation exactly as the acceptance criterion says
// (cc -I<headers> prog.c -L build -lavc) and runs it against the server.
func TestLeAvcDocProgram(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, events := servertest.Start(t, ctx, server.Config{})

	out, err := runDocProgram(t, ctx, "coap://"+srv.CoAPAddr().String(), "doc-prog")
	if err != nil {
		t.Fatalf("doc program: %v\n%s", err, out)
	}
	for _, kind := range []server.EventKind{server.EventRegistered, server.EventDeregistered} {
		if _, err := server.WaitEvent(ctx, events, "doc-prog", kind); err != nil {
			t.Errorf("server saw no %s: %v\n%s", kind, err, out)
		}
	}
}

// runDocProgram compiles capi/testdata/doc_example.c and runs it with
// AVC_SERVER_URI set; it returns the program's output.
func runDocProgram(t *testing.T, ctx context.Context, uri, ep string) (string, error) {
	lib := artefact(t, "AVC_LIBRARY", "libavc.so")
	bin := buildOnce(t, "doc-example", func(dir string) (string, error) {
		p := filepath.Join(dir, "doc_example")
		return p, run(root, "cc", "-I", filepath.Join(root, "include"), "-o", p,
			filepath.Join(root, "capi", "testdata", "doc_example.c"), "-L", filepath.Dir(lib), "-lavc")
	})
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "AVC_SERVER_URI="+uri, "AVC_ENDPOINT="+ep, "LD_LIBRARY_PATH="+filepath.Dir(lib))
	b, err := cmd.CombinedOutput()
	return string(b), err
}
