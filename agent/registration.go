package agent

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m/linkformat"
)

// Registration retry policy after a failed Register: the delay starts at
// retryBase and doubles up to retryMax (LwM2M 1.1 §6.2.1.1 suggests an
// exponential back-off starting at 60 s).
const (
	retryBase = 60 * time.Second
	retryMax  = 24 * time.Hour
)

type regState uint8

const (
	regIdle          regState = iota // no session
	regRegistering                   // Register in flight
	regRegistered                    // registered, nothing in flight
	regUpdating                      // Update in flight
	regDeregistering                 // De-register in flight
	regWaiting                       // waiting to retry Register, or disabled
	regBSHoldOff                     // waiting the Client Hold Off Time before a Bootstrap-Request
	regBSRequest                     // Bootstrap-Request in flight
	regBootstrapping                 // bootstrap session: serving the bootstrap server until Bootstrap-Finish
)

// registration is the client side of the LwM2M Registration interface
// (Core TS 1.1 §6.2).
type registration struct {
	e     *Engine
	state regState
	// extra is set for a further DM server's registration (servers.go);
	// acc and srvInst then name its account. The primary registration
	// (Engine.reg) follows Engine.dm and also runs bootstrap.
	extra    bool
	acc      account
	srvInst  uint16
	started  bool
	location string // "/rd/abc" while registered

	sentLifetime uint32 // lifetime the server knows
	sentBinding  string
	sentLinks    string
	updateLinks  string // object list of the Update in flight

	updateAt    time.Time // next Registration Update
	retryAt     time.Time // next Register attempt (regWaiting)
	failures    int       // consecutive Register failures
	wantUpdat   bool      // an update is due once the current exchange ends
	wantDisable bool      // /1/0/4 was executed; act once answered
	disabled    bool      // de-registering for /1/0/4 Disable

	// Bootstrap (bootstrap.go).
	wantBoot    bool      // bootstrap before the next Register (fallback, trigger)
	wantBootNow bool      // /1/x/9 was executed; bootstrap once answered
	bsFinished  bool      // Bootstrap-Finish accepted; commit once answered
	bsDeadline  time.Time // a silent bootstrap session fails at this time
	bsFailures  int       // consecutive failed bootstrap sessions
}

func newRegistration(e *Engine) *registration { return &registration{e: e} }

func (r *registration) start(now time.Time) error {
	if r.started {
		return ErrDuplicate
	}
	r.started = true
	r.failures = 0
	r.register(now)
	r.e.startExtras(now)
	return nil
}

func (r *registration) stop(now time.Time) error {
	if !r.started {
		return ErrDuplicate
	}
	r.started = false
	if !r.extra {
		r.e.stopExtras(now)
	}
	switch r.state {
	case regRegistered, regUpdating:
		r.deregister(now)
	default:
		r.cancelExchanges()
		r.reset()
		r.event(Event{Kind: EventDeregistered})
		if !r.extra {
			r.e.ctl.stopped(now)
		}
	}
	return nil
}

func (r *registration) triggerUpdate(now time.Time) error {
	switch r.state {
	case regRegistered:
		r.update(now)
		return nil
	case regUpdating:
		r.wantUpdat = true
		return nil
	}
	return ErrNotRegistered
}

// linksChanged reports whether the object list differs from what the
// server knows or is being told.
func (r *registration) linksChanged() bool {
	l := r.links()
	if r.state == regUpdating {
		return l != r.updateLinks
	}
	return l != r.sentLinks
}

// bindingQuery returns the binding parameters of Register and Update. In
// LwM2M 1.1 queue mode is its own parameter: binding "UQ" is sent as
// "b=U" and "Q" (Core TS 1.1 §6.2.1, Table 6.2.1-1).
func bindingQuery(b string) []string {
	if base, queue := strings.CutSuffix(b, "Q"); queue {
		return []string{"b=" + base, "Q"}
	}
	return []string{"b=" + b}
}

