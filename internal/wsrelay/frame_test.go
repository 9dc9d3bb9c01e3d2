package wsrelay

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestAcceptKey checks the worked example of RFC 6455 §1.3.
func TestAcceptKey(t *testing.T) {
	if got, want := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Fatalf("acceptKey = %q, want %q", got, want)
	}
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    frame
		wantErr error
	}{
		{"binary", clientFrame(0x80|opBinary, []byte("hi"), true), frame{fin: true, op: opBinary, payload: []byte("hi")}, nil},
		{"empty", clientFrame(0x80|opBinary, nil, true), frame{fin: true, op: opBinary, payload: []byte{}}, nil},
		{"not final", clientFrame(opBinary, []byte("h"), true), frame{op: opBinary, payload: []byte("h")}, nil},
		{"16-bit length", clientFrame(0x80|opBinary, make([]byte, 300), true), frame{fin: true, op: opBinary, payload: make([]byte, 300)}, nil},
		{"64-bit length", clientFrame(0x80|opBinary, make([]byte, 70000), true), frame{fin: true, op: opBinary, payload: make([]byte, 70000)}, nil},
		{"truncated header", []byte{0x82}, frame{}, io.ErrUnexpectedEOF},
		{"truncated payload", clientFrame(0x80|opBinary, []byte("hello"), true)[:8], frame{}, io.ErrUnexpectedEOF},
		{"nothing", nil, frame{}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := readFrame(bytes.NewReader(tt.in), 100000)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if f.fin != tt.want.fin || f.op != tt.want.op || !bytes.Equal(f.payload, tt.want.payload) {
				t.Fatalf("frame = %v %#x %d bytes, want %v %#x %d", f.fin, f.op, len(f.payload), tt.want.fin, tt.want.op, len(tt.want.payload))
			}
		})
	}
}

// FuzzReadFrame: the frame parser never panics, never returns more than
// its limit, and what it accepts encodes back to a frame that parses the
// same.
func FuzzReadFrame(f *testing.F) {
	f.Add(clientFrame(0x80|opBinary, []byte("hello"), true))
	f.Add(clientFrame(opBinary, make([]byte, 200), true))
	f.Add(clientFrame(0x80|opClose, []byte{3, 232}, true))
	f.Add([]byte{0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Add(clientFrame(0x80|opText, []byte("x"), false))
	const max = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			fr, err := readFrame(r, max)
			if err != nil {
				return
			}
			if len(fr.payload) > max || (fr.op >= opClose && len(fr.payload) > maxControlPayload) {
				t.Fatalf("accepted a frame of %d bytes, opcode %#x", len(fr.payload), fr.op)
			}
			b0 := fr.op
			if fr.fin {
				b0 |= 0x80
			}
			again, err := readFrame(bytes.NewReader(clientFrame(b0, fr.payload, true)), max)
			if err != nil || again.fin != fr.fin || again.op != fr.op || !bytes.Equal(again.payload, fr.payload) {
				t.Fatalf("re-encoded frame parses as %+v, %v; want %+v", again, err, fr)
			}
		}
	})
}
