package agenttest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/avc-agent/avc/agent"
)

// ServerPeer is the peer key of the simulated server.
const ServerPeer = "127.0.0.1:5683"

// ServerURI is the URI the simulated engine is configured with.
const ServerURI = "coap://" + ServerPeer

// Epoch is where virtual time starts.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Faults configures the simulated network. Probabilities are in [0,1].
type Faults struct {
	Loss      float64       // each datagram is dropped with this probability
	Duplicate float64       // each delivered datagram is delivered twice
	Reorder   float64       // a datagram is delayed by up to 3×Latency
	Latency   time.Duration // one-way delay; zero means 10 ms
}

// Sent is a datagram observed on the simulated wire.
type Sent struct {
	At      time.Time
	ToAgent bool
	Peer    string // the other end: ServerPeer or a peer added with AddPeer
	Raw     []byte
	Msg     *message.Message // nil when Raw is not a valid CoAP message
}

// Sim is one simulation: an engine, a server and the network between them.
type Sim struct {
	Now    time.Time
	Engine *agent.Engine
	Server *Server
	Faults Faults
	Seed   uint64
	// Events collects every event the engine emitted, in order.
	Events []agent.Event
	// Wire logs every datagram put on the network, before faults.
	Wire []Sent
	// OnEvent, when set, is called with each event as it is collected,
	// like a host's event handler; it may apply commands (Do).
	OnEvent func(agent.Event)

	rng   *rand.Rand
	queue []delivery
	seq   int
	// front, when set, receives the datagrams sent to the server in place
	// of Server (see BlockServer).
	front func([]byte)
	// peers are further hosts the engine talks to (AddPeer).
	peers map[string]func([]byte)
	cfg   agent.Config
	state []byte // the last EventStore data
}

type delivery struct {
	at      time.Time
	seq     int
	toAgent bool
	peer    string
	data    []byte
}

// New returns a simulation of an engine configured by cfg (ServerURI,
// unless BootstrapURI is set, and Rand are filled in when empty) with
// state as its stored state.
func New(cfg agent.Config, state []byte, seed uint64, f Faults) (*Sim, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if cfg.ServerURI == "" && cfg.BootstrapURI == "" {
		cfg.ServerURI = ServerURI
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "sim-device"
	}
	if cfg.Rand == nil {
		cfg.Rand = &randReader{rng: rand.New(rand.NewPCG(seed+1, seed))}
	}
	e, err := agent.NewEngine(cfg, state)
	if err != nil {
		return nil, err
	}
	if f.Latency == 0 {
		f.Latency = 10 * time.Millisecond
	}
	s := &Sim{Now: Epoch, Engine: e, Faults: f, Seed: seed, rng: rng, peers: make(map[string]func([]byte)), cfg: cfg, state: state}
	s.Server = &Server{sim: s, peer: ServerPeer, Location: []string{"rd", "a1"}, responses: make(map[string]*message.Message), mid: uint16(rng.Uint32())}
	return s, nil
}

type randReader struct{ rng *rand.Rand }

func (r *randReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(r.rng.Uint32())
	}
	return len(b), nil
}

// Do applies a command to the engine at the current virtual time.
func (s *Sim) Do(c agent.Command) error {
	err := s.Engine.HandleCommand(s.Now, c)
	s.drain()
	return err
}

// RunFor advances virtual time by d, delivering datagrams and firing the
// engine's timers in order.
func (s *Sim) RunFor(d time.Duration) { s.RunUntil(s.Now.Add(d), nil) }

