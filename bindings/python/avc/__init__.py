"""avc: Python binding for libavc, avc's LwM2M device agent.

Here's an example::

    import avc

    with avc.Session(server_uri="coap://127.0.0.1:5683", endpoint="dev1") as s:
        s.wait_for(avc.Status.SESSION_STARTED, timeout=10)
        print("registered")

The binding is a thin layer over the C library (Legato's le_avc API plus
avc.h), loaded with ctypes; see ``avc._ffi`` for how libavc is found
(``AVC_LIBRARY``). Configuration uses the ``AVC_*`` names (or their
snake_case forms: ``server_uri``), from the environment or
:func:`configure`.

# Notes

- Status handlers run on libavc's dispatcher thread, not the caller's.
  Exceptions they raise are logged on the "avc" logger, never propagated.
- libavc's own log lines go to ``logging.getLogger("avc")``.
- Firmware update (Object 5): subclass :class:`FirmwareHandler` for the
  device's storage and :func:`install_firmware_handler` before the session
  starts; :func:`set_firmware_status_handler` reports progress.
- Custom objects: declare them with :func:`define_objects` (field by
  field: :class:`ObjectDef`, :class:`ResourceDef`) or
  :func:`define_objects_xml` (OMA registry XML); :func:`set_object_handler`
  hears the server's writes and executes on them.
- Do not fork after importing (use multiprocessing's "spawn" start method):
  the Go runtime inside libavc does not survive fork.
"""

from __future__ import annotations

from ._core import (
    Event,
    StatusHandler,
    StatusHandlerHandle,
    add_status_handler,
    configure,
    define_objects_xml,
    enable_polling,
    get_config,
    last_error,
    poll_event,
    remove_status_handler,
    result_text,
    send,
    set_config,
    set_value,
    start_session,
    stop_session,
    version,
)
from ._objects import (
    ObjectDef,
    ObjectHandler,
    Operations,
    ResourceDef,
    ResourceType,
    define_objects,
    set_object_handler,
)
from . import _control
from ._control import (
    HTTP_STATUS_INVALID,
    NUM_RETRY_TIMERS,
    BlockHandle,
    CommInfoHandle,
    SessionRequest,
    SessionRequestHandle,
    accept_download,
    accept_install,
    accept_reboot,
    accept_uninstall,
    add_comm_info_handler,
    add_session_request_handler,
    block_install,
    check_route,
    credential_status,
    defer_connect,
    defer_download,
    defer_install,
    defer_reboot,
    defer_uninstall,
    error_code,
    get_apn_config,
    get_polling_timer,
    get_retry_timers,
    get_user_agreement,
    http_status,
    is_session_started,
    pending_update_type,
    read_lwm2m_resource,
    remove_comm_info_handler,
    remove_session_request_handler,
    session_type,
    set_apn_config,
    set_polling_timer,
    set_retry_timers,
    set_user_agreement,
)
from ._enums import (
    CredentialStatus,
    ErrorCode,
    FirmwareState,
    LogLevel,
    Result,
    SessionType,
    Status,
    UpdateResult,
    UpdateType,
    UserAgreement,
)
from ._ffi import LibraryNotFoundError, library_path
from ._firmware import (
    CoapTxParams,
    FirmwareHandler,
    FirmwarePackage,
    FirmwareSecurity,
    FirmwareStatus,
    FirmwareStatusHandler,
    install_firmware_handler,
    set_firmware_status_handler,
    set_firmware_trusted_key,
    uninstall_firmware_handler,
)
from ._session import Session
from .errors import (
    AvcError,
    AvcOverflowError,
    AvcTimeoutError,
    BadParameterError,
    BusyError,
    DuplicateError,
    FaultError,
    FirmwareDeferred,
    FirmwareError,
    FirmwareIntegrityFailure,
    FirmwareNoMemory,
    FirmwareNoSpace,
    FirmwareUnsupportedPackage,
    FormatError,
    NotFoundError,
    NotPermittedError,
    OutOfRangeError,
    UnsupportedError,
)

__all__ = [
    *_control.__all__,
    "CredentialStatus",
    "ErrorCode",
    "SessionType",
    "UpdateType",
    "UserAgreement",
    "OutOfRangeError",
    "AvcError",
    "AvcOverflowError",
    "AvcTimeoutError",
    "BadParameterError",
    "BusyError",
    "CoapTxParams",
    "DuplicateError",
    "Event",
    "FaultError",
    "FirmwareDeferred",
    "FirmwareError",
    "FirmwareHandler",
    "FirmwareIntegrityFailure",
    "FirmwareNoMemory",
    "FirmwareNoSpace",
    "FirmwarePackage",
    "FirmwareSecurity",
    "FirmwareState",
    "FirmwareStatus",
    "FirmwareStatusHandler",
    "FirmwareUnsupportedPackage",
    "FormatError",
    "LibraryNotFoundError",
    "LogLevel",
    "NotFoundError",
    "NotPermittedError",
    "ObjectDef",
    "ObjectHandler",
    "Operations",
    "ResourceDef",
    "ResourceType",
    "Result",
    "Session",
    "Status",
    "StatusHandler",
    "StatusHandlerHandle",
    "UnsupportedError",
    "UpdateResult",
    "add_status_handler",
    "configure",
    "define_objects",
    "define_objects_xml",
    "enable_polling",
    "get_config",
    "install_firmware_handler",
    "last_error",
    "library_path",
    "poll_event",
    "remove_status_handler",
    "result_text",
    "send",
    "set_config",
    "set_firmware_status_handler",
    "set_firmware_trusted_key",
    "set_object_handler",
    "set_value",
    "start_session",
    "stop_session",
    "uninstall_firmware_handler",
    "version",
]
