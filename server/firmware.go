package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// Errors of the firmware service. Operations wrap them with context; test
// with errors.Is.
var (
	// ErrNoFirmware: the server has no Config.FirmwareDir.
	ErrNoFirmware = errors.New("server: no firmware directory")
	// ErrBadImageName: an image name is not one path segment of
	// [A-Za-z0-9._-], or starts with a dot, or contains "..".
	ErrBadImageName = errors.New("server: bad firmware image name")
	// ErrImageNotFound: Config.FirmwareDir has no regular file of that name.
	ErrImageNotFound = errors.New("server: no such firmware image")
	// ErrImageTooLarge: an upload is larger than Config.FirmwareMaxSize.
	ErrImageTooLarge = errors.New("server: firmware image too large")
)

// fwPath is the first Uri-Path segment (CoAP) and path prefix (HTTP) of
// the firmware images.
const fwPath = "fw"

// maxImageName bounds an image name, a file name on every file system.
const maxImageName = 255

// FirmwareImage describes an image of Config.FirmwareDir.
//
// The URLs are those of the server's listeners (empty for a listener the
// server does not have), with Config.FirmwareHost as host when set.
type FirmwareImage struct {
	Name     string    `json:"name"`
	Size     int64     `json:"size"`   // bytes
	SHA256   string    `json:"sha256"` // hex, of the whole file
	Modified time.Time `json:"modified"`
	CoAPURL  string    `json:"coap_url,omitempty"`  // coap://host:port/fw/<name>
	CoAPSURL string    `json:"coaps_url,omitempty"` // coaps://host:port/fw/<name>
	HTTPURL  string    `json:"http_url,omitempty"`  // http://host:port/fw/<name>
}

// fwImage is an open image's identity: what its ETags derive from.
type fwImage struct {
	name string
	size int64
	mod  time.Time
	sum  [sha256.Size]byte
}

// coapETag is the ETag option of every block of the image: the first 8
// bytes of its SHA-256 (RFC 7252 §5.10.6 allows 1 to 8 bytes).
func (img fwImage) coapETag() []byte { return img.sum[:8] }

// httpETag is the strong HTTP entity tag of the image: the hex of the
// first 16 bytes of its SHA-256, quoted (RFC 9110 §8.8.3).
func (img fwImage) httpETag() string { return `"` + hex.EncodeToString(img.sum[:16]) + `"` }

// firmwareStore is the directory of images with a cache of their hashes,
// keyed by name and checked against size and modification time, so that
// a file is hashed once per version and never read whole per request.
type firmwareStore struct {
	dir string

	mu   sync.Mutex
	sums map[string]fwSum // by image name
}

type fwSum struct {
	size int64
	mod  time.Time
	sum  [sha256.Size]byte
}

func (st *firmwareStore) init(dir string) {
	st.dir = dir
	st.sums = make(map[string]fwSum)
}

// checkImageName returns nil when name may name an image: one path
// segment of [A-Za-z0-9._-] that does not start with a dot (the store's
// temporary files do) and does not contain "..".
func checkImageName(name string) error {
	if name == "" || len(name) > maxImageName || name[0] == '.' || strings.Contains(name, "..") {
		return fmt.Errorf("%w: %q", ErrBadImageName, name)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q", ErrBadImageName, name)
		}
	}
	return nil
}

// open opens image name for reading and returns it with its identity. The
// caller closes the file; reading it through the returned *os.File keeps
// to the version the identity describes even if the image is replaced
// meanwhile (uploads replace files by rename).
func (st *firmwareStore) open(name string) (*os.File, fwImage, error) {
	if st.dir == "" {
		return nil, fwImage{}, ErrNoFirmware
	}
	if err := checkImageName(name); err != nil {
		return nil, fwImage{}, err
	}
	f, err := os.Open(filepath.Join(st.dir, name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fwImage{}, fmt.Errorf("%w: %q", ErrImageNotFound, name)
		}
		return nil, fwImage{}, fmt.Errorf("server: open firmware %q: %w", name, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w: %q is not a regular file", ErrImageNotFound, name)
	}
	if err != nil {
		f.Close()
		return nil, fwImage{}, fmt.Errorf("server: open firmware %q: %w", name, err)
	}
	img := fwImage{name: name, size: fi.Size(), mod: fi.ModTime()}
	if img.sum, err = st.hash(name, f, fi); err != nil {
		f.Close()
		return nil, fwImage{}, err
	}
	return f, img, nil
}

// hash returns the SHA-256 of f, which is image name with info fi, from
// the cache when it holds the same size and modification time.
func (st *firmwareStore) hash(name string, f io.ReaderAt, fi os.FileInfo) ([sha256.Size]byte, error) {
	st.mu.Lock()
	e, ok := st.sums[name]
	st.mu.Unlock()
	if ok && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return e.sum, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("server: hash firmware %q: %w", name, err)
	}
	e = fwSum{size: fi.Size(), mod: fi.ModTime()}
	h.Sum(e.sum[:0])
	st.remember(name, e)
	return e.sum, nil
}

