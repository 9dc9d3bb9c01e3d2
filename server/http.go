package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/linkformat"
)

// maxBody bounds the request bodies of the HTTP API.
const maxBody = 1 << 20

// Handler returns the HTTP JSON API described in the package
// documentation. It is what the HTTP listener serves; tests may use it
// with net/http/httptest without a listener.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/clients", s.apiClients)
	mux.HandleFunc("GET /api/clients/{ep}", s.apiClient)
	mux.HandleFunc("GET /api/clients/{ep}/read/{path...}", s.apiRead)
	mux.HandleFunc("PUT /api/clients/{ep}/write/{path...}", s.apiWrite)
	mux.HandleFunc("POST /api/clients/{ep}/write/{path...}", s.apiWriteUpdate)
	mux.HandleFunc("POST /api/clients/{ep}/create/{path...}", s.apiCreate)
	mux.HandleFunc("DELETE /api/clients/{ep}/instances/{path...}", s.apiDelete)
	mux.HandleFunc("POST /api/clients/{ep}/read-composite", s.apiReadComposite)
	mux.HandleFunc("POST /api/clients/{ep}/write-composite", s.apiWriteComposite)
	mux.HandleFunc("POST /api/clients/{ep}/execute/{path...}", s.apiExecute)
	mux.HandleFunc("GET /api/clients/{ep}/discover/{path...}", s.apiDiscover)
	mux.HandleFunc("PUT /api/clients/{ep}/attributes/{path...}", s.apiWriteAttributes)
	mux.HandleFunc("POST /api/clients/{ep}/observe/{path...}", s.apiObserve)
	mux.HandleFunc("GET /api/clients/{ep}/observations", s.apiObservations)
	mux.HandleFunc("GET /api/clients/{ep}/send/events", s.apiSendEvents)
	mux.HandleFunc("GET /api/clients/{ep}/observations/{id}/events", s.apiEvents)
	mux.HandleFunc("DELETE /api/clients/{ep}/observations/{id}", s.apiCancel)
	mux.HandleFunc("GET /fw/{name}", s.httpFirmware)
	mux.HandleFunc("GET /api/firmware", s.apiFirmwareList)
	mux.HandleFunc("PUT /api/firmware/{name}", s.apiFirmwarePut)
	mux.HandleFunc("POST /api/clients/{ep}/fota", s.apiStartFOTA)
	mux.HandleFunc("GET /api/clients/{ep}/fota/{id}", s.apiFOTAStatus)
	mux.HandleFunc("GET /api/clients/{ep}/fota/{id}/events", s.apiFOTAEvents)
	mux.HandleFunc("DELETE /api/clients/{ep}/fota/{id}", s.apiCancelFOTA)
	mux.HandleFunc("GET /api/bootstrap", s.apiBootstrapList)
	mux.HandleFunc("GET /api/bootstrap/{ep}", s.apiBootstrapGet)
	mux.HandleFunc("PUT /api/bootstrap/{ep}", s.apiBootstrapPut)
	mux.HandleFunc("DELETE /api/bootstrap/{ep}", s.apiBootstrapDelete)
	return mux
}

// clientJSON is a ClientInfo in the HTTP API.
type clientJSON struct {
	Endpoint   string    `json:"endpoint"`
	ID         string    `json:"id"`
	Lifetime   int64     `json:"lifetime"` // seconds
	Binding    string    `json:"binding"`
	Version    string    `json:"lwm2m"`
	SMS        string    `json:"sms,omitempty"`
	Queue      bool      `json:"queue"`
	RootPath   string    `json:"root_path,omitempty"`
	Objects    []string  `json:"objects"`
	Links      string    `json:"links"`
	Addr       string    `json:"addr"`
	Registered time.Time `json:"registered"`
	Updated    time.Time `json:"updated"`
	Expires    time.Time `json:"expires"`
}

func toClientJSON(ci ClientInfo) clientJSON {
	objects := []string{}
	for _, l := range objectLinks(ci.Links) {
		objects = append(objects, l.Target)
	}
	return clientJSON{
		Endpoint:   ci.Endpoint,
		ID:         ci.ID,
		Lifetime:   int64(ci.Lifetime / time.Second),
		Binding:    ci.Binding,
		Version:    ci.Version,
		SMS:        ci.SMS,
		Queue:      ci.Queue,
		RootPath:   ci.RootPath,
		Objects:    objects,
		Links:      string(linkformat.Format(ci.Links)),
		Addr:       addrString(ci.Addr),
		Registered: ci.Registered,
		Updated:    ci.Updated,
		Expires:    ci.Expires,
	}
}

