"""What the firmware keeps in RAM is what it uses (issue 21, "fit"): applets are imported on their first
SELECT, the authenticator's command modules on their first request, and getInfo is built once for the
state it shows. Each check runs in a fresh interpreter, so that no other test has imported anything."""

from __future__ import annotations

import subprocess
import sys

import pytest

APPLETS = ["sealtoken.applets.seal", "sealtoken.applets.oath", "sealtoken.applets.otp", "sealtoken.applets.piv",
           "sealtoken.applets.openpgp"]
FIDO_PARTS = ["sealtoken.fido.make_credential", "sealtoken.fido.get_assertion", "sealtoken.fido.info",
              "sealtoken.fido.clientpin", "sealtoken.fido.credmgmt", "sealtoken.fido.config",
              "sealtoken.fido.credentials"]

SCRIPT = """
import sys
from sealtoken.core.iso7816 import encode_apdu
from sealtoken.core.simplatform import SimPlatform
from sealtoken.token import Token

def loaded():
    return sorted(m for m in sys.modules if m in %r)

token = Token(SimPlatform(seed=3))
print("token", loaded())
%s
print("after", loaded())
"""


def _loaded(action):
    code = SCRIPT % (APPLETS + FIDO_PARTS, action)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    return eval(lines["token"]), eval(lines["after"])  # noqa: S307 (our own printed lists)


def test_token_imports_no_applet_and_no_command_module():
    before, _ = _loaded("")
    assert before == []


@pytest.mark.parametrize("aid, module", [
    ("f05345414c434f444553", "sealtoken.applets.seal"), ("a0000005272101", "sealtoken.applets.oath"),
    ("a0000005272001", "sealtoken.applets.otp"), ("a000000308", "sealtoken.applets.piv"),
    ("d27600012401", "sealtoken.applets.openpgp")])
def test_an_applet_is_imported_on_its_first_select(aid, module):
    select = f"assert token.card.process_apdu(encode_apdu(0, 0xA4, 4, 0, bytes.fromhex({aid!r}), 256))[-2:].hex() == '9000'"
    _, after = _loaded(select)
    assert module in after
    assert [m for m in after if m in APPLETS and m != module] == []


def test_get_info_imports_only_what_it_needs():
    _, after = _loaded("assert token.authenticator.process(bytes([4]))[0] == 0")
    assert "sealtoken.fido.info" in after
    for module in ("sealtoken.fido.make_credential", "sealtoken.fido.get_assertion", "sealtoken.fido.credmgmt",
                   "sealtoken.fido.credentials") + tuple(APPLETS):
        assert module not in after


def test_get_info_is_built_once_for_the_state_it_shows():
    from sealtoken.core.simplatform import SimPlatform
    from sealtoken.core.storage import Store
    from sealtoken.fido.ctap2 import Authenticator
    from sealtoken.core import cbor

    platform = SimPlatform(seed=b"info")
    auth = Authenticator(platform, Store(platform))
    first = auth.process(b"\x04")
    assert auth.process(b"\x04") is first   # the same bytes, not built again
    assert cbor.decode(first[1:])[4]["alwaysUv"] is False
    assert auth.process(b"\x0d" + cbor.encode({1: 2})) == b"\x00"   # toggleAlwaysUv (no PIN: no auth)
    changed = auth.process(b"\x04")
    assert changed is not first and cbor.decode(changed[1:])[4]["alwaysUv"] is True
    assert auth.process(b"\x04") is changed
