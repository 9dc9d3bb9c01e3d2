//go:build cgo

package main

/*
#include "capi.h"

// Object callback calls (avc_object_handlers_t); h is a copy of the
// host's struct.
static inline void avc_call_object_write_(const avc_object_handlers_t* h, uintptr_t user,
                                          const char* path, const char* value)
{
    h->write((void*)user, path, value);
}

static inline void avc_call_object_execute_(const avc_object_handlers_t* h, uintptr_t user,
                                            const char* path, const char* args)
{
    h->execute((void*)user, path, args);
}

static inline void avc_call_object_read_(const avc_object_handlers_t* h, uintptr_t user, const char* path)
{
    h->read((void*)user, path);
}
*/
import "C"

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"unsafe"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
)

// maxObjectDefs bounds the objects one avc_object_define call takes.
const maxObjectDefs = 1024

// versionRE is the form of an object version ("1.0", "2.12").
var versionRE = regexp.MustCompile(`^[0-9]{1,5}\.[0-9]{1,5}$`)

// checkObjectDefs checks the rules of the OMA registry format on object
// definitions, whatever made them (ParseObjectXML or avc_object_define):
// IDs in range, each resource defined once, a known type, operations R,
// W, RW, E or none, executable resources without a type and readable or
// writable ones with one, a version of the form "1.0".
func checkObjectDefs(defs []lwm2m.ObjectDef) error {
	for _, d := range defs {
		if d.ID > lwm2m.MaxID {
			return fmt.Errorf("object ID %d is out of range (0..%d)", d.ID, lwm2m.MaxID)
		}
		if !versionRE.MatchString(d.Version) {
			return fmt.Errorf("object %d: version %q, want the form \"1.0\"", d.ID, d.Version)
		}
		seen := make(map[uint16]bool, len(d.Resources))
		for _, r := range d.Resources {
			bad := func(format string, args ...any) error {
				return fmt.Errorf("object %d: resource %d: %s", d.ID, r.ID, fmt.Sprintf(format, args...))
			}
			switch {
			case r.ID > lwm2m.MaxID:
				return bad("ID out of range (0..%d)", lwm2m.MaxID)
			case seen[r.ID]:
				return bad("defined twice")
			case r.Type > lwm2m.TypeCoreLink:
				return bad("unknown type %d", r.Type)
			}
			seen[r.ID] = true
			if r.OnRead && r.Operations&lwm2m.OpRead == 0 {
				return bad("a read callback on a resource that is not readable")
			}
			switch r.Operations {
			case 0, lwm2m.OpRead, lwm2m.OpWrite, lwm2m.OpRead | lwm2m.OpWrite:
				if r.Operations != 0 && r.Type == lwm2m.TypeNone {
					return bad("readable or writable without a type")
				}
			case lwm2m.OpExecute:
				if r.Type != lwm2m.TypeNone {
					return bad("executable with type %s", r.Type)
				}
			default:
				return bad("operations %s: want R, W, RW, E or none", r.Operations)
			}
		}
	}
	return nil
}

