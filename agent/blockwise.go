package agent

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// Block-wise transfers (RFC 7959) sit between the message layer (the
// exchanges, deduplication and retransmission of transport.go) and the
// LwM2M operations of serve.go:
//
//   - Block1 requests from the server are reassembled here and handed to
//     serve as one request (atomic, RFC 7959 §2.5).
//   - Responses to GET larger than the block size are cut into Block2
//     blocks; the representation is cached per peer + URI + Accept with an
//     ETag so that every block of one transfer comes from the same
//     encoding (RFC 7959 §2.4).
//   - Notifications larger than the block size carry their first block
//     only; the server fetches the rest with GET (RFC 7959 §2.6).
//   - Our own requests whose payload exceeds the block size (a Register
//     with a long object list) are sent as Block1 transfers by
//     transport.request.
//
// Everything here runs on the caller's clock: partial transfers and cached
// representations expire EXCHANGE_LIFETIME after their last use, through
// transport.fire and transport.next.

// DefaultBlockSize is the largest block the engine sends or asks for until
// SetBlockSize says otherwise (SZX 6, RFC 7959 §2.2).
const DefaultBlockSize = 1024

// Limits of the block-wise layer.
const (
	// maxBlockBody bounds the reassembled payload of one Block1 request.
	maxBlockBody = 64 << 10
	// maxBlock1Transfers bounds the Block1 requests being reassembled at
	// once; the one closest to expiry makes room for a new one.
	maxBlock1Transfers = 4
	// maxBlock2Cache bounds the representations kept for Block2.
	maxBlock2Cache = 8
	// optRequestTag is the Request-Tag option (RFC 9175 §3), which
	// go-coap does not name.
	optRequestTag message.OptionID = 292
	// szxBERT is the SZX value reserved for BERT (RFC 8323 §6).
	szxBERT = 7
	// szxMax is the largest SZX usable on UDP (1024 bytes).
	szxMax = 6
)

// ErrBadBlockOption is returned by ParseBlockOption and
// BlockOption.Bytes for a value that is not a Block option.
var ErrBadBlockOption = errors.New("agent: bad block option")

// errRepeatedOption marks a non-repeatable option that occurs twice.
var errRepeatedOption = errors.New("agent: repeated option")

// BlockOption is the value of a Block1 or Block2 option: the block number,
// the More flag and the size exponent.
//
// # Notes
//
//   - The value is a CoAP uint of 0–3 bytes: NUM in the high 4–20 bits,
//     then M, then the 3-bit SZX. An empty value is NUM 0, M 0, SZX 0.
//   - SZX 7 (BERT) is decoded but only valid over reliable transports;
//     the engine answers it with 4.00 Bad Request on UDP.
//
// See RFC 7959 §2.2 and RFC 8323 §6.
type BlockOption struct {
	Num  uint32 // block number, below 2^20
	More bool   // M: more blocks follow (in a response: the transfer is not complete)
	SZX  uint8  // size exponent: the block size is 2^(SZX+4) bytes
}

// ParseBlockOption decodes a Block option value. It fails with
// ErrBadBlockOption for a value longer than 3 bytes (the options table of
// RFC 7959 §2.1 gives Block1 and Block2 a length of 0–3); leading zero
// bytes are accepted, as for every CoAP uint (RFC 7252 §3.2).
func ParseBlockOption(b []byte) (BlockOption, error) {
	if len(b) > 3 {
		return BlockOption{}, fmt.Errorf("%w: %d bytes, want at most 3", ErrBadBlockOption, len(b))
	}
	var v uint32
	for _, c := range b {
		v = v<<8 | uint32(c)
	}
	return BlockOption{Num: v >> 4, More: v&8 != 0, SZX: uint8(v & 7)}, nil
}

// Bytes encodes the option value in as few bytes as possible (none for
// the all-zero value). It fails with ErrBadBlockOption when Num does not
// fit in 20 bits or SZX in 3.
func (b BlockOption) Bytes() ([]byte, error) {
	if b.Num >= 1<<20 || b.SZX > szxBERT {
		return nil, fmt.Errorf("%w: num %d, szx %d", ErrBadBlockOption, b.Num, b.SZX)
	}
	return b.appendBytes(nil), nil
}

