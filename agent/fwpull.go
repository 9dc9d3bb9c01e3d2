package agent

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/fwpkg"
)

// Pulling a package (Package URI written to /5/0/1 or /9/x/3), for any
// download (download.go). CoAP pulls run in the engine itself: a GET per
// Block2 block on the engine's socket, to the host of the URI. HTTP(S) pulls are fetched by the driver (FetchRequest),
// which streams the body back through HandleFetchStart/Data/End; the
// engine keeps every decision (offsets, validators, restarts, results).

// Retry policy of a pull between failed attempts (timeouts, 5.xx, a
// connection lost mid-body): a doubling delay, capped.
const (
	pullRetryBase = 2 * time.Second
	pullRetryMax  = 60 * time.Second
	// pullMaxFails bounds the consecutive attempts without progress.
	pullMaxFails = 20
)

// dlPull is a pull in progress.
type dlPull struct {
	d       *download
	u       *url.URL
	http    bool
	peer    string // CoAP: "host:port"
	szx     uint8
	started time.Time // of the pull (or its resumption)
	first   bool      // a response has arrived
	waiting bool      // a request or fetch is in flight
	retryAt time.Time
	fails   int     // consecutive failed attempts
	key     xkey    // CoAP: the exchange of the request in flight
	tokBuf  [8]byte // CoAP: the bytes of the latest request's token
	fetchID uint64  // HTTP: the fetch in flight
	winAt   time.Time
	winOff  int64

	// Asked of the handler's hooks when the pull starts or resumes
	// (pullhooks.go).
	psk        *pskCred          // coaps: the DTLS-PSK credential
	tls        *FirmwareSecurity // https: trust and client certificate, nil: configuration
	tx         *CoAPTxParams     // coap(s): transmission parameters, nil: defaults
	reqTimeout time.Duration     // http(s): longest wait for the server, 0: none
	lastIO     time.Time         // http(s): the request, or the last head or body bytes

	// A pipelined CoAP pull (dlLimits.nstart > 1): the block requests in
	// flight by number, nil when one block at a time. win holds them from
	// the block at the current offset on; answers that arrive ahead of
	// the ones before them wait there.
	win      map[uint32]*pipeBlock
	winNext  uint32 // the next block number to ask for
	lockstep bool   // pipelining was given up for this pull

	// Reused by blockRequest: a block request is encoded as soon as it is
	// built, so one message serves them all.
	uriOpts  []message.Option // Uri-Path and Uri-Query of the package
	req      message.Message
	reqOpts  message.Options
	blockVal [3]byte
	etagHex  []byte
	// sparePB are pipelined blocks already stored, with their payload
	// buffers, for the next requests (at most nstart of them): a pull of
	// any size then allocates nothing per block here.
	sparePB []*pipeBlock
	// answer takes the response to the one-at-a-time request in flight
	// (made once: a closure per request would be allocated per block).
	answer func(now time.Time, resp *message.Message)
}

// pipeBlock is one block request of a pipelined pull.
type pipeBlock struct {
	p    *dlPull
	num  uint32
	key  xkey   // of the exchange of the request in flight
	data []byte // the payload, once answered (a copy: decode reuses its buffer)
	more bool
	got  bool
	// done is pb.answer, bound once for the exchanges of every block
	// this pipeBlock is used for.
	done func(now time.Time, resp *message.Message)
}

// answer takes the transport's answer to the request pb stands for.
func (pb *pipeBlock) answer(now time.Time, resp *message.Message) {
	p := pb.p
	if p.d.pull != p || p.win[pb.num] != pb {
		return // a stale answer
	}
	p.pipedAnswer(now, pb.num, pb, resp)
}

// FetchRequest asks the driver to download URL over HTTP(S), from Offset
// with If-Range: Validator when Offset > 0, and to stream the answer back
// with HandleFetchStart, HandleFetchData and HandleFetchEnd under ID. A
// request with Cancel set stops the fetch ID; the driver then sends
// nothing more for it. A handler's request timeout
// (FirmwareRequestTimeouter) is the engine's: it cancels the fetch itself
// when the server stays silent for that long.
type FetchRequest struct {
	ID             uint64
	URL            string
	Offset         int64
	Validator      string
	MaxSize        int64
	ConnectTimeout time.Duration
	LowSpeedLimit  int64
	LowSpeedTime   time.Duration
	// Security, when not nil, is the handler's choice of trusted
	// certificates and client certificate for an https URL
	// (FirmwareSecurityProvider); nil means the driver's configuration.
	Security *FirmwareSecurity
	Cancel   bool
}

