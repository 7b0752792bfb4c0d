"""End to end over the real PC/SC stack: installed `sealcodes` -> pyscard -> pcscd -> vpcd ->
`sealtoken serve` -> firmware PIV / OpenPGP applets. Keys the test made are imported into the card,
so the codes are checked against an independent computation from the private keys."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from _support import run_cli
from sealcodes import derivation

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _independent_ecdh as independent  # noqa: E402

pytestmark = pytest.mark.pcsc

PIV_PIN = "123456"
USER_PIN = "123456"
ADMIN_PIN = "12345678"


def _json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _import_keys(reader, piv_key, pgp_key):
    """Put the test's keys on the card with yubikit over pcscd (what `ykman` would do)."""
    from yubikit.openpgp import KEY_REF, OpenPgpSession
    from yubikit.piv import SLOT, PivSession

    from sealcodes.backends._yubikit import yubikit_connection
    from sealcodes.pcsc import PcscConnection

    with PcscConnection(reader) as conn:
        piv = PivSession(yubikit_connection(conn))
        piv.authenticate(bytes(range(1, 9)) * 4)
        piv.put_key(SLOT.KEY_MANAGEMENT, piv_key)
        pgp = OpenPgpSession(yubikit_connection(conn))
        pgp.verify_admin(ADMIN_PIN)
        pgp.put_key(KEY_REF.DEC, pgp_key)


def _expected_codes(curve, key, label, count=10):
    response = independent.derive(curve, key.private_numbers().private_value, derivation.challenge(label, 0))
    return derivation.derive(bytes.fromhex(response["response"]), label, 0, "base32-16", count)


def test_enroll_piv_and_openpgp_generate_restart_same_codes(vpcd_token, isolated_dirs):
    piv_key = ec.generate_private_key(ec.SECP256R1())
    pgp_key = ec.generate_private_key(ec.SECP384R1())
    _import_keys(vpcd_token.reader, piv_key, pgp_key)

    listed = run_cli("devices")
    assert listed.returncode == 0
    line = next(x for x in listed.stdout.splitlines() if x.startswith(vpcd_token.reader))
    assert "piv" in line and "openpgp" in line

    for backend in ("piv", "openpgp"):
        result = run_cli("enroll", "--device", vpcd_token.reader, "--backend", backend, "--adopt")
        assert result.returncode == 0, result.stderr
        assert f"Enrolled {backend}:" in result.stdout
    profile = json.loads((isolated_dirs / "config" / "sealcodes" / "profile.json").read_text())
    fingerprints = {m["backend"]: m["key_fingerprint"] for m in profile["enrollments"].values()}
    assert fingerprints["piv"] == independent.derive("P-256", piv_key.private_numbers().private_value,
                                                     bytes(32))["key_fingerprint"]

    first_piv = _json(run_cli("generate", "github.com/alice", "--backend", "piv", "--json", input=PIV_PIN + "\n"))
    first_pgp = _json(run_cli("generate", "vpn", "--backend", "openpgp", "--json", input=USER_PIN + "\n"))
    assert first_piv["codes"] == _expected_codes("P-256", piv_key, "github.com/alice").codes
    assert first_pgp["codes"] == _expected_codes("P-384", pgp_key, "vpn").codes

    vpcd_token.restart()  # card out, card in: same flash, no session state
    assert _json(run_cli("generate", "github.com/alice", "--json", input=PIV_PIN + "\n")) == first_piv
    assert _json(run_cli("generate", "vpn", "--json", input=USER_PIN + "\n")) == first_pgp

    # recover without the profile: the public key is read from the card
    for backend, first in (("piv", first_piv), ("openpgp", first_pgp)):
        result = run_cli("--profile", str(isolated_dirs / "none.json"), "recover", first["label"],
                         "--fingerprint", first["fingerprint"], "--device", vpcd_token.reader,
                         "--backend", backend, "--json", input=PIV_PIN + "\n")
        assert _json(result)["codes"] == first["codes"]

    # no PIN or code ever reaches the profile
    text = (isolated_dirs / "config" / "sealcodes" / "profile.json").read_text()
    for code in first_piv["codes"] + first_pgp["codes"]:
        assert code not in text


def test_generated_keys_wrong_pin_and_replaced_key(vpcd_token, isolated_dirs):
    reader = vpcd_token.reader
    # without --force and without a terminal, nothing is generated
    refused = run_cli("enroll", "--device", reader, "--backend", "piv")
    assert refused.returncode != 0 and "not confirmed" in refused.stderr
    assert "Traceback" not in refused.stderr
    result = run_cli("enroll", "--device", reader, "--backend", "piv", "--force", "--curve", "P-384")
    assert result.returncode == 0, result.stderr
    result = run_cli("enroll", "--device", reader, "--backend", "openpgp", "--force", input=ADMIN_PIN + "\n")
    assert result.returncode == 0, result.stderr

    first = _json(run_cli("generate", "a", "--backend", "openpgp", "--json", input=USER_PIN + "\n"))
    vpcd_token.restart()
    assert _json(run_cli("generate", "a", "--json", input=USER_PIN + "\n")) == first

    wrong = run_cli("generate", "b", "--backend", "piv", input="000000\n")
    assert wrong.returncode != 0 and "wrong PIV PIN (2 tries left)" in wrong.stderr
    assert "000000" not in wrong.stderr + wrong.stdout and "Traceback" not in wrong.stderr

    # the PIV key replaced behind the profile's back: clear error before any PIN is read
    _import_keys(reader, ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1()))
    for label, backend in (("c", "piv"), ("a", "openpgp")):
        args = ("generate", label) + (("--backend", backend) if label == "c" else ())
        result = run_cli(*args, input="")  # empty stdin: a PIN prompt would fail differently
        assert result.returncode != 0
        assert "not the enrolled one" in result.stderr and "no PIN was sent" in result.stderr