type recordJSON struct {
	Path  string          `json:"path"`
	Type  string          `json:"type,omitempty"`
	Value json.RawMessage `json:"value"`
}

type readJSON struct {
	Code       string       `json:"code"`
	Format     string       `json:"format"`
	Records    []recordJSON `json:"records"`
	PayloadHex string       `json:"payload_hex"`
}

type codeJSON struct {
	Code string `json:"code"`
}

type linkJSON struct {
	Target string            `json:"target"`
	Attrs  map[string]string `json:"attrs,omitempty"`
}

type discoverJSON struct {
	Code    string     `json:"code"`
	Links   []linkJSON `json:"links"`
	Payload string     `json:"payload"`
}

type errorJSON struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// writeBody is the body of PUT .../write/{path}: either a value for the
// resource at path, or records below path.
type writeBody struct {
	Format  string          `json:"format"`
	Value   json.RawMessage `json:"value"`
	Type    string          `json:"type"`
	Records []recordJSON    `json:"records"`
}

func (s *Server) apiClients(w http.ResponseWriter, _ *http.Request) {
	out := []clientJSON{}
	for _, ci := range s.Clients() {
		out = append(out, toClientJSON(ci))
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiClient(w http.ResponseWriter, r *http.Request) {
	ep := r.PathValue("ep")
	ci, ok := s.Client(ep)
	if !ok {
		s.apiError(w, fmt.Errorf("%w: %q", ErrNotRegistered, ep))
		return
	}
	s.writeJSON(w, http.StatusOK, toClientJSON(ci))
}

func (s *Server) apiRead(w http.ResponseWriter, r *http.Request) {
	p, err := apiPath(r, 1)
	if err != nil {
		s.apiError(w, err)
		return
	}
	accept := lwm2m.FormatNone
	if f := r.URL.Query().Get("format"); f != "" {
		if accept, err = parseFormat(f); err != nil {
			s.apiError(w, &inputError{err})
			return
		}
	}
	s.answerRead(w, r, func(ctx context.Context, ep string) (*Response, error) { return s.Read(ctx, ep, p, accept) })
}

// answerRead runs read (Read, ReadComposite) for the request's client
// within the operation timeout and answers with its records.
func (s *Server) answerRead(w http.ResponseWriter, r *http.Request, read func(context.Context, string) (*Response, error)) {
	ctx, cancel := s.opContext(r)
	defer cancel()
	resp, err := read(ctx, r.PathValue("ep"))
	if err != nil {
		s.apiError(w, err)
		return
	}
	out, err := toReadJSON(resp)
	if err != nil {
		s.apiError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, out)
}

// toReadJSON renders a response with its records.
func toReadJSON(resp *Response) (readJSON, error) {
	out := readJSON{
		Code:       codeString(resp.Code),
		Format:     formatName(resp.ContentFormat),
		Records:    []recordJSON{},
		PayloadHex: hex.EncodeToString(resp.Payload),
	}
	recs, err := recordsJSON(resp.Records)
	if err != nil {
		return out, err
	}
	out.Records = recs
	return out, nil
}

// recordsJSON renders records with their values by type (never nil).
func recordsJSON(recs []lwm2m.Record) ([]recordJSON, error) {
	out := []recordJSON{}
	for _, rec := range recs {
		v, err := json.Marshal(jsonValue(rec.Value))
		if err != nil {
			return out, err
		}
		out = append(out, recordJSON{Path: rec.Path.String(), Type: rec.Value.Type.String(), Value: v})
	}
	return out, nil
}

func (s *Server) apiWrite(w http.ResponseWriter, r *http.Request) {
	s.apiWriteWith(w, r, s.Write)
}

// apiWriteWith answers a write route with op (Write, WriteUpdate): the
// body's value or records at {path}, and the client's code.
func (s *Server) apiWriteWith(w http.ResponseWriter, r *http.Request,
	op func(context.Context, string, lwm2m.Path, lwm2m.ContentFormat, []lwm2m.Record) (*Response, error)) {
	p, err := apiPath(r, 2)
	if err != nil {
		s.apiError(w, err)
		return
	}
	var body writeBody
	if err := decodeBody(w, r, &body); err != nil {
		s.apiError(w, err)
		return
	}
	format, recs, err := body.records(p)
	if err != nil {
		s.apiError(w, &inputError{err})
		return
	}
	ctx, cancel := s.opContext(r)
	defer cancel()
	resp, err := op(ctx, r.PathValue("ep"), p, format, recs)
	if err != nil {
		s.apiError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, codeJSON{Code: codeString(resp.Code)})
}

// records converts the body to a content format and records for a write
// at p.
func (b *writeBody) records(p lwm2m.Path) (lwm2m.ContentFormat, []lwm2m.Record, error) {
	hasValue := len(b.Value) > 0
	if hasValue == (b.Records != nil) {
		return 0, nil, errors.New(`bad body: need exactly one of "value" and "records"`)
	}
	var (
		format lwm2m.ContentFormat
		recs   []lwm2m.Record
	)
	if hasValue {
		if p.Len < 3 {
			return 0, nil, fmt.Errorf(`%w: "value" needs a resource path, not %s`, ErrBadPath, p)
		}
		v, err := recordValue(p, b.Type, b.Value)
		if err != nil {
			return 0, nil, err
		}
		format, recs = lwm2m.FormatText, []lwm2m.Record{{Path: p, Value: v}}
	} else {
		format = lwm2m.FormatTLV
		for _, rj := range b.Records {
			rp, err := recordPath(p, rj.Path)
			if err != nil {
				return 0, nil, err
			}
			v, err := recordValue(rp, rj.Type, rj.Value)
			if err != nil {
				return 0, nil, err
			}
			recs = append(recs, lwm2m.Record{Path: rp, Value: v})
		}
	}
	if b.Format != "" {
		f, err := parseFormat(b.Format)
		if err != nil {
			return 0, nil, err
		}
		format = f
	}
	return format, recs, nil
}

// recordPath resolves a record path: absolute ("/3/0/1") or relative to
// the write's path ("1" below /3/0).
func recordPath(base lwm2m.Path, s string) (lwm2m.Path, error) {
	if !strings.HasPrefix(s, "/") {
		s = base.String() + "/" + s
	}
	p, err := lwm2m.ParsePath(s)
	if err != nil {
		return p, fmt.Errorf("record path: %w", err)
	}
	return p, nil
}

// recordValue converts a JSON value for the resource at p, using typeName
// when given and the server's table of resource types otherwise.
func recordValue(p lwm2m.Path, typeName string, raw json.RawMessage) (lwm2m.Value, error) {
	t := typeOf(p)
	if typeName != "" {
		var err error
		if t, err = parseType(typeName); err != nil {
			return lwm2m.Value{}, fmt.Errorf("record %s: %w", p, err)
		}
	}
	if len(raw) == 0 {
		return lwm2m.Value{}, fmt.Errorf("record %s: no value", p)
	}
	v, err := parseJSONValue(raw, t)
	if err != nil {
		return lwm2m.Value{}, fmt.Errorf("record %s: %w", p, err)
	}
	return v, nil
}

func (s *Server) apiExecute(w http.ResponseWriter, r *http.Request) {
	p, err := apiPath(r, 3)
	if err != nil {
		s.apiError(w, err)
		return
	}
	args, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.apiError(w, badInput("bad body: %w", err))
		return
	}
	ctx, cancel := s.opContext(r)
	defer cancel()
	resp, err := s.Execute(ctx, r.PathValue("ep"), p, strings.TrimSpace(string(args)))
	if err != nil {
		s.apiError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, codeJSON{Code: codeString(resp.Code)})
}

func (s *Server) apiDiscover(w http.ResponseWriter, r *http.Request) {
	p, err := apiPath(r, 0)
	if err != nil {
		s.apiError(w, err)
		return
	}
	ctx, cancel := s.opContext(r)
	defer cancel()
	links, resp, err := s.Discover(ctx, r.PathValue("ep"), p)
	if err != nil {
		s.apiError(w, err)
		return
	}
	out := discoverJSON{Code: codeString(resp.Code), Links: []linkJSON{}, Payload: string(resp.Payload)}
	for _, l := range links {
		lj := linkJSON{Target: l.Target}
		for _, prm := range l.Params {
			if lj.Attrs == nil {
				lj.Attrs = make(map[string]string)
			}
			lj.Attrs[prm.Name] = prm.Value
		}
		out.Links = append(out.Links, lj)
	}
	s.writeJSON(w, http.StatusOK, out)
}

// apiPath parses the {path...} wildcard, which must have at least minLen IDs.
func apiPath(r *http.Request, minLen int) (lwm2m.Path, error) {
	p, err := lwm2m.ParsePath(r.PathValue("path"))
	if err != nil {
		return p, &inputError{err}
	}
	if p.Len < minLen {
		return p, badInput("%w: %s", ErrBadPath, p)
	}
	return p, nil
}

// opContext bounds a device operation made for an HTTP request.
func (s *Server) opContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}

