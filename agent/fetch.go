//go:build !wasip1 && !js

package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/avc-agent/avc/internal/httpfetch"
)

// The native driver's half of HTTP(S) pulls: it runs each FetchRequest
// with httpfetch in a goroutine and hands the answer to the loop, which
// feeds the engine. The engine decides everything else (offsets,
// validators, restarts, Update Results); this file only moves bytes and
// names the error.

// fetcher runs the fetches of one Agent.
type fetcher struct {
	tls  *tls.Config // nil: the system's roots
	msgs chan fetchMsg
	mu   sync.Mutex
	live map[uint64]context.CancelFunc
	wg   sync.WaitGroup
	// inline, when set, hands a step to the engine on the fetch's own
	// goroutine and returns the engine's answer (Agent.loopSession);
	// otherwise steps go to the loop through msgs.
	inline func(context.Context, fetchMsg) error
}

// setInline sets how fetches started from now on deliver (see
// fetcher.inline); nil: through msgs.
func (f *fetcher) setInline(fn func(context.Context, fetchMsg) error) {
	f.mu.Lock()
	f.inline = fn
	f.mu.Unlock()
}

// newFetcher returns a fetcher trusting the certificates in caFile (PEM)
// for https, or the system's roots when caFile is empty.
func newFetcher(caFile string) (*fetcher, error) {
	f := &fetcher{msgs: make(chan fetchMsg), live: make(map[uint64]context.CancelFunc)}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, EnvFWCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s=%q: no PEM certificate in it", ErrConfig, EnvFWCAFile, caFile)
		}
		f.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return f, nil
}

// run starts or cancels the fetch r.
func (f *fetcher) run(ctx context.Context, r FetchRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Cancel {
		if cancel, ok := f.live[r.ID]; ok {
			cancel()
			delete(f.live, r.ID)
		}
		return
	}
	fctx, cancel := context.WithCancel(ctx)
	f.live[r.ID] = cancel
	inline := f.inline
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() {
			f.mu.Lock()
			delete(f.live, r.ID)
			f.mu.Unlock()
			cancel()
		}()
		sink := &fetchSink{f: f, id: r.ID, ctx: fctx, inline: inline}
		tc := f.tls
		if r.Security != nil {
			// The handler's trust and client certificate for this pull
			// (the engine has checked that they parse).
			c, err := r.Security.TLSConfig(f.tls)
			if err != nil {
				end := FetchEnd{Result: ResultUnsupportedProtocol, Err: err.Error()}
				sink.send(fetchMsg{end: &end})
				return
			}
			tc = c
		}
		err := httpfetch.Get(fctx, httpfetch.Request{
			URL: r.URL, Offset: r.Offset, Validator: r.Validator, MaxSize: r.MaxSize,
			ConnectTimeout: r.ConnectTimeout, LowSpeedLimit: r.LowSpeedLimit, LowSpeedTime: r.LowSpeedTime,
			TLSConfig: tc,
		}, sink)
		if werr := sink.drain(); err == nil {
			err = werr
		}
		if fctx.Err() != nil || sink.refused {
			return // cancelled, or the engine already acted
		}
		end := fetchEnd(err)
		sink.send(fetchMsg{end: &end})
	}()
}

// stop cancels every fetch and waits for the goroutines.
func (f *fetcher) stop() {
	f.cancel()
	f.wg.Wait()
}

// cancel cancels every fetch without waiting for the goroutines.
func (f *fetcher) cancel() {
	f.mu.Lock()
	for id, cancel := range f.live {
		cancel()
		delete(f.live, id)
	}
	f.mu.Unlock()
}

// fetchEnd names the outcome of httpfetch.Get for the engine.
func fetchEnd(err error) FetchEnd {
	if err == nil {
		return FetchEnd{}
	}
	end := FetchEnd{Err: err.Error(), Result: ResultConnectionLost}
	var se *httpfetch.StatusError
	switch {
	case errors.As(err, &se):
		end.Result, end.HTTPStatus = ResultInvalidURI, se.Code
	case errors.Is(err, httpfetch.ErrUnsupportedScheme):
		end.Result = ResultUnsupportedProtocol
	case errors.Is(err, httpfetch.ErrInvalidURI), errors.Is(err, httpfetch.ErrRedirect):
		end.Result = ResultInvalidURI
	case errors.Is(err, httpfetch.ErrTooLarge):
		end.Result = ResultNotEnoughSpace
	}
	return end
}

// fetchSink hands a fetch's steps to the engine: inline when the fetcher
// has a way to (no copy, no goroutine switch: the kernel's socket buffer
// keeps filling while the engine verifies and stores a chunk), else to the
// driver's loop. To the loop data is double buffered: Write copies the
// bytes into the buffer the engine is not working on, sends them, and then
// waits only for the chunk before, so the next read from the network
// overlaps the engine's verification and storage of this one. An engine
// error is thus seen one chunk late; the chunk sent meanwhile is refused
// by the engine too (the fetch is no longer current), and nothing after it
// is sent.
type fetchSink struct {
	f       *fetcher
	id      uint64
	ctx     context.Context
	refused bool
	inline  func(context.Context, fetchMsg) error

	bufs    [2][]byte
	dones   [2]chan error
	next    int        // the buffer Write fills next
	pending chan error // the result of the chunk in flight, or nil
}

// send delivers m and waits for the engine's answer.
func (s *fetchSink) send(m fetchMsg) error {
	if s.inline != nil {
		return s.deliverInline(m)
	}
	if err := s.drain(); err != nil {
		return err
	}
	m.done = make(chan error, 1)
	if err := s.post(m); err != nil {
		return err
	}
	return s.wait(m.done)
}

// deliverInline hands m to the engine on this goroutine.
func (s *fetchSink) deliverInline(m fetchMsg) error {
	m.id = s.id
	err := s.inline(s.ctx, m)
	if err != nil {
		s.refused = true
	}
	return err
}

// post hands m to the loop without waiting for its answer.
func (s *fetchSink) post(m fetchMsg) error {
	m.id = s.id
	select {
	case s.f.msgs <- m:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// wait returns the engine's answer on done.
func (s *fetchSink) wait(done chan error) error {
	select {
	case err := <-done:
		if err != nil {
			s.refused = true
		}
		return err
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// drain waits for the answer to the chunk in flight, if any.
func (s *fetchSink) drain() error {
	done := s.pending
	if done == nil {
		return nil
	}
	s.pending = nil
	return s.wait(done)
}

// Start implements httpfetch.Sink.
func (s *fetchSink) Start(r httpfetch.Response) error {
	return s.send(fetchMsg{start: &FetchStart{Offset: r.Offset, Total: r.Total, Validator: r.Validator}})
}

// Write implements httpfetch.Sink. p is only borrowed until Write
// returns: the engine copies what it keeps when it takes p inline, and
// for the loop p is copied into one of two buffers first.
func (s *fetchSink) Write(p []byte) error {
	if s.inline != nil {
		return s.deliverInline(fetchMsg{data: p})
	}
	i := s.next
	s.next ^= 1
	if cap(s.bufs[i]) < len(p) {
		s.bufs[i] = make([]byte, max(len(p), httpfetch.BufferSize))
		s.dones[i] = make(chan error, 1)
	}
	buf := s.bufs[i][:len(p)]
	copy(buf, p)
	if err := s.post(fetchMsg{data: buf, done: s.dones[i]}); err != nil {
		return err
	}
	// The chunk before used the other buffer: once it is answered, the
	// next Write may fill that buffer.
	prev := s.pending
	s.pending = s.dones[i]
	if prev != nil {
		return s.wait(prev)
	}
	return nil
}
