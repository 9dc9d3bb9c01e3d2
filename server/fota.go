package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/avc-agent/avc/lwm2m"
)

// DefaultFOTATimeout bounds a firmware update when FOTARequest.Timeout is
// zero.
const DefaultFOTATimeout = time.Hour

// Errors of firmware updates. Test with errors.Is.
var (
	// ErrFOTABusy: the client has a firmware update under way already.
	ErrFOTABusy = errors.New("server: firmware update already under way")
	// ErrFOTACancelled: the firmware update was cancelled with
	// [FOTA.Cancel].
	ErrFOTACancelled = errors.New("server: firmware update cancelled")
	// ErrFOTATimeout: the firmware update did not end within its
	// FOTARequest.Timeout.
	ErrFOTATimeout = errors.New("server: firmware update timed out")
	// errUnknownFOTA: no firmware update has the ID (HTTP API).
	errUnknownFOTA = errors.New("server: unknown firmware update")
)

// Resources of the Firmware Update object (Core TS 1.1 §E.6).
var (
	fwPackage    = lwm2m.P(5, 0, 0)
	fwPackageURI = lwm2m.P(5, 0, 1)
	fwUpdate     = lwm2m.P(5, 0, 2)
)

const (
	fwResState  = 3 // State
	fwResResult = 5 // Update Result
)

// Values of State (/5/0/3) and Update Result (/5/0/5).
const (
	fwStateIdle       = 0
	fwStateDownloaded = 2
	fwResultSuccess   = 1
	fwResultDeferred  = 11
)

var fwStateNames = [...]string{"idle", "downloading", "downloaded", "updating"}

var fwResultTexts = [...]string{
	"initial value",
	"firmware updated successfully",
	"not enough flash memory for the new firmware package",
	"out of RAM during downloading process",
	"connection lost during downloading process",
	"integrity check failure for new downloaded package",
	"unsupported package type",
	"invalid URI",
	"firmware update failed",
	"unsupported protocol",
	"firmware update cancelled",
	"firmware update deferred",
}

// FirmwareStateName returns the name of a value of the State resource
// /5/0/3: "idle", "downloading", "downloaded" or "updating".
func FirmwareStateName(state int) string {
	if state >= 0 && state < len(fwStateNames) {
		return fwStateNames[state]
	}
	return "state " + strconv.Itoa(state)
}

// UpdateResultText returns the meaning of a value of the Update Result
// resource /5/0/5, as the object definition words it ("integrity check
// failure for new downloaded package").
func UpdateResultText(result int) string {
	if result >= 0 && result < len(fwResultTexts) {
		return fwResultTexts[result]
	}
	return "update result " + strconv.Itoa(result)
}

// FOTAMethod is how a firmware update delivers the image.
type FOTAMethod string

// Delivery methods (Core TS 1.1 §E.6, resource 9).
const (
	// FOTAPull writes the image's URL to Package URI /5/0/1; the device
	// downloads it from the server's /fw/<name>.
	FOTAPull FOTAMethod = "pull"
	// FOTAPush writes the image to Package /5/0/0 in a block-wise PUT
	// (RFC 7959 Block1).
	FOTAPush FOTAMethod = "push"
)

// FOTAPhase is where a firmware update stands.
type FOTAPhase string

// Phases, in order. A firmware update ends in FOTADone or FOTAFailed, or
// in FOTADownloaded when FOTARequest.DownloadOnly is set.
const (
	// FOTADownloading: the image is on its way to the device.
	FOTADownloading FOTAPhase = "downloading"
	// FOTADownloaded: the device holds the image (State 2).
	FOTADownloaded FOTAPhase = "downloaded"
	// FOTAUpdating: the server executed Update /5/0/2 and waits for the
	// device to report the outcome, across restarts and new registrations.
	FOTAUpdating FOTAPhase = "updating"
	// FOTADeferred: the device deferred the update (Update Result 11);
	// the server keeps waiting for it.
	FOTADeferred FOTAPhase = "deferred"
	// FOTADone: the device reported State 0 with Update Result 1.
	FOTADone FOTAPhase = "done"
	// FOTAFailed: the device reported a failure, or the server gave up.
	FOTAFailed FOTAPhase = "failed"
)

// FOTARequest describes a firmware update for [Server.StartFOTA].
type FOTARequest struct {
	// Image names the image in Config.FirmwareDir.
	Image string
	// Method is FOTAPull (when empty) or FOTAPush.
	Method FOTAMethod
	// Protocol is the scheme of the URL a pull writes: "coap", "coaps" or
	// "http". It needs the server to listen for it. Empty means "coaps"
	// for a client registered over DTLS, "coap" for others.
	Protocol string
	// DownloadOnly stops the update once the device has the image (State
	// 2), without executing Update /5/0/2.
	DownloadOnly bool
	// Timeout bounds the whole update. Zero means DefaultFOTATimeout.
	Timeout time.Duration
}

