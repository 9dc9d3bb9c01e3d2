package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/wasm/host"
)

// The coaps part of the bench, for the native agent and for avc.wasm in
// wazero (compiled) and in Node, all against one in-process avc server on
// loopback:
//
//   - registration over coap and over coaps (DTLS-PSK handshake, then the
//     Register exchange), each with a new DTLS session: for wasm the time
//     from the start command to the registered event on an agent that is
//     already running and registered once (stop, then a timed start: the
//     module is instantiated and warm, as the native agent runs in an
//     already running process); for the native agent, whose DTLS session
//     lives as long as its Run, from Run of a fresh agent. coaps minus
//     coap is about the handshake. For wasm the time with a fresh agent (a
//     fresh module instance) per registration is reported beside it.
//   - a 1 MiB pull over coaps (the package server's coaps listener, a
//     DTLS-PSK session of its own beside the coap LwM2M session): the time
//     from the server's Write of /5/0/1 to the Downloaded event, into a
//     firmware handler that keeps the image in memory, after one untimed
//     pull (so the pull session is up and the timed pulls are transfer
//     only).

// dtlsRuns is how many timed registrations each cell has; pullRuns how
// many timed pulls.
const (
	dtlsRuns = 5
	pullRuns = 3
)

// pullSize is the size of the image of the coaps pull.
const pullSize = 1 << 20

var benchPSK = []byte("avc-bench-psk-16")

// dtlsRow is one subject: median registration times over coap and coaps
// (warm, and with a fresh agent), and the median 1 MiB coaps pull.
type dtlsRow struct {
	name              string
	coap, coaps, cold time.Duration
	pull              time.Duration
	err, pullErr      error
}

// runDTLS measures the native agent, wazero and Node (node may be "" when
// not installed; wasm may not exist).
func runDTLS(ctx context.Context, root, wasmPath, node string) []dtlsRow {
	dir, err := os.MkdirTemp("", "avc-bench-coaps")
	if err != nil {
		return []dtlsRow{{name: "coaps server", err: err}}
	}
	defer os.RemoveAll(dir)
	pkg, err := benchPackage(pullSize)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "bench.pkg"), pkg, 0o600)
	}
	if err != nil {
		return []dtlsRow{{name: "package", err: err}}
	}
	srv := server.New(server.Config{
		CoAPAddr:    "127.0.0.1:0",
		CoAPSAddr:   "127.0.0.1:0",
		FirmwareDir: dir,
		PSK:         func([]byte) ([]byte, error) { return benchPSK, nil },
	})
	if err := srv.Start(ctx); err != nil {
		return []dtlsRow{{name: "coaps server", err: err}}
	}
	defer srv.Close()
	b := &dtlsBench{srv: srv,
		uris:    []string{"coap://" + srv.CoAPAddr().String(), "coaps://" + srv.CoAPSAddr().String()},
		pullURI: "coaps://" + srv.CoAPSAddr().String() + "/fw/bench.pkg"}

	native := dtlsRow{name: "avc native"}
	newNative := func(cfg map[string]string) (runner, error) {
		c := agent.Config{Firmware: agent.FirmwareConfig{Handler: &memFirmware{}}}
		if err := c.ApplyMap(cfg); err != nil {
			return nil, err
		}
		return agent.New(c)
	}
	b.measure(ctx, &native, "native", false, newNative)

	wz := dtlsRow{name: "avc wasm (wazero, compiled)"}
	if wb, err := os.ReadFile(wasmPath); err != nil {
		wz.err = fmt.Errorf("%s: %w", wasmPath, err)
	} else if rt, err := host.NewRuntime(ctx, wb, host.WithCompilationCacheDir(filepath.Join(root, "build", "wazero-cache"))); err != nil {
		wz.err = err
	} else {
		defer rt.Close(ctx)
		b.measure(ctx, &wz, "wazero", true, func(cfg map[string]string) (runner, error) {
			return host.New(ctx, nil, cfg, host.WithRuntime(rt), host.WithFirmware(&memFirmware{}))
		})
	}

	// Node twice: as it comes, and with --no-liftoff, which compiles all
	// of avc.wasm with V8's optimizing tier up front (seconds at startup,
	// not timed here). By default V8 runs code in its baseline tier
	// (Liftoff) until it is hot, which the code of a handshake, run a few
	// times, never gets.
	rows := []dtlsRow{native, wz}
	for _, flags := range [][]string{nil, {"--no-liftoff"}} {
		nd := dtlsRow{name: "avc wasm (Node)"}
		if len(flags) > 0 {
			nd.name = "avc wasm (Node " + strings.Join(flags, " ") + ")"
		}
		if node == "" {
			nd.err = errors.New("node not found")
		} else {
			b.measureNode(ctx, &nd, root, wasmPath, node, flags)
		}
		rows = append(rows, nd)
	}
	return rows
}

