package agent

import (
	"hash/crc32"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
)

// Push delivery: the server writes the package to its Package resource
// (/5/0/0, /9/x/2), block-wise (RFC 7959 Block1) for anything but a tiny
// image. Unlike other Block1 writes, which are reassembled in memory
// (blockwise.go), each block goes straight into storage, so an image of
// any size needs one block of RAM.

// dlPush is a push in progress.
type dlPush struct {
	lastOff int64  // offset of the last block taken
	lastLen int    // and its length
	lastSum uint32 // and its CRC, to recognise a retransmission
}

// pushRequest answers a write to the Package resource, taking its payload
// (one block of it, for a Block1 transfer) into storage.
func (d *download) pushRequest(now time.Time, m *message.Message, b BlockOption, block bool) *message.Message {
	if cf, ok := uintOpt(m, message.ContentFormat); ok && lwm2m.ContentFormat(cf) != lwm2m.FormatOpaque {
		return reply(codes.UnsupportedMediaType)
	}
	t := d.t
	if t.locked() {
		return reply(codes.MethodNotAllowed)
	}
	if size1, ok := uintOpt(m, message.Size1); ok {
		if limit := t.limits().maxSize; limit > 0 && int64(size1) > limit+4096 {
			resp := reply(codes.RequestEntityTooLarge)
			resp.Options = addUint(resp.Options, message.Size1, uint32(min(limit, 1<<31)))
			return resp
		}
	}
	if !block {
		b = BlockOption{Num: 0, More: false, SZX: szxMax}
		if len(m.Payload) == 0 {
			// The NULL package resets the state machine (/5/0/3).
			if err := t.nullPackage(now); err != nil {
				return reply(codes.MethodNotAllowed)
			}
			d.e.emit(Event{Kind: EventWrite, Path: t.packagePath()})
			return reply(codes.Changed)
		}
	} else if n := len(m.Payload); (b.More && n != b.Size()) || n > b.Size() {
		// A block of another length cannot be placed (B16).
		return reply(codes.BadRequest)
	}
	off := b.Offset()
	sum := crc32.ChecksumIEEE(m.Payload)
	switch {
	case b.Num == 0:
		// A new block 0 restarts an unfinished push (RFC 7959 §2.5, B19);
		// anything else is only taken in Idle.
		if !t.idle() && !(t.downloading() && d.push != nil) {
			return reply(codes.MethodNotAllowed)
		}
		if d.push != nil && d.off > 0 && off == d.push.lastOff && len(m.Payload) == d.push.lastLen && sum == d.push.lastSum && d.off == int64(len(m.Payload)) && b.More {
			// Block 0 again with a new message ID after its answer was
			// lost: the same transfer, not a restart.
			return d.e.tr.continueBlock1(b)
		}
		d.stop(now)
		if err := d.begin(now, "", true); err != nil {
			d.fail(now, handlerResult(err, ResultNotEnoughSpace), err)
			return reply(codes.InternalServerError)
		}
		d.push = &dlPush{}
	case d.push == nil || !t.downloading():
		return reply(codes.RequestEntityIncomplete)
	case off == d.push.lastOff && len(m.Payload) == d.push.lastLen && sum == d.push.lastSum && d.off == off+int64(len(m.Payload)):
		// The last block again (B13): answer it again, store nothing.
		if b.More {
			return d.e.tr.continueBlock1(b)
		}
		return reply(codes.Changed)
	case off != d.off:
		return reply(codes.RequestEntityIncomplete)
	}
	if r, err := d.data(now, m.Payload); err != nil {
		d.fail(now, r, err)
		switch r {
		case ResultNotEnoughSpace:
			return tooLarge()
		case ResultOutOfMemory:
			return reply(codes.InternalServerError)
		}
		return reply(codes.BadRequest)
	}
	d.push.lastOff, d.push.lastLen, d.push.lastSum = off, len(m.Payload), sum
	if b.More {
		return d.e.tr.continueBlock1(b)
	}
	d.complete(now)
	d.e.emit(Event{Kind: EventWrite, Path: t.packagePath()})
	resp := reply(codes.Changed)
	if block {
		resp.Options = withBlock(resp.Options, message.Block1, BlockOption{Num: b.Num, SZX: b.SZX})
	}
	return resp
}
