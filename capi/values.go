//go:build cgo

package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

// maxValues is AVC_VALUES_MAX: how many paths avc_set_value remembers.
const maxValues = 1024

// The engine lives in the runner (session.go), which is made anew when
// the configuration changes, and the host sets values (battery level,
// error codes, custom objects) whenever it likes. So libavc remembers the
// last value set for each path and hands all of them to every new runner;
// while one runs, a value also goes to its engine at once. The engine
// alone decides whether a path and value are acceptable: without a
// runner, a throwaway engine built from the current object definitions
// answers.
var values struct {
	mu    sync.Mutex // held while a value is set or the list is replayed
	list  []hostValue
	index map[string]int // path -> position in list
	live  *liveAgent     // the runner's agent, nil without one
}

// hostValue is one remembered avc_set_value; a zero value (TypeNone) is a
// removal.
type hostValue struct {
	path  lwm2m.Path
	value lwm2m.Value
}

// liveAgent is a session's agent while it runs.
type liveAgent struct {
	a   *agent.Agent
	ctx context.Context // done once Run has returned
}

// setValue implements avc_set_value. remove is true for a NULL value.
func setValue(path, value string, remove bool) error {
	if inFirmwareHandler() {
		// The session's loop is running the handler: waiting for it
		// would never end.
		return errInFirmwareHandler("avc_set_value")
	}
	p, err := lwm2m.ParsePath(path)
	if err != nil {
		return errorf(rcBadParameter, "avc_set_value: %v", err)
	}
	v := lwm2m.String(value)
	if remove {
		v = lwm2m.Value{}
	}
	key := p.String()
	values.mu.Lock()
	defer values.mu.Unlock()
	if _, known := values.index[key]; !known && len(values.list) >= maxValues {
		return errorf(rcOverflow, "avc_set_value: %s: %d paths are remembered already (AVC_VALUES_MAX)", key, maxValues)
	}
	cmd := agent.CmdSet{Path: p, Value: v}
	applied := false
	if l := values.live; l != nil {
		switch err := doRunning(l, cmd); {
		case err == nil:
			applied = true
		case errors.Is(err, agent.ErrBadValue):
			return errorf(rcBadParameter, "avc_set_value: %v", err)
		case errors.Is(err, agent.ErrClosed), l.ctx.Err() != nil:
			// The session ended meanwhile: remember it for the next one.
		default:
			return errorf(rcFault, "avc_set_value: %v", err)
		}
	}
	if !applied {
		if err := probeValue(cmd); err != nil {
			return err
		}
	}
	if i, known := values.index[key]; known {
		values.list[i].value = v
	} else {
		if values.index == nil {
			values.index = make(map[string]int)
		}
		values.index[key] = len(values.list)
		values.list = append(values.list, hostValue{path: p, value: v})
	}
	return nil
}

// probeValue asks an engine built from the current object definitions
// (and nothing else) whether it accepts cmd.
func probeValue(cmd agent.CmdSet) error {
	core.mu.Lock()
	objs := core.objects
	core.mu.Unlock()
	e, err := agent.NewEngine(probeConfig(objs), nil)
	if err != nil {
		return errorf(rcFault, "avc_set_value: %v", err)
	}
	if err := e.HandleCommand(time.Now(), cmd); err != nil {
		if errors.Is(err, agent.ErrBadValue) {
			return errorf(rcBadParameter, "avc_set_value: %v", err)
		}
		return errorf(rcFault, "avc_set_value: %v", err)
	}
	return nil
}

// probeConfig is a valid configuration with the objects objs, for checks
// that need an engine but no server.
func probeConfig(objs []lwm2m.ObjectDef) agent.Config {
	return agent.Config{ServerURI: "coap://127.0.0.1", Endpoint: "avc-probe", Objects: objs}
}

