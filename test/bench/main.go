//go:build linux

// Command bench measures avc's agent side by side with a reference LwM2M
// client and writes a short markdown report. `make bench` runs it through
// scripts/bench.sh:
//
//	go run ./test/bench -out build/bench-report.md
//
// It starts avc's embedded LwM2M server in-process (CoAP on 127.0.0.1) and
// runs each subject as a separate process, so that their memory compares:
//
//  1. avc native: build/avc run (AVC_SERVER_URI, AVC_ENDPOINT);
//  2. avc wasm in Node: node examples/node/register.mjs with
//     AVC_WASM=build/avc.wasm, when both files exist ("not built"
//     otherwise);
//  3. the reference: node test/interop/lwm2m-node-client.cjs, the client
//     half of lwm2m-node-lib 1.4.0.
//
// For each it measures the time from process start to the server's
// registered event, the latency of -n sequential Reads of /3/0/0, the
// reads per second, VmRSS and VmHWM from /proc/<pid>/status after the
// reads, and the time from SIGTERM to the server's deregistered event. It
// also times the sans-I/O engine alone on HandleDatagram → PollTransmit.
//
// Speed and memory goals are checked by reading this report, never by
// timed unit tests. A subject that fails is reported with its reason and
// the tail of its output, and makes the command exit 1 after writing the
// report.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// options are the command-line settings.
type options struct {
	out      string
	reads    int
	warmup   int
	runs     int
	avc      string
	wasm     string
	example  string
	node     string
	engineMs int
	only     string
	fleet    int
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "build/bench-report.md", "markdown report `file` (\"-\": stdout only)")
	flag.IntVar(&o.reads, "n", 300, "timed sequential Reads of /3/0/0 per run")
	flag.IntVar(&o.warmup, "warmup", 20, "untimed Reads before the timed ones")
	flag.IntVar(&o.runs, "runs", 5, "runs per subject (medians are reported)")
	flag.StringVar(&o.avc, "avc", "build/avc", "avc CLI `binary`")
	flag.StringVar(&o.wasm, "wasm", "build/avc.wasm", "avc wasm `module`")
	flag.StringVar(&o.example, "node-example", "examples/node/register.mjs", "Node `script` that runs the wasm agent")
	flag.StringVar(&o.node, "node", "node", "Node.js `binary`")
	flag.IntVar(&o.engineMs, "engine-ms", 400, "`milliseconds` per repetition of the engine micro-measure")
	flag.StringVar(&o.only, "only", "", "run one `part` of the bench: \"firmware\" (the pulls alone), \"dtls\" (coaps registrations) or \"scale\" (notifications and a fleet); empty: everything")
	flag.IntVar(&o.fleet, "fleet", 1000, "agents in the fleet registration measure")
	flag.Parse()
	if o.only != "" && o.only != "firmware" && o.only != "dtls" && o.only != "scale" {
		fmt.Fprintln(os.Stderr, "bench: -only takes \"firmware\", \"dtls\", \"scale\" or nothing")
		os.Exit(2)
	}
	if o.reads < 1 || o.runs < 1 || o.warmup < 0 {
		fmt.Fprintln(os.Stderr, "bench: -n and -runs must be at least 1, -warmup at least 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o)
	stop()
	os.Exit(code)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, o options) int {
	root, err := findRoot()
	if err != nil {
		logf("%v", err)
		return 2
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}

	srv := server.New(server.Config{CoAPAddr: "127.0.0.1:0"})
	if err := srv.Start(ctx); err != nil {
		logf("start the LwM2M server: %v", err)
		return 1
	}
	defer srv.Close()
	uri := "coap://" + srv.CoAPAddr().String()
	logf("LwM2M server on %s", uri)

	if o.only == "firmware" {
		fw, failed := runFirmware(ctx, srv, abs(o.avc))
		if !writeReport(o, "# avc bench: firmware pulls only (-only firmware)\n"+renderFirmware(fw)) || failed {
			return 1
		}
		return 0
	}

	nodeBin, _ := exec.LookPath(o.node)
	if o.only == "scale" {
		report, failed := runScale(ctx, srv, o)
		if !writeReport(o, "# avc bench: notifications and a fleet only (-only scale)\n"+report) || failed {
			return 1
		}
		return 0
	}
	if o.only == "dtls" {
		rows := runDTLS(ctx, root, abs(o.wasm), nodeBin)
		if !writeReport(o, "# avc bench: coaps only (-only dtls)\n"+renderDTLS(rows)) || dtlsFailed(rows) {
			return 1
		}
		return 0
	}

	subjects := []*subject{
		{
			name: "avc native", argv: []string{abs(o.avc), "run"},
			env: func(ep string) []string {
				return []string{"AVC_SERVER_URI=" + uri, "AVC_ENDPOINT=" + ep, "AVC_LIFETIME=300"}
			},
		},
		{
			name: "avc wasm (Node)", argv: []string{o.node, abs(o.example)},
			env: func(ep string) []string {
				return []string{"AVC_WASM=" + abs(o.wasm), "AVC_SERVER_URI=" + uri, "AVC_ENDPOINT=" + ep, "AVC_LIFETIME=300"}
			},
		},
		{
			name: "reference (lwm2m-node-lib)", argv: []string{o.node, abs("test/interop/lwm2m-node-client.cjs")},
			env: func(ep string) []string {
				host, port, _ := strings.Cut(srv.CoAPAddr().String(), ":")
				return []string{"LWM2M_SERVER_HOST=" + host, "LWM2M_SERVER_PORT=" + port, "LWM2M_ENDPOINT=" + ep, "LWM2M_LIFETIME=300"}
			},
			ready: "REGISTERED",
		},
	}
	native, wasm, ref := subjects[0], subjects[1], subjects[2]
	if !isFile(abs(o.avc)) {
		native.err = fmt.Errorf("%s not found: build it with `make cli` (go build -o build/avc ./cmd/avc)", o.avc)
	}
	for _, f := range []string{o.wasm, o.example} {
		if !isFile(abs(f)) {
			wasm.skip = "not built"
			wasm.skipWhy = f + " does not exist"
			break
		}
	}
	if _, err := exec.LookPath(o.node); err != nil {
		for _, s := range []*subject{wasm, ref} {
			if s.skip == "" {
				s.err = fmt.Errorf("node not found (%v): run scripts/deps.sh", err)
			}
		}
	} else if !isFile(abs("test/interop/node_modules/lwm2m-node-lib/lib/lwm2m-client.js")) {
		ref.err = errors.New("test/interop/node_modules/lwm2m-node-lib is missing: run scripts/deps.sh")
	}

	for _, s := range subjects {
		switch {
		case s.err != nil:
			logf("%s FAILED: %v", s.name, s.err)
		case s.skip != "":
			logf("%s: %s (%s), skipped", s.name, s.skip, s.skipWhy)
		}
	}

	// Runs go round-robin so that slow drifts of the machine hit every
	// subject alike.
	for r := 0; r < o.runs && ctx.Err() == nil; r++ {
		for i, s := range subjects {
			if s.skip != "" || s.err != nil || ctx.Err() != nil {
				continue
			}
			ep := fmt.Sprintf("bench-%d-%d-%d", os.Getpid(), i, r)
			logf("%s: run %d/%d (endpoint %s)", s.name, r+1, o.runs, ep)
			smp, err := runOnce(ctx, srv, s, root, ep, o)
			if err != nil && ctx.Err() != nil {
				break // interrupted, not failed
			}
			if err != nil {
				s.err = fmt.Errorf("run %d: %w", r+1, err)
				logf("%s FAILED: %v", s.name, s.err)
				continue
			}
			s.samples = append(s.samples, smp)
		}
	}
	if ctx.Err() != nil {
		logf("interrupted")
		return 130
	}

	logf("engine micro-measure (%d × %d ms)", engineReps, o.engineMs)
	eng, engErr := engineBench(time.Duration(o.engineMs) * time.Millisecond)
	if engErr != nil {
		logf("engine micro-measure FAILED: %v", engErr)
	}

	fw, fwFailed := runFirmware(ctx, srv, abs(o.avc))
	if fwFailed {
		for _, r := range fw.rows {
			engErr = errors.Join(engErr, r.err)
		}
	}

	logf("coaps registrations")
	dtlsRows := runDTLS(ctx, root, abs(o.wasm), nodeBin)

	scale, scaleFailed := runScale(ctx, srv, o)
	if !writeReport(o, render(o, root, subjects, eng, engErr)+renderFirmware(fw)+renderDTLS(dtlsRows)+scale) {
		return 1
	}
	failed := engErr != nil || dtlsFailed(dtlsRows) || scaleFailed
	for _, s := range subjects {
		if s.err != nil {
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

// findRoot returns the repository root: the nearest directory upwards
// whose go.mod declares avc's module.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/avc-agent/avc\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the avc repository (no go.mod of github.com/avc-agent/avc found)")
		}
		dir = parent
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// subject is one LwM2M client under measurement.
type subject struct {
	name  string
	argv  []string
	env   func(endpoint string) []string
	ready string // stdout line prefix that says it serves requests; "" means the registration says so

	skip, skipWhy string // set when the subject cannot run here (not a failure)
	err           error  // set when the subject failed
	samples       []sample
}

// sample is what one run of a subject measured.
type sample struct {
	startup  time.Duration   // process start → server's registered event
	lat      []time.Duration // one per timed Read
	readWall time.Duration   // wall time of the timed Reads
	rssKiB   int64           // VmRSS after the Reads
	hwmKiB   int64           // VmHWM after the Reads
	dereg    time.Duration   // SIGTERM → server's deregistered event
	exit     time.Duration   // SIGTERM → process exit
}

// proc is a running subject process.
type proc struct {
	cmd    *exec.Cmd
	out    *tailWriter
	done   chan struct{} // closed when the process has exited
	exitAt time.Time
	err    error // cmd.Wait's result, valid once done is closed
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// why describes the process's end (if it ended) and the tail of its output.
func (p *proc) why() string {
	var b strings.Builder
	if p.exited() {
		if p.err != nil {
			fmt.Fprintf(&b, "; the process exited: %v", p.err)
		} else {
			b.WriteString("; the process exited with status 0")
		}
	}
	if t := strings.TrimSpace(p.out.String()); t != "" {
		lines := strings.Split(t, "\n")
		if len(lines) > tailLines {
			lines = lines[len(lines)-tailLines:]
		}
		b.WriteString("\n  output (tail):\n    " + strings.Join(lines, "\n    "))
	} else {
		b.WriteString("; no output")
	}
	return b.String()
}

// kill ends the process group (the subject and anything it started) and
// reaps the process.
func (p *proc) kill() {
	if !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func runOnce(ctx context.Context, srv *server.Server, s *subject, root, ep string, o options) (sample, error) {
	var smp sample
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()

	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = root
	cmd.Env = append(cleanEnv(), s.env(ep)...)
	out := newTailWriter(s.ready)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so kill reaches everything it starts; and
	// killed with us should this process die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return smp, fmt.Errorf("start %s: %w", strings.Join(s.argv, " "), err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.exitAt = time.Now()
		close(p.done)
	}()
	defer p.kill()

	ev, err := awaitEvent(ctx, events, ep, server.EventRegistered, 20*time.Second, p.done)
	if err != nil {
		return smp, fmt.Errorf("no registration: %v%s", err, p.why())
	}
	smp.startup = ev.Time.Sub(t0)
	if s.ready != "" {
		select {
		case <-out.readyCh:
		case <-p.done:
			return smp, fmt.Errorf("registered but never printed %q%s", s.ready, p.why())
		case <-time.After(10 * time.Second):
			return smp, fmt.Errorf("registered but did not print %q within 10 s%s", s.ready, p.why())
		case <-ctx.Done():
			return smp, ctx.Err()
		}
	}

	read := func(i int) (time.Duration, error) {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		t := time.Now()
		resp, err := srv.Read(rctx, ep, lwm2m.P(3, 0, 0), lwm2m.FormatText)
		d := time.Since(t)
		if err != nil {
			return d, fmt.Errorf("read %d of /3/0/0: %v%s", i, err, p.why())
		}
		if resp.Code != codes.Content || len(resp.Payload) == 0 {
			return d, fmt.Errorf("read %d of /3/0/0: answered %v with %d bytes, want 2.05 with a value", i, resp.Code, len(resp.Payload))
		}
		return d, nil
	}
	for i := range o.warmup {
		if _, err := read(i + 1); err != nil {
			return smp, fmt.Errorf("warm-up %w", err)
		}
	}
	smp.lat = make([]time.Duration, 0, o.reads)
	start := time.Now()
	for i := range o.reads {
		d, err := read(i + 1)
		if err != nil {
			return smp, err
		}
		smp.lat = append(smp.lat, d)
	}
	smp.readWall = time.Since(start)

	st, err := procStatus(cmd.Process.Pid)
	if err != nil {
		return smp, fmt.Errorf("memory: %v", err)
	}
	smp.rssKiB, smp.hwmKiB = st["VmRSS"], st["VmHWM"]

	t1 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return smp, fmt.Errorf("SIGTERM: %v%s", err, p.why())
	}
	ev, err = awaitEvent(ctx, events, ep, server.EventDeregistered, 15*time.Second, nil)
	if err != nil {
		return smp, fmt.Errorf("no de-registration after SIGTERM: %v%s", err, p.why())
	}
	smp.dereg = ev.Time.Sub(t1)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return smp, fmt.Errorf("de-registered but still running 10 s after SIGTERM%s", p.why())
	}
	if p.err != nil {
		return smp, fmt.Errorf("exit after SIGTERM: %v%s", p.err, p.why())
	}
	smp.exit = p.exitAt.Sub(t1)
	return smp, nil
}

// cleanEnv is this process's environment without AVC_* and LWM2M_*
// settings, which would change what the subjects do.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AVC_") || strings.HasPrefix(kv, "LWM2M_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// awaitEvent waits up to timeout for the server's event of kind for ep.
// When died is closed first, the events already queued are still looked
// at before giving up.
func awaitEvent(ctx context.Context, ch <-chan server.Event, ep string, kind server.EventKind, timeout time.Duration, died <-chan struct{}) (server.Event, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return server.Event{}, server.ErrClosed
			}
			if ev.Kind == kind && ev.Endpoint == ep {
				return ev, nil
			}
		case <-died:
			// Drain what is already queued: an event that raced the exit.
			dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
			ev, err := server.WaitEvent(dctx, ch, ep, kind)
			dcancel()
			if err == nil {
				return ev, nil
			}
			return server.Event{}, fmt.Errorf("the process ended before the server saw %s", kind)
		case <-wctx.Done():
			if ctx.Err() != nil {
				return server.Event{}, ctx.Err()
			}
			return server.Event{}, fmt.Errorf("the server saw no %s within %v", kind, timeout)
		}
	}
}

