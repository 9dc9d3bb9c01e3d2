package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/avc-agent/avc/lwm2m"
	"github.com/avc-agent/avc/lwm2m/text"
)

// ReadResource returns the value of the resource or resource instance at
// p in its text/plain form (numbers in decimal, booleans 0/1, opaque in
// base64, object links "3:0"), as the host's side of a Read: it is what
// le_avc_ReadLwm2mResource answers. p must name a single resource or one
// instance of a multiple resource; the Security object is never read. It
// returns ErrBadValue for any other path or an absent value.
func (e *Engine) ReadResource(now time.Time, p lwm2m.Path) (string, error) {
	bad := func(why string) error { return fmt.Errorf("%w: read %s: %s", ErrBadValue, p, why) }
	if p.Len < 3 {
		return "", bad("want a resource or a resource instance")
	}
	if p.Obj() == securityDef.id {
		return "", bad("the Security object holds secrets")
	}
	recs, errResp := e.collect(now, p)
	if errResp != nil {
		return "", bad(fmt.Sprintf("not found (%v)", errResp.Code))
	}
	if len(recs) != 1 || recs[0].Path != p {
		return "", bad("a multiple resource is read one instance at a time")
	}
	b, err := text.Encode(recs[0].Value)
	if err != nil {
		return "", bad(err.Error())
	}
	return string(b), nil
}

// ReadResource is Engine.ReadResource on the running agent; ErrClosed
// when Run is not running.
func (a *Agent) ReadResource(ctx context.Context, p lwm2m.Path) (string, error) {
	var v string
	var rerr error
	err := a.Do(ctx, cmdInspect{fn: func(e *Engine) { v, rerr = e.ReadResource(time.Now(), p) }})
	if err != nil {
		return "", err
	}
	return v, rerr
}