func (st *firmwareStore) remember(name string, e fwSum) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sums[name] = e
}

// list returns the images of the directory, ordered by name, and forgets
// the hashes of files that are gone. A missing directory has no images.
func (st *firmwareStore) list() ([]fwImage, error) {
	if st.dir == "" {
		return nil, ErrNoFirmware
	}
	entries, err := os.ReadDir(st.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("server: list firmware: %w", err)
	}
	var imgs []fwImage
	seen := make(map[string]bool)
	for _, e := range entries {
		if checkImageName(e.Name()) != nil || e.IsDir() {
			continue
		}
		f, img, err := st.open(e.Name())
		if err != nil {
			continue // removed meanwhile, or not a regular file
		}
		f.Close()
		imgs = append(imgs, img)
		seen[img.name] = true
	}
	st.mu.Lock()
	for name := range st.sums {
		if !seen[name] {
			delete(st.sums, name)
		}
	}
	st.mu.Unlock()
	return imgs, nil
}

// put stores r as image name, atomically: it writes a temporary file in
// the directory and renames it over the image. It fails with
// ErrImageTooLarge beyond max bytes, and reports whether the image is new.
func (st *firmwareStore) put(name string, r io.Reader, max int64) (fwImage, bool, error) {
	if st.dir == "" {
		return fwImage{}, false, ErrNoFirmware
	}
	if err := checkImageName(name); err != nil {
		return fwImage{}, false, err
	}
	if err := os.MkdirAll(st.dir, 0o755); err != nil {
		return fwImage{}, false, fmt.Errorf("server: store firmware %q: %w", name, err)
	}
	tmp, err := os.CreateTemp(st.dir, ".upload-*")
	if err != nil {
		return fwImage{}, false, fmt.Errorf("server: store firmware %q: %w", name, err)
	}
	stored := false
	defer func() {
		if !stored {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, max+1))
	switch {
	case err != nil:
		return fwImage{}, false, fmt.Errorf("server: store firmware %q: %w", name, err)
	case n > max:
		return fwImage{}, false, fmt.Errorf("%w: %q is over %d bytes", ErrImageTooLarge, name, max)
	}
	if err := errors.Join(tmp.Chmod(0o644), tmp.Sync(), tmp.Close()); err != nil {
		return fwImage{}, false, fmt.Errorf("server: store firmware %q: %w", name, err)
	}
	// Renaming keeps size and modification time, so the hash is cached
	// for the file as it will be.
	fi, err := os.Stat(tmp.Name())
	if err != nil {
		return fwImage{}, false, fmt.Errorf("server: store firmware %q: %w", name, err)
	}
	final := filepath.Join(st.dir, name)
	_, statErr := os.Stat(final)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fwImage{}, false, fmt.Errorf("server: store firmware %q: %w", name, err)
	}
	stored = true
	img := fwImage{name: name, size: fi.Size(), mod: fi.ModTime()}
	h.Sum(img.sum[:0])
	st.remember(name, fwSum{size: img.size, mod: img.mod, sum: img.sum})
	return img, errors.Is(statErr, fs.ErrNotExist), nil
}

// FirmwareImages lists the images of Config.FirmwareDir, ordered by name.
// It hashes the files it has not seen before, or that changed.
func (s *Server) FirmwareImages() ([]FirmwareImage, error) {
	return s.firmwareImages(nil)
}

// firmwareImages lists the images with URLs whose host, when the listen
// address is unspecified, is local (when not nil).
func (s *Server) firmwareImages(local net.IP) ([]FirmwareImage, error) {
	imgs, err := s.fw.list()
	if err != nil {
		return nil, err
	}
	out := make([]FirmwareImage, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, s.firmwareImage(img, local))
	}
	return out, nil
}

func (s *Server) firmwareImage(img fwImage, local net.IP) FirmwareImage {
	return FirmwareImage{
		Name:     img.name,
		Size:     img.size,
		SHA256:   hex.EncodeToString(img.sum[:]),
		Modified: img.mod,
		CoAPURL:  s.firmwareURL("coap", img.name, local),
		CoAPSURL: s.firmwareURL("coaps", img.name, local),
		HTTPURL:  s.firmwareURL("http", img.name, local),
	}
}

