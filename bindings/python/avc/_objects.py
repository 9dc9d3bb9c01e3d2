"""Custom objects declared field by field (``avc_object_define``) and the
callbacks for the server's reads, writes and executes on them
(``avc_object_set_handlers``)."""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Protocol

from . import _ffi
from ._core import _check, set_value

__all__ = [
    "ObjectDef",
    "ObjectHandler",
    "Operations",
    "ResourceDef",
    "ResourceType",
    "define_objects",
    "set_object_handler",
]

_log = logging.getLogger("avc")
_lib = _ffi.lib

_MAX_ID = 65535  # what avc.h's uint16_t holds; libavc refuses 65535 itself


class ResourceType(IntEnum):
    """A resource's data type (``avc_resource_type_t``, LwM2M Core TS 1.1 Appendix C)."""

    NONE = 0  #: executable resources
    STRING = 1
    INTEGER = 2
    UNSIGNED = 3
    FLOAT = 4
    BOOLEAN = 5
    OPAQUE = 6
    TIME = 7
    OBJLNK = 8
    CORELNK = 9


class Operations(IntFlag):
    """The operations a resource allows (``AVC_OP_*``): READ and/or WRITE,
    or EXECUTE alone, or none. READ_CB, beside READ, makes the value the
    host's to give when the server reads it (as ``ResourceDef.on_read``)."""

    NONE = 0
    READ = 1
    WRITE = 2
    EXECUTE = 4
    READ_CB = 8
    RW = READ | WRITE


@dataclass(frozen=True)
class ResourceDef:
    """One resource of an :class:`ObjectDef` (``avc_resource_def_t``).

    A readable or writable resource has a type; an executable one has
    :attr:`ResourceType.NONE`.

    ``on_read=True`` (``AVC_OP_READ_CB``) on a readable resource makes its
    value the host's to give when the server reads it: the read method of
    the :func:`set_object_handler` handler is called with its path before
    the engine answers (see there).
    """

    id: int
    name: str = ""
    type: ResourceType | int = ResourceType.NONE
    operations: Operations | int = Operations.NONE
    multiple: bool = False
    mandatory: bool = False
    on_read: bool = False


@dataclass(frozen=True)
class ObjectDef:
    """An object declared field by field (``avc_object_def_t``), as the OMA
    registry describes one."""

    id: int
    name: str = ""
    version: str = "1.0"
    multiple: bool = False
    mandatory: bool = False
    resources: Sequence[ResourceDef] = ()


