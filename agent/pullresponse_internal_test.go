package agent

import (
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// pullResponse tells a pull's blocks from the server's other datagrams by
// header and token, so that a pull from the DM server itself (avc
// server's /fw/) is not handled as server traffic that makes every
// observation be evaluated once per block.
func TestPullResponse(t *testing.T) {
	e, err := NewEngine(Config{ServerURI: "coap://127.0.0.1:5683", Endpoint: "pr", Firmware: FirmwareConfig{Handler: &syncStore{}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := []byte{1, 2, 3, 4, 5, 6, 7, 8} // the agent's tokens are 8 bytes
	e.fw.dl.pull = &dlPull{d: e.fw.dl, peer: "127.0.0.1:5683", key: tokenKey(tok)}
	wire := func(typ message.Type, code codes.Code, token []byte) []byte {
		b, err := encode(&message.Message{Type: typ, Code: code, MessageID: 7, Token: token, Payload: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		peer string
		b    []byte
		want bool
	}{
		{"piggybacked block", "127.0.0.1:5683", wire(message.Acknowledgement, codes.Content, tok), true},
		{"separate response", "127.0.0.1:5683", wire(message.Confirmable, codes.Content, tok), true},
		{"error response", "127.0.0.1:5683", wire(message.Acknowledgement, codes.NotFound, tok), true},
		{"another token", "127.0.0.1:5683", wire(message.Acknowledgement, codes.Content, []byte{9}), false},
		{"its first bytes", "127.0.0.1:5683", wire(message.Acknowledgement, codes.Content, tok[:4]), false},
		{"a request with the token", "127.0.0.1:5683", wire(message.Confirmable, codes.GET, tok), false},
		{"another peer", "127.0.0.1:5684", wire(message.Acknowledgement, codes.Content, tok), false},
		{"empty ACK", "127.0.0.1:5683", []byte{0x60, 0, 0, 7}, false},
		{"truncated token", "127.0.0.1:5683", []byte{0x64, 0x45, 0, 7, 1, 2}, false},
		{"short", "127.0.0.1:5683", []byte{0x64}, false},
	} {
		if got := e.pullResponse(tc.peer, tc.b); got != tc.want {
			t.Errorf("%s: pullResponse = %v, want %v", tc.name, got, tc.want)
		}
	}
	e.fw.dl.pull.http = true
	if e.pullResponse("127.0.0.1:5683", wire(message.Acknowledgement, codes.Content, tok)) {
		t.Error("an HTTP pull has no CoAP token to match")
	}
}
