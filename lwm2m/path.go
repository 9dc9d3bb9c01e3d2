package lwm2m

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxID is the largest object, instance, resource or resource-instance ID.
// 65535 is reserved by the specification and therefore invalid.
const MaxID = 65534

// ErrBadPath reports a path that is not /o, /o/i, /o/i/r or /o/i/r/ri with
// IDs in 0..65534.
var ErrBadPath = errors.New("lwm2m: bad path")

// Path addresses the root, an object, an object instance, a resource or a
// resource instance. Len says how many of the IDs are set (0..4).
type Path struct {
	IDs [4]uint16
	Len int
}

// P builds a path from its IDs; it panics when given more than four.
func P(ids ...uint16) Path {
	if len(ids) > 4 {
		panic("lwm2m: path longer than 4")
	}
	var p Path
	copy(p.IDs[:], ids)
	p.Len = len(ids)
	return p
}

// ParsePath parses "/3/0/1" (leading slash optional, "" and "/" are the root).
func ParsePath(s string) (Path, error) {
	s = strings.TrimPrefix(s, "/")
	if s == "" {
		return Path{}, nil
	}
	return ParseSegments(strings.Split(s, "/"))
}

// ParseSegments parses the Uri-Path segments of a request.
func ParseSegments(segs []string) (Path, error) {
	var p Path
	if len(segs) > 4 {
		return p, fmt.Errorf("%w: %d segments", ErrBadPath, len(segs))
	}
	for i, s := range segs {
		if s == "" || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
			return p, fmt.Errorf("%w: segment %q", ErrBadPath, s)
		}
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n > MaxID {
			return p, fmt.Errorf("%w: segment %q", ErrBadPath, s)
		}
		p.IDs[i] = uint16(n)
	}
	p.Len = len(segs)
	return p, nil
}

// Obj returns the object ID (valid when Len >= 1).
func (p Path) Obj() uint16 { return p.IDs[0] }

// Inst returns the object instance ID (valid when Len >= 2).
func (p Path) Inst() uint16 { return p.IDs[1] }

// Res returns the resource ID (valid when Len >= 3).
func (p Path) Res() uint16 { return p.IDs[2] }

// RInst returns the resource instance ID (valid when Len == 4).
func (p Path) RInst() uint16 { return p.IDs[3] }

// Child returns p extended by id; it panics on a full path.
func (p Path) Child(id uint16) Path {
	if p.Len >= 4 {
		panic("lwm2m: child of a resource instance")
	}
	p.IDs[p.Len] = id
	p.Len++
	return p
}

// Parent returns p without its last ID (the root is its own parent).
func (p Path) Parent() Path {
	if p.Len > 0 {
		p.Len--
		p.IDs[p.Len] = 0
	}
	return p
}

// Contains reports whether q is p or lies below p.
func (p Path) Contains(q Path) bool {
	if q.Len < p.Len {
		return false
	}
	for i := 0; i < p.Len; i++ {
		if p.IDs[i] != q.IDs[i] {
			return false
		}
	}
	return true
}

// Less orders paths depth-first by ID, parents before children.
func (p Path) Less(q Path) bool {
	for i := 0; i < p.Len && i < q.Len; i++ {
		if p.IDs[i] != q.IDs[i] {
			return p.IDs[i] < q.IDs[i]
		}
	}
	return p.Len < q.Len
}

// Segments returns the IDs as Uri-Path segments.
func (p Path) Segments() []string {
	s := make([]string, p.Len)
	for i := 0; i < p.Len; i++ {
		s[i] = strconv.Itoa(int(p.IDs[i]))
	}
	return s
}

// String formats the path as "/3/0/1"; the root is "/".
func (p Path) String() string {
	if p.Len == 0 {
		return "/"
	}
	return "/" + strings.Join(p.Segments(), "/")
}

// Compare orders paths like Less: -1 when p sorts before q, 1 after, 0
// when they are equal.
func (p Path) Compare(q Path) int {
	switch {
	case p.Less(q):
		return -1
	case q.Less(p):
		return 1
	}
	return 0
}

// Check rejects a path longer than 4 or holding the reserved ID 65535.
func (p Path) Check() error {
	if p.Len < 0 || p.Len > 4 {
		return fmt.Errorf("%w: length %d", ErrBadPath, p.Len)
	}
	for _, id := range p.IDs[:p.Len] {
		if id > MaxID {
			return fmt.Errorf("%w: %s: id %d is reserved", ErrBadPath, p, id)
		}
	}
	return nil
}
