package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/avc-agent/avc/lwm2m"
)

// The HTTP API of Create, Delete, partial update and the composite
// operations; see Handler for the routes.

// createJSON answers a create: the code and the new instance's path.
type createJSON struct {
	Code     string `json:"code"`
	Location string `json:"location"`
}

// compositeBody is the body of read-composite ("paths") and
// write-composite ("records", absolute paths); format is "senml+json"
// (default) or "senml+cbor".
type compositeBody struct {
	Format  string       `json:"format"`
	Paths   []string     `json:"paths"`
	Records []recordJSON `json:"records"`
}

// compositeBody reads the body of a composite route and its format,
// answering the error itself when it cannot (ok false).
func (s *Server) compositeBody(w http.ResponseWriter, r *http.Request) (body compositeBody, format lwm2m.ContentFormat, ok bool) {
	if err := decodeBody(w, r, &body); err != nil {
		s.apiError(w, err)
		return body, 0, false
	}
	format = lwm2m.FormatSenMLJSON
	if body.Format != "" {
		var err error
		if format, err = parseFormat(body.Format); err != nil {
			s.apiError(w, &inputError{err})
			return body, 0, false
		}
	}
	return body, format, true
}

// apiCreate: POST /api/clients/{ep}/create/{object} with a write body
// whose records name the new instance (/3303/7/5700 or "7/5700").
func (s *Server) apiCreate(w http.ResponseWriter, r *http.Request) {
	p, err := apiPath(r, 1)
	if err != nil {
		s.apiError(w, err)
		return
	}
	var body writeBody
	if err := decodeBody(w, r, &body); err != nil {
		s.apiError(w, err)
		return
	}
	if body.Records == nil {
		s.apiError(w, badInput(`bad body: a create needs "records"`))
		return
	}
	format, recs, err := body.records(p)
	if err != nil {
		s.apiError(w, &inputError{err})
		return
	}
	ctx, cancel := s.opContext(r)
	defer cancel()
	resp, created, err := s.Create(ctx, r.PathValue("ep"), p, format, recs)
	if err != nil {
		s.apiError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, createJSON{Code: codeString(resp.Code), Location: created.String()})
}

// apiDelete: DELETE /api/clients/{ep}/instances/{object}/{instance}.
func (s *Server) apiDelete(w http.ResponseWriter, r *http.Request) {
	p, err := apiPath(r, 2)
	if err != nil {
		s.apiError(w, err)
		return
	}
	ctx, cancel := s.opContext(r)
	defer cancel()
	resp, err := s.Delete(ctx, r.PathValue("ep"), p)
	if err != nil {
		s.apiError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, codeJSON{Code: codeString(resp.Code)})
}

// apiWriteUpdate: POST /api/clients/{ep}/write/{path} with a write body:
// a partial update (PUT on the same route replaces).
func (s *Server) apiWriteUpdate(w http.ResponseWriter, r *http.Request) {
	s.apiWriteWith(w, r, s.WriteUpdate)
}

// apiReadComposite: POST /api/clients/{ep}/read-composite with
// {"paths": [...], "format": ...}; answered like a read.
func (s *Server) apiReadComposite(w http.ResponseWriter, r *http.Request) {
	body, format, ok := s.compositeBody(w, r)
	if !ok {
		return
	}
	var paths []lwm2m.Path
	for _, ps := range body.Paths {
		p, err := lwm2m.ParsePath(ps)
		if err != nil {
			s.apiError(w, &inputError{err})
			return
		}
		paths = append(paths, p)
	}
	s.answerRead(w, r, func(ctx context.Context, ep string) (*Response, error) {
		return s.ReadComposite(ctx, ep, paths, format)
	})
}

// apiWriteComposite: POST /api/clients/{ep}/write-composite with
// {"records": [{"path": "/3/0/14", "value": ...}, ...], "format": ...}.
func (s *Server) apiWriteComposite(w http.ResponseWriter, r *http.Request) {
	body, format, ok := s.compositeBody(w, r)
	if !ok {
		return
	}
	var recs []lwm2m.Record
	for _, rj := range body.Records {
		if !strings.HasPrefix(rj.Path, "/") {
			s.apiError(w, badInput("record path %q: a composite write takes absolute paths", rj.Path))
			return
		}
		p, err := recordPath(lwm2m.Path{}, rj.Path)
		if err != nil {
			s.apiError(w, &inputError{err})
			return
		}
		v, err := recordValue(p, rj.Type, rj.Value)
		if err != nil {
			s.apiError(w, &inputError{err})
			return
		}
		recs = append(recs, lwm2m.Record{Path: p, Value: v})
	}
	ctx, cancel := s.opContext(r)
	defer cancel()
	resp, err := s.WriteComposite(ctx, r.PathValue("ep"), format, recs)
	if err != nil {
		s.apiError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, codeJSON{Code: codeString(resp.Code)})
}