// RunUntil advances virtual time until cond returns true (checked after
// every delivery and timer) or until limit. It reports whether cond held.
func (s *Sim) RunUntil(limit time.Time, cond func() bool) bool {
	for {
		next := s.Engine.Step(s.Now)
		s.drain()
		if cond != nil && cond() {
			return true
		}
		timerDue := !next.IsZero() && !next.After(limit)
		deliveryDue := len(s.queue) > 0 && !s.queue[0].at.After(limit)
		if !timerDue && !deliveryDue {
			// Nothing happens before limit (traffic may go on after it).
			s.Now = limit
			s.Engine.Step(s.Now)
			s.drain()
			return cond != nil && cond()
		}
		at := limit
		if timerDue && next.Before(at) {
			at = next
		}
		if deliveryDue && s.queue[0].at.Before(at) {
			at = s.queue[0].at
		}
		if at.After(s.Now) {
			s.Now = at
		}
		for len(s.queue) > 0 && !s.queue[0].at.After(s.Now) {
			d := s.queue[0]
			s.queue = s.queue[1:]
			switch {
			case d.toAgent:
				s.Engine.HandleDatagram(s.Now, d.peer, d.data)
			case d.peer != ServerPeer:
				if h, ok := s.peers[d.peer]; ok {
					h(d.data)
				}
			case s.front != nil:
				s.front(d.data)
			default:
				s.Server.receive(d.data)
			}
			s.drain()
			if cond != nil && cond() {
				return true
			}
		}
	}
}

// WaitEvent runs until the engine emits an event of kind (after the
// events already seen) or until timeout; it returns the event.
func (s *Sim) WaitEvent(kind agent.EventKind, timeout time.Duration) (agent.Event, bool) {
	start := len(s.Events)
	var found agent.Event
	ok := s.RunUntil(s.Now.Add(timeout), func() bool {
		for _, ev := range s.Events[start:] {
			if ev.Kind == kind {
				found = ev
				return true
			}
		}
		return false
	})
	return found, ok
}

