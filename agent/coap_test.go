package agent

import (
	"bytes"
	"errors"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
)

// withOptions is a CON GET whose options are n one-byte Uri-Path segments.
func withOptions(n int) []byte {
	b := []byte{0x40, 0x01, 0x12, 0x34}
	for i := 0; i < n; i++ {
		if i == 0 {
			b = append(b, 0xb1, byte('a'+i%26)) // delta 11: Uri-Path
		} else {
			b = append(b, 0x01, byte('a'+i%26)) // delta 0: Uri-Path again
		}
	}
	return b
}

// TestDecodeOptionRoom checks decode at the edges of the option room it
// allocates with a message (fewOptions) and of the bound (maxOptions):
// every count up to maxOptions decodes with every option kept, one more
// is refused.
func TestDecodeOptionRoom(t *testing.T) {
	for _, n := range []int{0, 1, fewOptions - 1, fewOptions, fewOptions + 1, maxOptions - 1, maxOptions, maxOptions + 1, 1000} {
		b := withOptions(n)
		m, err := decode(b)
		if n > maxOptions {
			if !errors.Is(err, message.ErrOptionsTooSmall) {
				t.Errorf("%d options: err %v, want ErrOptionsTooSmall", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d options: %v", n, err)
		}
		if len(m.Options) != n {
			t.Fatalf("%d options: decoded %d", n, len(m.Options))
		}
		for i, o := range m.Options {
			if o.ID != message.URIPath || !bytes.Equal(o.Value, []byte{byte('a' + i%26)}) {
				t.Fatalf("%d options: option %d is %v %q", n, i, o.ID, o.Value)
			}
		}
		// The message must not alias the caller's buffer.
		clear(b)
		if n > 0 && m.Options[0].Value[0] != 'a' {
			t.Fatalf("%d options: the message aliases the datagram", n)
		}
	}
}
