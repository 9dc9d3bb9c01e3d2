"""Firmware update (LwM2M Object 5): storage handlers and statuses (avc.h, ``avc_fw_*``)."""

from __future__ import annotations

import abc
import ctypes
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from . import _ffi
from ._core import _c_text, _check
from ._enums import FirmwareState, UpdateResult
from .errors import FirmwareError

__all__ = [
    "CoapTxParams",
    "FirmwareHandler",
    "FirmwarePackage",
    "FirmwareSecurity",
    "FirmwareStatus",
    "FirmwareStatusHandler",
    "install_firmware_handler",
    "set_firmware_status_handler",
    "set_firmware_trusted_key",
    "uninstall_firmware_handler",
]

_log = logging.getLogger("avc")
_lib = _ffi.lib


@dataclass(frozen=True)
class FirmwarePackage:
    """A downloaded package (``avc_fw_package_t``).

    ``name`` and ``version`` come from the package manifest ("" for a bare
    image); ``uri`` is "" for a push; ``sha256`` is the hex SHA-256 of the
    ``size`` image bytes.
    """

    uri: str
    name: str
    version: str
    sha256: str
    size: int


@dataclass(frozen=True)
class FirmwareStatus:
    """The progress of a firmware update (``avc_fw_status_t``).

    Attributes:
        state: State /5/0/3.
        result: Update Result /5/0/5.
        bytes: package bytes received in this download.
        total: the package size, -1 when unknown.
        http_status: the HTTP status of a failed HTTP(S) pull, else 0.
        version: the package version, "" when unknown.
    """

    state: FirmwareState | int
    result: UpdateResult | int
    bytes: int
    total: int
    http_status: int = 0
    version: str = ""


@dataclass(frozen=True)
class FirmwareSecurity:
    """The credential of one pull, from :meth:`FirmwareHandler.get_security_config`
    (``avc_fw_security_config_t``). Fields left None fall back to the
    configuration.

    Attributes:
        psk_identity, psk_key: the DTLS-PSK credential of a coaps:// pull
            (both or neither).
        ca_pem: PEM certificates an https:// pull trusts instead of
            ``AVC_FW_CA_FILE`` or the system's roots.
        client_cert_pem, client_key_pem: a PEM certificate chain and its
            private key that an https:// pull presents (both or neither).
    """

    psk_identity: str | None = None
    psk_key: bytes | None = None
    ca_pem: str | bytes | None = None
    client_cert_pem: str | bytes | None = None
    client_key_pem: str | bytes | None = None


@dataclass(frozen=True)
class CoapTxParams:
    """CoAP transmission parameters (RFC 7252 §4.8) of a coap:// or coaps:// pull,
    from :meth:`FirmwareHandler.get_coap_tx_params` (``avc_fw_coap_tx_params_t``).

    Attributes:
        ack_timeout: ACK_TIMEOUT in seconds, 0.001 to 600 (default 2).
        ack_random_factor: ACK_RANDOM_FACTOR, 1.0 to 4.0 (default 1.5).
        max_retransmit: MAX_RETRANSMIT, 0 to 20 (default 4).
    """

    ack_timeout: float = 2.0
    ack_random_factor: float = 1.5
    max_retransmit: int = 4


#: A firmware status callback: called with a :class:`FirmwareStatus` on
#: libavc's dispatcher thread.
FirmwareStatusHandler = Callable[[FirmwareStatus], None]