// EventsOf returns the collected events of kind.
func (s *Sim) EventsOf(kind agent.EventKind) []agent.Event {
	var out []agent.Event
	for _, ev := range s.Events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// drain moves the engine's output onto the network and collects events.
func (s *Sim) drain() {
	for {
		d, ok := s.Engine.PollTransmit()
		if !ok {
			break
		}
		if _, ok := s.peers[d.Peer]; d.Peer != ServerPeer && !ok {
			panic(fmt.Sprintf("agenttest: datagram to unexpected peer %q", d.Peer))
		}
		s.sendPeer(d.Peer, false, d.Data)
	}
	for {
		ev, ok := s.Engine.PollEvent()
		if !ok {
			break
		}
		if ev.Kind == agent.EventStore {
			s.state = ev.Data
		}
		s.Events = append(s.Events, ev)
		if s.OnEvent != nil {
			s.OnEvent(ev)
		}
	}
}

// AddServer adds a further scripted LwM2M server at peer ("host:port"),
// for an engine configured with several servers (Config.Servers): the
// datagrams the engine sends to peer reach it, and its requests and
// answers come from peer. Its location defaults to "/rd/<peer's port>".
func (s *Sim) AddServer(peer string) *Server {
	_, port, _ := strings.Cut(peer, ":")
	sv := &Server{sim: s, peer: peer, Location: []string{"rd", "s" + port}, responses: make(map[string]*message.Message),
		mid: uint16(s.rng.Uint32())}
	s.peers[peer] = sv.receive
	return sv
}

// Peer returns the server's peer key ("host:port").
func (sv *Server) Peer() string { return sv.peer }

// AddPeer makes the simulated network deliver the datagrams the engine
// sends to peer ("host:port") to handle; SendFrom answers.
func (s *Sim) AddPeer(peer string, handle func(data []byte)) { s.peers[peer] = handle }

// SendFrom puts a datagram from peer towards the engine on the wire.
func (s *Sim) SendFrom(peer string, b []byte) { s.sendPeer(peer, true, b) }

// State returns the engine's last stored state (EventStore data).
func (s *Sim) State() []byte { return s.state }

// Restart replaces the engine by a new one made from the last stored
// state, as after a reboot or a crash: datagrams in flight to the old
// engine are lost, and the new one is started (CmdStart). cfg, when not
// nil, changes the configuration; the faults and peers stay.
func (s *Sim) Restart(cfg *agent.Config) error {
	if err := s.Reboot(cfg); err != nil {
		return err
	}
	return s.Do(agent.CmdStart{})
}

// Reboot is Restart without the CmdStart: the new engine is made from the
// last stored state and left to its own timers, as a host that does not
// open a session at start-up (update control's polling timer and resume
// table act from the first Step).
func (s *Sim) Reboot(cfg *agent.Config) error {
	if cfg != nil {
		c := *cfg
		if c.ServerURI == "" && c.BootstrapURI == "" {
			c.ServerURI = ServerURI
		}
		if c.Endpoint == "" {
			c.Endpoint = s.cfg.Endpoint
		}
		if c.Rand == nil {
			c.Rand = s.cfg.Rand
		}
		s.cfg = c
	}
	e, err := agent.NewEngine(s.cfg, s.state)
	if err != nil {
		return err
	}
	kept := s.queue[:0]
	for _, d := range s.queue {
		if !d.toAgent {
			kept = append(kept, d)
		}
	}
	s.queue = kept
	s.Engine = e
	return nil
}

// send puts a datagram between the engine and the server on the wire.
func (s *Sim) send(toAgent bool, b []byte) { s.sendPeer(ServerPeer, toAgent, b) }

// sendPeer puts a datagram on the wire, applying faults.
func (s *Sim) sendPeer(peer string, toAgent bool, b []byte) {
	m, _ := decodeMsg(b)
	s.Wire = append(s.Wire, Sent{At: s.Now, ToAgent: toAgent, Peer: peer, Raw: append([]byte(nil), b...), Msg: m})
	if s.rng.Float64() < s.Faults.Loss {
		return
	}
	copies := 1
	if s.rng.Float64() < s.Faults.Duplicate {
		copies = 2
	}
	for i := 0; i < copies; i++ {
		delay := s.Faults.Latency
		if s.rng.Float64() < s.Faults.Reorder {
			delay += time.Duration(s.rng.Int64N(int64(3 * s.Faults.Latency)))
		}
		s.seq++
		s.queue = append(s.queue, delivery{at: s.Now.Add(delay), seq: s.seq, toAgent: toAgent, peer: peer, data: append([]byte(nil), b...)})
	}
	sort.Slice(s.queue, func(i, j int) bool {
		if !s.queue[i].at.Equal(s.queue[j].at) {
			return s.queue[i].at.Before(s.queue[j].at)
		}
		return s.queue[i].seq < s.queue[j].seq
	})
}

// Inject puts raw bytes on the wire towards the agent (for bad-input tests).
func (s *Sim) Inject(b []byte) { s.send(true, b) }

// WireTo returns the logged messages sent to the agent (toAgent) or to the
// server, optionally filtered by a predicate.
func (s *Sim) WireTo(toAgent bool, keep func(*message.Message) bool) []Sent {
	var out []Sent
	for _, w := range s.Wire {
		if w.ToAgent == toAgent && (keep == nil || (w.Msg != nil && keep(w.Msg))) {
			out = append(out, w)
		}
	}
	return out
}

func decodeMsg(b []byte) (*message.Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("agenttest: empty datagram")
	}
	m := &message.Message{Options: make(message.Options, 0, 64)}
	c := append([]byte(nil), b...)
	if _, err := coder.DefaultCoder.Decode(c, m); err != nil {
		return nil, err
	}
	return m, nil
}

func encodeMsg(m *message.Message) []byte {
	n, err := coder.DefaultCoder.Size(*m)
	if err != nil {
		panic(err)
	}
	b := make([]byte, n)
	if _, err := coder.DefaultCoder.Encode(*m, b); err != nil {
		panic(err)
	}
	return b
}

// Path returns the Uri-Path of m as "/a/b".
func Path(m *message.Message) string {
	var segs []string
	for _, o := range m.Options {
		if o.ID == message.URIPath {
			segs = append(segs, string(o.Value))
		}
	}
	return "/" + strings.Join(segs, "/")
}

