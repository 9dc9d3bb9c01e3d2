package agenttest

import (
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// BootstrapPeer is the peer key of the simulated bootstrap server.
const BootstrapPeer = "127.0.0.1:5783"

// BootstrapURI is the URI of the simulated bootstrap server.
const BootstrapURI = "coap://" + BootstrapPeer

// BootstrapServer is a scripted LwM2M bootstrap server on the simulated
// network: it answers Bootstrap-Requests and sends bootstrap operations
// to the engine on demand (Request, Provision).
type BootstrapServer struct {
	// Requests are the Bootstrap-Requests (POST /bs) received,
	// retransmissions excluded.
	Requests []*message.Message
	// RequestCode overrides the answer to a Bootstrap-Request (zero means
	// 2.04 Changed). Silent makes the server answer nothing.
	RequestCode codes.Code
	Silent      bool

	sim       *Sim
	peer      string
	responses map[string]*message.Message
	seen      map[uint16]bool
	mid       uint16
	tok       uint64
}

// BootstrapServer puts a bootstrap server at BootstrapPeer on the
// simulated network.
func (s *Sim) BootstrapServer() *BootstrapServer {
	b := &BootstrapServer{sim: s, peer: BootstrapPeer, responses: make(map[string]*message.Message), seen: make(map[uint16]bool), mid: 0x4000}
	s.AddPeer(BootstrapPeer, b.receive)
	return b
}

func (b *BootstrapServer) receive(data []byte) {
	m, err := decodeMsg(data)
	if err != nil {
		return
	}
	switch m.Type {
	case message.Acknowledgement, message.Reset:
		if m.Code != codes.Empty || m.Type == message.Reset {
			b.responses[string(m.Token)] = m
		}
		return
	}
	if b.Silent || m.Code >= 64 || m.Code == codes.Empty {
		return
	}
	dup := b.seen[uint16(m.MessageID)]
	b.seen[uint16(m.MessageID)] = true
	resp := &message.Message{Type: message.Acknowledgement, MessageID: m.MessageID, Token: m.Token}
	switch {
	case m.Code == codes.POST && Path(m) == "/bs":
		if !dup {
			b.Requests = append(b.Requests, m)
		}
		resp.Code = codes.Changed
		if b.RequestCode != 0 {
			resp.Code = b.RequestCode
		}
	default:
		resp.Code = codes.NotFound
	}
	b.sim.sendPeer(b.peer, true, encodeMsg(resp))
}

// AwaitRequest runs the simulation until a Bootstrap-Request beyond the
// n already received arrives, or until timeout; it reports whether one
// did.
func (b *BootstrapServer) AwaitRequest(timeout time.Duration) bool {
	n := len(b.Requests)
	return b.sim.RunUntil(b.sim.Now.Add(timeout), func() bool { return len(b.Requests) > n })
}

// Request sends a confirmable request to the engine from the bootstrap
// server and runs the simulation until the response arrives
// (retransmitting like a CoAP client) or 5 minutes pass (nil).
func (b *BootstrapServer) Request(code codes.Code, path string, payload []byte, opts ...message.Option) *message.Message {
	b.mid++
	b.tok++
	return b.sim.request(b.peer, b.mid, b.tok^0xb5b5, b.responses, code, path, payload, opts)
}

// Write sends a Bootstrap-Write of recs at path in TLV and returns the
// response code (zero when none came).
func (b *BootstrapServer) Write(path string, recs ...lwm2m.Record) codes.Code {
	p, err := lwm2m.ParsePath(path)
	if err != nil {
		panic(err)
	}
	body, err := tlv.Encode(p, recs)
	if err != nil {
		panic(err)
	}
	return code(b.Request(codes.PUT, path, body, Uint(message.ContentFormat, uint32(lwm2m.FormatTLV))))
}

// Finish sends Bootstrap-Finish and returns the response.
func (b *BootstrapServer) Finish() *message.Message { return b.Request(codes.POST, "/bs", nil) }

// Account describes a DM server account Provision writes.
type Account struct {
	Instance    uint16 // /0 instance (the /1 instance is 0)
	URI         string
	SSID        uint16
	Lifetime    uint32
	PSKIdentity string // with PSKKey, security mode 0 (PSK); otherwise 3 (NoSec)
	PSKKey      []byte
}

// SecurityRecords returns the /0/<a.Instance> records of a.
func (a Account) SecurityRecords() []lwm2m.Record {
	p := func(res uint16) lwm2m.Path { return lwm2m.P(0, a.Instance, res) }
	mode := int64(3)
	if len(a.PSKKey) > 0 {
		mode = 0
	}
	recs := []lwm2m.Record{
		{Path: p(0), Value: lwm2m.String(a.URI)},
		{Path: p(1), Value: lwm2m.Bool(false)},
		{Path: p(2), Value: lwm2m.Int(mode)},
		{Path: p(10), Value: lwm2m.Int(int64(a.SSID))},
	}
	if mode == 0 {
		recs = append(recs,
			lwm2m.Record{Path: p(3), Value: lwm2m.Opaque([]byte(a.PSKIdentity))},
			lwm2m.Record{Path: p(5), Value: lwm2m.Opaque(a.PSKKey)})
	}
	return recs
}

// ServerRecords returns the /1/0 records of a.
func (a Account) ServerRecords() []lwm2m.Record {
	return []lwm2m.Record{
		{Path: lwm2m.P(1, 0, 0), Value: lwm2m.Int(int64(a.SSID))},
		{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(int64(a.Lifetime))},
		{Path: lwm2m.P(1, 0, 7), Value: lwm2m.String("U")},
	}
}

// Provision runs a whole bootstrap session's operations: Delete "/",
// Write /0/<a.Instance> and /1/0, Bootstrap-Finish. It returns the
// response codes in that order (zero for a request left unanswered).
func (b *BootstrapServer) Provision(a Account) []codes.Code {
	return []codes.Code{
		code(b.Request(codes.DELETE, "/", nil)),
		b.Write(lwm2m.P(0, a.Instance).String(), a.SecurityRecords()...),
		b.Write("/1/0", a.ServerRecords()...),
		code(b.Finish()),
	}
}

func code(m *message.Message) codes.Code {
	if m == nil {
		return 0
	}
	return m.Code
}