class FirmwareHandler(abc.ABC):
    """Stores and installs firmware images for libavc (``avc_fw_handlers_t``).

    Here's an example::

        class RamFlash(avc.FirmwareHandler):
            def __init__(self) -> None:
                self.image = bytearray()
            def stream_open(self, uri: str, offset: int) -> None:
                del self.image[offset:]
            def stream_write(self, data: bytes) -> None:
                self.image += data
            def stream_finish(self) -> None:
                pass
            def reset(self) -> None:
                self.image.clear()
            def perform_upgrade(self, pkg: avc.FirmwarePackage) -> None:
                flash_and_reboot(self.image)
            def booted(self, pkg: avc.FirmwarePackage) -> tuple[str, bool]:
                return running_version(), running_version() == pkg.version

        avc.install_firmware_handler(RamFlash())
        avc.start_session()

    libavc runs the download (pull or push), verifies the package (length,
    SHA-256, signed manifest) while it streams, and hands the methods the
    image bytes only. An update calls stream_open, stream_write...,
    stream_finish; then, on the server's Update, perform_upgrade; after the
    restart that follows, booted.

    # Notes

    - Methods run on a libavc thread, one at a time, and are expected to
      return quickly (they are storage). They must not call
      :func:`avc.set_value`, :func:`avc.send` or
      :func:`install_firmware_handler` (those raise NotPermittedError
      there).
    - A method fails by raising: a :class:`avc.FirmwareError` subclass
      chooses the Update Result (``raise avc.FirmwareNoSpace()``); any other
      exception is logged on the "avc" logger and gives the default result
      of the call. Nothing propagates into libavc.
    - ``sync`` is optional: override it when writes need a flush to be
      durable (it runs before every download checkpoint).
    - The ``get_*`` methods are optional too (Anjay's hooks): libavc only
      calls the ones a subclass overrides. ``get_name`` and ``get_version``
      name a bare image; ``get_security_config``, ``get_coap_tx_params``
      and ``get_tcp_request_timeout`` are asked with the Package URI when a
      pull starts or resumes. An exception there is logged and counts as
      "none" (for ``get_security_config``: the pull fails, Update Result 9,
      or the result of a :class:`avc.FirmwareError` subclass).
    """

    @abc.abstractmethod
    def stream_open(self, uri: str, offset: int) -> None:
        """Prepares to store an image.

        Args:
            uri: the Package URI of a pull, "" for a push.
            offset: 0 for a new download; for one resumed after a restart,
                the image bytes to keep (append after them, or raise when
                fewer are stored: libavc then starts over).

        Default result on failure: 2 (not enough space).
        """

    @abc.abstractmethod
    def stream_write(self, data: bytes) -> None:
        """Appends image bytes. Default result on failure: 2 (not enough space)."""

    @abc.abstractmethod
    def stream_finish(self) -> None:
        """Completes the stored image. Default result on failure: 5 (integrity failure)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Discards a partial or complete image. Exceptions are logged and ignored."""

    @abc.abstractmethod
    def perform_upgrade(self, pkg: FirmwarePackage) -> None:
        """Installs the stored image.

        Returning means the install is under way and the device restarts
        into the new image (libavc restarts its engine and then asks
        :meth:`booted`). Raise :class:`avc.FirmwareDeferred` to keep the
        image for later. Default result on failure: 8 (update failed, image
        kept).
        """

    @abc.abstractmethod
    def booted(self, pkg: FirmwarePackage) -> tuple[str, bool]:
        """Asked once after a restart with an update in progress.

        Returns:
            (the version now running, whether pkg is installed). An
            exception counts as "not installed".
        """

    def sync(self) -> None:
        """Makes the bytes written so far durable (optional).

        Default result on failure: 2 (not enough space).
        """

    def get_name(self) -> str | None:
        """The name of the image just stored (optional; ``get_name``).

        Asked once a download is complete, when the package manifest gave
        no name (a manifest's name wins); shown in PkgName /5/0/6. None or
        "" for none; at most 255 UTF-8 bytes.
        """
        return None

    def get_version(self) -> str | None:
        """The version of the image just stored (optional; ``get_version``).

        As :meth:`get_name`, for PkgVersion /5/0/7. Shown, never verified:
        anti-rollback compares the signed manifest's version only.
        """
        return None

    def get_security_config(self, uri: str) -> FirmwareSecurity | None:
        """The credential of a coaps:// or https:// pull of uri (optional).

        None means the configuration (``fw_psk_identity``/``fw_psk_key``,
        ``fw_ca_file``). Raising fails the pull (Update Result 9, or that of
        a :class:`avc.FirmwareError` subclass).
        """
        return None

    def get_coap_tx_params(self, uri: str) -> CoapTxParams | None:
        """The CoAP transmission parameters of a coap:// or coaps:// pull of uri
        (optional); None keeps the defaults. They apply to the pull's
        requests only.
        """
        return None

    def get_tcp_request_timeout(self, uri: str) -> float | None:
        """The request timeout of an http:// or https:// pull of uri, in
        seconds (optional): when the server sends nothing for that long the
        download fails with Update Result 4. None or <= 0: none.
        """
        return None


