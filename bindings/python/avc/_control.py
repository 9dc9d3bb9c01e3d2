"""Update control: the le_avc functions beyond sessions and status handlers.

Accept/defer the pending download, install, uninstall or reboot, user
agreements, install blocks, polling and retry timers, APN, the CommInfo
handlers and the session request handler. Every function raises the :class:`~avc.AvcError`
subclass of a failed result code: :class:`~avc.FaultError` (``LE_FAULT``,
e.g. accepting when nothing of that kind is pending),
:class:`~avc.OutOfRangeError`, :class:`~avc.AvcOverflowError`.
See include/le_avc_interface.h for what each one does in libavc.
"""

from __future__ import annotations

import ctypes
import enum
import logging
import threading
from collections.abc import Callable, Sequence

from ._core import _check, last_error
from ._enums import CredentialStatus, ErrorCode, SessionType, UpdateType, UserAgreement
from ._ffi import COMM_INFO_HANDLER_FN, SESSION_REQUEST_HANDLER_FN, lib as _lib
from .errors import DuplicateError, FaultError

__all__ = [
    "HTTP_STATUS_INVALID",
    "NUM_RETRY_TIMERS",
    "BlockHandle",
    "CommInfoHandle",
    "SessionRequest",
    "SessionRequestHandle",
    "accept_download",
    "accept_install",
    "accept_reboot",
    "accept_uninstall",
    "add_comm_info_handler",
    "add_session_request_handler",
    "block_install",
    "check_route",
    "credential_status",
    "defer_connect",
    "defer_download",
    "defer_install",
    "defer_reboot",
    "defer_uninstall",
    "error_code",
    "get_apn_config",
    "get_polling_timer",
    "get_retry_timers",
    "get_user_agreement",
    "http_status",
    "is_session_started",
    "pending_update_type",
    "read_lwm2m_resource",
    "remove_comm_info_handler",
    "remove_session_request_handler",
    "session_type",
    "set_apn_config",
    "set_polling_timer",
    "set_retry_timers",
    "set_user_agreement",
]

_log = logging.getLogger("avc")

#: ``LE_AVC_NUM_RETRY_TIMERS``.
NUM_RETRY_TIMERS = 8
#: ``LE_AVC_HTTP_STATUS_INVALID``: :func:`http_status` when unknown.
HTTP_STATUS_INVALID = 0xFFFF
#: ``LE_AVC_SERVER_ID_ALL_SERVERS``.
SERVER_ID_ALL_SERVERS = 0xFFFF


def accept_download() -> None:
    """Accepts the pending download; :class:`FaultError` when none is pending."""
    _check(_lib.le_avc_AcceptDownload())


def accept_install() -> None:
    """Accepts the pending install; :class:`FaultError` when none is pending."""
    _check(_lib.le_avc_AcceptInstall())


def accept_uninstall() -> None:
    """Accepts the pending uninstall; :class:`FaultError` when none is pending."""
    _check(_lib.le_avc_AcceptUninstall())


def accept_reboot() -> None:
    """Accepts the pending reboot; :class:`FaultError` when none is pending."""
    _check(_lib.le_avc_AcceptReboot())


def defer_download(minutes: int) -> None:
    """Defers the pending download by ``minutes``."""
    _check(_lib.le_avc_DeferDownload(int(minutes)))


def defer_install(minutes: int) -> None:
    """Defers the pending install by ``minutes``."""
    _check(_lib.le_avc_DeferInstall(int(minutes)))


def defer_uninstall(minutes: int) -> None:
    """Defers the pending uninstall by ``minutes``."""
    _check(_lib.le_avc_DeferUninstall(int(minutes)))


def defer_reboot(minutes: int) -> None:
    """Defers the pending reboot by ``minutes``."""
    _check(_lib.le_avc_DeferReboot(int(minutes)))


def defer_connect(minutes: int) -> None:
    """Defers the pending connection by ``minutes``."""
    _check(_lib.le_avc_DeferConnect(int(minutes)))


def check_route() -> None:
    """Sends a Registration Update now; :class:`FaultError` without a session."""
    _check(_lib.le_avc_CheckRoute())


def pending_update_type() -> UpdateType | None:
    """The kind of the pending update, or None when nothing is pending."""
    out = ctypes.c_int(0)
    if _lib.le_avc_GetUpdateType(ctypes.byref(out)) != 0:
        return None
    return UpdateType(out.value)


