"""Firmware update (Object 5) from Python: avc.FirmwareHandler, the status
callback, and a full update driven by avc's embedded server (``avc
server -firmware-dir``).

The end-to-end test needs the avc CLI ($AVC_CLI or build/avc, from `make
cli`) for the server and for packing a signed package; it fails, not
skips, without it.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _support, however the tests are run
from _support import INCLUDE, Server, avc_cli, enum_members, parse_header, quiet_avc_logger  # noqa: E402

import avc  # noqa: E402
from avc import _ffi, _firmware  # noqa: E402

quiet_avc_logger()

TIMEOUT = 30.0


class RamFlash(avc.FirmwareHandler):
    """A download slot and a boot slot in memory; records its calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.slot = bytearray()
        self.boot = b""
        self.boot_version = "1.0.0"
        self.calls: list[str] = []
        self.opened: list[tuple[str, int]] = []
        self.packages: list[avc.FirmwarePackage] = []
        self.fail_write: BaseException | None = None
        self.reentry: BaseException | None = None

    def _note(self, call: str) -> None:
        if not (call == "write" and self.calls and self.calls[-1] == "write"):
            self.calls.append(call)

    def stream_open(self, uri: str, offset: int) -> None:
        with self.lock:
            self._note("open")
            self.opened.append((uri, offset))
            del self.slot[offset:]

    def stream_write(self, data: bytes) -> None:
        with self.lock:
            self._note("write")
            if self.fail_write is not None:
                raise self.fail_write
            self.slot += data

    def stream_finish(self) -> None:
        try:
            avc.set_value("/3/0/9", 50)  # would wait for the session: refused
        except avc.AvcError as e:
            self.reentry = e
        with self.lock:
            self._note("finish")

    def reset(self) -> None:
        with self.lock:
            self._note("reset")
            self.slot.clear()

    def perform_upgrade(self, pkg: avc.FirmwarePackage) -> None:
        with self.lock:
            self._note("perform_upgrade")
            self.packages.append(pkg)
            if len(self.slot) != pkg.size:
                raise avc.FirmwareIntegrityFailure(f"{len(self.slot)} bytes stored, package has {pkg.size}")
            self.boot, self.boot_version = bytes(self.slot), pkg.version

    def booted(self, pkg: avc.FirmwarePackage) -> tuple[str, bool]:
        with self.lock:
            self._note("booted")
            return self.boot_version, self.boot_version == pkg.version

    def sync(self) -> None:
        with self.lock:
            self._note("sync")


class EnumTest(unittest.TestCase):
    def test_firmware_state(self) -> None:
        c = enum_members(INCLUDE / "avc.h", "avc_fw_state_t")
        self.assertEqual({"AVC_FW_STATE_" + m.name: int(m) for m in avc.FirmwareState}, c)

    def test_update_result(self) -> None:
        c = enum_members(INCLUDE / "avc.h", "avc_fw_result_t")
        self.assertEqual(len(c), 12)
        self.assertEqual({"AVC_FW_RESULT_" + m.name: int(m) for m in avc.UpdateResult}, c)

    def test_firmware_errors(self) -> None:
        c = enum_members(INCLUDE / "avc.h", "avc_fw_error_t")
        py = {
            "AVC_FW_ERR_NOT_ENOUGH_SPACE": avc.FirmwareNoSpace,
            "AVC_FW_ERR_OUT_OF_MEMORY": avc.FirmwareNoMemory,
            "AVC_FW_ERR_INTEGRITY_FAILURE": avc.FirmwareIntegrityFailure,
            "AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE": avc.FirmwareUnsupportedPackage,
            "AVC_FW_ERR_DEFERRED": avc.FirmwareDeferred,
        }
        self.assertEqual({name: cls.code for name, cls in py.items()}, c)
        for cls in py.values():
            with self.subTest(cls=cls.__name__):
                self.assertTrue(issubclass(cls, avc.FirmwareError))
                self.assertEqual(cls.result, -cls.code)

    def test_version_max(self) -> None:
        _, defines = parse_header(INCLUDE / "avc.h")
        self.assertEqual(int(defines["AVC_FW_VERSION_MAX"]), _ffi.FW_VERSION_MAX)

    def test_layouts_match_c(self) -> None:
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if cc is None:
            self.fail("no C compiler to measure the structs with: run `make deps` (part of `make test`)")
        structs = {"avc_fw_package_t": _ffi.AvcFwPackage, "avc_fw_status_t": _ffi.AvcFwStatus,
                   "avc_fw_handlers_t": _ffi.AvcFwHandlers, "avc_fw_security_config_t": _ffi.AvcFwSecurityConfig,
                   "avc_fw_coap_tx_params_t": _ffi.AvcFwCoapTxParams}
        src = "#include <stdio.h>\n#include <stddef.h>\n#include \"avc.h\"\nint main(void) {\n"
        want: list[int] = []
        for cname, py in structs.items():
            src += f'    printf("%zu ", sizeof({cname}));\n'
            want.append(ctypes.sizeof(py))
            for f, _ in py._fields_:
                src += f'    printf("%zu ", offsetof({cname}, {f}));\n'
                want.append(getattr(py, f).offset)
        src += "    return 0;\n}\n"
        with tempfile.TemporaryDirectory() as d:
            c, exe = Path(d) / "layout.c", Path(d) / "layout"
            c.write_text(src)
            subprocess.run([cc, "-std=c99", f"-I{INCLUDE}", str(c), "-o", str(exe)], check=True)
            out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
        self.assertEqual([int(x) for x in out], want)


