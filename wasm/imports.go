//go:build wasip1

package main

import "unsafe"

// The avc_host imports; ABI.md "Imports" documents each one. They are
// synchronous and must not block: the host copies what it needs before
// returning, because the memory they point to is only valid for the call.

//go:wasmimport avc_host sock_send
func hostSockSend(peer string, data unsafe.Pointer, n uint32) int32

//go:wasmimport avc_host log
func hostLog(level int32, record string)

//go:wasmimport avc_host storage_write
func hostStorageWrite(key string, data unsafe.Pointer, n uint32) int32

// sockSend passes one datagram to the host.
func sockSend(peer string, b []byte) int32 {
	return hostSockSend(peer, unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)))
}

// storageWrite passes one record to the host's storage.
func storageWrite(key string, b []byte) int32 {
	return hostStorageWrite(key, unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)))
}