// appendBytes appends the option value of a valid b to dst.
func (b BlockOption) appendBytes(dst []byte) []byte {
	v := b.Num<<4 | uint32(b.SZX)
	if b.More {
		v |= 8
	}
	n := len(dst)
	for shift := 16; shift >= 0; shift -= 8 {
		if c := byte(v >> shift); c != 0 || len(dst) > n {
			dst = append(dst, c)
		}
	}
	return dst
}

// Size returns the block size in bytes: 16 to 1024 (SZX 7, BERT, counts
// as 1024).
func (b BlockOption) Size() int { return 16 << min(b.SZX, szxMax) }

// Offset returns the position of the block's first byte in the body,
// Num × Size (at most 2^30, so it never overflows).
func (b BlockOption) Offset() int64 { return int64(b.Num) * int64(b.Size()) }

// SetBlockSize sets the largest block the engine sends and asks for: a
// power of two from 16 to 1024 (DefaultBlockSize). A peer may still
// negotiate a smaller one. It returns ErrBadValue for other sizes.
//
// # Notes
//
//   - Requests of ours whose payload is larger are sent block-wise
//     (Block1); responses and notifications larger are sent block-wise
//     (Block2).
//   - A server's Block1 blocks larger than this are accepted, and the 2.31
//     Continue asks for this size from then on (late negotiation).
//   - A reassembled Block1 request may carry at most 64 KiB.
//
// See RFC 7959 §2.3–§2.5.
func (e *Engine) SetBlockSize(n int) error {
	szx, ok := szxOf(n)
	if !ok {
		return fmt.Errorf("%w: block size %d: want a power of two from 16 to 1024", ErrBadValue, n)
	}
	e.tr.szx = szx
	return nil
}

// szxOf returns the SZX of a block size of n bytes.
func szxOf(n int) (uint8, bool) {
	for szx := uint8(0); szx <= szxMax; szx++ {
		if 16<<szx == n {
			return szx, true
		}
	}
	return 0, false
}

// szxAtMost returns the SZX of the largest block not larger than n bytes;
// false when n < 16.
func szxAtMost(n int64) (uint8, bool) {
	if n < 16 {
		return 0, false
	}
	szx := uint8(0)
	for szx < szxMax && int64(16)<<(szx+1) <= n {
		szx++
	}
	return szx, true
}

// blockOpt returns the Block option id of m. present is false when m has
// none; err is set when the option repeats or its value is malformed.
func blockOpt(m *message.Message, id message.OptionID) (b BlockOption, present bool, err error) {
	for _, o := range m.Options {
		if o.ID != id {
			continue
		}
		if present {
			return BlockOption{}, true, errRepeatedOption
		}
		present = true
		if b, err = ParseBlockOption(o.Value); err != nil {
			return BlockOption{}, true, err
		}
	}
	return b, present, nil
}

// withBlock returns o with the Block option id set to b.
func withBlock(o message.Options, id message.OptionID, b BlockOption) message.Options {
	v, err := b.Bytes()
	if err != nil {
		panic(err) // the engine only builds valid block options
	}
	return o.Add(message.Option{ID: id, Value: v})
}

// blockwise is the state of the block-wise layer, kept in the transport.
type blockwise struct {
	in    map[string]*block1Transfer // Block1 requests being reassembled, by key
	cache map[string]*block2Entry    // representations served block-wise, by key
	// observed maps the token of an observation to the cache key of its
	// path, so that a notification's first block and the blocks the
	// server then fetches with GET come from the same representation.
	observed map[string]string
}

func newBlockwise() blockwise {
	return blockwise{
		in:       make(map[string]*block1Transfer),
		cache:    make(map[string]*block2Entry),
		observed: make(map[string]string),
	}
}

// block1Transfer is a Block1 request being reassembled.
type block1Transfer struct {
	code    codes.Code
	body    []byte
	last    int // offset of the last block appended, for duplicates
	expires time.Time
}

// block2Entry is a representation served block-wise.
type block2Entry struct {
	payload []byte
	format  []byte // Content-Format option value; nil when absent
	etag    []byte
	szx     uint8 // block size in use; a peer's smaller SZX wins from then on
	expires time.Time
}

