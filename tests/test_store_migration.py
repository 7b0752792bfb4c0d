"""An emulator state directory written by the old two-bank store upgrades without losing a key.

tests/vectors/store-v1-images.json holds, among others, the two 32 KiB bank files
of a state directory written by the old firmware (seal PIN + slots 1, 5, 8, a
FIDO resident credential with hmac-secret, an OATH credential) and the DERIVE
answers the old firmware gave. The new firmware reads that directory as it is:
first in process (the built-in emulator), then as `sealtoken serve --state DIR`
behind the real pcscd + vpcd, and must give the same answers and hold the same
records, with no old-format image left in the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _support import VpcdToken, ensure_pcscd
from sealboard.emulator import EmulatedToken
from sealboard.platform import CPythonPlatform
from sealcodes.records import Enrollment
from sealcodes.backends.applet import AppletBackend
from sealcodes.backends.base import Interaction
from sealcodes.pcsc import PcscConnection
from sealtoken.core.storage import Store

VECTORS = json.loads((Path(__file__).parent / "vectors" / "store-v1-images.json").read_text())
CASE = [c for c in VECTORS["cases"] if c["name"] == "emulator-state-dir"][0]
CHALLENGE = bytes.fromhex(VECTORS["challenge_hex"])


class _Pin(Interaction):
    def request_pin(self, purpose, new=False):
        return bytes.fromhex(VECTORS["pin_hex"]).decode()


def _old_state_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    for i, raw in enumerate(CASE["banks"]):
        data = bytes.fromhex(raw)
        (path / f"flash{i}.bin").write_bytes(data + b"\xff" * (CASE["bank_size"] - len(data)))
    return path


def _records(platform):
    store = Store(platform)
    return {"%04x" % k: store.get(k).hex() for k in store.keys()}


def _answers(connection):
    backend = AppletBackend(connection)
    return {slot: bytes(backend.respond(CHALLENGE, Enrollment(backend="applet", slot=int(slot)), _Pin())).hex() for slot in CASE["derive"]}


def test_old_emulator_state_converts_in_process(tmp_path):
    state = _old_state_dir(tmp_path / "emulator")
    assert b"SLST" in (state / "flash0.bin").read_bytes() + (state / "flash1.bin").read_bytes()
    with EmulatedToken(state_dir=str(state)) as emulated:
        assert _records(emulated.platform) == CASE["records"]
        assert _answers(emulated.connect()) == CASE["derive"]
    files = (state / "flash0.bin").read_bytes() + (state / "flash1.bin").read_bytes()
    assert b"SLST" not in files and len(files) == 2 * CASE["bank_size"]
    # and again after a restart: converted once, the same
    platform = CPythonPlatform(state_dir=str(state))
    try:
        assert _records(platform) == CASE["records"]
    finally:
        platform.close()


@pytest.mark.pcsc
def test_old_state_dir_served_through_pcscd(tmp_path):
    ensure_pcscd()
    token = VpcdToken(_old_state_dir(tmp_path / "served"))
    token.start()
    try:
        connection = PcscConnection(token.reader)
        try:
            assert _answers(connection) == CASE["derive"]
        finally:
            connection.close()
    finally:
        token.stop()
    platform = CPythonPlatform(state_dir=str(token.state_dir))
    try:
        assert _records(platform) == CASE["records"]
    finally:
        platform.close()
