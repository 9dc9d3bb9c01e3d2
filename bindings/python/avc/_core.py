"""The binding proper: configuration, status handlers, sessions, polling."""

from __future__ import annotations

import atexit
import base64
import ctypes
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import _ffi
from ._enums import LogLevel, Result, Status
from .errors import BadParameterError, error_for

__all__ = [
    "Event",
    "StatusHandler",
    "StatusHandlerHandle",
    "add_status_handler",
    "configure",
    "define_objects_xml",
    "enable_polling",
    "get_config",
    "last_error",
    "poll_event",
    "remove_status_handler",
    "result_text",
    "set_config",
    "send",
    "set_value",
    "start_session",
    "stop_session",
    "version",
]

_log = logging.getLogger("avc")
_lib = _ffi.lib

#: A status handler: called with (status, total_num_bytes, progress) on
#: libavc's dispatcher thread. ``status`` is a :class:`Status` (a plain int
#: for a value this binding does not know); the two numbers are -1 when
#: unknown.
StatusHandler = Callable[[Status | int, int, int], None]


# ---- errors -------------------------------------------------------------


def last_error() -> str:
    """Returns libavc's message about the last failed call on this thread."""
    buf = ctypes.create_string_buffer(512)
    n = _lib.avc_last_error(buf, len(buf))
    if n >= len(buf):
        buf = ctypes.create_string_buffer(n + 1)
        _lib.avc_last_error(buf, len(buf))
    return buf.value.decode("utf-8", "replace")


def _check(rc: int) -> None:
    """Raises the AvcError for a failed result code (message from libavc)."""
    if rc != Result.OK:
        raise error_for(rc, last_error())


def result_text(result: int) -> str:
    """Returns the C name of a result code, e.g. ``"LE_DUPLICATE"``."""
    return (_lib.le_result_Txt(int(result)) or b"").decode()


def version() -> str:
    """Returns libavc's version, e.g. ``"0.1.0"``."""
    return (_lib.avc_version() or b"").decode()


# ---- logging --------------------------------------------------------------


def _py_level(level: int) -> int:
    if level < LogLevel.INFO:
        return logging.DEBUG
    if level < LogLevel.WARN:
        return logging.INFO
    if level < LogLevel.ERROR:
        return logging.WARNING
    return logging.ERROR


def _on_log(_user: int | None, level: int, msg: bytes | None) -> None:
    try:
        _log.log(_py_level(level), "%s", (msg or b"").decode("utf-8", "replace"))
    except BaseException:  # never let anything unwind into libavc
        pass


# Kept referenced for the life of the process: libavc may call it at any time.
_log_cb = _ffi.LOG_FN(_on_log)
_lib.avc_set_log_handler(_log_cb, None)


# ---- configuration --------------------------------------------------------


def _config_name(name: str) -> str:
    n = name.strip().upper()
    return n if n.startswith("AVC_") else "AVC_" + n