// dtlsBench holds what every subject is measured against.
type dtlsBench struct {
	srv     *server.Server
	uris    []string // coap, coaps
	pullURI string
}

// config is a subject's configuration for the server at uri.
func (b *dtlsBench) config(uri, ep string) map[string]string {
	return map[string]string{
		agent.EnvServerURI: uri, agent.EnvEndpoint: ep, agent.EnvLifetime: "300",
		agent.EnvPSKIdentity: "bench", agent.EnvPSKKey: hex.EncodeToString(benchPSK),
		agent.EnvFWVersion: "1.0.0",
	}
}

// runner is a running agent: the native one or wazero's.
type runner interface {
	Run(context.Context) error
	Do(context.Context, agent.Command) error
	Events() <-chan agent.Event
}

// measure fills row for a Go subject made by mk. warm: the registrations
// are timed on one running agent, stopped and started again (wasm: a new
// DTLS session in the same module instance); otherwise each is a fresh
// agent (native: its DTLS session lives as long as its Run, so a new
// handshake needs a new agent, in the same running process).
func (b *dtlsBench) measure(ctx context.Context, row *dtlsRow, tag string, warm bool, mk func(map[string]string) (runner, error)) {
	var regs [2]time.Duration
	for k, uri := range b.uris {
		var d time.Duration
		var err error
		if warm {
			d, err = b.warmRegistrations(ctx, mk, uri, fmt.Sprintf("bench-dtls-%s-%d", tag, k))
		} else {
			d, err = b.freshRegistrations(ctx, mk, uri, fmt.Sprintf("bench-dtls-%s-%d", tag, k))
		}
		if err != nil {
			row.err = fmt.Errorf("%s: %w", uri, err)
			return
		}
		regs[k] = d
	}
	row.coap, row.coaps = regs[0], regs[1]
	if warm {
		d, err := b.freshRegistrations(ctx, mk, b.uris[1], "bench-dtls-"+tag+"-fresh")
		if err != nil {
			row.err = fmt.Errorf("fresh agent: %w", err)
			return
		}
		row.cold = d
	}
	row.pull, row.pullErr = b.goPulls(ctx, mk, "bench-pull-"+tag)
}

// freshRegistrations times dtlsRuns registrations of fresh agents (after
// an untimed one), each from Run to the registered event, and returns the
// median.
func (b *dtlsBench) freshRegistrations(ctx context.Context, mk func(map[string]string) (runner, error), uri, ep string) (time.Duration, error) {
	var ms []float64
	for i := 0; i <= dtlsRuns; i++ {
		a, err := mk(b.config(uri, fmt.Sprintf("%s-%d", ep, i)))
		if err != nil {
			return 0, err
		}
		d, err := timeRegistration(ctx, a.Run, a.Events())
		if err != nil {
			return 0, err
		}
		if i > 0 {
			ms = append(ms, msOf(d))
		}
	}
	return fromMs(medianMs(ms)), nil
}

// started is an agent running until stop, registered once.
type started struct {
	a      runner
	cancel context.CancelFunc
	done   chan error
}

