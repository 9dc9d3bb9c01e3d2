//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/avc-agent/avc/agent"
	"github.com/avc-agent/avc/lwm2m"
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
	statusHandlersChanged() // the agent offers what waits for a handler
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
		return
	}
	statusHandlersChanged()
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

// ---- le_avc_interface.h: session requests and communication information ----

//export le_avc_AddSessionRequestEventHandler
func le_avc_AddSessionRequestEventHandler(handler C.le_avc_SessionRequestHandlerFunc_t, ctx C.uintptr_t) (ref C.uintptr_t) {
	defer guard("le_avc_AddSessionRequestEventHandler", &ref, 0)
	lazyInit()
	if handler == nil {
		logger.Warn("refusing NULL session request handler")
		result(errorf(rcBadParameter, "le_avc_AddSessionRequestEventHandler: handlerPtr is NULL"))
		return 0
	}
	r, ok := addSessionRequestHandler(handler, ctx)
	if !ok {
		logger.Warn("refusing a second session request handler")
		result(errorf(rcDuplicate, "le_avc_AddSessionRequestEventHandler: a session request handler is already registered"))
		return 0
	}
	result(nil)
	return C.uintptr_t(r)
}

//export le_avc_RemoveSessionRequestEventHandler
func le_avc_RemoveSessionRequestEventHandler(ref C.uintptr_t) {
	defer guard[struct{}]("le_avc_RemoveSessionRequestEventHandler", nil, struct{}{})
	lazyInit()
	if !removeSessionRequestHandler(uintptr(ref)) {
		logger.Warn("ignoring removal of unknown session request handler", "ref", uint64(ref))
	}
}

//export le_avc_AddCommInfoHandler
func le_avc_AddCommInfoHandler(handler C.le_avc_CommInfoHandlerFunc_t, ctx C.uintptr_t) (ref C.uintptr_t) {
	defer guard("le_avc_AddCommInfoHandler", &ref, 0)
	lazyInit()
	if handler == nil {
		logger.Warn("refusing NULL CommInfo handler")
		result(errorf(rcBadParameter, "le_avc_AddCommInfoHandler: handlerPtr is NULL"))
		return 0
	}
	r := addCommHandler(handler, ctx)
	result(nil)
	return C.uintptr_t(r)
}

//export le_avc_RemoveCommInfoHandler
func le_avc_RemoveCommInfoHandler(ref C.uintptr_t) {
	defer guard[struct{}]("le_avc_RemoveCommInfoHandler", nil, struct{}{})
	lazyInit()
	if !removeCommHandler(uintptr(ref)) {
		logger.Warn("ignoring removal of unknown CommInfo handler", "ref", uint64(ref))
	}
}

// ---- le_avc_interface.h: more sessions ----

//export le_avc_StartDmSession
func le_avc_StartDmSession(serverID C.uint16_t, autoDisconnect C.bool) (rc C.le_result_t) {
	defer guard("le_avc_StartDmSession", &rc, C.LE_FAULT)
	_ = autoDisconnect // see le_avc_interface.h
	return C.le_result_t(result(startDmSession(uint16(serverID))))
}

//export le_avc_CheckRoute
func le_avc_CheckRoute() (rc C.le_result_t) {
	defer guard("le_avc_CheckRoute", &rc, C.LE_FAULT)
	return C.le_result_t(result(checkRoute()))
}

//export le_avc_IsSessionStarted
func le_avc_IsSessionStarted(serverID C.uint16_t) (ok C.bool) {
	defer guard("le_avc_IsSessionStarted", &ok, false)
	return C.bool(sessionStarted(uint16(serverID)))
}

//export le_avc_GetSessionType
func le_avc_GetSessionType() (t C.le_avc_SessionType_t) {
	defer guard("le_avc_GetSessionType", &t, C.LE_AVC_SESSION_INVALID)
	return C.le_avc_SessionType_t(sessionType())
}

// ---- le_avc_interface.h: update control ----

func acceptExport(name string, what agent.Agreement, minutes int64) (rc C.le_result_t) {
	defer guard(name, &rc, C.LE_FAULT)
	return C.le_result_t(result(acceptOrDefer(what, minutes)))
}

//export le_avc_DeferConnect
func le_avc_DeferConnect(minutes C.uint32_t) C.le_result_t {
	return acceptExport("le_avc_DeferConnect", agent.AgreeConnection, int64(minutes))
}