// FetchStart is the head of an HTTP answer: where the body starts (0 when
// the server sent the whole file), the file's size (-1 unknown) and its
// validator (ETag or Last-Modified).
type FetchStart struct {
	Offset    int64
	Total     int64
	Validator string
}

// FetchEnd ends a fetch. Result is ResultInitial when the body is
// complete; otherwise the Update Result its error maps to, with the HTTP
// status of an error response and a description.
type FetchEnd struct {
	Result     UpdateResult
	HTTPStatus int
	Err        string
}

// PollFetch returns the next fetch request for the driver, if any.
func (e *Engine) PollFetch() (FetchRequest, bool) {
	if len(e.fetches) == 0 {
		return FetchRequest{}, false
	}
	f := e.fetches[0]
	e.fetches = e.fetches[1:]
	return f, true
}

// startPull begins a pull of uri (validated first).
func (d *download) startPull(now time.Time, uri string) {
	u, r := d.e.checkPackageURI(uri)
	if r != ResultInitial {
		d.stop(now)
		d.t.failed(now, r, fmt.Errorf("package URI %q", uri))
		d.t.record().URI = ""
		d.e.store()
		return
	}
	if err := d.begin(now, uri, false); err != nil {
		d.fail(now, handlerResult(err, ResultNotEnoughSpace), err)
		return
	}
	p := newPull(d, now, u)
	if r, err := p.askHooks(); err != nil {
		d.fail(now, r, err)
		return
	}
	d.pull = p
	p.request(now)
}

func newPull(d *download, now time.Time, u *url.URL) *dlPull {
	p := &dlPull{d: d, u: u, started: now, winAt: now, winOff: d.off, szx: d.e.tr.szx}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		p.http = true
	case "coaps":
		port := u.Port()
		if port == "" {
			port = "5684"
		}
		p.peer = DTLSPeerPrefix + net.JoinHostPort(u.Hostname(), port)
	default:
		port := u.Port()
		if port == "" {
			port = "5683"
		}
		p.peer = net.JoinHostPort(u.Hostname(), port)
	}
	return p
}

// resumePull continues a pull after a restart from the last checkpoint,
// or from 0 when the checkpoint cannot be trusted (no validator, the
// verifier state or the stored bytes do not match).
func (d *download) resumePull(now time.Time) {
	rec := d.t.record()
	u, r := d.e.checkPackageURI(rec.URI)
	if r != ResultInitial {
		d.fail(now, r, fmt.Errorf("stored package URI %q", rec.URI))
		return
	}
	d.ver = fwpkg.NewVerifier(d.t.policy())
	d.off, d.bytes, d.shown, d.lastCkpt, d.ckptAt = rec.Offset, 0, 0, rec.Offset, now
	resumed := rec.Offset > 0 && rec.Validator != "" && len(rec.Verifier) > 0
	if resumed {
		if err := d.ver.UnmarshalBinary(rec.Verifier); err != nil || d.ver.PackageOffset() != rec.Offset {
			resumed = false
		} else if err := d.t.store().StreamOpen(rec.URI, d.ver.ImageOffset()); err != nil {
			d.e.logWarn(d.t.label()+" storage cannot resume; starting over", "err", err)
			resumed = false
		}
	}
	if !resumed {
		if err := d.restartStream(now); err != nil {
			d.fail(now, handlerResult(err, ResultFailed), err)
			return
		}
	} else {
		d.e.logInfo(d.t.label()+" download resumed", "offset", rec.Offset, "uri", rec.URI)
	}
	p := newPull(d, now, u)
	if r, err := p.askHooks(); err != nil {
		d.fail(now, r, err)
		return
	}
	d.pull = p
	d.t.progress(true)
	p.request(now)
}