// FOTAStatus is a snapshot of a firmware update.
type FOTAStatus struct {
	ID       string
	Endpoint string
	Image    string
	Method   FOTAMethod
	Protocol string // of a pull
	URI      string // the Package URI a pull writes
	Phase    FOTAPhase
	State    int // the device's last State /5/0/3 (0 idle, 1 downloading, 2 downloaded, 3 updating)
	Result   int // the device's last Update Result /5/0/5 (see UpdateResultText)
	// Bytes counts the bytes a push has had acknowledged; a pull leaves it
	// 0, as the device reports no progress. Total is the image size.
	Bytes, Total int64
	// HTTPStatus is the status of the server's last answer to the device's
	// GET of the image, for a pull over http.
	HTTPStatus int
	Error      string // why it failed
	Final      bool   // the update has ended; the status changes no more
	Started    time.Time
	Updated    time.Time
}

// FOTAError reports a failed firmware update.
type FOTAError struct {
	Endpoint string
	// Result is the Update Result the device reported, when the device
	// reported the failure.
	Result int
	// Err is the cause when the server saw the failure: ErrFOTACancelled,
	// ErrFOTATimeout, ErrClosed, a *CodeError, a transport error...
	Err error
}

// Error returns `server: firmware update of "dev1" failed: update result 5
// (integrity check failure for new downloaded package)`.
func (e *FOTAError) Error() string {
	return fmt.Sprintf("server: firmware update of %q failed: %s", e.Endpoint, e.reason())
}

func (e *FOTAError) reason() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("update result %d (%s)", e.Result, UpdateResultText(e.Result))
}

// Unwrap returns Err.
func (e *FOTAError) Unwrap() error { return e.Err }

// FOTA is a firmware update (LwM2M Object 5) the server drives on a
// client, made by [Server.StartFOTA].
//
// Here's an example:
//
//	f, err := s.StartFOTA(ctx, "dev1", server.FOTARequest{Image: "fw-1.2.bin"})
//	if err != nil {
//		return err
//	}
//	updates, stop := f.Watch()
//	defer stop()
//	for st := range updates {
//		fmt.Println(st.Phase, st.State, st.Bytes, st.Total)
//	}
//	st, err := f.Wait(ctx) // err is a *FOTAError when the update failed
//
// # Flow
//
//   - The server observes State /5/0/3 and Update Result /5/0/5.
//   - A pull writes the image's URL (coap://host:port/fw/<name>) to
//     Package URI /5/0/1 as text/plain; a push PUTs the image to Package
//     /5/0/0 block-wise (RFC 7959 Block1, application/octet-stream), in
//     1024-byte blocks unless the device asks for smaller ones in a 2.31
//     or a 4.13, starting over on 4.08 Request Entity Incomplete.
//   - When State becomes 2 (Downloaded), the server executes Update
//     /5/0/2, unless FOTARequest.DownloadOnly.
//   - The update is done when the device reports State 0 with Update
//     Result 1. It has failed when it reports Update Result 2 to 10 with
//     State 0 or 2; Result 11 (deferred) keeps it waiting in phase
//     FOTADeferred.
//   - The device may restart and register again before it reports: the
//     update follows the endpoint name and observes again on every new
//     registration.
//
// # Notes
//
//   - Only values reported after the download started count, so a
//     result left over from an earlier update neither ends nor fails this
//     one.
//   - A client has at most one update under way (ErrFOTABusy).
//   - The server keeps the 64 latest ended updates for the HTTP API.
type FOTA struct {
	s       *Server
	id      string
	ep      string
	req     FOTARequest
	uri     string // of a pull
	devHost string // the device's IP, to match its HTTP GETs
	ctx     context.Context
	cancel  context.CancelCauseFunc
	done    chan struct{} // closed when the status is final

	mu       sync.Mutex // guards the fields below
	st       FOTAStatus
	err      error // why it failed
	watchers map[chan FOTAStatus]struct{}

	// Owned by the run goroutine (and by StartFOTA before it starts).
	stateObs, resultObs     *Observation
	stateFresh, resultFresh bool // a value came since the last step
}

// ID returns the update's identifier, 8 hex digits unique among the
// server's updates. The HTTP API names updates by it.
func (f *FOTA) ID() string { return f.id }

// Endpoint returns the name of the updated client.
func (f *FOTA) Endpoint() string { return f.ep }

// Status returns the update's current status.
func (f *FOTA) Status() FOTAStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// Done returns a channel that is closed when the update has ended.
func (f *FOTA) Done() <-chan struct{} { return f.done }

// Wait waits until the update ends, or ctx is done, and returns its status.
// A failed update returns a *FOTAError.
func (f *FOTA) Wait(ctx context.Context) (FOTAStatus, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return f.Status(), fmt.Errorf("server: wait for firmware update %s of %q: %w", f.id, f.ep, ctx.Err())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, f.err
}

// Cancel ends the update with ErrFOTACancelled, unless it has ended. It
// does not tell the device, which may go on downloading or updating.
func (f *FOTA) Cancel() { f.cancel(ErrFOTACancelled) }

// Watch returns a channel that receives the update's status now and at
// every change, and a function that ends the watch and closes the channel.
//
// The channel closes after the final status. A reader that falls behind
// misses intermediate statuses, never the latest one.
func (f *FOTA) Watch() (<-chan FOTAStatus, func()) {
	ch := make(chan FOTAStatus, 8)
	f.mu.Lock()
	defer f.mu.Unlock()
	ch <- f.st
	if f.st.Final {
		close(ch)
		return ch, func() {}
	}
	f.watchers[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.watchers[ch]; ok {
			delete(f.watchers, ch)
			close(ch)
		}
	}
}

