package server_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/text"
	"github.com/avc-agent/avc/lwm2m/tlv"
	"github.com/avc-agent/avc/server"
)

func TestRead(t *testing.T) {
	s, _ := registered(t, server.Config{}, "dev1")
	tests := []struct {
		name     string
		path     lwm2m.Path
		accept   lwm2m.ContentFormat
		wantCode codes.Code
		wantCF   lwm2m.ContentFormat
		want     []lwm2m.Record
	}{
		{"instance as TLV", lwm2m.P(3, 0), lwm2m.FormatTLV, codes.Content, lwm2m.FormatTLV, []lwm2m.Record{
			{Path: lwm2m.P(3, 0, 0), Value: lwm2m.String("avc")},
			{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(87)},
		}},
		{"string resource as text", lwm2m.P(3, 0, 0), lwm2m.FormatText, codes.Content, lwm2m.FormatText, []lwm2m.Record{
			{Path: lwm2m.P(3, 0, 0), Value: lwm2m.String("avc")},
		}},
		{"integer resource as text", lwm2m.P(3, 0, 9), lwm2m.FormatNone, codes.Content, lwm2m.FormatText, []lwm2m.Record{
			{Path: lwm2m.P(3, 0, 9), Value: lwm2m.Int(87)},
		}},
		{"missing object", lwm2m.P(5, 0), lwm2m.FormatTLV, codes.NotFound, lwm2m.FormatNone, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			resp, err := s.Read(ctx, "dev1", tt.path, tt.accept)
			if tt.wantCode != codes.Content {
				var ce *server.CodeError
				if !errors.As(err, &ce) || ce.Code != tt.wantCode || ce.Path != tt.path {
					t.Fatalf("Read: err %v, want a CodeError %v at %s", err, tt.wantCode, tt.path)
				}
				if resp == nil || resp.Code != tt.wantCode {
					t.Errorf("Read: response %+v, want code %v", resp, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if resp.Code != tt.wantCode || resp.ContentFormat != tt.wantCF {
				t.Errorf("Read: code %v format %v, want %v %v", resp.Code, resp.ContentFormat, tt.wantCode, tt.wantCF)
			}
			if !reflect.DeepEqual(resp.Records, tt.want) {
				t.Errorf("Read records:\n got %+v\nwant %+v", resp.Records, tt.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	s, c := registered(t, server.Config{}, "dev1")
	tests := []struct {
		name   string
		path   lwm2m.Path
		format lwm2m.ContentFormat
		recs   []lwm2m.Record
		want   []lwm2m.Record // decoded from what the client received
	}{
		{"lifetime as text", lwm2m.P(1, 0, 1), lwm2m.FormatText,
			[]lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(120)}},
			[]lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(120)}}},
		{"unsigned converted to the integer type", lwm2m.P(1, 0, 1), lwm2m.FormatTLV,
			[]lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Uint(60)}},
			[]lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(60)}}},
		{"instance as TLV", lwm2m.P(1, 0), lwm2m.FormatTLV,
			[]lwm2m.Record{
				{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(300)},
				{Path: lwm2m.P(1, 0, 7), Value: lwm2m.String("U")},
			},
			[]lwm2m.Record{
				{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(300)},
				{Path: lwm2m.P(1, 0, 7), Value: lwm2m.String("U")},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			resp, err := s.Write(ctx, "dev1", tt.path, tt.format, tt.recs)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if resp.Code != codes.Changed {
				t.Errorf("Write: code %v, want 2.04", resp.Code)
			}
			req := c.nextRequest(ctx)
			if req.Method != codes.PUT || req.Path != tt.path.String() || req.Format != int(tt.format) {
				t.Fatalf("client got %v %s format %d, want PUT %s format %d", req.Method, req.Path, req.Format, tt.path, tt.format)
			}
			if tt.format == lwm2m.FormatText && string(req.Payload) != tt.recs[0].Value.String() {
				t.Errorf("text payload %q, want %q", req.Payload, tt.recs[0].Value.String())
			}
			got := decodeWritten(t, tt.path, tt.format, req.Payload)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("client got records\n %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// decodeWritten decodes a Write payload as the client would.
func decodeWritten(t *testing.T, p lwm2m.Path, format lwm2m.ContentFormat, b []byte) []lwm2m.Record {
	t.Helper()
	switch format {
	case lwm2m.FormatText:
		v, err := text.Decode(b, server.TypeOf(p))
		if err != nil {
			t.Fatalf("decode text %q: %v", b, err)
		}
		return []lwm2m.Record{{Path: p, Value: v}}
	case lwm2m.FormatTLV:
		recs, err := tlv.Decode(p, b, server.TypeOf)
		if err != nil {
			t.Fatalf("decode TLV %x: %v", b, err)
		}
		return recs
	}
	t.Fatalf("no decoder for %v", format)
	return nil
}

func TestWriteErrors(t *testing.T) {
	s, _ := registered(t, server.Config{}, "dev1")
	tests := []struct {
		name   string
		ep     string
		path   lwm2m.Path
		format lwm2m.ContentFormat
		recs   []lwm2m.Record
		want   error
	}{
		{"unknown client", "nobody", lwm2m.P(1, 0, 1), lwm2m.FormatText,
			[]lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(1)}}, server.ErrNotRegistered},
		{"text for an instance", "dev1", lwm2m.P(1, 0), lwm2m.FormatText,
			[]lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(1)}}, server.ErrFormat},
		{"unsupported format", "dev1", lwm2m.P(1, 0, 1), lwm2m.FormatCBOR,
			[]lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.Int(1)}}, server.ErrFormat},
		{"record outside the path", "dev1", lwm2m.P(1, 0), lwm2m.FormatTLV,
			[]lwm2m.Record{{Path: lwm2m.P(3, 0, 1), Value: lwm2m.String("x")}}, server.ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if _, err := s.Write(ctx, tt.ep, tt.path, tt.format, tt.recs); !errors.Is(err, tt.want) {
				t.Errorf("Write: %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("lossy conversion", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		recs := []lwm2m.Record{{Path: lwm2m.P(1, 0, 1), Value: lwm2m.String("soon")}}
		if _, err := s.Write(ctx, "dev1", lwm2m.P(1, 0, 1), lwm2m.FormatText, recs); err == nil {
			t.Error("Write of a string to an integer resource succeeded")
		}
	})
	t.Run("client error", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		recs := []lwm2m.Record{{Path: lwm2m.P(3, 0, 14), Value: lwm2m.String("+01")}}
		_, err := s.Write(ctx, "dev1", lwm2m.P(3, 0, 14), lwm2m.FormatText, recs)
		var ce *server.CodeError
		if !errors.As(err, &ce) || ce.Code != codes.NotFound || ce.Op != "write" {
			t.Errorf("Write: %v, want a 4.04 CodeError", err)
		}
	})
}

