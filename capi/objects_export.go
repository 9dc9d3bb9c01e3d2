//go:build cgo

package main

/*
#include "capi.h"
*/
import "C"

//export avc_object_define
func avc_object_define(defs *C.avc_object_def_t, n C.size_t) (rc C.avc_result_t) {
	defer guard("avc_object_define", &rc, C.AVC_ERR_FAULT)
	if defs == nil && n == 0 {
		return C.avc_result_t(result(defineObjectDefs("avc_object_define", nil, true)))
	}
	d, err := objectDefsFromC(defs, n)
	if err != nil {
		return C.avc_result_t(result(err))
	}
	return C.avc_result_t(result(defineObjectDefs("avc_object_define", d, false)))
}

//export avc_object_set_handlers
func avc_object_set_handlers(h *C.avc_object_handlers_t, user C.uintptr_t) (rc C.avc_result_t) {
	defer guard("avc_object_set_handlers", &rc, C.AVC_ERR_FAULT)
	setObjectHandlers(h, user)
	return C.avc_result_t(result(nil))
}