// Queries returns the Uri-Query options of m.
func Queries(m *message.Message) []string {
	var q []string
	for _, o := range m.Options {
		if o.ID == message.URIQuery {
			q = append(q, string(o.Value))
		}
	}
	return q
}

// Server is a scripted LwM2M server: it answers the registration
// interface and sends requests to the agent on demand.
type Server struct {
	sim  *Sim
	peer string // ServerPeer, or the one given to AddServer
	// Location is the Location-Path answered to a Register.
	Location []string
	// Silent makes the server answer nothing.
	Silent bool
	// RegisterCode and UpdateCode override the answers to Register and
	// Update (zero means 2.01 and 2.04).
	RegisterCode, UpdateCode codes.Code

	// Registers, Updates and Deregisters are the requests received.
	Registers, Updates, Deregisters []*message.Message
	// Sends are the LwM2M Send requests (POST /dp) received; SendCode
	// overrides their answer (zero means 2.04).
	Sends    []*message.Message
	SendCode codes.Code
	// Notifications are the Observe notifications received, in order
	// (retransmissions included once).
	Notifications []*message.Message
	// ResetNotifications makes the server answer notifications with RST;
	// IgnoreNotifications makes it leave confirmable ones unacknowledged.
	ResetNotifications, IgnoreNotifications bool

	responses map[string]*message.Message
	mid       uint16
	tok       uint64
	seenMIDs  map[uint16]bool
}

func (sv *Server) receive(b []byte) {
	m, err := decodeMsg(b)
	if err != nil {
		return
	}
	if sv.seenMIDs == nil {
		sv.seenMIDs = make(map[uint16]bool)
	}
	switch m.Type {
	case message.Acknowledgement:
		if m.Code != codes.Empty {
			sv.responses[string(m.Token)] = m
		}
		return
	case message.NonConfirmable:
		if m.Code < 64 {
			return // the server takes no requests without a response
		}
	case message.Reset:
		sv.responses[string(m.Token)] = m
		return
	}
	if sv.Silent {
		return
	}
	dup := sv.seenMIDs[uint16(m.MessageID)]
	sv.seenMIDs[uint16(m.MessageID)] = true
	if m.Code >= 64 { // a notification or a separate response
		if _, err := m.Options.Observe(); err == nil {
			if !dup {
				sv.Notifications = append(sv.Notifications, m)
			}
		} else {
			sv.responses[string(m.Token)] = m
		}
		switch {
		case sv.ResetNotifications:
			sv.sim.sendPeer(sv.peer, true, encodeMsg(&message.Message{Type: message.Reset, MessageID: m.MessageID}))
		case m.Type == message.Confirmable && !sv.IgnoreNotifications:
			sv.sim.sendPeer(sv.peer, true, encodeMsg(&message.Message{Type: message.Acknowledgement, MessageID: m.MessageID}))
		}
		return
	}
	resp := &message.Message{Type: message.Acknowledgement, MessageID: m.MessageID, Token: m.Token, Options: make(message.Options, 0, 4)}
	p := Path(m)
	switch {
	case m.Code == codes.POST && p == "/rd":
		if !dup {
			sv.Registers = append(sv.Registers, m)
		}
		resp.Code = codes.Created
		if sv.RegisterCode != 0 {
			resp.Code = sv.RegisterCode
		} else {
			for _, seg := range sv.Location {
				resp.Options = resp.Options.Add(message.Option{ID: message.LocationPath, Value: []byte(seg)})
			}
		}
	case m.Code == codes.POST && p == "/"+strings.Join(sv.Location, "/"):
		if !dup {
			sv.Updates = append(sv.Updates, m)
		}
		resp.Code = codes.Changed
		if sv.UpdateCode != 0 {
			resp.Code = sv.UpdateCode
		}
	case m.Code == codes.POST && p == "/dp":
		if !dup {
			sv.Sends = append(sv.Sends, m)
		}
		resp.Code = codes.Changed
		if sv.SendCode != 0 {
			resp.Code = sv.SendCode
		}
	case m.Code == codes.DELETE && p == "/"+strings.Join(sv.Location, "/"):
		if !dup {
			sv.Deregisters = append(sv.Deregisters, m)
		}
		resp.Code = codes.Deleted
	default:
		resp.Code = codes.NotFound
	}
	sv.sim.sendPeer(sv.peer, true, encodeMsg(resp))
}