def _config_value(value: str | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise TypeError("configuration values are str or int, not bool")
    if isinstance(value, (str, int)):
        return str(value)
    raise TypeError(f"configuration values are str or int, not {type(value).__name__}")


def set_config(name: str, value: str | int | None) -> None:
    """Sets one configuration value.

    Args:
        name: an ``AVC_*`` name (``"AVC_SERVER_URI"``) or its snake_case
            form without the prefix (``"server_uri"``).
        value: the value as the environment variable would hold it; ints
            are converted; None or "" restores the default.

    If this is the first call into libavc, the ``AVC_*`` environment is not
    read at all. Values apply to the next session started
    (``AVC_LOG_LEVEL`` at once).

    Raises:
        NotFoundError: unknown name.
        FormatError: the value has the wrong form.
    """
    _check(_lib.avc_config_set(_config_name(name).encode(), _config_value(value).encode()))


def configure(**settings: str | int | None) -> None:
    """Sets several configuration values: ``configure(server_uri="coap://…", lifetime=60)``.

    Keys are as for :func:`set_config`. Values are applied in order; the
    first bad one raises and the rest are not applied.
    """
    for name, value in settings.items():
        set_config(name, value)


def get_config(name: str) -> str:
    """Returns a configuration value; ``AVC_PSK_KEY`` reads "(set)" or "", never the key."""
    size = 256
    while True:
        buf = ctypes.create_string_buffer(size)
        rc = _lib.avc_config_get(_config_name(name).encode(), buf, size)
        if rc == Result.OVERFLOW and size < 1 << 20:
            size *= 4
            continue
        _check(rc)
        return buf.value.decode("utf-8", "replace")


# ---- values and custom objects ------------------------------------------------

#: What :func:`set_value` accepts.
Value = str | int | float | bool | bytes | bytearray | memoryview | None


def _c_text(s: str, what: str) -> bytes:
    if not isinstance(s, str):
        raise TypeError(f"{what} must be a str, not {type(s).__name__}")
    if "\0" in s:
        raise ValueError(f"{what} must not contain NUL characters")
    return s.encode("utf-8")


def _value_text(value: Value) -> bytes | None:
    """The text/plain form (LwM2M Core §7.4.1) libavc takes, or None to remove."""
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int
        return b"true" if value else b"false"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"LwM2M floats are finite, not {value!r}")
        return repr(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value))  # opaque resources take base64
    if isinstance(value, str):
        return _c_text(value, "value")
    raise TypeError(f"values are str, int, float, bool, bytes or None, not {type(value).__name__}")


def set_value(path: str, value: Value) -> None:
    """Sets a value the device keeps up to date (``avc_set_value``).

    Args:
        path: the LwM2M path of a resource (``"/3/0/9"``, the battery
            level) or of an instance of a multiple resource
            (``"/3/0/11/1"``, an error code).
        value: converted to the resource's type by the engine: an int,
            float or bool; a str in the text/plain form ("50", "true",
            "3:0" for an object link, Unix seconds for a time); bytes for
            an opaque resource; None removes the resource instance.

    Values may be set at any time, with or without a session: libavc
    remembers the last value of every path and gives them all to every
    session it starts; a running session gets the new value at once.
    Define custom objects (:func:`define_objects_xml`) before setting their
    values.

    Raises:
        BadParameterError: the path is malformed, or the engine refuses the
            path or the value (no such object, instance or resource; an
            executable or computed resource; a value that does not convert;
            None for a single resource). The message says why.
        AvcOverflowError: AVC_VALUES_MAX (1024) paths are remembered already.
        TypeError, ValueError: a value of another type, a NUL in a string,
            a float that is not finite.
    """
    _check(_lib.avc_set_value(_c_text(path, "path"), _value_text(value)))


def define_objects_xml(xml: str | bytes | bytearray | None) -> None:
    """Defines custom objects from OMA LwM2M registry XML (``avc_object_define_xml``).

    Args:
        xml: a document in the registry's format,
            ``<LWM2M><Object>…</Object></LWM2M>`` (str, or bytes as read
            from the file). None removes every definition made so far.

    The objects apply to the next session started; each call adds its
    objects, replacing earlier definitions with the same object ID. Their
    values are set with :func:`set_value`; instances of a
    multiple-instance object appear with their first value.

    Raises:
        FormatError: not a well-formed registry document (or over 1 MiB).
        BadParameterError: the document defines a built-in object (0, 1,
            3, 4, 6, 7).
        TypeError: xml is of another type.
    """
    if xml is None:
        _check(_lib.avc_object_define_xml(None, 0))
        return
    if isinstance(xml, str):
        data = xml.encode("utf-8")
    elif isinstance(xml, (bytes, bytearray)):
        data = bytes(xml)
    else:
        raise TypeError(f"xml must be str or bytes, not {type(xml).__name__}")
    # An empty document is still a document (refused as such), not NULL.
    buf = ctypes.create_string_buffer(data, len(data) or 1)
    _check(_lib.avc_object_define_xml(buf, len(data)))