class CallbackTest(unittest.TestCase):
    """The C callbacks built for a handler, called directly: return codes
    and logging, without a session."""

    def test_errors_become_codes(self) -> None:
        h = RamFlash()
        cb = _firmware._callbacks(h)
        data = ctypes.create_string_buffer(b"abc", 3)
        self.assertEqual(cb.stream_open(None, b"coap://x/fw", 0), 0)
        self.assertEqual(cb.stream_write(None, ctypes.cast(data, ctypes.c_void_p), 3), 0)
        self.assertEqual(bytes(h.slot), b"abc")
        cases: list[tuple[BaseException, int]] = [
            (avc.FirmwareNoSpace("full"), -2),
            (avc.FirmwareNoMemory(), -3),
            (avc.FirmwareIntegrityFailure(), -5),
            (avc.FirmwareUnsupportedPackage(), -6),
            (avc.FirmwareDeferred(), -11),
            (avc.FirmwareError("other"), -1),
        ]
        for exc, code in cases:
            with self.subTest(exc=type(exc).__name__):
                h.fail_write = exc
                with self.assertLogs("avc", "WARNING") as logs:
                    self.assertEqual(cb.stream_write(None, ctypes.cast(data, ctypes.c_void_p), 3), code)
                self.assertIn("stream_write", logs.output[0])

    def test_other_exceptions_are_logged_with_the_default_code(self) -> None:
        h = RamFlash()
        cb = _firmware._callbacks(h)
        h.fail_write = RuntimeError("flash controller on fire")
        data = ctypes.create_string_buffer(b"x", 1)
        with self.assertLogs("avc", "ERROR") as logs:
            self.assertEqual(cb.stream_write(None, ctypes.cast(data, ctypes.c_void_p), 1), -1)
        self.assertIn("flash controller on fire", "\n".join(logs.output))

    def test_booted_and_package(self) -> None:
        h = RamFlash()
        cb = _firmware._callbacks(h)
        pkg = _ffi.AvcFwPackage(b"http://h/fw", b"dev", b"2.0.0", b"ab" * 32, 0)
        self.assertEqual(cb.perform_upgrade(None, ctypes.byref(pkg)), 0)
        self.assertEqual(h.packages, [avc.FirmwarePackage("http://h/fw", "dev", "2.0.0", "ab" * 32, 0)])
        buf = ctypes.create_string_buffer(_ffi.FW_VERSION_MAX)
        self.assertEqual(cb.booted(None, ctypes.byref(pkg), ctypes.cast(buf, ctypes.c_void_p), len(buf)), 1)
        self.assertEqual(buf.value, b"2.0.0")
        small = ctypes.create_string_buffer(3)
        self.assertEqual(cb.booted(None, ctypes.byref(pkg), ctypes.cast(small, ctypes.c_void_p), 3), 1)
        self.assertEqual(small.value, b"2.")  # truncated, NUL-terminated

        class Broken(RamFlash):
            def booted(self, pkg: avc.FirmwarePackage) -> tuple[str, bool]:
                return None, True  # type: ignore[return-value]

        with self.assertLogs("avc", "ERROR"):
            self.assertEqual(_firmware._callbacks(Broken()).booted(None, ctypes.byref(pkg), None, 0), 0)

    def test_sync_only_when_overridden(self) -> None:
        class NoSync(RamFlash):
            sync = avc.FirmwareHandler.sync

        self.assertTrue(_firmware._callbacks(RamFlash()).sync)
        self.assertFalse(_firmware._callbacks(NoSync()).sync)