// procStatus returns the kB fields of /proc/<pid>/status.
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	m := make(map[string]int64)
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 2 && f[1] == "kB" {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				m[k] = n
			}
		}
	}
	if m["VmRSS"] == 0 {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}

// tailWriter keeps the last bytes written and signals the first line that
// starts with ready.
type tailWriter struct {
	mu      sync.Mutex
	buf     []byte
	line    []byte
	ready   string
	readyCh chan struct{}
	seen    bool
}

// tailMax bounds the output kept; tailLines is how many lines of it an
// error shows.
const (
	tailMax   = 4096
	tailLines = 15
)

func newTailWriter(ready string) *tailWriter {
	return &tailWriter{ready: ready, readyCh: make(chan struct{})}
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if len(w.buf) > 2*tailMax {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-tailMax:]...)
	}
	if w.ready != "" && !w.seen {
		w.line = append(w.line, b...)
		for {
			i := bytes.IndexByte(w.line, '\n')
			if i < 0 {
				break
			}
			if strings.HasPrefix(strings.TrimSpace(string(w.line[:i])), w.ready) {
				w.seen = true
				close(w.readyCh)
				w.line = nil
				break
			}
			w.line = w.line[i+1:]
		}
	}
	return len(b), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.buf
	if len(b) > tailMax {
		b = b[len(b)-tailMax:]
	}
	return string(b)
}