def send(paths: Sequence[str]) -> None:
    """Reports the current values at paths with the LwM2M Send operation (``avc_send``).

    Args:
        paths: LwM2M paths of objects, instances or resources, e.g.
            ``["/3/0/9"]`` (the battery level set with :func:`set_value`);
            1 to 1024 of them. A single str is refused (pass a list).

    Needs a started session: while it is not registered yet, the values
    are read now, queued and sent after the registration. The server's
    answer is not reported as a status (libavc logs it).

    Raises:
        NotPermittedError: no session is started, or the server muted Send.
        BadParameterError: no paths, a malformed path, or one the engine
            cannot read (e.g. the Security object). The message says why.
        TypeError, ValueError: paths is a str or holds a non-str, a NUL in
            a path.
    """
    if isinstance(paths, (str, bytes)):
        raise TypeError("paths must be a sequence of str, not a single str")
    encoded = [_c_text(p, "path") for p in paths]
    arr = (ctypes.c_char_p * max(len(encoded), 1))(*encoded)
    _check(_lib.avc_send(arr, len(encoded)))


# ---- status handlers --------------------------------------------------------

_handlers_lock = threading.Lock()
_live: dict[int, StatusHandlerHandle] = {}
# Callbacks removed from inside a callback: freed once the dispatcher has
# moved on to another call, never while one may still be running.
_retired: list[object] = []
_dispatcher_ident: int | None = None


def _status_value(status: int) -> Status | int:
    try:
        return Status(status)
    except ValueError:
        return status


class StatusHandlerHandle:
    """What :func:`add_status_handler` returns; pass it to :func:`remove_status_handler`."""

    __slots__ = ("_cb", "_ref", "handler")

    def __init__(self, handler: StatusHandler) -> None:
        self.handler: StatusHandler = handler
        self._ref: int = 0
        self._cb: object | None = None

    @property
    def removed(self) -> bool:
        """True once the handler was removed."""
        return self._cb is None

    def remove(self) -> None:
        """Same as ``remove_status_handler(self)``."""
        remove_status_handler(self)

    def __repr__(self) -> str:
        state = "removed" if self.removed else f"ref={self._ref}"
        return f"<StatusHandlerHandle {self.handler!r} {state}>"


def _wrap(handler: StatusHandler) -> object:
    def call(status: int, total: int, progress: int, _ctx: int | None) -> None:
        global _dispatcher_ident
        try:
            _dispatcher_ident = threading.get_ident()
            if _retired:
                # The dispatcher runs one call at a time: any callback retired
                # earlier has returned by now.
                with _handlers_lock:
                    _retired.clear()
            handler(_status_value(status), total, progress)
        except BaseException:  # never let an exception unwind into libavc
            try:
                _log.exception("status handler %r raised", handler)
            except BaseException:
                pass

    return _ffi.STATUS_HANDLER_FN(call)


def add_status_handler(handler: StatusHandler) -> StatusHandlerHandle:
    """Adds a status handler (``le_avc_AddStatusEventHandler``).

    The handler is called as ``handler(status, total_num_bytes, progress)``
    on libavc's dispatcher thread (not the caller's), for every status
    reported after this returns. Exceptions it raises are logged on the
    "avc" logger and otherwise ignored.

    Raises:
        BadParameterError: handler is None.
        TypeError: handler is not callable.
    """
    if handler is not None and not callable(handler):
        raise TypeError(f"status handler must be callable, not {type(handler).__name__}")
    h = StatusHandlerHandle(handler)
    cb = _wrap(handler) if handler is not None else _ffi.STATUS_HANDLER_FN(0)  # NULL
    ref = _lib.le_avc_AddStatusEventHandler(cb, None)
    if not ref:
        raise BadParameterError(Result.BAD_PARAMETER, last_error() or "status handler refused")
    with _handlers_lock:
        h._ref, h._cb = ref, cb
        _live[ref] = h
    return h