// update applies change to the status and publishes it when it changed.
// It does nothing once the status is final.
func (f *FOTA) update(change func(st *FOTAStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Final {
		return
	}
	old := f.st
	change(&f.st)
	if f.st != old {
		f.publish()
	}
}

// publish sends the status to every watcher, dropping the oldest status a
// full channel holds, and closes the channels after the final status.
// Called with f.mu held.
func (f *FOTA) publish() {
	f.st.Updated = time.Now()
	for ch := range f.watchers {
		for sent := false; !sent; {
			select {
			case ch <- f.st:
				sent = true
			default:
				select {
				case <-ch:
				default:
				}
			}
		}
		if f.st.Final {
			close(ch)
		}
	}
	if f.st.Final {
		clear(f.watchers)
	}
}

// finish ends the update in phase with cause err (nil on success).
func (f *FOTA) finish(phase FOTAPhase, err error) {
	f.mu.Lock()
	if f.st.Final {
		f.mu.Unlock()
		return
	}
	f.st.Phase, f.st.Final, f.err = phase, true, err
	if err != nil {
		var fe *FOTAError
		if errors.As(err, &fe) {
			f.st.Error = fe.reason()
		} else {
			f.st.Error = err.Error()
		}
	}
	f.publish()
	st := f.st
	f.mu.Unlock()

	f.s.fotas.retire(f)
	close(f.done)
	if err != nil {
		f.s.log.Warn("firmware update failed", "ep", f.ep, "id", f.id, "image", f.req.Image, "state", st.State, "result", st.Result, "err", st.Error)
	} else {
		f.s.log.Info("firmware update ended", "ep", f.ep, "id", f.id, "image", f.req.Image, "phase", string(phase), "state", st.State, "result", st.Result)
	}
}

// fail ends the update with err as the server's reason, or with the
// reason its context ended, which is what made a request fail then.
func (f *FOTA) fail(err error) {
	if cause := context.Cause(f.ctx); cause != nil {
		err = cause
	}
	f.finish(FOTAFailed, &FOTAError{Endpoint: f.ep, Err: err})
}

func (f *FOTA) setPhase(p FOTAPhase) {
	f.update(func(st *FOTAStatus) { st.Phase = p })
	f.s.log.Info("firmware update", "ep", f.ep, "id", f.id, "phase", string(p))
}

// StartFOTA starts a firmware update of the client registered as ep with
// the image req.Image (see [FOTA] for the flow). It returns once it
// observes the client's State and Update Result; the update goes on in the
// background, until it ends, is cancelled, times out or the server closes.
//
// # Notes
//
//   - ctx bounds the start only.
//   - Errors in req wrap ErrBadImageName, ErrImageNotFound or
//     ErrNoFirmware, or name the bad field; an unknown client is
//     ErrNotRegistered, a client under update ErrFOTABusy. A client that
//     answers the Observe of /5/0/3 or /5/0/5 with an error code (it has no
//     Firmware Update object) returns the *CodeError.
func (s *Server) StartFOTA(ctx context.Context, ep string, req FOTARequest) (*FOTA, error) {
	if req.Method == "" {
		req.Method = FOTAPull
	}
	if req.Timeout <= 0 {
		req.Timeout = DefaultFOTATimeout
	}
	switch {
	case req.Method != FOTAPull && req.Method != FOTAPush:
		return nil, badInput("server: firmware update: bad method %q", req.Method)
	case req.Method == FOTAPush && req.Protocol != "":
		return nil, badInput("server: firmware update: a push takes no protocol")
	case req.Method == FOTAPull && req.Protocol != "" && req.Protocol != "coap" && req.Protocol != "coaps" && req.Protocol != "http":
		return nil, badInput("server: firmware update: bad protocol %q", req.Protocol)
	}
	file, img, err := s.fw.open(req.Image)
	if err != nil {
		return nil, &inputError{fmt.Errorf("server: firmware update: %w", err)}
	}
	file.Close()
	ci, ok := s.Client(ep)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotRegistered, ep)
	}
	if req.Method == FOTAPull && req.Protocol == "" {
		// A client that came over DTLS downloads over DTLS too.
		req.Protocol = "coap"
		if s.CoAPSAddr() != nil {
			if _, cc, _, err := s.target(ep); err == nil && isDTLS(cc) {
				req.Protocol = "coaps"
			}
		}
	}
	f := &FOTA{
		s:        s,
		ep:       ep,
		req:      req,
		done:     make(chan struct{}),
		watchers: make(map[chan FOTAStatus]struct{}),
	}
	if ua, ok := ci.Addr.(*net.UDPAddr); ok {
		f.devHost = ua.IP.String()
	}
	if req.Method == FOTAPull {
		f.uri = s.firmwareURL(req.Protocol, img.name, localIPTowards(ci.Addr))
		if f.uri == "" {
			return nil, badInput("server: firmware update: the server does not listen for %s", req.Protocol)
		}
	}
	now := time.Now()
	f.st = FOTAStatus{Endpoint: ep, Image: img.name, Method: req.Method, Protocol: req.Protocol, URI: f.uri,
		Phase: FOTADownloading, Total: img.size, Started: now, Updated: now}
	if err := s.fotas.add(f); err != nil {
		return nil, err
	}
	f.st.ID = f.id
	base, cancelBase := context.WithCancelCause(s.fotas.ctx)
	fctx, stopTimer := context.WithTimeoutCause(base, req.Timeout, ErrFOTATimeout)
	f.ctx = fctx
	f.cancel = func(cause error) {
		cancelBase(cause)
		stopTimer()
	}

	// Subscribed before anything is sent, so that no new registration of
	// the device goes unseen.
	events, unsubscribe := s.Subscribe()
	if f.stateObs, err = f.observe(ctx, fwResState, false); err == nil {
		f.resultObs, err = f.observe(ctx, fwResResult, false)
	}
	if err != nil {
		unsubscribe()
		f.cancel(err)
		f.cleanup()
		s.fotas.remove(f)
		return nil, err
	}
	s.log.Info("firmware update started", "ep", ep, "id", f.id, "image", img.name, "method", string(req.Method),
		"uri", f.uri, "size", img.size, "state", f.st.State, "result", f.st.Result)
	go f.run(events, unsubscribe)
	return f, nil
}

