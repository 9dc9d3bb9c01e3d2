package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

// StateFile is the name of the persistent state under AVC_STATE_DIR, the
// same file the native driver uses.
const StateFile = agent.StateFile

// deregisterTimeout bounds the de-registration Run waits for on the way out.
const deregisterTimeout = 10 * time.Second

// Trap recovery: after a trap Run re-instantiates the module from the last
// stored state, unless maxTraps traps happened within trapWindow.
const (
	maxTraps   = 3
	trapWindow = time.Minute
)

// Agent runs avc.wasm with the shape of the native [agent.Agent]: New, then
// Run in a goroutine; Run registers to the server and serves until its
// context is cancelled, then de-registers. Events arrive on Events and
// commands go through Do.
type Agent struct {
	cfg      map[string]string
	objects  [][]byte              // WithObjectsXML
	onRead   []string              // WithReadCallbacks
	firmware agent.FirmwareHandler // WithFirmware
	stateDir string
	log      *slog.Logger
	rt       *Runtime
	ownRT    bool
	mod      *Module
	state    []byte // last stored state, to re-initialize after a trap
	traps    []time.Time

	cmds   chan cmdReq
	events *agent.EventQueue

	mu      sync.Mutex
	closed  bool
	running bool

	// The values set with Set or Do(CmdSet), the last per path in the
	// order first set, so that a module instantiated after a trap gets
	// them back.
	valMu  sync.Mutex
	values []agent.CmdSet

	// Run's socket; only the loop goroutine and the import functions it
	// calls use it.
	port    *agent.UDPPort
	stopped bool // a Stop is in flight: waiting for "deregistered"

	sendHook func(peer string, data []byte) // tests: sees every datagram sent
}

type cmdReq struct {
	cmd  agent.Command
	done chan error
}