// apiError answers with err as JSON: 404 for an unknown client, 400 for a
// bad request, 502 when the client answered with an error or not at all.
func (s *Server) apiError(w http.ResponseWriter, err error) {
	var (
		ce     *CodeError
		ie     *inputError
		status = http.StatusBadGateway
		out    = errorJSON{Error: err.Error()}
	)
	switch {
	case errors.Is(err, ErrNotRegistered), errors.Is(err, errUnknownObservation):
		status = http.StatusNotFound
	case errors.As(err, &ie):
		status = http.StatusBadRequest
	case errors.As(err, &ce):
		out.Code = codeString(ce.Code)
	}
	s.log.Debug("api error", "status", status, "err", err)
	s.writeJSON(w, status, out)
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Debug("cannot write http response", "err", err)
	}
}

// attributesJSON is the body of PUT .../attributes/{path}.
type attributesJSON struct {
	Pmin  *int64   `json:"pmin"`
	Pmax  *int64   `json:"pmax"`
	Gt    *float64 `json:"gt"`
	Lt    *float64 `json:"lt"`
	St    *float64 `json:"st"`
	Epmin *int64   `json:"epmin"`
	Epmax *int64   `json:"epmax"`
	Unset []string `json:"unset"`
}

func (s *Server) apiWriteAttributes(w http.ResponseWriter, r *http.Request) {
	p, err := apiPath(r, 1)
	if err != nil {
		s.apiError(w, err)
		return
	}
	var body attributesJSON
	if err := decodeBody(w, r, &body); err != nil {
		s.apiError(w, err)
		return
	}
	attrs := Attributes{
		Pmin: body.Pmin, Pmax: body.Pmax, Epmin: body.Epmin, Epmax: body.Epmax,
		Gt: body.Gt, Lt: body.Lt, St: body.St, Unset: body.Unset,
	}
	ctx, cancel := s.opContext(r)
	defer cancel()
	resp, err := s.WriteAttributes(ctx, r.PathValue("ep"), p, attrs)
	if err != nil {
		s.apiError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, codeJSON{Code: codeString(resp.Code)})
}

