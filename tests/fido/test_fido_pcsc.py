"""FIDO2 through the real PC/SC stack: python-fido2's CtapPcscDevice -> pyscard -> pcscd -> vpcd
-> `sealtoken serve` -> firmware FIDO applet (NFCCTAP framing) -> CTAP2 authenticator.

And the sealcodes fido2 backend end to end over the same path with the installed CLI."""

from __future__ import annotations

import json

import pytest
from fido2.ctap import CtapError
from fido2.ctap2 import Config, Ctap2, CredentialManagement
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.pcsc import CtapPcscDevice

from _support import run_cli

from .conftest import cred_id_of, get_assertion, make_credential

pytestmark = pytest.mark.pcsc

PIN = "fido-pin-123"
SALT = bytes(range(32, 64))


_opened = []


def _device(reader):
    from smartcard.System import readers

    [r] = [r for r in readers() if str(r) == reader]
    conn = r.createConnection()
    conn.connect()
    device = CtapPcscDevice(conn, reader)
    _opened.append(device)
    return device


@pytest.fixture(autouse=True)
def _close_devices(vpcd_token):
    """Close every PC/SC handle a test opened: a handle left to the garbage collector would
    power the card down in the middle of a later test."""
    yield
    while _opened:
        try:
            _opened.pop().close()
        except Exception:
            pass


def _hmac_secret(ctap, client_pin, protocol, cred_id, token=None, uv_protocol=None):
    key_agreement, shared = client_pin._get_shared_secret()
    salt_enc = protocol.encrypt(shared, SALT)
    ext = {"hmac-secret": {1: key_agreement, 2: salt_enc, 3: protocol.authenticate(shared, salt_enc),
                           4: protocol.VERSION}}
    assertion = get_assertion(ctap, cred_ids=[cred_id], extensions=ext, token=token, protocol=uv_protocol)
    return protocol.decrypt(shared, assertion.auth_data.extensions["hmac-secret"]), assertion.auth_data.flags


@pytest.mark.parametrize("protocol_cls", [PinProtocolV1, PinProtocolV2], ids=["pin-protocol-1", "pin-protocol-2"])
def test_hmac_secret_over_pcsc_survives_restart(vpcd_token, protocol_cls):
    device = _device(vpcd_token.reader)
    ctap = Ctap2(device)
    info = ctap.info
    assert "hmac-secret" in info.extensions and {1, 2} <= set(info.pin_uv_protocols)
    protocol = protocol_cls()
    client_pin = ClientPin(ctap, protocol)
    client_pin.set_pin(PIN)
    token = client_pin.get_pin_token(PIN, ClientPin.PERMISSION.MAKE_CREDENTIAL | ClientPin.PERMISSION.GET_ASSERTION,
                                     "example.com")
    att = make_credential(ctap, rk=True, extensions={"hmac-secret": True}, token=token, protocol=protocol)
    assert att.auth_data.extensions == {"hmac-secret": True}
    cred_id = cred_id_of(att)
    without_uv, flags = _hmac_secret(ctap, client_pin, protocol, cred_id)
    assert flags & 0x01 and not flags & 0x04
    token = client_pin.get_pin_token(PIN, ClientPin.PERMISSION.GET_ASSERTION, "example.com")
    with_uv, flags = _hmac_secret(ctap, client_pin, protocol, cred_id, token, protocol)
    assert flags & 0x04
    assert len(without_uv) == len(with_uv) == 32 and without_uv != with_uv

    device.close()
    vpcd_token.restart()
    ctap = Ctap2(_device(vpcd_token.reader))
    client_pin = ClientPin(ctap, protocol)
    again, _ = _hmac_secret(ctap, client_pin, protocol, cred_id)
    assert again == without_uv