// FOTAByID returns the firmware update with ID id: one under way, or one
// of the latest that ended.
func (s *Server) FOTAByID(id string) (*FOTA, bool) {
	s.fotas.mu.Lock()
	defer s.fotas.mu.Unlock()
	f, ok := s.fotas.byID[id]
	return f, ok
}

// observe observes resource res of /5/0 as text/plain and takes the value
// of the answer, fresh or not.
func (f *FOTA) observe(ctx context.Context, res uint16, fresh bool) (*Observation, error) {
	ctx, cancel := context.WithTimeout(ctx, f.s.cfg.RequestTimeout)
	defer cancel()
	o, err := f.s.Observe(ctx, f.ep, lwm2m.P(5, 0, res), lwm2m.FormatText)
	if err != nil {
		if o != nil {
			f.s.forget(o, err)
		}
		return nil, err
	}
	if v, ok := intValue(o.Response()); ok {
		f.setValue(res, v, fresh)
	}
	return o, nil
}

// intValue returns the integer a Read or notification of a single resource
// carries.
func intValue(r *Response) (int, bool) {
	if r == nil || !success(r.Code) {
		return 0, false
	}
	if len(r.Records) == 1 {
		v := r.Records[0].Value
		switch v.Type {
		case lwm2m.TypeInteger:
			return int(v.Int), true
		case lwm2m.TypeUnsigned:
			return int(min(v.Uint, math.MaxInt32)), true
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(r.Payload)))
	return n, err == nil
}

// setValue records the device's value v of State or Update Result.
func (f *FOTA) setValue(res uint16, v int, fresh bool) {
	f.update(func(st *FOTAStatus) {
		if res == fwResState {
			st.State = v
		} else {
			st.Result = v
		}
	})
	if fresh {
		if res == fwResState {
			f.stateFresh = true
		} else {
			f.resultFresh = true
		}
	}
}

// run drives the update until it ends.
func (f *FOTA) run(events <-chan Event, unsubscribe func()) {
	defer f.s.fotas.wg.Done()
	defer unsubscribe()
	defer f.cleanup()

	pushDone := f.initiate()
	for !f.Status().Final {
		select {
		case n, ok := <-notifications(f.stateObs):
			f.onNotification(&f.stateObs, fwResState, n, ok)
		case n, ok := <-notifications(f.resultObs):
			f.onNotification(&f.resultObs, fwResResult, n, ok)
		case ev, ok := <-events:
			if !ok {
				f.fail(ErrClosed)
				continue
			}
			f.onEvent(ev)
		case err := <-pushDone:
			pushDone = nil
			f.onPushDone(err)
		case <-f.ctx.Done():
			f.fail(context.Cause(f.ctx))
			continue
		}
		f.evaluate()
	}
}

func notifications(o *Observation) <-chan Notification {
	if o == nil {
		return nil
	}
	return o.Notifications()
}

// cleanup ends the update's context and observations.
func (f *FOTA) cleanup() {
	f.cancel(nil)
	ctx, cancel := context.WithTimeout(f.s.fotas.ctx, min(f.s.cfg.RequestTimeout, 5*time.Second))
	defer cancel()
	for _, o := range []*Observation{f.stateObs, f.resultObs} {
		if o != nil {
			// Sends nothing for an ended observation (server closed,
			// registration gone).
			if err := o.Cancel(ctx); err != nil {
				f.s.log.Debug("firmware update: cancel observation", "ep", f.ep, "path", o.Path().String(), "err", err)
			}
		}
	}
}

// initiate starts the download: it writes the Package URI of a pull, or
// starts the transfer of a push, whose end it returns a channel for.
func (f *FOTA) initiate() <-chan error {
	if f.req.Method == FOTAPush {
		done := make(chan error, 1)
		f.s.fotas.wg.Add(1)
		go func() {
			defer f.s.fotas.wg.Done()
			done <- f.push()
		}()
		return done
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.s.cfg.RequestTimeout)
	defer cancel()
	recs := []lwm2m.Record{{Path: fwPackageURI, Value: lwm2m.String(f.uri)}}
	if _, err := f.s.Write(ctx, f.ep, fwPackageURI, lwm2m.FormatText, recs); err != nil {
		f.fail(fmt.Errorf("write package URI: %w", err))
	}
	return nil
}