# The installed handler's ctypes objects, kept referenced while libavc may
# call them: avc_fw_install/avc_fw_uninstall return only once the previous
# handlers are unused, so a replaced set can be dropped then.
_fw_lock = threading.Lock()
_fw_installed: tuple[FirmwareHandler, _ffi.AvcFwHandlers] | None = None


def _text(b: bytes | None) -> str:
    return (b or b"").decode("utf-8", "replace")


def _package(p: ctypes._Pointer[_ffi.AvcFwPackage]) -> FirmwarePackage:
    c = p.contents
    return FirmwarePackage(uri=_text(c.uri), name=_text(c.name), version=_text(c.version),
                           sha256=_text(c.sha256), size=int(c.size))


def _failed(name: str, handler: FirmwareHandler, exc: BaseException) -> int:
    """Logs a method's exception and returns its C code."""
    try:
        if isinstance(exc, FirmwareError):
            _log.warning("firmware handler %s failed: %r", name, exc)
            return exc.code
        _log.error("firmware handler %s.%s raised", type(handler).__name__, name, exc_info=exc)
    except BaseException:  # never let anything unwind into libavc
        pass
    return -1


def _callbacks(handler: FirmwareHandler) -> _ffi.AvcFwHandlers:
    """Builds the avc_fw_handlers_t whose callbacks call handler's methods."""

    def stream_open(_user: int | None, uri: bytes | None, offset: int) -> int:
        try:
            handler.stream_open(_text(uri), int(offset))
            return 0
        except BaseException as e:
            return _failed("stream_open", handler, e)

    def stream_write(_user: int | None, data: int | None, length: int) -> int:
        try:
            handler.stream_write(ctypes.string_at(data, length) if length else b"")
            return 0
        except BaseException as e:
            return _failed("stream_write", handler, e)

    def stream_finish(_user: int | None) -> int:
        try:
            handler.stream_finish()
            return 0
        except BaseException as e:
            return _failed("stream_finish", handler, e)

    def reset(_user: int | None) -> None:
        try:
            handler.reset()
        except BaseException as e:
            _failed("reset", handler, e)

    def perform_upgrade(_user: int | None, pkg: ctypes._Pointer[_ffi.AvcFwPackage]) -> int:
        try:
            handler.perform_upgrade(_package(pkg))
            return 0
        except BaseException as e:
            return _failed("perform_upgrade", handler, e)

    def booted(_user: int | None, pkg: ctypes._Pointer[_ffi.AvcFwPackage], buf: int | None, size: int) -> int:
        try:
            running, installed = handler.booted(_package(pkg))
            if not isinstance(running, str):
                raise TypeError(f"booted must return (str, bool), not ({type(running).__name__}, ...)")
            b = running.encode("utf-8")[: max(size - 1, 0)]
            if buf and size:
                ctypes.memmove(buf, b + b"\0", len(b) + 1)
            return 1 if installed else 0
        except BaseException as e:
            _failed("booted", handler, e)
            return 0

    def sync(_user: int | None) -> int:
        try:
            handler.sync()
            return 0
        except BaseException as e:
            return _failed("sync", handler, e)

    # What the get_* callbacks return or fill in must outlive the call
    # until libavc has copied it, which it does before calling any other
    # callback: each call replaces the buffers of the previous one.
    kept: list[object] = []

    def keep(b: bytes) -> int:
        buf = ctypes.create_string_buffer(b, len(b) + 1)
        kept.append(buf)
        return ctypes.addressof(buf)

    def text(name: str, get: Callable[[], str | None]) -> int | None:
        kept.clear()
        try:
            v = get()
            if v is None or v == "":
                return None
            if not isinstance(v, str):
                raise TypeError(f"{name} must return str or None, not {type(v).__name__}")
            return keep(v.encode("utf-8"))
        except BaseException as e:
            _failed(name, handler, e)
            return None

    def pem(v: str | bytes | None) -> int | None:
        if v is None or len(v) == 0:
            return None
        return keep(v.encode("ascii") if isinstance(v, str) else bytes(v))

    def get_security_config(_user: int | None, out: ctypes._Pointer[_ffi.AvcFwSecurityConfig],
                            uri: bytes | None) -> int:
        kept.clear()
        try:
            sec = handler.get_security_config(_text(uri))
            if sec is None:
                return 0
            if not isinstance(sec, FirmwareSecurity):
                raise TypeError(f"get_security_config must return FirmwareSecurity or None, not {type(sec).__name__}")
            c = out.contents
            if sec.psk_identity:
                c.psk_identity = keep(sec.psk_identity.encode("utf-8"))
            if sec.psk_key:
                c.psk_key, c.psk_key_len = keep(bytes(sec.psk_key)), len(sec.psk_key)
            c.ca_pem = pem(sec.ca_pem)
            c.client_cert_pem = pem(sec.client_cert_pem)
            c.client_key_pem = pem(sec.client_key_pem)
            return 0
        except BaseException as e:
            return _failed("get_security_config", handler, e)

    def get_coap_tx_params(_user: int | None, out: ctypes._Pointer[_ffi.AvcFwCoapTxParams], uri: bytes | None) -> int:
        try:
            p = handler.get_coap_tx_params(_text(uri))
            if p is None:
                return 1
            if not isinstance(p, CoapTxParams):
                raise TypeError(f"get_coap_tx_params must return CoapTxParams or None, not {type(p).__name__}")
            c = out.contents
            c.ack_timeout_ms = max(0, min(int(round(p.ack_timeout * 1000)), 0xFFFFFFFF))
            c.ack_random_factor = float(p.ack_random_factor)
            c.max_retransmit = max(0, min(int(p.max_retransmit), 0xFFFFFFFF))
            return 0
        except BaseException as e:
            _failed("get_coap_tx_params", handler, e)
            return 1

    def get_tcp_request_timeout(_user: int | None, uri: bytes | None) -> int:
        try:
            t = handler.get_tcp_request_timeout(_text(uri))
            if t is None or t <= 0:
                return 0
            return max(1, int(t * 1000))
        except BaseException as e:
            _failed("get_tcp_request_timeout", handler, e)
            return 0

    h = _ffi.AvcFwHandlers()
    h.stream_open = _ffi.FW_STREAM_OPEN_FN(stream_open)
    h.stream_write = _ffi.FW_STREAM_WRITE_FN(stream_write)
    h.stream_finish = _ffi.FW_STREAM_FINISH_FN(stream_finish)
    h.reset = _ffi.FW_RESET_FN(reset)
    h.perform_upgrade = _ffi.FW_PERFORM_UPGRADE_FN(perform_upgrade)
    h.booted = _ffi.FW_BOOTED_FN(booted)
    if type(handler).sync is not FirmwareHandler.sync:
        h.sync = _ffi.FW_SYNC_FN(sync)
    if type(handler).get_name is not FirmwareHandler.get_name:
        h.get_name = _ffi.FW_GET_TEXT_FN(lambda _user: text("get_name", handler.get_name))
    if type(handler).get_version is not FirmwareHandler.get_version:
        h.get_version = _ffi.FW_GET_TEXT_FN(lambda _user: text("get_version", handler.get_version))
    if type(handler).get_security_config is not FirmwareHandler.get_security_config:
        h.get_security_config = _ffi.FW_GET_SECURITY_CONFIG_FN(get_security_config)
    if type(handler).get_coap_tx_params is not FirmwareHandler.get_coap_tx_params:
        h.get_coap_tx_params = _ffi.FW_GET_COAP_TX_PARAMS_FN(get_coap_tx_params)
    if type(handler).get_tcp_request_timeout is not FirmwareHandler.get_tcp_request_timeout:
        h.get_tcp_request_timeout = _ffi.FW_GET_TCP_REQUEST_TIMEOUT_FN(get_tcp_request_timeout)
    return h


