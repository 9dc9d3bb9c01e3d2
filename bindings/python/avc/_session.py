"""Session: a context manager around start_session / stop_session."""

from __future__ import annotations

import threading
import time
from types import TracebackType

from . import _core
from ._enums import Status
from .errors import AvcTimeoutError, DuplicateError

__all__ = ["Session"]


class Session:
    """One LwM2M session: registers on entry, de-registers on exit.

    Here's an example::

        import avc

        with avc.Session(server_uri="coap://127.0.0.1:5683", endpoint="dev1") as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=10)
            ...  # registered
        # de-registered (SESSION_STOPPED seen, or stop_timeout elapsed)

    Keyword arguments are configuration settings, applied with
    :func:`avc.configure` before the session starts; without them the
    ``AVC_*`` environment is used. The session records every status
    reported while it is open (see :attr:`statuses`).

    # Notes

    - There is one session per process (libavc's le_avc API has one): a
      second ``Session`` started while one is open raises DuplicateError.
    - ``stop_timeout`` bounds how long leaving the ``with`` block waits for
      ``SESSION_STOPPED`` (libavc waits at most 10 s for the server).
    """

    def __init__(self, *, stop_timeout: float = 15.0, **config: str | int | None) -> None:
        self._config = config
        self._stop_timeout = stop_timeout
        self._cond = threading.Condition()
        self._statuses: list[Status | int] = []
        self._cursor = 0
        self._handle: _core.StatusHandlerHandle | None = None
        self._started = False

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> Session:
        """Applies the configuration, adds the status handler, starts the session.

        Raises:
            DuplicateError: a session is already started.
            FaultError: the configuration is missing or invalid.
        """
        if self._config:
            _core.configure(**self._config)
        if self._handle is None:
            self._handle = _core.add_status_handler(self._on_status)
        try:
            _core.start_session()
        except BaseException:
            self._remove_handler()
            raise
        self._started = True
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stops the session and waits for ``SESSION_STOPPED``.

        Args:
            timeout: seconds to wait; None means ``stop_timeout``.

        Returns:
            True when ``SESSION_STOPPED`` arrived (or the session had
            already ended by itself), False on timeout.
        """
        if not self._started:
            return True
        self._started = False
        try:
            _core.stop_session()
        except DuplicateError:
            return True  # it had already ended
        try:
            self.wait_for(Status.SESSION_STOPPED, timeout=self._stop_timeout if timeout is None else timeout)
            return True
        except AvcTimeoutError:
            return False

    def close(self) -> None:
        """Stops the session if it is started and removes the status handler."""
        try:
            self.stop()
        finally:
            self._remove_handler()

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- statuses ---------------------------------------------------------------

    @property
    def statuses(self) -> list[Status | int]:
        """Every status reported while the session was open, oldest first."""
        with self._cond:
            return list(self._statuses)

    def wait_for(self, *statuses: Status | int, timeout: float | None = None) -> Status | int:
        """Waits until one of ``statuses`` is reported, and returns it.

        Statuses are consumed in order: each call looks at the statuses
        reported after the one the previous call returned, so
        ``wait_for(SESSION_STARTED)`` after a restart waits for the new
        session rather than returning the old one.

        Args:
            statuses: the statuses to wait for (at least one).
            timeout: seconds; None waits forever.

        Raises:
            AvcTimeoutError: none arrived within ``timeout``.
        """
        if not statuses:
            raise TypeError("wait_for needs at least one status")
        wanted = {int(s) for s in statuses}
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                while self._cursor < len(self._statuses):
                    st = self._statuses[self._cursor]
                    self._cursor += 1
                    if int(st) in wanted:
                        return st
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    names = " or ".join(_name(s) for s in statuses)
                    seen = ", ".join(_name(s) for s in self._statuses) or "nothing"
                    raise AvcTimeoutError(-8, f"no {names} within {timeout:g} s (seen: {seen})")
                # Wake up periodically so that Ctrl-C is seen.
                self._cond.wait(0.2 if remaining is None else min(remaining, 0.2))

    def _on_status(self, status: Status | int, _total: int, _progress: int) -> None:
        with self._cond:
            self._statuses.append(status)
            self._cond.notify_all()

    def _remove_handler(self) -> None:
        h, self._handle = self._handle, None
        if h is not None:
            _core.remove_status_handler(h)


def _name(s: Status | int) -> str:
    return s.name if isinstance(s, Status) else str(s)
