package agent

import (
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/senml"
)

// CoAP methods of RFC 8132 used by the composite operations.
const (
	codeFETCH  codes.Code = 5
	codeIPATCH codes.Code = 7
)

// decodePaths reads a composite request's path list in its content
// format (SenML-JSON or SenML-CBOR).
func decodePaths(m *message.Message) ([]lwm2m.Path, lwm2m.ContentFormat, *message.Message) {
	cf, ok := uintOpt(m, message.ContentFormat)
	var paths []lwm2m.Path
	var err error
	switch f := lwm2m.ContentFormat(cf); {
	case !ok:
		return nil, 0, reply(codes.BadRequest)
	case f == lwm2m.FormatSenMLJSON:
		paths, err = senml.DecodePathsJSON(m.Payload)
	case f == lwm2m.FormatSenMLCBOR:
		paths, err = senml.DecodePathsCBOR(m.Payload)
	default:
		return nil, 0, reply(codes.UnsupportedMediaType)
	}
	if err != nil {
		return nil, 0, reply(codes.BadRequest)
	}
	return paths, lwm2m.ContentFormat(cf), nil
}

// collectPaths returns the records readable at every path; paths that do
// not exist contribute nothing. It answers 4.04 when nothing is readable
// and 4.01 for the Security object.
func (e *Engine) collectPaths(now time.Time, paths []lwm2m.Path) ([]lwm2m.Record, *message.Message) {
	var recs []lwm2m.Record
	seen := map[lwm2m.Path]bool{}
	for _, p := range paths {
		if p.Obj() == 0 {
			return nil, reply(codes.Unauthorized)
		}
		got, errResp := e.collect(now, p)
		if errResp != nil && errResp.Code == codes.Unauthorized {
			// Access control: a path the server may not read refuses
			// the whole operation (acl.go).
			return nil, errResp
		}
		if errResp != nil {
			continue
		}
		for _, r := range got {
			if !seen[r.Path] {
				seen[r.Path] = true
				recs = append(recs, r)
			}
		}
	}
	if len(recs) == 0 {
		return nil, reply(codes.NotFound)
	}
	return recs, nil
}

// fetch answers Read-Composite and Observe-Composite: a FETCH on the root
// whose payload lists paths (Core TS 1.1 §6.3.2, §6.4.2). The answer is
// in the Accept format, or in the request's format when there is none.
func (e *Engine) fetch(now time.Time, peer string, p lwm2m.Path, m *message.Message) *message.Message {
	if p.Len != 0 {
		return reply(codes.MethodNotAllowed)
	}
	paths, format, errResp := decodePaths(m)
	if errResp != nil {
		return errResp
	}
	if acc, ok := uintOpt(m, message.Accept); ok {
		format = lwm2m.ContentFormat(acc)
	}
	if format != lwm2m.FormatSenMLJSON && format != lwm2m.FormatSenMLCBOR {
		return reply(codes.NotAcceptable)
	}
	obs, observing := uintOpt(m, message.Observe)
	if observing && obs == 1 {
		e.obs.cancel(peer, m.Token)
	}
	recs, errResp := e.collectPaths(now, paths)
	if errResp != nil {
		return errResp
	}
	payload, err := e.encodeRecords(lwm2m.Path{}, format, recs)
	if err != nil {
		e.logWarn("encode composite read", "err", err)
		return reply(codes.InternalServerError)
	}
	resp := replyContent(format, payload)
	if observing && obs == 0 {
		e.obs.observeComposite(now, peer, paths, m, resp)
	}
	e.emit(Event{Kind: EventRead, Path: "/"})
	return resp
}

// writeComposite answers Write-Composite: an iPATCH on the root carrying
// values for resources of several instances (Core TS 1.1 §6.3.3). Either
// every value is written or none.
func (e *Engine) writeComposite(now time.Time, p lwm2m.Path, m *message.Message) *message.Message {
	if p.Len != 0 {
		return reply(codes.MethodNotAllowed)
	}
	cf, ok := uintOpt(m, message.ContentFormat)
	var recs []lwm2m.Record
	var err error
	switch f := lwm2m.ContentFormat(cf); {
	case !ok:
		return reply(codes.BadRequest)
	case f == lwm2m.FormatSenMLJSON:
		recs, err = senml.DecodeJSON(lwm2m.Path{}, m.Payload, e.typeOf)
	case f == lwm2m.FormatSenMLCBOR:
		recs, err = senml.DecodeCBOR(lwm2m.Path{}, m.Payload, e.typeOf)
	default:
		return reply(codes.UnsupportedMediaType)
	}
	if err != nil {
		return reply(codes.BadRequest)
	}
	ws, errResp := e.checkWrites(now, recs)
	if errResp != nil {
		return errResp
	}
	e.applyWrites(now, ws, false)
	for _, w := range ws {
		e.emit(Event{Kind: EventWrite, Path: w.r.Path.String()})
	}
	return reply(codes.Changed)
}
