#!/usr/bin/env python3
"""An AirVantage-style control app with avc's Python binding: it enables the
user agreements (so that the agent asks before it downloads, installs,
uninstalls or reboots), accepts each request from its status handler, and
stops on SIGINT or SIGTERM.

    make lib cli
    build/avc server -coap 127.0.0.1:5683 -http 127.0.0.1:8080 &
    AVC_SERVER_URI=coap://127.0.0.1:5683 AVC_ENDPOINT=py-control \
        PYTHONPATH=bindings/python python3 examples/python/avc_control.py

Start a firmware update from the server's HTTP API to see the requests
arrive. A real control app would defer (avc.defer_install(minutes)) while
busy, or hold ``with avc.block_install():`` around critical work.
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

ACCEPT = {
    avc.Status.DOWNLOAD_PENDING: avc.accept_download,
    avc.Status.INSTALL_PENDING: avc.accept_install,
    avc.Status.UNINSTALL_PENDING: avc.accept_uninstall,
    avc.Status.REBOOT_PENDING: avc.accept_reboot,
}


def on_status(status: avc.Status, total_num_bytes: int, progress: int) -> None:
    """Runs on libavc's dispatcher thread."""
    print(f"status: {status.name} ({int(status)}) bytes={total_num_bytes} progress={progress}", flush=True)
    accept = ACCEPT.get(status)
    if accept is not None:
        kind = avc.pending_update_type()
        print(f"accepting {accept.__name__.removeprefix('accept_')} ({kind.name if kind else 'unknown'})", flush=True)
        try:
            accept()
        except avc.AvcError as e:
            print(f"failed to accept: {e} ({avc.result_text(e.result)})", flush=True)
    elif status in (avc.Status.DOWNLOAD_FAILED, avc.Status.INSTALL_FAILED, avc.Status.UNINSTALL_FAILED):
        print(f"failed: {avc.error_code().name}", flush=True)


def main() -> int:
    quit_requested = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        quit_requested.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for what in (avc.UserAgreement.DOWNLOAD, avc.UserAgreement.INSTALL,
                 avc.UserAgreement.UNINSTALL, avc.UserAgreement.REBOOT):
        avc.set_user_agreement(what, True)
    handler = avc.add_status_handler(on_status)
    comm = avc.add_comm_info_handler(lambda code, text: print(f"comm info 0x{code:02x}: {text}", flush=True))
    try:
        avc.start_session()
    except avc.AvcError as e:
        print(f"cannot start the session: {e}", file=sys.stderr)
        return 1
    try:
        while not quit_requested.wait(0.2):
            pass
    finally:
        try:
            avc.stop_session()
        except avc.DuplicateError:
            pass
        avc.remove_comm_info_handler(comm)
        avc.remove_status_handler(handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
