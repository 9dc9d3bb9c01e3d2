//go:build wasip1

package main

import (
	"fmt"
	"unsafe"
)

// maxBuffer bounds one avc_buf_alloc (16 MiB); the largest input the
// engine accepts is a 64 KiB datagram.
const maxBuffer = 16 << 20

// buffers holds the Go slices handed to the host by avc_buf_alloc. Keeping
// them in the map keeps them reachable, and Go's collector never moves
// objects, so their addresses stay valid until avc_buf_free.
//
// Every pointer an export receives must lie, with its length, inside one of
// these buffers: view checks that instead of trusting the host, so a bad
// pointer is AVC_BAD_PARAMETER rather than a trap or silent corruption.
type buffers struct {
	live map[uint32][]byte // by address of the first byte
}

func (m *buffers) alloc(n int32) uint32 {
	if n <= 0 || n > maxBuffer {
		return 0
	}
	b := make([]byte, n)
	p := addr(b)
	if m.live == nil {
		m.live = make(map[uint32][]byte)
	}
	m.live[p] = b
	return p
}

func (m *buffers) free(p uint32) bool {
	if _, ok := m.live[p]; !ok {
		return false
	}
	delete(m.live, p)
	return true
}

// view returns the n bytes at p, which must lie inside a live buffer. A
// zero length is always valid and yields an empty slice whatever p is.
func (m *buffers) view(p uint32, n int32) ([]byte, error) {
	if n == 0 {
		return []byte{}, nil
	}
	if n < 0 {
		return nil, fmt.Errorf("negative length %d", n)
	}
	if b, ok := m.live[p]; ok {
		if int(n) > len(b) {
			return nil, fmt.Errorf("length %d exceeds the %d-byte buffer at %#x", n, len(b), p)
		}
		return b[:n:n], nil
	}
	for base, b := range m.live {
		if p > base && uint64(p)+uint64(n) <= uint64(base)+uint64(len(b)) {
			off := p - base
			return b[off : off+uint32(n) : off+uint32(n)], nil
		}
	}
	return nil, fmt.Errorf("%d bytes at %#x are not inside a buffer from avc_buf_alloc", n, p)
}

// addr is the linear-memory address of b's first byte.
func addr(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