// objectDefsFromC copies avc_object_define's arguments into object
// definitions. Malformed fields are AVC_ERR_FORMAT (as in a registry
// document), NULL arrays AVC_ERR_BAD_PARAMETER.
func objectDefsFromC(defs *C.avc_object_def_t, n C.size_t) ([]lwm2m.ObjectDef, error) {
	const fn = "avc_object_define"
	switch {
	case defs == nil:
		return nil, errorf(rcBadParameter, "%s: defs is NULL but n is %d", fn, uint64(n))
	case n == 0 || n > maxObjectDefs:
		return nil, errorf(rcBadParameter, "%s: n %d is out of range (1..%d)", fn, uint64(n), maxObjectDefs)
	}
	var out []lwm2m.ObjectDef
	for i, cd := range unsafe.Slice(defs, int(n)) {
		d := lwm2m.ObjectDef{
			ID:        uint16(cd.id),
			Name:      goStringOrEmpty(cd.name),
			Version:   goStringOrEmpty(cd.version),
			Multiple:  cd.multiple != 0,
			Mandatory: cd.mandatory != 0,
		}
		if d.Version == "" {
			d.Version = "1.0"
		}
		switch {
		case cd.resources == nil && cd.resource_count != 0:
			return nil, errorf(rcBadParameter, "%s: defs[%d]: resources is NULL but resource_count is %d", fn, i, uint64(cd.resource_count))
		case cd.resource_count > C.size_t(lwm2m.MaxID)+1:
			return nil, errorf(rcBadParameter, "%s: defs[%d]: resource_count %d is out of range", fn, i, uint64(cd.resource_count))
		}
		if cd.resource_count > 0 {
			for j, cr := range unsafe.Slice(cd.resources, int(cd.resource_count)) {
				if cr._type < 0 || cr._type > C.int(lwm2m.TypeCoreLink) {
					return nil, errorf(rcFormat, "%s: object %d: resource %d: unknown type %d", fn, d.ID, uint16(cr.id), int(cr._type))
				}
				if cr.operations&^C.uint(lwm2m.OpRead|lwm2m.OpWrite|lwm2m.OpExecute|C.AVC_OP_READ_CB) != 0 {
					return nil, errorf(rcFormat, "%s: object %d: resources[%d]: unknown operations bits %#x", fn, d.ID, j, uint(cr.operations))
				}
				d.Resources = append(d.Resources, lwm2m.ResourceDef{
					ID:         uint16(cr.id),
					Name:       goStringOrEmpty(cr.name),
					Operations: lwm2m.Operations(cr.operations &^ C.AVC_OP_READ_CB),
					Multiple:   cr.multiple != 0,
					Mandatory:  cr.mandatory != 0,
					Type:       lwm2m.Type(cr._type),
					OnRead:     cr.operations&C.AVC_OP_READ_CB != 0,
				})
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func goStringOrEmpty(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// objHandlers holds avc_object_set_handlers' callbacks.
var objHandlers struct {
	mu   sync.Mutex
	h    C.avc_object_handlers_t
	user C.uintptr_t
}

// currentObjHandlers returns the callbacks set now (they may have changed
// since an event was queued).
func currentObjHandlers() (C.avc_object_handlers_t, C.uintptr_t) {
	objHandlers.mu.Lock()
	defer objHandlers.mu.Unlock()
	return objHandlers.h, objHandlers.user
}

// setObjectHandlers implements avc_object_set_handlers; h nil removes the
// callbacks.
func setObjectHandlers(h *C.avc_object_handlers_t, user C.uintptr_t) {
	objHandlers.mu.Lock()
	defer objHandlers.mu.Unlock()
	if h == nil {
		objHandlers.h, objHandlers.user = C.avc_object_handlers_t{}, 0
		return
	}
	objHandlers.h, objHandlers.user = *h, user
}

// isCustomObject reports whether obj is one of the defined objects.
func isCustomObject(obj uint16) bool {
	core.mu.Lock()
	defer core.mu.Unlock()
	return slices.ContainsFunc(core.objects, func(d lwm2m.ObjectDef) bool { return d.ID == obj })
}

// objectEvent reports a server Write or Execute on a custom object to
// the host's object callbacks, on the dispatcher thread. Called from the
// session's event loop, where a written value is read from the engine.
func objectEvent(a *agent.Agent, ctx context.Context, ev agent.Event) {
	if ev.Kind == agent.EventReadRequest {
		readRequest(a, ctx, ev)
		return
	}
	if ev.Kind != agent.EventWrite && ev.Kind != agent.EventExecute {
		return
	}
	p, err := lwm2m.ParsePath(ev.Path)
	if err != nil || p.Len < 1 || !isCustomObject(p.Obj()) {
		return
	}
	objHandlers.mu.Lock()
	h := objHandlers.h
	objHandlers.mu.Unlock()
	switch ev.Kind {
	case agent.EventWrite:
		if h.write == nil {
			return
		}
		value, hasValue := "", false
		if p.Len >= 3 {
			c, cancel := context.WithTimeout(ctx, controlWait)
			v, err := a.ReadResource(c, p)
			cancel()
			value, hasValue = v, err == nil
		}
		path := ev.Path
		enqueue(statusEvent{run: func() { deliverObjectWrite(path, value, hasValue) }})
	case agent.EventExecute:
		if h.execute == nil {
			return
		}
		path, args := ev.Path, string(ev.Data)
		enqueue(statusEvent{run: func() { deliverObjectExecute(path, args) }})
	}
}

// deliverObjectWrite calls the write callback set now (it may have
// changed since the event was queued). On the dispatcher thread.
func deliverObjectWrite(path, value string, hasValue bool) {
	h, user := currentObjHandlers()
	if h.write == nil {
		return
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var cv *C.char
	if hasValue {
		cv = C.CString(value)
		defer C.free(unsafe.Pointer(cv))
	}
	C.avc_call_object_write_(&h, user, cp, cv)
}

// deliverObjectExecute calls the execute callback set now. On the
// dispatcher thread.
func deliverObjectExecute(path, args string) {
	h, user := currentObjHandlers()
	if h.execute == nil {
		return
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	ca := C.CString(args)
	defer C.free(unsafe.Pointer(ca))
	C.avc_call_object_execute_(&h, user, cp, ca)
}

// readRequest has the host's read callback give the values of a server
// read (agent.EventReadRequest), on the dispatcher thread, then completes
// it: the engine answers the server. Without a read callback it completes
// at once. Called from the session's event loop.
func readRequest(a *agent.Agent, ctx context.Context, ev agent.Event) {
	h, _ := currentObjHandlers()
	none := h.read == nil
	done := func() {
		c, cancel := context.WithTimeout(ctx, controlWait)
		defer cancel()
		if err := a.Do(c, agent.CmdReadDone{Token: ev.Token}); err != nil {
			// Timed out already (the engine answered with its values) or
			// the session ended.
			logger.Debug("read callback: completing the read", "token", ev.Token, "err", err)
		}
	}
	if none {
		done()
		return
	}
	paths := ev.Paths
	enqueue(statusEvent{run: func() {
		for _, p := range paths {
			deliverObjectRead(p)
		}
		done()
	}})
}

// deliverObjectRead calls the read callback set now. On the dispatcher
// thread.
func deliverObjectRead(path string) {
	h, user := currentObjHandlers()
	if h.read == nil {
		return
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	C.avc_call_object_read_(&h, user, cp)
}