def install_firmware_handler(handler: FirmwareHandler | None) -> None:
    """Installs handler as the firmware storage of the sessions started from now on (``avc_fw_install``).

    Object 5 (firmware update) is then served with it. Call it before
    :func:`avc.start_session`, after every process start (the first session
    after a restart with an update in progress asks :meth:`FirmwareHandler.booted`).
    If a stopped session is still ending, this waits for it (at most 15 s).

    Raises:
        TypeError: handler is not a FirmwareHandler.
        BadParameterError: handler is None.
        NotPermittedError: a session is started, or called from a firmware
            handler method.
        AvcTimeoutError: a stopped session did not end in time.
    """
    global _fw_installed
    if handler is None:
        _check(_lib.avc_fw_install(None, None))
        return
    if not isinstance(handler, FirmwareHandler):
        raise TypeError(f"expected a FirmwareHandler, not {type(handler).__name__}")
    h = _callbacks(handler)
    with _fw_lock:
        _check(_lib.avc_fw_install(ctypes.byref(h), None))
        _fw_installed = (handler, h)


def uninstall_firmware_handler() -> None:
    """Removes the installed firmware handler (``avc_fw_uninstall``).

    Sessions started from now on use libavc's default (files under
    ``AVC_STATE_DIR``, when it is set). Harmless without a handler.

    Raises:
        NotPermittedError: a session is started, or called from a firmware
            handler method.
        AvcTimeoutError: a stopped session did not end in time.
    """
    global _fw_installed
    with _fw_lock:
        _check(_lib.avc_fw_uninstall())
        _fw_installed = None


