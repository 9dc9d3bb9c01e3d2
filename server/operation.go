package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/linkformat"
	"github.com/avc-agent/avc/lwm2m/senml"
	"github.com/avc-agent/avc/lwm2m/text"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// Response is a client's answer to an operation.
type Response struct {
	Code          codes.Code          // CoAP response code, e.g. codes.Content (2.05)
	ContentFormat lwm2m.ContentFormat // lwm2m.FormatNone when the answer has none
	Payload       []byte              // the raw payload
	// Records holds the decoded payload of a Read: for TLV and SenML JSON
	// at any depth, for text/plain and opaque for a single resource. It is
	// nil for other content formats and other operations.
	Records []lwm2m.Record
	// Location is the Location-Path of the answer ("/3303/1" for a
	// Create), empty when it has none.
	Location string
}

// Read reads the object, instance, resource or resource instance at p on
// the client registered as ep (Core TS 1.1 §6.3.1), asking for content
// format accept (lwm2m.FormatNone: no Accept option, the client chooses).
//
// # Notes
//
//   - A non-2.xx answer returns the Response together with a *CodeError.
//   - A payload that cannot be decoded returns the Response (without
//     Records) together with the decoding error.
//   - Resource types come from the server's table of the Security,
//     Server and Device objects; other resources decode as opaque from TLV
//     and as strings from text/plain.
func (s *Server) Read(ctx context.Context, ep string, p lwm2m.Path, accept lwm2m.ContentFormat) (*Response, error) {
	resp, err := s.exchange(ctx, ep, request{op: "read", method: codes.GET, path: p, accept: accept})
	if err != nil {
		return resp, err
	}
	recs, err := decodeRecords(p, resp.ContentFormat, resp.Payload)
	if err != nil {
		return resp, fmt.Errorf("server: read %s on %q: decode %s: %w", p, ep, resp.ContentFormat, err)
	}
	resp.Records = recs
	return resp, nil
}

// Write replaces the value(s) at p on the client registered as ep with
// recs, sent with a PUT in content format format (Core TS 1.1 §6.3.3,
// "Replace").
//
// # Notes
//
//   - text/plain and opaque need p to be a resource or resource instance
//     and recs to be exactly one record at p; the value is encoded with
//     lwm2m/text (or sent raw for opaque). TLV and SenML JSON take any
//     number of records below p.
//   - A value whose type differs from the resource type in the server's
//     table is converted when that loses nothing (an integer 5 for a
//     float resource), and refused otherwise.
//   - Errors in the request wrap ErrFormat, ErrBadPath or a value error;
//     a non-2.xx answer returns the Response with a *CodeError.
func (s *Server) Write(ctx context.Context, ep string, p lwm2m.Path, format lwm2m.ContentFormat, recs []lwm2m.Record) (*Response, error) {
	payload, err := encodeRecords(p, format, recs)
	if err != nil {
		return nil, fmt.Errorf("server: write %s on %q: %w", p, ep, err)
	}
	return s.exchange(ctx, ep, request{op: "write", method: codes.PUT, path: p, format: format, payload: payload})
}

// Execute executes the resource at p on the client registered as ep, with
// args as the text/plain argument list when not empty (Core TS 1.1 §6.3.5;
// arguments look like `0='ab',1`).
func (s *Server) Execute(ctx context.Context, ep string, p lwm2m.Path, args string) (*Response, error) {
	if p.Len != 3 {
		return nil, fmt.Errorf("server: execute %s on %q: %w", p, ep, &inputError{ErrBadPath})
	}
	var payload []byte
	format := lwm2m.FormatNone
	if args != "" {
		payload, format = []byte(args), lwm2m.FormatText
	}
	return s.exchange(ctx, ep, request{op: "execute", method: codes.POST, path: p, format: format, payload: payload})
}