def error_code() -> ErrorCode:
    """Why the last update failed (``ErrorCode.NONE`` unless it failed)."""
    return ErrorCode(_lib.le_avc_GetErrorCode())


def session_type() -> SessionType:
    """The type of the current or last session."""
    return SessionType(_lib.le_avc_GetSessionType())


def http_status() -> int:
    """HTTP status of the last download, or :data:`HTTP_STATUS_INVALID`."""
    return int(_lib.le_avc_GetHttpStatus())


def credential_status() -> CredentialStatus:
    """Which credentials the device holds."""
    return CredentialStatus(_lib.le_avc_GetCredentialStatus())


def is_session_started(server_id: int = SERVER_ID_ALL_SERVERS) -> bool:
    """Whether a session with the server is up (registered)."""
    return bool(_lib.le_avc_IsSessionStarted(int(server_id)))


def set_user_agreement(what: UserAgreement, enable: bool) -> None:
    """Enables (ask first) or disables (accept at once) an agreement."""
    _check(_lib.le_avc_SetUserAgreement(int(what), bool(enable)))


def get_user_agreement(what: UserAgreement) -> bool:
    """Whether the agreement for ``what`` is enabled."""
    out = ctypes.c_bool(False)
    _check(_lib.le_avc_GetUserAgreement(int(what), ctypes.byref(out)))
    return bool(out.value)


def get_polling_timer() -> int:
    """Minutes between the agent's own connections; 0 is disabled."""
    out = ctypes.c_uint32(0)
    _check(_lib.le_avc_GetPollingTimer(ctypes.byref(out)))
    return int(out.value)


def set_polling_timer(minutes: int) -> None:
    """Sets the polling timer; :class:`OutOfRangeError` beyond 525600."""
    if minutes < 0 or minutes > 0xFFFFFFFF:
        raise ValueError(f"polling timer {minutes}: want 0 to 525600 minutes")
    _check(_lib.le_avc_SetPollingTimer(int(minutes)))


def get_retry_timers() -> list[int]:
    """The 8 connection retry timers, in minutes."""
    arr = (ctypes.c_uint16 * NUM_RETRY_TIMERS)()
    n = ctypes.c_size_t(NUM_RETRY_TIMERS)
    _check(_lib.le_avc_GetRetryTimers(arr, ctypes.byref(n)))
    return list(arr[: n.value])


def set_retry_timers(minutes: Sequence[int]) -> None:
    """Sets the retry timers: exactly 8 values (:class:`FaultError`
    otherwise), each 0 to 20160 (:class:`OutOfRangeError`)."""
    values = [int(m) for m in minutes]
    if any(m < 0 or m > 0xFFFF for m in values):
        raise ValueError(f"retry timers {values}: want 0 to 20160 minutes each")
    arr = (ctypes.c_uint16 * max(len(values), 1))(*values)
    _check(_lib.le_avc_SetRetryTimers(arr, len(values)))


def get_apn_config() -> tuple[str, str, str]:
    """The APN as ``(name, user, password)``."""
    bufs = [ctypes.create_string_buffer(64) for _ in range(3)]
    _check(_lib.le_avc_GetApnConfig(bufs[0], 64, bufs[1], 64, bufs[2], 64))
    return tuple(b.value.decode("utf-8", "replace") for b in bufs)  # type: ignore[return-value]


def read_lwm2m_resource(obj: int, inst: int, res: int, res_inst: int = 0) -> str:
    """The value of resource ``/obj/inst/res`` (instance ``res_inst`` of a
    multiple resource) in its text form, read from the running session's
    agent; :class:`FaultError` without a session or for an unknown path."""
    buf = ctypes.create_string_buffer(514)
    _check(_lib.le_avc_ReadLwm2mResource(int(obj), int(inst), int(res), int(res_inst), buf, len(buf)))
    return buf.value.decode("utf-8", "replace")


def set_apn_config(name: str, user: str = "", password: str = "") -> None:
    """Sets the APN; :class:`AvcOverflowError` when a value is too long."""
    _check(_lib.le_avc_SetApnConfig(name.encode(), user.encode(), password.encode()))