// doRunning sends cmd to l's agent. agent.Agent.Do answers ErrClosed both
// before Run has started and after it returned; until l.ctx is done it is
// the former, and the command is retried.
func doRunning(l *liveAgent, cmd agent.Command) error {
	for {
		err := l.a.Do(l.ctx, cmd)
		if !errors.Is(err, agent.ErrClosed) || l.ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// attachValues gives every remembered value to a session's agent, whose
// Run has been started, and makes it the agent later values go to. A value
// the engine refuses now (the object definitions changed) is logged and
// forgotten.
func attachValues(a *agent.Agent, ctx context.Context) {
	l := &liveAgent{a: a, ctx: ctx}
	values.mu.Lock()
	defer values.mu.Unlock()
	var refused []string
	for _, hv := range values.list {
		err := doRunning(l, agent.CmdSet{Path: hv.path, Value: hv.value})
		switch {
		case err == nil:
		case errors.Is(err, agent.ErrBadValue):
			logger.Warn("forgetting a value the engine refuses", "path", hv.path.String(), "err", err)
			refused = append(refused, hv.path.String())
		default:
			// Run has returned: the values stay for the next session.
			return
		}
	}
	if len(refused) > 0 {
		values.list = slices.DeleteFunc(values.list, func(hv hostValue) bool {
			return slices.Contains(refused, hv.path.String())
		})
		values.index = make(map[string]int, len(values.list))
		for i, hv := range values.list {
			values.index[hv.path.String()] = i
		}
	}
	values.live = l
}

// detachValues ends the delivery of values to a's session.
func detachValues(a *agent.Agent) {
	values.mu.Lock()
	if values.live != nil && values.live.a == a {
		values.live = nil
	}
	values.mu.Unlock()
}

// defineObjects implements avc_object_define_xml: it adds the objects of
// an OMA registry document to the configuration of the next session,
// replacing earlier definitions with the same IDs. A nil document removes
// every definition.
func defineObjects(xml []byte, clear bool) error {
	if clear {
		return defineObjectDefs("avc_object_define_xml", nil, true)
	}
	defs, err := lwm2m.ParseObjectXML(xml)
	if err != nil {
		return errorf(rcFormat, "avc_object_define_xml: %v", err)
	}
	return defineObjectDefs("avc_object_define_xml", defs, false)
}

// defineObjectDefs is the path avc_object_define_xml and avc_object_define
// share once they have object definitions: it checks them (checkObjectDefs,
// then an engine built with them), merges them into the configuration of
// the next session and remakes the runner. fn names the caller in errors.
func defineObjectDefs(fn string, defs []lwm2m.ObjectDef, clear bool) error {
	err := defineObjectsConfig(fn, defs, clear)
	if err == nil && !inFirmwareHandler() {
		// The runner is made anew with the objects (session.go).
		_, _ = ensureRunner()
	}
	return err
}

func defineObjectsConfig(fn string, defs []lwm2m.ObjectDef, clear bool) error {
	if clear {
		core.mu.Lock()
		core.objects = nil
		core.gen++
		core.mu.Unlock()
		return nil
	}
	if err := checkObjectDefs(defs); err != nil {
		return errorf(rcFormat, "%s: %v", fn, err)
	}
	core.mu.Lock()
	defer core.mu.Unlock()
	var merged []lwm2m.ObjectDef
	for _, old := range core.objects {
		if !slices.ContainsFunc(defs, func(d lwm2m.ObjectDef) bool { return d.ID == old.ID }) {
			merged = append(merged, old)
		}
	}
	for i, d := range defs {
		// A document that defines an ID twice: the last one wins.
		if !slices.ContainsFunc(defs[i+1:], func(later lwm2m.ObjectDef) bool { return later.ID == d.ID }) {
			merged = append(merged, d)
		}
	}
	// An engine with these objects must be possible (no built-in IDs).
	if _, err := agent.NewEngine(probeConfig(merged), nil); err != nil {
		return errorf(rcBadParameter, "%s: %s", fn, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	core.objects = merged
	core.gen++
	return nil
}