// observeJSON answers POST .../observe/{path}.
type observeJSON struct {
	ID string `json:"id"`
	readJSON
}

// observationJSON describes a live observation.
type observationJSON struct {
	ID     string `json:"id"`
	Path   string `json:"path"`
	Format string `json:"format,omitempty"` // the Accept of the Observe request
}

// notificationJSON is one event of an observation's event stream.
type notificationJSON struct {
	Seq   uint32    `json:"seq"`
	Time  time.Time `json:"time"`
	Error string    `json:"error,omitempty"`
	readJSON
}

// errUnknownObservation: no live observation of the HTTP API has the ID.
var errUnknownObservation = errors.New("server: unknown observation")

func (s *Server) apiObserve(w http.ResponseWriter, r *http.Request) {
	p, err := apiPath(r, 1)
	if err != nil {
		s.apiError(w, err)
		return
	}
	accept := lwm2m.FormatNone
	if f := r.URL.Query().Get("format"); f != "" {
		if accept, err = parseFormat(f); err != nil {
			s.apiError(w, &inputError{err})
			return
		}
	}
	ep := r.PathValue("ep")
	ctx, cancel := s.opContext(r)
	defer cancel()
	o, err := s.Observe(ctx, ep, p, accept)
	if err != nil {
		s.apiError(w, err)
		return
	}
	out := observeJSON{ID: o.ID()}
	if out.readJSON, err = toReadJSON(o.Response()); err != nil {
		s.forget(o, err)
		s.apiError(w, err)
		return
	}
	s.mu.Lock()
	live := s.obs[string(o.token)] == o
	if live {
		s.apiObs[o.id] = o
	}
	s.mu.Unlock()
	if !live {
		s.apiError(w, fmt.Errorf("server: observe %s on %q: %w", p, ep, o.Err()))
		return
	}
	w.Header().Set("Location", "/api/clients/"+url.PathEscape(ep)+"/observations/"+o.id)
	s.writeJSON(w, http.StatusCreated, out)
}

