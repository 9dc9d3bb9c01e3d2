"""API misuse never crashes and maps to the documented errors (B59/B60)."""

from __future__ import annotations

import sys
import threading
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _support, however the tests are run
from _support import quiet_avc_logger  # noqa: E402

import avc  # noqa: E402

quiet_avc_logger()

# Nothing listens on the discard port: sessions start and stop without a server.
NO_SERVER = "coap://127.0.0.1:9"


def stop_quietly() -> None:
    try:
        avc.stop_session()
    except avc.DuplicateError:
        pass


class HandlerMisuseTest(unittest.TestCase):
    def test_none_handler_is_refused(self) -> None:
        with self.assertRaises(avc.BadParameterError) as cm:
            avc.add_status_handler(None)  # type: ignore[arg-type]
        self.assertEqual(cm.exception.result, avc.Result.BAD_PARAMETER)
        self.assertIsInstance(cm.exception, avc.AvcError)
        self.assertIn("NULL", str(cm.exception))

    def test_non_callable_handler_is_refused(self) -> None:
        with self.assertRaises(TypeError):
            avc.add_status_handler(42)  # type: ignore[arg-type]

    def test_remove_twice_does_not_crash(self) -> None:
        h = avc.add_status_handler(lambda *a: None)
        self.assertFalse(h.removed)
        avc.remove_status_handler(h)
        self.assertTrue(h.removed)
        with self.assertLogs("avc", "WARNING") as logs:
            avc.remove_status_handler(h)
        self.assertIn("unknown status handler", "\n".join(logs.output))
        h.remove()

    def test_remove_wrong_type(self) -> None:
        with self.assertRaises(TypeError):
            avc.remove_status_handler("nope")  # type: ignore[arg-type]


class SessionMisuseTest(unittest.TestCase):
    def tearDown(self) -> None:
        stop_quietly()

    def test_start_without_server_uri_is_fault(self) -> None:
        avc.set_config("AVC_SERVER_URI", "")
        with self.assertRaises(avc.FaultError) as cm:
            avc.start_session()
        self.assertEqual(cm.exception.result, avc.Result.FAULT)
        self.assertIn("AVC_SERVER_URI", cm.exception.message)

    def test_start_with_bad_uri_is_fault(self) -> None:
        avc.set_config("server_uri", "http://example.com")
        with self.assertRaises(avc.FaultError):
            avc.start_session()

    def test_stop_when_not_started_is_duplicate(self) -> None:
        stop_quietly()
        with self.assertRaises(avc.DuplicateError) as cm:
            avc.stop_session()
        self.assertEqual(cm.exception.result, avc.Result.DUPLICATE)

    def test_start_twice_is_duplicate(self) -> None:
        avc.set_config("server_uri", NO_SERVER)
        avc.start_session()
        with self.assertRaises(avc.DuplicateError):
            avc.start_session()

    def test_session_start_failure_removes_its_handler(self) -> None:
        avc.set_config("server_uri", "")
        s = avc.Session()
        with self.assertRaises(avc.FaultError):
            s.start()
        self.assertIsNone(s._handle)

    def test_handler_exception_is_logged_not_raised(self) -> None:
        avc.set_config("server_uri", NO_SERVER)
        called = threading.Event()

        def bad(status: avc.Status | int, total: int, progress: int) -> None:
            called.set()
            raise RuntimeError("boom")

        h = avc.add_status_handler(bad)
        try:
            with self.assertLogs("avc", "ERROR") as logs:
                avc.start_session()
                avc.stop_session()  # SESSION_STOPPED follows at once: nothing to de-register
                self.assertTrue(called.wait(10))
                # the log record is written right after the handler returns
                for _ in range(100):
                    if any("boom" in o for o in logs.output):
                        break
                    threading.Event().wait(0.01)
            self.assertTrue(any("boom" in o for o in logs.output), logs.output)
        finally:
            h.remove()


class ConfigMisuseTest(unittest.TestCase):
    def test_unknown_name(self) -> None:
        with self.assertRaises(avc.NotFoundError):
            avc.set_config("no_such_thing", "x")
        with self.assertRaises(avc.NotFoundError):
            avc.get_config("no_such_thing")

    def test_bad_value(self) -> None:
        with self.assertRaises(avc.FormatError):
            avc.set_config("lifetime", "ten")
        with self.assertRaises(avc.FormatError):
            avc.set_config("AVC_LOG_LEVEL", "loud")
        with self.assertRaises(TypeError):
            avc.set_config("lifetime", 1.5)  # type: ignore[arg-type]

    def test_round_trip_and_default(self) -> None:
        avc.configure(lifetime=60, endpoint="py-misuse")
        self.assertEqual(avc.get_config("AVC_LIFETIME"), "60")
        self.assertEqual(avc.get_config("endpoint"), "py-misuse")
        avc.set_config("lifetime", None)
        self.assertEqual(avc.get_config("lifetime"), "86400")

    def test_psk_key_is_never_returned(self) -> None:
        avc.set_config("psk_key", "00112233445566778899aabbccddeeff")
        self.assertEqual(avc.get_config("psk_key"), "(set)")
        avc.set_config("psk_key", "")
        self.assertEqual(avc.get_config("psk_key"), "")

    def test_long_value(self) -> None:
        uri = "coap://" + "h" * 2000 + ":5683"
        avc.set_config("bootstrap_uri", uri)
        self.assertEqual(avc.get_config("bootstrap_uri"), uri)
        avc.set_config("bootstrap_uri", None)


class PollMisuseTest(unittest.TestCase):
    def tearDown(self) -> None:
        avc.enable_polling(False)

    def test_poll_while_off(self) -> None:
        avc.enable_polling(False)
        with self.assertRaises(avc.NotPermittedError):
            avc.poll_event(0)

    def test_poll_empty(self) -> None:
        avc.enable_polling(True)
        self.assertIsNone(avc.poll_event(0))
        self.assertIsNone(avc.poll_event(0.05))

    def test_disable_wakes_a_waiting_poller(self) -> None:
        avc.enable_polling(True)
        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                avc.poll_event(None)
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=waiter)
        t.start()
        threading.Event().wait(0.1)
        avc.enable_polling(False)
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], avc.NotPermittedError)


class MiscTest(unittest.TestCase):
    def test_version(self) -> None:
        self.assertRegex(avc.version(), r"^\d+\.\d+\.\d+")

    def test_last_error_is_per_thread(self) -> None:
        with self.assertRaises(avc.NotFoundError):
            avc.set_config("no_such_thing", "x")
        seen: list[str] = []
        t = threading.Thread(target=lambda: seen.append(avc.last_error()))
        t.start()
        t.join()
        self.assertEqual(seen, [""])
        self.assertIn("AVC_NO_SUCH_THING", avc.last_error())


if __name__ == "__main__":
    unittest.main()
