"""The Python enums and the ctypes declarations match the C headers."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _support, however the tests are run
from _support import INCLUDE, REPO, enum_members, parse_header  # noqa: E402

import avc  # noqa: E402
from avc import _ffi  # noqa: E402


class ResultTest(unittest.TestCase):
    def test_every_le_result_value(self) -> None:
        c = enum_members(INCLUDE / "legato.h", "le_result_t")
        self.assertEqual(len(c), 25)
        py = {"LE_" + m.name: int(m) for m in avc.Result}
        self.assertEqual(py, c)

    def test_avc_result_is_a_subset_with_the_same_values(self) -> None:
        c = enum_members(INCLUDE / "avc.h", "avc_result_t")
        self.assertIn("AVC_OK", c)
        le = {m.value: m for m in avc.Result}
        for name, value in c.items():
            with self.subTest(name=name):
                self.assertIn(value, le, f"{name}={value} is no le_result_t value")

    def test_le_onoff(self) -> None:
        self.assertEqual(enum_members(INCLUDE / "legato.h", "le_onoff_t"), {"LE_OFF": 0, "LE_ON": 1})

    def test_result_text_matches_names(self) -> None:
        for m in avc.Result:
            with self.subTest(result=m):
                self.assertEqual(avc.result_text(m), "LE_" + m.name)
        self.assertEqual(avc.result_text(-99), "(unknown)")


class StatusTest(unittest.TestCase):
    def test_every_status_value(self) -> None:
        c = enum_members(INCLUDE / "le_avc_common.h", "le_avc_Status_t")
        self.assertEqual(len(c), 25)
        py = {"LE_AVC_" + m.name: int(m) for m in avc.Status}
        self.assertEqual(py, c)

    def test_log_levels(self) -> None:
        c = enum_members(INCLUDE / "avc.h", "avc_log_level_t")
        self.assertEqual({"AVC_LOG_" + m.name: int(m) for m in avc.LogLevel}, c)


class CommonHeaderTest(unittest.TestCase):
    """le_avc_common.h holds every value api-reference.md §1.3-1.4 lists."""

    EXPECTED_ENUMS = {
        "le_avc_UserAgreement_t": {
            "LE_AVC_USER_AGREEMENT_CONNECTION": 0, "LE_AVC_USER_AGREEMENT_DOWNLOAD": 1,
            "LE_AVC_USER_AGREEMENT_INSTALL": 2, "LE_AVC_USER_AGREEMENT_UNINSTALL": 3,
            "LE_AVC_USER_AGREEMENT_REBOOT": 4,
        },
        "le_avc_SessionRequest_t": {"LE_AVC_SESSION_ACQUIRE": 0, "LE_AVC_SESSION_RELEASE": 1},
        "le_avc_UpdateType_t": {
            "LE_AVC_UNKNOWN_UPDATE": 0, "LE_AVC_FIRMWARE_UPDATE": 1, "LE_AVC_FRAMEWORK_UPDATE": 2,
            "LE_AVC_APPLICATION_UPDATE": 3, "LE_AVC_FILE_TRANSFER": 4,
        },
        "le_avc_ErrorCode_t": {
            "LE_AVC_ERR_NONE": 0, "LE_AVC_ERR_BAD_PACKAGE": 1, "LE_AVC_ERR_INTERNAL": 2,
            "LE_AVC_ERR_SECURITY_FAILURE": 3, "LE_AVC_ERR_RAM": 4, "LE_AVC_ERR_NETWORK": 5,
            "LE_AVC_ERR_FLASH": 6, "LE_AVC_ERR_PKG_TOO_BIG": 7,
        },
        "le_avc_SessionType_t": {"LE_AVC_BOOTSTRAP_SESSION": 0, "LE_AVC_DM_SESSION": 1, "LE_AVC_SESSION_INVALID": 2},
        "le_avc_CredentialStatus_t": {
            "LE_AVC_NO_CREDENTIAL_PROVISIONED": 1, "LE_AVC_BS_CREDENTIAL_PROVISIONED": 2,
            "LE_AVC_DM_CREDENTIAL_PROVISIONED": 3,
        },
        "le_avc_ConfigType_t": {"LE_AVC_CONFIG_TYPE_SIM_APDU_RESPONSE": 1},
        "le_avc_CredentialType_t": {
            "LE_AVC_SW_PUBLIC_KEY": 0, "LE_AVC_FW_PUBLIC_KEY": 1, "LE_AVC_BS_SERVER_ADDRESS": 2,
            "LE_AVC_BS_PSK_ID": 3, "LE_AVC_BS_PSK": 4,
        },
    }

    EXPECTED_DEFINES = {
        "LE_AVC_APN_NAME_MAX_LEN": 48, "LE_AVC_APN_NAME_MAX_LEN_BYTES": 49,
        "LE_AVC_USERNAME_MAX_LEN": 28, "LE_AVC_USERNAME_MAX_LEN_BYTES": 29,
        "LE_AVC_PASSWORD_MAX_LEN": 28, "LE_AVC_PASSWORD_MAX_LEN_BYTES": 29,
        "LE_AVC_NUM_RETRY_TIMERS": 8, "LE_AVC_POLLING_TIMER_MAX_VAL": 525600,
        "LE_AVC_POLLING_TIMER_MIN_VAL": 0, "LE_AVC_RETRY_TIMER_MAX_VAL": 20160,
        "LE_AVC_RETRY_TIMER_MIN_VAL": 0, "LE_AVC_HTTP_STATUS_INVALID": 0xFFFF,
        "LE_AVC_COMM_INFO_STR_MAX_LEN": 256, "LE_AVC_MAX_LWM2M_RESOURCE_LEN": 512,
        "LE_AVC_MAX_LWM2M_RESOURCE_BYTES": 513, "LE_AVC_SERVER_ID_ALL_SERVERS": 0xFFFF,
        "LE_AVC_SERVER_ID_AIRVANTAGE": 1, "LE_AVC_MAX_CREDENTIAL_SIZE": 4096,
        "LE_AVC_COMM_INFO_UDP_NO_ERR": 0x00, "LE_AVC_COMM_INFO_UDP_OPEN_ERR": 0x01,
        "LE_AVC_COMM_INFO_UDP_CLOSE_ERR": 0x02, "LE_AVC_COMM_INFO_UDP_SEND_ERR": 0x03,
        "LE_AVC_COMM_INFO_UDP_RECV_ERR": 0x04, "LE_AVC_COMM_INFO_UDP_CONNECT_ERR": 0x05,
        "LE_AVC_COMM_INFO_BEARER_UP": 0x06, "LE_AVC_COMM_INFO_BEARER_DOWN": 0x07,
        "LE_AVC_COMM_INFO_PDP_CONTEXT": 0x08, "LE_AVC_COMM_INFO_COAP_201_CREATED": 0x41,
        "LE_AVC_COMM_INFO_COAP_202_DELETED": 0x42, "LE_AVC_COMM_INFO_COAP_204_CHANGED": 0x44,
        "LE_AVC_COMM_INFO_COAP_205_CONTENT": 0x45, "LE_AVC_COMM_INFO_COAP_231_CONTINUE": 0x5F,
        "LE_AVC_COMM_INFO_COAP_400_BAD_REQUEST": 0x80, "LE_AVC_COMM_INFO_COAP_401_UNAUTHORIZED": 0x81,
        "LE_AVC_COMM_INFO_COAP_402_BAD_OPTION": 0x82, "LE_AVC_COMM_INFO_COAP_404_NOT_FOUND": 0x84,
        "LE_AVC_COMM_INFO_COAP_405_METHOD_NOT_ALLOWED": 0x85,
        "LE_AVC_COMM_INFO_COAP_406_NOT_ACCEPTABLE": 0x86,
        "LE_AVC_COMM_INFO_COAP_408_REQ_ENTITY_INCOMPLETE": 0x88,
        "LE_AVC_COMM_INFO_COAP_412_PRECONDITION_FAILED": 0x8C,
        "LE_AVC_COMM_INFO_COAP_413_ENTITY_TOO_LARGE": 0x8D,
        "LE_AVC_COMM_INFO_COAP_500_INTERNAL_SERVER_ERROR": 0xA0,
        "LE_AVC_COMM_INFO_COAP_501_NOT_IMPLEMENTED": 0xA1,
        "LE_AVC_COMM_INFO_COAP_503_SERVICE_UNAVAILABLE": 0xA3,
    }

    EXPECTED_STRINGS = {
        "LE_AVC_CONFIG_TREE_ROOT": '"avcService:/"',
        "LE_AVC_CONFIG_SIM_APDU_PATH": '"SIM_APDU"',
        "LE_AVC_CONFIG_SIM_APDU_RESP_PATH": '"SIM_APDU_RESP"',
    }

    def test_enums(self) -> None:
        for typedef, want in self.EXPECTED_ENUMS.items():
            with self.subTest(typedef=typedef):
                self.assertEqual(enum_members(INCLUDE / "le_avc_common.h", typedef), want)

    def test_defines(self) -> None:
        _, defines = parse_header(INCLUDE / "le_avc_common.h")
        for name, want in self.EXPECTED_DEFINES.items():
            with self.subTest(name=name):
                self.assertIn(name, defines)
                self.assertEqual(int(defines[name], 0), want)
        for name, text in self.EXPECTED_STRINGS.items():
            with self.subTest(name=name):
                self.assertEqual(defines.get(name), text)
        comm = {n for n in defines if n.startswith("LE_AVC_COMM_INFO_") and n != "LE_AVC_COMM_INFO_STR_MAX_LEN"}
        self.assertEqual(len(comm), 26)

    def test_legato_limits(self) -> None:
        _, defines = parse_header(INCLUDE / "legato.h")
        self.assertEqual(defines["LE_LIMIT_APP_NAME_LEN"], "47")

    def test_references_and_handlers(self) -> None:
        text = (INCLUDE / "le_avc_common.h").read_text()
        for ref in ("StatusEventHandler", "SessionRequestEventHandler", "CommInfoHandler", "BlockRequest"):
            with self.subTest(ref=ref):
                self.assertRegex(text, rf"typedef struct le_avc_{ref}\* le_avc_{ref}Ref_t;")
        for fn in ("StatusHandlerFunc_t", "SessionRequestHandlerFunc_t", "CommInfoHandlerFunc_t", "DisconnectHandler_t"):
            with self.subTest(handler=fn):
                self.assertRegex(text, rf"typedef void \(\*le_avc_{fn}\)")


class EventStructTest(unittest.TestCase):
    def test_message_size_matches_header(self) -> None:
        _, defines = parse_header(INCLUDE / "avc.h")
        self.assertEqual(int(defines["AVC_EVENT_MESSAGE_MAX"]), _ffi.EVENT_MESSAGE_MAX)

    def test_layout_matches_c(self) -> None:
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if cc is None:
            self.skipTest("no C compiler to measure avc_event_t")
        fields = [name for name, _ in _ffi.AvcEvent._fields_]
        src = "#include <stdio.h>\n#include <stddef.h>\n#include \"avc.h\"\nint main(void) {\n"
        src += '    printf("%zu", sizeof(avc_event_t));\n'
        for f in fields:
            src += f'    printf(" %zu", offsetof(avc_event_t, {f}));\n'
        src += "    return 0;\n}\n"
        with tempfile.TemporaryDirectory() as d:
            c, exe = Path(d) / "layout.c", Path(d) / "layout"
            c.write_text(src)
            subprocess.run([cc, "-std=c99", f"-I{INCLUDE}", str(c), "-o", str(exe)], check=True)
            out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
        want = [ctypes.sizeof(_ffi.AvcEvent)] + [getattr(_ffi.AvcEvent, f).offset for f in fields]
        self.assertEqual([int(x) for x in out], want)


class SignatureTest(unittest.TestCase):
    """Every function the headers declare exists in libavc, is exported from
    capi/ with the same arity, and is declared in avc._ffi likewise."""

    HEADERS = ("legato.h", "le_avc_interface.h", "avc.h")

    @staticmethod
    def header_prototypes() -> dict[str, int]:
        out: dict[str, int] = {}
        for h in SignatureTest.HEADERS:
            text = re.sub(r"/\*.*?\*/", " ", (INCLUDE / h).read_text(), flags=re.S)
            text = re.sub(r"typedef[^;]*;", " ", text)
            for name, params in re.findall(r"\b((?:le|avc)_\w+)\s*\(([^()]*)\)\s*;", text):
                params = params.strip()
                out[name] = 0 if params in ("", "void") else params.count(",") + 1
        return out

    @staticmethod
    def go_exports() -> dict[str, int]:
        out: dict[str, int] = {}
        for go in (REPO / "capi").glob("*.go"):
            text = go.read_text()
            for name, params in re.findall(r"//export (\w+)\nfunc \w+\(([^)]*)\)", text):
                params = params.strip()
                if not params:
                    out[name] = 0
                    continue
                # "a, b *C.char" declares two parameters.
                out[name] = len([p for p in params.split(",") if p.strip()])
        return out

    def test_headers_match_go_exports(self) -> None:
        self.assertEqual(self.header_prototypes(), self.go_exports())

    def test_ffi_table_matches_headers(self) -> None:
        protos = self.header_prototypes()
        self.assertEqual(set(_ffi.SIGNATURES), set(protos))
        for name, (argtypes, _) in _ffi.SIGNATURES.items():
            with self.subTest(name=name):
                self.assertEqual(len(argtypes), protos[name])

    def test_library_exports_every_function(self) -> None:
        for name in self.header_prototypes():
            with self.subTest(name=name):
                self.assertTrue(hasattr(_ffi.lib, name))

    def test_all_43_le_avc_functions_are_declared(self) -> None:
        protos = self.header_prototypes()
        names = [n for n in protos if n.startswith("le_avc_")]
        self.assertEqual(len(names), 43, sorted(names))
        for name in ("le_avc_AcceptDownload", "le_avc_StartDmSession", "le_avc_GetPollingTimer"):
            self.assertIn(name, protos)


if __name__ == "__main__":
    unittest.main()