func (f *FOTA) onNotification(o **Observation, res uint16, n Notification, ok bool) {
	if !ok {
		f.s.log.Debug("firmware update: observation ended", "ep", f.ep, "path", (*o).Path().String(), "err", (*o).Err())
		*o = nil
		return
	}
	if v, ok := intValue(n.Response); ok {
		f.setValue(res, v, true)
	}
}

// onEvent follows the device across registrations: a new registration
// ended the observations, which are made again.
func (f *FOTA) onEvent(ev Event) {
	if ev.Endpoint != f.ep {
		return
	}
	switch ev.Kind {
	case EventRegistered:
		f.s.log.Info("firmware update: device registered again", "ep", f.ep, "id", f.id, "reg", ev.ID)
		f.reobserve()
	case EventDeregistered, EventExpired:
		f.s.log.Info("firmware update: device gone, waiting for it", "ep", f.ep, "id", f.id, "event", string(ev.Kind))
	}
}

// reobserve observes State and Update Result again, trying a few times as
// a device that has just registered may not answer at once.
func (f *FOTA) reobserve() {
	f.stateObs, f.resultObs = nil, nil // ended with their registration
	delay := 100 * time.Millisecond
	for attempt := 0; attempt < 5 && f.ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(delay):
			case <-f.ctx.Done():
				return
			}
			delay *= 2
		}
		var err error
		if f.stateObs == nil {
			f.stateObs, err = f.observe(f.ctx, fwResState, true)
		}
		if f.resultObs == nil && err == nil {
			f.resultObs, err = f.observe(f.ctx, fwResResult, true)
		}
		if err == nil {
			return
		}
		f.s.log.Debug("firmware update: observe again", "ep", f.ep, "attempt", attempt, "err", err)
	}
}

// onPushDone takes the end of the block-wise transfer. After a complete
// transfer it reads State and Update Result, whose notifications a device
// may hold back (pmin).
func (f *FOTA) onPushDone(err error) {
	if f.Status().Phase != FOTADownloading {
		return // the device reported the download already
	}
	if err != nil {
		f.fail(fmt.Errorf("push: %w", err))
		return
	}
	for _, res := range []uint16{fwResState, fwResResult} {
		ctx, cancel := context.WithTimeout(f.ctx, f.s.cfg.RequestTimeout)
		resp, err := f.s.Read(ctx, f.ep, lwm2m.P(5, 0, res), lwm2m.FormatText)
		cancel()
		if v, ok := intValue(resp); ok && err == nil {
			f.setValue(res, v, true)
		}
	}
}

// evaluate moves the update on from the device's last State and Update
// Result.
func (f *FOTA) evaluate() {
	st := f.Status()
	if st.Final {
		return
	}
	if f.resultFresh {
		switch {
		case st.Result == fwResultDeferred:
			if st.Phase != FOTADeferred {
				f.setPhase(FOTADeferred)
			}
			return
		case st.Result > fwResultSuccess && (st.State == fwStateIdle || st.State == fwStateDownloaded):
			f.finish(FOTAFailed, &FOTAError{Endpoint: f.ep, Result: st.Result})
			return
		}
	}
	switch st.Phase {
	case FOTADownloading:
		if f.stateFresh && st.State == fwStateDownloaded {
			if f.req.DownloadOnly {
				f.finish(FOTADownloaded, nil)
				return
			}
			f.setPhase(FOTADownloaded)
			f.execute()
		}
	case FOTAUpdating, FOTADeferred:
		if f.stateFresh && f.resultFresh && st.State == fwStateIdle && st.Result == fwResultSuccess {
			f.finish(FOTADone, nil)
		}
	}
}

// execute executes Update /5/0/2. Values from before it no longer count.
func (f *FOTA) execute() {
	f.stateFresh, f.resultFresh = false, false
	f.setPhase(FOTAUpdating)
	ctx, cancel := context.WithTimeout(f.ctx, f.s.cfg.RequestTimeout)
	defer cancel()
	_, err := f.s.Execute(ctx, f.ep, fwUpdate, "")
	var ce *CodeError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		f.fail(fmt.Errorf("execute update: %w", err))
	case f.ctx.Err() != nil:
		// Ended meanwhile; run reports why.
	default:
		// The device may have restarted before it answered.
		f.s.log.Warn("firmware update: no answer to execute; waiting for the device to report", "ep", f.ep, "id", f.id, "err", err)
	}
}

// Block-wise transfer parameters (RFC 7252 §4.8).
const (
	ackTimeout      = 2 * time.Second
	maxRetransmit   = 4
	maxPushRestarts = 3 // starts over after 4.08 or 4.13
)