// start makes an agent of cfg with mk, runs it and waits for its first
// registration.
func start(ctx context.Context, mk func(map[string]string) (runner, error), cfg map[string]string) (*started, error) {
	a, err := mk(cfg)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	s := &started{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Run(rctx) }()
	if _, err := s.wait(agent.EventRegistered, nil); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// wait returns the next event of kind (matching match, when given).
func (s *started) wait(kind agent.EventKind, match func(agent.Event) bool) (agent.Event, error) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-s.a.Events():
			if !ok {
				return ev, fmt.Errorf("ended while waiting for %s: %v", kind, <-s.done)
			}
			if ev.Kind == kind && (match == nil || match(ev)) {
				return ev, nil
			}
			if kind == agent.EventFirmware && ev.Kind == agent.EventFirmware && ev.Firmware.Result > agent.ResultSuccess {
				return ev, fmt.Errorf("firmware result %d", ev.Firmware.Result)
			}
		case <-timeout:
			return agent.Event{}, fmt.Errorf("no %s event within 30 s", kind)
		}
	}
}

func (s *started) stop() {
	s.cancel()
	for range s.a.Events() {
	}
	<-s.done
}

// warmRegistrations registers one agent, then dtlsRuns times stops it and
// times a start to the registered event; it returns the median.
func (b *dtlsBench) warmRegistrations(ctx context.Context, mk func(map[string]string) (runner, error), uri, ep string) (time.Duration, error) {
	s, err := start(ctx, mk, b.config(uri, ep))
	if err != nil {
		return 0, err
	}
	defer s.stop()
	a := s.a
	var ms []float64
	for range dtlsRuns {
		if err := a.Do(ctx, agent.CmdStop{}); err != nil {
			return 0, fmt.Errorf("stop: %w", err)
		}
		if _, err := s.wait(agent.EventDeregistered, nil); err != nil {
			return 0, err
		}
		// The server handles the close_notify of the old session before
		// a ClientHello from the same port (else it drops the hello and
		// pion retransmits after 1 s).
		time.Sleep(50 * time.Millisecond)
		t0 := time.Now()
		if err := a.Do(ctx, agent.CmdStart{}); err != nil {
			return 0, fmt.Errorf("start: %w", err)
		}
		if _, err := s.wait(agent.EventRegistered, nil); err != nil {
			return 0, err
		}
		ms = append(ms, msOf(time.Since(t0)))
	}
	return fromMs(medianMs(ms)), nil
}

// goPulls registers an agent over coap and times pullRuns coaps pulls of
// the package after an untimed one.
func (b *dtlsBench) goPulls(ctx context.Context, mk func(map[string]string) (runner, error), ep string) (time.Duration, error) {
	cfg := b.config(b.uris[0], ep)
	cfg[agent.EnvFWPSKIdentity], cfg[agent.EnvFWPSKKey] = "bench", hex.EncodeToString(benchPSK)
	s, err := start(ctx, mk, cfg)
	if err != nil {
		return 0, err
	}
	defer s.stop()
	downloaded := func() error {
		_, err := s.wait(agent.EventFirmware, func(ev agent.Event) bool { return ev.Firmware.State == agent.FirmwareDownloaded })
		return err
	}
	return b.pulls(ctx, ep, downloaded)
}

// pulls times pullRuns pulls (after an untimed one) of the package by ep:
// each resets /5/0/1, then writes the URI and waits with downloaded.
func (b *dtlsBench) pulls(ctx context.Context, ep string, downloaded func() error) (time.Duration, error) {
	write := func(v string) error {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := b.srv.Write(wctx, ep, lwm2m.P(5, 0, 1), lwm2m.FormatText, []lwm2m.Record{{Path: lwm2m.P(5, 0, 1), Value: lwm2m.String(v)}})
		return err
	}
	var ms []float64
	for i := 0; i <= pullRuns; i++ {
		if err := write(""); err != nil {
			return 0, fmt.Errorf("reset /5/0/1: %w", err)
		}
		t0 := time.Now()
		if err := write(b.pullURI); err != nil {
			return 0, fmt.Errorf("write /5/0/1: %w", err)
		}
		if err := downloaded(); err != nil {
			return 0, err
		}
		if i > 0 {
			ms = append(ms, msOf(time.Since(t0)))
		}
	}
	return fromMs(medianMs(ms)), nil
}

