"""Loads libavc and declares every C function the binding uses.

This is the only module that touches ctypes.CDLL. The library is looked up
in this order:

1. the path in the ``AVC_LIBRARY`` environment variable;
2. next to the package (``avc/libavc.so``), for installed copies;
3. the repository's ``build/`` directory (``bindings/python/../../build``);
4. ``ctypes.util.find_library("avc")``.

It is loaded with ``CDLL`` (which releases the GIL during each call), never
``PyDLL``: libavc calls back from its own threads, and a call that kept the
GIL would deadlock against them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "EVENT_MESSAGE_MAX",
    "FW_BOOTED_FN",
    "FW_GET_COAP_TX_PARAMS_FN",
    "FW_GET_SECURITY_CONFIG_FN",
    "FW_GET_TCP_REQUEST_TIMEOUT_FN",
    "FW_GET_TEXT_FN",
    "FW_PERFORM_UPGRADE_FN",
    "FW_RESET_FN",
    "FW_STATUS_FN",
    "FW_STREAM_FINISH_FN",
    "FW_STREAM_OPEN_FN",
    "FW_STREAM_WRITE_FN",
    "FW_SYNC_FN",
    "FW_VERSION_MAX",
    "LOG_FN",
    "OBJECT_EXECUTE_FN",
    "OBJECT_WRITE_FN",
    "COMM_INFO_HANDLER_FN",
    "SESSION_REQUEST_HANDLER_FN",
    "STATUS_HANDLER_FN",
    "AvcEvent",
    "AvcObjectDef",
    "AvcObjectHandlers",
    "AvcResourceDef",
    "AvcFwCoapTxParams",
    "AvcFwHandlers",
    "AvcFwPackage",
    "AvcFwSecurityConfig",
    "AvcFwStatus",
    "AvcStorage",
    "LibraryNotFoundError",
    "STORAGE_READ_FN",
    "STORAGE_WRITE_FN",
    "lib",
    "library_path",
]

#: ``avc_event_t.message`` size (AVC_EVENT_MESSAGE_MAX).
EVENT_MESSAGE_MAX = 128


class AvcEvent(ctypes.Structure):
    """``avc_event_t`` (avc.h)."""

    _fields_ = [
        ("type", ctypes.c_int32),
        ("status", ctypes.c_int32),
        ("total_num_bytes", ctypes.c_int32),
        ("progress", ctypes.c_int32),
        ("dropped", ctypes.c_uint32),
        ("message", ctypes.c_char * EVENT_MESSAGE_MAX),
    ]


#: ``AVC_FW_VERSION_MAX``: size of booted()'s running_version buffer.
FW_VERSION_MAX = 256


class AvcFwPackage(ctypes.Structure):
    """``avc_fw_package_t`` (avc.h); valid during a callback only."""

    _fields_ = [
        ("uri", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
        ("version", ctypes.c_char_p),
        ("sha256", ctypes.c_char_p),
        ("size", ctypes.c_int64),
    ]


class AvcFwStatus(ctypes.Structure):
    """``avc_fw_status_t`` (avc.h); valid during a callback only."""

    _fields_ = [
        ("state", ctypes.c_int),
        ("result", ctypes.c_int),
        ("bytes", ctypes.c_int64),
        ("total", ctypes.c_int64),
        ("http_status", ctypes.c_int),
        ("version", ctypes.c_char_p),
    ]


#: The callbacks of ``avc_fw_handlers_t``; every one takes the user pointer first.
FW_STREAM_OPEN_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64)
FW_STREAM_WRITE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
FW_STREAM_FINISH_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
FW_RESET_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
FW_PERFORM_UPGRADE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(AvcFwPackage))
FW_BOOTED_FN = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(AvcFwPackage), ctypes.c_void_p, ctypes.c_size_t
)
FW_SYNC_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class AvcFwSecurityConfig(ctypes.Structure):
    """``avc_fw_security_config_t`` (avc.h). The pointers are c_void_p: the
    callback stores addresses of buffers it keeps alive itself (ctypes
    would drop the objects of a struct that lives in C memory)."""

    _fields_ = [
        ("psk_identity", ctypes.c_void_p),
        ("psk_key", ctypes.c_void_p),
        ("psk_key_len", ctypes.c_size_t),
        ("ca_pem", ctypes.c_void_p),
        ("client_cert_pem", ctypes.c_void_p),
        ("client_key_pem", ctypes.c_void_p),
    ]


class AvcFwCoapTxParams(ctypes.Structure):
    """``avc_fw_coap_tx_params_t`` (avc.h)."""

    _fields_ = [
        ("ack_timeout_ms", ctypes.c_uint32),
        ("ack_random_factor", ctypes.c_double),
        ("max_retransmit", ctypes.c_uint32),
    ]


#: get_name / get_version: (user) -> const char*, returned as an address
#: (a c_char_p result would point into a Python object freed on return).
FW_GET_TEXT_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
FW_GET_SECURITY_CONFIG_FN = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(AvcFwSecurityConfig), ctypes.c_char_p
)
FW_GET_COAP_TX_PARAMS_FN = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(AvcFwCoapTxParams), ctypes.c_char_p
)
FW_GET_TCP_REQUEST_TIMEOUT_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_char_p)


class AvcFwHandlers(ctypes.Structure):
    """``avc_fw_handlers_t`` (avc.h)."""

    _fields_ = [
        ("stream_open", FW_STREAM_OPEN_FN),
        ("stream_write", FW_STREAM_WRITE_FN),
        ("stream_finish", FW_STREAM_FINISH_FN),
        ("reset", FW_RESET_FN),
        ("perform_upgrade", FW_PERFORM_UPGRADE_FN),
        ("booted", FW_BOOTED_FN),
        ("sync", FW_SYNC_FN),
        ("get_name", FW_GET_TEXT_FN),
        ("get_version", FW_GET_TEXT_FN),
        ("get_security_config", FW_GET_SECURITY_CONFIG_FN),
        ("get_coap_tx_params", FW_GET_COAP_TX_PARAMS_FN),
        ("get_tcp_request_timeout", FW_GET_TCP_REQUEST_TIMEOUT_FN),
    ]


#: ``avc_fw_status_fn``: (ctx, status).
FW_STATUS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(AvcFwStatus))

#: ``avc_storage_t.read``: (user, key, buf, size) -> length, 0 none, < 0 error.
STORAGE_READ_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t)
#: ``avc_storage_t.write``: (user, key, data, length) -> 0 on success.
STORAGE_WRITE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t)


class AvcStorage(ctypes.Structure):
    """``avc_storage_t``: the persistent store's callbacks (avc_storage_set)."""

    _fields_ = [("read", STORAGE_READ_FN), ("write", STORAGE_WRITE_FN)]