// push sends the image to Package /5/0/0 in a block-wise PUT (RFC 7959
// §2.5), reading one block at a time from the file.
//
// The requests bypass go-coap's block-wise layer, which would take the
// device's 2.31 answers to blocks it has not sent: each is a confirmable
// message written to the session, retransmitted by push itself, with the
// same token throughout; fotaTable.takeResponse hands it the answers.
func (f *FOTA) push() error {
	file, img, err := f.s.fw.open(f.req.Image)
	if err != nil {
		return err
	}
	defer file.Close()
	f.update(func(st *FOTAStatus) { st.Total, st.Bytes = img.size, 0 })
	_, cc, root, err := f.s.target(f.ep)
	if err != nil {
		return err
	}
	token, err := message.GetToken()
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	x := &transfer{addr: addrString(cc.RemoteAddr()), resp: make(chan blockResponse, 4)}
	f.s.fotas.addTransfer(token, x)
	defer f.s.fotas.removeTransfer(token)
	path := pathString(root, fwPackage)

	szx := blockwise.SZX1024
	var off int64
	restarts := 0
	buf := make([]byte, szx.Size())
	for {
		size := szx.Size()
		num := off / size
		n := min(size, img.size-off)
		if got, err := file.ReadAt(buf[:n], off); int64(got) < n {
			return fmt.Errorf("read %s at %d: %w", img.name, off, err)
		}
		more := off+n < img.size
		r, err := x.send(f.ctx, cc, token, path, buf[:n], szx, num, more, img.size)
		if err != nil {
			return err
		}
		switch {
		case more && (r.code == codes.Continue || success(r.code)):
			// RFC 7959 §2.3: the server may ask for smaller blocks in its
			// answer; the next block number counts in the new size the
			// bytes sent so far (§2.5, Figure 6).
			if rszx, ok := r.szx(); ok && rszx < szx {
				szx = rszx
			}
			off += n
			f.update(func(st *FOTAStatus) { st.Bytes = off })
		case !more && success(r.code) && r.code != codes.Continue:
			f.update(func(st *FOTAStatus) { st.Bytes = img.size })
			f.s.log.Info("firmware pushed", "ep", f.ep, "id", f.id, "bytes", img.size)
			return nil
		case r.code == codes.RequestEntityIncomplete || r.code == codes.RequestEntityTooLarge:
			restarts++
			if restarts > maxPushRestarts {
				return &CodeError{Op: "push", Path: fwPackage, Code: r.code}
			}
			if r.code == codes.RequestEntityTooLarge {
				// RFC 7959 §2.9.3: a Block1 option in a 4.13 gives the
				// block size the server can take.
				rszx, ok := r.szx()
				switch {
				case ok && rszx < szx:
					szx = rszx
				case szx > blockwise.SZX16:
					szx--
				default:
					return &CodeError{Op: "push", Path: fwPackage, Code: r.code}
				}
			}
			f.s.log.Info("firmware push starts over", "ep", f.ep, "id", f.id, "code", codeString(r.code), "block_size", szx.Size())
			off = 0
			f.update(func(st *FOTAStatus) { st.Bytes = 0 })
		default:
			return &CodeError{Op: "push", Path: fwPackage, Code: r.code}
		}
	}
}

// transfer is a block-wise push waiting for its answers.
type transfer struct {
	addr string // the device's address
	resp chan blockResponse
}

// blockResponse is what push needs of an answer to a block.
type blockResponse struct {
	typ       message.Type
	mid       int32
	code      codes.Code
	block1    uint32
	hasBlock1 bool
}

// szx returns the block size of the answer's Block1 option.
func (r blockResponse) szx() (blockwise.SZX, bool) {
	if !r.hasBlock1 {
		return 0, false
	}
	szx, _, _, err := blockwise.DecodeBlockOption(r.block1)
	return szx, err == nil && szx <= blockwise.SZX1024
}

// send sends block num of a PUT to path as a confirmable message, and
// retransmits it (RFC 7252 §4.2) until an answer comes.
func (x *transfer) send(ctx context.Context, cc *udpclient.Conn, token message.Token, path string, payload []byte,
	szx blockwise.SZX, num int64, more bool, total int64) (blockResponse, error) {
	block, err := blockwise.EncodeBlockOption(szx, num, more)
	if err != nil {
		return blockResponse{}, fmt.Errorf("block %d: %w", num, err)
	}
	req := cc.AcquireMessage(ctx)
	defer cc.ReleaseMessage(req)
	mid := cc.GetMessageID()
	req.SetType(message.Confirmable)
	req.SetMessageID(mid)
	req.SetCode(codes.PUT)
	req.SetToken(token)
	if err := req.SetPath(path); err != nil {
		return blockResponse{}, fmt.Errorf("path %s: %w", path, err)
	}
	req.SetContentFormat(message.AppOctets)
	req.SetOptionUint32(message.Block1, block)
	if num == 0 && total <= math.MaxUint32 {
		// RFC 7959 §4: Size1 tells the server the size of the whole body.
		req.SetOptionUint32(message.Size1, uint32(total))
	}
	req.SetBody(bytes.NewReader(payload))

	timeout := ackTimeout + rand.N(ackTimeout/2) // ACK_RANDOM_FACTOR 1.5
	for attempt := 0; ; attempt++ {
		if err := cc.Session().WriteMessage(req); err != nil {
			return blockResponse{}, fmt.Errorf("send block %d: %w", num, err)
		}
		timer := time.NewTimer(timeout)
		r, ok, err := x.await(ctx, timer.C, mid, num)
		timer.Stop()
		if ok || err != nil {
			return r, err
		}
		if attempt == maxRetransmit {
			return blockResponse{}, fmt.Errorf("block %d: no answer after %d transmissions", num, attempt+1)
		}
		timeout *= 2
	}
}