func TestExecute(t *testing.T) {
	s, c := registered(t, server.Config{}, "dev1")
	tests := []struct {
		name       string
		args       string
		wantFormat int
	}{
		{"no arguments", "", -1},
		{"arguments", "0='now',1", int(message.TextPlain)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			resp, err := s.Execute(ctx, "dev1", lwm2m.P(3, 0, 4), tt.args)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if resp.Code != codes.Changed {
				t.Errorf("Execute: code %v, want 2.04", resp.Code)
			}
			req := c.nextRequest(ctx)
			if req.Method != codes.POST || req.Path != "/3/0/4" || string(req.Payload) != tt.args || req.Format != tt.wantFormat {
				t.Errorf("client got %v %s %q format %d, want POST /3/0/4 %q format %d",
					req.Method, req.Path, req.Payload, req.Format, tt.args, tt.wantFormat)
			}
		})
	}
	t.Run("not a resource", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if _, err := s.Execute(ctx, "dev1", lwm2m.P(3, 0), ""); !errors.Is(err, server.ErrBadPath) {
			t.Errorf("Execute /3/0: %v, want ErrBadPath", err)
		}
	})
}

func TestDiscover(t *testing.T) {
	s, _ := registered(t, server.Config{}, "dev1")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	links, resp, err := s.Discover(ctx, "dev1", lwm2m.P(3, 0))
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if resp.Code != codes.Content || resp.ContentFormat != lwm2m.FormatLinkFormat || string(resp.Payload) != device3Links {
		t.Errorf("Discover response %v %v %q", resp.Code, resp.ContentFormat, resp.Payload)
	}
	var targets []string
	for _, l := range links {
		targets = append(targets, l.Target)
	}
	want := []string{"/3/0", "/3/0/0", "/3/0/4", "/3/0/9"}
	if !reflect.DeepEqual(targets, want) {
		t.Errorf("Discover targets %q, want %q", targets, want)
	}
	if last := links[len(links)-1]; len(last.Params) != 1 || last.Params[0].Name != "pmin" || last.Params[0].Value != "10" {
		t.Errorf("Discover params of %s: %+v, want pmin=10", last.Target, last.Params)
	}

	if _, _, err := s.Discover(ctx, "dev1", lwm2m.P(5)); !errors.As(err, new(*server.CodeError)) {
		t.Errorf("Discover /5: %v, want a CodeError", err)
	}
}

func TestOperationsOnUnknownClient(t *testing.T) {
	s := newServer(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tests := []struct {
		name string
		do   func() error
	}{
		{"read", func() error { _, err := s.Read(ctx, "nobody", lwm2m.P(3, 0), lwm2m.FormatTLV); return err }},
		{"execute", func() error { _, err := s.Execute(ctx, "nobody", lwm2m.P(3, 0, 4), ""); return err }},
		{"discover", func() error { _, _, err := s.Discover(ctx, "nobody", lwm2m.P(3)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, server.ErrNotRegistered) {
				t.Errorf("got %v, want ErrNotRegistered", err)
			}
		})
	}
}
