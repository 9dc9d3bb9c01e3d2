package server_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/linkformat"
	"github.com/avc-agent/avc/server"
)

func TestWriteAttributes(t *testing.T) {
	s, _ := withAgent(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	steps := []struct {
		name  string
		path  lwm2m.Path
		attrs server.Attributes
		link  string // Discover of the path afterwards
	}{
		{"set periods on the instance", lwm2m.P(3, 0), server.Attributes{Pmin: new(int64(5)), Pmax: new(int64(60))}, "</3/0>;pmin=5;pmax=60"},
		{"unset one", lwm2m.P(3, 0), server.Attributes{Unset: []string{server.AttrPmin}}, "</3/0>;pmax=60"},
		{"evaluation periods", lwm2m.P(3, 0), server.Attributes{Epmin: new(int64(1)), Epmax: new(int64(10))}, "</3/0>;pmax=60;epmin=1;epmax=10"},
		{"unset all", lwm2m.P(3, 0), server.Attributes{Unset: []string{server.AttrPmax, server.AttrEpmin, server.AttrEpmax}}, "</3/0>"},
		{"thresholds", battery, server.Attributes{Gt: new(80.0), Lt: new(20.5), St: new(5.0)}, "</3/0/9>;gt=80;lt=20.5;st=5"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if _, err := s.WriteAttributes(ctx, "dev1", st.path, st.attrs); err != nil {
				t.Fatalf("WriteAttributes: %v", err)
			}
			links, _, err := s.Discover(ctx, "dev1", st.path)
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			for _, l := range links {
				if l.Target == st.path.String() {
					if got := string(linkformat.Format([]linkformat.Link{l})); got != st.link {
						t.Errorf("Discover %s = %q, want %q", st.path, got, st.link)
					}
					return
				}
			}
			t.Errorf("Discover %s has no link to it: %+v", st.path, links)
		})
	}
}

func TestWriteAttributesErrors(t *testing.T) {
	s, _ := withAgent(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tests := []struct {
		name     string
		path     lwm2m.Path
		attrs    server.Attributes
		want     error      // for errors found before sending
		wantCode codes.Code // for the client's refusals
	}{
		{"nothing", battery, server.Attributes{}, server.ErrBadAttributes, 0},
		{"negative period", battery, server.Attributes{Pmin: new(int64(-1))}, server.ErrBadAttributes, 0},
		{"infinite threshold", battery, server.Attributes{Gt: new(math.Inf(1))}, server.ErrBadAttributes, 0},
		{"unknown name", battery, server.Attributes{Unset: []string{"max"}}, server.ErrBadAttributes, 0},
		{"set and unset", battery, server.Attributes{Pmin: new(int64(1)), Unset: []string{server.AttrPmin}}, server.ErrBadAttributes, 0},
		{"root", lwm2m.Path{}, server.Attributes{Pmin: new(int64(1))}, server.ErrBadPath, 0},
		{"threshold on an instance", lwm2m.P(3, 0), server.Attributes{Gt: new(1.0)}, nil, codes.BadRequest},
		{"pmax below pmin", battery, server.Attributes{Pmin: new(int64(10)), Pmax: new(int64(5))}, nil, codes.BadRequest},
		{"missing object", lwm2m.P(42), server.Attributes{Pmin: new(int64(1))}, nil, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.WriteAttributes(ctx, "dev1", tt.path, tt.attrs)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("WriteAttributes: %v, want %v", err, tt.want)
				}
				return
			}
			var ce *server.CodeError
			if !errors.As(err, &ce) || ce.Code != tt.wantCode || ce.Op != "write-attributes" {
				t.Fatalf("WriteAttributes: %v, want a %v CodeError", err, tt.wantCode)
			}
			if resp == nil || resp.Code != tt.wantCode {
				t.Errorf("WriteAttributes: response %+v", resp)
			}
		})
	}
}