//export le_avc_AcceptDownload
func le_avc_AcceptDownload() C.le_result_t {
	return acceptExport("le_avc_AcceptDownload", agent.AgreeDownload, -1)
}

//export le_avc_DeferDownload
func le_avc_DeferDownload(minutes C.uint32_t) C.le_result_t {
	return acceptExport("le_avc_DeferDownload", agent.AgreeDownload, int64(minutes))
}

//export le_avc_AcceptInstall
func le_avc_AcceptInstall() C.le_result_t {
	return acceptExport("le_avc_AcceptInstall", agent.AgreeInstall, -1)
}

//export le_avc_DeferInstall
func le_avc_DeferInstall(minutes C.uint32_t) C.le_result_t {
	return acceptExport("le_avc_DeferInstall", agent.AgreeInstall, int64(minutes))
}

//export le_avc_AcceptUninstall
func le_avc_AcceptUninstall() C.le_result_t {
	return acceptExport("le_avc_AcceptUninstall", agent.AgreeUninstall, -1)
}

//export le_avc_DeferUninstall
func le_avc_DeferUninstall(minutes C.uint32_t) C.le_result_t {
	return acceptExport("le_avc_DeferUninstall", agent.AgreeUninstall, int64(minutes))
}

//export le_avc_AcceptReboot
func le_avc_AcceptReboot() C.le_result_t {
	return acceptExport("le_avc_AcceptReboot", agent.AgreeReboot, -1)
}

//export le_avc_DeferReboot
func le_avc_DeferReboot(minutes C.uint32_t) C.le_result_t {
	return acceptExport("le_avc_DeferReboot", agent.AgreeReboot, int64(minutes))
}

//export le_avc_GetUpdateType
func le_avc_GetUpdateType(out *C.le_avc_UpdateType_t) (rc C.le_result_t) {
	defer guard("le_avc_GetUpdateType", &rc, C.LE_FAULT)
	if out == nil {
		return C.le_result_t(result(errorf(rcFault, "le_avc_GetUpdateType: updateTypePtr is NULL")))
	}
	st := controlState()
	if st.Pending == agent.StatusNoUpdate {
		return C.le_result_t(result(errorf(rcFault, "le_avc_GetUpdateType: no update is pending")))
	}
	*out = C.le_avc_UpdateType_t(st.UpdateType)
	return C.le_result_t(result(nil))
}

//export le_avc_GetAppUpdateName
func le_avc_GetAppUpdateName(buf *C.char, size C.size_t) (rc C.le_result_t) {
	defer guard("le_avc_GetAppUpdateName", &rc, C.LE_FAULT)
	if buf == nil || size == 0 {
		return C.le_result_t(result(errorf(rcFault, "le_avc_GetAppUpdateName: no buffer")))
	}
	st := controlState()
	if st.Pending == agent.StatusNoUpdate || st.UpdateType != agent.UpdateApplication || st.AppUpdateName == "" {
		return C.le_result_t(result(errorf(rcFault, "le_avc_GetAppUpdateName: no application update is pending")))
	}
	if !copyOut(buf, size, st.AppUpdateName) {
		return C.le_result_t(result(errorf(rcOverflow, "le_avc_GetAppUpdateName: the name is %d bytes", len(st.AppUpdateName))))
	}
	return C.le_result_t(result(nil))
}

//export le_avc_BlockInstall
func le_avc_BlockInstall() (ref C.uintptr_t) {
	defer guard("le_avc_BlockInstall", &ref, 0)
	r, err := blockInstall()
	if err != nil {
		logger.Warn("install block refused", "err", err)
		result(err)
		return 0
	}
	result(nil)
	return C.uintptr_t(r)
}

//export le_avc_UnblockInstall
func le_avc_UnblockInstall(ref C.uintptr_t) {
	defer guard[struct{}]("le_avc_UnblockInstall", nil, struct{}{})
	if !unblockInstall(uint64(ref)) {
		// Legato kills a client that does this; libavc must not kill its host.
		logger.Warn("ignoring release of unknown install block", "ref", uint64(ref))
	}
}

//export le_avc_GetErrorCode
func le_avc_GetErrorCode() (code C.le_avc_ErrorCode_t) {
	defer guard("le_avc_GetErrorCode", &code, C.LE_AVC_ERR_INTERNAL)
	return C.le_avc_ErrorCode_t(controlState().Error)
}

