//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

import (
	"strings"
	"time"
	"unsafe"

	"github.com/avc-agent/avc/agent"
)

// This file holds every exported function. Each one defers guard, so a
// Go panic becomes an error code, and records its outcome with result()
// as the calling thread's last error. The public prototypes are in
// include/; parameters the headers type as void* or as handler references
// are C.uintptr_t here (see the package comment).

// ---- legato.h ----

//export le_result_Txt
func le_result_Txt(r C.le_result_t) (s *C.char) {
	defer guard("le_result_Txt", &s, nil)
	if r <= 0 && int(-r) < len(leResultNames) {
		return staticCString(leResultNames[-r])
	}
	return staticCString("(unknown)")
}

// ---- le_avc_interface.h: service connection ----

//export le_avc_ConnectService
func le_avc_ConnectService() {
	defer guard[struct{}]("le_avc_ConnectService", nil, struct{}{})
	lazyInit()
}

//export le_avc_TryConnectService
func le_avc_TryConnectService() (rc C.le_result_t) {
	defer guard("le_avc_TryConnectService", &rc, C.LE_FAULT)
	lazyInit()
	return C.le_result_t(result(nil))
}

//export le_avc_SetServerDisconnectHandler
func le_avc_SetServerDisconnectHandler(handler C.le_avc_DisconnectHandler_t, ctx C.uintptr_t) {
	defer guard[struct{}]("le_avc_SetServerDisconnectHandler", nil, struct{}{})
	// The in-process service never disconnects: nothing to keep.
	_, _ = handler, ctx
	lazyInit()
}

//export le_avc_DisconnectService
func le_avc_DisconnectService() {
	defer guard[struct{}]("le_avc_DisconnectService", nil, struct{}{})
	lazyInit()
}

// ---- le_avc_interface.h: status events ----

//export le_avc_AddStatusEventHandler
func le_avc_AddStatusEventHandler(handler C.le_avc_StatusHandlerFunc_t, ctx C.uintptr_t) (ref C.uintptr_t) {
	defer guard("le_avc_AddStatusEventHandler", &ref, 0)
	lazyInit()
	if handler == nil {
		err := errorf(rcBadParameter, "le_avc_AddStatusEventHandler: handlerPtr is NULL")
		logger.Warn("refusing NULL status handler")
		result(err)
		return 0
	}
	r := addStatusHandler(handler, ctx)
	result(nil)
	return C.uintptr_t(r)
}

//export le_avc_RemoveStatusEventHandler
func le_avc_RemoveStatusEventHandler(ref C.uintptr_t) {
	defer guard[struct{}]("le_avc_RemoveStatusEventHandler", nil, struct{}{})
	lazyInit()
	if !removeStatusHandler(uintptr(ref)) {
		// Legato kills a client that does this; libavc must not kill its host.
		logger.Warn("ignoring removal of unknown status handler", "ref", uint64(ref))
	}
}

// ---- le_avc_interface.h: sessions ----

//export le_avc_StartSession
func le_avc_StartSession() (rc C.le_result_t) {
	defer guard("le_avc_StartSession", &rc, C.LE_FAULT)
	return C.le_result_t(result(startSession()))
}

//export le_avc_StopSession
func le_avc_StopSession() (rc C.le_result_t) {
	defer guard("le_avc_StopSession", &rc, C.LE_FAULT)
	return C.le_result_t(result(stopSession()))
}

// ---- avc.h ----

//export avc_strerror
func avc_strerror(rc C.int) (s *C.char) {
	defer guard("avc_strerror", &s, nil)
	if n, ok := avcResultNames[int(rc)]; ok {
		return staticCString(n)
	}
	return staticCString("AVC_ERR_UNKNOWN")
}

//export avc_last_error
func avc_last_error(buf *C.char, size C.size_t) (n C.int) {
	defer guard("avc_last_error", &n, C.int(rcFault))
	if buf == nil && size != 0 {
		return C.int(rcBadParameter)
	}
	msg := lastError()
	copyOut(buf, size, msg)
	return C.int(len(msg))
}

//export avc_version
func avc_version() (s *C.char) {
	defer guard("avc_version", &s, nil)
	return staticCString(agent.Version)
}

//export avc_config_set
func avc_config_set(name, value *C.char) (rc C.avc_result_t) {
	defer guard("avc_config_set", &rc, C.AVC_ERR_FAULT)
	if name == nil || value == nil {
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_config_set: name and value must not be NULL")))
	}
	return C.avc_result_t(result(configSet(C.GoString(name), C.GoString(value))))
}

//export avc_config_get
func avc_config_get(name, buf *C.char, size C.size_t) (rc C.avc_result_t) {
	defer guard("avc_config_get", &rc, C.AVC_ERR_FAULT)
	if name == nil || buf == nil || size == 0 {
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_config_get: name and buf must not be NULL, size must not be 0")))
	}
	v, err := configGet(C.GoString(name))
	if err != nil {
		copyOut(buf, size, "")
		return C.avc_result_t(result(err))
	}
	if !copyOut(buf, size, v) {
		return C.avc_result_t(result(errorf(rcOverflow, "avc_config_get: %s needs %d bytes, buf has %d", C.GoString(name), len(v)+1, size)))
	}
	return C.avc_result_t(result(nil))
}

