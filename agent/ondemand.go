package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The native driver in on-demand mode (ControlConfig.OnDemand): the
// engine runs from Run's start, its timers (the polling timer, the retry
// timers, deferred agreements) included, and the link to the server, the
// socket and for coaps the DTLS session, exists only while the engine
// needs it (Engine.NeedsLink). The driver decides nothing: it opens the
// link when the engine wants it, reports how that went (CmdLink), and
// closes it when the engine is done.

// errLinkIdle ends loopSession on demand: the engine no longer needs the
// link.
var errLinkIdle = errors.New("agent: link no longer needed")

// runOnDemand is Run in on-demand mode.
func (a *Agent) runOnDemand(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer a.fetch.stop()
	for {
		e := a.engine
		next := e.Step(time.Now())
		restart, _, _ := a.flushEvents()
		if restart {
			if err := a.restartEngine(); err != nil {
				return err
			}
			continue
		}
		if e.NeedsLink() {
			if err := a.linkSession(ctx); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case req := <-a.cmds:
			a.serve(req)
		case m := <-a.fetch.msgs:
			m.done <- e.deliverFetch(time.Now(), m)
		case <-timer.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// serve answers one command outside loopSession.
func (a *Agent) serve(req cmdReq) {
	if in, ok := req.cmd.(cmdInspect); ok {
		in.fn(a.engine)
		req.done <- nil
		return
	}
	req.done <- a.engine.HandleCommand(time.Now(), req.cmd)
}

// restartEngine replaces the engine from the stored state, as after a
// reboot (EventRestart).
func (a *Agent) restartEngine() error {
	a.log.Info("restarting the engine")
	a.fetch.stop()
	ne, err := replaceEngine(time.Now(), a.cfg, a.state, a.engine)
	if err != nil {
		return fmt.Errorf("agent: restart: %w", err)
	}
	a.engine = ne
	return nil
}

// tellLink reports a link phase to the engine and forwards what follows.
func (a *Agent) tellLink(phase LinkPhase, why string) {
	if err := a.engine.HandleCommand(time.Now(), CmdLink{Phase: phase, Err: why}); err != nil {
		a.log.Warn("link report refused", "err", err)
	}
	a.flushEvents()
}

// linkSession opens the link, serves the engine over it until the engine
// no longer needs it (nil), and returns. A link that cannot be opened is
// reported to the engine, which decides when to try again. Over DTLS a
// lost session is replaced: a new handshake, and the engine registers
// anew from its stored state.
func (a *Agent) linkSession(ctx context.Context) error {
	for {
		// The engine names the server (after a bootstrap, another one).
		a.target = a.engine.Target()
		secure := a.target.Secure
		var p port
		if strings.HasPrefix(a.target.Peer, DTLSPeerPrefix) {
			// Several servers, the first over coaps: a UDP socket for
			// the coap ones, and a DTLS session beside it for each
			// coaps one (withSide); the engine hears how each
			// handshake went.
			a.tellLink(LinkAuthStarted, "")
			udp, err := a.listenPlain()
			if err != nil {
				a.log.Warn("cannot open the link", "server_uri", a.target.URI, "err", err)
				a.tellLink(LinkFailed, err.Error())
				return nil
			}
			p = udp
		} else if secure {
			a.tellLink(LinkAuthStarted, "")
			sp, err := a.handshake(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				a.log.Warn("dtls handshake failed", "server_uri", a.target.URI, "err", err)
				a.tellLink(LinkAuthFailed, err.Error())
				return nil
			}
			p = sp
		} else {
			udp, err := ListenUDP(a.target.Peer)
			if err != nil {
				a.log.Warn("cannot open the link", "server_uri", a.target.URI, "err", err)
				a.tellLink(LinkFailed, err.Error())
				return nil
			}
			p = udp
		}
		port := a.withSide(p)
		a.setPort(port)
		registered := false
		err := a.loopSession(ctx, port, &registered)
		port.Close()
		a.setPort(nil)
		switch {
		case errors.Is(err, errLinkIdle):
			return nil
		case errors.Is(err, errRetarget):
			continue // a link to the server the engine names now
		case errors.Is(err, errNewSession) && !registered:
			// No registration went through this DTLS session: the
			// engine's retry policy says when to try again.
			a.log.Warn("no registration over the dtls session", "server_uri", a.cfg.ServerURI, "why", err)
			return nil
		case errors.Is(err, errNewSession):
			// The DTLS session is lost: a new engine registers anew
			// over the next one, if the old one had a session.
			a.log.Info("dtls session lost", "server_uri", a.cfg.ServerURI, "why", err)
			started := a.engine.reg.started
			ne, rerr := replaceEngine(time.Now(), a.cfg, a.state, a.engine)
			if rerr != nil {
				return fmt.Errorf("agent: new session: %w", rerr)
			}
			a.engine = ne
			if started {
				if err := ne.HandleCommand(time.Now(), CmdStart{}); err != nil && !errors.Is(err, ErrDuplicate) {
					return err
				}
			}
			a.flushEvents()
			if !ne.NeedsLink() {
				return nil
			}
		default:
			return err
		}
	}
}

// handshake runs the DTLS handshake while answering commands, so that a
// host is never kept waiting by it.
func (a *Agent) handshake(ctx context.Context) (*SecurePort, error) {
	hctx, cancel := context.WithTimeout(ctx, a.cfg.handshakeTimeout())
	defer cancel()
	type result struct {
		sp  *SecurePort
		err error
	}
	done := make(chan result, 1)
	peer := a.target.Peer
	cred := DTLSCredentials{PSKIdentity: a.target.PSKIdentity, PSKKey: a.target.PSKKey}
	if a.target.Certificate {
		cred = a.cred
	}
	go func() {
		sp, err := OpenSecureWith(hctx, peer, cred)
		done <- result{sp, err}
	}()
	for {
		select {
		case r := <-done:
			return r.sp, r.err
		case req := <-a.cmds:
			a.serve(req)
			a.flushEvents()
		}
	}
}