// PutFirmware stores the content of r as image name in
// Config.FirmwareDir, replacing any image of that name atomically (the
// new content is written to a temporary file, which is renamed). Requests
// for the image that started before the rename finish with the old
// content; their ETags tell it apart.
//
// It fails with ErrNoFirmware, ErrBadImageName, or ErrImageTooLarge when
// r holds more than Config.FirmwareMaxSize bytes.
func (s *Server) PutFirmware(name string, r io.Reader) (FirmwareImage, error) {
	img, _, err := s.fw.put(name, r, s.cfg.FirmwareMaxSize)
	if err != nil {
		return FirmwareImage{}, err
	}
	s.log.Info("firmware stored", "image", name, "size", img.size, "sha256", hex.EncodeToString(img.sum[:]))
	return s.firmwareImage(img, nil), nil
}

// firmwareURL returns the URL of image name on the listener of scheme
// ("coap", "coaps" or "http"), or "" when the server has no such listener.
// The host is Config.FirmwareHost when set, else the listen address's
// host, or local when that is unspecified and local is not nil.
func (s *Server) firmwareURL(scheme, name string, local net.IP) string {
	var a net.Addr
	switch scheme {
	case "coap":
		a = s.CoAPAddr()
	case "coaps":
		a = s.CoAPSAddr()
	case "http":
		a = s.HTTPAddr()
	}
	if a == nil {
		return ""
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	if s.cfg.FirmwareHost != "" {
		host = s.cfg.FirmwareHost
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && local != nil {
		host = local.String()
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: "/" + fwPath + "/" + name}
	return u.String()
}

// localIPTowards returns the local address the host would send from to
// reach peer, or nil. Connecting a UDP socket sends nothing.
func localIPTowards(peer net.Addr) net.IP {
	ua, ok := peer.(*net.UDPAddr)
	if !ok {
		return nil
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil
	}
	defer c.Close()
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return la.IP
	}
	return nil
}

// serveFirmwareCoAP answers a request for /fw/... and reports whether m
// was one (it then owns m). It runs before go-coap's block-wise layer,
// which would otherwise take each full block the handler produces for a
// whole representation to cut into blocks again: the handler cuts the
// blocks itself, straight from the file.
func (s *Server) serveFirmwareCoAP(m *pool.Message, cc *udpclient.Conn) bool {
	if s.cfg.FirmwareDir == "" || m.Code() < codes.GET || m.Code() > codes.DELETE {
		return false
	}
	var segs []string
	for _, o := range m.Options() {
		if o.ID == message.URIPath {
			segs = append(segs, string(o.Value))
		}
	}
	if len(segs) == 0 || segs[0] != fwPath {
		return false
	}
	resp := cc.AcquireMessage(cc.Context())
	defer cc.ReleaseMessage(resp)
	resp.SetToken(m.Token())
	if m.Type() == message.Confirmable {
		// A piggybacked response (RFC 7252 §5.2.1).
		resp.SetType(message.Acknowledgement)
		resp.SetMessageID(m.MessageID())
	} else {
		resp.SetType(message.NonConfirmable)
		resp.SetMessageID(cc.GetMessageID())
	}
	s.firmwareBlock(m, segs[1:], resp, cc.RemoteAddr())
	if err := cc.Session().WriteMessage(resp); err != nil {
		s.log.Debug("cannot send firmware block", "addr", addrString(cc.RemoteAddr()), "err", err)
	}
	cc.ReleaseMessage(m)
	return true
}

// firmwareBlock sets resp to the answer to m, a request for /fw/<segs>: one
// block of the image (RFC 7959 §2.4).
func (s *Server) firmwareBlock(m *pool.Message, segs []string, resp *pool.Message, peer net.Addr) {
	fail := func(code codes.Code, diag string) {
		resp.SetCode(code)
		if diag != "" {
			resp.SetContentFormat(message.TextPlain)
			resp.SetBody(bytes.NewReader([]byte(diag)))
		}
	}
	if m.Code() != codes.GET {
		fail(codes.MethodNotAllowed, "")
		return
	}
	if len(segs) != 1 {
		fail(codes.NotFound, "")
		return
	}
	f, img, err := s.fw.open(segs[0])
	switch {
	case errors.Is(err, ErrBadImageName):
		fail(codes.BadRequest, err.Error())
		return
	case errors.Is(err, ErrImageNotFound):
		fail(codes.NotFound, "")
		return
	case err != nil:
		s.log.Warn("cannot serve firmware", "image", segs[0], "err", err)
		fail(codes.InternalServerError, "")
		return
	}
	defer f.Close()

	// The client picks the block size and number; without a Block2 option
	// the server sends block 0 in the largest size. SZX 7 (BERT) exists on
	// reliable transports only, and is answered as 1024 (RFC 8323 §6).
	szx, num, hasBlock := blockwise.SZX1024, int64(0), false
	if v, err := m.GetOptionUint32(message.Block2); err == nil {
		bszx, bnum, _, err := blockwise.DecodeBlockOption(v)
		if err != nil {
			fail(codes.BadOption, "bad Block2 option")
			return
		}
		szx, num, hasBlock = min(bszx, blockwise.SZX1024), bnum, true
	}
	size := szx.Size()
	off := num * size
	// RFC 7959 §2.2: a block number beyond the representation is a 4.02
	// Bad Option.
	if num > 0 && off >= img.size {
		fail(codes.BadOption, "block beyond the end of the image")
		return
	}
	n := min(size, img.size-off)
	more := off+n < img.size
	buf := make([]byte, n)
	if got, err := f.ReadAt(buf, off); got < len(buf) {
		s.log.Warn("cannot read firmware", "image", img.name, "offset", off, "err", err)
		fail(codes.InternalServerError, "")
		return
	}
	resp.SetCode(codes.Content)
	resp.SetContentFormat(message.AppOctets)
	resp.SetOptionBytes(message.ETag, img.coapETag())
	if hasBlock || more {
		v, err := blockwise.EncodeBlockOption(szx, num, more)
		if err != nil {
			fail(codes.BadOption, err.Error())
			return
		}
		resp.SetOptionUint32(message.Block2, v)
	}
	// RFC 7959 §4: Size2 in a response tells the size of the whole
	// representation; sent with block 0 and whenever the request asks.
	if (num == 0 || m.HasOption(message.Size2)) && img.size <= math.MaxUint32 {
		resp.SetOptionUint32(message.Size2, uint32(img.size))
	}
	resp.SetBody(bytes.NewReader(buf))
	if num == 0 {
		s.log.Debug("firmware block-wise GET", "image", img.name, "szx", int(szx), "size", img.size, "addr", addrString(peer))
	}
}

// statusRecorder remembers the status of an HTTP response.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// httpFirmware serves GET and HEAD /fw/{name} with http.ServeContent, so
// with Range, If-Range, If-Match and If-None-Match, under the image's
// strong ETag.
func (s *Server) httpFirmware(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f, img, err := s.fw.open(name)
	if err != nil {
		s.firmwareAPIError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", img.httpETag())
	rec := &statusRecorder{ResponseWriter: w}
	http.ServeContent(rec, r, "", img.mod, f)
	s.fotas.httpServed(name, r.RemoteAddr, rec.status)
}

// apiFirmwareList serves GET /api/firmware: the images, as FirmwareImage
// objects.
func (s *Server) apiFirmwareList(w http.ResponseWriter, r *http.Request) {
	var local net.IP
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		local = a.IP
	}
	imgs, err := s.firmwareImages(local)
	if err != nil {
		s.firmwareAPIError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, imgs)
}

// apiFirmwarePut serves PUT /api/firmware/{name}: the body becomes the
// image. It answers 201 Created for a new image and 200 OK for a replaced
// one, with the image as a FirmwareImage object.
func (s *Server) apiFirmwarePut(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body := http.MaxBytesReader(w, r.Body, s.cfg.FirmwareMaxSize)
	img, created, err := s.fw.put(name, body, s.cfg.FirmwareMaxSize)
	if err != nil {
		s.firmwareAPIError(w, err)
		return
	}
	s.log.Info("firmware uploaded", "image", name, "size", img.size, "sha256", hex.EncodeToString(img.sum[:]))
	var local net.IP
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		local = a.IP
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/"+fwPath+"/"+name)
	}
	s.writeJSON(w, status, s.firmwareImage(img, local))
}

// firmwareAPIError answers with err as JSON, mapping the errors of the
// firmware service and of firmware updates to their HTTP status, and
// others as apiError does.
func (s *Server) firmwareAPIError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	status := 0
	switch {
	case errors.Is(err, ErrNoFirmware), errors.Is(err, ErrImageNotFound), errors.Is(err, errUnknownFOTA):
		status = http.StatusNotFound
	case errors.Is(err, ErrBadImageName):
		status = http.StatusBadRequest
	case errors.Is(err, ErrImageTooLarge), errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrFOTABusy):
		status = http.StatusConflict
	default:
		s.apiError(w, err)
		return
	}
	s.log.Debug("api error", "status", status, "err", err)
	s.writeJSON(w, status, errorJSON{Error: err.Error()})
}