#: ``le_avc_StatusHandlerFunc_t``: (status, totalNumBytes, progress, contextPtr).
STATUS_HANDLER_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p)

#: ``le_avc_SessionRequestHandlerFunc_t``: (request, contextPtr).
SESSION_REQUEST_HANDLER_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p)

#: ``le_avc_CommInfoHandlerFunc_t``: (code, str, contextPtr).
COMM_INFO_HANDLER_FN = ctypes.CFUNCTYPE(None, ctypes.c_uint8, ctypes.c_char_p, ctypes.c_void_p)

#: ``avc_log_fn``: (user, level, msg).
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)


class AvcResourceDef(ctypes.Structure):
    """``avc_resource_def_t`` (avc.h)."""

    _fields_ = [
        ("id", ctypes.c_uint16),
        ("name", ctypes.c_char_p),
        ("type", ctypes.c_int),
        ("operations", ctypes.c_uint),
        ("multiple", ctypes.c_int),
        ("mandatory", ctypes.c_int),
    ]


class AvcObjectDef(ctypes.Structure):
    """``avc_object_def_t`` (avc.h)."""

    _fields_ = [
        ("id", ctypes.c_uint16),
        ("name", ctypes.c_char_p),
        ("version", ctypes.c_char_p),
        ("multiple", ctypes.c_int),
        ("mandatory", ctypes.c_int),
        ("resources", ctypes.POINTER(AvcResourceDef)),
        ("resource_count", ctypes.c_size_t),
    ]