def remove_status_handler(handle: StatusHandlerHandle) -> None:
    """Removes a status handler (``le_avc_RemoveStatusEventHandler``).

    Once this returns the handler is not called again (called from inside a
    handler, the running call finishes first). Removing a handle twice is
    harmless: libavc logs a warning and ignores it.
    """
    if not isinstance(handle, StatusHandlerHandle):
        raise TypeError(f"expected a StatusHandlerHandle, not {type(handle).__name__}")
    _lib.le_avc_RemoveStatusEventHandler(handle._ref or None)
    with _handlers_lock:
        _live.pop(handle._ref, None)
        cb, handle._cb = handle._cb, None
        if cb is not None and threading.get_ident() == _dispatcher_ident:
            # We may be inside this very callback: keep it alive until the
            # dispatcher's next call.
            _retired.append(cb)


# ---- sessions -----------------------------------------------------------------


def start_session() -> None:
    """Starts a session (``le_avc_StartSession``): registers to the server.

    Non-blocking: ``Status.SESSION_STARTED`` (or ``SESSION_FAILED``) is
    reported to status handlers and the poll queue later.

    Raises:
        DuplicateError: a session is already started.
        FaultError: the configuration is missing or invalid (the message
            says what, e.g. that AVC_SERVER_URI is required).
    """
    _check(_lib.le_avc_StartSession())


def stop_session() -> None:
    """Stops the session (``le_avc_StopSession``): de-registers.

    Non-blocking: ``Status.SESSION_STOPPED`` follows when done.

    Raises:
        DuplicateError: no session is started.
    """
    _check(_lib.le_avc_StopSession())


# ---- polling -----------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """An event taken from the poll queue (``avc_event_t``)."""

    status: Status | int
    total_num_bytes: int = -1
    progress: int = -1
    message: str = ""
    dropped: int = 0
    type: int = 1


def enable_polling(enabled: bool = True) -> None:
    """Turns the poll queue on or off (``avc_events_enable_poll``).

    While on, every status event is also queued for :func:`poll_event`,
    whether or not handlers are registered. Turning it off empties the
    queue.
    """
    _check(_lib.avc_events_enable_poll(1 if enabled else 0))


# Longest single wait inside libavc, so that Ctrl-C is seen promptly.
_POLL_SLICE_MS = 200


def poll_event(timeout: float | None = None) -> Event | None:
    """Takes the next event from the poll queue (``avc_poll_event``).

    Args:
        timeout: seconds to wait; 0 does not wait; None waits until an
            event arrives.

    Returns:
        the event, or None when none arrived within ``timeout``.

    Raises:
        NotPermittedError: polling is off (see :func:`enable_polling`).
    """
    ev = _ffi.AvcEvent()
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    while True:
        if deadline is None:
            wait_ms = _POLL_SLICE_MS
        else:
            wait_ms = max(0, min(_POLL_SLICE_MS, int((deadline - time.monotonic()) * 1000)))
        rc = _lib.avc_poll_event(ctypes.byref(ev), wait_ms)
        if rc == Result.OK:
            return Event(
                status=_status_value(ev.status),
                total_num_bytes=ev.total_num_bytes,
                progress=ev.progress,
                message=ev.message.decode("utf-8", "replace"),
                dropped=ev.dropped,
                type=ev.type,
            )
        if rc != Result.TIMEOUT:
            _check(rc)
        if deadline is not None and time.monotonic() >= deadline:
            return None


# ---- interpreter exit ------------------------------------------------------------


@atexit.register
def _quiesce() -> None:
    """Stops every call from libavc into Python before the interpreter finalises.

    libavc's threads outlive the interpreter; a callback arriving during
    finalisation would crash. Removing the handlers waits for calls in
    progress.
    """
    try:
        _lib.avc_set_log_handler(_ffi.LOG_FN(0), None)  # NULL: back to stderr
        with _handlers_lock:
            handles = list(_live.values())
        for h in handles:
            _lib.le_avc_RemoveStatusEventHandler(h._ref)
    except BaseException:
        pass