// Discover asks the client registered as ep which objects, instances and
// resources exist below p and their attributes (Core TS 1.1 §6.3.4): a GET
// with Accept application/link-format. It returns the parsed links and the
// raw response; a non-2.xx answer returns the Response with a *CodeError.
func (s *Server) Discover(ctx context.Context, ep string, p lwm2m.Path) ([]linkformat.Link, *Response, error) {
	resp, err := s.exchange(ctx, ep, request{op: "discover", method: codes.GET, path: p, accept: lwm2m.FormatLinkFormat})
	if err != nil {
		return nil, resp, err
	}
	links, err := linkformat.Parse(resp.Payload)
	if err != nil {
		return nil, resp, fmt.Errorf("server: discover %s on %q: %w", p, ep, err)
	}
	return links, resp, nil
}

// request describes one request of the server to a client.
type request struct {
	op      string // the operation, for errors and logs
	method  codes.Code
	path    lwm2m.Path
	accept  lwm2m.ContentFormat // sent unless FormatNone
	format  lwm2m.ContentFormat // of payload
	payload []byte              // sent when not nil
	// prepare, when set, completes the message before it is sent (Observe
	// and Uri-Query options, token). It gets the registration the request
	// goes to; an error stops the request.
	prepare func(m *pool.Message, reg *registration) error
}

// exchange sends one request to ep and waits for its response.
func (s *Server) exchange(ctx context.Context, ep string, r request) (*Response, error) {
	op, p, method, accept := r.op, r.path, r.method, r.accept
	reg, conn, root, err := s.target(ep)
	if err != nil {
		return nil, err
	}
	path := pathString(root, p)
	var body io.ReadSeeker
	if r.payload != nil {
		body = bytes.NewReader(r.payload)
	}
	var req *pool.Message
	switch method {
	case codes.GET:
		req, err = conn.NewGetRequest(ctx, path)
	case codes.PUT:
		req, err = conn.NewPutRequest(ctx, path, message.MediaType(r.format), body)
	case codes.POST:
		req, err = conn.NewPostRequest(ctx, path, message.MediaType(r.format), body)
	case codes.DELETE:
		req, err = conn.NewDeleteRequest(ctx, path)
	case codeFETCH, codeIPATCH:
		// Built as a POST (path, token, payload), then given its method.
		if req, err = conn.NewPostRequest(ctx, path, message.MediaType(r.format), body); err == nil {
			req.SetCode(method)
		}
	default:
		err = fmt.Errorf("method %v", method)
	}
	if err != nil {
		return nil, fmt.Errorf("server: %s %s on %q: %w", op, p, ep, err)
	}
	defer conn.ReleaseMessage(req)
	if accept != lwm2m.FormatNone {
		req.SetAccept(message.MediaType(accept))
	}
	if r.prepare != nil {
		if err := r.prepare(req, reg); err != nil {
			return nil, fmt.Errorf("server: %s %s on %q: %w", op, p, ep, err)
		}
	}
	s.log.Debug("request", "op", op, "ep", ep, "path", path, "method", method.String())

	m, err := conn.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server: %s %s on %q: %w", op, p, ep, err)
	}
	defer conn.ReleaseMessage(m)
	resp := &Response{Code: m.Code(), ContentFormat: lwm2m.FormatNone}
	if cf, err := m.ContentFormat(); err == nil {
		resp.ContentFormat = lwm2m.ContentFormat(cf)
	}
	if loc, err := m.Options().LocationPath(); err == nil && loc != "" {
		resp.Location = "/" + strings.TrimPrefix(loc, "/")
	}
	if resp.Payload, err = m.ReadBody(); err != nil {
		return nil, fmt.Errorf("server: %s %s on %q: read payload: %w", op, p, ep, err)
	}
	s.log.Debug("response", "op", op, "ep", ep, "path", path, "code", codeString(resp.Code), "bytes", len(resp.Payload))
	if !success(resp.Code) {
		return resp, &CodeError{Op: op, Path: p, Code: resp.Code}
	}
	return resp, nil
}