//export le_avc_GetHttpStatus
func le_avc_GetHttpStatus() (status C.uint16_t) {
	defer guard("le_avc_GetHttpStatus", &status, C.LE_AVC_HTTP_STATUS_INVALID)
	return C.uint16_t(controlState().HTTPStatus)
}

// ---- le_avc_interface.h: settings ----

//export le_avc_GetPollingTimer
func le_avc_GetPollingTimer(out *C.uint32_t) (rc C.le_result_t) {
	defer guard("le_avc_GetPollingTimer", &rc, C.LE_FAULT)
	if out == nil {
		return C.le_result_t(result(errorf(rcFault, "le_avc_GetPollingTimer: pollingTimerPtr is NULL")))
	}
	*out = C.uint32_t(controlState().PollingTimer)
	return C.le_result_t(result(nil))
}

//export le_avc_GetRetryTimers
func le_avc_GetRetryTimers(out *C.uint16_t, size *C.size_t) (rc C.le_result_t) {
	defer guard("le_avc_GetRetryTimers", &rc, C.LE_FAULT)
	if out == nil || size == nil {
		return C.le_result_t(result(errorf(rcFault, "le_avc_GetRetryTimers: NULL pointer")))
	}
	if *size < agent.NumRetryTimers {
		return C.le_result_t(result(errorf(rcFault, "le_avc_GetRetryTimers: the array holds %d values: want %d", uint64(*size), agent.NumRetryTimers)))
	}
	st := controlState()
	dst := unsafe.Slice((*uint16)(unsafe.Pointer(out)), agent.NumRetryTimers)
	copy(dst, st.RetryTimers[:])
	*size = agent.NumRetryTimers
	return C.le_result_t(result(nil))
}

//export le_avc_GetApnConfig
func le_avc_GetApnConfig(apn *C.char, apnSize C.size_t, user *C.char, userSize C.size_t, pwd *C.char, pwdSize C.size_t) (rc C.le_result_t) {
	defer guard("le_avc_GetApnConfig", &rc, C.LE_FAULT)
	if apn == nil || user == nil || pwd == nil || apnSize == 0 || userSize == 0 || pwdSize == 0 {
		return C.le_result_t(result(errorf(rcFault, "le_avc_GetApnConfig: NULL or empty buffer")))
	}
	st := controlState()
	ok1 := copyOut(apn, apnSize, st.APNName)
	ok2 := copyOut(user, userSize, st.APNUser)
	ok3 := copyOut(pwd, pwdSize, st.APNPassword)
	if !ok1 || !ok2 || !ok3 {
		return C.le_result_t(result(errorf(rcOverflow, "le_avc_GetApnConfig: a value does not fit its buffer")))
	}
	return C.le_result_t(result(nil))
}

//export le_avc_SetApnConfig
func le_avc_SetApnConfig(apn, user, pwd *C.char) (rc C.le_result_t) {
	defer guard("le_avc_SetApnConfig", &rc, C.LE_FAULT)
	if apn == nil || user == nil || pwd == nil {
		return C.le_result_t(result(errorf(rcFault, "le_avc_SetApnConfig: NULL string")))
	}
	return C.le_result_t(result(setAPN(C.GoString(apn), C.GoString(user), C.GoString(pwd))))
}

//export le_avc_SetPollingTimer
func le_avc_SetPollingTimer(minutes C.uint32_t) (rc C.le_result_t) {
	defer guard("le_avc_SetPollingTimer", &rc, C.LE_FAULT)
	return C.le_result_t(result(setPollingTimer(uint32(minutes))))
}

//export le_avc_SetRetryTimers
func le_avc_SetRetryTimers(values *C.uint16_t, n C.size_t) (rc C.le_result_t) {
	defer guard("le_avc_SetRetryTimers", &rc, C.LE_FAULT)
	if values == nil {
		return C.le_result_t(result(errorf(rcFault, "le_avc_SetRetryTimers: timerValuePtr is NULL")))
	}
	if n != agent.NumRetryTimers {
		return C.le_result_t(result(errorf(rcFault, "le_avc_SetRetryTimers: %d values: want exactly %d", uint64(n), agent.NumRetryTimers)))
	}
	src := unsafe.Slice((*uint16)(unsafe.Pointer(values)), int(n))
	return C.le_result_t(result(setRetryTimers(slices.Clone(src))))
}

