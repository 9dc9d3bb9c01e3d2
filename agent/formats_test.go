package agent_test

import (
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/cborval"
	"github.com/avc-agent/avc/lwm2m/lwcbor"
	"github.com/avc-agent/avc/lwm2m/senml"
	"github.com/avc-agent/avc/lwm2m/tlv"
)

// TestEveryFormatRoundTrips reads /3/0 in every multi-value format and
// checks that each decodes to the same records; then writes the UTC offset
// in each format the engine accepts.
func TestEveryFormatRoundTrips(t *testing.T) {
	s := registered(t, agent.Config{Endpoint: "fmt-1"})
	decoders := map[lwm2m.ContentFormat]func(lwm2m.Path, []byte, func(lwm2m.Path) lwm2m.Type) ([]lwm2m.Record, error){
		lwm2m.FormatTLV:       tlv.Decode,
		lwm2m.FormatSenMLJSON: senml.DecodeJSON,
		lwm2m.FormatSenMLCBOR: senml.DecodeCBOR,
		lwm2m.FormatLwM2MCBOR: lwcbor.Decode,
	}
	var ref map[string]string
	for f, dec := range decoders {
		r := s.Server.Request(codes.GET, "/3/0", nil, accept(f))
		if r == nil || r.Code != codes.Content {
			t.Fatalf("read /3/0 as %v: %v", f, r)
		}
		recs, err := dec(lwm2m.P(3, 0), r.Payload, deviceType)
		if err != nil {
			t.Fatalf("decode %v: %v", f, err)
		}
		got := map[string]string{}
		for _, rec := range recs {
			if rec.Path.Res() != 13 { // the clock moves between reads
				got[rec.Path.String()] = rec.Value.String()
			}
		}
		if got["/3/0/2"] != "fmt-1" || len(got) < 15 {
			t.Errorf("%v: %d records, serial %q", f, len(got), got["/3/0/2"])
		}
		if ref == nil {
			ref = got
		} else if len(got) != len(ref) {
			t.Errorf("%v decodes %d records, another format %d", f, len(got), len(ref))
		}
	}
	r := s.Server.Request(codes.GET, "/3/0/9", nil, accept(lwm2m.FormatCBOR))
	if v, err := cborval.Decode(r.Payload, lwm2m.TypeInteger); err != nil || v.Int != 100 {
		t.Errorf("battery as CBOR = %v, %v", v, err)
	}
	if r := s.Server.Request(codes.GET, "/3/0", nil, accept(lwm2m.FormatCBOR)); r == nil || r.Code != codes.NotAcceptable {
		t.Errorf("plain CBOR for an instance: %v, want 4.06", r)
	}

	offset := lwm2m.P(3, 0, 14)
	for f, payload := range map[lwm2m.ContentFormat]func(string) []byte{
		lwm2m.FormatCBOR: func(v string) []byte { b, _ := cborval.Encode(lwm2m.String(v)); return b },
		lwm2m.FormatSenMLCBOR: func(v string) []byte {
			b, _ := senml.EncodeCBOR(offset, []lwm2m.Record{{Path: offset, Value: lwm2m.String(v)}})
			return b
		},
		lwm2m.FormatLwM2MCBOR: func(v string) []byte {
			b, _ := lwcbor.Encode(offset, []lwm2m.Record{{Path: offset, Value: lwm2m.String(v)}})
			return b
		},
	} {
		want := "+05:30"
		if r := s.Server.Request(codes.PUT, "/3/0/14", payload(want), contentFormat(f)); r == nil || r.Code != codes.Changed {
			t.Fatalf("write as %v: %v", f, r)
		}
		if r := s.Server.Request(codes.GET, "/3/0/14", nil); r == nil || string(r.Payload) != want {
			t.Errorf("after a %v write: %v", f, r)
		}
		if r := s.Server.Request(codes.PUT, "/3/0/14", payload("x"), contentFormat(f)); r == nil || r.Code != codes.BadRequest {
			t.Errorf("bad offset as %v: %v, want 4.00", f, r)
		}
		s.RunFor(time.Millisecond)
	}
}
