package agenttest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/agent"
)

// FilePeer is the peer key of the simulated firmware file server.
const FilePeer = "fw.example:5683"

// FileServer is a simulated CoAP file server (like libcoap's coap-server
// with a PUT image): it answers GET /fw/<name> block-wise (RFC 7959
// Block2) with an ETag derived from the content and Size2.
type FileServer struct {
	// Files are the served files by name.
	Files map[string][]byte
	// MaxSZX, when set, caps the block size answered (late negotiation).
	MaxSZX uint8
	// Mute makes the server answer nothing (an outage).
	Mute bool
	// Code, when set, is answered to every request instead of content.
	Code codes.Code
	// NoETag leaves the ETag out of the answers.
	NoETag bool
	// Requests are the GET requests received (retransmissions included).
	Requests []*message.Message
	// Bytes counts the payload bytes sent.
	Bytes int64

	sim   *Sim
	peer  string           // where it listens: FilePeer unless FileServerAt
	etags map[*byte][]byte // by the first byte of a file's content
}

// etag is the first 8 bytes of the SHA-256 of body, computed once per
// content.
func (f *FileServer) etag(body []byte) []byte {
	if len(body) == 0 {
		return []byte{0}
	}
	if f.etags == nil {
		f.etags = map[*byte][]byte{}
	}
	k := &body[0]
	if e, ok := f.etags[k]; ok {
		return e
	}
	sum := sha256.Sum256(body)
	f.etags[k] = sum[:8]
	return sum[:8]
}

// FileServer adds a CoAP file server to the simulated network at
// FilePeer.
func (s *Sim) FileServer() *FileServer { return s.FileServerAt(FilePeer) }

// FileServerAt adds a CoAP file server to the simulated network at peer,
// a "host:port" key or one with agent.DTLSPeerPrefix (standing for the
// DTLS session the driver would open: the engine's side of a coaps://
// pull).
func (s *Sim) FileServerAt(peer string) *FileServer {
	f := &FileServer{Files: map[string][]byte{}, sim: s, peer: peer}
	s.AddPeer(peer, f.receive)
	return f
}

// URI returns the coap URI of file name on the server.
func (f *FileServer) URI(name string) string { return "coap://" + FilePeer + "/fw/" + name }

func (f *FileServer) receive(data []byte) {
	m, err := decodeMsg(data)
	if err != nil || f.Mute || m.Type != message.Confirmable || m.Code != codes.GET {
		return
	}
	f.Requests = append(f.Requests, m)
	resp := &message.Message{Type: message.Acknowledgement, MessageID: m.MessageID, Token: m.Token, Options: make(message.Options, 0, 4)}
	defer func() { f.sim.SendFrom(f.peer, encodeMsg(resp)) }()
	if f.Code != 0 {
		resp.Code = f.Code
		return
	}
	p := Path(m)
	body, ok := f.Files[p[len("/fw/"):]]
	if len(p) < len("/fw/") || p[:len("/fw/")] != "/fw/" || !ok {
		resp.Code = codes.NotFound
		return
	}
	b := agent.BlockOption{SZX: 6}
	for _, o := range m.Options {
		if o.ID == message.Block2 {
			if v, err := agent.ParseBlockOption(o.Value); err == nil {
				b = v
			}
		}
	}
	if f.MaxSZX != 0 && b.SZX > f.MaxSZX {
		b.Num = uint32(b.Offset() / int64(16<<f.MaxSZX))
		b.SZX = f.MaxSZX
	}
	off := b.Offset()
	if off > int64(len(body)) || (off == int64(len(body)) && off > 0) {
		resp.Code = codes.BadRequest
		return
	}
	end := min(off+int64(b.Size()), int64(len(body)))
	b.More = end < int64(len(body))
	v, _ := b.Bytes()
	resp.Code = codes.Content
	if !f.NoETag {
		resp.Options = resp.Options.Add(message.Option{ID: message.ETag, Value: f.etag(body)})
	}
	resp.Options = resp.Options.Add(Uint(message.ContentFormat, 42))
	resp.Options = resp.Options.Add(message.Option{ID: message.Block2, Value: v})
	resp.Options = resp.Options.Add(Uint(message.Size2, uint32(len(body))))
	resp.Payload = body[off:end]
	f.Bytes += end - off
}