// requestKey identifies the resource a request addresses: peer, Uri-Path,
// Uri-Query, plus the Request-Tag (RFC 9175 §3) for Block1 or the Accept
// option for Block2.
func requestKey(peer string, m *message.Message, extra message.OptionID) string {
	var sb strings.Builder
	sb.WriteString(peer)
	for _, id := range []message.OptionID{message.URIPath, message.URIQuery, extra} {
		sb.WriteString("\x00")
		for _, o := range m.Options {
			if o.ID == id {
				sb.WriteString(strconv.Quote(string(o.Value)))
			}
		}
	}
	return sb.String()
}

// serveRequest answers the request m from peer: it reassembles Block1
// transfers, has the engine serve whole requests, and cuts large
// responses to GET into Block2 blocks.
func (t *transport) serveRequest(now time.Time, peer string, m *message.Message) *message.Message {
	b1, has1, err1 := blockOpt(m, message.Block1)
	b2, has2, err2 := blockOpt(m, message.Block2)
	if errors.Is(err1, errRepeatedOption) || errors.Is(err2, errRepeatedOption) {
		// RFC 7252 §5.4.5: "If a message includes an option with more
		// occurrences than the option is defined for, each supernumerary
		// option occurrence that appears subsequently in the message MUST
		// be treated like an unrecognized option"; Block1 and Block2 are
		// critical, so that is 4.02 (§5.4.1).
		return reply(codes.BadOption)
	}
	if err1 != nil || err2 != nil {
		return reply(codes.BadOption)
	}
	if (has1 && b1.SZX == szxBERT) || (has2 && b2.SZX == szxBERT) {
		// RFC 7959 §2.2: "The value 7 for SZX (which would indicate a
		// block size of 2048) is reserved, i.e., MUST NOT be sent and
		// MUST lead to a 4.00 Bad Request response code upon reception
		// in a request." (RFC 8323 gives it to BERT, on TCP only.)
		t.e.logDebug("block szx 7 on udp", "peer", peer)
		return reply(codes.BadRequest)
	}
	if d := t.e.packageWrite(m); d != nil {
		// A firmware or software package streams into storage block by
		// block (fwpush.go), once access control allows the write.
		if resp := t.e.permitPush(peer, m); resp != nil {
			return resp
		}
		return d.pushRequest(now, m, b1, has1)
	}
	var ack *BlockOption
	if has1 {
		whole, resp, a := t.receiveBlock1(now, peer, m, b1)
		if resp != nil {
			return resp
		}
		m, ack = whole, &a
	}
	isGET := m.Code == codes.GET
	if isGET && has2 && b2.Num > 0 {
		if resp := t.cachedBlock(now, peer, m, b2); resp != nil {
			return resp
		}
	}
	if t.e.deferRead(now, peer, m, served{ack: ack, b2: b2, has2: has2}) {
		// The host supplies values first (readcb.go): nil asks handle
		// for an empty ACK; the response goes separately.
		return nil
	}
	return t.serveWhole(now, peer, m, served{ack: ack, b2: b2, has2: has2})
}

// served is what serveWhole needs of a request's block options beside
// the whole request.
type served struct {
	ack  *BlockOption // the Block1 option of the response to a final block
	b2   BlockOption  // the request's Block2 option, when has2
	has2 bool
}

// serveWhole has the engine serve a whole (reassembled) request and cuts
// a large response to GET into Block2 blocks.
func (t *transport) serveWhole(now time.Time, peer string, m *message.Message, s served) *message.Message {
	resp := t.e.serve(now, peer, m)
	if s.ack != nil {
		// The response to the final block carries its Block1 option
		// (RFC 7959 §2.3, figure 7: "2.04 Changed, 1:2/0/128").
		resp.Options = withBlock(resp.Options, message.Block1, *s.ack)
	}
	if m.Code == codes.GET {
		resp = t.block2Response(now, peer, m, resp, s.b2, s.has2)
	}
	return resp
}

