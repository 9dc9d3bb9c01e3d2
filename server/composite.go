package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/senml"
)

// The methods of RFC 8132 that LwM2M's composite operations use; go-coap
// names no constants for them.
const (
	codeFETCH  codes.Code = 5
	codeIPATCH codes.Code = 7
)

// Create creates an instance of the object at p (an object path) on the
// client registered as ep, with the resource values recs, sent with a POST
// in content format format (Core TS 1.1 §6.3.6). When recs name an
// instance (/3303/4/...) the client is asked for that instance ID;
// otherwise it picks one. It returns the Response and the path of the new
// instance, from the answer's Location-Path.
//
// A non-2.01 answer returns the Response with a *CodeError; errors in the
// request wrap ErrFormat, ErrBadPath or a value error.
func (s *Server) Create(ctx context.Context, ep string, p lwm2m.Path, format lwm2m.ContentFormat, recs []lwm2m.Record) (*Response, lwm2m.Path, error) {
	if p.Len != 1 {
		return nil, lwm2m.Path{}, fmt.Errorf("server: create %s on %q: %w", p, ep, &inputError{ErrBadPath})
	}
	payload, err := createPayload(p, format, recs)
	if err != nil {
		return nil, lwm2m.Path{}, fmt.Errorf("server: create %s on %q: %w", p, ep, err)
	}
	resp, err := s.exchange(ctx, ep, request{op: "create", method: codes.POST, path: p, format: format, payload: payload})
	if err != nil {
		return resp, lwm2m.Path{}, err
	}
	created, perr := locationPath(resp.Location)
	if perr != nil || created.Len != 2 || created.Obj() != p.Obj() {
		return resp, lwm2m.Path{}, fmt.Errorf("server: create %s on %q: the answer's Location-Path %q is not an instance of the object", p, ep, resp.Location)
	}
	return resp, created, nil
}

// createPayload encodes the values of a new instance of object p: every
// record a resource of one instance, encoded from the object down (a TLV
// object instance, SenML names with the instance), so the client creates
// that instance ID.
func createPayload(p lwm2m.Path, format lwm2m.ContentFormat, recs []lwm2m.Record) ([]byte, error) {
	if len(recs) == 0 {
		return nil, badInput("%w: a create needs the new instance's resources", ErrBadPath)
	}
	inst := recs[0].Path
	inst.Len = 2
	if recs[0].Path.Len < 3 || !p.Contains(inst) {
		return nil, badInput("%w: record %s is not a resource of an instance of %s", ErrBadPath, recs[0].Path, p)
	}
	conv, err := convertRecords(inst, recs)
	if err != nil {
		return nil, err
	}
	switch format {
	case lwm2m.FormatTLV, lwm2m.FormatSenMLJSON, lwm2m.FormatSenMLCBOR:
		return encodeConverted(p, format, conv)
	}
	return nil, badInput("%w: a create takes TLV, SenML JSON or SenML CBOR, not %s", ErrFormat, format)
}

// locationPath parses a Location-Path such as "/3303/1" (the client's
// root path, when it has one, comes first and is skipped).
func locationPath(loc string) (lwm2m.Path, error) {
	segs := strings.Split(strings.Trim(loc, "/"), "/")
	for len(segs) > 2 {
		if _, err := strconv.ParseUint(segs[0], 10, 16); err == nil {
			break
		}
		segs = segs[1:]
	}
	return lwm2m.ParsePath("/" + strings.Join(segs, "/"))
}

// Delete deletes the object instance at p on the client registered as ep
// (Core TS 1.1 §6.3.7). A non-2.02 answer returns the Response with a
// *CodeError.
func (s *Server) Delete(ctx context.Context, ep string, p lwm2m.Path) (*Response, error) {
	if p.Len != 2 {
		return nil, fmt.Errorf("server: delete %s on %q: %w", p, ep, &inputError{ErrBadPath})
	}
	return s.exchange(ctx, ep, request{op: "delete", method: codes.DELETE, path: p})
}

