package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/server"
)

// The scale part of the bench (issue 3's evidence): how fast one agent
// notifies, what a notification costs the engine, and how fast the avc
// server takes the registrations of a fleet of agents in one process.

// notifyResult is the notification measure.
type notifyResult struct {
	perSecond   float64 // end to end, set → notification at the server
	count       int
	engineNs    float64 // engine CPU per notification (in-process)
	engineAlloc float64
	engineOps   int
}

// observeRequest is a hand-made CON GET of /3/0/9 with Observe=0 and a
// one-byte token: type CON, TKL 1; 0.01; message ID 0x0101; token 0x7e;
// Observe (6) 0; Uri-Path (11) "3", "0", "9".
var observeRequest = []byte{0x41, 0x01, 0x01, 0x01, 0x7e, 0x60, 0x51, '3', 0x01, '0', 0x01, '9'}

// engineNotify measures the engine alone: an observation of /3/0/9 by
// agenttest's simulated server, then CmdSet of a new battery level and
// the notification it produces (PollTransmit), acknowledged when it is
// confirmable. Single goroutine: wall time is CPU time.
func engineNotify(d time.Duration) (ns, allocs float64, ops int, err error) {
	sim, err := agenttest.New(agent.Config{Endpoint: "bench-notify", Lifetime: 300 * time.Second}, nil, 2, agenttest.Faults{})
	if err != nil {
		return 0, 0, 0, err
	}
	if err := sim.Do(agent.CmdStart{}); err != nil {
		return 0, 0, 0, err
	}
	if _, ok := sim.WaitEvent(agent.EventRegistered, time.Minute); !ok {
		return 0, 0, 0, errors.New("the engine did not register with agenttest's server")
	}
	e, now := sim.Engine, sim.Now
	drain := func() (n int) {
		for {
			dg, ok := e.PollTransmit()
			if !ok {
				break
			}
			n++
			if len(dg.Data) >= 4 && dg.Data[0]>>4&3 == 0 { // CON: acknowledge it
				ack := []byte{0x60, 0x00, dg.Data[2], dg.Data[3]}
				e.HandleDatagram(now, agenttest.ServerPeer, ack)
			}
		}
		for {
			if _, more := e.PollEvent(); !more {
				break
			}
		}
		return n
	}
	e.HandleDatagram(now, agenttest.ServerPeer, observeRequest)
	if drain() != 1 {
		return 0, 0, 0, errors.New("the observe request got no single answer")
	}
	level := int64(0)
	cycle := func() error {
		level = (level + 1) % 101
		now = now.Add(time.Millisecond)
		if err := e.HandleCommand(now, agent.CmdSet{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(level)}); err != nil {
			return err
		}
		e.Step(now)
		if drain() == 0 {
			return fmt.Errorf("no notification for battery level %d", level)
		}
		return nil
	}
	for range 1000 {
		if err := cycle(); err != nil {
			return 0, 0, 0, err
		}
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for time.Since(start) < d {
		for range 1000 {
			if err := cycle(); err != nil {
				return 0, 0, 0, err
			}
			ops++
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	return float64(elapsed.Nanoseconds()) / float64(ops), float64(m1.Mallocs-m0.Mallocs) / float64(ops), ops, nil
}

// notifyBench measures notifications end to end: a native agent in this
// process, registered with the bench's server over UDP; the server
// observes /3/0/9; each round sets a new level and waits for its
// notification at the server.
func notifyBench(ctx context.Context, srv *server.Server, d time.Duration) (notifyResult, error) {
	var res notifyResult
	var err error
	if res.engineNs, res.engineAlloc, res.engineOps, err = engineNotify(d); err != nil {
		return res, fmt.Errorf("engine: %w", err)
	}
	ep := fmt.Sprintf("bench-notify-%d", time.Now().UnixNano())
	events, unsubscribe := srv.Subscribe()
	defer unsubscribe()
	a, err := agent.New(agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: ep, Lifetime: 300 * time.Second})
	if err != nil {
		return res, err
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	go func() {
		for range a.Events() {
		}
	}()
	defer func() { stop(); <-done }()
	if _, err := awaitEvent(ctx, events, ep, server.EventRegistered, 20*time.Second, nil); err != nil {
		return res, err
	}
	obs, err := srv.Observe(ctx, ep, lwm2m.P(3, 0, 9), lwm2m.FormatText)
	if err != nil {
		return res, err
	}
	defer obs.Cancel(context.Background())
	start := time.Now()
	for level := int64(0); time.Since(start) < d; level++ {
		v := level % 101
		if err := a.Do(ctx, agent.CmdSet{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(v)}); err != nil {
			return res, err
		}
		for got := false; !got; {
			select {
			case n, ok := <-obs.Notifications():
				if !ok {
					return res, errors.New("the observation ended")
				}
				got = strings.TrimSpace(string(n.Response.Payload)) == fmt.Sprint(v)
			case <-time.After(5 * time.Second):
				return res, fmt.Errorf("no notification of level %d within 5 s", v)
			}
		}
		res.count++
	}
	res.perSecond = float64(res.count) / time.Since(start).Seconds()
	return res, nil
}

// fleetResult is the fleet registration measure.
type fleetResult struct {
	agents     int
	registered time.Duration // first start to the last registration the server saw
	perSecond  float64
	goroutines int // in the process once all are registered
}

// fleetBench starts n native agents in this process, each with its own
// UDP socket, all at once, and times until the server has seen every
// registration; then stops them (de-registering).
func fleetBench(ctx context.Context, srv *server.Server, n int) (fleetResult, error) {
	res := fleetResult{agents: n}
	prefix := fmt.Sprintf("fleet-%d-", time.Now().UnixNano())
	// The server's registry is polled: its event subscription drops what
	// a slow subscriber cannot take, and a thousand registrations at once
	// can be that.
	registered := func() int {
		c := 0
		for _, ci := range srv.Clients() {
			if strings.HasPrefix(ci.Endpoint, prefix) {
				c++
			}
		}
		return c
	}
	agents := make([]*agent.Agent, n)
	for i := range agents {
		a, err := agent.New(agent.Config{ServerURI: "coap://" + srv.CoAPAddr().String(), Endpoint: fmt.Sprintf("%s%04d", prefix, i), Lifetime: 600 * time.Second})
		if err != nil {
			return res, err
		}
		agents[i] = a
	}
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	start := time.Now()
	for _, a := range agents {
		wg.Add(2)
		go func() { defer wg.Done(); a.Run(actx) }()
		go func() {
			defer wg.Done()
			for range a.Events() {
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for registered() < n {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%d of %d agents registered within 2 minutes", registered(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.registered = time.Since(start)
	res.perSecond = float64(n) / res.registered.Seconds()
	res.goroutines = runtime.NumGoroutine()
	return res, nil
}

func renderScale(nr notifyResult, nerr error, fr fleetResult, ferr error) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("\n## Notifications and a fleet\n\n")
	if nerr != nil {
		w("Notifications FAILED: %v\n\n", nerr)
	} else {
		w("One agent observed on /3/0/9 by the server. End to end: a native agent in the bench process sets a new battery level (CmdSet) and waits for its notification at the avc server over UDP, in lockstep, %d rounds. Engine alone: CmdSet → the notification from PollTransmit on an engine registered with agenttest's server, single goroutine (its time is CPU time), %d rounds.\n\n", nr.count, nr.engineOps)
		w("| notifications per second (end to end, lockstep) | engine CPU per notification (µs) | allocs per notification |\n|---:|---:|---:|\n")
		w("| %s | %.2f | %.1f |\n\n", f0(nr.perSecond), nr.engineNs/1000, nr.engineAlloc)
	}
	if ferr != nil {
		w("Fleet FAILED: %v\n", ferr)
	} else {
		w("A fleet of %d native agents in one process (each its own UDP socket and goroutines), started at once against the avc server: time until the server has seen every registration.\n\n", fr.agents)
		w("| agents | all registered after (ms) | registrations per second | goroutines in the process |\n|---:|---:|---:|---:|\n")
		w("| %d | %.0f | %s | %d |\n", fr.agents, ms(fr.registered), f0(fr.perSecond), fr.goroutines)
	}
	return b.String()
}

// runScale runs the notification and fleet measures and renders them.
func runScale(ctx context.Context, srv *server.Server, o options) (string, bool) {
	logf("notifications (one agent) and a fleet of %d agents", o.fleet)
	nr, nerr := notifyBench(ctx, srv, time.Duration(o.engineMs)*time.Millisecond*5)
	if nerr != nil {
		logf("notifications FAILED: %v", nerr)
	}
	fr, ferr := fleetBench(ctx, srv, o.fleet)
	if ferr != nil {
		logf("fleet FAILED: %v", ferr)
	}
	return renderScale(nr, nerr, fr, ferr), nerr != nil || ferr != nil
}