// receiveBlock1 takes one block of a Block1 request. It returns the whole
// request once the final block is in (with ack, the Block1 option of the
// response), or else the response to send: 2.31 Continue or an error.
func (t *transport) receiveBlock1(now time.Time, peer string, m *message.Message, b BlockOption) (whole, resp *message.Message, ack BlockOption) {
	size := b.Size()
	if size1, ok := uintOpt(m, message.Size1); ok && size1 > maxBlockBody {
		// RFC 7252 §5.9.2.9 (4.13 Request Entity Too Large): "The
		// response SHOULD include a Size1 Option to indicate the maximum
		// size of request entity the server is able and willing to
		// handle".
		return nil, tooLarge(), ack
	}
	n := len(m.Payload)
	if (b.More && n != size) || n > size {
		// RFC 7959 §2.2 (no MUST sentence to quote): a block is
		// 2^(SZX+4) bytes, and only the last one (M=0) may be shorter.
		// A block of another length cannot be placed (B16): reject it,
		// keeping the transfer for a good retry.
		t.e.logDebug("block1 size mismatch", "peer", peer, "num", b.Num, "szx", b.SZX, "len", n)
		return nil, reply(codes.BadRequest), ack
	}
	key := requestKey(peer, m, optRequestTag)
	x := t.bw.in[key]
	off := b.Offset()
	switch {
	case b.Num == 0:
		// A new NUM=0 restarts the transfer (RFC 7959 §2.5: "Starting a
		// new block-wise sequence of requests to the same resource ...
		// simply overwrites the context the server may still be
		// keeping"; B19).
		if x == nil {
			t.makeRoomBlock1()
		}
		x = &block1Transfer{code: m.Code}
		t.bw.in[key] = x
	case x == nil || x.code != m.Code:
		// RFC 7959 §2.5: "If not all previous blocks are available at
		// the server at the time of processing the final block, the
		// transfer fails and error code 4.08 (Request Entity Incomplete,
		// Section 2.9.2) MUST be returned. A server MAY also return a
		// 4.08 error code for any (final or non-final) Block1 transfer
		// that is not in sequence".
		return nil, reply(codes.RequestEntityIncomplete), ack
	case off == int64(x.last) && int64(len(x.body)) == off+int64(n) && bytes.Equal(x.body[x.last:], m.Payload) && b.More:
		// The last block again, under a new message ID (B13): answer it
		// again without appending.
		x.expires = now.Add(ExchangeLifetime)
		return nil, t.continueBlock1(b), ack
	case off != int64(len(x.body)):
		// Out of sequence: 4.08, as above; the transfer stays for the
		// block that is expected (B19, B20).
		t.e.logDebug("block1 out of order", "peer", peer, "num", b.Num, "szx", b.SZX, "have", len(x.body))
		return nil, reply(codes.RequestEntityIncomplete), ack
	}
	if len(x.body)+n > maxBlockBody {
		delete(t.bw.in, key)
		return nil, tooLarge(), ack
	}
	x.last = len(x.body)
	x.body = append(x.body, m.Payload...)
	x.expires = now.Add(ExchangeLifetime)
	if b.More {
		return nil, t.continueBlock1(b), ack
	}
	delete(t.bw.in, key)
	w := *m
	w.Options = make(message.Options, 0, len(m.Options))
	for _, o := range m.Options {
		if o.ID != message.Block1 && o.ID != message.Size1 {
			w.Options = append(w.Options, o)
		}
	}
	w.Payload = x.body
	t.e.logDebug("block1 reassembled", "peer", peer, "len", len(x.body))
	return &w, nil, BlockOption{Num: b.Num, SZX: b.SZX}
}

// continueBlock1 answers a non-final block with 2.31 Continue echoing its
// Block1 option; when the block is larger than our block size the echo
// carries our SZX, which the client SHOULD use for the following blocks
// (RFC 7959 §2.5: "the client SHOULD heed the preference indicated and,
// for all further blocks, use the block size preferred by the server or a
// smaller one").
func (t *transport) continueBlock1(b BlockOption) *message.Message {
	echo := BlockOption{Num: b.Num, More: true, SZX: b.SZX}
	if b.SZX > t.szx {
		// Acknowledge in our size: the first of our blocks in theirs
		// (block 0 stays block 0).
		echo.Num, echo.SZX = b.Num<<(b.SZX-t.szx), t.szx
	}
	resp := reply(codes.Continue)
	resp.Options = withBlock(resp.Options, message.Block1, echo)
	return resp
}

