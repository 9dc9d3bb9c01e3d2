"""The session request handler (le_avc_AddSessionRequestEventHandler): with
one registered, the agent's polling timer asks the application for a
session (ACQUIRE) instead of opening it, and the application opens it.

End to end against ``avc server`` (needs the avc CLI, like test_session).
"""

from __future__ import annotations

import json
import queue
import sys
import tempfile
import time
import unittest
import uuid
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _support, however the tests are run
from _support import Server, quiet_avc_logger  # noqa: E402

import avc  # noqa: E402

quiet_avc_logger()

TIMEOUT = 15.0


def read_state(path: Path) -> dict:
    """The engine's persisted state (the body of its checksummed envelope)."""
    env = json.loads(path.read_text())
    return env["state"]


def write_state(path: Path, state: dict) -> None:
    """Writes state in the engine's envelope: version 1, CRC-32 of the body."""
    body = json.dumps(state, separators=(",", ":"))
    crc = zlib.crc32(body.encode())
    path.write_text('{"v":1,"crc":%d,"state":%s}' % (crc, body))


def wait(cond, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


class SessionRequestTest(unittest.TestCase):
    def test_second_handler_refused(self) -> None:
        h = avc.add_session_request_handler(lambda r: None)
        try:
            with self.assertRaises(avc.DuplicateError):
                avc.add_session_request_handler(lambda r: None)
        finally:
            avc.remove_session_request_handler(h)
            avc.remove_session_request_handler(h)

    def test_polling_timer_asks_for_the_session(self) -> None:
        # The agent may still save its state there while it is replaced.
        with Server() as server, tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:
            ep = "py-" + uuid.uuid4().hex[:8]
            avc.configure(server_uri=server.uri, endpoint=ep, state_dir=d, lifetime=300)
            requests: queue.Queue[avc.SessionRequest] = queue.Queue()
            h = avc.add_session_request_handler(requests.put)
            try:
                avc.set_polling_timer(1)
                path = Path(d) / "agent-state.json"
                self.assertTrue(
                    wait(lambda: path.exists() and read_state(path).get("ctl", {}).get("polling") == 1),
                    "the polling timer was not persisted",
                )
                # As if the device had been off for 58 s of the minute: the
                # agent made anew from the state polls within 2 to 3 s.
                state = read_state(path)
                state["ctl"]["last_poll"] = int(time.time()) - 58
                write_state(path, state)
                avc.configure(lifetime=301)  # a new configuration: a new agent from the state
                self.assertEqual(avc.get_polling_timer(), 1)
                req = requests.get(timeout=TIMEOUT)
                self.assertEqual(req, avc.SessionRequest.ACQUIRE)
                time.sleep(0.5)
                self.assertFalse(avc.is_session_started(), "the agent opened the session itself")
                self.assertNotIn(f"ep={ep}", "\n".join(server.log))
                # The application answers.
                avc.start_session()
                self.assertTrue(wait(avc.is_session_started), "no session after start_session")
                self.assertTrue(server.wait_log(f"ep={ep}", TIMEOUT))
                avc.stop_session()
                self.assertTrue(wait(lambda: not avc.is_session_started()))
            finally:
                avc.remove_session_request_handler(h)
                avc.set_polling_timer(0)
                avc.configure(state_dir="")
                avc.get_polling_timer()  # the agent is made anew, without the directory


if __name__ == "__main__":
    unittest.main()