class BlockHandle:
    """An install block from :func:`block_install`; a context manager.

    ``release()`` (or leaving the ``with`` block) unblocks; releasing twice
    is harmless.
    """

    def __init__(self, ref: int) -> None:
        self._ref: int | None = ref
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            ref, self._ref = self._ref, None
        if ref is not None:
            _lib.le_avc_UnblockInstall(ref)

    def __enter__(self) -> BlockHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def block_install() -> BlockHandle:
    """Blocks installs and uninstalls until the handle is released."""
    ref = _lib.le_avc_BlockInstall()
    if not ref:
        raise FaultError(-6, last_error() or "le_avc_BlockInstall failed")
    return BlockHandle(ref)


CommInfoHandler = Callable[[int, str], None]


class CommInfoHandle:
    """A registered CommInfo handler; keeps the ctypes callback alive."""

    def __init__(self, ref: int, cb: object) -> None:
        self._ref: int | None = ref
        self._cb = cb


_comm_handles: set[CommInfoHandle] = set()
_comm_lock = threading.Lock()


def add_comm_info_handler(fn: CommInfoHandler) -> CommInfoHandle:
    """Calls ``fn(code, text)`` on libavc's dispatcher thread for each
    communication-information report (``LE_AVC_COMM_INFO_*`` codes).
    Exceptions it raises are logged, never propagated."""

    def trampoline(code: int, text: bytes | None, _ctx: object) -> None:
        try:
            fn(int(code), (text or b"").decode("utf-8", "replace"))
        except Exception:  # noqa: BLE001 - a handler must not unwind into C
            _log.exception("CommInfo handler raised")

    cb = COMM_INFO_HANDLER_FN(trampoline)
    ref = _lib.le_avc_AddCommInfoHandler(cb, None)
    if not ref:
        raise FaultError(-6, last_error() or "le_avc_AddCommInfoHandler failed")
    h = CommInfoHandle(ref, cb)
    with _comm_lock:
        _comm_handles.add(h)
    return h


def remove_comm_info_handler(handle: CommInfoHandle) -> None:
    """Removes a CommInfo handler; removing twice is harmless."""
    with _comm_lock:
        if handle not in _comm_handles:
            return
        _comm_handles.discard(handle)
    ref, handle._ref = handle._ref, None
    if ref is not None:
        _lib.le_avc_RemoveCommInfoHandler(ref)


class SessionRequest(enum.IntEnum):
    """``le_avc_SessionRequest_t``: what the session request handler is
    asked."""

    #: ``LE_AVC_SESSION_ACQUIRE``: the agent needs a session (its polling
    #: timer, a retry); open it with :func:`avc.start_session`.
    ACQUIRE = 0
    #: ``LE_AVC_SESSION_RELEASE``: a session the agent opened is inactive;
    #: close it with :func:`avc.stop_session`.
    RELEASE = 1


SessionRequestHandler = Callable[[SessionRequest], None]


class SessionRequestHandle:
    """The registered session request handler; keeps the ctypes callback
    alive."""

    def __init__(self, ref: int, cb: object) -> None:
        self._ref: int | None = ref
        self._cb = cb


_session_request_handles: set[SessionRequestHandle] = set()


def add_session_request_handler(fn: SessionRequestHandler) -> SessionRequestHandle:
    """Registers the one session request handler
    (``le_avc_AddSessionRequestEventHandler``): from now on the agent does
    not open or close sessions by itself but calls ``fn(request)`` on
    libavc's dispatcher thread, and the application answers by starting or
    stopping the session. Raises :class:`~avc.DuplicateError` if one is
    registered already. Exceptions ``fn`` raises are logged, never
    propagated."""

    def trampoline(request: int, _ctx: object) -> None:
        try:
            fn(SessionRequest(request))
        except Exception:  # noqa: BLE001 - a handler must not unwind into C
            _log.exception("session request handler raised")

    cb = SESSION_REQUEST_HANDLER_FN(trampoline)
    ref = _lib.le_avc_AddSessionRequestEventHandler(cb, None)
    if not ref:
        raise DuplicateError(-14, last_error() or "a session request handler is already registered")
    h = SessionRequestHandle(ref, cb)
    with _comm_lock:
        _session_request_handles.add(h)
    return h


def remove_session_request_handler(handle: SessionRequestHandle) -> None:
    """Removes the session request handler; the agent then opens and
    closes its sessions itself again. Removing twice is harmless."""
    with _comm_lock:
        if handle not in _session_request_handles:
            return
        _session_request_handles.discard(handle)
    ref, handle._ref = handle._ref, None
    if ref is not None:
        _lib.le_avc_RemoveSessionRequestEventHandler(ref)
