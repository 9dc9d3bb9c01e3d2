package server

import (
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/senml"
)

// handleSend receives the LwM2M Send operation (Core TS 1.1 §6.4.3): a
// registered client POSTs values to /dp as SenML-CBOR or SenML-JSON. The
// values are published as an EventSend. A client that is not registered
// gets 4.04; a payload that does not decode gets 4.00.
func (s *Server) handleSend(w mux.ResponseWriter, r *mux.Message) {
	if r.Code() != codes.POST {
		s.respond(w, codes.MethodNotAllowed, "")
		return
	}
	cf, err := r.Options().ContentFormat()
	if err != nil {
		s.respond(w, codes.BadRequest, "no content format")
		return
	}
	body, err := r.ReadBody()
	if err != nil {
		s.respond(w, codes.BadRequest, err.Error())
		return
	}
	var recs []lwm2m.Record
	switch lwm2m.ContentFormat(cf) {
	case lwm2m.FormatSenMLCBOR:
		recs, err = senml.DecodeCBOR(lwm2m.Path{}, body, typeOf)
	case lwm2m.FormatSenMLJSON:
		recs, err = senml.DecodeJSON(lwm2m.Path{}, body, typeOf)
	default:
		s.respond(w, codes.UnsupportedMediaType, "")
		return
	}
	if err != nil {
		s.respond(w, codes.BadRequest, err.Error())
		return
	}
	addr := w.Conn().RemoteAddr()
	now := time.Now()
	s.mu.Lock()
	var reg *registration
	for _, cand := range s.byID {
		if addrString(cand.info.Addr) == addrString(addr) {
			reg = cand
			break
		}
	}
	if reg == nil {
		s.mu.Unlock()
		s.respond(w, codes.NotFound, "not registered")
		return
	}
	ev := reg.event(EventSend, now)
	ev.Records = recs
	s.events.publish(ev)
	s.log.Info("send", "ep", reg.info.Endpoint, "values", len(recs))
	s.mu.Unlock()
	s.respond(w, codes.Changed, "")
}