class HookFlash(RamFlash):
    """RamFlash with every optional hook; records what libavc asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []
        self.security: avc.FirmwareSecurity | BaseException | None = None
        self.tx: avc.CoapTxParams | None = avc.CoapTxParams(ack_timeout=0.3, ack_random_factor=1.0, max_retransmit=1)
        self.timeout: float | None = 1.0

    def get_name(self) -> str | None:
        self.asked.append("name")
        return "py-blob"

    def get_version(self) -> str | None:
        self.asked.append("version")
        return "8.8.8"

    def get_security_config(self, uri: str) -> avc.FirmwareSecurity | None:
        self.asked.append("security " + uri)
        if isinstance(self.security, BaseException):
            raise self.security
        return self.security

    def get_coap_tx_params(self, uri: str) -> avc.CoapTxParams | None:
        self.asked.append("tx " + uri)
        return self.tx

    def get_tcp_request_timeout(self, uri: str) -> float | None:
        self.asked.append("timeout " + uri)
        return self.timeout


class HookCallbackTest(unittest.TestCase):
    """The optional get_* callbacks, called directly as libavc calls them."""

    def test_only_when_overridden(self) -> None:
        plain = _firmware._callbacks(RamFlash())
        hooks = _firmware._callbacks(HookFlash())
        for name in ("get_name", "get_version", "get_security_config", "get_coap_tx_params", "get_tcp_request_timeout"):
            with self.subTest(name=name):
                self.assertFalse(getattr(plain, name), "NULL unless overridden")
                self.assertTrue(getattr(hooks, name))

    def test_name_and_version(self) -> None:
        cb = _firmware._callbacks(HookFlash())
        self.assertEqual(ctypes.string_at(cb.get_name(None)), b"py-blob")
        self.assertEqual(ctypes.string_at(cb.get_version(None)), b"8.8.8")

        class Bad(HookFlash):
            def get_name(self) -> str | None:
                raise RuntimeError("no name today")

        with self.assertLogs("avc", "ERROR"):
            self.assertIsNone(_firmware._callbacks(Bad()).get_name(None))

    def test_security_config(self) -> None:
        h = HookFlash()
        cb = _firmware._callbacks(h)
        out = _ffi.AvcFwSecurityConfig()
        self.assertEqual(cb.get_security_config(None, ctypes.byref(out), b"coaps://h/fw"), 0)
        self.assertEqual((out.psk_identity, out.psk_key, out.ca_pem), (None, None, None), "None: left zeroed")
        h.security = avc.FirmwareSecurity(psk_identity="py-id", psk_key=b"\x00key", ca_pem="-----BEGIN CERTIFICATE-----")
        out = _ffi.AvcFwSecurityConfig()
        self.assertEqual(cb.get_security_config(None, ctypes.byref(out), b"coaps://h/fw"), 0)
        self.assertEqual(ctypes.string_at(out.psk_identity), b"py-id")
        self.assertEqual(ctypes.string_at(out.psk_key, out.psk_key_len), b"\x00key")
        self.assertEqual(ctypes.string_at(out.ca_pem), b"-----BEGIN CERTIFICATE-----")
        self.assertIsNone(out.client_cert_pem)
        self.assertEqual(h.asked, ["security coaps://h/fw"] * 2)
        h.security = avc.FirmwareNoMemory("no key slot")
        with self.assertLogs("avc", "WARNING"):
            self.assertEqual(cb.get_security_config(None, ctypes.byref(out), b"coaps://h/fw"), -3)
        h.security = RuntimeError("secure element gone")
        with self.assertLogs("avc", "ERROR"):
            self.assertEqual(cb.get_security_config(None, ctypes.byref(out), b"coaps://h/fw"), -1)

    def test_tx_params_and_timeout(self) -> None:
        h = HookFlash()
        cb = _firmware._callbacks(h)
        out = _ffi.AvcFwCoapTxParams(2000, 1.5, 4)
        self.assertEqual(cb.get_coap_tx_params(None, ctypes.byref(out), b"coap://h/fw"), 0)
        self.assertEqual((out.ack_timeout_ms, out.ack_random_factor, out.max_retransmit), (300, 1.0, 1))
        h.tx = None
        self.assertNotEqual(cb.get_coap_tx_params(None, ctypes.byref(out), b"coap://h/fw"), 0, "None: the defaults")
        self.assertEqual(cb.get_tcp_request_timeout(None, b"http://h/fw"), 1000)
        h.timeout = None
        self.assertEqual(cb.get_tcp_request_timeout(None, b"http://h/fw"), 0)
        self.assertEqual(h.asked, ["tx coap://h/fw"] * 2 + ["timeout http://h/fw"] * 2)


class MisuseTest(unittest.TestCase):
    def test_bad_handlers(self) -> None:
        with self.assertRaises(avc.BadParameterError):
            avc.install_firmware_handler(None)
        with self.assertRaises(TypeError):
            avc.install_firmware_handler(object())  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            avc.FirmwareHandler()  # type: ignore[abstract]

        class Half(avc.FirmwareHandler):
            def stream_open(self, uri: str, offset: int) -> None:
                pass

        with self.assertRaises(TypeError):
            Half()  # type: ignore[abstract]

    def test_install_and_uninstall(self) -> None:
        avc.install_firmware_handler(RamFlash())
        avc.install_firmware_handler(RamFlash())
        avc.uninstall_firmware_handler()
        avc.uninstall_firmware_handler()

    def test_trusted_key(self) -> None:
        with self.assertRaises(avc.FormatError):
            avc.set_firmware_trusted_key("zz")
        key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        avc.set_firmware_trusted_key(key)
        self.assertEqual(avc.get_config("fw_trusted_keys"), key)
        avc.set_firmware_trusted_key(None)
        self.assertEqual(avc.get_config("fw_trusted_keys"), "")

    def test_status_handler(self) -> None:
        with self.assertRaises(TypeError):
            avc.set_firmware_status_handler(5)  # type: ignore[arg-type]
        avc.set_firmware_status_handler(lambda st: None)
        avc.set_firmware_status_handler(None)
        avc.set_firmware_status_handler(None)


class FotaTest(unittest.TestCase):
    """A full update driven by the embedded server's firmware update API
    (``POST /api/clients/{ep}/fota``, the image served from its
    ``-firmware-dir`` over HTTP): the handler stores the image, the server
    executes Update, libavc restarts its engine and asks booted, /3/0/3
    reads the new version."""

    server: Server
    tmp: tempfile.TemporaryDirectory[str]
    image: bytes
    package: bytes
    pubkey: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        d = Path(cls.tmp.name)
        (d / "images").mkdir()
        cli = str(avc_cli())
        cls.pubkey = subprocess.run([cli, "keygen", "-out", str(d / "fw.key")], check=True,
                                    capture_output=True, text=True).stdout.strip()
        cls.image = bytes((i * 7 + i // 251) & 0xFF for i in range(150_000))
        (d / "fw.img").write_bytes(cls.image)
        subprocess.run([cli, "pack", "-in", str(d / "fw.img"), "-out", str(d / "images" / "py-fota.avc"),
                        "-name", "py-fota", "-version", "2.0.0", "-key", str(d / "fw.key")],
                       check=True, capture_output=True)
        cls.package = (d / "images" / "py-fota.avc").read_bytes()
        cls.server = Server(http=True, firmware_dir=d / "images")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()
        cls.tmp.cleanup()

    def setUp(self) -> None:
        self.ep = "py-fota-" + uuid.uuid4().hex[:8]
        self.cond = threading.Condition()
        self.statuses: list[avc.FirmwareStatus] = []
        avc.configure(server_uri=self.server.uri, endpoint=self.ep, lifetime=300,
                      fw_version="1.0.0", fw_require_signature="true")
        avc.set_firmware_trusted_key(self.pubkey)
        avc.set_firmware_status_handler(self.on_status)

    def tearDown(self) -> None:
        try:
            avc.stop_session()
        except avc.DuplicateError:
            pass
        avc.uninstall_firmware_handler()
        avc.set_firmware_status_handler(None)
        avc.configure(fw_version="", fw_require_signature="", fw_trusted_keys="")

    def on_status(self, st: avc.FirmwareStatus) -> None:
        with self.cond:
            self.statuses.append(st)
            self.cond.notify_all()

    def fota(self) -> dict[str, object]:
        """Runs a firmware update of py-fota.avc through the server's API; returns its final status."""
        status, out = self.server.call("POST", f"/api/clients/{self.ep}/fota",
                                       {"image": "py-fota.avc", "protocol": "http", "timeout": int(TIMEOUT)})
        self.assertEqual(status, 202, out)
        assert isinstance(out, dict)
        deadline = time.monotonic() + TIMEOUT + 5
        st: object = out
        while time.monotonic() < deadline:
            status, st = self.server.api(f"/api/clients/{self.ep}/fota/{out['id']}")
            self.assertEqual(status, 200, st)
            assert isinstance(st, dict)
            if st["final"]:
                return st
            time.sleep(0.1)
        self.fail(f"the firmware update did not end: {st}")

    def read_until(self, path: str, want: object) -> None:
        deadline = time.monotonic() + TIMEOUT
        got: object = None
        while time.monotonic() < deadline:
            status, out = self.server.api(f"/api/clients/{self.ep}/read/{path}")
            if status == 200 and isinstance(out, dict) and out.get("records"):
                got = out["records"][0]["value"]
                if got == want:
                    return
            time.sleep(0.1)
        self.fail(f"{path} reads {got!r}, want {want!r}")

    def test_full_update(self) -> None:
        h = RamFlash()
        avc.install_firmware_handler(h)
        with avc.Session() as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)
            with self.assertRaises(avc.NotPermittedError):
                avc.install_firmware_handler(RamFlash())
            self.read_until("3/0/3", "1.0.0")

            # A download the storage refuses: Update Result 2, back to Idle.
            h.fail_write = avc.FirmwareNoSpace("flash full")
            with self.assertLogs("avc", "WARNING") as logs:
                st = self.fota()
            self.assertEqual((st["state"], st["result"]), (0, avc.UpdateResult.NOT_ENOUGH_SPACE), st)
            self.assertTrue(any("flash full" in line for line in logs.output), logs.output)
            with self.cond:
                last = self.statuses[-1]
            self.assertEqual((last.state, last.result), (avc.FirmwareState.IDLE, avc.UpdateResult.NOT_ENOUGH_SPACE))

            # The update.
            h.fail_write = None
            with self.cond:
                first = len(self.statuses)
            st = self.fota()
            self.assertEqual((st["state"], st["result"]), (0, avc.UpdateResult.SUCCESS), st)
            self.assertIsInstance(h.reentry, avc.NotPermittedError)
            self.read_until("3/0/3", "2.0.0")
            self.read_until("5/0/5", 1)
            self.read_until("5/0/3", 0)
            with self.cond:
                # The status callback runs on the dispatcher thread: wait for the last one.
                self.cond.wait_for(lambda: self.statuses[-1].result == avc.UpdateResult.SUCCESS, TIMEOUT)

        with h.lock:
            self.assertEqual(h.boot, self.image, "perform_upgrade got exactly the image bytes")
            uri = h.opened[-1][0]
            self.assertEqual(h.opened[-1], (uri, 0))
            self.assertTrue(uri.startswith("http://") and uri.endswith("/fw/py-fota.avc"), uri)
            pkg = h.packages[-1]
            self.assertEqual((pkg.uri, pkg.name, pkg.version, pkg.size), (uri, "py-fota", "2.0.0", len(self.image)))
            self.assertEqual(len(pkg.sha256), 64)
            calls = h.calls[h.calls.index("open", h.calls.index("open") + 1):]  # the second download
            self.assertIn("sync", calls)
            order: list[str] = []
            for c in calls:  # syncs come between writes
                if c in ("open", "write", "finish", "perform_upgrade", "booted") and (not order or order[-1] != c):
                    order.append(c)
            self.assertEqual(order, ["open", "write", "finish", "perform_upgrade", "booted"])
        with self.cond:
            states: list[int] = []
            for fs in self.statuses[first:]:
                if not states or states[-1] != fs.state:
                    states.append(fs.state)
            last = self.statuses[-1]
            progress = [(fs.bytes, fs.total) for fs in self.statuses[first:]]
        self.assertEqual(states, [1, 2, 3, 0])
        self.assertEqual((last.state, last.result), (avc.FirmwareState.IDLE, avc.UpdateResult.SUCCESS))
        self.assertIsInstance(last.state, avc.FirmwareState)
        self.assertIn((len(self.package), len(self.package)), progress)
        # The session has ended: the handler may be replaced.
        avc.install_firmware_handler(RamFlash())