func tooLarge() *message.Message {
	resp := reply(codes.RequestEntityTooLarge)
	resp.Options = addUint(resp.Options, message.Size1, maxBlockBody)
	return resp
}

// makeRoomBlock1 drops the transfer closest to expiry when the table is
// full.
func (t *transport) makeRoomBlock1() {
	if len(t.bw.in) < maxBlock1Transfers {
		return
	}
	var oldest string
	for k, x := range t.bw.in {
		if oldest == "" || x.expires.Before(t.bw.in[oldest].expires) || (x.expires.Equal(t.bw.in[oldest].expires) && k < oldest) {
			oldest = k
		}
	}
	delete(t.bw.in, oldest)
}

// cachedBlock serves block b of a representation cached for m's resource,
// or returns nil when none is cached.
func (t *transport) cachedBlock(now time.Time, peer string, m *message.Message, b BlockOption) *message.Message {
	ent := t.bw.cache[requestKey(peer, m, message.Accept)]
	if ent == nil || !now.Before(ent.expires) {
		return nil
	}
	ent.expires = now.Add(ExchangeLifetime)
	var opts message.Options
	if ent.format != nil {
		opts = message.Options{{ID: message.ContentFormat, Value: ent.format}}
	}
	return t.cutBlock(ent, reply(codes.Content), opts, b)
}

// block2Response turns resp, the engine's answer to the GET m, into its
// first (or requested) block when it is larger than the block size or m
// asked for a block.
func (t *transport) block2Response(now time.Time, peer string, m, resp *message.Message, b BlockOption, asked bool) *message.Message {
	if resp.Code != codes.Content {
		return resp
	}
	key := requestKey(peer, m, message.Accept)
	if _, err := resp.Options.Observe(); err == nil {
		t.watch(m.Token, key)
	}
	szx := t.szx
	if ent := t.bw.cache[key]; ent != nil {
		szx = min(szx, ent.szx)
	}
	if asked {
		// RFC 7959 §2.4: "A server MUST use the block size indicated or a
		// smaller size." A smaller size wins from then on.
		szx = min(szx, b.SZX)
	}
	if !asked && len(resp.Payload) <= 16<<szx {
		return resp
	}
	format, _ := resp.Options.GetBytes(message.ContentFormat)
	ent := t.store(now, key, resp.Payload, format, szx)
	opts := make(message.Options, 0, len(resp.Options)+3)
	opts = append(opts, resp.Options...)
	if !asked {
		b = BlockOption{SZX: szx}
	}
	return t.cutBlock(ent, resp, opts, b)
}

// cutBlock returns the response carrying block b of ent (in ent's block
// size when that is smaller), with opts, the ETag and Block2 (and Size2 on
// block 0). A block beyond the end is answered 4.00.
func (t *transport) cutBlock(ent *block2Entry, resp *message.Message, opts message.Options, b BlockOption) *message.Message {
	ent.szx = min(ent.szx, b.SZX)
	size := int64(16) << ent.szx
	off := b.Offset()
	if off > 0 && off >= int64(len(ent.payload)) {
		// RFC 7959 §2.4 names no code for a NUM past the end. The option
		// is well-formed and understood, so 4.02 Bad Option (RFC 7252
		// §5.9.2.3: "unrecognized or malformed options") does not fit;
		// the request is wrong, so 4.00 Bad Request, as libcoap answers.
		return reply(codes.BadRequest)
	}
	end := min(off+size, int64(len(ent.payload)))
	out := &message.Message{Code: resp.Code, Options: opts, Payload: ent.payload[off:end]}
	out.Options = out.Options.Add(message.Option{ID: message.ETag, Value: ent.etag})
	out.Options = withBlock(out.Options, message.Block2, BlockOption{Num: uint32(off / size), More: end < int64(len(ent.payload)), SZX: ent.szx})
	if off == 0 {
		out.Options = addUint(out.Options, message.Size2, uint32(len(ent.payload)))
	}
	return out
}