// request asks for the data at the current offset.
func (p *dlPull) request(now time.Time) {
	d := p.d
	rec := d.t.record()
	p.waiting, p.retryAt = true, time.Time{}
	if p.http {
		d.e.fetchSeq++
		p.fetchID = d.e.fetchSeq
		p.lastIO = now
		l := d.t.limits()
		d.e.fetches = append(d.e.fetches, FetchRequest{ID: p.fetchID, URL: rec.URI, Offset: d.off, Validator: rec.Validator,
			MaxSize: l.maxSize, ConnectTimeout: l.connect, LowSpeedLimit: l.lowSpeedLimit, LowSpeedTime: l.lowSpeedTime,
			Security: p.tls})
		return
	}
	// The block number of the offset in the largest block size that
	// divides it (a resumed offset may come from a smaller block size).
	szx := p.szx
	for szx > 0 && d.off%int64(16<<szx) != 0 {
		szx--
	}
	m := p.blockRequest(uint32(d.off/int64(16<<szx)), szx)
	if p.answer == nil {
		// One request in flight at a time, and a stopped pull's exchange
		// is forgotten (stop): an answer for p while it waits is the one.
		p.answer = func(now time.Time, resp *message.Message) {
			if p.d.pull != p || !p.waiting {
				return // a stale answer of a stopped pull
			}
			p.waiting = false
			p.coapAnswer(now, resp)
		}
	}
	p.key = d.e.tr.send(now, p.peer, m, p.answer)
	p.retime(now, p.key)
}

// blockRequest builds the GET of block num of the package in blocks of
// size szx, with a token of its own. The message is the pull's, reused:
// it is valid until the next call (transport.send encodes it at once).
func (p *dlPull) blockRequest(num uint32, szx uint8) *message.Message {
	if p.uriOpts == nil {
		p.uriOpts = make([]message.Option, 0, 4)
		for _, seg := range strings.Split(strings.TrimPrefix(p.u.EscapedPath(), "/"), "/") {
			if seg == "" {
				continue
			}
			s, err := url.PathUnescape(seg)
			if err != nil {
				s = seg
			}
			p.uriOpts = append(p.uriOpts, message.Option{ID: message.URIPath, Value: []byte(s)})
		}
		if p.u.RawQuery != "" {
			for _, q := range strings.Split(p.u.RawQuery, "&") {
				p.uriOpts = append(p.uriOpts, message.Option{ID: message.URIQuery, Value: []byte(q)})
			}
		}
	}
	b := BlockOption{Num: num, SZX: szx}
	opts := append(p.reqOpts[:0], p.uriOpts...)
	opts = opts.Add(message.Option{ID: message.Block2, Value: b.appendBytes(p.blockVal[:0])})
	if b.Num == 0 {
		// RFC 7959 §4: Size2 0 in a request asks for the size.
		opts = addUint(opts, message.Size2, 0)
	}
	p.reqOpts = opts
	p.req = message.Message{Code: codes.GET, Options: opts, Token: p.d.e.tr.appendToken(p.tokBuf[:0])}
	return &p.req
}

