"""Exceptions raised by the avc binding.

Every failure of a C call is an :class:`AvcError` carrying the C result code
in ``.result``; common codes have their own subclass so that callers can
catch narrowly (``except avc.DuplicateError``).
"""

from __future__ import annotations

from ._enums import Result, UpdateResult

__all__ = [
    "AvcError",
    "FirmwareDeferred",
    "FirmwareError",
    "FirmwareIntegrityFailure",
    "FirmwareNoMemory",
    "FirmwareNoSpace",
    "FirmwareUnsupportedPackage",
    "AvcOverflowError",
    "AvcTimeoutError",
    "BadParameterError",
    "BusyError",
    "DuplicateError",
    "FaultError",
    "FormatError",
    "NotFoundError",
    "NotPermittedError",
    "OutOfRangeError",
    "UnsupportedError",
    "error_for",
]


class AvcError(Exception):
    """A libavc call failed.

    Attributes:
        result: the C result code, a :class:`Result` (or a plain int for a
            value Result does not know).
        message: libavc's explanation (``avc_last_error()``), possibly "".
    """

    result: Result | int
    message: str

    def __init__(self, result: int, message: str = "") -> None:
        try:
            self.result = Result(result)
            name = "LE_" + self.result.name
        except ValueError:
            self.result = result
            name = str(result)
        self.message = message
        super().__init__(f"{message} ({name})" if message else name)


class NotFoundError(AvcError, LookupError):
    """``NOT_FOUND``: no such item, e.g. an unknown configuration name."""


class NotPermittedError(AvcError):
    """``NOT_PERMITTED``: not allowed now, e.g. polling while polling is off."""


class FaultError(AvcError):
    """``FAULT``: the operation failed, e.g. a session without a server URI."""


class AvcTimeoutError(AvcError, TimeoutError):
    """``TIMEOUT``: nothing happened in time."""


class AvcOverflowError(AvcError):
    """``OVERFLOW``: a value did not fit."""


class FormatError(AvcError, ValueError):
    """``FORMAT_ERROR``: a value has the wrong form."""


class DuplicateError(AvcError):
    """``DUPLICATE``: already in that state (session started or stopped)."""


class BadParameterError(AvcError, ValueError):
    """``BAD_PARAMETER``: an argument is invalid (e.g. a None handler)."""


class BusyError(AvcError):
    """``BUSY``: the resource is busy."""


class UnsupportedError(AvcError):
    """``UNSUPPORTED``: the operation is not supported."""


class OutOfRangeError(AvcError, ValueError):
    """``LE_OUT_OF_RANGE``: a value beyond its limit (a polling or retry timer)."""


_CLASSES: dict[int, type[AvcError]] = {
    Result.OUT_OF_RANGE: OutOfRangeError,
    Result.NOT_FOUND: NotFoundError,
    Result.NOT_PERMITTED: NotPermittedError,
    Result.FAULT: FaultError,
    Result.TIMEOUT: AvcTimeoutError,
    Result.OVERFLOW: AvcOverflowError,
    Result.FORMAT_ERROR: FormatError,
    Result.DUPLICATE: DuplicateError,
    Result.BAD_PARAMETER: BadParameterError,
    Result.BUSY: BusyError,
    Result.UNSUPPORTED: UnsupportedError,
}


class FirmwareError(Exception):
    """Raised by a :class:`avc.FirmwareHandler` method to fail the call.

    libavc gets a negative return code: ``code`` (the negated Update Result
    of the subclasses below), or -1 for FirmwareError itself and for any
    other exception, which means the default result of the call (see
    :class:`avc.FirmwareHandler`). The subclasses mirror Anjay's
    ``ANJAY_FW_UPDATE_ERR_*`` values (avc.h's ``avc_fw_error_t``).

    Attributes:
        code: the C return code.
        result: the Update Result it asks for, or None for the default.
    """

    code: int = -1
    result: UpdateResult | None = None


class FirmwareNoSpace(FirmwareError):
    """``AVC_FW_ERR_NOT_ENOUGH_SPACE`` (-2): Update Result 2."""

    code = -2
    result = UpdateResult.NOT_ENOUGH_SPACE


class FirmwareNoMemory(FirmwareError):
    """``AVC_FW_ERR_OUT_OF_MEMORY`` (-3): Update Result 3."""

    code = -3
    result = UpdateResult.OUT_OF_MEMORY


class FirmwareIntegrityFailure(FirmwareError):
    """``AVC_FW_ERR_INTEGRITY_FAILURE`` (-5): Update Result 5; from
    perform_upgrade the image is discarded."""

    code = -5
    result = UpdateResult.INTEGRITY_FAILURE


class FirmwareUnsupportedPackage(FirmwareError):
    """``AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE`` (-6): Update Result 6; from
    perform_upgrade the image is discarded."""

    code = -6
    result = UpdateResult.UNSUPPORTED_PACKAGE_TYPE


class FirmwareDeferred(FirmwareError):
    """``AVC_FW_ERR_DEFERRED`` (-11), from perform_upgrade: keep the image
    for a later Update (Update Result 11)."""

    code = -11
    result = UpdateResult.DEFERRED


def error_for(result: int, message: str = "") -> AvcError:
    """Returns the exception for a failed C result code."""
    return _CLASSES.get(int(result), AvcError)(result, message)