// busy reports whether an exchange that must finish before the driver
// exits (a De-register) is in flight.
func (r *registration) busy() bool { return r.state == regDeregistering }

func (r *registration) reset() {
	r.e.obs.clearPeer(r.peer())
	r.state = regIdle
	r.location = ""
	r.updateAt, r.retryAt, r.bsDeadline = time.Time{}, time.Time{}, time.Time{}
	r.wantUpdat = false
	r.wantBootNow, r.bsFinished = false, false
}

// links is the registration payload: the object list in link format,
// without the Security object (Core TS 1.1 §6.2.1).
func (r *registration) links() string {
	ls := []linkformat.Link{{Target: "/", Params: []linkformat.Param{{Name: "rt", Value: "oma.lwm2m", Quoted: true}, {Name: "ct", Value: "11542"}}}}
	for _, o := range r.e.objs.list() {
		insts := o.instanceIDs()
		if o.def.id == 0 || (o.def.id == 2 && len(insts) == 0) {
			// Access Control is listed when it is in use (acl.go).
			continue
		}
		var params []linkformat.Param
		if o.def.version != "" && o.def.version != "1.0" {
			params = append(params, linkformat.Param{Name: "ver", Value: o.def.version})
		}
		if len(insts) == 0 {
			ls = append(ls, linkformat.Link{Target: fmt.Sprintf("/%d", o.def.id), Params: params})
			continue
		}
		for i, id := range insts {
			l := linkformat.Link{Target: fmt.Sprintf("/%d/%d", o.def.id, id)}
			if i == 0 {
				l.Params = params
			}
			ls = append(ls, l)
		}
	}
	return string(linkformat.Format(ls))
}

func (r *registration) register(now time.Time) {
	if !r.extra && r.needBootstrap() {
		r.bootstrap(now)
		return
	}
	if !r.extra && !r.e.hasDM {
		_, _, err := r.e.findDM()
		r.e.logWarn("no usable LwM2M server", "err", err)
		r.registerFailed(now, nil)
		return
	}
	r.state = regRegistering
	// A new registration ends every observation (Core TS 1.1 §6.4.1). Do
	// it now rather than on the 2.01: the server may observe as soon as it
	// has registered us, before its answer reaches us.
	r.e.obs.clearPeer(r.peer())
	lt := r.lifetime()
	b := r.binding()
	links := r.links()
	m := &message.Message{Code: codes.POST, Options: make(message.Options, 0, 8)}
	m.Options = addPath(m.Options, "rd")
	m.Options = addUint(m.Options, message.ContentFormat, 40)
	for _, q := range append([]string{
		"ep=" + url.QueryEscape(r.e.cfg.Endpoint),
		"lt=" + strconv.FormatUint(uint64(lt), 10),
		"lwm2m=1.1",
	}, bindingQuery(b)...) {
		m.Options = addString(m.Options, message.URIQuery, q)
	}
	m.Payload = []byte(links)
	r.e.logInfo("registering", "server_uri", r.uri(), "endpoint", r.e.cfg.Endpoint, "lifetime", lt)
	r.e.tr.request(now, r.peer(), m, func(now time.Time, resp *message.Message) {
		if r.state != regRegistering {
			return
		}
		if resp == nil || resp.Code != codes.Created {
			r.registerFailed(now, resp)
			return
		}
		loc := stringOpts(resp, message.LocationPath)
		if len(loc) == 0 {
			r.registerFailed(now, resp)
			return
		}
		r.location = "/" + strings.Join(loc, "/")
		r.state = regRegistered
		r.failures = 0
		if !r.extra && r.e.st.RegFailures != 0 {
			r.e.st.RegFailures = 0
			r.e.store()
		}
		r.sentLifetime, r.sentBinding, r.sentLinks = lt, b, links
		r.scheduleUpdate(now)
		r.e.logInfo("registered", "server_uri", r.uri(), "location", r.location, "lifetime", lt)
		r.event(Event{Kind: EventRegistered, Location: r.location, Lifetime: lt})
		if !r.extra {
			r.e.ctl.registered(now)
			if r.e.fw != nil {
				r.e.fw.registered(now)
			}
		}
		r.e.snd.flush(now)
		r.afterExchange(now)
	})
}