// WriteUpdate writes recs to the instance or resource at p on the client
// registered as ep as a partial update: a POST, which changes the
// resources given and leaves the others (Core TS 1.1 §6.3.3, "Partial
// Update"). Formats and errors as for Write.
func (s *Server) WriteUpdate(ctx context.Context, ep string, p lwm2m.Path, format lwm2m.ContentFormat, recs []lwm2m.Record) (*Response, error) {
	if p.Len < 2 {
		return nil, fmt.Errorf("server: write-update %s on %q: %w", p, ep, &inputError{ErrBadPath})
	}
	payload, err := encodeRecords(p, format, recs)
	if err != nil {
		return nil, fmt.Errorf("server: write-update %s on %q: %w", p, ep, err)
	}
	return s.exchange(ctx, ep, request{op: "write-update", method: codes.POST, path: p, format: format, payload: payload})
}

// ReadComposite reads several paths of the client registered as ep in one
// request (Core TS 1.1 §6.3.2): a FETCH on the root whose SenML payload
// lists the paths, answered in format (SenML JSON or SenML CBOR). The
// Response's Records hold every value, with full paths.
func (s *Server) ReadComposite(ctx context.Context, ep string, paths []lwm2m.Path, format lwm2m.ContentFormat) (*Response, error) {
	payload, err := compositeRequest(paths, format)
	if err != nil {
		return nil, fmt.Errorf("server: read-composite on %q: %w", ep, err)
	}
	resp, err := s.exchange(ctx, ep, request{op: "read-composite", method: codeFETCH, format: format, accept: format, payload: payload})
	if err != nil {
		return resp, err
	}
	recs, err := decodeComposite(resp.ContentFormat, resp.Payload)
	if err != nil {
		return resp, fmt.Errorf("server: read-composite on %q: decode %s: %w", ep, resp.ContentFormat, err)
	}
	resp.Records = recs
	return resp, nil
}

// WriteComposite writes recs, resources of any objects and instances, in
// one request (Core TS 1.1 §6.3.3): an iPATCH on the root in format (SenML
// JSON or SenML CBOR). The client writes every value or none.
func (s *Server) WriteComposite(ctx context.Context, ep string, format lwm2m.ContentFormat, recs []lwm2m.Record) (*Response, error) {
	for _, r := range recs {
		if r.Path.Len < 3 {
			return nil, fmt.Errorf("server: write-composite on %q: %s is not a resource: %w", ep, r.Path, &inputError{ErrBadPath})
		}
	}
	var payload []byte
	var err error
	switch format {
	case lwm2m.FormatSenMLJSON:
		payload, err = senml.EncodeJSON(lwm2m.Path{}, recs)
	case lwm2m.FormatSenMLCBOR:
		payload, err = senml.EncodeCBOR(lwm2m.Path{}, recs)
	default:
		err = fmt.Errorf("%w: write-composite takes SenML JSON or SenML CBOR, not %s", ErrFormat, format)
	}
	if err != nil {
		return nil, fmt.Errorf("server: write-composite on %q: %w", ep, err)
	}
	return s.exchange(ctx, ep, request{op: "write-composite", method: codeIPATCH, format: format, payload: payload})
}

// compositeRequest encodes the path list of a Read- or Observe-Composite:
// SenML records with names only.
func compositeRequest(paths []lwm2m.Path, format lwm2m.ContentFormat) ([]byte, error) {
	switch format {
	case lwm2m.FormatSenMLJSON:
		return senml.EncodePathsJSON(paths)
	case lwm2m.FormatSenMLCBOR:
		return senml.EncodePathsCBOR(paths)
	}
	return nil, fmt.Errorf("%w: composite reads take SenML JSON or SenML CBOR, not %s", ErrFormat, format)
}

// decodeComposite decodes the answer of a Read-Composite.
func decodeComposite(cf lwm2m.ContentFormat, payload []byte) ([]lwm2m.Record, error) {
	switch cf {
	case lwm2m.FormatSenMLJSON:
		return senml.DecodeJSON(lwm2m.Path{}, payload, typeOf)
	case lwm2m.FormatSenMLCBOR:
		return senml.DecodeCBOR(lwm2m.Path{}, payload, typeOf)
	}
	return nil, fmt.Errorf("%w: %s", ErrFormat, cf)
}
