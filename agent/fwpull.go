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

// Pulling a package (Package URI written to /5/0/1). CoAP pulls run in the
// engine itself: a GET per Block2 block on the engine's socket, to the
// host of the URI. HTTP(S) pulls are fetched by the driver (FetchRequest),
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

// fwPull is a pull in progress.
type fwPull struct {
	fw      *firmware
	u       *url.URL
	http    bool
	peer    string // CoAP: "host:port"
	szx     uint8
	started time.Time // of the pull (or its resumption)
	first   bool      // a response has arrived
	waiting bool      // a request or fetch is in flight
	retryAt time.Time
	fails   int    // consecutive failed attempts
	token   []byte // CoAP: token of the request in flight
	fetchID uint64 // HTTP: the fetch in flight
	winAt   time.Time
	winOff  int64
}

// FetchRequest asks the driver to download URL over HTTP(S), from Offset
// with If-Range: Validator when Offset > 0, and to stream the answer back
// with HandleFetchStart, HandleFetchData and HandleFetchEnd under ID. A
// request with Cancel set stops the fetch ID; the driver then sends
// nothing more for it.
type FetchRequest struct {
	ID             uint64
	URL            string
	Offset         int64
	Validator      string
	MaxSize        int64
	ConnectTimeout time.Duration
	LowSpeedLimit  int64
	LowSpeedTime   time.Duration
	Cancel         bool
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
func (fw *firmware) startPull(now time.Time, uri string) {
	u, r := fw.checkPackageURI(uri)
	if r != ResultInitial {
		st := fw.e.fwState()
		fw.reset(now, r)
		st.URI = ""
		fw.e.store()
		return
	}
	if err := fw.begin(now, uri, false); err != nil {
		fw.fail(now, handlerResult(err, ResultNotEnoughSpace), err)
		return
	}
	fw.pull = newPull(fw, now, u)
	fw.pull.request(now)
}

func newPull(fw *firmware, now time.Time, u *url.URL) *fwPull {
	p := &fwPull{fw: fw, u: u, started: now, winAt: now, winOff: fw.off, szx: fw.e.tr.szx}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		p.http = true
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
func (fw *firmware) resumePull(now time.Time) {
	st := fw.e.fwState()
	u, r := fw.checkPackageURI(st.URI)
	if r != ResultInitial {
		fw.fail(now, r, fmt.Errorf("stored package URI %q", st.URI))
		return
	}
	fw.ver = fwpkg.NewVerifier(fw.policy())
	fw.off, fw.bytes, fw.lastCkpt, fw.ckptAt = st.Offset, 0, st.Offset, now
	resumed := st.Offset > 0 && st.Validator != "" && len(st.Verifier) > 0
	if resumed {
		if err := fw.ver.UnmarshalBinary(st.Verifier); err != nil || fw.ver.PackageOffset() != st.Offset {
			resumed = false
		} else if err := fw.h.StreamOpen(st.URI, fw.ver.ImageOffset()); err != nil {
			fw.e.logWarn("firmware storage cannot resume; starting over", "err", err)
			resumed = false
		}
	}
	if !resumed {
		if err := fw.restartStream(now); err != nil {
			fw.fail(now, handlerResult(err, ResultFailed), err)
			return
		}
	} else {
		fw.e.logInfo("firmware download resumed", "offset", st.Offset, "uri", st.URI)
	}
	fw.pull = newPull(fw, now, u)
	fw.report(true)
	fw.pull.request(now)
}

// request asks for the data at the current offset.
func (p *fwPull) request(now time.Time) {
	fw := p.fw
	st := fw.e.fwState()
	p.waiting, p.retryAt = true, time.Time{}
	if p.http {
		fw.e.fetchSeq++
		p.fetchID = fw.e.fetchSeq
		lim, lt := fw.cfg.lowSpeed()
		fw.e.fetches = append(fw.e.fetches, FetchRequest{ID: p.fetchID, URL: st.URI, Offset: fw.off, Validator: st.Validator,
			MaxSize: fw.cfg.MaxSize, ConnectTimeout: fw.cfg.connectTimeout(), LowSpeedLimit: lim, LowSpeedTime: lt})
		return
	}
	// The block number of the offset in the largest block size that
	// divides it (a resumed offset may come from a smaller block size).
	szx := p.szx
	for szx > 0 && fw.off%int64(16<<szx) != 0 {
		szx--
	}
	b := BlockOption{Num: uint32(fw.off / int64(16<<szx)), SZX: szx}
	m := &message.Message{Code: codes.GET}
	for _, seg := range strings.Split(strings.TrimPrefix(p.u.EscapedPath(), "/"), "/") {
		if seg == "" {
			continue
		}
		s, err := url.PathUnescape(seg)
		if err != nil {
			s = seg
		}
		m.Options = append(m.Options, message.Option{ID: message.URIPath, Value: []byte(s)})
	}
	if p.u.RawQuery != "" {
		for _, q := range strings.Split(p.u.RawQuery, "&") {
			m.Options = append(m.Options, message.Option{ID: message.URIQuery, Value: []byte(q)})
		}
	}
	m.Options = withBlock(m.Options, message.Block2, b)
	if b.Num == 0 {
		// RFC 7959 §4: Size2 0 in a request asks for the size.
		m.Options = addUint(m.Options, message.Size2, 0)
	}
	m.Token = fw.e.tr.token()
	p.token = m.Token
	token := string(m.Token)
	fw.e.tr.send(now, p.peer, m, func(now time.Time, resp *message.Message) {
		if fw.pull != p || string(p.token) != token {
			return // a stale answer of a stopped pull
		}
		p.waiting = false
		p.coapAnswer(now, resp)
	})
}

// coapAnswer handles the response to a block request (nil: timed out).
func (p *fwPull) coapAnswer(now time.Time, resp *message.Message) {
	fw := p.fw
	st := fw.e.fwState()
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
		fw.fail(now, ResultInvalidURI, fmt.Errorf("server answered %v", resp.Code))
		return
	}
	p.first = true
	etag := ""
	for _, o := range resp.Options {
		if o.ID == message.ETag {
			etag = hex.EncodeToString(o.Value)
			break
		}
	}
	b, has, err := blockOpt(resp, message.Block2)
	if err != nil || (has && b.SZX == szxBERT) {
		p.retry(now, fmt.Errorf("bad Block2 option: %v", err))
		return
	}
	if fw.off > 0 && (etag == "" || etag != st.Validator) {
		// The representation changed (or cannot be told apart): never
		// splice two images (B20); start over.
		fw.e.logWarn("firmware changed on the server; restarting the download", "etag", etag, "was", st.Validator)
		if err := fw.restartStream(now); err != nil {
			fw.fail(now, handlerResult(err, ResultFailed), err)
			return
		}
		p.request(now)
		return
	}
	if !has {
		if fw.off != 0 {
			p.retry(now, errors.New("whole representation in answer to a block request"))
			return
		}
		b = BlockOption{Num: 0, More: false, SZX: p.szx}
	} else if b.Offset() != fw.off || (b.More && len(resp.Payload) != b.Size()) || len(resp.Payload) > b.Size() {
		p.retry(now, fmt.Errorf("block %d/%d does not fit offset %d", b.Num, b.Size(), fw.off))
		return
	}
	if has && b.SZX < p.szx {
		p.szx = b.SZX // the server prefers smaller blocks
	}
	st.Validator = etag
	if size2, ok := uintOpt(resp, message.Size2); ok && st.Total < 0 {
		st.Total = int64(size2)
	}
	if r, err := fw.data(now, resp.Payload); err != nil {
		fw.fail(now, r, err)
		return
	}
	p.fails = 0
	if p.slow(now) {
		return
	}
	if b.More {
		p.request(now)
		return
	}
	fw.complete(now)
}

// slow fails the pull when it stayed below the low-speed limit for the
// low-speed time; it reports whether it did.
func (p *fwPull) slow(now time.Time) bool {
	fw := p.fw
	lim, lt := fw.cfg.lowSpeed()
	if now.Sub(p.winAt) < lt {
		return false
	}
	if float64(fw.off-p.winOff) < float64(lim)*lt.Seconds() {
		fw.fail(now, ResultConnectionLost, fmt.Errorf("below %d B/s for %v", lim, lt))
		return true
	}
	p.winAt, p.winOff = now, fw.off
	return false
}

func (p *fwPull) retry(now time.Time, why error) { p.retryAfter(now, 0, why) }

// retryAfter schedules the next attempt, or fails the pull when the
// connection or low-speed budget is spent.
func (p *fwPull) retryAfter(now time.Time, wait time.Duration, why error) {
	fw := p.fw
	if !p.first && now.Sub(p.started) >= fw.cfg.connectTimeout() {
		fw.fail(now, ResultConnectionLost, fmt.Errorf("no connection within %v: %w", fw.cfg.connectTimeout(), why))
		return
	}
	if p.slow(now) {
		return
	}
	p.fails++
	if p.fails > pullMaxFails {
		fw.fail(now, ResultConnectionLost, fmt.Errorf("%d attempts without progress: %w", p.fails-1, why))
		return
	}
	if wait == 0 {
		wait = min(pullRetryBase<<min(p.fails-1, 8), pullRetryMax)
	}
	fw.e.logDebug("firmware pull retry", "in", wait, "why", why)
	p.retryAt = now.Add(wait)
}

func (p *fwPull) fire(now time.Time) {
	if !p.retryAt.IsZero() && !now.Before(p.retryAt) {
		p.request(now)
	}
}

func (p *fwPull) next() time.Time { return p.retryAt }

// stop abandons the pull: a CoAP request in flight is forgotten, an HTTP
// fetch cancelled.
func (p *fwPull) stop(now time.Time) {
	if p.http && p.waiting {
		p.fw.e.fetches = append(p.fw.e.fetches, FetchRequest{ID: p.fetchID, Cancel: true})
	}
	if !p.http && p.waiting {
		delete(p.fw.e.tr.exchanges, string(p.token))
	}
	p.waiting = false
}

// fetchFor returns the pull a driver's fetch ID belongs to.
func (e *Engine) fetchFor(id uint64) (*fwPull, error) {
	if e.fw == nil || e.fw.pull == nil || !e.fw.pull.http || e.fw.pull.fetchID != id || !e.fw.pull.waiting {
		return nil, fmt.Errorf("%w: fetch %d is not in progress", ErrBadValue, id)
	}
	return e.fw.pull, nil
}

// HandleFetchStart takes the head of an HTTP answer. An error tells the
// driver to abandon the fetch (the engine has already acted on it).
func (e *Engine) HandleFetchStart(now time.Time, id uint64, s FetchStart) error {
	e.now = now
	p, err := e.fetchFor(id)
	if err != nil {
		return err
	}
	fw := e.fw
	st := e.fwState()
	p.first = true
	if s.Offset != fw.off {
		if s.Offset != 0 {
			p.waiting = false
			fw.fail(now, ResultConnectionLost, fmt.Errorf("answer starts at %d, wanted %d", s.Offset, fw.off))
			return errFirmwareOpen
		}
		// The whole file again (200 to a range, or a new validator).
		if err := fw.restartStream(now); err != nil {
			p.waiting = false
			fw.fail(now, handlerResult(err, ResultFailed), err)
			return err
		}
	}
	st.Validator = s.Validator
	st.Total = s.Total
	fw.report(true)
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
	if r, err := e.fw.data(now, b); err != nil {
		p.waiting = false
		e.fw.fail(now, r, err)
		return err
	}
	p.fails = 0
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
	fw := e.fw
	if end.HTTPStatus != 0 {
		e.fwState().HTTPStatus = end.HTTPStatus
	}
	switch end.Result {
	case ResultInitial:
		fw.complete(now)
	case ResultConnectionLost:
		// Resume from where the body stopped, within the budget.
		p.retry(now, errors.New(end.Err))
	default:
		fw.fail(now, end.Result, errors.New(end.Err))
	}
}