// Flash is a FirmwareHandler over simulated flash: written bytes become
// durable only on Sync, and PowerCut loses what was not synced. It
// installs by recording the version it boots next.
type Flash struct {
	// Data is the stored image, Synced how much of it is durable.
	Data   []byte
	Synced int
	// Installed is the version that runs after the next restart when an
	// install was performed; Running is the version running now.
	Installed, Running string
	// Pending is set by PerformUpgrade until Booted.
	Pending bool
	// FailWrite, FailInstall and DeferInstall inject handler errors.
	FailWrite, FailInstall, DeferInstall error
	// Writes counts StreamWrite calls; OnWrite, when set, runs first.
	Writes  int
	OnWrite func(n int)
	// Opens records each StreamOpen's offset.
	Opens []int64
	open  bool
}

// StreamOpen implements agent.FirmwareHandler.
func (f *Flash) StreamOpen(uri string, offset int64) error {
	f.Opens = append(f.Opens, offset)
	if offset > int64(len(f.Data)) {
		return fmt.Errorf("flash holds %d bytes, resume wants %d", len(f.Data), offset)
	}
	f.Data = f.Data[:offset]
	f.Synced = min(f.Synced, int(offset))
	f.open = true
	return nil
}

// StreamWrite implements agent.FirmwareHandler.
func (f *Flash) StreamWrite(p []byte) error {
	f.Writes++
	if f.OnWrite != nil {
		f.OnWrite(f.Writes)
	}
	if !f.open {
		return errors.New("flash: write without open")
	}
	if f.FailWrite != nil {
		return f.FailWrite
	}
	f.Data = append(f.Data, p...)
	return nil
}

// StreamFinish implements agent.FirmwareHandler.
func (f *Flash) StreamFinish() error {
	f.open = false
	f.Synced = len(f.Data)
	return nil
}

// Sync implements agent.FirmwareSyncer.
func (f *Flash) Sync() error {
	f.Synced = len(f.Data)
	return nil
}

// Reset implements agent.FirmwareHandler.
func (f *Flash) Reset() {
	f.Data, f.Synced, f.open = nil, 0, false
}

// PerformUpgrade implements agent.FirmwareHandler.
func (f *Flash) PerformUpgrade(pkg agent.FirmwarePackage) error {
	if f.DeferInstall != nil {
		return f.DeferInstall
	}
	if f.FailInstall != nil {
		return f.FailInstall
	}
	sum := sha256.Sum256(f.Data)
	if fmt.Sprintf("%x", sum[:]) != pkg.SHA256 || int64(len(f.Data)) != pkg.Size {
		return agent.ErrFirmwareIntegrity
	}
	f.Installed, f.Pending = pkg.Version, true
	return nil
}

// Booted implements agent.FirmwareHandler.
func (f *Flash) Booted(pkg agent.FirmwarePackage) (string, bool) {
	if f.Pending {
		f.Running, f.Pending = f.Installed, false
	}
	return f.Running, f.Running == pkg.Version && f.Running != ""
}

// PowerCut loses the bytes written since the last Sync, as a power cut
// would, and closes the stream.
func (f *Flash) PowerCut() {
	f.Data = f.Data[:f.Synced]
	f.open = false
}

// Equal reports whether the stored image is img.
func (f *Flash) Equal(img []byte) bool { return bytes.Equal(f.Data, img) }

// AwaitDownload reads a real agent's events until its firmware download
// ends, Downloaded (State 2) or failed (back to Idle with a result), and
// returns the last firmware status; its zero value when events closed.
func AwaitDownload(events <-chan agent.Event) agent.FirmwareStatus {
	var last agent.FirmwareStatus
	for ev := range events {
		if ev.Kind != agent.EventFirmware || ev.Firmware == nil {
			continue
		}
		last = *ev.Firmware
		if last.State == agent.FirmwareDownloaded || (last.State == agent.FirmwareIdle && last.Result != agent.ResultInitial) {
			break
		}
	}
	return last
}