// coapAnswer handles the response to a block request (nil: timed out).
func (p *dlPull) coapAnswer(now time.Time, resp *message.Message) {
	d := p.d
	rec := d.t.record()
	if resp == nil {
		p.retry(now, errors.New("no response"))
		return
	}
	switch {
	case resp.Code == codes.Content:
	case resp.Code == codes.ServiceUnavailable || resp.Code >= codes.InternalServerError:
		wait := time.Duration(0)
		if ma, ok := uintOpt(resp, message.MaxAge); ok && resp.Code == codes.ServiceUnavailable {
			wait = min(time.Duration(ma)*time.Second, pullRetryMax)
		}
		p.retryAfter(now, wait, fmt.Errorf("server answered %v", resp.Code))
		return
	default:
		// 4.04 and the other client errors: the URI does not name a
		// package the server gives us.
		d.fail(now, ResultInvalidURI, fmt.Errorf("server answered %v", resp.Code))
		return
	}
	p.first = true
	etag := p.etag(resp)
	b, has, err := blockOpt(resp, message.Block2)
	if err != nil || (has && b.SZX == szxBERT) {
		p.retry(now, fmt.Errorf("bad Block2 option: %v", err))
		return
	}
	if d.off > 0 && (etag == "" || etag != rec.Validator) {
		// The representation changed (or cannot be told apart): never
		// splice two images (B20); start over.
		d.e.logWarn(d.t.label()+" changed on the server; restarting the download", "etag", etag, "was", rec.Validator)
		if err := d.restartStream(now); err != nil {
			d.fail(now, handlerResult(err, ResultFailed), err)
			return
		}
		p.request(now)
		return
	}
	if !has {
		if d.off != 0 {
			p.retry(now, errors.New("whole representation in answer to a block request"))
			return
		}
		b = BlockOption{Num: 0, More: false, SZX: p.szx}
	} else if b.Offset() != d.off || (b.More && len(resp.Payload) != b.Size()) || len(resp.Payload) > b.Size() {
		p.retry(now, fmt.Errorf("block %d/%d does not fit offset %d", b.Num, b.Size(), d.off))
		return
	}
	if has && b.SZX < p.szx {
		p.szx = b.SZX // the server prefers smaller blocks
	}
	if rec.Validator != etag {
		rec.Validator = etag
	}
	if size2, ok := uintOpt(resp, message.Size2); ok && rec.Total < 0 {
		rec.Total = int64(size2)
	}
	if r, err := d.data(now, resp.Payload); err != nil {
		d.fail(now, r, err)
		return
	}
	p.fails = 0
	if p.slow(now) {
		return
	}
	if b.More {
		if !p.pipeline(now) {
			p.request(now)
		}
		return
	}
	d.complete(now)
}

// pipeline starts keeping up to nstart block requests in flight, after
// an answer that told the package's size and ETag; it reports false when
// the pull stays one block at a time (nstart 1, size or ETag unknown, an
// offset off the block grid, or pipelining given up).
func (p *dlPull) pipeline(now time.Time) bool {
	d := p.d
	rec := d.t.record()
	size := int64(16 << p.szx)
	if p.lockstep || d.t.limits().nstart < 2 || rec.Total <= 0 || rec.Validator == "" || d.off%size != 0 {
		return false
	}
	p.win = make(map[uint32]*pipeBlock, d.t.limits().nstart)
	p.winNext = uint32(d.off / size)
	p.fill(now)
	return true
}

// fill sends block requests until nstart are in flight or every block up
// to the package's size has been asked for.
func (p *dlPull) fill(now time.Time) {
	d := p.d
	size, total, n := int64(16<<p.szx), d.t.record().Total, d.t.limits().nstart
	for len(p.win) < n && int64(p.winNext)*size < total {
		num := p.winNext
		p.winNext++
		m := p.blockRequest(num, p.szx)
		var pb *pipeBlock
		if k := len(p.sparePB); k > 0 {
			pb, p.sparePB = p.sparePB[k-1], p.sparePB[:k-1]
		} else {
			pb = &pipeBlock{p: p}
			pb.done = pb.answer
		}
		pb.num, pb.more, pb.got = num, false, false
		p.win[num] = pb
		pb.key = d.e.tr.send(now, p.peer, m, pb.done)
		p.retime(now, pb.key)
	}
}

// pipedAnswer takes the answer to block request num of a pipelined pull
// (nil: timed out). Blocks go to storage in order; anything unexpected
// (an error code, another ETag, a block that does not fit) gives up
// pipelining for this pull and asks again for the block at the offset one
// at a time, whose answer then goes through every check of coapAnswer.
func (p *dlPull) pipedAnswer(now time.Time, num uint32, pb *pipeBlock, resp *message.Message) {
	d := p.d
	if resp == nil {
		p.collapse()
		p.retry(now, errors.New("no response"))
		return
	}
	more, err := p.checkPiped(num, resp)
	if err != nil {
		d.e.logDebug(d.t.label()+" pipelined block refused; one block at a time from here", "block", num, "err", err)
		p.collapse()
		p.request(now)
		return
	}
	// A copy: decode reuses its buffer. Into pb's own from an earlier
	// block when it has one.
	pb.data, pb.more, pb.got = append(pb.data[:0], resp.Payload...), more, true
	size := int64(16 << p.szx)
	for {
		head := uint32(d.off / size)
		hb, ok := p.win[head]
		if !ok || !hb.got {
			break
		}
		delete(p.win, head)
		r, err := d.data(now, hb.data)
		p.sparePB = append(p.sparePB, hb) // stored, its exchange done: reusable
		if err != nil {
			d.fail(now, r, err)
			return
		}
		p.fails = 0
		if p.slow(now) {
			return
		}
		if !hb.more {
			p.collapse()
			d.complete(now)
			return
		}
	}
	p.fill(now)
}

