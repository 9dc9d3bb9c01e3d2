"""Update control (le_avc Accept/Defer, timers, APN, agreements, blocks)
without a server: the documented exceptions and the kept values."""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _support, however the tests are run
from _support import quiet_avc_logger  # noqa: E402

import avc  # noqa: E402

quiet_avc_logger()


class ControlWithoutSessionTest(unittest.TestCase):
    def test_accept_and_defer_outside_pending_raise_fault(self) -> None:
        for fn in (avc.accept_download, avc.accept_install, avc.accept_uninstall, avc.accept_reboot):
            with self.subTest(fn=fn.__name__), self.assertRaises(avc.FaultError):
                fn()
        for fn in (avc.defer_download, avc.defer_install, avc.defer_uninstall, avc.defer_reboot, avc.defer_connect):
            with self.subTest(fn=fn.__name__), self.assertRaises(avc.FaultError):
                fn(10)
        self.assertIsNone(avc.pending_update_type())
        with self.assertRaises(avc.FaultError):
            avc.check_route()

    def test_read_resource_needs_a_session(self) -> None:
        with self.assertRaises(avc.FaultError):
            avc.read_lwm2m_resource(3, 0, 0)

    def test_polling_timer(self) -> None:
        with self.assertRaises(avc.OutOfRangeError) as cm:
            avc.set_polling_timer(525601)
        self.assertEqual(cm.exception.result, avc.Result.OUT_OF_RANGE)
        avc.set_polling_timer(525600)
        self.assertEqual(avc.get_polling_timer(), 525600)
        avc.set_polling_timer(0)
        self.assertEqual(avc.get_polling_timer(), 0)

    def test_retry_timers(self) -> None:
        before = avc.get_retry_timers()
        self.assertEqual(len(before), avc.NUM_RETRY_TIMERS)
        with self.assertRaises(avc.FaultError):
            avc.set_retry_timers([1] * 7)
        with self.assertRaises(avc.OutOfRangeError):
            avc.set_retry_timers([1, 2, 3, 4, 5, 6, 7, 20161])
        self.assertEqual(avc.get_retry_timers(), before)
        avc.set_retry_timers([15, 60, 240, 480, 1440, 2880, 0, 0])
        self.assertEqual(avc.get_retry_timers(), [15, 60, 240, 480, 1440, 2880, 0, 0])

    def test_apn(self) -> None:
        with self.assertRaises(avc.AvcOverflowError):
            avc.set_apn_config("a" * 49)
        avc.set_apn_config("internet", "user", "pw")
        self.assertEqual(avc.get_apn_config(), ("internet", "user", "pw"))
        avc.set_apn_config("")

    def test_user_agreement(self) -> None:
        for what in avc.UserAgreement:
            avc.set_user_agreement(what, True)
            self.assertTrue(avc.get_user_agreement(what))
            avc.set_user_agreement(what, False)
            self.assertFalse(avc.get_user_agreement(what))

    def test_block_install(self) -> None:
        with avc.block_install() as b:
            self.assertIsInstance(b, avc.BlockHandle)
        b.release()  # twice: harmless

    def test_getters(self) -> None:
        self.assertEqual(avc.http_status(), avc.HTTP_STATUS_INVALID)
        self.assertEqual(avc.error_code(), avc.ErrorCode.NONE)
        self.assertFalse(avc.is_session_started())
        self.assertIn(avc.credential_status(), list(avc.CredentialStatus))

    def test_comm_info_handler(self) -> None:
        h = avc.add_comm_info_handler(lambda code, text: None)
        avc.remove_comm_info_handler(h)
        avc.remove_comm_info_handler(h)


if __name__ == "__main__":
    unittest.main()
