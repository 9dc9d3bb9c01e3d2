#!/usr/bin/env python3
"""Register to an LwM2M server with avc's Python binding, stay registered
until SIGINT or SIGTERM, then de-register.

    make lib cli
    build/avc server -coap 127.0.0.1:5683 -http "" &
    AVC_SERVER_URI=coap://127.0.0.1:5683 AVC_ENDPOINT=py-example \
        PYTHONPATH=bindings/python python3 examples/python/register.py

Configuration comes from the AVC_* environment variables (AVC_SERVER_URI is
required). Prints one line per status, e.g. "status: SESSION_STARTED (13)".
Once registered, it reports the battery level (/3/0/9) once with the LwM2M
Send operation and prints "send requested: /3/0/9" (the server's answer is
not a status; libavc logs it). Exits 0 after a clean stop, 1 when the session cannot be started or does
not stop within 15 s.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

try:
    import avc
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
    import avc

STOP_TIMEOUT_S = 15.0
BATTERY_LEVEL = "/3/0/9"


def main() -> int:
    quit_requested = threading.Event()
    stopped = threading.Event()
    registered = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        quit_requested.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def on_status(status: avc.Status | int, _total: int, _progress: int) -> None:
        name = status.name if isinstance(status, avc.Status) else "UNKNOWN"
        print(f"status: {name} ({int(status)})", flush=True)
        if status == avc.Status.SESSION_STARTED:
            registered.set()  # send from the main thread, not libavc's dispatcher
        if status == avc.Status.SESSION_STOPPED:
            stopped.set()

    handle = avc.add_status_handler(on_status)
    try:
        try:
            avc.start_session()
        except avc.AvcError as e:
            print(f"register.py: cannot start the session: {e}", file=sys.stderr)
            return 1

        sent = False
        while not quit_requested.wait(0.1):
            if registered.is_set() and not sent:
                sent = True
                try:
                    avc.send([BATTERY_LEVEL])
                    print(f"send requested: {BATTERY_LEVEL}", flush=True)
                except avc.AvcError as e:
                    print(f"register.py: send {BATTERY_LEVEL}: {e}", file=sys.stderr)

        try:
            avc.stop_session()
        except avc.DuplicateError:
            return 0  # the session had already ended by itself
        if not stopped.wait(STOP_TIMEOUT_S):
            print(f"register.py: no SESSION_STOPPED within {STOP_TIMEOUT_S:g} s", file=sys.stderr)
            return 1
        return 0
    finally:
        avc.remove_status_handler(handle)


if __name__ == "__main__":
    sys.exit(main())