// checkPiped checks the answer to block request num against what the
// first answer told: 2.05, the same ETag, block num in the pull's size,
// full blocks before the last, and a last block that ends the package at
// its size. It returns the block's More flag.
func (p *dlPull) checkPiped(num uint32, resp *message.Message) (bool, error) {
	rec := p.d.t.record()
	if resp.Code != codes.Content {
		return false, fmt.Errorf("server answered %v", resp.Code)
	}
	if etag := p.etag(resp); etag != rec.Validator {
		return false, fmt.Errorf("ETag %q, the pull started with %q", etag, rec.Validator)
	}
	b, has, err := blockOpt(resp, message.Block2)
	switch {
	case err != nil || !has:
		return false, fmt.Errorf("no usable Block2 option (%v)", err)
	case b.Num != num || b.SZX != p.szx:
		return false, fmt.Errorf("block %d of size %d, asked for %d of size %d", b.Num, b.Size(), num, 16<<p.szx)
	}
	end := b.Offset() + int64(len(resp.Payload))
	if b.More && (len(resp.Payload) != b.Size() || end >= rec.Total) ||
		!b.More && (len(resp.Payload) > b.Size() || end != rec.Total) {
		return false, fmt.Errorf("block %d (%d bytes, more %v) does not fit a package of %d bytes", num, len(resp.Payload), b.More, rec.Total)
	}
	return b.More, nil
}

// etag returns resp's ETag in hex ("" without one), as a string that is
// only allocated when it differs from the validator the pull holds, which
// is every block's case but the first.
func (p *dlPull) etag(resp *message.Message) string {
	for _, o := range resp.Options {
		if o.ID == message.ETag {
			p.etagHex = hex.AppendEncode(p.etagHex[:0], o.Value)
			if v := p.d.t.record().Validator; string(p.etagHex) == v {
				return v
			}
			return string(p.etagHex)
		}
	}
	return ""
}

// collapse forgets the pipelined requests in flight and leaves the pull
// one block at a time.
func (p *dlPull) collapse() {
	for _, pb := range p.win {
		delete(p.d.e.tr.exchanges, pb.key)
	}
	if p.win != nil {
		p.lockstep = true
	}
	p.win = nil
}

// slow fails the pull when it stayed below the low-speed limit for the
// low-speed time; it reports whether it did.
func (p *dlPull) slow(now time.Time) bool {
	d := p.d
	l := d.t.limits()
	lim, lt := l.lowSpeedLimit, l.lowSpeedTime
	if now.Sub(p.winAt) < lt {
		return false
	}
	if float64(d.off-p.winOff) < float64(lim)*lt.Seconds() {
		d.fail(now, ResultConnectionLost, fmt.Errorf("%w: below %d B/s for %v", errDownloadTimeout, lim, lt))
		return true
	}
	p.winAt, p.winOff = now, d.off
	return false
}

func (p *dlPull) retry(now time.Time, why error) { p.retryAfter(now, 0, why) }

// retryAfter schedules the next attempt, or fails the pull when the
// connection or low-speed budget is spent.
func (p *dlPull) retryAfter(now time.Time, wait time.Duration, why error) {
	d := p.d
	if connect := d.t.limits().connect; !p.first && now.Sub(p.started) >= connect {
		d.fail(now, ResultConnectionLost, fmt.Errorf("%w: no connection within %v: %w", errDownloadTimeout, connect, why))
		return
	}
	if p.slow(now) {
		return
	}
	p.fails++
	if p.fails > pullMaxFails {
		d.fail(now, ResultConnectionLost, fmt.Errorf("%d attempts without progress: %w", p.fails-1, why))
		return
	}
	if wait == 0 {
		wait = min(pullRetryBase<<min(p.fails-1, 8), pullRetryMax)
	}
	d.e.logDebug(d.t.label()+" pull retry", "in", wait, "why", why)
	p.retryAt = now.Add(wait)
}

