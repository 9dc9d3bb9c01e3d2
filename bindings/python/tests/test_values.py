"""Values the host keeps up to date (set_value) and custom objects from OMA
registry XML (define_objects_xml): misuse without a server, and end to end
against ``avc server`` read through its HTTP API.

The end-to-end tests need the avc CLI ($AVC_CLI or build/avc, from
`make cli`); they fail, not skip, without it.
"""

from __future__ import annotations

import sys
import time
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _support, however the tests are run
from _support import REPO, Server, quiet_avc_logger  # noqa: E402

import avc  # noqa: E402

quiet_avc_logger()

TIMEOUT = 15.0
OBJECT_XML = (REPO / "lwm2m" / "testdata" / "3442-test.xml").read_bytes()


def stop_quietly() -> None:
    try:
        avc.stop_session()
    except avc.DuplicateError:
        pass


class ValueMisuseTest(unittest.TestCase):
    def setUp(self) -> None:
        avc.define_objects_xml(None)

    def tearDown(self) -> None:
        avc.define_objects_xml(None)

    def test_types(self) -> None:
        with self.assertRaises(TypeError):
            avc.set_value(3, "1")  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            avc.set_value("/3/0/9", object())  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            avc.set_value("/3/0/9", float("nan"))
        with self.assertRaises(ValueError):
            avc.set_value("/3/0/9\0", "1")
        with self.assertRaises(TypeError):
            avc.define_objects_xml(42)  # type: ignore[arg-type]

    def test_bad_paths(self) -> None:
        for path in ("", "/", "/3/0", "/3/x/9", "/3/0/9/0/1", "/70000/0/0"):
            with self.subTest(path=path), self.assertRaises(avc.BadParameterError) as cm:
                avc.set_value(path, "1")
            self.assertEqual(cm.exception.result, avc.Result.BAD_PARAMETER)
            self.assertIsInstance(cm.exception, ValueError)

    def test_built_in_values(self) -> None:
        avc.set_value("/3/0/9", 50)  # battery level
        avc.set_value("/3/0/9", "51")
        avc.set_value("/3/0/11/1", 3)  # an error code instance
        avc.set_value("/3/0/11/1", None)  # and its removal
        with self.assertRaises(avc.BadParameterError) as cm:
            avc.set_value("/3/0/9", "fifty")
        self.assertIn("/3/0/9", cm.exception.message)
        with self.assertRaises(avc.BadParameterError):
            avc.set_value("/3/0/9", None)  # a single resource cannot be removed
        with self.assertRaises(avc.BadParameterError):
            avc.set_value("/3/0/4", True)  # Reboot is executable

    def test_bad_xml(self) -> None:
        for xml in ("", "<LWM2M>", "<LWM2M></LWM2M>", "<html/>", b"\xff\xfe"):
            with self.subTest(xml=xml), self.assertRaises(avc.FormatError) as cm:
                avc.define_objects_xml(xml)
            self.assertIn("object definition", cm.exception.message)
        device = OBJECT_XML.replace(b"<ObjectID>3442</ObjectID>", b"<ObjectID>3</ObjectID>")
        with self.assertRaises(avc.BadParameterError):
            avc.define_objects_xml(device)

    def test_custom_object_values(self) -> None:
        with self.assertRaises(avc.BadParameterError):
            avc.set_value("/3442/0/110", "x")  # not defined yet
        avc.define_objects_xml(OBJECT_XML)
        avc.define_objects_xml(OBJECT_XML.decode())  # str works too, and replaces
        avc.set_value("/3442/0/110", "text")
        avc.set_value("/3442/0/120", 42)
        avc.set_value("/3442/0/130", 21.5)
        avc.set_value("/3442/0/140", False)
        avc.set_value("/3442/0/150", b"\x00\x01\x02")
        avc.set_value("/3442/0/170", "3:0")
        avc.set_value("/3442/0/180/2", -7)
        avc.set_value("/3442/0/180/2", None)
        for path, value in (("/3442/0/120", "x"), ("/3442/0/200", 1), ("/3442/0/999", 1), ("/3442/0/110", None)):
            with self.subTest(path=path), self.assertRaises(avc.BadParameterError):
                avc.set_value(path, value)
        avc.define_objects_xml(None)
        with self.assertRaises(avc.BadParameterError):
            avc.set_value("/3442/0/110", "x")


class SendMisuseTest(unittest.TestCase):
    def test_without_a_session(self) -> None:
        with self.assertRaises(avc.NotPermittedError) as cm:
            avc.send(["/3/0/9"])
        self.assertEqual(cm.exception.result, avc.Result.NOT_PERMITTED)
        self.assertIn("session", cm.exception.message)

    def test_bad_arguments(self) -> None:
        with self.assertRaises(TypeError):
            avc.send("/3/0/9")  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            avc.send([9])  # type: ignore[list-item]
        with self.assertRaises(ValueError):
            avc.send(["/3/0/9\0"])
        for paths in ([], ["/3/x/9"]):
            with self.subTest(paths=paths), self.assertRaises(avc.BadParameterError):
                avc.send(paths)


class ValueServerTest(unittest.TestCase):
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(http=True)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def setUp(self) -> None:
        self.ep = "py-values-" + uuid.uuid4().hex[:8]
        avc.configure(server_uri=self.server.uri, endpoint=self.ep, lifetime=300)
        avc.define_objects_xml(OBJECT_XML)

    def tearDown(self) -> None:
        stop_quietly()
        avc.define_objects_xml(None)

    def read(self, path: str, want: object) -> None:
        """Reads path through the server's HTTP API until its value is want."""
        ok, last = self.server.read_until(self.ep, path, want, TIMEOUT)
        if not ok:
            self.fail(f"read {path}: {last!r}, want the value {want!r}")

    def test_define_set_read(self) -> None:
        # Set before the session: remembered and given to it.
        avc.set_value("/3442/0/110", "hello from python")
        avc.set_value("/3/0/9", 55)
        with avc.Session() as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
            self.read("/3442/0/110", "hello from python")
            self.read("/3/0/9", 55)  # the server knows /3's types: an integer
            # Set while the session runs: the server reads the new value.
            avc.set_value("/3442/0/110", "changed")
            self.read("/3442/0/110", "changed")
            avc.set_value("/3442/0/140", True)
            self.read("/3442/0/140", "1")  # unknown to the server: text as it came
            with self.assertRaises(avc.BadParameterError):
                avc.set_value("/3442/0/120", "not a number")
            # The registration lists the instance the values created.
            deadline = time.monotonic() + TIMEOUT
            while True:
                status, body = self.server.api(f"/api/clients/{self.ep}")
                if status == 200 and "</3442/0>" in str(body):
                    break
                if time.monotonic() > deadline:
                    self.fail(f"registration lacks </3442/0>: {body!r}")
                time.sleep(0.05)
        # A new session starts with the values set so far.
        with avc.Session() as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
            self.read("/3442/0/110", "changed")




class SendServerTest(unittest.TestCase):
    def test_send_after_registration(self) -> None:
        with Server() as server:
            avc.configure(server_uri=server.uri, endpoint="py-send-" + uuid.uuid4().hex[:8], lifetime=300)
            avc.set_value("/3/0/9", 42)
            try:
                with avc.Session() as s:
                    s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
                    with self.assertRaises(avc.BadParameterError):
                        avc.send(["/0/0"])  # the Security object is not reported
                    avc.send(["/3/0/9"])
                    self.assertTrue(server.wait_log("msg=send", TIMEOUT), "the server logged no send")
            finally:
                stop_quietly()


if __name__ == "__main__":
    unittest.main()