def set_firmware_trusted_key(key: str | None) -> None:
    """Trusts one Ed25519 public key to sign packages (``avc_fw_set_trusted_key``).

    Args:
        key: the public key in hex (as ``avc keygen`` prints it) or base64;
            None or "" removes every trusted key. Several keys are set with
            ``set_config("fw_trusted_keys", "k1,k2")``.

    Applies to the next session started; pair it with
    ``set_config("fw_require_signature", "true")`` to refuse unsigned
    packages.

    Raises:
        FormatError: not one Ed25519 public key.
    """
    _check(_lib.avc_fw_set_trusted_key(None if key is None else _c_text(key, "key")))


_status_lock = threading.Lock()
_status_cb: object | None = None  # the FW_STATUS_FN libavc holds now
# Callbacks replaced from inside a callback: freed once the dispatcher has
# moved on to its next call.
_status_retired: list[object] = []
_status_thread: int | None = None  # the dispatcher thread, once a callback ran


def set_firmware_status_handler(handler: FirmwareStatusHandler | None) -> None:
    """Sets the callback that receives firmware update statuses (``avc_fw_set_status_handler``).

    The handler is called as ``handler(status)`` with a
    :class:`FirmwareStatus` on every state change and on download progress,
    on libavc's dispatcher thread (the one running status handlers).
    Exceptions it raises are logged on the "avc" logger and otherwise
    ignored. None removes it. Once this returns, the previous handler is not
    called again (called from inside it, the running call finishes first).

    Raises:
        TypeError: handler is not callable.
    """
    global _status_cb
    if handler is not None and not callable(handler):
        raise TypeError(f"firmware status handler must be callable, not {type(handler).__name__}")
    if handler is None:
        cb = _ffi.FW_STATUS_FN(0)  # NULL
    else:

        def call(_ctx: int | None, st: ctypes._Pointer[_ffi.AvcFwStatus]) -> None:
            global _status_thread
            try:
                _status_thread = threading.get_ident()
                if _status_retired:
                    # One call at a time: a callback retired earlier has
                    # returned by now.
                    with _status_lock:
                        _status_retired.clear()
                c = st.contents
                state: FirmwareState | int = c.state
                result: UpdateResult | int = c.result
                try:
                    state = FirmwareState(c.state)
                    result = UpdateResult(c.result)
                except ValueError:
                    pass
                handler(FirmwareStatus(state=state, result=result, bytes=int(c.bytes), total=int(c.total),
                                       http_status=int(c.http_status), version=_text(c.version)))
            except BaseException:  # never let an exception unwind into libavc
                try:
                    _log.exception("firmware status handler %r raised", handler)
                except BaseException:
                    pass

        cb = _ffi.FW_STATUS_FN(call)
    with _status_lock:
        _check(_lib.avc_fw_set_status_handler(cb, None))
        if _status_cb is not None and threading.get_ident() == _status_thread:
            # We may be inside the old callback: keep it alive until the
            # dispatcher's next call.
            _status_retired.append(_status_cb)
        _status_cb = cb if handler is not None else None
