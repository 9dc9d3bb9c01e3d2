package wsrelay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
)

// DefaultMaxDatagram is the default of Relay.MaxDatagram: the largest UDP
// payload over IPv4.
const DefaultMaxDatagram = 65507

// A Relay is an http.Handler that turns each WebSocket session into a UDP
// socket connected to Server. It refuses requests that are not WebSocket
// handshakes, and handshakes from origins other than Origins (when set).
type Relay struct {
	// Server is the UDP address ("host:port") of the LwM2M server every
	// session's socket is connected to. It is resolved for each session.
	Server string

	// MaxDatagram is the largest datagram relayed in either direction; a
	// larger WebSocket message closes the session with status 1009. Zero
	// means DefaultMaxDatagram.
	MaxDatagram int

	// Origins, when not empty, lists the Origin header values (such as
	// "http://localhost:8000") whose pages may open a session. Requests
	// without an Origin header (not from a browser) are always accepted.
	Origins []string

	// MaxSessions, when positive, limits the number of sessions at once;
	// more handshakes are refused with 503.
	MaxSessions int

	// Logger receives a record per session; nil means slog.Default().
	Logger *slog.Logger

	sessions atomic.Int64
}

// Sessions returns the number of sessions now open.
func (rl *Relay) Sessions() int { return int(rl.sessions.Load()) }

func (rl *Relay) logger() *slog.Logger {
	if rl.Logger != nil {
		return rl.Logger
	}
	return slog.Default()
}

func (rl *Relay) maxDatagram() int {
	if rl.MaxDatagram > 0 {
		return rl.MaxDatagram
	}
	return DefaultMaxDatagram
}

func (rl *Relay) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(rl.Origins) == 0 || origin == "" {
		return true
	}
	for _, o := range rl.Origins {
		if o == origin {
			return true
		}
	}
	return false
}

// ServeHTTP accepts a WebSocket session and relays it until either side
// closes it or the request's context ends.
func (rl *Relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, status, reason := checkUpgrade(r)
	if status != 0 {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Upgrade", "websocket")
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, reason, status)
		return
	}
	if !rl.originAllowed(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if n := rl.sessions.Add(1); rl.MaxSessions > 0 && n > int64(rl.MaxSessions) {
		rl.sessions.Add(-1)
		http.Error(w, "too many sessions", http.StatusServiceUnavailable)
		return
	}
	defer rl.sessions.Add(-1)
	raddr, err := net.ResolveUDPAddr("udp", rl.Server)
	if err != nil {
		http.Error(w, "cannot resolve the server", http.StatusBadGateway)
		rl.logger().Warn("relay: resolve", "server", rl.Server, "err", err)
		return
	}
	udp, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		http.Error(w, "cannot open a socket to the server", http.StatusBadGateway)
		rl.logger().Warn("relay: udp socket", "server", raddr, "err", err)
		return
	}
	defer udp.Close()
	ws, err := upgrade(w, key, rl.maxDatagram())
	if err != nil {
		rl.logger().Warn("relay: upgrade", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer ws.nc.Close()
	log := rl.logger().With("remote", r.RemoteAddr, "udp", udp.LocalAddr(), "server", raddr)
	log.Info("relay: session open")
	err = rl.relay(r.Context(), ws, udp)
	log.Info("relay: session closed", "reason", err)
}

// relay moves datagrams until one side ends; it returns why.
func (rl *Relay) relay(ctx context.Context, ws *conn, udp *net.UDPConn) error {
	done := make(chan error, 2)
	go func() { // server → browser
		buf := make([]byte, rl.maxDatagram()+1)
		for {
			n, err := udp.Read(buf)
			if err != nil {
				if isRefused(err) {
					continue // ICMP port unreachable: the server may come back
				}
				done <- fmt.Errorf("udp read: %w", err)
				return
			}
			if n > rl.maxDatagram() {
				continue // truncated: too big to relay
			}
			if err := ws.writeMessage(buf[:n]); err != nil {
				done <- fmt.Errorf("websocket write: %w", err)
				return
			}
		}
	}()
	go func() { // browser → server
		for {
			msg, err := ws.readMessage()
			if err != nil {
				done <- err
				return
			}
			if _, err := udp.Write(msg); err != nil && !isRefused(err) {
				done <- fmt.Errorf("udp write: %w", err)
				return
			}
		}
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	code := uint16(closeNormal)
	var pe *protocolError
	switch {
	case errors.As(err, &pe), errors.Is(err, errPeerClosed):
		// readMessage has answered already
	case errors.Is(err, context.Canceled):
		code = closeGoingAway
	default:
		code = closeInternal
	}
	ws.close(code, "")
	udp.Close()
	ws.nc.Close()
	<-done // the other goroutine ends on the closed sockets
	return err
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
