"""End to end: register to avc's embedded LwM2M server (``avc server``).

Needs the avc CLI ($AVC_CLI or build/avc, from `make cli`); the tests fail,
not skip, without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _support, however the tests are run
from _support import BINDING, REPO, Server, quiet_avc_logger  # noqa: E402

import avc  # noqa: E402

quiet_avc_logger()

TIMEOUT = 15.0


def endpoint() -> str:
    return "py-" + uuid.uuid4().hex[:8]


def stop_quietly() -> None:
    try:
        avc.stop_session()
    except avc.DuplicateError:
        pass


class SessionTest(unittest.TestCase):
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def setUp(self) -> None:
        self.ep = endpoint()
        avc.configure(server_uri=self.server.uri, endpoint=self.ep, lifetime=300)

    def tearDown(self) -> None:
        stop_quietly()
        avc.enable_polling(False)

    def test_session_registers_and_deregisters(self) -> None:
        with avc.Session() as s:
            self.assertEqual(s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT), avc.Status.SESSION_STARTED)
            self.assertTrue(self.server.wait_log(f"ep={self.ep}", TIMEOUT), "server saw no registration")
        self.assertEqual(s.statuses, [avc.Status.SESSION_STARTED, avc.Status.SESSION_STOPPED])
        self.assertTrue(self.server.wait_log("deregistered", TIMEOUT))

    def test_read_lwm2m_resource(self) -> None:
        with avc.Session() as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
            self.assertEqual(avc.read_lwm2m_resource(1, 0, 1), "300")  # the lifetime
            self.assertEqual(avc.read_lwm2m_resource(3, 0, 7, 0), "5000")
            with self.assertRaises(avc.FaultError):
                avc.read_lwm2m_resource(0, 0, 5)  # the Security object stays closed

    def test_session_config_keywords(self) -> None:
        ep = endpoint()
        with avc.Session(server_uri=self.server.uri, endpoint=ep) as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
        self.assertEqual(avc.get_config("endpoint"), ep)

    def test_restart(self) -> None:
        for _ in range(3):
            with avc.Session() as s:
                s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
            self.assertEqual(s.statuses[-1], avc.Status.SESSION_STOPPED)

    def test_stop_right_after_start_then_start_again(self) -> None:
        got: list[avc.Status | int] = []
        cond = threading.Condition()

        def on_status(status: avc.Status | int, total: int, progress: int) -> None:
            self.assertEqual((total, progress), (-1, -1))
            with cond:
                got.append(status)
                cond.notify_all()

        h = avc.add_status_handler(on_status)
        try:
            avc.start_session()
            avc.stop_session()
            avc.start_session()  # runs once the first session has ended
            started, stopped = avc.Status.SESSION_STARTED, avc.Status.SESSION_STOPPED
            with cond:
                self.assertTrue(cond.wait_for(lambda: stopped in got and got[-1] == started, TIMEOUT), got)
            # The first session may or may not have registered before it stopped.
            self.assertIn(got, ([stopped, started], [started, stopped, started]))
            avc.stop_session()
            with cond:
                self.assertTrue(cond.wait_for(lambda: got[-1] == avc.Status.SESSION_STOPPED, TIMEOUT), got)
        finally:
            h.remove()

    def test_poll_only(self) -> None:
        avc.enable_polling(True)
        avc.start_session()
        ev = self._poll_until(avc.Status.SESSION_STARTED)
        self.assertTrue(ev.message.startswith("/rd/"), ev.message)
        self.assertEqual((ev.total_num_bytes, ev.progress, ev.dropped), (-1, -1, 0))
        avc.stop_session()
        self._poll_until(avc.Status.SESSION_STOPPED)

    def _poll_until(self, status: avc.Status) -> avc.Event:
        deadline = time.monotonic() + TIMEOUT
        seen = []
        while time.monotonic() < deadline:
            ev = avc.poll_event(deadline - time.monotonic())
            if ev is None:
                break
            seen.append(ev)
            if ev.status == status:
                return ev
        self.fail(f"no {status.name} polled (seen {seen})")

    def test_handlers_run_on_one_thread_and_every_handler_gets_every_status(self) -> None:
        calls: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
        done = threading.Event()

        def make(key: str) -> avc.StatusHandler:
            def handler(status: avc.Status | int, total: int, progress: int) -> None:
                calls[key].append((int(status), threading.get_ident()))
                if key == "b" and status == avc.Status.SESSION_STOPPED:
                    done.set()

            return handler

        ha, hb = avc.add_status_handler(make("a")), avc.add_status_handler(make("b"))
        try:
            with avc.Session() as s:
                s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
            self.assertTrue(done.wait(TIMEOUT))
        finally:
            ha.remove()
            hb.remove()
        self.assertEqual([c[0] for c in calls["a"]], [13, 15])
        self.assertEqual([c[0] for c in calls["b"]], [13, 15])
        threads = {c[1] for c in calls["a"] + calls["b"]}
        self.assertEqual(len(threads), 1)
        self.assertNotIn(threading.get_ident(), threads)

    def test_handler_removing_itself(self) -> None:
        calls: list[int] = []
        box: list[avc.StatusHandlerHandle] = []

        def once(status: avc.Status | int, total: int, progress: int) -> None:
            calls.append(int(status))
            box[0].remove()  # from inside the handler: must not deadlock

        box.append(avc.add_status_handler(once))
        with avc.Session() as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
        self.assertEqual(calls, [13])
        self.assertTrue(box[0].removed)

    def test_remove_waits_for_a_running_handler(self) -> None:
        entered, release = threading.Event(), threading.Event()
        finished: list[bool] = []

        def slow(status: avc.Status | int, total: int, progress: int) -> None:
            if status == avc.Status.SESSION_STARTED:
                entered.set()
                release.wait(TIMEOUT)
                finished.append(True)

        h = avc.add_status_handler(slow)
        avc.start_session()
        self.assertTrue(entered.wait(TIMEOUT))
        threading.Timer(0.2, release.set).start()
        h.remove()  # returns only once slow() has returned
        self.assertEqual(finished, [True])


class ExampleTest(unittest.TestCase):
    """examples/python/register.py prints its statuses and stops on signals."""

    def run_example(self, sig: int) -> None:
        with Server() as server:
            env = dict(os.environ, AVC_SERVER_URI=server.uri, AVC_ENDPOINT=endpoint(), PYTHONPATH=str(BINDING))
            p = subprocess.Popen(
                [sys.executable, str(REPO / "examples" / "python" / "register.py")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                assert p.stdout is not None
                first = p.stdout.readline()
                self.assertEqual(first.strip(), "status: SESSION_STARTED (13)")
                p.send_signal(sig)
                out, err = p.communicate(timeout=TIMEOUT)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            # The example may have reported its battery level (Send) before
            # the signal arrived; that line is not a status.
            lines = [line for line in out.splitlines() if not line.startswith("send requested: ")]
            self.assertEqual(lines, ["status: SESSION_STOPPED (15)"], err)
            self.assertEqual(p.returncode, 0, err)

    def test_sigint(self) -> None:
        self.run_example(signal.SIGINT)

    def test_sigterm(self) -> None:
        self.run_example(signal.SIGTERM)


if __name__ == "__main__":
    unittest.main()