#: ``avc_object_handlers_t.write``: (user, path, value or NULL).
OBJECT_WRITE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)
#: ``avc_object_handlers_t.execute``: (user, path, args).
OBJECT_EXECUTE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)


#: ``avc_object_handlers_t.read``: (user, path).
OBJECT_READ_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


class AvcObjectHandlers(ctypes.Structure):
    """``avc_object_handlers_t`` (avc.h)."""

    _fields_ = [("write", OBJECT_WRITE_FN), ("execute", OBJECT_EXECUTE_FN), ("read", OBJECT_READ_FN)]

_c_int = ctypes.c_int
_c_char_p = ctypes.c_char_p
_c_void_p = ctypes.c_void_p
_c_size_t = ctypes.c_size_t

#: name -> (argtypes, restype), one entry per C function used. A test checks
#: it against the prototypes in include/.
SIGNATURES: dict[str, tuple[list[Any], Any]] = {
    # legato.h
    "le_result_Txt": ([_c_int], _c_char_p),
    # le_avc_interface.h
    "le_avc_ConnectService": ([], None),
    "le_avc_TryConnectService": ([], _c_int),
    "le_avc_SetServerDisconnectHandler": ([_c_void_p, _c_void_p], None),
    "le_avc_DisconnectService": ([], None),
    "le_avc_AddStatusEventHandler": ([STATUS_HANDLER_FN, _c_void_p], _c_void_p),
    "le_avc_RemoveStatusEventHandler": ([_c_void_p], None),
    "le_avc_StartSession": ([], _c_int),
    "le_avc_StopSession": ([], _c_int),
    "le_avc_AddSessionRequestEventHandler": ([SESSION_REQUEST_HANDLER_FN, _c_void_p], _c_void_p),
    "le_avc_RemoveSessionRequestEventHandler": ([_c_void_p], None),
    "le_avc_AddCommInfoHandler": ([COMM_INFO_HANDLER_FN, _c_void_p], _c_void_p),
    "le_avc_RemoveCommInfoHandler": ([_c_void_p], None),
    "le_avc_StartDmSession": ([ctypes.c_uint16, ctypes.c_bool], _c_int),
    "le_avc_CheckRoute": ([], _c_int),
    "le_avc_DeferConnect": ([ctypes.c_uint32], _c_int),
    "le_avc_AcceptDownload": ([], _c_int),
    "le_avc_DeferDownload": ([ctypes.c_uint32], _c_int),
    "le_avc_AcceptInstall": ([], _c_int),
    "le_avc_DeferInstall": ([ctypes.c_uint32], _c_int),
    "le_avc_AcceptUninstall": ([], _c_int),
    "le_avc_DeferUninstall": ([ctypes.c_uint32], _c_int),
    "le_avc_AcceptReboot": ([], _c_int),
    "le_avc_DeferReboot": ([ctypes.c_uint32], _c_int),
    "le_avc_GetUpdateType": ([ctypes.POINTER(ctypes.c_int)], _c_int),
    "le_avc_GetAppUpdateName": ([_c_char_p, _c_size_t], _c_int),
    "le_avc_BlockInstall": ([], _c_void_p),
    "le_avc_UnblockInstall": ([_c_void_p], None),
    "le_avc_GetErrorCode": ([], _c_int),
    "le_avc_GetSessionType": ([], _c_int),
    "le_avc_GetHttpStatus": ([], ctypes.c_uint16),
    "le_avc_GetPollingTimer": ([ctypes.POINTER(ctypes.c_uint32)], _c_int),
    "le_avc_GetRetryTimers": ([ctypes.POINTER(ctypes.c_uint16), ctypes.POINTER(_c_size_t)], _c_int),
    "le_avc_GetApnConfig": ([_c_char_p, _c_size_t, _c_char_p, _c_size_t, _c_char_p, _c_size_t], _c_int),
    "le_avc_SetApnConfig": ([_c_char_p, _c_char_p, _c_char_p], _c_int),
    "le_avc_SetPollingTimer": ([ctypes.c_uint32], _c_int),
    "le_avc_SetRetryTimers": ([ctypes.POINTER(ctypes.c_uint16), _c_size_t], _c_int),
    "le_avc_GetCredentialStatus": ([], _c_int),
    "le_avc_SetUserAgreement": ([_c_int, ctypes.c_bool], _c_int),
    "le_avc_GetUserAgreement": ([_c_int, ctypes.POINTER(ctypes.c_bool)], _c_int),
    "le_avc_ReadLwm2mResource": (
        [ctypes.c_uint16, ctypes.c_uint16, ctypes.c_uint16, ctypes.c_uint16, _c_char_p, _c_size_t],
        _c_int,
    ),
    "le_avc_SetNatTimeout": ([ctypes.c_uint32], None),
    "le_avc_IsSessionStarted": ([ctypes.c_uint16], ctypes.c_bool),
    "le_avc_SetCredential": ([_c_int, ctypes.c_uint16, ctypes.POINTER(ctypes.c_uint8), _c_size_t], _c_int),
    # avc.h
    "avc_strerror": ([_c_int], _c_char_p),
    "avc_last_error": ([_c_char_p, _c_size_t], _c_int),
    "avc_version": ([], _c_char_p),
    "avc_config_set": ([_c_char_p, _c_char_p], _c_int),
    "avc_config_get": ([_c_char_p, _c_char_p, _c_size_t], _c_int),
    "avc_set_log_handler": ([LOG_FN, _c_void_p], _c_int),
    "avc_events_enable_poll": ([_c_int], _c_int),
    "avc_poll_event": ([ctypes.POINTER(AvcEvent), _c_int], _c_int),
    "avc_set_value": ([_c_char_p, _c_char_p], _c_int),
    "avc_object_define_xml": ([_c_char_p, _c_size_t], _c_int),
    "avc_object_define": ([ctypes.POINTER(AvcObjectDef), _c_size_t], _c_int),
    "avc_object_set_handlers": ([ctypes.POINTER(AvcObjectHandlers), _c_void_p], _c_int),
    "avc_send": ([ctypes.POINTER(_c_char_p), _c_size_t], _c_int),
    "avc_fw_install": ([ctypes.POINTER(AvcFwHandlers), _c_void_p], _c_int),
    "avc_storage_set": ([ctypes.POINTER(AvcStorage), _c_void_p], _c_int),
    "avc_fw_uninstall": ([], _c_int),
    "avc_fw_set_trusted_key": ([_c_char_p], _c_int),
    "avc_fw_set_status_handler": ([FW_STATUS_FN, _c_void_p], _c_int),
}