// measureNode fills row from test/bench/coaps.mjs runs.
func (b *dtlsBench) measureNode(ctx context.Context, row *dtlsRow, root, wasmPath, node string, flags []string) {
	args := append(append([]string{"--no-warnings"}, flags...), filepath.Join(root, "test/bench/coaps.mjs"))
	env := func(mode string, cfg map[string]string) []string {
		e := append(cleanEnv(), "AVC_WASM="+wasmPath, "BENCH_RUNS="+strconv.Itoa(dtlsRuns), "BENCH_MODE="+mode)
		for name, v := range cfg {
			e = append(e, name+"="+v)
		}
		return e
	}
	var res [2]struct{ MS, Cold []float64 }
	for k, uri := range b.uris {
		cmd := exec.CommandContext(ctx, node, args...)
		cmd.Env = env("register", b.config(uri, "bench-dtls-node"))
		out, err := cmd.Output()
		if err == nil {
			err = json.Unmarshal(out, &res[k])
		}
		if err == nil && (len(res[k].MS) == 0 || len(res[k].Cold) == 0) {
			err = errors.New("no measurements")
		}
		if err != nil {
			row.err = fmt.Errorf("%s: %w", uri, err)
			return
		}
	}
	row.coap, row.coaps, row.cold = fromMs(medianMs(res[0].MS)), fromMs(medianMs(res[1].MS)), fromMs(medianMs(res[1].Cold))

	// The pull: the script prints a line per event that matters; stdin
	// ends it.
	cfg := b.config(b.uris[0], "bench-pull-node")
	cfg[agent.EnvFWPSKIdentity], cfg[agent.EnvFWPSKKey] = "bench", hex.EncodeToString(benchPSK)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = env("pull", cfg)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		row.pullErr = err
		return
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		row.pullErr = err
		return
	}
	if err := cmd.Start(); err != nil {
		row.pullErr = err
		return
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	lines := make(chan string)
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		once.Do(func() { close(lines) })
	}()
	expect := func(want string) error {
		select {
		case l, ok := <-lines:
			if !ok {
				return fmt.Errorf("node ended before %q", want)
			}
			if l != want {
				return fmt.Errorf("node said %q, want %q", l, want)
			}
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("no %q from node within 30 s", want)
		}
	}
	if err := expect("registered"); err != nil {
		row.pullErr = err
		return
	}
	row.pull, row.pullErr = b.pulls(ctx, "bench-pull-node", func() error { return expect("downloaded") })
	_, _ = io.WriteString(stdin, "\n")
}

// memFirmware is a firmware handler that keeps the image in memory.
type memFirmware struct {
	mu  sync.Mutex
	img []byte
}

func (f *memFirmware) StreamOpen(_ string, offset int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if offset > int64(len(f.img)) {
		return errors.New("resume beyond the stored image")
	}
	f.img = f.img[:offset]
	return nil
}

func (f *memFirmware) StreamWrite(p []byte) error {
	f.mu.Lock()
	f.img = append(f.img, p...)
	f.mu.Unlock()
	return nil
}

func (f *memFirmware) StreamFinish() error { return nil }
func (f *memFirmware) Reset() {
	f.mu.Lock()
	f.img = f.img[:0]
	f.mu.Unlock()
}
func (f *memFirmware) PerformUpgrade(agent.FirmwarePackage) error {
	return errors.New("bench: no install")
}
func (f *memFirmware) Booted(agent.FirmwarePackage) (string, bool) { return "1.0.0", false }

// dtlsFailed reports whether a row failed.
func dtlsFailed(rows []dtlsRow) bool {
	return slices.ContainsFunc(rows, func(r dtlsRow) bool { return r.err != nil || r.pullErr != nil })
}