// decodeRecords decodes a Read payload for path p.
func decodeRecords(p lwm2m.Path, cf lwm2m.ContentFormat, payload []byte) ([]lwm2m.Record, error) {
	switch cf {
	case lwm2m.FormatTLV:
		return tlv.Decode(p, payload, typeOf)
	case lwm2m.FormatSenMLJSON:
		return senml.DecodeJSON(p, payload, typeOf)
	case lwm2m.FormatText:
		if p.Len < 3 {
			return nil, fmt.Errorf("%w: text/plain for %s, which is not a resource", ErrFormat, p)
		}
		t := typeOf(p)
		if t == lwm2m.TypeNone {
			t = lwm2m.TypeString
		}
		v, err := text.Decode(payload, t)
		if err != nil {
			return nil, err
		}
		return []lwm2m.Record{{Path: p, Value: v}}, nil
	case lwm2m.FormatOpaque:
		if p.Len < 3 {
			return nil, fmt.Errorf("%w: opaque for %s, which is not a resource", ErrFormat, p)
		}
		return []lwm2m.Record{{Path: p, Value: lwm2m.Opaque(payload)}}, nil
	}
	return nil, nil
}

// encodeRecords encodes the payload of a Write of recs at p. Its errors
// are inputErrors.
func encodeRecords(p lwm2m.Path, format lwm2m.ContentFormat, recs []lwm2m.Record) ([]byte, error) {
	if p.Len < 2 {
		return nil, &inputError{fmt.Errorf("%w: write needs an instance or deeper", ErrBadPath)}
	}
	conv, err := convertRecords(p, recs)
	if err != nil {
		return nil, err
	}
	return encodeConverted(p, format, conv)
}

// convertRecords checks that recs are resources below p and converts
// their values to the types of the server's table where that loses
// nothing.
func convertRecords(p lwm2m.Path, recs []lwm2m.Record) ([]lwm2m.Record, error) {
	conv := make([]lwm2m.Record, len(recs))
	for i, r := range recs {
		if !p.Contains(r.Path) || r.Path.Len < 3 {
			return nil, badInput("%w: record %s is not a resource below %s", ErrBadPath, r.Path, p)
		}
		conv[i] = r
		t := typeOf(r.Path)
		if t == lwm2m.TypeNone || r.Value.Type == t || r.Value.Type == lwm2m.TypeNone {
			continue
		}
		v, err := r.Value.Convert(t)
		if err != nil {
			return nil, &inputError{fmt.Errorf("record %s: %w", r.Path, err)}
		}
		conv[i].Value = v
	}
	return conv, nil
}

// encodeConverted encodes checked records with p as the base path.
func encodeConverted(p lwm2m.Path, format lwm2m.ContentFormat, conv []lwm2m.Record) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	switch format {
	case lwm2m.FormatText, lwm2m.FormatOpaque:
		if p.Len < 3 || len(conv) != 1 || conv[0].Path != p {
			return nil, badInput("%w: %s needs one record at a resource path", ErrFormat, format)
		}
		if format == lwm2m.FormatText {
			b, err = text.Encode(conv[0].Value)
		} else if conv[0].Value.Type != lwm2m.TypeOpaque {
			return nil, badInput("%w: %s value for an opaque write", ErrFormat, conv[0].Value.Type)
		} else {
			b = conv[0].Value.Bytes
		}
	case lwm2m.FormatTLV:
		b, err = tlv.Encode(p, conv)
	case lwm2m.FormatSenMLJSON:
		b, err = senml.EncodeJSON(p, conv)
	case lwm2m.FormatSenMLCBOR:
		b, err = senml.EncodeCBOR(p, conv)
	default:
		return nil, badInput("%w: %s", ErrFormat, format)
	}
	if err != nil {
		return nil, &inputError{err}
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