// Request sends a confirmable request to the agent and runs the
// simulation until the response arrives (retransmitting like a CoAP
// client, with the interval capped at 32 s) or 5 minutes of virtual time
// pass. opts are added as they are.
func (sv *Server) Request(code codes.Code, path string, payload []byte, opts ...message.Option) *message.Message {
	sv.mid++
	sv.tok++
	return sv.sim.request(sv.peer, sv.mid, sv.tok^0xa5a5, sv.responses, code, path, payload, opts)
}

// request sends a confirmable request from peer with message ID mid and
// token tok, and runs the simulation until responses holds its answer
// (retransmitting like a CoAP client, the interval doubling up to 32 s)
// or 5 minutes of virtual time pass (nil). Server and BootstrapServer
// share it.
func (s *Sim) request(peer string, mid uint16, tok uint64, responses map[string]*message.Message,
	code codes.Code, path string, payload []byte, opts []message.Option) *message.Message {
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], tok)
	m := &message.Message{Type: message.Confirmable, Code: code, MessageID: int32(mid), Token: t[:], Options: make(message.Options, 0, 8), Payload: payload}
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg != "" {
			m.Options = m.Options.Add(message.Option{ID: message.URIPath, Value: []byte(seg)})
		}
	}
	for _, o := range opts {
		m.Options = m.Options.Add(o)
	}
	wire := encodeMsg(m)
	key := string(t[:])
	timeout := agent.AckTimeout
	deadline := s.Now.Add(5 * time.Minute)
	for s.Now.Before(deadline) {
		s.sendPeer(peer, true, wire)
		s.RunUntil(s.Now.Add(timeout), func() bool { return responses[key] != nil })
		if r := responses[key]; r != nil {
			delete(responses, key)
			return r
		}
		timeout = min(2*timeout, 32*time.Second)
	}
	return nil
}

// Uint returns a uint CoAP option.
func Uint(id message.OptionID, v uint32) message.Option {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	i := 0
	for i < 4 && b[i] == 0 {
		i++
	}
	return message.Option{ID: id, Value: b[i:]}
}

// BlockServer puts a Block1-capable front on the simulated server: the
// requests the engine sends block-wise (RFC 7959 §2.5) are reassembled and
// handed whole to the Server, which answers as usual. Drive the
// simulation through the BlockServer's RunUntil, RunFor and WaitEvent;
// Sim's own methods deliver to the Server without the front.
type BlockServer struct {
	// PreferSize, when non-zero, is the block size the server asks for in
	// its 2.31 Continue when a block is larger (late negotiation).
	PreferSize int
	// MaxPayload, when non-zero, answers a request (or a block) whose
	// payload is larger with 4.13 Request Entity Too Large and a Size1 of
	// MaxPayload.
	MaxPayload int
	// Blocks are the Block1 requests received, retransmissions excluded.
	Blocks []*message.Message
	// TooLarge counts the 4.13 answers sent.
	TooLarge int

	sim      *Sim
	bodies   map[string][]byte // by path
	answered map[uint16][]byte // our answer, by message ID
	finals   map[uint16][]byte // the reassembled request, by the final block's message ID
}

// BlockServer puts a Block1 front before the simulated server: from now on
// the datagrams sent to the server go through it.
func (s *Sim) BlockServer() *BlockServer {
	b := &BlockServer{sim: s, bodies: make(map[string][]byte), answered: make(map[uint16][]byte), finals: make(map[uint16][]byte)}
	s.front = b.receive
	return b
}

