package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/server"
	"github.com/avc-agent/avc/wasm/host"
)

// The coaps part of the bench: how long a registration takes over coap
// and over coaps (DTLS-PSK handshake, then the Register exchange) for the
// native agent and for avc.wasm in wazero (compiled) and in Node, all
// against one in-process avc server on loopback. The time runs from the
// start of the session (Run, start()) to the registered event, on a warm
// runtime (one untimed registration first); coaps minus coap is about the
// handshake. A 1 MiB pull over coaps is not measured: avc.wasm carries
// DTLS to the LwM2M server only and pulls coap:// Package URIs (wasm/ABI.md
// "coaps").

// dtlsRuns is how many timed registrations each cell has.
const dtlsRuns = 5

var benchPSK = []byte("avc-bench-psk-16")

// dtlsRow is one subject: median registration times over coap and coaps.
type dtlsRow struct {
	name        string
	coap, coaps time.Duration
	err         error
}

// runDTLS measures the native agent, wazero and Node (node may be "" when
// not installed; wasm may not exist).
func runDTLS(ctx context.Context, root, wasmPath, node string) []dtlsRow {
	srv := server.New(server.Config{
		CoAPAddr:  "127.0.0.1:0",
		CoAPSAddr: "127.0.0.1:0",
		PSK:       func([]byte) ([]byte, error) { return benchPSK, nil },
	})
	if err := srv.Start(ctx); err != nil {
		return []dtlsRow{{name: "coaps server", err: err}}
	}
	defer srv.Close()
	uris := []string{"coap://" + srv.CoAPAddr().String(), "coaps://" + srv.CoAPSAddr().String()}
	cfg := func(uri, ep string) map[string]string {
		return map[string]string{
			agent.EnvServerURI: uri, agent.EnvEndpoint: ep, agent.EnvLifetime: "300",
			agent.EnvPSKIdentity: "bench", agent.EnvPSKKey: hex.EncodeToString(benchPSK),
		}
	}

	native := dtlsRow{name: "avc native"}
	native.coap, native.coaps, native.err = measurePair(uris, func(uri string, i int) (time.Duration, error) {
		c := agent.Config{}
		if err := c.ApplyMap(cfg(uri, fmt.Sprintf("bench-dtls-native-%d", i))); err != nil {
			return 0, err
		}
		a, err := agent.New(c)
		if err != nil {
			return 0, err
		}
		return timeRegistration(ctx, a.Run, a.Events())
	})

	wz := dtlsRow{name: "avc wasm (wazero, compiled)"}
	if b, err := os.ReadFile(wasmPath); err != nil {
		wz.err = fmt.Errorf("%s: %w", wasmPath, err)
	} else if rt, err := host.NewRuntime(ctx, b, host.WithCompilationCacheDir(filepath.Join(root, "build", "wazero-cache"))); err != nil {
		wz.err = err
	} else {
		defer rt.Close(ctx)
		wz.coap, wz.coaps, wz.err = measurePair(uris, func(uri string, i int) (time.Duration, error) {
			a, err := host.New(ctx, nil, cfg(uri, fmt.Sprintf("bench-dtls-wazero-%d", i)), host.WithRuntime(rt))
			if err != nil {
				return 0, err
			}
			return timeRegistration(ctx, a.Run, a.Events())
		})
	}

	nd := dtlsRow{name: "avc wasm (Node)"}
	if node == "" {
		nd.err = errors.New("node not found")
	} else {
		var ds [2]time.Duration
		for k, uri := range uris {
			cmd := exec.CommandContext(ctx, node, "--no-warnings", filepath.Join(root, "test/bench/coaps.mjs"))
			cmd.Env = append(cleanEnv(), "AVC_WASM="+wasmPath, "BENCH_RUNS="+strconv.Itoa(dtlsRuns))
			for name, v := range cfg(uri, "bench-dtls-node") {
				cmd.Env = append(cmd.Env, name+"="+v)
			}
			out, err := cmd.Output()
			var res struct{ MS []float64 }
			if err == nil {
				err = json.Unmarshal(out, &res)
			}
			if err == nil && len(res.MS) == 0 {
				err = errors.New("no measurements")
			}
			if err != nil {
				nd.err = fmt.Errorf("%s: %w", uri, err)
				break
			}
			ds[k] = time.Duration(medianMs(res.MS) * float64(time.Millisecond))
		}
		nd.coap, nd.coaps = ds[0], ds[1]
	}
	return []dtlsRow{native, wz, nd}
}

// dtlsFailed reports whether a row failed.
func dtlsFailed(rows []dtlsRow) bool {
	return slices.ContainsFunc(rows, func(r dtlsRow) bool { return r.err != nil })
}

// measurePair runs reg once untimed and dtlsRuns times timed for each of
// the two URIs (coap, coaps) and returns the medians.
func measurePair(uris []string, reg func(uri string, i int) (time.Duration, error)) (coap, coaps time.Duration, err error) {
	var out [2]time.Duration
	for k, uri := range uris {
		var ms []float64
		for i := 0; i <= dtlsRuns; i++ {
			d, err := reg(uri, k*100+i)
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %w", uri, err)
			}
			if i > 0 {
				ms = append(ms, float64(d)/float64(time.Millisecond))
			}
		}
		out[k] = time.Duration(medianMs(ms) * float64(time.Millisecond))
	}
	return out[0], out[1], nil
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
	w("\n## coaps: DTLS-PSK handshake and registration\n\n")
	w("Time from the start of the session to the registered event against avc's server on loopback, median of %d after one untimed run; coaps − coap ≈ the DTLS handshake (TLS_PSK_WITH_AES_128_CCM_8). In the wasm rows DTLS runs inside avc.wasm (pion/dtls, pumped by the exports), and every registration is a fresh module instance, whose first handshake also pays the instance's warm-up (memory growth, first use of the crypto code). A 1 MiB pull over coaps is not measured: avc.wasm pulls coap:// Package URIs only.\n\n", dtlsRuns)
	w("| subject | coap | coaps | coaps − coap | coaps ÷ native coaps |\n|---|---|---|---|---|\n")
	var nativeCoaps time.Duration
	for _, r := range rows {
		if r.name == "avc native" && r.err == nil {
			nativeCoaps = r.coaps
		}
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	for _, r := range rows {
		if r.err != nil {
			w("| %s | FAILED: %s | | | |\n", r.name, strings.ReplaceAll(r.err.Error(), "|", "/"))
			continue
		}
		ratio := "–"
		if nativeCoaps > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.coaps)/float64(nativeCoaps))
		}
		w("| %s | %s | %s | %s | %s |\n", r.name, ms(r.coap), ms(r.coaps), ms(r.coaps-r.coap), ratio)
	}
	return b.String()
}