// apiObservation returns the live observation id of the HTTP API on ep.
func (s *Server) apiObservation(ep, id string) (*Observation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.apiObs[id]
	if !ok || o.ep != ep {
		return nil, fmt.Errorf("%w: %q on %q", errUnknownObservation, id, ep)
	}
	return o, nil
}

func (s *Server) apiObservations(w http.ResponseWriter, r *http.Request) {
	ep := r.PathValue("ep")
	if _, ok := s.Client(ep); !ok {
		s.apiError(w, fmt.Errorf("%w: %q", ErrNotRegistered, ep))
		return
	}
	out := []observationJSON{}
	s.mu.Lock()
	for _, o := range s.apiObs {
		if o.ep == ep {
			out = append(out, observationJSON{ID: o.id, Path: o.path.String(), Format: formatName(o.accept)})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b observationJSON) int { return strings.Compare(a.ID, b.ID) })
	s.writeJSON(w, http.StatusOK, out)
}

// apiEvents streams an observation's notifications as Server-Sent Events
// (https://html.spec.whatwg.org/multipage/server-sent-events.html): one
// event of the default type per notification, with the sequence number
// as its id and a notificationJSON as its data, and a last event of type
// "end" when the observation ends.
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	o, err := s.apiObservation(r.PathValue("ep"), r.PathValue("id"))
	if err != nil {
		s.apiError(w, err)
		return
	}
	// The notifications have one channel, so one reader.
	if !o.stream.CompareAndSwap(false, true) {
		s.writeJSON(w, http.StatusConflict, errorJSON{Error: "server: observation " + o.id + " is already streamed"})
		return
	}
	defer o.stream.Store(false)

	send, ok := s.startEventStream(w)
	if !ok {
		return
	}
	for {
		select {
		case n, ok := <-o.Notifications():
			if !ok {
				reason := ""
				if err := o.Err(); err != nil {
					reason = err.Error()
				}
				send("end", "", errorJSON{Error: reason})
				return
			}
			out := notificationJSON{Seq: n.Seq, Time: n.Time}
			if n.Err != nil {
				out.Error = n.Err.Error()
			}
			if out.readJSON, err = toReadJSON(n.Response); err != nil {
				out.Error = err.Error()
			}
			if !send("", strconv.FormatUint(uint64(n.Seq), 10), out) {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) apiCancel(w http.ResponseWriter, r *http.Request) {
	o, err := s.apiObservation(r.PathValue("ep"), r.PathValue("id"))
	if err != nil {
		s.apiError(w, err)
		return
	}
	ctx, cancel := s.opContext(r)
	defer cancel()
	resp, err := o.cancel(ctx)
	if err != nil {
		s.apiError(w, err)
		return
	}
	out := codeJSON{}
	if resp != nil {
		out.Code = codeString(resp.Code)
	}
	s.writeJSON(w, http.StatusOK, out)
}

// decodeBody decodes a JSON request body of at most maxBody bytes into v,
// refusing unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badInput("bad body: %w", err)
	}
	return nil
}

// startEventStream answers with a text/event-stream (server-sent events)
// and returns the function that sends one event: its type (empty for the
// default), id (empty for none) and v as JSON data. The function reports
// false once the client has gone. ok is false when the stream could not
// start.
func (s *Server) startEventStream(w http.ResponseWriter) (send func(event, id string, v any) bool, ok bool) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		s.log.Debug("cannot flush event stream", "err", err)
		return nil, false
	}
	return func(event, id string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			s.log.Debug("cannot encode event", "err", err)
			return false
		}
		var msg strings.Builder
		if event != "" {
			msg.WriteString("event: " + event + "\n")
		}
		if id != "" {
			msg.WriteString("id: " + id + "\n")
		}
		msg.WriteString("data: " + string(b) + "\n\n")
		if _, err := io.WriteString(w, msg.String()); err != nil {
			return false
		}
		return rc.Flush() == nil
	}, true
}
