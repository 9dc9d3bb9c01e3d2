"""Custom objects declared field by field (define_objects) and the object
handler (set_object_handler): the definition rules without a server, then
end to end against ``avc server``: it reads what the host set, writes
(the handler gets the path and value) and executes with arguments (the
handler gets them).

The end-to-end test needs the avc CLI ($AVC_CLI or build/avc, from `make
cli`); it fails, not skips, without it.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import unittest
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _support, however the tests are run
from _support import REPO, Server, enum_members, parse_header, quiet_avc_logger  # noqa: E402

import avc  # noqa: E402
from avc import ObjectDef, Operations, ResourceDef, ResourceType  # noqa: E402

quiet_avc_logger()

TIMEOUT = 15.0

OBJECT = ObjectDef(
    id=3460,
    name="python test object",
    version="1.1",
    resources=[
        ResourceDef(1, "Label", ResourceType.STRING, Operations.RW, mandatory=True),
        ResourceDef(2, "Level", ResourceType.INTEGER, Operations.READ | Operations.WRITE),
        ResourceDef(3, "Ready", ResourceType.BOOLEAN, Operations.READ),
        ResourceDef(4, "Switch", ResourceType.NONE, Operations.EXECUTE),
        ResourceDef(5, "Samples", ResourceType.FLOAT, Operations.RW, multiple=True),
    ],
)


def with_resource(i: int, **change: object) -> ObjectDef:
    res = list(OBJECT.resources)
    r = res[i]
    res[i] = ResourceDef(**{**r.__dict__, **change})  # type: ignore[arg-type]
    return ObjectDef(OBJECT.id, OBJECT.name, OBJECT.version, resources=res)


class DefineObjectsTest(unittest.TestCase):
    def setUp(self) -> None:
        avc.define_objects(None)

    def tearDown(self) -> None:
        avc.define_objects(None)

    def test_define_and_set(self) -> None:
        with self.assertRaises(avc.BadParameterError):
            avc.set_value("/3460/0/1", "x")  # not defined yet
        avc.define_objects([OBJECT, ObjectDef(3461)])
        avc.define_objects([OBJECT])  # replaces
        avc.set_value("/3460/0/1", "text")
        avc.set_value("/3460/0/2", 7)
        avc.set_value("/3460/0/5/0", 1.5)
        for path, value in (("/3460/0/2", "x"), ("/3460/0/4", 1), ("/3460/0/9", 1), ("/3460/0/1", None)):
            with self.subTest(path=path), self.assertRaises(avc.BadParameterError):
                avc.set_value(path, value)
        avc.define_objects(None)  # removes them all
        with self.assertRaises(avc.BadParameterError):
            avc.set_value("/3460/0/1", "x")
        # XML and field-by-field definitions share one set of definitions.
        avc.define_objects([OBJECT])
        avc.define_objects_xml(None)
        with self.assertRaises(avc.BadParameterError):
            avc.set_value("/3460/0/1", "x")

    def test_rules(self) -> None:
        cases = [
            ("unknown type", with_resource(1, type=10), avc.FormatError),
            ("unknown operation bit", with_resource(1, operations=8), avc.FormatError),
            ("read and execute", with_resource(1, operations=Operations.READ | Operations.EXECUTE), avc.FormatError),
            ("executable with a type", with_resource(3, type=ResourceType.STRING), avc.FormatError),
            ("readable without a type", with_resource(0, type=ResourceType.NONE), avc.FormatError),
            ("resource twice", with_resource(0, id=2), avc.FormatError),
            ("resource ID 65535", with_resource(0, id=65535), avc.FormatError),
            ("object ID 65535", ObjectDef(65535), avc.FormatError),
            ("bad version", ObjectDef(3460, version="1.0>;x"), avc.FormatError),
            ("built-in object", ObjectDef(3), avc.BadParameterError),
        ]
        for name, obj, exc in cases:
            with self.subTest(name), self.assertRaises(exc):
                avc.define_objects([obj])
        with self.assertRaises(avc.BadParameterError):
            avc.define_objects([])
        with self.assertRaises(avc.BadParameterError):
            avc.set_value("/3460/0/1", "x")  # nothing was defined

    def test_enums_match_avc_h(self) -> None:
        header = REPO / "include" / "avc.h"
        want = enum_members(header, "avc_resource_type_t")
        self.assertEqual({f"AVC_TYPE_{t.name}": int(t) for t in ResourceType}, want)
        defines = parse_header(header)[1]
        for op in (Operations.READ, Operations.WRITE, Operations.EXECUTE, Operations.READ_CB):
            self.assertEqual(int(defines[f"AVC_OP_{op.name}"].rstrip("uU"), 0), int(op))

    def test_types(self) -> None:
        for bad, exc in (
            ("3460", TypeError),
            ([3460], TypeError),
            ([ObjectDef(70000)], ValueError),
            ([ObjectDef(-1)], ValueError),
            ([ObjectDef(3460, name="a\0b")], ValueError),
            ([ObjectDef(3460, version=None)], TypeError),  # type: ignore[arg-type]
            ([ObjectDef(3460, resources=[ResourceDef(True)])], TypeError),
            ([ObjectDef(3460, resources=[1])], TypeError),  # type: ignore[list-item]
        ):
            with self.subTest(bad=bad), self.assertRaises(exc):
                avc.define_objects(bad)  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            avc.set_object_handler(42)


class Recorder:
    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[str, str, str | None, int]] = queue.Queue()
        self.set_rc: list[object] = []

    def write(self, path: str, value: str | None) -> None:
        if path == "/3460/0/2":
            # No libavc lock is held: the handler may set a value.
            try:
                avc.set_value("/3460/0/3", value == "42")
                self.set_rc.append("ok")
            except avc.AvcError as e:
                self.set_rc.append(e)
        self.calls.put(("write", path, value, threading.get_ident()))

    def execute(self, path: str, args: str) -> None:
        self.calls.put(("execute", path, args, threading.get_ident()))

    def next(self) -> tuple[str, str, str | None, int]:
        return self.calls.get(timeout=TIMEOUT)


class ObjectServerTest(unittest.TestCase):
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(http=True)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def setUp(self) -> None:
        self.ep = "py-objects-" + uuid.uuid4().hex[:8]
        avc.configure(server_uri=self.server.uri, endpoint=self.ep, lifetime=300)
        avc.define_objects([OBJECT])

    def tearDown(self) -> None:
        try:
            avc.stop_session()
        except avc.DuplicateError:
            pass
        avc.set_object_handler(None)
        avc.define_objects(None)

    def read(self, path: str, want: object) -> None:
        """Reads path through the server's HTTP API until its value is want."""
        ok, last = self.server.read_until(self.ep, path, want, TIMEOUT)
        if not ok:
            self.fail(f"read {path}: {last!r}, want the value {want!r}")

    def write(self, path: str, value: str) -> object:
        status, body = self.server.call("PUT", f"/api/clients/{self.ep}/write{path}", {"value": value, "format": "text"})
        self.assertEqual(status, 200, body)
        return body

    def execute(self, path: str, args: str) -> None:
        req = urllib.request.Request(
            f"http://{self.server.http}/api/clients/{self.ep}/execute{path}", data=args.encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            self.assertEqual(r.status, 200)
            self.assertIn(b"2.04", r.read())

    def test_read_write_execute(self) -> None:
        rec = Recorder()
        avc.set_object_handler(rec)
        status_threads: set[int] = set()
        h = avc.add_status_handler(lambda *_: status_threads.add(threading.get_ident()))
        try:
            avc.set_value("/3460/0/1", "set by python")
            with avc.Session() as s:
                s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
                self.read("/3460/0/1", "set by python")

                self.write("/3460/0/2", "42")
                self.assertEqual(rec.next()[:3], ("write", "/3460/0/2", "42"))
                self.assertEqual(rec.set_rc, ["ok"])
                self.read("/3460/0/3", "1")  # what the handler set
                self.read("/3460/0/2", "42")  # the engine keeps the written value

                self.write("/3460/0/1", "from the server")
                self.assertEqual(rec.next()[:3], ("write", "/3460/0/1", "from the server"))

                self.execute("/3460/0/4", "0='on',1")
                kind, path, args, thread = rec.next()
                self.assertEqual((kind, path, args), ("execute", "/3460/0/4", "0='on',1"))
                self.execute("/3460/0/4", "")
                self.assertEqual(rec.next()[:3], ("execute", "/3460/0/4", ""))
                self.assertIn(thread, status_threads, "calls come on the status handlers' thread")
                self.assertNotEqual(thread, threading.get_ident())

                # Removed: no more calls.
                avc.set_object_handler(None)
                self.write("/3460/0/2", "7")
                self.read("/3460/0/2", "7")
                time.sleep(0.3)
                self.assertTrue(rec.calls.empty(), "a call after the handler was removed")
        finally:
            avc.remove_status_handler(h)

    def test_handler_errors_and_partial_handlers(self) -> None:
        got: queue.Queue[str] = queue.Queue()

        class ExecuteOnly:
            def execute(self, path: str, args: str) -> None:
                got.put(args)
                raise RuntimeError("logged, not propagated")

        avc.set_object_handler(ExecuteOnly())
        with avc.Session() as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
            self.write("/3460/0/2", "5")  # no write method: nothing is called
            with self.assertLogs("avc", "ERROR"):
                self.execute("/3460/0/4", "1")
                self.assertEqual(got.get(timeout=TIMEOUT), "1")
                time.sleep(0.2)
            self.execute("/3460/0/4", "2")  # the handler still works after raising
            self.assertEqual(got.get(timeout=TIMEOUT), "2")


SENSOR = ObjectDef(
    id=3470,
    name="python sensor",
    resources=[
        ResourceDef(1, "Temperature", ResourceType.FLOAT, Operations.READ, on_read=True),
        ResourceDef(2, "Samples", ResourceType.INTEGER, Operations.READ | Operations.READ_CB, multiple=True),
        ResourceDef(3, "Label", ResourceType.STRING, Operations.READ),
    ],
)


class ReadCallbackTest(ObjectServerTest):
    """Resources declared on_read: the handler's read method gives their
    values when the server reads them."""

    def setUp(self) -> None:
        super().setUp()
        avc.define_objects([SENSOR])

    def api_read(self, path: str, fmt: str) -> dict[str, object]:
        status, body = self.server.api(f"/api/clients/{self.ep}/read{path}?format={fmt}")
        self.assertEqual(status, 200, body)
        assert isinstance(body, dict)
        return {r["path"]: r["value"] for r in body["records"]}

    def test_read_callback(self) -> None:
        calls: queue.Queue[tuple[str, int]] = queue.Queue()
        readings = iter(range(100))

        class Sensor:
            def read(self, path: str) -> object:
                calls.put((path, threading.get_ident()))
                n = next(readings)
                if path == "/3470/0/2":
                    avc.set_value("/3470/0/2/0", 100 + n)  # a multiple resource: set per instance
                    return None
                return 20.5 + n  # returned: libavc sets it

        with self.assertRaises(avc.FormatError):  # READ_CB needs READ
            avc.define_objects([ObjectDef(3471, resources=[ResourceDef(1, "x", ResourceType.FLOAT, Operations.NONE, on_read=True)])])
        avc.set_value("/3470/0/1", 1.5)
        avc.set_value("/3470/0/2/0", 7)
        avc.set_value("/3470/0/3", "lab")
        avc.set_object_handler(Sensor())
        with avc.Session() as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
            self.read("/3470/0/3", "lab")  # no read callback: the stored value, no call
            self.assertTrue(calls.empty())
            self.assertEqual(self.api_read("/3470/0/1", "text"), {"/3470/0/1": "20.5"})
            self.assertEqual(calls.get(timeout=TIMEOUT)[0], "/3470/0/1")
            self.assertEqual(self.api_read("/3470/0/1", "text"), {"/3470/0/1": "21.5"})
            calls.get(timeout=TIMEOUT)
            got = self.api_read("/3470/0", "senml-json")
            self.assertEqual(got, {"/3470/0/1": 22.5, "/3470/0/2/0": 103, "/3470/0/3": "lab"})
            paths = [calls.get(timeout=TIMEOUT), calls.get(timeout=TIMEOUT)]
            self.assertEqual([p for p, _ in paths], ["/3470/0/1", "/3470/0/2"])
            self.assertNotEqual(paths[0][1], threading.get_ident(), "calls come on libavc's dispatcher thread")

            # A read method that raises: logged, and the engine answers
            # with the value it has.
            class Broken:
                def read(self, path: str) -> object:
                    raise RuntimeError("logged, not propagated")

            avc.set_object_handler(Broken())
            with self.assertLogs("avc", "ERROR"):
                self.assertEqual(self.api_read("/3470/0/1", "text"), {"/3470/0/1": "22.5"})
            # Without a read method the engine answers at once.
            avc.set_object_handler(None)
            start = time.monotonic()
            self.assertEqual(self.api_read("/3470/0/1", "text"), {"/3470/0/1": "22.5"})
            self.assertLess(time.monotonic() - start, 3.0)
            self.assertTrue(calls.empty())

    # The inherited tests run on ObjectServerTest only.
    test_read_write_execute = None  # type: ignore[assignment]
    test_handler_errors_and_partial_handlers = None  # type: ignore[assignment]


if __name__ == "__main__":
    unittest.main()