// await waits for the answer to block num sent as message mid, until
// timeout fires (ok false) or ctx ends.
func (x *transfer) await(ctx context.Context, timeout <-chan time.Time, mid int32, num int64) (blockResponse, bool, error) {
	for {
		select {
		case r := <-x.resp:
			if r.typ == message.Acknowledgement && r.mid != mid {
				continue // the answer to an earlier message
			}
			if r.typ != message.Acknowledgement && r.hasBlock1 {
				if _, rnum, _, err := blockwise.DecodeBlockOption(r.block1); err != nil || rnum != num {
					continue
				}
			}
			return r, true, nil
		case <-timeout:
			return blockResponse{}, false, nil
		case <-ctx.Done():
			return blockResponse{}, false, context.Cause(ctx)
		}
	}
}

// fotaTable holds the server's firmware updates and routes the answers to
// their block-wise transfers.
type fotaTable struct {
	// ctx ends when the server closes; the updates' contexts derive from
	// it.
	ctx   context.Context
	close context.CancelCauseFunc

	mu     sync.Mutex
	byID   map[string]*FOTA
	active map[string]*FOTA // under way, by endpoint
	ended  []*FOTA          // the latest ended, oldest first
	xfers  map[string]*transfer
	closed bool
	wg     sync.WaitGroup // the goroutines of the updates
}

// maxEndedFOTAs is how many ended updates the server remembers.
const maxEndedFOTAs = 64

func (t *fotaTable) init() {
	t.ctx, t.close = context.WithCancelCause(context.Background())
	t.byID = make(map[string]*FOTA)
	t.active = make(map[string]*FOTA)
	t.xfers = make(map[string]*transfer)
}

// add gives f an ID and makes it the update under way of its endpoint.
func (t *fotaTable) add(f *FOTA) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return ErrClosed
	case t.active[f.ep] != nil:
		return fmt.Errorf("%w: %q (%s)", ErrFOTABusy, f.ep, t.active[f.ep].id)
	}
	f.id = randomID(func(id string) bool { _, ok := t.byID[id]; return ok })
	t.byID[f.id] = f
	t.active[f.ep] = f
	t.wg.Add(1)
	return nil
}

// remove forgets f, which never ran.
func (t *fotaTable) remove(f *FOTA) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byID, f.id)
	if t.active[f.ep] == f {
		delete(t.active, f.ep)
	}
	t.wg.Done()
}

// retire moves f, which ended, from the updates under way to the ended
// ones.
func (t *fotaTable) retire(f *FOTA) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active[f.ep] == f {
		delete(t.active, f.ep)
	}
	t.ended = append(t.ended, f)
	if len(t.ended) > maxEndedFOTAs {
		delete(t.byID, t.ended[0].id)
		t.ended = t.ended[1:]
	}
}

// stop ends every update with ErrClosed and waits for their goroutines.
func (t *fotaTable) stop() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.close(ErrClosed)
	t.wg.Wait()
}

func (t *fotaTable) addTransfer(token message.Token, x *transfer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.xfers[string(token)] = x
}

func (t *fotaTable) removeTransfer(token message.Token) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.xfers, string(token))
}

// takeResponse hands m to the transfer whose token it carries, and
// reports whether there was one (it then owns m). A confirmable (separate)
// answer gets its empty ACK here.
func (t *fotaTable) takeResponse(m *pool.Message, cc *udpclient.Conn) bool {
	if len(m.Token()) == 0 {
		return false
	}
	t.mu.Lock()
	x := t.xfers[string(m.Token())]
	t.mu.Unlock()
	if x == nil || x.addr != addrString(cc.RemoteAddr()) {
		return false
	}
	r := blockResponse{typ: m.Type(), mid: m.MessageID(), code: m.Code()}
	if v, err := m.GetOptionUint32(message.Block1); err == nil {
		r.block1, r.hasBlock1 = v, true
	}
	select {
	case x.resp <- r:
	default: // a duplicate nobody waits for
	}
	if m.Type() == message.Confirmable {
		ack := cc.AcquireMessage(cc.Context())
		ack.SetType(message.Acknowledgement)
		ack.SetCode(codes.Empty)
		ack.SetToken(nil)
		ack.SetMessageID(m.MessageID())
		_ = cc.Session().WriteMessage(ack)
		cc.ReleaseMessage(ack)
	}
	cc.ReleaseMessage(m)
	return true
}

// httpServed records status, the server's answer to an HTTP GET of image
// name from remote, in the pulls over http of that image by that host.
func (t *fotaTable) httpServed(name, remote string, status int) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil || status == 0 {
		return
	}
	var fs []*FOTA
	t.mu.Lock()
	for _, f := range t.active {
		if f.req.Protocol == "http" && f.req.Image == name && f.devHost == host {
			fs = append(fs, f)
		}
	}
	t.mu.Unlock()
	for _, f := range fs {
		f.update(func(st *FOTAStatus) { st.HTTPStatus = status })
	}
}