//export le_avc_GetCredentialStatus
func le_avc_GetCredentialStatus() (st C.le_avc_CredentialStatus_t) {
	defer guard("le_avc_GetCredentialStatus", &st, C.LE_AVC_NO_CREDENTIAL_PROVISIONED)
	return C.le_avc_CredentialStatus_t(credentialStatus())
}

//export le_avc_SetUserAgreement
func le_avc_SetUserAgreement(what C.le_avc_UserAgreement_t, enable C.bool) (rc C.le_result_t) {
	defer guard("le_avc_SetUserAgreement", &rc, C.LE_FAULT)
	return C.le_result_t(result(setAgreement(int(what), bool(enable))))
}

//export le_avc_GetUserAgreement
func le_avc_GetUserAgreement(what C.le_avc_UserAgreement_t, out *C.bool) (rc C.le_result_t) {
	defer guard("le_avc_GetUserAgreement", &rc, C.LE_FAULT)
	if out == nil {
		return C.le_result_t(result(errorf(rcFault, "le_avc_GetUserAgreement: enablePtr is NULL")))
	}
	on, err := getAgreement(int(what))
	if err == nil {
		*out = C.bool(on)
	}
	return C.le_result_t(result(err))
}

// maxLwm2mResource is the longest value le_avc_ReadLwm2mResource returns
// (the .api's string data[MAX_LWM2M_RESOURCE_BYTES]).
const maxLwm2mResource = 513

//export le_avc_ReadLwm2mResource
func le_avc_ReadLwm2mResource(obj, inst, res, resInst C.uint16_t, data *C.char, size C.size_t) (rc C.le_result_t) {
	defer guard("le_avc_ReadLwm2mResource", &rc, C.LE_FAULT)
	if data == nil || size == 0 {
		return C.le_result_t(result(errorf(rcFault, "le_avc_ReadLwm2mResource: no buffer")))
	}
	// A single resource is read whole, whatever resourceInstanceId says;
	// a multiple one instance by instance.
	p := lwm2m.P(uint16(obj), uint16(inst), uint16(res), uint16(resInst))
	v, err := readResource(p)
	if err != nil {
		if whole, werr := readResource(lwm2m.P(uint16(obj), uint16(inst), uint16(res))); werr == nil {
			v, err = whole, nil
		}
	}
	if err != nil {
		return C.le_result_t(result(fmt.Errorf("le_avc_ReadLwm2mResource: %s: %w", p, err)))
	}
	if len(v) > maxLwm2mResource || !copyOut(data, size, v) {
		return C.le_result_t(result(errorf(rcOverflow, "le_avc_ReadLwm2mResource: %s: the value is %d bytes", p, len(v))))
	}
	return C.le_result_t(result(nil))
}

//export le_avc_SetNatTimeout
func le_avc_SetNatTimeout(seconds C.uint32_t) {
	defer guard[struct{}]("le_avc_SetNatTimeout", nil, struct{}{})
	setNatTimeout(uint32(seconds))
}

//export le_avc_SetCredential
func le_avc_SetCredential(typ C.le_avc_CredentialType_t, serverID C.uint16_t, cred *C.uint8_t, n C.size_t) (rc C.le_result_t) {
	defer guard("le_avc_SetCredential", &rc, C.LE_FAULT)
	if cred == nil || n == 0 {
		return C.le_result_t(result(errorf(rcFault, "le_avc_SetCredential: no credential")))
	}
	if n > agent.MaxCredentialSize {
		return C.le_result_t(result(errorf(rcFault, "le_avc_SetCredential: %d bytes: at most %d", uint64(n), agent.MaxCredentialSize)))
	}
	b := C.GoBytes(unsafe.Pointer(cred), C.int(n))
	return C.le_result_t(result(setCredential(int(typ), uint16(serverID), b)))
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

//export avc_storage_set
func avc_storage_set(s *C.avc_storage_t, user C.uintptr_t) (rc C.avc_result_t) {
	defer guard("avc_storage_set", &rc, C.AVC_ERR_FAULT)
	lazyInitConfig()
	return C.avc_result_t(result(setStorage(s, user)))
}

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