// New compiles wasm (the bytes of avc.wasm; nil with WithRuntime),
// instantiates it and initializes it with cfg, the AVC_* configuration
// names and their values (as agent.Config.ApplyMap takes them). When
// AVC_STATE_DIR is set, the state stored there by a previous run (of this
// host or of the native driver) is loaded. Custom objects come from
// WithObjectsXML, firmware update from WithFirmware. Configuration
// problems are returned as an error matching agent.ErrConfig. It starts
// nothing.
func New(ctx context.Context, wasm []byte, cfg map[string]string, opts ...Option) (*Agent, error) {
	o := buildOptions(opts)
	a := &Agent{
		cfg:      cfg,
		objects:  o.objectsXML,
		onRead:   o.onRead,
		firmware: o.firmware,
		stateDir: cfg[agent.EnvStateDir],
		log:      o.logger,
		rt:       o.runtime,
		cmds:     make(chan cmdReq),
		events:   agent.NewEventQueue(),
	}
	if a.stateDir != "" {
		b, err := os.ReadFile(filepath.Join(a.stateDir, StateFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("host: read state: %w", err)
		}
		a.state = b
	}
	if a.rt == nil {
		rt, err := NewRuntime(ctx, wasm, opts...)
		if err != nil {
			return nil, err
		}
		a.rt, a.ownRT = rt, true
	}
	if err := a.instantiate(ctx); err != nil {
		a.Close(ctx)
		return nil, err
	}
	return a, nil
}

// instantiate replaces the module with a fresh, initialized instance.
func (a *Agent) instantiate(ctx context.Context) error {
	if a.mod != nil {
		a.mod.Close(ctx)
		a.mod = nil
	}
	m, err := a.rt.Instantiate(ctx, Imports{
		SockSend:     a.send,
		StorageWrite: a.store,
		Log: func(r slog.Record) {
			if h := a.log.Handler(); h.Enabled(context.Background(), r.Level) {
				h.Handle(context.Background(), r)
			}
		},
		Firmware: a.firmware,
	})
	if err != nil {
		return err
	}
	cfg, err := configJSON(a.cfg, a.objects, a.onRead, a.firmware != nil)
	if err != nil {
		m.Close(ctx)
		return fmt.Errorf("host: config: %w", err)
	}
	if err := m.InitJSON(cfg, a.state); err != nil {
		m.Close(ctx)
		return err
	}
	// A fresh instance after a trap: give it the values set so far.
	a.valMu.Lock()
	values := slices.Clone(a.values)
	a.valMu.Unlock()
	for _, c := range values {
		if err := m.Command(time.Now(), c); err != nil {
			a.log.Warn("restore value", "path", c.Path.String(), "err", err)
		}
	}
	a.mod = m
	return nil
}

// remember records a value the module accepted.
func (a *Agent) remember(c agent.CmdSet) {
	a.valMu.Lock()
	defer a.valMu.Unlock()
	for i := range a.values {
		if a.values[i].Path == c.Path {
			a.values[i] = c
			return
		}
	}
	a.values = append(a.values, c)
}

// Module returns the agent's current module instance (it changes after a
// trap). Calling it while Run is running races with the driver; it is
// meant for tests and diagnostics.
func (a *Agent) Module() *Module { return a.mod }

// Events returns the channel of engine events. It is closed once Run has
// returned and every event has been received. Events are queued without
// bound, so a slow reader never stalls the protocol.
func (a *Agent) Events() <-chan agent.Event { return a.events.C() }

// Do sends a command to the running agent and returns the module's answer;
// errors match agent.ErrDuplicate, agent.ErrNotRegistered and
// agent.ErrBadValue as the native driver's do. It returns agent.ErrClosed
// when Run is not running, except that an agent.CmdSet is also applied
// before Run (the module exists from New on), so values are in place when
// the session starts.
func (a *Agent) Do(ctx context.Context, c agent.Command) error {
	req := cmdReq{cmd: c, done: make(chan error, 1)}
	a.mu.Lock()
	running, closed := a.running, a.closed
	if set, ok := c.(agent.CmdSet); ok && !running && !closed {
		// Run cannot start meanwhile: it takes a.mu first.
		defer a.mu.Unlock()
		if err := a.mod.Command(time.Now(), set); err != nil {
			if errors.Is(err, ErrClosed) {
				return agent.ErrClosed // Close without Run
			}
			return err
		}
		a.remember(set)
		return nil
	}
	a.mu.Unlock()
	if !running {
		return agent.ErrClosed
	}
	select {
	case a.cmds <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Control returns the module's update-control snapshot (the le_avc
// getters' view: agreements, timers, what is pending, the last error),
// before, during or after Run. It needs update control ("control": true
// in the module's configuration) and a module with the avc_control export.
func (a *Agent) Control(ctx context.Context) (agent.ControlState, error) {
	if err := ctx.Err(); err != nil {
		return agent.ControlState{}, err
	}
	return a.mod.Control()
}

// Set sets a value the device keeps up to date (agent.CmdSet): path is a
// resource ("/3/0/9", the battery level) or a resource instance
// ("/3/0/11/1"), value its text/plain form ("50"), converted by the engine
// to the resource's type. Use Do with a zero lwm2m.Value to remove a
// resource instance. Values of custom objects (WithObjectsXML) are set the
// same way; a value in a new instance of a multiple-instance object makes
// the instance appear. Set works before and during Run, and the agent gives
// the values back to a module it re-instantiates after a trap. The error
// matches agent.ErrBadValue for a path or value the engine refuses, and is
// agent.ErrClosed once Run has returned.
func (a *Agent) Set(ctx context.Context, path, value string) error {
	p, err := lwm2m.ParsePath(path)
	if err != nil {
		return fmt.Errorf("host: set: %w: %w", agent.ErrBadValue, err)
	}
	return a.Do(ctx, agent.CmdSet{Path: p, Value: lwm2m.String(value)})
}

// Send reports the current values at paths ("/3/0/9", the battery level)
// to the server with the LwM2M Send operation (agent.CmdSend): while the
// client is not registered yet the values are read now, queued and sent
// after the registration. The server's answer arrives as an
// agent.EventSent (Path: the first path) or agent.EventSendFailed. It needs
// Run: before and after it the error is agent.ErrClosed. The error matches
// agent.ErrBadValue for no paths, a malformed path or one the engine
// cannot read.
func (a *Agent) Send(ctx context.Context, paths ...string) error {
	ps := make([]lwm2m.Path, 0, len(paths))
	for _, s := range paths {
		p, err := lwm2m.ParsePath(s)
		if err != nil {
			return fmt.Errorf("host: send: %w: %w", agent.ErrBadValue, err)
		}
		ps = append(ps, p)
	}
	return a.Do(ctx, agent.CmdSend{Paths: ps})
}

// Close releases the module (and the runtime unless it came from
// WithRuntime). Run closes the agent when it returns; Close is for an agent
// that never ran. It is safe to call twice.
func (a *Agent) Close(ctx context.Context) error {
	var err error
	if a.mod != nil {
		err = a.mod.Close(ctx)
	}
	if a.ownRT && a.rt != nil {
		err = errors.Join(err, a.rt.Close(ctx))
	}
	return err
}

// Run opens a UDP socket, starts a session, serves the server until ctx is
// cancelled, then de-registers (waiting at most 10 s for the
// "deregistered" event) and returns. It returns an error when the socket
// fails or the module keeps trapping. An agent runs once.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.running || a.closed {
		a.mu.Unlock()
		return errors.New("host: Run called twice")
	}
	a.running = true
	a.mu.Unlock()
	defer a.Close(context.WithoutCancel(ctx))
	defer a.finish()

	uri := a.cfg[agent.EnvServerURI]
	if uri == "" {
		// Bootstrap only: the bootstrap server gives the DM server, which
		// the same socket reaches (plain coap in wasm).
		uri = a.cfg[agent.EnvBootstrapURI]
	}
	peer, err := agent.ServerPeer(uri)
	if err != nil {
		return err
	}
	port, err := agent.ListenUDP(peer)
	if err != nil {
		return err
	}
	a.port = port
	defer func() { a.port.Close() }() // the last one: see recoverTrap
	return a.loop(ctx)
}

func (a *Agent) loop(ctx context.Context) error {
	stopping := false
	// apply runs one module call. After a trap it starts over with a fresh
	// instance and retries the call once there.
	apply := func(f func(*Module) error) error {
		err := f(a.mod)
		if err == nil || !errors.Is(err, ErrTrapped) {
			return err
		}
		if err := a.recoverTrap(ctx, err, stopping); err != nil {
			return err
		}
		return f(a.mod)
	}
	if err := apply(func(m *Module) error { return m.Command(time.Now(), agent.CmdStart{}) }); err != nil && !errors.Is(err, agent.ErrDuplicate) {
		return err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var stopDeadline <-chan time.Time
	done := ctx.Done()
	for {
		var next time.Time
		if err := apply(func(m *Module) (err error) {
			next, err = m.Step(time.Now())
			return err
		}); err != nil {
			if errors.Is(err, ErrTrapped) {
				return err
			}
			a.log.Warn("step", "err", err)
		}
		if err := a.drain(); err != nil {
			if err := a.recoverTrap(ctx, err, stopping); err != nil {
				return err
			}
			continue
		}
		if stopping && !a.stopped {
			return nil
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		var err error
		port := a.port // recoverTrap may replace it
		select {
		case d, ok := <-port.Recv():
			if !ok {
				return fmt.Errorf("host: receive: %w", port.Err())
			}
			err = apply(func(m *Module) error { return m.OnDatagram(time.Now(), d.Peer, d.Data) })
		case req := <-a.cmds:
			err = apply(func(m *Module) error { return m.Command(time.Now(), req.cmd) })
			if _, ok := req.cmd.(agent.CmdStop); ok && err == nil {
				a.stopped = true
			}
			if set, ok := req.cmd.(agent.CmdSet); ok && err == nil {
				a.remember(set)
			}
			req.done <- err
			err = nil
		case <-timer.C:
		case <-done:
			done = nil
			stopping = true
			stopDeadline = time.After(deregisterTimeout)
			err = apply(func(m *Module) error { return m.Command(time.Now(), agent.CmdStop{}) })
			if err == nil {
				a.stopped = true
			} else if errors.Is(err, agent.ErrDuplicate) {
				err = nil
			}
		case <-stopDeadline:
			a.log.Warn("de-registration timed out", "server_uri", a.cfg[agent.EnvServerURI])
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrTrapped) {
				return err
			}
			a.log.Warn("module call failed", "err", err)
		}
	}
}

// drain forwards every pending event; it notes the end of a stop.
func (a *Agent) drain() error {
	var evs []agent.Event
	defer func() { a.events.Push(evs...) }()
	for {
		ev, ok, err := a.mod.PollEvent()
		if err != nil {
			if errors.Is(err, ErrTrapped) {
				return err
			}
			a.log.Warn("poll event", "err", err)
			if !ok {
				return nil
			}
			continue
		}
		if !ok {
			return nil
		}
		if ev.Kind == agent.EventDeregistered && !ev.Further {
			a.stopped = false
		}
		evs = append(evs, ev)
	}
}

// recoverTrap replaces a trapped module with a fresh instance initialized
// from the last stored state and, unless the agent is stopping, starts a
// new session. Too many traps in a row end Run with the trap's error.
func (a *Agent) recoverTrap(ctx context.Context, trap error, stopping bool) error {
	now := time.Now()
	recent := a.traps[:0]
	for _, t := range a.traps {
		if now.Sub(t) < trapWindow {
			recent = append(recent, t)
		}
	}
	a.traps = append(recent, now)
	a.log.Error("module trapped", "err", trap, "traps", len(a.traps))
	if stopping || len(a.traps) > maxTraps {
		return trap
	}
	if err := a.instantiate(ctx); err != nil {
		return errors.Join(trap, err)
	}
	if err := a.rebind(); err != nil {
		return errors.Join(trap, err)
	}
	if err := a.mod.Command(time.Now(), agent.CmdStart{}); err != nil {
		return errors.Join(trap, err)
	}
	return nil
}

// rebind gives a fresh module a new socket when it carries a DTLS session
// (coaps): the server may still hold the dead instance's session for the
// old address and port, and would take the new ClientHello from there for
// a replay in it. A new port is a new session for the server, as every
// session of the native driver is.
func (a *Agent) rebind() error {
	uri := a.cfg[agent.EnvServerURI]
	if a.port == nil || !strings.HasPrefix(strings.ToLower(uri), "coaps:") {
		return nil
	}
	peer, err := agent.ServerPeer(uri)
	if err != nil {
		return err
	}
	port, err := agent.ListenUDP(peer)
	if err != nil {
		return err
	}
	a.port.Close()
	a.port = port
	return nil
}

// send implements the sock_send import.
func (a *Agent) send(peer string, data []byte) error {
	if a.port == nil {
		return errors.New("not running")
	}
	if a.sendHook != nil {
		a.sendHook(peer, data)
	}
	if err := a.port.Send(peer, data); err != nil {
		a.log.Warn("send", "err", err)
		return err
	}
	return nil
}

// store implements the storage_write import.
func (a *Agent) store(key string, data []byte) error {
	if key != "state" {
		return fmt.Errorf("unknown storage key %q", key)
	}
	a.state = append(a.state[:0:0], data...)
	if a.stateDir == "" {
		return nil
	}
	if err := agent.WriteFileAtomic(filepath.Join(a.stateDir, StateFile), data, 0o600); err != nil {
		a.log.Error("save state", "err", err)
		return err
	}
	return nil
}

func (a *Agent) finish() {
	a.mu.Lock()
	a.running = false
	a.closed = true
	a.mu.Unlock()
	a.events.Close()
}