// fotaRequestJSON is the body of POST /api/clients/{ep}/fota.
type fotaRequestJSON struct {
	Image    string `json:"image"`
	Method   string `json:"method"`   // "pull" (default) or "push"
	Protocol string `json:"protocol"` // pull: "coap", "coaps" or "http"; default as FOTARequest.Protocol
	Update   *bool  `json:"update"`   // execute /5/0/2 once downloaded; default true
	Timeout  int64  `json:"timeout"`  // seconds; 0: DefaultFOTATimeout
}

// fotaJSON is a FOTAStatus in the HTTP API.
type fotaJSON struct {
	ID         string    `json:"id"`
	Endpoint   string    `json:"endpoint"`
	Image      string    `json:"image"`
	Method     string    `json:"method"`
	Protocol   string    `json:"protocol,omitempty"`
	URI        string    `json:"uri,omitempty"`
	Phase      string    `json:"phase"`
	State      int       `json:"state"`
	StateName  string    `json:"state_name"`
	Result     int       `json:"result"`
	ResultText string    `json:"result_text"`
	Bytes      int64     `json:"bytes"`
	Total      int64     `json:"total"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Final      bool      `json:"final"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
}

func toFOTAJSON(st FOTAStatus) fotaJSON {
	return fotaJSON{
		ID: st.ID, Endpoint: st.Endpoint, Image: st.Image, Method: string(st.Method), Protocol: st.Protocol,
		URI: st.URI, Phase: string(st.Phase), State: st.State, StateName: FirmwareStateName(st.State),
		Result: st.Result, ResultText: UpdateResultText(st.Result), Bytes: st.Bytes, Total: st.Total,
		HTTPStatus: st.HTTPStatus, Error: st.Error, Final: st.Final, Started: st.Started, Updated: st.Updated,
	}
}

// apiStartFOTA serves POST /api/clients/{ep}/fota: 202 Accepted with the
// status and a Location header naming the update.
func (s *Server) apiStartFOTA(w http.ResponseWriter, r *http.Request) {
	var body fotaRequestJSON
	if err := decodeBody(w, r, &body); err != nil {
		s.apiError(w, err)
		return
	}
	if body.Timeout < 0 {
		s.apiError(w, badInput("bad timeout %d", body.Timeout))
		return
	}
	req := FOTARequest{
		Image:        body.Image,
		Method:       FOTAMethod(body.Method),
		Protocol:     body.Protocol,
		DownloadOnly: body.Update != nil && !*body.Update,
		Timeout:      time.Duration(body.Timeout) * time.Second,
	}
	ep := r.PathValue("ep")
	ctx, cancel := s.opContext(r)
	defer cancel()
	f, err := s.StartFOTA(ctx, ep, req)
	if err != nil {
		s.fotaAPIError(w, err)
		return
	}
	w.Header().Set("Location", "/api/clients/"+url.PathEscape(ep)+"/fota/"+f.ID())
	s.writeJSON(w, http.StatusAccepted, toFOTAJSON(f.Status()))
}

// fotaAPIError is firmwareAPIError, but with 400 for every error in the
// request, an unknown image included.
func (s *Server) fotaAPIError(w http.ResponseWriter, err error) {
	var ie *inputError
	if errors.As(err, &ie) {
		s.apiError(w, err)
		return
	}
	s.firmwareAPIError(w, err)
}

// apiFOTA returns update id of ep for the HTTP API.
func (s *Server) apiFOTA(r *http.Request) (*FOTA, error) {
	ep, id := r.PathValue("ep"), r.PathValue("id")
	f, ok := s.FOTAByID(id)
	if !ok || f.ep != ep {
		return nil, fmt.Errorf("%w: %q on %q", errUnknownFOTA, id, ep)
	}
	return f, nil
}

// apiFOTAStatus serves GET /api/clients/{ep}/fota/{id}.
func (s *Server) apiFOTAStatus(w http.ResponseWriter, r *http.Request) {
	f, err := s.apiFOTA(r)
	if err != nil {
		s.firmwareAPIError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, toFOTAJSON(f.Status()))
}

// apiCancelFOTA serves DELETE /api/clients/{ep}/fota/{id}: it cancels the
// update and answers with its final status.
func (s *Server) apiCancelFOTA(w http.ResponseWriter, r *http.Request) {
	f, err := s.apiFOTA(r)
	if err != nil {
		s.firmwareAPIError(w, err)
		return
	}
	f.Cancel()
	ctx, cancel := s.opContext(r)
	defer cancel()
	st, _ := f.Wait(ctx)
	s.writeJSON(w, http.StatusOK, toFOTAJSON(st))
}

// apiFOTAEvents streams an update's statuses as Server-Sent Events: one
// event of the default type per change, the current status first, with a
// fotaJSON as data; after the final status, an event of type "end" with
// the final status again. Any number of streams may read an update.
func (s *Server) apiFOTAEvents(w http.ResponseWriter, r *http.Request) {
	f, err := s.apiFOTA(r)
	if err != nil {
		s.firmwareAPIError(w, err)
		return
	}
	updates, stop := f.Watch()
	defer stop()

	stream, ok := s.startEventStream(w)
	if !ok {
		return
	}
	send := func(event string, v any) bool { return stream(event, "", v) }
	for {
		select {
		case st, ok := <-updates:
			if !ok {
				return
			}
			out := toFOTAJSON(st)
			if !send("", out) {
				return
			}
			if st.Final {
				send("end", out)
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