def test_pin_lockout_over_pcsc(vpcd_token):
    device = _device(vpcd_token.reader)
    ctap = Ctap2(device)
    client_pin = ClientPin(ctap, PinProtocolV2())
    client_pin.set_pin(PIN)
    codes = []
    for _ in range(3):
        with pytest.raises(CtapError) as info:
            client_pin.get_pin_token("wrong-pin-0")
        codes.append(info.value.code)
    assert codes == [CtapError.ERR.PIN_INVALID, CtapError.ERR.PIN_INVALID, CtapError.ERR.PIN_AUTH_BLOCKED]
    with pytest.raises(CtapError) as info:
        client_pin.get_pin_token(PIN)  # blocked until power cycle, even with the right PIN
    assert info.value.code == CtapError.ERR.PIN_AUTH_BLOCKED
    assert client_pin.get_pin_retries()[0] == 5
    device.close()
    vpcd_token.restart()
    client_pin = ClientPin(Ctap2(_device(vpcd_token.reader)), PinProtocolV2())
    assert client_pin.get_pin_retries()[0] == 5  # persisted across the power cycle
    assert client_pin.get_pin_token(PIN)


def test_forged_credential_and_reset_over_pcsc(vpcd_token):
    device = _device(vpcd_token.reader)
    ctap = Ctap2(device)
    cred_id = cred_id_of(make_credential(ctap, extensions={"hmac-secret": True}))
    forged = bytearray(cred_id)
    forged[-1] ^= 1
    with pytest.raises(CtapError) as info:
        get_assertion(ctap, cred_ids=[bytes(forged)])
    assert info.value.code == CtapError.ERR.NO_CREDENTIALS
    assert get_assertion(ctap, cred_ids=[cred_id]).credential["id"] == cred_id
    device.close()
    vpcd_token.restart()  # reset is allowed only just after power-up
    ctap = Ctap2(_device(vpcd_token.reader))
    ctap.reset()
    with pytest.raises(CtapError) as info:
        get_assertion(ctap, cred_ids=[cred_id])
    assert info.value.code == CtapError.ERR.NO_CREDENTIALS


def test_credential_management_and_config_over_pcsc(vpcd_token):
    """python-fido2's CredentialManagement and Config against the token behind pcscd."""
    perm = ClientPin.PERMISSION
    result = CredentialManagement.RESULT
    protocol = PinProtocolV2()
    device = _device(vpcd_token.reader)
    ctap = Ctap2(device)
    ClientPin(ctap, protocol).set_pin(PIN)
    client_pin = ClientPin(ctap, protocol)
    creds = {}
    for user in ("alice", "bob"):
        token = client_pin.get_pin_token(PIN, perm.MAKE_CREDENTIAL, "example.com")
        creds[user] = cred_id_of(make_credential(ctap, user_id=user.encode(), name=user, rk=True,
                                                 extensions={"hmac-secret": True}, token=token, protocol=protocol))
    assert len(_hmac_secret(ctap, client_pin, protocol, creds["alice"])[0]) == 32
    cm = CredentialManagement(ctap, protocol, client_pin.get_pin_token(PIN, perm.CREDENTIAL_MGMT))
    assert cm.get_metadata()[result.EXISTING_CRED_COUNT] == 2
    [rp] = cm.enumerate_rps()
    assert rp[result.RP] == {"id": "example.com"}
    listed = cm.enumerate_creds(rp[result.RP_ID_HASH])
    assert sorted(c[result.USER]["name"] for c in listed) == ["alice", "bob"]
    cm.delete_cred({"type": "public-key", "id": creds["alice"]})
    cm.update_user_info({"type": "public-key", "id": creds["bob"]}, {"id": b"bob", "name": "robert"})
    config = Config(ctap, protocol, client_pin.get_pin_token(PIN, perm.AUTHENTICATOR_CFG))
    config.toggle_always_uv()
    config.set_min_pin_length(14)   # longer than PIN: forces a change

    device.close()
    vpcd_token.restart()
    ctap = Ctap2(_device(vpcd_token.reader))
    info = ctap.info
    assert info.options["alwaysUv"] is True and info.min_pin_length == 14 and info.force_pin_change is True
    client_pin = ClientPin(ctap, protocol)
    with pytest.raises(CtapError) as e:
        client_pin.change_pin(PIN, "thirteen-char")
    assert e.value.code == CtapError.ERR.PIN_POLICY_VIOLATION
    client_pin.change_pin(PIN, "fourteen-chars")
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=[creds["bob"]])            # alwaysUv: no assertion without UV
    assert e.value.code == CtapError.ERR.PUAT_REQUIRED
    token = client_pin.get_pin_token("fourteen-chars", perm.GET_ASSERTION, "example.com")
    with pytest.raises(CtapError) as e:
        _hmac_secret(ctap, client_pin, protocol, creds["alice"], token, protocol)
    assert e.value.code == CtapError.ERR.NO_CREDENTIALS           # deleted: its hmac-secret is gone
    token = client_pin.get_pin_token("fourteen-chars", perm.GET_ASSERTION, "example.com")
    assertion = get_assertion(ctap, cred_ids=[creds["bob"]], token=token, protocol=protocol)
    assert assertion.user == {"id": b"bob", "name": "robert"}


