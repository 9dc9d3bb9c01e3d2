package agent

import (
	"bytes"
	"encoding/json"
	"hash/crc32"
	"testing"
)

// TestPersistentMarshalEnvelope checks that the envelope marshal writes
// by hand is the one encoding/json would write, and that it loads back.
func TestPersistentMarshalEnvelope(t *testing.T) {
	cfg := &Config{Endpoint: "state-test"}
	var scratch stateEncoder
	scratch.buf.WriteString("left over from before")
	reused := []byte("left over from before, longer than some states")
	for _, p := range []persistent{
		defaultPersistent(cfg),
		func() persistent {
			p := defaultPersistent(cfg)
			p.FW.State, p.FW.URI, p.FW.Offset, p.FW.Validator, p.FW.Total = FirmwareDownloading, "coap://[::1]/fw \"x\"", 65536, "0a0b", 1<<20
			p.FW.Verifier = []byte{0, 1, 2, 0xff}
			return p
		}(),
	} {
		body, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(envelope{Version: stateVersion, CRC: crc32.ChecksumIEEE(body), State: body})
		if err != nil {
			t.Fatal(err)
		}
		got := p.marshal(nil)
		if again := p.marshal(&scratch); !bytes.Equal(again, got) {
			t.Fatalf("with a scratch encoder:\n got %s\nwant %s", again, got)
		}
		reused = p.appendTo(reused[:0], &scratch)
		if !bytes.Equal(reused, got) {
			t.Fatalf("appended to a used buffer:\n got %s\nwant %s", reused, got)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("marshal:\n got %s\nwant %s", got, want)
		}
		back, err := loadPersistent(got)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if back.FW.URI != p.FW.URI || back.FW.Offset != p.FW.Offset || !bytes.Equal(back.FW.Verifier, p.FW.Verifier) {
			t.Fatalf("loaded %+v, stored %+v", back.FW, p.FW)
		}
	}
}
