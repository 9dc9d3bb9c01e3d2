package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Agent is the native Go driver: one goroutine owns an [Engine], a UDP
// socket and a timer, and delivers the engine's events on a channel.
//
// Use New, then Run in a goroutine; Run registers to the server and serves
// until its context is cancelled, then de-registers.
type Agent struct {
	cfg    Config
	engine *Engine
	log    *slog.Logger

	cmds   chan cmdReq
	events chan Event

	mu      sync.Mutex
	queue   []Event // events not yet taken by the channel feeder
	wake    chan struct{}
	closed  bool
	running bool
}

type cmdReq struct {
	cmd  Command
	done chan error
}

// stateFile is the name of the engine state under Config.StateDir.
const stateFile = "agent-state.json"

// New returns an agent for cfg; it validates cfg and loads the persistent
// state from cfg.StateDir. It starts nothing.
func New(cfg Config) (*Agent, error) {
	var state []byte
	if cfg.StateDir != "" {
		b, err := os.ReadFile(filepath.Join(cfg.StateDir, stateFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("agent: read state: %w", err)
		}
		state = b
	}
	if cfg.Device.MemoryTotal == 0 {
		cfg.Device.MemoryFree, cfg.Device.MemoryTotal = systemMemory()
	}
	e, err := NewEngine(cfg, state)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{
		cfg:    cfg,
		engine: e,
		log:    log,
		cmds:   make(chan cmdReq),
		events: make(chan Event),
		wake:   make(chan struct{}, 1),
	}, nil
}

// Events returns the channel of engine events. It is closed once Run has
// returned and every event has been received. Events are queued without
// bound, so a slow reader never stalls the protocol.
func (a *Agent) Events() <-chan Event { return a.events }

// Do sends a command to the running agent and returns the engine's answer
// (for example ErrDuplicate). It returns ErrClosed when Run is not running.
func (a *Agent) Do(ctx context.Context, c Command) error {
	req := cmdReq{cmd: c, done: make(chan error, 1)}
	a.mu.Lock()
	running := a.running
	a.mu.Unlock()
	if !running {
		return ErrClosed
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

// deregisterTimeout bounds the de-registration Run attempts on the way out.
const deregisterTimeout = 10 * time.Second

// Run starts a session, serves the server until ctx is cancelled, then
// de-registers (waiting at most 10 s for the server's answer) and returns.
// It returns an error only when the socket cannot be opened or fails.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.running || a.closed {
		a.mu.Unlock()
		return errors.New("agent: Run called twice")
	}
	a.running = true
	a.mu.Unlock()
	go a.feed()
	defer a.close()

	conn, err := net.ListenUDP("udp", localAddrFor(a.engine.Peer()))
	if err != nil {
		return fmt.Errorf("agent: open socket: %w", err)
	}
	defer conn.Close()
	d := &udpDriver{a: a, conn: conn, quit: make(chan struct{}), addrs: make(map[string]*net.UDPAddr), peers: make(map[string]string)}
	defer close(d.quit)
	return d.loop(ctx)
}

func (a *Agent) close() {
	a.mu.Lock()
	a.running = false
	a.closed = true
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// push queues events for the channel feeder.
func (a *Agent) push(evs []Event) {
	if len(evs) == 0 {
		return
	}
	a.mu.Lock()
	a.queue = append(a.queue, evs...)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// feed moves queued events to the Events channel.
func (a *Agent) feed() {
	defer close(a.events)
	for {
		a.mu.Lock()
		q := a.queue
		a.queue = nil
		closed := a.closed
		a.mu.Unlock()
		for _, ev := range q {
			a.events <- ev
		}
		if len(q) > 0 {
			continue
		}
		if closed {
			return
		}
		<-a.wake
	}
}

// udpDriver is Run's loop state.
type udpDriver struct {
	a    *Agent
	conn *net.UDPConn
	quit chan struct{}

	mu    sync.Mutex              // guards addrs and peers (reader goroutine)
	addrs map[string]*net.UDPAddr // peer key -> resolved address
	peers map[string]string       // resolved address -> peer key
}

type inbound struct {
	peer string
	data []byte
	err  error
}

func (d *udpDriver) loop(ctx context.Context) error {
	a, e := d.a, d.a.engine
	if _, err := d.resolve(e.Peer()); err != nil {
		return fmt.Errorf("agent: resolve server %s: %w", e.Peer(), err)
	}
	rx := make(chan inbound, 16)
	go d.read(rx)

	now := time.Now()
	if err := e.HandleCommand(now, CmdStart{}); err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var stopping bool
	var stopDeadline <-chan time.Time
	done := ctx.Done()
	for {
		next := e.Step(time.Now())
		if err := d.flush(); err != nil {
			return err
		}
		if stopping && !e.reg.busy() {
			return nil
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case in := <-rx:
			if in.err != nil {
				return fmt.Errorf("agent: receive: %w", in.err)
			}
			e.HandleDatagram(time.Now(), in.peer, in.data)
		case req := <-a.cmds:
			req.done <- e.HandleCommand(time.Now(), req.cmd)
		case <-timer.C:
		case <-done:
			done = nil
			stopping = true
			stopDeadline = time.After(deregisterTimeout)
			if err := e.HandleCommand(time.Now(), CmdStop{}); err != nil && !errors.Is(err, ErrDuplicate) {
				return err
			}
		case <-stopDeadline:
			a.log.Warn("de-registration timed out", "server_uri", a.cfg.ServerURI)
			return nil
		}
	}
}

// flush sends queued datagrams, saves state and forwards events.
func (d *udpDriver) flush() error {
	a, e := d.a, d.a.engine
	for {
		dg, ok := e.PollTransmit()
		if !ok {
			break
		}
		addr, err := d.resolve(dg.Peer)
		if err != nil {
			a.log.Warn("resolve peer", "peer", dg.Peer, "err", err)
			continue
		}
		if _, err := d.conn.WriteToUDP(dg.Data, addr); err != nil {
			// A send error is like a lost datagram: CoAP retransmits.
			a.log.Warn("send", "peer", dg.Peer, "err", err)
		}
	}
	var evs []Event
	for {
		ev, ok := e.PollEvent()
		if !ok {
			break
		}
		if ev.Kind == EventStore && a.cfg.StateDir != "" {
			if err := WriteFileAtomic(filepath.Join(a.cfg.StateDir, stateFile), ev.Data, 0o600); err != nil {
				a.log.Error("save state", "err", err)
			}
		}
		evs = append(evs, ev)
	}
	a.push(evs)
	return nil
}

func (d *udpDriver) resolve(peer string) (*net.UDPAddr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if addr, ok := d.addrs[peer]; ok {
		return addr, nil
	}
	addr, err := net.ResolveUDPAddr("udp", peer)
	if err != nil {
		return nil, err
	}
	d.addrs[peer] = addr
	d.peers[addr.String()] = peer
	return addr, nil
}

func (d *udpDriver) read(rx chan<- inbound) {
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case rx <- inbound{err: err}:
			case <-d.quit:
			}
			return
		}
		d.mu.Lock()
		peer, ok := d.peers[addr.String()]
		d.mu.Unlock()
		if !ok {
			peer = addr.String()
		}
		select {
		case rx <- inbound{peer: peer, data: append([]byte(nil), buf[:n]...)}:
		case <-d.quit:
			return
		}
	}
}

// systemMemory returns available and total memory in KiB from
// /proc/meminfo, or zeros where that file does not exist.
func systemMemory() (free, total int64) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var n int64
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &n); err == nil {
			free = n
		} else if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &n); err == nil {
			total = n
		}
	}
	return free, total
}

// localAddrFor returns the address to bind for talking to peer: loopback
// for a loopback server (so the agent is not reachable from elsewhere),
// otherwise any address.
func localAddrFor(peer string) *net.UDPAddr {
	host, _, err := net.SplitHostPort(peer)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil
	}
	return &net.UDPAddr{IP: ip}
}