class LibraryNotFoundError(ImportError):
    """libavc could not be found or does not match this binding."""


def _names() -> list[str]:
    if sys.platform == "darwin":
        return ["libavc.dylib"]
    if sys.platform == "win32":
        return ["avc.dll", "libavc.dll"]
    return ["libavc.so"]


def _candidates() -> list[Path]:
    here = Path(__file__).resolve().parent
    out: list[Path] = []
    for name in _names():
        out.append(here / name)
        out.append(here.parent.parent.parent / "build" / name)
    return out


def _find() -> str:
    env = os.environ.get("AVC_LIBRARY")
    if env:
        if not Path(env).is_file():
            raise LibraryNotFoundError(f"AVC_LIBRARY={env!r} is not a file")
        return env
    tried = _candidates()
    for p in tried:
        if p.is_file():
            return str(p)
    found = ctypes.util.find_library("avc")
    if found:
        return found
    raise LibraryNotFoundError(
        "libavc not found: set AVC_LIBRARY, or build it with `make lib` "
        "(looked in: " + ", ".join(str(p) for p in tried) + ", and the system library path)"
    )


def _load() -> tuple[ctypes.CDLL, str]:
    path = _find()
    try:
        dll = ctypes.CDLL(path)
    except OSError as e:
        raise LibraryNotFoundError(f"cannot load libavc from {path}: {e}") from e
    for name, (argtypes, restype) in SIGNATURES.items():
        try:
            fn = getattr(dll, name)
        except AttributeError:
            raise LibraryNotFoundError(
                f"{path} has no {name}: the library and the Python binding are different versions"
            ) from None
        fn.argtypes = argtypes
        fn.restype = restype
    return dll, path


lib, library_path = _load()
