"""tests/vectors/yubiotp-v1.json (docs/spec.md section 3): what a YubiKey OTP slot answers to a v1
challenge, with HMAC_LT64 (as sealcodes and ykman program slots) and without it (a slot programmed
otherwise and adopted). Checked through sealcodes' `yubiotp` backend and yubikit against our
firmware's OTP applet, and by the independent implementation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from yubikit.yubiotp import HmacSha1SlotConfiguration, YubiOtpSession

import _independent_v1 as independent
from sealcodes import derivation
from sealcodes.backends.base import Interaction
from sealcodes.backends.yubiotp import YubiOtpBackend
from sealcodes.enrollment import make_options

VECTORS = json.loads((Path(__file__).resolve().parent.parent / "vectors" / "yubiotp-v1.json").read_text())
KEY = bytes.fromhex(VECTORS["key"])


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: f"epoch-{c['epoch']}")
def test_independent_padding_and_responses(case):
    challenge = bytes.fromhex(case["challenge"])
    assert independent.challenge(case["label"], case["epoch"]) == challenge
    assert independent.yubiotp_block(challenge).hex() == case["block"]
    assert independent.yubiotp_response(KEY, challenge, lt64=True).hex() == case["response_lt64"]
    assert independent.yubiotp_response(KEY, challenge, lt64=False).hex() == case["response_without_lt64"]


@pytest.mark.parametrize("lt64", [True, False], ids=["lt64", "without-lt64"])
def test_the_backend_against_the_firmware(device, lt64):
    """The slot programmed with yubikit (as `ykman otp chalresp` would), adopted by sealcodes: R is
    what the vectors say for both challenges, the one padded with 0x00 and the one padded with 0x01."""
    YubiOtpSession(device.yubikit()).put_configuration(2, HmacSha1SlotConfiguration(KEY).lt64(lt64))
    backend = YubiOtpBackend(device.connection)
    enrollment = backend.enroll(Interaction(), make_options("yubiotp", {"adopt": True}))
    for case in VECTORS["cases"]:
        challenge = derivation.challenge(case["label"], case["epoch"])
        answer = YubiOtpBackend(device.connection).respond(challenge, enrollment, Interaction())
        assert bytes(answer).hex() == case["response_lt64" if lt64 else "response_without_lt64"]
