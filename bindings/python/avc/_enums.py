"""Enumerations with the C values of legato.h, le_avc_common.h and avc.h."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["FirmwareState", "LogLevel", "Result", "Status", "UpdateResult"]


class Result(IntEnum):
    """``le_result_t`` (legato.h), members named without the ``LE_`` prefix.

    avc.h's ``avc_result_t`` codes are a subset with the same values
    (``AVC_ERR_TIMEOUT`` is ``Result.TIMEOUT``), so one enum covers both.
    """

    OK = 0
    NOT_FOUND = -1
    NOT_POSSIBLE = -2
    OUT_OF_RANGE = -3
    NO_MEMORY = -4
    NOT_PERMITTED = -5
    FAULT = -6
    COMM_ERROR = -7
    TIMEOUT = -8
    OVERFLOW = -9
    UNDERFLOW = -10
    WOULD_BLOCK = -11
    DEADLOCK = -12
    FORMAT_ERROR = -13
    DUPLICATE = -14
    BAD_PARAMETER = -15
    CLOSED = -16
    BUSY = -17
    UNSUPPORTED = -18
    IO_ERROR = -19
    NOT_IMPLEMENTED = -20
    UNAVAILABLE = -21
    TERMINATED = -22
    IN_PROGRESS = -23
    SUSPENDED = -24


class Status(IntEnum):
    """``le_avc_Status_t``, members named without the ``LE_AVC_`` prefix."""

    NO_UPDATE = 0
    DOWNLOAD_PENDING = 1
    DOWNLOAD_IN_PROGRESS = 2
    DOWNLOAD_COMPLETE = 3
    DOWNLOAD_FAILED = 4
    INSTALL_PENDING = 5
    INSTALL_IN_PROGRESS = 6
    INSTALL_COMPLETE = 7
    INSTALL_FAILED = 8
    UNINSTALL_PENDING = 9
    UNINSTALL_IN_PROGRESS = 10
    UNINSTALL_COMPLETE = 11
    UNINSTALL_FAILED = 12
    SESSION_STARTED = 13
    SESSION_BS_STARTED = 14
    SESSION_STOPPED = 15
    SESSION_FAILED = 16
    REBOOT_PENDING = 17
    CONNECTION_PENDING = 18
    AUTH_STARTED = 19
    AUTH_FAILED = 20
    CERTIFICATION_OK = 21
    CERTIFICATION_KO = 22
    DOWNLOAD_TIMEOUT = 23
    DOWNLOAD_ABORTED = 24


class LogLevel(IntEnum):
    """``avc_log_level_t`` (avc.h), members named without the ``AVC_LOG_`` prefix."""

    DEBUG = -4
    INFO = 0
    WARN = 4
    ERROR = 8


class FirmwareState(IntEnum):
    """``avc_fw_state_t``: State of firmware update, /5/0/3 (LwM2M Core TS 1.1 §E.6).

    Members are named without the ``AVC_FW_STATE_`` prefix.
    """

    IDLE = 0
    DOWNLOADING = 1
    DOWNLOADED = 2
    UPDATING = 3


class UpdateResult(IntEnum):
    """``avc_fw_result_t``: Update Result, /5/0/5 (object 5 version 1.1).

    Members are named without the ``AVC_FW_RESULT_`` prefix; the values are
    Anjay's ``anjay_fw_update_result_t``.
    """

    INITIAL = 0
    SUCCESS = 1
    NOT_ENOUGH_SPACE = 2
    OUT_OF_MEMORY = 3
    CONNECTION_LOST = 4
    INTEGRITY_FAILURE = 5
    UNSUPPORTED_PACKAGE_TYPE = 6
    INVALID_URI = 7
    FAILED = 8
    UNSUPPORTED_PROTOCOL = 9
    UPDATE_CANCELLED = 10
    DEFERRED = 11


class UserAgreement(IntEnum):
    """``le_avc_UserAgreement_t``, members named without the ``LE_AVC_USER_AGREEMENT_`` prefix."""

    CONNECTION = 0
    DOWNLOAD = 1
    INSTALL = 2
    UNINSTALL = 3
    REBOOT = 4


class UpdateType(IntEnum):
    """``le_avc_UpdateType_t``, members named without the ``LE_AVC_`` prefix."""

    UNKNOWN_UPDATE = 0
    FIRMWARE_UPDATE = 1
    FRAMEWORK_UPDATE = 2
    APPLICATION_UPDATE = 3
    FILE_TRANSFER = 4


class ErrorCode(IntEnum):
    """``le_avc_ErrorCode_t``, members named without the ``LE_AVC_ERR_`` prefix."""

    NONE = 0
    BAD_PACKAGE = 1
    INTERNAL = 2
    SECURITY_FAILURE = 3
    RAM = 4
    NETWORK = 5
    FLASH = 6
    PKG_TOO_BIG = 7


class SessionType(IntEnum):
    """``le_avc_SessionType_t``, members named without the ``LE_AVC_`` prefix."""

    BOOTSTRAP_SESSION = 0
    DM_SESSION = 1
    SESSION_INVALID = 2


class CredentialStatus(IntEnum):
    """``le_avc_CredentialStatus_t``, members named without the ``LE_AVC_`` prefix."""

    NO_CREDENTIAL_PROVISIONED = 1
    BS_CREDENTIAL_PROVISIONED = 2
    DM_CREDENTIAL_PROVISIONED = 3