//export avc_set_log_handler
func avc_set_log_handler(fn C.avc_log_fn, user C.uintptr_t) (rc C.avc_result_t) {
	defer guard("avc_set_log_handler", &rc, C.AVC_ERR_FAULT)
	var s *logSink
	if fn != nil {
		s = &logSink{fn: fn, user: user}
	}
	setLogSink(s, time.Second)
	return C.avc_result_t(result(nil))
}

//export avc_events_enable_poll
func avc_events_enable_poll(enable C.int) (rc C.avc_result_t) {
	defer guard("avc_events_enable_poll", &rc, C.AVC_ERR_FAULT)
	pollEnable(enable != 0)
	return C.avc_result_t(result(nil))
}

//export avc_poll_event
func avc_poll_event(ev *C.avc_event_t, timeoutMS C.int) (rc C.avc_result_t) {
	defer guard("avc_poll_event", &rc, C.AVC_ERR_FAULT)
	if ev == nil {
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_poll_event: ev is NULL")))
	}
	timeout := time.Duration(timeoutMS) * time.Millisecond
	if timeoutMS < 0 {
		timeout = -1
	}
	qe, err := pollTake(timeout)
	if err != nil {
		return C.avc_result_t(result(err))
	}
	fillEvent(ev, qe)
	return C.avc_result_t(result(nil))
}

//export avc_set_value
func avc_set_value(path, value *C.char) (rc C.avc_result_t) {
	defer guard("avc_set_value", &rc, C.AVC_ERR_FAULT)
	if path == nil {
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_set_value: path must not be NULL")))
	}
	var v string
	if value != nil {
		v = C.GoString(value)
	}
	return C.avc_result_t(result(setValue(C.GoString(path), v, value == nil)))
}

//export avc_send
func avc_send(paths **C.char, count C.size_t) (rc C.avc_result_t) {
	defer guard("avc_send", &rc, C.AVC_ERR_FAULT)
	switch {
	case paths == nil:
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_send: paths must not be NULL")))
	case count == 0 || count > maxSendPaths:
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_send: count %d is out of range (1..%d)", uint64(count), maxSendPaths)))
	}
	strs := make([]string, 0, int(count))
	for i, p := range unsafe.Slice(paths, int(count)) {
		if p == nil {
			return C.avc_result_t(result(errorf(rcBadParameter, "avc_send: paths[%d] is NULL", i)))
		}
		strs = append(strs, C.GoString(p))
	}
	return C.avc_result_t(result(send(strs)))
}

// maxObjectXMLLen bounds what avc_object_define_xml copies; the parser
// itself refuses documents over 1 MiB with AVC_ERR_FORMAT.
const maxObjectXMLLen = 64 << 20

//export avc_object_define_xml
func avc_object_define_xml(xml *C.char, n C.size_t) (rc C.avc_result_t) {
	defer guard("avc_object_define_xml", &rc, C.AVC_ERR_FAULT)
	switch {
	case xml == nil && n == 0:
		return C.avc_result_t(result(defineObjects(nil, true)))
	case xml == nil:
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_object_define_xml: xml is NULL but len is %d", uint64(n))))
	case n > maxObjectXMLLen:
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_object_define_xml: len %d is out of range", uint64(n))))
	}
	b := C.GoBytes(unsafe.Pointer(xml), C.int(n))
	return C.avc_result_t(result(defineObjects(b, false)))
}

// ---- avc.h: firmware update ----

//export avc_fw_install
func avc_fw_install(h *C.avc_fw_handlers_t, user C.uintptr_t) (rc C.avc_result_t) {
	defer guard("avc_fw_install", &rc, C.AVC_ERR_FAULT)
	if h == nil {
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_fw_install: handlers is NULL")))
	}
	if missing := fwMissing(h); len(missing) > 0 {
		return C.avc_result_t(result(errorf(rcBadParameter, "avc_fw_install: mandatory callbacks are NULL: %s", strings.Join(missing, ", "))))
	}
	return C.avc_result_t(result(installFirmware("avc_fw_install", newCFirmware(h, user))))
}

//export avc_fw_uninstall
func avc_fw_uninstall() (rc C.avc_result_t) {
	defer guard("avc_fw_uninstall", &rc, C.AVC_ERR_FAULT)
	return C.avc_result_t(result(installFirmware("avc_fw_uninstall", nil)))
}

//export avc_fw_set_trusted_key
func avc_fw_set_trusted_key(key *C.char) (rc C.avc_result_t) {
	defer guard("avc_fw_set_trusted_key", &rc, C.AVC_ERR_FAULT)
	var k string
	if key != nil {
		k = C.GoString(key)
	}
	return C.avc_result_t(result(setTrustedKey(k)))
}

//export avc_fw_set_status_handler
func avc_fw_set_status_handler(fn C.avc_fw_status_fn, ctx C.uintptr_t) (rc C.avc_result_t) {
	defer guard("avc_fw_set_status_handler", &rc, C.AVC_ERR_FAULT)
	setFirmwareStatusHandler(fn, ctx)
	return C.avc_result_t(result(nil))
}
