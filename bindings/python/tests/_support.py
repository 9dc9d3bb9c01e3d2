"""Shared test helpers: import path, repository paths, the embedded server."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BINDING = Path(__file__).resolve().parents[1]
REPO = BINDING.parents[1]
INCLUDE = REPO / "include"

if str(BINDING) not in sys.path:
    sys.path.insert(0, str(BINDING))


def parse_header(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Returns (enum members -> value, #define name -> raw value) of a header."""
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    members: dict[str, int] = {}
    for body in re.findall(r"typedef\s+enum\s*\{(.*?)\}", text, flags=re.S):
        for name, value in re.findall(r"\b([A-Z][A-Z0-9_]*)\s*=\s*(-?(?:0x[0-9A-Fa-f]+|\d+))", body):
            members[name] = int(value, 0)
    defines = dict(re.findall(r"^[ \t]*#define[ \t]+([A-Z][A-Z0-9_]*)[ \t]+(\S.*?)[ \t]*$", text, flags=re.M))
    return members, defines


def enum_members(path: Path, typedef: str) -> dict[str, int]:
    """Returns the members of one ``typedef enum {...} typedef;`` of a header."""
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.S)
    m = re.search(r"typedef\s+enum\s*\{([^}]*)\}\s*" + re.escape(typedef) + r"\s*;", text, flags=re.S)
    if m is None:
        raise AssertionError(f"{typedef} not found in {path}")
    out: dict[str, int] = {}
    for name, value in re.findall(r"\b([A-Z][A-Z0-9_]*)\s*=\s*(-?(?:0x[0-9A-Fa-f]+|\d+))", m.group(1)):
        out[name] = int(value, 0)
    return out


def avc_cli() -> Path:
    """The avc CLI: $AVC_CLI, else build/avc. Fails (does not skip) when missing."""
    p = Path(os.environ.get("AVC_CLI") or REPO / "build" / "avc")
    if not p.is_file():
        raise AssertionError(
            f"the avc CLI is missing ({p}); build it with `make cli` "
            "(the end-to-end tests need `avc server`)"
        )
    return p


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``avc server`` on a free UDP port of 127.0.0.1; with ``http=True``
    also its HTTP JSON API on a free TCP port (see :meth:`api`); with
    ``firmware_dir`` serving the firmware images of that directory."""

    def __init__(
        self, http: bool = False, firmware_dir: str | Path | None = None, psk: tuple[str, str] | None = None
    ) -> None:
        self.port = free_udp_port()
        self.uri = f"coap://127.0.0.1:{self.port}"
        self.http = f"127.0.0.1:{free_tcp_port()}" if http else ""
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        fw = ["-firmware-dir", str(firmware_dir)] if firmware_dir is not None else []
        # psk=(identity, hex key): also a coaps listener, at coaps_uri.
        coaps: list[str] = []
        self.coaps_uri = ""
        if psk is not None:
            coaps_port = free_udp_port()
            self.coaps_uri = f"coaps://127.0.0.1:{coaps_port}"
            coaps = ["-coaps", f"127.0.0.1:{coaps_port}", "-psk", f"{psk[0]}={psk[1]}"]
        self.proc = subprocess.Popen(
            [str(avc_cli()), "server", "-coap", f"127.0.0.1:{self.port}", "-http", self.http, *fw, *coaps],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.wait_log("server listening", 10):
            self.close()
            raise AssertionError("avc server did not start:\n" + "\n".join(self.log))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))
            self.lines.put(line)

    def wait_log(self, text: str, timeout: float) -> bool:
        """Waits for a server log line containing text."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return False
            if text in line:
                return True

    def api(self, path: str, timeout: float = 10.0) -> tuple[int, object]:
        """GETs ``/api/...`` of the HTTP API; returns (HTTP status, decoded JSON body)."""
        import urllib.error
        import urllib.request

        if not self.http:
            raise AssertionError("the server was started without http=True")
        try:
            with urllib.request.urlopen(f"http://{self.http}{path}", timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body or b"null")
            except ValueError:
                return e.code, body.decode("utf-8", "replace")

    def read_until(self, ep: str, path: str, want: object, timeout: float = 15.0) -> tuple[bool, object]:
        """Reads path of ep as text through the HTTP API until its single
        record's value is want; returns whether it was, and the last answer
        (HTTP status, body)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            status, body = self.api(f"/api/clients/{ep}/read{path}?format=text")
            last = (status, body)
            if status == 200 and isinstance(body, dict):
                records = body.get("records") or []
                if len(records) == 1 and records[0].get("value") == want:
                    return True, last
            time.sleep(0.05)
        return False, last

    def call(self, method: str, path: str, body: object = None, timeout: float = 10.0) -> tuple[int, object]:
        """Sends ``method path`` to the HTTP API with body as JSON (None: no
        body); returns (HTTP status, decoded JSON body)."""
        import urllib.error
        import urllib.request

        if not self.http:
            raise AssertionError("the server was started without http=True")
        data = b"" if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{self.http}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw or b"null")
            except ValueError:
                return e.code, raw.decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        if self.proc.stderr is not None and not self._reader.is_alive():
            self.proc.stderr.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def quiet_avc_logger() -> None:
    """Keeps libavc's expected warnings out of the test output (assertLogs still sees them)."""
    import logging

    log = logging.getLogger("avc")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