def _id(v: object, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    if not 0 <= v <= _MAX_ID:
        raise ValueError(f"{what} {v} is out of range (0..{_MAX_ID})")
    return v


def _text(v: object, what: str) -> bytes:
    if not isinstance(v, str):
        raise TypeError(f"{what} must be a str, not {type(v).__name__}")
    if "\0" in v:
        raise ValueError(f"{what} must not contain NUL characters")
    return v.encode("utf-8")


def _small_int(v: object, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    if not -(2**31) <= v < 2**31:
        raise ValueError(f"{what} {v} is out of range")
    return int(v)


def define_objects(objects: Sequence[ObjectDef] | None) -> None:
    """Defines custom objects field by field (``avc_object_define``).

    Args:
        objects: the definitions (1 to 1024); None removes every definition
            made so far, however it was made.

    Exactly what :func:`define_objects_xml` does with a registry document,
    with the same rules: the objects apply to the next session started,
    each call replaces earlier definitions with the same object IDs, and
    their values are set with :func:`set_value`.

    Raises:
        FormatError: a definition is malformed (an ID of 65535, a resource
            defined twice, an unknown type or operation, an executable
            resource with a type or a readable one without, a version not
            like "1.0"). Nothing is defined.
        BadParameterError: no objects, too many, or a built-in object (0,
            1, 3, 4, 6, 7).
        TypeError, ValueError: a field of the wrong type or range (IDs are
            0..65535), a NUL in a string.
    """
    if objects is None:
        _check(_lib.avc_object_define(None, 0))
        return
    if isinstance(objects, (str, bytes)) or not isinstance(objects, Sequence):
        raise TypeError(f"objects must be a sequence of ObjectDef, not {type(objects).__name__}")
    arr = (_ffi.AvcObjectDef * max(len(objects), 1))()
    keep: list[object] = []  # the strings and arrays the structs point to
    for i, o in enumerate(objects):
        if not isinstance(o, ObjectDef):
            raise TypeError(f"objects[{i}] must be an ObjectDef, not {type(o).__name__}")
        res = o.resources
        if isinstance(res, (str, bytes)) or not isinstance(res, Sequence):
            raise TypeError(f"objects[{i}].resources must be a sequence of ResourceDef")
        rarr = (_ffi.AvcResourceDef * max(len(res), 1))()
        for j, r in enumerate(res):
            if not isinstance(r, ResourceDef):
                raise TypeError(f"objects[{i}].resources[{j}] must be a ResourceDef, not {type(r).__name__}")
            name = _text(r.name, f"objects[{i}].resources[{j}].name")
            keep.append(name)
            rarr[j] = _ffi.AvcResourceDef(
                _id(r.id, f"objects[{i}].resources[{j}].id"),
                name,
                _small_int(r.type, f"objects[{i}].resources[{j}].type"),
                (_small_int(r.operations, f"objects[{i}].resources[{j}].operations") | (Operations.READ_CB if r.on_read else 0))
                & 0xFFFFFFFF,
                1 if r.multiple else 0,
                1 if r.mandatory else 0,
            )
        keep.append(rarr)
        name = _text(o.name, f"objects[{i}].name")
        version = _text(o.version, f"objects[{i}].version")
        keep.extend((name, version))
        arr[i] = _ffi.AvcObjectDef(
            _id(o.id, f"objects[{i}].id"),
            name,
            version,
            1 if o.multiple else 0,
            1 if o.mandatory else 0,
            ctypes.cast(rarr, ctypes.POINTER(_ffi.AvcResourceDef)) if len(res) else None,
            len(res),
        )
    _check(_lib.avc_object_define(arr, len(objects)))


class ObjectHandler(Protocol):
    """What :func:`set_object_handler` takes: an object with either or both
    of these methods (a missing one is not called)."""

    def write(self, path: str, value: str | None) -> None:
        """The server wrote path; value is its text/plain form, None when
        path is not a single resource or resource instance."""

    def execute(self, path: str, args: str) -> None:
        """The server executed the resource at path with args ("" when none)."""

    def read(self, path: str) -> object:
        """The server reads the resource declared ``on_read`` at path (or
        the resource instance): return its value (as :func:`set_value`
        takes it), or set it with :func:`set_value` and return None."""


_handler_lock = threading.Lock()  # guards _handler; held briefly in the callbacks
_install_lock = threading.Lock()  # serializes set_object_handler
_handler: object | None = None
_installed = False


def _decode(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8", "replace")


def _on_write(_user: int | None, path: bytes | None, value: bytes | None) -> None:
    with _handler_lock:
        h = _handler
    fn = getattr(h, "write", None)
    if fn is None:
        return
    try:
        fn(_decode(path) or "", _decode(value))
    except Exception:
        _log.exception("object handler write(%r) raised", path)


def _on_execute(_user: int | None, path: bytes | None, args: bytes | None) -> None:
    with _handler_lock:
        h = _handler
    fn = getattr(h, "execute", None)
    if fn is None:
        return
    try:
        fn(_decode(path) or "", _decode(args) or "")
    except Exception:
        _log.exception("object handler execute(%r) raised", path)


def _on_read(_user: int | None, path: bytes | None) -> None:
    with _handler_lock:
        h = _handler
    fn = getattr(h, "read", None)
    if fn is None:
        return
    p = _decode(path) or ""
    try:
        value = fn(p)
        if value is not None:
            set_value(p, value)
    except Exception:
        _log.exception("object handler read(%r) raised", p)


# One set of C callbacks for the life of the process, so that a call
# libavc has already begun never meets a freed trampoline; they call the
# handler set now.
_c_handlers = _ffi.AvcObjectHandlers(
    _ffi.OBJECT_WRITE_FN(_on_write), _ffi.OBJECT_EXECUTE_FN(_on_execute), _ffi.OBJECT_READ_FN(_on_read)
)


def set_object_handler(handler: ObjectHandler | object | None) -> None:
    """Sets the object that hears the server's reads, writes and executes
    on the custom objects (``avc_object_set_handlers``).

    ``handler.write(path, value)`` is called after the server wrote a
    resource ("/3442/0/110": value "from the server"), a resource
    instance, or several at once (an instance path, value None; read them
    with :func:`avc.read_lwm2m_resource` if needed). ``handler.execute(path,
    args)`` is called after the server executed a resource, with the
    Execute arguments as sent ("0='on',1"; "" when none). Any method
    may be missing. The engine keeps the written values.

    ``handler.read(path)`` is called when the server reads a resource
    declared with ``on_read=True`` (once per such resource a Read of a
    resource, instance or object, a Read-Composite or an Observe covers):
    it returns the value, or sets it with :func:`set_value` (a multiple
    resource's instances one by one) and returns None. The engine has
    acknowledged the request and answers it, with the values it has, once
    read returns, or after AVC_READ_TIMEOUT (5 s by default) if it takes
    longer. Without a read method the values the engine has answer at
    once. Notifications of observed resources carry the values last set:
    keep them current with :func:`set_value` for observers.

    Calls come on libavc's dispatcher thread (the one running status
    handlers), one at a time, in the order the server's requests were
    handled, with no libavc lock held: they may call any function of this
    module. Exceptions are logged on the "avc" logger and otherwise
    ignored. None removes the handler: later calls are dropped.
    """
    global _handler, _installed
    if handler is not None and not any(callable(getattr(handler, m, None)) for m in ("write", "execute", "read")):
        raise TypeError(f"object handler must have a write, execute or read method, not {type(handler).__name__}")
    with _install_lock:
        with _handler_lock:
            _handler = handler
        if handler is not None and not _installed:
            _check(_lib.avc_object_set_handlers(ctypes.byref(_c_handlers), None))
            _installed = True
        elif handler is None and _installed:
            _check(_lib.avc_object_set_handlers(None, None))
            _installed = False