func (r *registration) registerFailed(now time.Time, resp *message.Message) {
	ev := Event{Kind: EventRegistrationFailed, Err: "no response"}
	if resp != nil {
		ev.Code = codeString(resp.Code)
		ev.Err = "server answered " + ev.Code
	}
	r.failedWith(now, ev, retryBase)
}

// failedWith ends a failed Register attempt: ev reports it, and the next
// attempt follows after base, doubling with each consecutive failure up
// to retryMax (or update control's retry table, or the fallback to
// bootstrap, for the primary server).
func (r *registration) failedWith(now time.Time, ev Event, base time.Duration) {
	r.failures++
	if !r.extra && r.fallBack() {
		r.e.emit(ev)
		r.e.logWarn("registration failed; falling back to bootstrap", "server_uri", r.uri(), "err", ev.Err, "failures", r.e.st.RegFailures)
		r.wantBoot = true
		r.bootstrap(now)
		return
	}
	delay := base << min(r.failures-1, 20)
	if delay > retryMax || delay <= 0 {
		delay = retryMax
	}
	if !r.extra && r.e.ctl != nil {
		// Update control: the retry table replaces the back-off; when
		// it is exhausted, retrying stops.
		r.e.emit(ev)
		d, ok := r.e.ctl.registerFailed(now)
		if !ok {
			r.e.logWarn("registration failed; retry timers exhausted", "server_uri", r.uri(), "err", ev.Err)
			r.started = false
			r.reset()
			return
		}
		r.state = regWaiting
		r.location = ""
		r.retryAt = now.Add(d)
		r.e.logWarn("registration failed", "server_uri", r.uri(), "err", ev.Err, "retry_in", d)
		return
	}
	r.state = regWaiting
	r.location = ""
	r.retryAt = now.Add(delay)
	r.e.logWarn("registration failed", "server_uri", r.uri(), "err", ev.Err, "retry_in", delay)
	r.event(ev)
}

// scheduleUpdate arms the Registration Update timer so that the update
// reaches the server before the lifetime expires, leaving room for the
// full CoAP retransmission sequence.
func (r *registration) scheduleUpdate(now time.Time) {
	lt := time.Duration(r.sentLifetime) * time.Second
	margin := max(lt/10, min(MaxTransmitWait, lt/2))
	r.updateAt = now.Add(lt - margin)
}

func (r *registration) update(now time.Time) {
	r.state = regUpdating
	r.wantUpdat = false
	lt, b, links := r.lifetime(), r.binding(), r.links()
	r.updateLinks = links
	m := &message.Message{Code: codes.POST, Options: make(message.Options, 0, 8)}
	m.Options = addPath(m.Options, r.location)
	if lt != r.sentLifetime {
		m.Options = addString(m.Options, message.URIQuery, "lt="+strconv.FormatUint(uint64(lt), 10))
	}
	if b != r.sentBinding {
		for _, q := range bindingQuery(b) {
			m.Options = addString(m.Options, message.URIQuery, q)
		}
	}
	if links != r.sentLinks {
		m.Options = addUint(m.Options, message.ContentFormat, 40)
		m.Payload = []byte(links)
	}
	loc := r.location
	r.e.logDebug("registration update", "server_uri", r.uri(), "location", loc, "lifetime", lt)
	r.e.tr.request(now, r.peer(), m, func(now time.Time, resp *message.Message) {
		if r.state != regUpdating || r.location != loc {
			return
		}
		if resp != nil && resp.Code == codes.Changed {
			r.state = regRegistered
			r.sentLifetime, r.sentBinding, r.sentLinks = lt, b, links
			r.scheduleUpdate(now)
			r.event(Event{Kind: EventUpdated, Location: loc, Lifetime: lt})
			// Back online in queue mode: what was stored goes out now.
			r.e.obs.flush(now)
			r.e.snd.flush(now)
			r.afterExchange(now)
			return
		}
		// 4.04 means the server forgot us; any other failure leaves the
		// registration in doubt. Either way, register again
		// (Core TS 1.1 §6.2.2).
		why := "no response"
		if resp != nil {
			why = "server answered " + codeString(resp.Code)
		}
		r.e.logWarn("registration update failed; registering again", "server_uri", r.uri(), "location", loc, "err", why)
		r.location = ""
		r.register(now)
	})
}

