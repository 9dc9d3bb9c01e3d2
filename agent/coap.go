package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// maxOptions bounds the options decoded from one datagram (B09: 1000×
// Uri-Path must not cost unbounded memory).
const maxOptions = 48

// fewOptions is the option room decode allocates with every message: a
// block of a pull or an ACK needs a handful; a request with a long path
// and queries may need more, and gets maxOptions.
const fewOptions = 10

// rxScratch is where the engine decodes the responses of a pull, reusing
// one buffer for every block: nothing keeps such a response past its
// handling (the transport matches it by token and the pull copies the
// ETag and streams the payload through the verifier into storage), so a
// block costs no allocation.
type rxScratch struct {
	buf  []byte
	msg  message.Message
	opts [fewOptions]message.Option
}

// decode decodes b into s, overwriting what the last call returned.
func (s *rxScratch) decode(b []byte) (*message.Message, error) {
	if len(b) > maxDatagram {
		return nil, fmt.Errorf("agent: datagram of %d bytes is too large", len(b))
	}
	s.buf = append(s.buf[:0], b...)
	s.msg = message.Message{Options: s.opts[:0]}
	m := &s.msg
	_, err := coder.DefaultCoder.Decode(s.buf, m)
	if errors.Is(err, message.ErrOptionsTooSmall) {
		m = &message.Message{Options: make(message.Options, 0, maxOptions)}
		_, err = coder.DefaultCoder.Decode(s.buf, m)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: decode coap: %w", err)
	}
	if len(m.Payload) == 0 && endsWithMarker(s.buf) {
		return nil, errEmptyPayload
	}
	return m, nil
}

// decodedMessage is a message and its option room in one allocation.
type decodedMessage struct {
	msg  message.Message
	opts [fewOptions]message.Option
}

// maxDatagram is the largest datagram the engine accepts or emits.
const maxDatagram = 64 << 10

// errBadOption marks a request that carries an unrecognized critical option.
var errBadOption = errors.New("agent: unrecognized critical option")

// decode parses a CoAP datagram. Options are copied out of b so that the
// caller may reuse its buffer.
func decode(b []byte) (*message.Message, error) {
	if len(b) > maxDatagram {
		return nil, fmt.Errorf("agent: datagram of %d bytes is too large", len(b))
	}
	// The decoder aliases its input; decode a private copy so that nothing
	// the engine keeps points into the caller's buffer.
	c := append([]byte(nil), b...)
	// Most datagrams carry a few options: decode into room for
	// fewOptions, allocated with the message, and only a datagram with
	// more pays for room for maxOptions.
	d := new(decodedMessage)
	m := &d.msg
	m.Options = d.opts[:0]
	_, err := coder.DefaultCoder.Decode(c, m)
	if errors.Is(err, message.ErrOptionsTooSmall) {
		m = &message.Message{Options: make(message.Options, 0, maxOptions)}
		_, err = coder.DefaultCoder.Decode(c, m)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: decode coap: %w", err)
	}
	if len(m.Payload) == 0 && endsWithMarker(c) {
		// RFC 7252 §3: "The presence of a marker followed by a zero-length
		// payload MUST be processed as a message format error."
		return nil, errEmptyPayload
	}
	return m, nil
}

var errEmptyPayload = errors.New("agent: decode coap: payload marker without payload")

// endsWithMarker reports whether the options of a well-formed datagram b
// end with a payload marker that is its last byte. It walks the option
// headers (which the decoder has already validated).
func endsWithMarker(b []byte) bool {
	i := 4 + int(b[0]&0x0f)
	for i < len(b) {
		if b[i] == 0xff {
			return i == len(b)-1
		}
		delta, length := int(b[i]>>4), int(b[i]&0x0f)
		i++
		for _, n := range []*int{&delta, &length} {
			switch *n {
			case 13:
				if i >= len(b) {
					return false
				}
				*n = int(b[i]) + 13
				i++
			case 14:
				if i+1 >= len(b) {
					return false
				}
				*n = int(b[i])<<8 | int(b[i+1]) + 269
				i += 2
			}
		}
		i += length
	}
	return false
}

// badCriticalOption reports the first option that is critical (odd number,
// RFC 7252 §5.4.1) and unknown to us.
func badCriticalOption(m *message.Message) (message.OptionID, bool) {
	for _, o := range m.Options {
		if o.ID&1 == 1 {
			if _, known := message.CoapOptionDefs[o.ID]; !known {
				return o.ID, true
			}
		}
	}
	return 0, false
}

// encode serializes m.
func encode(m *message.Message) ([]byte, error) { return encodeInto(m, nil) }

// encodeInto serializes m into buf's array when it is large enough, else
// into a new one.
func encodeInto(m *message.Message, buf []byte) ([]byte, error) {
	n, err := coder.DefaultCoder.Size(*m)
	if err != nil {
		return nil, fmt.Errorf("agent: encode coap: %w", err)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := coder.DefaultCoder.Encode(*m, buf); err != nil {
		return nil, fmt.Errorf("agent: encode coap: %w", err)
	}
	return buf, nil
}

// opt builders; options are kept sorted by Options.Add.

func addString(o message.Options, id message.OptionID, s string) message.Options {
	return o.Add(message.Option{ID: id, Value: []byte(s)})
}

func addUint(o message.Options, id message.OptionID, v uint32) message.Options {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	i := 0
	for i < 4 && b[i] == 0 {
		i++
	}
	return o.Add(message.Option{ID: id, Value: append([]byte(nil), b[i:]...)})
}

func addPath(o message.Options, path string) message.Options {
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg != "" {
			o = addString(o, message.URIPath, seg)
		}
	}
	return o
}

// uintOpt returns the value of a uint option and whether it is present.
func uintOpt(m *message.Message, id message.OptionID) (uint32, bool) {
	v, err := m.Options.GetUint32(id)
	if err != nil {
		return 0, false
	}
	return v, true
}

// stringOpts returns all values of a repeatable string option.
func stringOpts(m *message.Message, id message.OptionID) []string {
	var out []string
	for _, o := range m.Options {
		if o.ID == id {
			out = append(out, string(o.Value))
		}
	}
	return out
}

// codeString formats a CoAP code as "2.05".
func codeString(c codes.Code) string {
	return fmt.Sprintf("%d.%02d", uint8(c)>>5, uint8(c)&0x1f)
}

// isRequest reports whether c is a method code.
func isRequest(c codes.Code) bool { return c >= 1 && c <= 31 }

// isResponse reports whether c is a response code (2.xx–5.xx).
func isResponse(c codes.Code) bool { return c >= 64 && c < 192 }