// engineResult is the engine micro-measure.
type engineResult struct {
	nsPerOp     float64
	allocsPerOp float64
	bytesPerOp  float64
	ops         int
	reply       string
}

// getRequest is a hand-made confirmable CoAP GET of /3/0/0 with Accept
// text/plain (RFC 7252 §3): version 1, type CON, token length 4; code
// 0.01; message ID (bytes 2-3, set per request); token; Uri-Path (11) "3",
// "0", "0" as option deltas 11, 0, 0 of length 1; Accept (17, delta 6)
// with the empty uint 0.
var getRequest = []byte{
	0x44, 0x01, 0x00, 0x00,
	0xb0, 0x0c, 0x42, 0x01,
	0xb1, '3', 0x01, '0', 0x01, '0',
	0x60,
}

// engineReps is how many times the engine micro-measure repeats.
const engineReps = 5

// engineBench registers an engine with agenttest's simulated server, then
// feeds it Read requests of /3/0/0 and takes each answer with
// PollTransmit (the events the reads emit are drained too). It reports the
// median of engineReps repetitions of about d each.
func engineBench(d time.Duration) (engineResult, error) {
	var res engineResult
	sim, err := agenttest.New(agent.Config{Endpoint: "bench-engine", Lifetime: 300 * time.Second}, nil, 1, agenttest.Faults{})
	if err != nil {
		return res, err
	}
	if err := sim.Do(agent.CmdStart{}); err != nil {
		return res, err
	}
	if _, ok := sim.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		return res, errors.New("the engine did not register with agenttest's server")
	}
	e, now := sim.Engine, sim.Now
	req := slices.Clone(getRequest)
	var mid uint16
	cycle := func() (agent.Datagram, bool) {
		mid++
		binary.BigEndian.PutUint16(req[2:4], mid)
		now = now.Add(time.Millisecond)
		e.HandleDatagram(now, agenttest.ServerPeer, req)
		dg, ok := e.PollTransmit()
		for {
			if _, more := e.PollEvent(); !more {
				break
			}
		}
		return dg, ok
	}

	// Check the answer once: a piggybacked 2.05 with the manufacturer.
	dg, ok := cycle()
	if !ok {
		return res, errors.New("HandleDatagram(GET /3/0/0) queued no answer")
	}
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(dg.Data, &m); err != nil {
		return res, fmt.Errorf("answer does not decode: %v", err)
	}
	if m.Type != message.Acknowledgement || m.Code != codes.Content || len(m.Payload) == 0 {
		return res, fmt.Errorf("answer is %v %v %q, want a piggybacked 2.05 with a value", m.Type, m.Code, m.Payload)
	}
	res.reply = fmt.Sprintf("2.05 %q, %d bytes on the wire", m.Payload, len(dg.Data))

	// Warm up past the duplicate cache's capacity, into the steady state.
	for range 2000 {
		cycle()
	}
	type rep struct{ ns, allocs, bytes float64 }
	var reps []rep
	total := 0
	for range engineReps {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		n := 0
		start := time.Now()
		for time.Since(start) < d {
			for range 1000 {
				if _, ok := cycle(); !ok {
					return res, errors.New("a Read got no answer")
				}
			}
			n += 1000
		}
		el := time.Since(start)
		runtime.ReadMemStats(&m1)
		total += n
		reps = append(reps, rep{
			ns:     float64(el.Nanoseconds()) / float64(n),
			allocs: float64(m1.Mallocs-m0.Mallocs) / float64(n),
			bytes:  float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n),
		})
	}
	slices.SortFunc(reps, func(a, b rep) int { return cmp.Compare(a.ns, b.ns) })
	mid3 := reps[len(reps)/2]
	res.nsPerOp, res.allocsPerOp, res.bytesPerOp, res.ops = mid3.ns, mid3.allocs, mid3.bytes, total
	return res, nil
}

