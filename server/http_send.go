package server

import (
	"fmt"
	"net/http"
	"time"
)

// sendJSON is one Send operation received from a client, as the send
// stream carries it.
type sendJSON struct {
	Endpoint string       `json:"endpoint"`
	Time     time.Time    `json:"time"`
	Records  []recordJSON `json:"records"`
}

// apiSendEvents: GET /api/clients/{ep}/send/events streams the Send
// operations (POST /dp) of the client registered as ep as Server-Sent
// Events, one "send" event each, until the request ends. A client that is
// not registered answers 404; the stream goes on across its
// re-registrations.
func (s *Server) apiSendEvents(w http.ResponseWriter, r *http.Request) {
	ep := r.PathValue("ep")
	if _, ok := s.Client(ep); !ok {
		s.apiError(w, fmt.Errorf("%w: %q", ErrNotRegistered, ep))
		return
	}
	events, unsubscribe := s.Subscribe()
	defer unsubscribe()
	send, ok := s.startEventStream(w)
	if !ok {
		return
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind != EventSend || ev.Endpoint != ep {
				continue
			}
			recs, err := recordsJSON(ev.Records)
			if err != nil {
				s.log.Debug("cannot render a send", "ep", ep, "err", err)
				continue
			}
			out := sendJSON{Endpoint: ep, Time: ev.Time, Records: recs}
			if !send("send", "", out) {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
