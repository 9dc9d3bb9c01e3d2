package agent

import (
	"hash/crc32"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/avc-agent/avc/lwm2m"
)

// Push delivery: the server writes the package to /5/0/0, block-wise
// (RFC 7959 Block1) for anything but a tiny image. Unlike other Block1
// writes, which are reassembled in memory (blockwise.go), each block goes
// straight into storage, so an image of any size needs one block of RAM.

// fwPush is a push in progress.
type fwPush struct {
	lastOff int64  // offset of the last block taken
	lastLen int    // and its length
	lastSum uint32 // and its CRC, to recognise a retransmission
}

// isPackageWrite reports whether m writes the Package resource /5/0/0.
func isPackageWrite(m *message.Message) bool {
	if m.Code != codes.PUT && m.Code != codes.POST {
		return false
	}
	var segs []string
	for _, o := range m.Options {
		if o.ID == message.URIPath {
			segs = append(segs, string(o.Value))
		}
	}
	return len(segs) == 3 && segs[0] == "5" && segs[1] == "0" && segs[2] == "0"
}

// pushRequest answers a write to /5/0/0, taking its payload (one block
// of it, for a Block1 transfer) into storage.
func (fw *firmware) pushRequest(now time.Time, m *message.Message, b BlockOption, block bool) *message.Message {
	if cf, ok := uintOpt(m, message.ContentFormat); ok && lwm2m.ContentFormat(cf) != lwm2m.FormatOpaque {
		return reply(codes.UnsupportedMediaType)
	}
	st := fw.e.fwState()
	if st.State == FirmwareUpdating {
		return reply(codes.MethodNotAllowed)
	}
	if size1, ok := uintOpt(m, message.Size1); ok && fw.cfg.MaxSize > 0 && int64(size1) > fw.cfg.MaxSize+4096 {
		resp := reply(codes.RequestEntityTooLarge)
		resp.Options = addUint(resp.Options, message.Size1, uint32(min(fw.cfg.MaxSize, 1<<31)))
		return resp
	}
	if !block {
		b = BlockOption{Num: 0, More: false, SZX: szxMax}
		if len(m.Payload) == 0 {
			// The NULL package resets the state machine (/5/0/3).
			fw.reset(now, ResultInitial)
			fw.e.emit(Event{Kind: EventWrite, Path: "/5/0/0"})
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
		if st.State != FirmwareIdle && !(st.State == FirmwareDownloading && fw.push != nil) {
			return reply(codes.MethodNotAllowed)
		}
		if fw.push != nil && fw.off > 0 && off == fw.push.lastOff && len(m.Payload) == fw.push.lastLen && sum == fw.push.lastSum && fw.off == int64(len(m.Payload)) && b.More {
			// Block 0 again with a new message ID after its answer was
			// lost: the same transfer, not a restart.
			return fw.e.tr.continueBlock1(b)
		}
		fw.stopTransfers(now)
		if err := fw.begin(now, "", true); err != nil {
			fw.fail(now, handlerResult(err, ResultNotEnoughSpace), err)
			return reply(codes.InternalServerError)
		}
		fw.push = &fwPush{}
	case fw.push == nil || st.State != FirmwareDownloading:
		return reply(codes.RequestEntityIncomplete)
	case off == fw.push.lastOff && len(m.Payload) == fw.push.lastLen && sum == fw.push.lastSum && fw.off == off+int64(len(m.Payload)):
		// The last block again (B13): answer it again, store nothing.
		if b.More {
			return fw.e.tr.continueBlock1(b)
		}
		return reply(codes.Changed)
	case off != fw.off:
		return reply(codes.RequestEntityIncomplete)
	}
	if r, err := fw.data(now, m.Payload); err != nil {
		fw.fail(now, r, err)
		switch r {
		case ResultNotEnoughSpace:
			return tooLarge()
		case ResultOutOfMemory:
			return reply(codes.InternalServerError)
		}
		return reply(codes.BadRequest)
	}
	fw.push.lastOff, fw.push.lastLen, fw.push.lastSum = off, len(m.Payload), sum
	if b.More {
		return fw.e.tr.continueBlock1(b)
	}
	fw.complete(now)
	fw.e.emit(Event{Kind: EventWrite, Path: "/5/0/0"})
	resp := reply(codes.Changed)
	if block {
		resp.Options = withBlock(resp.Options, message.Block1, BlockOption{Num: b.Num, SZX: b.SZX})
	}
	return resp
}