class _Files(threading.Thread):
    """An HTTP server for /image (the whole image) and /stall (the head and
    100 bytes, then nothing until the client goes away)."""

    def __init__(self, image: bytes) -> None:
        import http.server

        files = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", str(len(image)))
                self.end_headers()
                if self.path.endswith("/stall"):
                    self.wfile.write(image[:100])
                    self.wfile.flush()
                    files.release.wait(30)
                    return
                self.wfile.write(image)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(daemon=True)
        self.release = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.start()

    def run(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class HooksTest(FotaTest):
    """The optional hooks in a session: get_name/get_version name a bare
    image pulled over HTTP (/5/0/6, /5/0/7), get_tcp_request_timeout ends a
    stalled pull with Update Result 4, and get_coap_tx_params sets when a
    silent CoAP server sees the pull's request again."""

    def setUp(self) -> None:
        super().setUp()
        avc.configure(fw_require_signature="")  # bare images
        self.files = _Files(self.image)

    def tearDown(self) -> None:
        self.files.close()
        super().tearDown()

    def write_uri(self, uri: str) -> None:
        status, out = self.server.call("PUT", f"/api/clients/{self.ep}/write/5/0/1", {"value": uri, "type": "string"})
        self.assertEqual(status, 200, out)

    def wait_fw(self, state: int, result: int) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: bool(self.statuses) and (self.statuses[-1].state, self.statuses[-1].result)
                                    == (state, result), TIMEOUT)
            self.assertTrue(ok, self.statuses[-3:])

    def test_hooks(self) -> None:
        import socket

        h = HookFlash()
        avc.install_firmware_handler(h)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(5)
        self.addCleanup(udp.close)
        with avc.Session() as s:
            s.wait_for(avc.Status.SESSION_STARTED, timeout=TIMEOUT)

            uri = f"http://127.0.0.1:{self.files.port}/fw/image"
            self.write_uri(uri)
            self.wait_fw(avc.FirmwareState.DOWNLOADED, avc.UpdateResult.INITIAL)
            self.read_until("5/0/6", "py-blob")
            self.read_until("5/0/7", "8.8.8")
            with self.cond:
                self.assertEqual(self.statuses[-1].version, "8.8.8")
            self.assertEqual(bytes(h.slot), self.image)
            self.assertIn("timeout " + uri, h.asked)
            self.write_uri("")
            self.wait_fw(avc.FirmwareState.IDLE, avc.UpdateResult.INITIAL)

            uri = f"http://127.0.0.1:{self.files.port}/fw/stall"
            start = time.monotonic()
            with self.assertLogs("avc", "WARNING"):
                self.write_uri(uri)
                self.wait_fw(avc.FirmwareState.IDLE, avc.UpdateResult.CONNECTION_LOST)
            self.assertGreaterEqual(time.monotonic() - start, 0.9, "not before the 1 s request timeout")

            uri = f"coap://127.0.0.1:{udp.getsockname()[1]}/fw/silent"
            self.write_uri(uri)
            got = []
            for _ in range(3):
                data, _ = udp.recvfrom(2048)
                got.append((time.monotonic(), data[2:4]))
            self.assertIn("tx " + uri, h.asked)
            first, resend, again = got
            self.assertTrue(0.25 <= resend[0] - first[0] < 1.5, f"resend after {resend[0] - first[0]:.3f} s, want 0.3")
            self.assertEqual(resend[1], first[1], "a resend keeps the message ID")
            self.assertNotEqual(again[1], resend[1], "after MAX_RETRANSMIT 1: a new request")
            self.assertTrue(2.0 <= again[0] - resend[0] < 4.5, f"new request {again[0] - resend[0]:.3f} s later")
            self.write_uri("")
            self.wait_fw(avc.FirmwareState.IDLE, avc.UpdateResult.INITIAL)

    # The inherited full update runs once, in FotaTest.
    test_full_update = None  # type: ignore[assignment]


if __name__ == "__main__":
    unittest.main()