// RunFor is Sim.RunFor; the front is in place from BlockServer on.
func (b *BlockServer) RunFor(d time.Duration) { b.sim.RunFor(d) }

// WaitEvent is Sim.WaitEvent.
func (b *BlockServer) WaitEvent(kind agent.EventKind, timeout time.Duration) (agent.Event, bool) {
	return b.sim.WaitEvent(kind, timeout)
}

// RunUntil is Sim.RunUntil.
func (b *BlockServer) RunUntil(limit time.Time, cond func() bool) bool {
	return b.sim.RunUntil(limit, cond)
}

func (b *BlockServer) receive(data []byte) {
	s := b.sim
	m, err := decodeMsg(data)
	if err != nil || m.Type != message.Confirmable || m.Code == codes.Empty || m.Code >= 64 {
		s.Server.receive(data)
		return
	}
	mid := uint16(m.MessageID)
	if w, ok := b.finals[mid]; ok {
		s.Server.receive(w) // the Server answers its duplicate again
		return
	}
	if w, ok := b.answered[mid]; ok {
		s.send(true, w)
		return
	}
	var blk agent.BlockOption
	hasBlock := false
	for _, o := range m.Options {
		if o.ID == message.Block1 {
			blk, err = agent.ParseBlockOption(o.Value)
			hasBlock = err == nil
		}
	}
	if !hasBlock && (b.MaxPayload == 0 || len(m.Payload) <= b.MaxPayload) {
		s.Server.receive(data)
		return
	}
	resp := &message.Message{Type: message.Acknowledgement, MessageID: m.MessageID, Token: m.Token, Options: make(message.Options, 0, 2)}
	answer := func() {
		w := encodeMsg(resp)
		b.answered[mid] = w
		s.send(true, w)
	}
	if b.MaxPayload > 0 && len(m.Payload) > b.MaxPayload {
		b.TooLarge++
		resp.Code = codes.RequestEntityTooLarge
		resp.Options = resp.Options.Add(Uint(message.Size1, uint32(b.MaxPayload)))
		answer()
		return
	}
	b.Blocks = append(b.Blocks, m)
	p := Path(m)
	body := b.bodies[p]
	if blk.Num == 0 {
		body = nil
	}
	if blk.Offset() != int64(len(body)) {
		resp.Code = codes.RequestEntityIncomplete
		answer()
		return
	}
	body = append(body, m.Payload...)
	b.bodies[p] = body
	if blk.More {
		echo := agent.BlockOption{Num: blk.Num, More: true, SZX: blk.SZX}
		if b.PreferSize > 0 && b.PreferSize < blk.Size() {
			for echo.SZX > 0 && 16<<echo.SZX > b.PreferSize {
				echo.SZX--
			}
			echo.Num = uint32(blk.Offset() / int64(16<<echo.SZX))
		}
		v, _ := echo.Bytes()
		resp.Code = codes.Continue
		resp.Options = resp.Options.Add(message.Option{ID: message.Block1, Value: v})
		answer()
		return
	}
	delete(b.bodies, p)
	whole := &message.Message{Type: m.Type, Code: m.Code, MessageID: m.MessageID, Token: m.Token, Payload: body, Options: make(message.Options, 0, len(m.Options))}
	for _, o := range m.Options {
		if o.ID != message.Block1 && o.ID != message.Size1 {
			whole.Options = append(whole.Options, o)
		}
	}
	w := encodeMsg(whole)
	b.finals[mid] = w
	s.Server.receive(w)
}

// Block returns a Block1 or Block2 option (RFC 7959 §2.2).
func Block(id message.OptionID, num uint32, more bool, szx uint8) message.Option {
	v, err := agent.BlockOption{Num: num, More: more, SZX: szx}.Bytes()
	if err != nil {
		panic(err)
	}
	return message.Option{ID: id, Value: v}
}