def test_malformed_cbor_over_pcsc_gets_errors_and_token_survives(vpcd_token):
    device = _device(vpcd_token.reader)
    for request, status in [(b"\x06\xff", 0x12), (b"\x01\xa1\x01", 0x12), (b"\x02\x80", 0x11), (b"\x55", 0x01)]:

        with pytest.raises(CtapError) as info:
            _raw(device, request)
        assert info.value.code == status
    assert "FIDO_2_1" in Ctap2(device).get_info().versions


def _raw(device, request):
    from fido2.hid import CTAPHID

    response = device.call(CTAPHID.CBOR, request)
    if response[0] != 0:
        raise CtapError(response[0])
    return response


def test_fido2_backend_cli_over_pcsc(vpcd_token):
    result = run_cli("enroll", "--device", vpcd_token.reader, "--backend", "fido2")
    assert result.returncode == 0, result.stderr
    first = run_cli("generate", "vpn.example", "--json")
    assert first.returncode == 0, first.stderr
    first = json.loads(first.stdout)
    vpcd_token.restart()
    again = json.loads(run_cli("generate", "vpn.example", "--json").stdout)
    assert again == first
    recovered = run_cli("recover", "vpn.example", "--fingerprint", first["fingerprint"], "--json", "--device",
                        vpcd_token.reader)
    assert recovered.returncode == 0, recovered.stderr
    assert json.loads(recovered.stdout)["codes"] == first["codes"]


def test_a_script_enrolls_a_fresh_key_with_uv_setting_its_pin(vpcd_token, isolated_dirs):
    """docs/fido2.md: `--uv required` sets a PIN on a key that has none, at a terminal or with
    --force; without a terminal the new PIN is one line of stdin. Without --force a script is told
    how, and nothing is set."""
    reader = vpcd_token.reader
    enroll = ("enroll", "--device", reader, "--backend", "fido2", "--uv", "required")
    refused = run_cli(*enroll, input=PIN + "\n")
    assert refused.returncode == 1 and "no FIDO2 PIN" in refused.stderr and "--force" in refused.stderr
    assert Ctap2(_device(reader)).info.options["clientPin"] is False  # nothing was set
    result = run_cli(*enroll, "--force", input=PIN + "\n")
    assert result.returncode == 0, result.stderr
    assert PIN not in result.stdout + result.stderr
    assert Ctap2(_device(reader)).info.options["clientPin"] is True
    (meta,) = json.loads((isolated_dirs / "config" / "sealcodes" / "profile.json").read_text())["enrollments"].values()
    assert meta["uv"] is True
    good = run_cli("generate", "script.example", "--json", input=PIN + "\n")
    assert good.returncode == 0, good.stderr
    assert json.loads(run_cli("generate", "script.example", "--json", input=PIN + "\n").stdout) == json.loads(good.stdout)
    wrong = run_cli("generate", "script.example", "--json", input="not-" + PIN + "\n")
    assert wrong.returncode == 1 and "wrong FIDO2 PIN" in wrong.stderr
