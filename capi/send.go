//go:build cgo

package main

import (
	"errors"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

// maxSendPaths bounds the paths of one avc_send.
const maxSendPaths = 1024

// attachWait is how long avc_send waits, right after le_avc_StartSession,
// for the session's agent to run.
const attachWait = 5 * time.Second

// send implements avc_send: it asks the running session's agent to report
// the current values at paths with the LwM2M Send operation.
func send(paths []string) error {
	if inFirmwareHandler() {
		return errInFirmwareHandler("avc_send")
	}
	if len(paths) == 0 {
		return errorf(rcBadParameter, "avc_send: no paths")
	}
	ps := make([]lwm2m.Path, 0, len(paths))
	for _, s := range paths {
		p, err := lwm2m.ParsePath(s)
		if err != nil {
			return errorf(rcBadParameter, "avc_send: %v", err)
		}
		ps = append(ps, p)
	}
	l, err := liveSession()
	if err != nil {
		return err
	}
	switch err := doRunning(l, agent.CmdSend{Paths: ps}); {
	case err == nil:
		return nil
	case errors.Is(err, agent.ErrBadValue):
		return errorf(rcBadParameter, "avc_send: %v", err)
	case errors.Is(err, agent.ErrSendMuted):
		return errorf(rcNotPermitted, "avc_send: %v", err)
	case errors.Is(err, agent.ErrClosed), l.ctx.Err() != nil:
		return errorf(rcNotPermitted, "avc_send: the session has ended")
	default:
		return errorf(rcFault, "avc_send: %v", err)
	}
}

// liveSession returns the running session's agent. Just after
// le_avc_StartSession the agent may not run yet: it waits for it a little.
func liveSession() (*liveAgent, error) {
	deadline := time.Now().Add(attachWait)
	for {
		core.mu.Lock()
		started := core.sess != nil
		core.mu.Unlock()
		if !started {
			return nil, errorf(rcNotPermitted, "avc_send: no session is started")
		}
		values.mu.Lock()
		l := values.live
		values.mu.Unlock()
		if l != nil && l.ctx.Err() == nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, errorf(rcNotPermitted, "avc_send: the session is not running yet")
		}
		time.Sleep(time.Millisecond)
	}
}