// stats are a subject's aggregated measurements.
type stats struct {
	startup, p50, p95, p99, dereg, exit time.Duration
	readsPerSec                         float64
	rssKiB, hwmKiB                      int64
	reads                               int
}

func aggregate(ss []sample) stats {
	var st stats
	var all []time.Duration
	var wall time.Duration
	var startup, dereg, exit []time.Duration
	var rss, hwm []int64
	for _, s := range ss {
		all = append(all, s.lat...)
		wall += s.readWall
		startup = append(startup, s.startup)
		dereg = append(dereg, s.dereg)
		exit = append(exit, s.exit)
		rss = append(rss, s.rssKiB)
		hwm = append(hwm, s.hwmKiB)
	}
	slices.Sort(all)
	st.reads = len(all)
	st.p50, st.p95, st.p99 = percentile(all, 50), percentile(all, 95), percentile(all, 99)
	if wall > 0 {
		st.readsPerSec = float64(len(all)) / wall.Seconds()
	}
	st.startup, st.dereg, st.exit = median(startup), median(dereg), median(exit)
	st.rssKiB, st.hwmKiB = median(rss), median(hwm)
	return st
}

// percentile is the nearest-rank percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func median[T int64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// metric is one row of the report's table.
type metric struct {
	name       string
	value      func(stats) float64
	format     func(float64) string
	higherWins bool // throughput: the ratio is reference ÷ avc
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

var metrics = []metric{
	{name: "start-up + registration (ms)", value: func(s stats) float64 { return ms(s.startup) }, format: f1},
	{name: "Read /3/0/0 latency, median (µs)", value: func(s stats) float64 { return us(s.p50) }, format: f0},
	{name: "Read /3/0/0 latency, p95 (µs)", value: func(s stats) float64 { return us(s.p95) }, format: f0},
	{name: "Read /3/0/0 latency, p99 (µs)", value: func(s stats) float64 { return us(s.p99) }, format: f0},
	{name: "Reads per second (sequential)", value: func(s stats) float64 { return s.readsPerSec }, format: f0, higherWins: true},
	{name: "resident memory after the reads, VmRSS (MiB)", value: func(s stats) float64 { return float64(s.rssKiB) / 1024 }, format: f1},
	{name: "peak resident memory, VmHWM (MiB)", value: func(s stats) float64 { return float64(s.hwmKiB) / 1024 }, format: f1},
	{name: "de-registration after SIGTERM (ms)", value: func(s stats) float64 { return ms(s.dereg) }, format: f1},
}

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// ratio renders the ratio of an avc subject's value to the reference's:
// avc ÷ reference, or reference ÷ avc for higherWins, so that below 1
// always means avc is better.
func ratio(m metric, avc, ref float64) string {
	if avc <= 0 || ref <= 0 {
		return "—"
	}
	r := avc / ref
	if m.higherWins {
		r = ref / avc
	}
	word, f := "better", 1/r
	if r > 1 {
		word, f = "worse", r
	}
	if math.Abs(r-1) < 0.005 {
		return strconv.FormatFloat(r, 'f', 2, 64) + " (same)"
	}
	return fmt.Sprintf("%s (avc %s× %s)", strconv.FormatFloat(r, 'f', 2, 64), fmtFactor(f), word)
}

func fmtFactor(f float64) string {
	if f >= 10 {
		return f0(f)
	}
	return f1(f)
}

func render(o options, root string, subjects []*subject, eng engineResult, engErr error) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# avc benchmark: agent vs reference LwM2M client\n\n")
	w("- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04:05 UTC"))
	w("- machine: %d CPUs (nproc)%s, %s/%s, Linux %s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, osRelease())
	w("- versions: Go %s, Node %s, avc %s, reference lwm2m-node-lib %s\n",
		runtime.Version(), cmdOutput(root, o.node, "--version"), cmdOutput(root, filepath.Join(root, o.avc), "version"),
		pkgVersion(root, "test/interop/node_modules/lwm2m-node-lib/package.json"))
	w("- method: each subject is its own process and registers to avc's embedded LwM2M server, which runs in the bench process (CoAP/UDP on 127.0.0.1); %d runs per subject, round-robin; per run %d untimed then %d timed sequential server Reads of /3/0/0 (Accept text/plain); latency percentiles over all %d timed Reads, other rows are medians of the runs\n\n",
		o.runs, o.warmup, o.reads, o.runs*o.reads)
	w("**Ratio columns: avc ÷ reference for times and memory, reference ÷ avc for Reads per second — so in every row a ratio below 1 means avc is better** (the parenthesis says by how much).\n\n")

	ref := subjects[len(subjects)-1]
	avcs := subjects[:len(subjects)-1]
	st := make(map[*subject]stats)
	for _, s := range subjects {
		if s.err == nil && s.skip == "" && len(s.samples) > 0 {
			st[s] = aggregate(s.samples)
		}
	}
	cell := func(s *subject, m metric) string {
		switch {
		case s.skip != "":
			return s.skip
		case s.err != nil:
			return "failed"
		}
		return m.format(m.value(st[s]))
	}

	w("| metric |")
	for _, s := range subjects {
		w(" %s |", s.name)
	}
	for _, s := range avcs {
		w(" ratio vs reference: %s |", s.name)
	}
	w("\n|---|")
	for range len(subjects) + len(avcs) {
		w("---:|")
	}
	w("\n")
	for _, m := range metrics {
		w("| %s |", m.name)
		for _, s := range subjects {
			w(" %s |", cell(s, m))
		}
		for _, s := range avcs {
			a, okA := st[s]
			r, okR := st[ref]
			if !okA || !okR {
				w(" — |")
				continue
			}
			w(" %s |", ratio(m, m.value(a), m.value(r)))
		}
		w("\n")
	}

	w("\n## Engine alone (sans-I/O, in-process)\n\n")
	if engErr != nil {
		w("FAILED: %v\n", engErr)
	} else {
		w("`HandleDatagram` (a hand-made CON GET /3/0/0, Accept text/plain) → `PollTransmit` (the piggybacked answer, %s), events drained, on an engine registered with `agenttest`'s simulated server; median of %d repetitions, %d cycles in all, duplicate cache in its steady (full) state:\n\n",
			eng.reply, engineReps, eng.ops)
		w("| µs/op | cycles per second | allocs/op | bytes/op |\n|---:|---:|---:|---:|\n")
		w("| %.2f | %s | %.1f | %s |\n", eng.nsPerOp/1000, f0(1e9/eng.nsPerOp), eng.allocsPerOp, f0(eng.bytesPerOp))
	}

	w("\n## Subjects\n\n")
	for _, s := range subjects {
		args := make([]string, len(s.argv))
		for i, a := range s.argv {
			if rel, err := filepath.Rel(root, a); err == nil && !strings.HasPrefix(rel, "..") && filepath.IsAbs(a) {
				a = rel
			}
			args[i] = a
		}
		w("- %s: `%s`", s.name, strings.Join(args, " "))
		switch {
		case s.skip != "":
			w(" — %s (%s)", s.skip, s.skipWhy)
		case s.err != nil:
			w(" — FAILED, see below")
		default:
			x := st[s]
			w(" — %d runs, %d timed Reads; exit %s ms after SIGTERM (median)", len(s.samples), x.reads, f1(ms(x.exit)))
		}
		w("\n")
	}
	w("\nThe reference is `test/interop/lwm2m-node-client.cjs`: lwm2m-node-lib's client module (without its server half) exposing /3/0 and /1/0 with string resources. Its registration event precedes the opening of its listening socket, so the bench also waits for its `REGISTERED` line before the first Read.\n")

	var failed []*subject
	for _, s := range subjects {
		if s.err != nil {
			failed = append(failed, s)
		}
	}
	if len(failed) > 0 {
		w("\n## Failures\n\n")
		for _, s := range failed {
			w("### %s\n\n```\n%v\n```\n\n", s.name, s.err)
		}
	}
	return b.String()
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return " (" + strings.TrimSpace(v) + ")"
		}
	}
	return ""
}

func osRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func cmdOutput(dir, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	s := strings.TrimSpace(string(out))
	return strings.TrimPrefix(s, "avc ")
}

func pkgVersion(root, rel string) string {
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return "unknown"
	}
	_, after, ok := strings.Cut(string(b), `"version":`)
	if !ok {
		return "unknown"
	}
	v, _, _ := strings.Cut(after, ",")
	return strings.Trim(strings.TrimSpace(v), `"`)
}

// runFirmware runs the firmware part of the bench and logs its failures.
func runFirmware(ctx context.Context, srv *server.Server, avcBin string) (fwResult, bool) {
	logf("firmware pulls (CoAP vs coap-client-notls, HTTP vs curl)")
	before, errBefore := readCPUTimes()
	fw := fwResult{rows: firmwareBench(ctx, srv, avcBin), steal: -1}
	if after, err := readCPUTimes(); err == nil && errBefore == nil {
		fw.steal = after.stealSince(before)
	}
	failed := false
	for _, r := range fw.rows {
		if r.err != nil {
			logf("firmware %s %s FAILED: %v", r.name, sizeText(r.size), r.err)
			failed = true
		}
	}
	return fw, failed
}

// writeReport writes the report to o.out, or to stdout for "-".
func writeReport(o options, report string) bool {
	if o.out == "-" {
		fmt.Print(report)
		return true
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		logf("%v", err)
		return false
	}
	if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
		logf("write report: %v", err)
		return false
	}
	logf("report written to %s", o.out)
	return true
}