// store caches payload as the representation of key, with a
// content-derived ETag, keeping a smaller block size negotiated before.
func (t *transport) store(now time.Time, key string, payload, format []byte, szx uint8) *block2Entry {
	if old := t.bw.cache[key]; old != nil {
		szx = min(szx, old.szx)
	} else if len(t.bw.cache) >= maxBlock2Cache {
		var oldest string
		for k, ent := range t.bw.cache {
			if oldest == "" || ent.expires.Before(t.bw.cache[oldest].expires) || (ent.expires.Equal(t.bw.cache[oldest].expires) && k < oldest) {
				oldest = k
			}
		}
		delete(t.bw.cache, oldest)
	}
	ent := newBlock2Entry(now, payload, format, szx)
	t.bw.cache[key] = ent
	return ent
}

// newBlock2Entry returns a representation with its ETag: 4 bytes of
// FNV-1a over the Content-Format and the payload. The ETag is derived from
// the content, so a representation encoded again after its entry expired
// gets a new ETag exactly when it changed (RFC 7959 §2.4: "the client ...
// MUST compare ETag Options").
func newBlock2Entry(now time.Time, payload, format []byte, szx uint8) *block2Entry {
	h := fnv.New32a()
	h.Write(format)
	h.Write([]byte{0})
	h.Write(payload)
	return &block2Entry{payload: payload, format: format, etag: h.Sum(nil), szx: szx, expires: now.Add(ExchangeLifetime)}
}

// watch remembers the cache key of an observation's resource and forgets
// the observations that have ended.
func (t *transport) watch(token []byte, key string) {
	for tok := range t.bw.observed {
		if !t.e.obs.hasToken(tok) {
			delete(t.bw.observed, tok)
		}
	}
	t.bw.observed[string(token)] = key
}

// blockNotification returns the notification m cut to its first block
// when its payload is larger than the block size (RFC 7959 §2.6: the
// notification carries block 0; the client fetches the rest with GET and
// Block2, without Observe). The full representation is cached under the
// observed resource so that the later blocks match the first.
func (t *transport) blockNotification(now time.Time, m *message.Message) *message.Message {
	key, watched := t.bw.observed[string(m.Token)]
	szx := t.szx
	if ent := t.bw.cache[key]; watched && ent != nil {
		szx = min(szx, ent.szx)
	}
	if m.Code != codes.Content || len(m.Payload) <= 16<<szx {
		return m
	}
	format, _ := m.Options.GetBytes(message.ContentFormat)
	var ent *block2Entry
	if watched {
		ent = t.store(now, key, m.Payload, format, szx)
	} else {
		ent = newBlock2Entry(now, m.Payload, format, szx)
	}
	opts := make(message.Options, 0, len(m.Options)+3)
	opts = append(opts, m.Options...)
	out := t.cutBlock(ent, m, opts, BlockOption{SZX: szx})
	out.Token = m.Token
	return out
}

// fireBlockwise forgets the partial Block1 transfers and the cached
// representations not used for EXCHANGE_LIFETIME (RFC 7959 §2.5: "Servers
// can fully expect to be free to discard any partial request body when a
// period of EXCHANGE_LIFETIME ... has elapsed after the most recent block
// was transferred").
func (t *transport) fireBlockwise(now time.Time) {
	for k, x := range t.bw.in {
		if !now.Before(x.expires) {
			t.e.logDebug("block1 transfer expired", "len", len(x.body))
			delete(t.bw.in, k)
		}
	}
	for k, ent := range t.bw.cache {
		if !now.Before(ent.expires) {
			delete(t.bw.cache, k)
		}
	}
}

// nextBlockwise returns the earliest expiry of the block-wise state.
func (t *transport) nextBlockwise() time.Time {
	var next time.Time
	take := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for _, x := range t.bw.in {
		take(x.expires)
	}
	for _, ent := range t.bw.cache {
		take(ent.expires)
	}
	return next
}

