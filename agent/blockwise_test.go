package agent_test

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/agent/agenttest"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// bwSim returns a registered simulation whose engine uses blocks of
// blockSize bytes and has n error codes in /3/0/11, which makes /3/0 and
// /3/0/11 larger than a block.
func bwSim(t *testing.T, seed uint64, f agenttest.Faults, blockSize, n int) *agenttest.Sim {
	t.Helper()
	s, err := agenttest.New(agent.Config{}, nil, seed, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Do(agent.CmdStart{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.WaitEvent(agent.EventRegistered, 10*time.Minute); !ok {
		t.Fatalf("seed %d: not registered; events %v", seed, s.Events)
	}
	if err := s.Engine.SetBlockSize(blockSize); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		bwSet(t, s, fmt.Sprintf("/3/0/11/%d", i), strconv.Itoa(i%8+1))
	}
	return s
}

func bwSet(t *testing.T, s *agenttest.Sim, path, value string) {
	t.Helper()
	p, err := lwm2m.ParsePath(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Do(agent.CmdSet{Path: p, Value: lwm2m.String(value)}); err != nil {
		t.Fatalf("set %s=%s: %v", path, value, err)
	}
}

// block returns the Block option id of m.
func block(t *testing.T, m *message.Message, id message.OptionID) (agent.BlockOption, bool) {
	t.Helper()
	v, err := m.Options.GetBytes(id)
	if err != nil {
		return agent.BlockOption{}, false
	}
	b, err := agent.ParseBlockOption(v)
	if err != nil {
		t.Fatalf("bad block option %x: %v", v, err)
	}
	return b, true
}

func etag(m *message.Message) string {
	v, _ := m.Options.GetBytes(message.ETag)
	return fmt.Sprintf("%x", v)
}

// deviceType gives the data types of the Device object for tlv.Decode.
func deviceType(p lwm2m.Path) lwm2m.Type {
	switch p.Res() {
	case 0, 1, 2, 3, 14, 15, 16, 17, 18, 19:
		return lwm2m.TypeString
	case 13:
		return lwm2m.TypeTime
	}
	return lwm2m.TypeInteger
}

// decodeDevice decodes a TLV read of base and returns path → value.
func decodeDevice(t *testing.T, base lwm2m.Path, b []byte) map[string]string {
	t.Helper()
	recs, err := tlv.Decode(base, b, deviceType)
	if err != nil {
		t.Fatalf("decode %s (%d bytes): %v", base, len(b), err)
	}
	out := map[string]string{}
	for _, r := range recs {
		out[r.Path.String()] = r.Value.String()
	}
	return out
}

// fetch reads path block by block, as an LwM2M server does. The first GET
// carries first and opts, plus a Block2 of SZX szx0 when szx0 >= 0; the
// next ones carry opts and a Block2 for the next block, of SZX szx when
// szx >= 0 (late negotiation) or else of the size last served. It checks
// that every block lands at the offset asked, that non-final blocks are
// full, that one ETag covers the transfer and that Size2 on block 0 is the
// total; it returns the body and the responses.
func fetch(t *testing.T, s *agenttest.Sim, path string, szx0, szx int, first []message.Option, opts ...message.Option) ([]byte, []*message.Message) {
	t.Helper()
	req := append(append([]message.Option(nil), opts...), first...)
	if szx0 >= 0 {
		req = append(req, agenttest.Block(message.Block2, 0, false, uint8(szx0)))
	}
	var body []byte
	var resps []*message.Message
	r := s.Server.Request(codes.GET, path, nil, req...)
	for len(resps) < 10000 {
		if r == nil || r.Code != codes.Content {
			t.Fatalf("seed %d: GET %s block at %d: %v", s.Seed, path, len(body), r)
		}
		resps = append(resps, r)
		b, ok := block(t, r, message.Block2)
		if !ok {
			if len(resps) > 1 {
				t.Fatalf("GET %s: block %d without Block2", path, len(resps)-1)
			}
			return r.Payload, resps
		}
		if b.Offset() != int64(len(body)) {
			t.Fatalf("GET %s: block %d/%d/%d at offset %d, want %d", path, b.Num, boolInt(b.More), b.Size(), b.Offset(), len(body))
		}
		if (b.More && len(r.Payload) != b.Size()) || len(r.Payload) > b.Size() {
			t.Fatalf("GET %s: block %d/%d/%d carries %d bytes", path, b.Num, boolInt(b.More), b.Size(), len(r.Payload))
		}
		if e := etag(r); e == "" || e != etag(resps[0]) {
			t.Fatalf("GET %s: block %d ETag %q, block 0 had %q", path, b.Num, e, etag(resps[0]))
		}
		body = append(body, r.Payload...)
		if !b.More {
			break
		}
		next := agent.BlockOption{SZX: b.SZX}
		if szx >= 0 {
			next.SZX = uint8(szx)
		}
		next.Num = uint32(len(body) / next.Size())
		r = s.Server.Request(codes.GET, path, nil, append(append([]message.Option(nil), opts...), agenttest.Block(message.Block2, next.Num, false, next.SZX))...)
	}
	if size2, err := resps[0].Options.GetUint32(message.Size2); err != nil || int(size2) != len(body) {
		t.Errorf("GET %s: Size2 = %d (%v), body has %d bytes", path, size2, err, len(body))
	}
	return body, resps
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestSetBlockSize(t *testing.T) {
	s := bwSim(t, 1, agenttest.Faults{}, agent.DefaultBlockSize, 0)
	for _, n := range []int{16, 32, 64, 128, 256, 512, 1024} {
		if err := s.Engine.SetBlockSize(n); err != nil {
			t.Errorf("SetBlockSize(%d): %v", n, err)
		}
	}
	for _, n := range []int{-16, 0, 8, 15, 17, 48, 2048} {
		if err := s.Engine.SetBlockSize(n); !errors.Is(err, agent.ErrBadValue) {
			t.Errorf("SetBlockSize(%d) = %v, want ErrBadValue", n, err)
		}
	}
}

// TestBlock2Read: a read larger than the block size comes block by block,
// with the server's size winning when it is smaller (RFC 7959 §2.4), and
// reassembles to the representation.
func TestBlock2Read(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		blockSize int
		szx0, szx int // SZX of the first and of the later requests; -1: none / as served
		wantSZX   []uint8
	}{
		{name: "object instance in 64-byte blocks", path: "/3/0", blockSize: 64, szx0: -1, szx: -1, wantSZX: []uint8{2}},
		{name: "resource in 16-byte blocks", path: "/3/0/11", blockSize: 16, szx0: -1, szx: -1, wantSZX: []uint8{0}},
		{name: "early negotiation", path: "/3/0", blockSize: 1024, szx0: 1, szx: -1, wantSZX: []uint8{1}},
		{name: "late negotiation", path: "/3/0", blockSize: 128, szx0: -1, szx: 0, wantSZX: []uint8{3, 0}},
		{name: "request size above ours is capped", path: "/3/0", blockSize: 32, szx0: 6, szx: -1, wantSZX: []uint8{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := bwSim(t, 1, agenttest.Faults{}, tc.blockSize, 40)
			reads := len(s.EventsOf(agent.EventRead))
			body, resps := fetch(t, s, tc.path, tc.szx0, tc.szx, nil)
			if len(resps) < 2 {
				t.Fatalf("%s came in %d response(s), want blocks", tc.path, len(resps))
			}
			seen := map[uint8]bool{}
			for _, r := range resps {
				b, _ := block(t, r, message.Block2)
				seen[b.SZX] = true
			}
			for _, szx := range tc.wantSZX {
				if !seen[szx] {
					t.Errorf("no block of SZX %d among %v", szx, seen)
				}
			}
			if len(seen) != len(tc.wantSZX) {
				t.Errorf("block sizes %v, want SZX %v", seen, tc.wantSZX)
			}
			p, _ := lwm2m.ParsePath(tc.path)
			got := decodeDevice(t, p, body)
			for i := 1; i <= 40; i++ {
				if v := got[fmt.Sprintf("/3/0/11/%d", i)]; v != strconv.Itoa(i%8+1) {
					t.Fatalf("/3/0/11/%d = %q in the reassembled read", i, v)
				}
			}
			if n := len(s.EventsOf(agent.EventRead)) - reads; n != 1 {
				t.Errorf("%d read events for one block-wise read, want 1", n)
			}
		})
	}
}

// TestBlock2RandomAccess: a server may ask for any block first; the blocks
// of one representation share an ETag; a block past the end is 4.00.
func TestBlock2RandomAccess(t *testing.T) {
	s := bwSim(t, 1, agenttest.Faults{}, 64, 40)
	b3 := s.Server.Request(codes.GET, "/3/0", nil, agenttest.Block(message.Block2, 3, false, 2))
	if b3 == nil || b3.Code != codes.Content {
		t.Fatalf("block 3 first: %v", b3)
	}
	if b, _ := block(t, b3, message.Block2); b.Num != 3 || b.SZX != 2 {
		t.Fatalf("block 3 answered as %+v", b)
	}
	b1 := s.Server.Request(codes.GET, "/3/0", nil, agenttest.Block(message.Block2, 1, false, 2))
	if b1 == nil || b1.Code != codes.Content || etag(b1) != etag(b3) {
		t.Fatalf("block 1 after block 3: %v, ETag %s vs %s", b1, etag(b1), etag(b3))
	}
	// Within the same virtual second the representation is unchanged, so
	// a full fetch has the same ETag and the same bytes at 192.
	body, resps := fetch(t, s, "/3/0", -1, -1, nil)
	if etag(resps[0]) != etag(b3) {
		t.Errorf("same content, ETag %s then %s", etag(b3), etag(resps[0]))
	}
	if len(body) < 192+len(b3.Payload) || !bytes.Equal(body[192:192+len(b3.Payload)], b3.Payload) || !bytes.Equal(body[64:128], b1.Payload) {
		t.Error("random-access blocks differ from the full read")
	}
	if r := s.Server.Request(codes.GET, "/3/0", nil, agenttest.Block(message.Block2, 1000, false, 2)); r == nil || r.Code != codes.BadRequest {
		t.Errorf("block past the end: %v, want 4.00", r)
	}
	if r := s.Server.Request(codes.GET, "/3/0", nil, agenttest.Block(message.Block2, 0, false, 7)); r == nil || r.Code != codes.BadRequest {
		t.Errorf("Block2 SZX 7: %v, want 4.00", r)
	}
	two := []message.Option{agenttest.Block(message.Block2, 1, false, 2), agenttest.Block(message.Block2, 2, false, 2)}
	if r := s.Server.Request(codes.GET, "/3/0", nil, two...); r == nil || r.Code != codes.BadOption {
		t.Errorf("two Block2 options: %v, want 4.02", r)
	}
}

// TestBlock2CacheExpires: the representation of block 0 serves the later
// blocks for EXCHANGE_LIFETIME after its last use; once it is gone the
// read is encoded again and, as /3/0/13 moved on, gets a new ETag.
func TestBlock2CacheExpires(t *testing.T) {
	s := bwSim(t, 1, agenttest.Faults{}, 64, 40)
	b0 := s.Server.Request(codes.GET, "/3/0", nil)
	s.RunFor(agent.ExchangeLifetime / 2)
	b1 := s.Server.Request(codes.GET, "/3/0", nil, agenttest.Block(message.Block2, 1, false, 2))
	if etag(b1) != etag(b0) {
		t.Fatalf("block 1 within EXCHANGE_LIFETIME: ETag %s, block 0 %s", etag(b1), etag(b0))
	}
	s.RunFor(agent.ExchangeLifetime + time.Second)
	b2 := s.Server.Request(codes.GET, "/3/0", nil, agenttest.Block(message.Block2, 2, false, 2))
	if b2 == nil || b2.Code != codes.Content {
		t.Fatalf("block 2 after expiry: %v", b2)
	}
	if etag(b2) == etag(b0) {
		t.Errorf("re-encoded after expiry with a changed /3/0/13, ETag still %s", etag(b2))
	}
}

// tlvDeviceWrite is a TLV write of /3/0/14 and /3/0/15 with a timezone of
// tzLen bytes.
func tlvDeviceWrite(t *testing.T, tz string) []byte {
	t.Helper()
	b, err := tlv.Encode(lwm2m.P(3, 0), []lwm2m.Record{
		{Path: lwm2m.P(3, 0, 14), Value: lwm2m.String("+02:00")},
		{Path: lwm2m.P(3, 0, 15), Value: lwm2m.String(tz)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendBlock sends one Block1 block of a TLV write of /3/0.
func sendBlock(s *agenttest.Sim, body []byte, num uint32, szx uint8, extra ...message.Option) *message.Message {
	size := 16 << szx
	off := int(num) * size
	end := min(off+size, len(body))
	more := end < len(body)
	opts := append([]message.Option{agenttest.Uint(message.ContentFormat, uint32(lwm2m.FormatTLV)), agenttest.Block(message.Block1, num, more, szx)}, extra...)
	return s.Server.Request(codes.POST, "/3/0", body[off:end], opts...)
}

func checkWritten(t *testing.T, s *agenttest.Sim, tz string) {
	t.Helper()
	for path, want := range map[string]string{"/3/0/14": "+02:00", "/3/0/15": tz} {
		if got, _ := fetch(t, s, path, -1, -1, nil); string(got) != want {
			t.Errorf("%s after the block-wise write: %q, want %q", path, got, want)
		}
	}
}

func payloadOf(m *message.Message) []byte {
	if m == nil {
		return nil
	}
	return m.Payload
}

// TestBlock1Write: a Write split into blocks is answered 2.31 Continue per
// block and applied once, whole, on the last (RFC 7959 §2.5).
func TestBlock1Write(t *testing.T) {
	longTZ := "America/Argentina/ComodRivadavia/" + strings.Repeat("x", 31) // 64 bytes
	tests := []struct {
		name      string
		blockSize int
		tz        string
		// steps are the blocks sent: NUM and SZX, and the code expected.
		steps []struct {
			num  uint32
			szx  uint8
			code codes.Code
			echo agent.BlockOption // Block1 expected in the answer
		}
	}{
		{name: "16-byte blocks", blockSize: 1024, tz: "America/Argentina/ComodRivadavia", steps: []struct {
			num  uint32
			szx  uint8
			code codes.Code
			echo agent.BlockOption
		}{
			{0, 0, codes.Continue, agent.BlockOption{Num: 0, More: true, SZX: 0}},
			{1, 0, codes.Continue, agent.BlockOption{Num: 1, More: true, SZX: 0}},
			{2, 0, codes.Changed, agent.BlockOption{Num: 2, More: false, SZX: 0}},
		}},
		{name: "duplicate block under a new message ID", blockSize: 1024, tz: "America/Argentina/ComodRivadavia", steps: []struct {
			num  uint32
			szx  uint8
			code codes.Code
			echo agent.BlockOption
		}{
			{0, 0, codes.Continue, agent.BlockOption{Num: 0, More: true, SZX: 0}},
			{1, 0, codes.Continue, agent.BlockOption{Num: 1, More: true, SZX: 0}},
			{1, 0, codes.Continue, agent.BlockOption{Num: 1, More: true, SZX: 0}},
			{2, 0, codes.Changed, agent.BlockOption{Num: 2, More: false, SZX: 0}},
		}},
		{name: "late negotiation by the client", blockSize: 16, tz: longTZ, steps: []struct {
			num  uint32
			szx  uint8
			code codes.Code
			echo agent.BlockOption
		}{
			{0, 2, codes.Continue, agent.BlockOption{Num: 0, More: true, SZX: 0}}, // 64 bytes taken, 16 asked
			{4, 0, codes.Changed, agent.BlockOption{Num: 4, More: false, SZX: 0}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := bwSim(t, 1, agenttest.Faults{}, tc.blockSize, 0)
			body := tlvDeviceWrite(t, tc.tz)
			for i, st := range tc.steps {
				r := sendBlock(s, body, st.num, st.szx)
				if r == nil || r.Code != st.code {
					t.Fatalf("step %d (block %d/%d of %d bytes): %v, want %s", i, st.num, 16<<st.szx, len(body), r, st.code)
				}
				if echo, ok := block(t, r, message.Block1); !ok || echo != st.echo {
					t.Errorf("step %d: Block1 %+v (%v), want %+v", i, echo, ok, st.echo)
				}
			}
			if n := len(s.EventsOf(agent.EventWrite)); n != 1 {
				t.Errorf("%d write events, want 1", n)
			}
			checkWritten(t, s, tc.tz)
		})
	}
}

// TestBlock1Rejects: the bad Block1 inputs of the catalogue (B14, B16,
// B19) are refused and leave the values alone.
func TestBlock1Rejects(t *testing.T) {
	body := tlvDeviceWrite(t, "America/Argentina/ComodRivadavia")
	tests := []struct {
		name string
		send func(s *agenttest.Sim) *message.Message
		want codes.Code
	}{
		{"out of order", func(s *agenttest.Sim) *message.Message {
			sendBlock(s, body, 0, 0)
			return sendBlock(s, body, 2, 0)
		}, codes.RequestEntityIncomplete},
		{"continuation without a start", func(s *agenttest.Sim) *message.Message {
			return sendBlock(s, body, 1, 0)
		}, codes.RequestEntityIncomplete},
		{"SZX 7", func(s *agenttest.Sim) *message.Message {
			return s.Server.Request(codes.POST, "/3/0", body, agenttest.Block(message.Block1, 0, false, 7))
		}, codes.BadRequest},
		{"short non-final block", func(s *agenttest.Sim) *message.Message {
			return s.Server.Request(codes.POST, "/3/0", body[:10], agenttest.Uint(message.ContentFormat, uint32(lwm2m.FormatTLV)), agenttest.Block(message.Block1, 0, true, 0))
		}, codes.BadRequest},
		{"block longer than its size", func(s *agenttest.Sim) *message.Message {
			return s.Server.Request(codes.POST, "/3/0", body[:20], agenttest.Uint(message.ContentFormat, uint32(lwm2m.FormatTLV)), agenttest.Block(message.Block1, 0, false, 0))
		}, codes.BadRequest},
		{"repeated Block1", func(s *agenttest.Sim) *message.Message {
			return s.Server.Request(codes.POST, "/3/0", body[:16], agenttest.Block(message.Block1, 0, true, 0), agenttest.Block(message.Block1, 1, true, 0))
		}, codes.BadOption},
		{"Size1 above 64 KiB", func(s *agenttest.Sim) *message.Message {
			return sendBlock(s, body, 0, 0, agenttest.Uint(message.Size1, 70000))
		}, codes.RequestEntityTooLarge},
		{"total above 64 KiB", func(s *agenttest.Sim) *message.Message {
			big := bytes.Repeat([]byte{0xc8}, 1024)
			for i := uint32(0); i < 64; i++ {
				if r := s.Server.Request(codes.PUT, "/3/0/15", big, agenttest.Block(message.Block1, i, true, 6)); r == nil || r.Code != codes.Continue {
					return r
				}
			}
			return s.Server.Request(codes.PUT, "/3/0/15", big[:1], agenttest.Block(message.Block1, 64, false, 6))
		}, codes.RequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := bwSim(t, 1, agenttest.Faults{}, agent.DefaultBlockSize, 0)
			r := tc.send(s)
			if r == nil || r.Code != tc.want {
				t.Fatalf("%v, want %s", r, tc.want)
			}
			if tc.want == codes.RequestEntityTooLarge {
				if v, err := r.Options.GetUint32(message.Size1); err != nil || v != 64<<10 {
					t.Errorf("4.13 Size1 = %d (%v), want 65536", v, err)
				}
			}
			if n := len(s.EventsOf(agent.EventWrite)); n != 0 {
				t.Errorf("%d writes applied", n)
			}
		})
	}
}

// TestBlock1RestartAndExpiry: a new NUM=0 restarts the transfer (B19), and
// a transfer left alone for EXCHANGE_LIFETIME is forgotten.
func TestBlock1RestartAndExpiry(t *testing.T) {
	tz := "America/Argentina/ComodRivadavia"
	body := tlvDeviceWrite(t, tz)
	t.Run("restart", func(t *testing.T) {
		s := bwSim(t, 1, agenttest.Faults{}, agent.DefaultBlockSize, 0)
		junk := bytes.Repeat([]byte{0xff}, len(body))
		for _, st := range []struct {
			b    []byte
			num  uint32
			want codes.Code
		}{{junk, 0, codes.Continue}, {junk, 1, codes.Continue}, {body, 0, codes.Continue}, {body, 1, codes.Continue}, {body, 2, codes.Changed}} {
			if r := sendBlock(s, st.b, st.num, 0); r == nil || r.Code != st.want {
				t.Fatalf("block %d: %v, want %s", st.num, r, st.want)
			}
		}
		checkWritten(t, s, tz)
	})
	t.Run("expiry", func(t *testing.T) {
		s := bwSim(t, 1, agenttest.Faults{}, agent.DefaultBlockSize, 0)
		if r := sendBlock(s, body, 0, 0); r == nil || r.Code != codes.Continue {
			t.Fatalf("block 0: %v", r)
		}
		s.RunFor(agent.ExchangeLifetime / 2)
		if r := sendBlock(s, body, 1, 0); r == nil || r.Code != codes.Continue {
			t.Fatalf("block 1 within EXCHANGE_LIFETIME: %v", r)
		}
		s.RunFor(agent.ExchangeLifetime + time.Second)
		if r := sendBlock(s, body, 2, 0); r == nil || r.Code != codes.RequestEntityIncomplete {
			t.Fatalf("block 2 after EXCHANGE_LIFETIME: %v, want 4.08", r)
		}
	})
}

// registerPayload is the Register payload of an engine that sends it whole.
func registerPayload(t *testing.T) []byte {
	t.Helper()
	s := bwSim(t, 1, agenttest.Faults{}, agent.DefaultBlockSize, 0)
	return s.Server.Registers[0].Payload
}

// TestBlock1Register: our Register goes block-wise when its payload is
// larger than the block size, following the server's size and 4.13.
func TestBlock1Register(t *testing.T) {
	want := registerPayload(t)
	tests := []struct {
		name       string
		blockSize  int
		preferSize int
		maxPayload int
		wantSZX    []uint8 // SZX of each block sent
		wantTooBig int
	}{
		{name: "16-byte blocks", blockSize: 16, wantSZX: repeatSZX(0, (len(want)+15)/16)},
		{name: "late negotiation by the server", blockSize: 32, preferSize: 16, wantSZX: append([]uint8{1}, repeatSZX(0, (len(want)-32+15)/16)...)},
		{name: "4.13 with Size1", blockSize: 1024, maxPayload: 32, wantSZX: repeatSZX(1, (len(want)+31)/32), wantTooBig: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := agenttest.New(agent.Config{}, nil, 1, agenttest.Faults{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Engine.SetBlockSize(tc.blockSize); err != nil {
				t.Fatal(err)
			}
			bs := s.BlockServer()
			bs.PreferSize, bs.MaxPayload = tc.preferSize, tc.maxPayload
			if err := s.Do(agent.CmdStart{}); err != nil {
				t.Fatal(err)
			}
			if _, ok := bs.WaitEvent(agent.EventRegistered, time.Minute); !ok {
				t.Fatalf("not registered; events %v", s.Events)
			}
			if len(s.Server.Registers) != 1 || !bytes.Equal(s.Server.Registers[0].Payload, want) {
				t.Fatalf("registers %d, payload %q, want %q", len(s.Server.Registers), payloadOf(s.Server.Registers[0]), want)
			}
			tokens := map[string]bool{}
			off := int64(0)
			var szx []uint8
			for i, m := range bs.Blocks {
				b, _ := block(t, m, message.Block1)
				if b.Offset() != off {
					t.Errorf("block %d at offset %d, want %d", i, b.Offset(), off)
				}
				off += int64(len(m.Payload))
				szx = append(szx, b.SZX)
				tokens[string(m.Token)] = true
				if size1, err := m.Options.GetUint32(message.Size1); (i == 0) != (err == nil) || (i == 0 && int(size1) != len(want)) {
					t.Errorf("block %d: Size1 %d (%v); want the total on block 0 only", i, size1, err)
				}
			}
			if fmt.Sprint(szx) != fmt.Sprint(tc.wantSZX) {
				t.Errorf("blocks of SZX %v, want %v", szx, tc.wantSZX)
			}
			if len(tokens) != 1 {
				t.Errorf("%d tokens for %d blocks; want one token for the whole transfer", len(tokens), len(bs.Blocks))
			}
			if bs.TooLarge != tc.wantTooBig {
				t.Errorf("%d answers 4.13, want %d", bs.TooLarge, tc.wantTooBig)
			}
		})
	}
}

func repeatSZX(szx uint8, n int) []uint8 {
	out := make([]uint8, n)
	for i := range out {
		out[i] = szx
	}
	return out
}

// TestBlock2Observe: an Observe response and the notifications larger
// than a block carry their first block; the server fetches the rest with
// GET and gets the same representation (RFC 7959 §2.6).
func TestBlock2Observe(t *testing.T) {
	s := bwSim(t, 1, agenttest.Faults{}, 64, 40)
	observe := []message.Option{agenttest.Uint(message.Observe, 0)}
	body, resps := fetch(t, s, "/3/0/11", -1, -1, observe)
	if _, err := resps[0].Options.Observe(); err != nil {
		t.Fatal("observe response without Observe")
	}
	if got := decodeDevice(t, lwm2m.P(3, 0, 11), body); got["/3/0/11/40"] != "1" {
		t.Fatalf("observed /3/0/11/40 = %q", got["/3/0/11/40"])
	}
	bwSet(t, s, "/3/0/11/41", "7")
	s.RunFor(time.Second)
	if len(s.Server.Notifications) != 1 {
		t.Fatalf("%d notifications, want 1", len(s.Server.Notifications))
	}
	n := s.Server.Notifications[0]
	b, ok := block(t, n, message.Block2)
	if !ok || b.Num != 0 || !b.More || len(n.Payload) != 64 {
		t.Fatalf("notification Block2 %+v (%v) with %d bytes, want block 0 of 64 with more", b, ok, len(n.Payload))
	}
	if etag(n) == etag(resps[0]) {
		t.Error("changed representation kept its ETag")
	}
	full := append([]byte(nil), n.Payload...)
	for b.More {
		r := s.Server.Request(codes.GET, "/3/0/11", nil, agenttest.Block(message.Block2, b.Num+1, false, 2))
		if r == nil || r.Code != codes.Content || etag(r) != etag(n) {
			t.Fatalf("block %d after the notification: %v, ETag %s, want %s", b.Num+1, r, etag(r), etag(n))
		}
		b, _ = block(t, r, message.Block2)
		full = append(full, r.Payload...)
	}
	if got := decodeDevice(t, lwm2m.P(3, 0, 11), full); got["/3/0/11/41"] != "7" {
		t.Errorf("notified /3/0/11/41 = %q, want 7", got["/3/0/11/41"])
	}
}

// TestBlockwiseLossyNetwork: with loss, duplication and reordering, the
// three block-wise paths still complete and reassemble exactly.
func TestBlockwiseLossyNetwork(t *testing.T) {
	want := registerPayload(t)
	tz := "America/Argentina/ComodRivadavia"
	body := tlvDeviceWrite(t, tz)
	for seed := uint64(1); seed <= 10; seed++ {
		f := agenttest.Faults{Loss: 0.2, Duplicate: 0.2, Reorder: 0.3, Latency: 50 * time.Millisecond}
		s, err := agenttest.New(agent.Config{}, nil, seed, f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Engine.SetBlockSize(16); err != nil {
			t.Fatal(err)
		}
		bs := s.BlockServer()
		s.Do(agent.CmdStart{})
		if _, ok := bs.WaitEvent(agent.EventRegistered, 10*time.Minute); !ok {
			t.Fatalf("seed %d: never registered", seed)
		}
		bs.RunFor(5 * time.Second) // let stray copies of the blocks arrive through the front
		if !bytes.Equal(s.Server.Registers[0].Payload, want) {
			t.Fatalf("seed %d: register payload %q, want %q", seed, s.Server.Registers[0].Payload, want)
		}
		if err := s.Engine.SetBlockSize(32); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 30; i++ {
			bwSet(t, s, fmt.Sprintf("/3/0/11/%d", i), "3")
		}
		got, _ := fetch(t, s, "/3/0/11", -1, -1, nil)
		if vals := decodeDevice(t, lwm2m.P(3, 0, 11), got); len(vals) != 31 || vals["/3/0/11/30"] != "3" {
			t.Fatalf("seed %d: lossy block-wise read gave %d values", seed, len(vals))
		}
		for num := uint32(0); num < 3; num++ {
			want := codes.Continue
			if num == 2 {
				want = codes.Changed
			}
			if r := sendBlock(s, body, num, 0); r == nil || r.Code != want {
				t.Fatalf("seed %d: block %d: %v, want %s", seed, num, r, want)
			}
		}
		checkWritten(t, s, tz)
		if n := len(s.EventsOf(agent.EventWrite)); n != 1 {
			t.Errorf("seed %d: %d writes applied, want 1", seed, n)
		}
	}
}

// FuzzBlockOption: every value of up to 3 bytes decodes, and re-encodes to
// itself without leading zeros; longer values fail with
// ErrBadBlockOption.
func FuzzBlockOption(f *testing.F) {
	for _, seed := range [][]byte{
		nil, {0x00}, {0x08}, {0x0e}, {0x06}, {0x07}, // empty, M, 0/1/1024, SZX 6, SZX 7
		{0x1a}, {0xff}, {0x00, 0x10}, {0x12, 0x34}, {0xff, 0xff, 0xff}, // RFC 7959 figure sizes, NUM 2^20-1
		{0x00, 0x00, 0x01}, {0x01, 0x02, 0x03, 0x04}, // leading zeros; too long
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := agent.ParseBlockOption(b)
		if len(b) > 3 {
			if !errors.Is(err, agent.ErrBadBlockOption) {
				t.Fatalf("%x: err %v, want ErrBadBlockOption", b, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		if o.Num >= 1<<20 || o.SZX > 7 {
			t.Fatalf("%x decoded out of range: %+v", b, o)
		}
		if s := o.Size(); s < 16 || s > 1024 || s&(s-1) != 0 {
			t.Fatalf("%x: size %d", b, s)
		}
		if o.Offset() != int64(o.Num)*int64(o.Size()) || o.Offset() > 1<<30 {
			t.Fatalf("%x: offset %d", b, o.Offset())
		}
		enc, err := o.Bytes()
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if want := bytes.TrimLeft(b, "\x00"); !bytes.Equal(enc, want) {
			t.Fatalf("%x re-encoded as %x", b, enc)
		}
		if back, err := agent.ParseBlockOption(enc); err != nil || back != o {
			t.Fatalf("%x: round trip %+v, %v; want %+v", b, back, err, o)
		}
	})
}

func ExampleParseBlockOption() {
	// 0x2e: NUM 2, M 1, SZX 6.
	b, _ := agent.ParseBlockOption([]byte{0x2e})
	fmt.Println(b.Num, b.More, b.Size(), b.Offset())
	v, _ := agent.BlockOption{Num: 3, SZX: 2}.Bytes()
	fmt.Printf("%x\n", v)
	// Output:
	// 2 true 1024 2048
	// 32
}

func ExampleEngine_SetBlockSize() {
	e, err := agent.NewEngine(agent.Config{ServerURI: "coap://127.0.0.1:5683", Endpoint: "dev"}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(e.SetBlockSize(64))
	fmt.Println(e.SetBlockSize(100))
	// Output:
	// <nil>
	// agent: bad value: block size 100: want a power of two from 16 to 1024
}