func (r *registration) deregister(now time.Time) {
	r.state = regDeregistering
	loc := r.location
	m := &message.Message{Code: codes.DELETE, Options: make(message.Options, 0, 4)}
	m.Options = addPath(m.Options, loc)
	r.cancelExchanges()
	r.e.logInfo("deregistering", "server_uri", r.uri(), "location", loc)
	r.e.tr.request(now, r.peer(), m, func(now time.Time, resp *message.Message) {
		if r.state != regDeregistering {
			return
		}
		ev := Event{Kind: EventDeregistered, Location: loc}
		if resp == nil {
			ev.Err = "no response"
		} else if resp.Code != codes.Deleted {
			ev.Code = codeString(resp.Code)
		}
		r.deregistered(now, ev)
	})
}

// deregistered ends a De-register, answered or not (ev says which).
func (r *registration) deregistered(now time.Time, ev Event) {
	r.reset()
	if r.started && r.disabled {
		// /1/0/4 Disable: come back after the disable timeout.
		r.state = regWaiting
		r.retryAt = now.Add(r.disableTimeout())
		r.disabled = false
	}
	r.event(ev)
	if !r.extra {
		r.e.ctl.stopped(now)
	}
}

// afterExchange runs work deferred while an exchange was in flight or
// until a server request had been answered.
func (r *registration) afterExchange(now time.Time) {
	if r.wantBootNow {
		// /1/x/9 Bootstrap-Request Trigger: the registration is left
		// as it is (the bootstrap server may replace it) and the
		// client bootstraps.
		r.wantBootNow = false
		r.wantBoot = true
		r.bootstrap(now)
		return
	}
	if r.wantDisable {
		r.wantDisable = false
		r.disable(now)
		return
	}
	if r.wantUpdat && r.state == regRegistered {
		r.update(now)
	}
}

// disable handles an Execute on /1/x/4 of the registration's server: de-register now and register
// again after the disable timeout.
func (r *registration) disable(now time.Time) {
	if r.state == regRegistered || r.state == regUpdating {
		r.disabled = true
		r.deregister(now)
	}
}

// disableTimeout is /1/x/5's default (86400 s).
const disableTimeout = 86400 * time.Second

// disableTimeout is how long the registration stays disabled after
// /1/x/4: the server's /1/x/5.
func (r *registration) disableTimeout() time.Duration {
	if in, ok := r.serverInst(); ok {
		if v, ok := in.value(5); ok && v.Int > 0 {
			return time.Duration(v.Int) * time.Second
		}
	}
	return disableTimeout
}

// fire starts the Registration Update or the Register retry when due.
func (r *registration) fire(now time.Time) {
	switch r.state {
	case regRegistered:
		if !now.Before(r.updateAt) {
			r.update(now)
		}
	case regWaiting:
		if !now.Before(r.retryAt) {
			r.register(now)
		}
	case regBSHoldOff:
		if !now.Before(r.retryAt) {
			r.bootstrapRequest(now)
		}
	case regBootstrapping:
		if !now.Before(r.bsDeadline) {
			r.bootstrapFailed(now, nil, "the bootstrap server went silent before Bootstrap-Finish")
		}
	}
}

// next returns the registration's next deadline (zero when none).
func (r *registration) next() time.Time {
	switch r.state {
	case regRegistered:
		return r.updateAt
	case regWaiting, regBSHoldOff:
		return r.retryAt
	case regBootstrapping:
		return r.bsDeadline
	}
	return time.Time{}
}