// blockRequest is one of our requests sent as a Block1 transfer (RFC 7959
// §2.5). Each block is its own confirmable exchange with a fresh message
// ID; all blocks carry the token of the first. RFC 7959 §3.4 leaves tokens
// to the client ("the client is free to choose tokens for each exchange as
// it likes"), and common servers (go-coap's block-wise layer among them)
// keep a transfer's state by token, so one token per transfer is what
// interoperates. Blocks go one at a time, in order: the exchange of block
// n has ended before block n+1 is sent, so a response can only match the
// block in flight. Only the response to the last block (or the failure
// that ends the transfer) reaches done.
type blockRequest struct {
	t     *transport
	peer  string
	tmpl  *message.Message // code and options of the request
	body  []byte
	szx   uint8
	token []byte // the transfer's token, chosen with the first block
	off   int    // offset of the block in flight
	end   int    // end of the block in flight
	done  func(time.Time, *message.Message)
}

// smallerSZX returns the block size to retry with after a 4.13 to a
// block (or a whole payload) of 2^(cur+4) bytes. The hints are the Block1
// SZX of the response (RFC 7959 §2.5: "a 4.13 response with a smaller SZX
// in its Block1 Option than requested is a hint to try a smaller SZX") and
// its Size1, the largest request the server accepts (RFC 7252 §5.10.9).
// Without a hint smaller than cur it guesses half of cur when guess is
// set, and gives up otherwise; it gives up when no block smaller than cur
// exists.
func smallerSZX(resp *message.Message, cur uint8, guess bool) (uint8, bool) {
	if cur == 0 {
		return 0, false
	}
	szx, hinted := cur, false
	if b, ok, err := blockOpt(resp, message.Block1); ok && err == nil && b.SZX < szx {
		szx, hinted = b.SZX, true
	}
	if s1, ok := uintOpt(resp, message.Size1); ok {
		s, fits := szxAtMost(int64(s1))
		if !fits {
			return 0, false // not even 16 bytes
		}
		if s < szx {
			szx, hinted = s, true
		}
	}
	if !hinted {
		if !guess {
			return 0, false
		}
		szx = cur - 1
	}
	return szx, true
}

// startBlocks sends m's payload as a Block1 transfer in blocks of
// 2^(szx+4) bytes.
func (t *transport) startBlocks(now time.Time, peer string, m *message.Message, szx uint8, done func(time.Time, *message.Message)) {
	tmpl := &message.Message{Code: m.Code, Options: append(message.Options(nil), m.Options...)}
	r := &blockRequest{t: t, peer: peer, tmpl: tmpl, body: m.Payload, szx: szx, done: done}
	r.sendBlock(now)
}

func (r *blockRequest) sendBlock(now time.Time) {
	size := 16 << r.szx
	r.end = min(r.off+size, len(r.body))
	b := BlockOption{Num: uint32(r.off / size), More: r.end < len(r.body), SZX: r.szx}
	m := &message.Message{Code: r.tmpl.Code, Token: r.token, Options: make(message.Options, 0, len(r.tmpl.Options)+2), Payload: r.body[r.off:r.end]}
	m.Options = append(m.Options, r.tmpl.Options...)
	m.Options = withBlock(m.Options, message.Block1, b)
	if r.off == 0 {
		// Size indication (RFC 7959 §4): the total the server will get.
		m.Options = addUint(m.Options, message.Size1, uint32(len(r.body)))
	}
	r.t.e.logDebug("block1 send", "peer", r.peer, "num", b.Num, "szx", b.SZX, "more", b.More)
	r.t.send(now, r.peer, m, r.answered)
	r.token = m.Token
}

func (r *blockRequest) answered(now time.Time, resp *message.Message) {
	switch {
	case resp == nil:
		r.done(now, nil)
	case resp.Code == codes.Continue && r.end < len(r.body):
		if b, ok, err := blockOpt(resp, message.Block1); ok && err == nil && b.SZX < r.szx {
			// Late negotiation (RFC 7959 §2.5): the server prefers
			// smaller blocks. Sizes are powers of two, so the next offset
			// stays a multiple of the new size.
			r.szx = b.SZX
		}
		r.off = r.end
		r.sendBlock(now)
	case resp.Code == codes.RequestEntityTooLarge:
		if szx, ok := smallerSZX(resp, r.szx, false); ok {
			t := r.t
			t.e.logDebug("block1 too large; restarting smaller", "peer", r.peer, "szx", szx)
			r.szx, r.off = szx, 0
			r.sendBlock(now)
			return
		}
		r.done(now, resp)
	default:
		r.done(now, resp)
	}
}
