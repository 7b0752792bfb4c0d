"""Fixtures of the PIV / OpenPGP tests: the token in process (loopback) and behind pcscd + vpcd.

`device` is the same DeviceUnderTest as in tests/yubikey (connection, power cycle,
touch policy), parametrized over both transports; `loopback` is only the in-process one
for the many detailed tests.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("yubikit")

_spec = importlib.util.spec_from_file_location(
    "_yubikey_fixtures", Path(__file__).resolve().parent.parent / "yubikey" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
DEVICE_KINDS = _fixtures.DEVICE_KINDS
DeviceUnderTest = _fixtures.DeviceUnderTest


@pytest.fixture(params=[pytest.param(kind, marks=pytest.mark.pcsc) if kind == "vpcd" else kind
                        for kind in sorted(DEVICE_KINDS)])
def device(request):
    if request.param == "vpcd":
        request.getfixturevalue("pcscd")
    dut = DEVICE_KINDS[request.param](request.param)
    yield dut
    dut.close()


@pytest.fixture
def loopback():
    dut = DeviceUnderTest("loopback")
    yield dut
    dut.close()


@pytest.fixture(params=["usb", "nfc"])
def transport(request):
    """yubikit framing: 'usb' (extended APDUs) or 'nfc' (short APDUs, chaining, 61xx)."""
    return request.param
