"""Fixtures of the yubikit-compatibility tests: one token, one connection.

Every test here gets its connection from the `device` fixture, a `DeviceUnderTest`:
the connection (a sealcodes SmartCardConnection), a way to power-cycle it, and the
user-presence policy of the token. It is parametrized by how the token is reached;
"loopback" is our firmware in this process. A PC/SC variant (pcscd + vpcd, a
`sealtoken serve` process) only has to provide the same three things.
"""

from __future__ import annotations

import pytest

yubikit = pytest.importorskip("yubikit")

from sealboard.loopback import LoopbackConnection  # noqa: E402
from sealboard.platform import CPythonPlatform  # noqa: E402
from sealcodes.backends._yubikit import yubikit_connection  # noqa: E402
from sealcodes.connection import as_connection  # noqa: E402
from sealtoken.token import Token  # noqa: E402

RNG_SEED = 4226


class DeviceUnderTest:
    """A token as the tests see it: a connection, power cycles, the user's finger."""

    def __init__(self, kind: str):
        self.kind = kind
        self.connection = None
        self.open()

    # subclasses (other transports) override these three
    def open(self):
        self.platform = CPythonPlatform(rng_seed=RNG_SEED, presence="approve")
        self.token = Token(self.platform)
        self.connection = as_connection(LoopbackConnection(self.token.card))

    def power_cycle(self):
        """Power off and on (drops every session state; the flash stays)."""
        self.connection.close()
        self.connection = as_connection(LoopbackConnection(self.token.card))

    def set_presence(self, policy: str):
        """'approve' or 'deny': what the user does when the token asks for a touch."""
        self.platform.presence = policy

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    # helpers -----------------------------------------------------------------------
    def yubikit(self, transport=None):
        """A yubikit SmartCardConnection over this device (optionally forcing usb/nfc framing)."""
        return yubikit_connection(self.connection, transport)


class VpcdDeviceUnderTest(DeviceUnderTest):
    """The same firmware as a `sealtoken serve --vpcd` process, reached through pcscd (pyscard)."""

    def open(self):
        import tempfile

        from _support import VpcdToken

        self._tmp = tempfile.TemporaryDirectory(prefix="sealtoken-vpcd-")
        self.server = VpcdToken(__import__("pathlib").Path(self._tmp.name) / "state")
        try:
            self.server.start()
            self._connect()
        except BaseException:
            self.server.stop()
            self._tmp.cleanup()
            raise

    def _connect(self):
        from sealcodes.pcsc import PcscConnection

        self.connection = PcscConnection(self.server.reader)

    def power_cycle(self):
        """Card out and in: the serving process restarts on the same flash."""
        self.connection.close()
        self.server.restart()
        self._connect()

    def set_presence(self, policy):
        """Flip the serving process's touch sensor with a signal: the card stays in the reader."""
        import signal

        self.server.process.send_signal({"approve": signal.SIGUSR1, "deny": signal.SIGUSR2}[policy])
        import time

        time.sleep(0.2)  # let the process handle the signal before the next APDU

    def close(self):
        try:
            DeviceUnderTest.close(self)
        finally:
            try:
                self.server.stop()
            finally:
                self._tmp.cleanup()


DEVICE_KINDS = {"loopback": DeviceUnderTest, "vpcd": VpcdDeviceUnderTest}


@pytest.fixture(params=[pytest.param("loopback"), pytest.param("vpcd", marks=pytest.mark.pcsc)])
def device(request):
    if request.param == "vpcd":
        request.getfixturevalue("pcscd")
    dut = DEVICE_KINDS[request.param](request.param)
    try:
        yield dut
    finally:
        dut.close()


@pytest.fixture
def connection(device):
    """The sealcodes SmartCardConnection of `device`."""
    return device.connection


@pytest.fixture(params=["usb", "nfc"])
def transport(request):
    """yubikit framing: 'usb' (extended APDUs) or 'nfc' (short APDUs, chaining, 61xx/SEND REMAINING)."""
    return request.param
