package wsrelay

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Opcodes of RFC 6455 §5.2.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close status codes of RFC 6455 §7.4.1.
const (
	closeNormal      = 1000
	closeGoingAway   = 1001
	closeProtocol    = 1002
	closeUnsupported = 1003
	closeTooBig      = 1009
	closeInternal    = 1011
)

// maxControlPayload is the largest payload of a control frame (§5.5).
const maxControlPayload = 125

// acceptGUID is the GUID of the Sec-WebSocket-Accept computation (§1.3).
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// A protocolError is a violation by the peer; the session is closed with
// its code.
type protocolError struct {
	code uint16
	msg  string
}

func (e *protocolError) Error() string { return fmt.Sprintf("websocket: %s (close %d)", e.msg, e.code) }

func errProtocol(format string, args ...any) error {
	return &protocolError{code: closeProtocol, msg: fmt.Sprintf(format, args...)}
}

// errPeerClosed reports a close frame from the peer.
var errPeerClosed = errors.New("websocket: closed by peer")

// frame is one parsed WebSocket frame, its payload unmasked.
type frame struct {
	fin     bool
	op      byte
	payload []byte
}

// readFrame reads one client frame (RFC 6455 §5.2). Client frames must be
// masked and use no reserved bits; a data frame's payload may be at most
// max bytes, a control frame's 125, with FIN set. Lengths must use the
// minimal encoding.
func readFrame(r io.Reader, max int) (frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{fin: h[0]&0x80 != 0, op: h[0] & 0x0F}
	if h[0]&0x70 != 0 {
		return frame{}, errProtocol("reserved bits set")
	}
	switch f.op {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if !f.fin {
			return frame{}, errProtocol("fragmented control frame")
		}
	default:
		return frame{}, errProtocol("unknown opcode %#x", f.op)
	}
	if h[1]&0x80 == 0 {
		return frame{}, errProtocol("unmasked client frame")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return frame{}, unexpected(err)
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
		if n < 126 {
			return frame{}, errProtocol("non-minimal length")
		}
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return frame{}, unexpected(err)
		}
		n = binary.BigEndian.Uint64(b[:])
		if n>>63 != 0 {
			return frame{}, errProtocol("length with the most significant bit set")
		}
		if n <= 0xFFFF {
			return frame{}, errProtocol("non-minimal length")
		}
	}
	if f.op >= opClose && n > maxControlPayload {
		return frame{}, errProtocol("control frame of %d bytes", n)
	}
	if n > uint64(max) {
		return frame{}, &protocolError{code: closeTooBig, msg: fmt.Sprintf("frame of %d bytes, more than %d", n, max)}
	}
	var key [4]byte
	if _, err := io.ReadFull(r, key[:]); err != nil {
		return frame{}, unexpected(err)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return frame{}, unexpected(err)
	}
	for i := range f.payload {
		f.payload[i] ^= key[i&3]
	}
	return f, nil
}

// unexpected turns an EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendFrame appends a server frame (unmasked, FIN set) to b.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// conn is the server side of one WebSocket session carrying binary
// messages.
type conn struct {
	nc  net.Conn
	br  *bufio.Reader
	max int // largest message

	wmu    sync.Mutex // serializes writes
	closed bool       // a close frame was sent
}

// readMessage returns the next binary message, reassembling fragments. It
// answers pings and skips pongs. A close frame from the peer is answered
// and reported as errPeerClosed; a protocol violation is answered with a
// close frame of its code and returned.
func (c *conn) readMessage() ([]byte, error) {
	var msg []byte
	fragmented := false
	for {
		f, err := readFrame(c.br, c.max)
		if err != nil {
			return nil, c.fail(err)
		}
		switch f.op {
		case opPing:
			if err := c.write(opPong, f.payload); err != nil {
				return nil, err
			}
			continue
		case opPong:
			continue
		case opClose:
			code := uint16(closeNormal)
			if len(f.payload) == 1 {
				return nil, c.fail(errProtocol("close frame of 1 byte"))
			}
			if len(f.payload) >= 2 {
				code = binary.BigEndian.Uint16(f.payload)
			}
			c.close(code, "")
			return nil, errPeerClosed
		case opText:
			return nil, c.fail(&protocolError{code: closeUnsupported, msg: "text message; datagrams are binary messages"})
		case opBinary:
			if fragmented {
				return nil, c.fail(errProtocol("new message inside a fragmented one"))
			}
			msg = f.payload
		case opContinuation:
			if !fragmented {
				return nil, c.fail(errProtocol("continuation without a message"))
			}
			if len(msg)+len(f.payload) > c.max {
				return nil, c.fail(&protocolError{code: closeTooBig, msg: fmt.Sprintf("message of more than %d bytes", c.max)})
			}
			msg = append(msg, f.payload...)
		}
		if f.fin {
			return msg, nil
		}
		fragmented = true
	}
}

// fail sends the close frame a protocol error calls for, then returns err.
func (c *conn) fail(err error) error {
	var pe *protocolError
	if errors.As(err, &pe) {
		c.close(pe.code, pe.msg)
	}
	return err
}

// write sends one unfragmented frame.
func (c *conn) write(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	if op == opClose {
		c.closed = true
	}
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(appendFrame(nil, op, payload))
	return err
}

// writeMessage sends one binary message.
func (c *conn) writeMessage(b []byte) error { return c.write(opBinary, b) }

// close sends a close frame with code and reason (once; later calls do
// nothing).
func (c *conn) close(code uint16, reason string) {
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
	}
	p := binary.BigEndian.AppendUint16(nil, code)
	c.write(opClose, append(p, reason...))
}

// writeTimeout bounds one frame write, so a stalled browser cannot block
// the relay's UDP reader for ever.
const writeTimeout = 10 * time.Second

// headerHas reports whether a comma-separated header of r lists token
// (case-insensitively).
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// checkUpgrade validates a client's opening handshake (RFC 6455 §4.2.1)
// and returns its key, or the HTTP status and reason to refuse it with.
func checkUpgrade(r *http.Request) (key string, status int, reason string) {
	if r.Method != http.MethodGet {
		return "", http.StatusMethodNotAllowed, "a WebSocket handshake is a GET"
	}
	if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
		return "", http.StatusUpgradeRequired, "this is a WebSocket endpoint"
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return "", http.StatusUpgradeRequired, "unsupported WebSocket version (want 13)"
	}
	key = strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", http.StatusBadRequest, "bad Sec-WebSocket-Key"
	}
	return key, 0, ""
}

// upgrade completes the opening handshake and takes over the connection.
// The caller has checked the request with checkUpgrade.
func upgrade(w http.ResponseWriter, key string, max int) (*conn, error) {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("websocket: hijack: %w", err)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptKey(key) + "\r\n\r\n"
	nc.SetDeadline(time.Time{})
	nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := nc.Write([]byte(resp)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("websocket: handshake: %w", err)
	}
	return &conn{nc: nc, br: brw.Reader, max: max}, nil
}