func (p *dlPull) fire(now time.Time) {
	if t := p.stallAt(); !t.IsZero() && !now.Before(t) {
		p.d.fail(now, ResultConnectionLost, fmt.Errorf("nothing from the server for %v (request timeout)", p.reqTimeout))
		return
	}
	if !p.retryAt.IsZero() && !now.Before(p.retryAt) {
		p.request(now)
	}
}

func (p *dlPull) next() time.Time {
	if t := p.stallAt(); !t.IsZero() && (p.retryAt.IsZero() || t.Before(p.retryAt)) {
		return t
	}
	return p.retryAt
}

// stop abandons the pull: a CoAP request in flight is forgotten, an HTTP
// fetch cancelled.
func (p *dlPull) stop(now time.Time) {
	e := p.d.e
	if p.http && p.waiting {
		e.fetches = append(e.fetches, FetchRequest{ID: p.fetchID, Cancel: true})
	}
	if !p.http && p.waiting {
		delete(e.tr.exchanges, p.key)
	}
	p.waiting = false
	p.collapse()
}

// fetchFor returns the pull a driver's fetch ID belongs to.
func (e *Engine) fetchFor(id uint64) (*dlPull, error) {
	d := e.findDownload(func(d *download) bool {
		p := d.pull
		return p != nil && p.http && p.fetchID == id && p.waiting
	})
	if d != nil {
		return d.pull, nil
	}
	return nil, fmt.Errorf("%w: fetch %d is not in progress", ErrBadValue, id)
}

// HandleFetchStart takes the head of an HTTP answer. An error tells the
// driver to abandon the fetch (the engine has already acted on it).
func (e *Engine) HandleFetchStart(now time.Time, id uint64, s FetchStart) error {
	e.now = now
	p, err := e.fetchFor(id)
	if err != nil {
		return err
	}
	d := p.d
	rec := d.t.record()
	p.first = true
	if s.Offset != d.off {
		if s.Offset != 0 {
			p.waiting = false
			d.fail(now, ResultConnectionLost, fmt.Errorf("answer starts at %d, wanted %d", s.Offset, d.off))
			return errFirmwareOpen
		}
		// The whole file again (200 to a range, or a new validator).
		if err := d.restartStream(now); err != nil {
			p.waiting = false
			d.fail(now, handlerResult(err, ResultFailed), err)
			return err
		}
	}
	rec.Validator = s.Validator
	rec.Total = s.Total
	p.lastIO = now
	d.t.progress(true)
	return nil
}

// HandleFetchData takes body bytes of an HTTP answer, in order. An error
// tells the driver to abandon the fetch.
func (e *Engine) HandleFetchData(now time.Time, id uint64, b []byte) error {
	e.now = now
	p, err := e.fetchFor(id)
	if err != nil {
		return err
	}
	if r, err := p.d.data(now, b); err != nil {
		p.waiting = false
		p.d.fail(now, r, err)
		return err
	}
	p.fails = 0
	p.lastIO = now
	return nil
}

// HandleFetchEnd ends an HTTP fetch.
func (e *Engine) HandleFetchEnd(now time.Time, id uint64, end FetchEnd) {
	e.now = now
	p, err := e.fetchFor(id)
	if err != nil {
		return
	}
	p.waiting = false
	d := p.d
	if end.HTTPStatus != 0 {
		d.t.record().HTTPStatus = end.HTTPStatus
	}
	switch end.Result {
	case ResultInitial:
		d.complete(now)
	case ResultConnectionLost:
		// Resume from where the body stopped, within the budget.
		p.retry(now, errors.New(end.Err))
	default:
		d.fail(now, end.Result, errors.New(end.Err))
	}
}