// timeRegistration runs a session until its first registered event and
// returns how long that took from the start of run, then stops it.
func timeRegistration(ctx context.Context, run func(context.Context) error, events <-chan agent.Event) (time.Duration, error) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- run(rctx) }()
	var took time.Duration
	timeout := time.After(20 * time.Second)
wait:
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				cancel()
				return 0, fmt.Errorf("ended before registering: %v", <-done)
			}
			if ev.Kind == agent.EventRegistered {
				took = time.Since(start)
				break wait
			}
		case <-timeout:
			cancel()
			<-done
			return 0, errors.New("no registration within 20 s")
		}
	}
	cancel()
	for range events {
	}
	return took, <-done
}

func msOf(d time.Duration) float64    { return float64(d) / float64(time.Millisecond) }
func fromMs(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// medianMs is the median of milliseconds.
func medianMs(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// renderDTLS is the report section of the coaps part.
func renderDTLS(rows []dtlsRow) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("\n## coaps: DTLS-PSK handshake and registration, 1 MiB coaps pull\n\n")
	w("Against avc's server on loopback. **Registration**, each over a new DTLS session (coaps) or socket (coap): for the wasm rows the time from the start command to the registered event on an agent that is already running and registered once (stopped, then started again: the module instance is the same, already instantiated and warm, as the native agent runs in an already running process); for the native agent, which keeps its DTLS session for as long as it runs, from Run of a fresh agent to the registered event. Median of %d after one untimed run. coaps − coap ≈ the DTLS handshake (TLS_PSK_WITH_AES_128_CCM_8; inside avc.wasm for the wasm rows: pion/dtls pumped by the exports). *Fresh instance*: the wasm rows over coaps with a fresh agent and module instance per registration (as the native row), whose first handshake also pays the instance's warm-up (memory growth, first use of the code). **Pull**: a %s package over coaps (a DTLS-PSK session of its own to the server's coaps listener, beside a coap LwM2M session), from the server's Write of /5/0/1 to the Downloaded event, into a handler that keeps the image in memory; median of %d after one untimed pull, so the pull session is up and the time is the block-wise transfer (1 KiB blocks). The Node rows run once as Node comes and once with --no-liftoff (V8 compiles all of avc.wasm with its optimizing tier at startup, seconds not timed here; by default code stays in the baseline tier until hot, which a handshake run a few times never gets). What remains between wasm and native is the speed of Go compiled to wasm: pion's and the engine's code run several times slower, and AES and SHA-256 (no AES-NI or SHA-NI in wasm, generic Go code) tens of times slower per byte.\n\n", dtlsRuns, sizeText(pullSize), pullRuns)
	w("| subject | coap | coaps | coaps − coap | coaps ÷ native | fresh instance, coaps | %s coaps pull | pull ÷ native |\n|---|---|---|---|---|---|---|---|\n", sizeText(pullSize))
	var nativeCoaps, nativePull time.Duration
	for _, r := range rows {
		if r.name == "avc native" && r.err == nil {
			nativeCoaps = r.coaps
		}
		if r.name == "avc native" && r.pullErr == nil {
			nativePull = r.pull
		}
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", msOf(d)) }
	ratio := func(a, b time.Duration) string {
		if b <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", float64(a)/float64(b))
	}
	failed := func(err error) string { return "FAILED: " + strings.ReplaceAll(err.Error(), "|", "/") }
	for _, r := range rows {
		cold := "–"
		if r.cold > 0 {
			cold = ms(r.cold)
		}
		reg := fmt.Sprintf("%s | %s | %s | %s | %s", ms(r.coap), ms(r.coaps), ms(r.coaps-r.coap), ratio(r.coaps, nativeCoaps), cold)
		if r.err != nil {
			reg = failed(r.err) + " | | | |"
		}
		pull := fmt.Sprintf("%s | %s", ms(r.pull), ratio(r.pull, nativePull))
		switch {
		case r.pullErr != nil:
			pull = failed(r.pullErr) + " |"
		case r.pull == 0:
			pull = "– | –"
		}
		w("| %s | %s | %s |\n", r.name, reg, pull)
	}
	return b.String()
}
