"""clientPIN with PIN/UV auth protocols 1 and 2 (docs/protocols.md section 5, docs/security.md item 13)."""

from __future__ import annotations

import hashlib

import pytest
from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.server import Fido2Server
from fido2.webauthn import (
    AuthenticatorData,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity,
    UserVerificationRequirement,
)
from .conftest import CDH, RP_ID, cred_id_of, get_assertion, make_credential
from sealtoken.core.keys import FIDO_KEY_PIN_RETRIES
from sealtoken.fido.const import CTAP2_TOKEN_LIFETIME_MS

ERR = CtapError.ERR
PIN = "4711-sealcodes"
PROTOCOLS = [PinProtocolV1, PinProtocolV2]
MC, GA = ClientPin.PERMISSION.MAKE_CREDENTIAL, ClientPin.PERMISSION.GET_ASSERTION


def _code(excinfo):
    return excinfo.value.code


def _with_pin(fido, pin=PIN, protocol=PinProtocolV2):
    ctap = fido.ctap2()
    ClientPin(ctap, protocol()).set_pin(pin)
    return Ctap2(fido.device)  # fresh info: clientPin true


def _token(ctap, protocol, pin=PIN, permissions=MC | GA, rp_id=RP_ID):
    return ClientPin(ctap, protocol()).get_pin_token(pin, permissions, rp_id)


def _retries(ctap):
    return ClientPin(ctap).get_pin_retries()[0]


# --- set, change, tokens ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_set_pin_and_use_it(fido, protocol):
    ctap = fido.ctap2()
    assert ctap.info.options["clientPin"] is False
    with pytest.raises(CtapError) as e:
        _token(ctap, protocol)
    assert _code(e) == ERR.PIN_NOT_SET
    ctap = _with_pin(fido, protocol=protocol)
    assert ctap.info.options["clientPin"] is True
    assert _retries(ctap) == 8
    with pytest.raises(CtapError) as e:
        ClientPin(ctap, protocol()).set_pin("another one")
    assert _code(e) == ERR.NOT_ALLOWED

    # makeCredential now needs the PIN
    with pytest.raises(CtapError) as e:
        make_credential(ctap)
    assert _code(e) == ERR.PUAT_REQUIRED
    p = protocol()
    token = _token(ctap, protocol)
    assert len(token) == 32
    att = make_credential(ctap, token=token, protocol=p, rk=True)
    flags = AuthenticatorData.FLAG
    assert att.auth_data.flags == flags.UP | flags.UV | flags.AT
    # getAssertion: with a fresh token UV, without a token still allowed (UP only)
    token = _token(ctap, protocol)
    verified = get_assertion(ctap, token=token, protocol=p)
    assert verified.auth_data.flags == flags.UP | flags.UV
    assert verified.user == {"id": b"user-1", "name": "alice", "displayName": "Alice"}
    plain = get_assertion(ctap, cred_ids=[cred_id_of(att)])
    assert plain.auth_data.flags == flags.UP
    for a in (verified, plain):
        a.verify(CDH, att.auth_data.credential_data.public_key)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_legacy_get_pin_token(fido, protocol):
    ctap = _with_pin(fido)
    token = ClientPin(ctap, protocol()).get_pin_token(PIN)  # subcommand 05: mc + ga, any RP
    p = protocol()
    att = make_credential(ctap, token=token, protocol=p, rp_id="a.example")
    token = ClientPin(ctap, protocol()).get_pin_token(PIN)
    get_assertion(ctap, rp_id="a.example", cred_ids=[cred_id_of(att)], token=token, protocol=p)
    # permissions with subcommand 05 are refused
    with pytest.raises(CtapError) as e:
        _raw_client_pin(ctap, protocol, 0x05, permissions=GA)
    assert _code(e) == ERR.INVALID_PARAMETER


def _raw_client_pin(ctap, protocol, sub, pin=PIN, permissions=None, rp_id=None):
    """clientPIN getPinToken(-like) request built by hand."""
    p = protocol()
    key_agreement, secret = ClientPin(ctap, p)._get_shared_secret()
    pin_hash_enc = p.encrypt(secret, hashlib.sha256(pin.encode()).digest()[:16])
    return ctap.client_pin(p.VERSION, sub, key_agreement=key_agreement, pin_hash_enc=pin_hash_enc,
                           permissions=permissions, permissions_rpid=rp_id)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_change_pin(fido, protocol):
    ctap = _with_pin(fido)
    p = protocol()
    old_token = _token(ctap, protocol)
    ClientPin(ctap, p).change_pin(PIN, "new-pin-1")
    # tokens from before the change are void
    with pytest.raises(CtapError) as e:
        make_credential(ctap, token=old_token, protocol=p)
    assert _code(e) == ERR.PIN_AUTH_INVALID
    with pytest.raises(CtapError) as e:
        _token(ctap, protocol)
    assert _code(e) == ERR.PIN_INVALID
    make_credential(ctap, token=_token(ctap, protocol, pin="new-pin-1"), protocol=p)
    assert _retries(ctap) == 8
    # changing with a wrong current PIN costs a try
    with pytest.raises(CtapError) as e:
        ClientPin(ctap, p).change_pin("wrong-pin", "whatever1")
    assert _code(e) == ERR.PIN_INVALID
    assert _retries(ctap) == 7


def test_change_pin_without_pin(fido):
    with pytest.raises(CtapError) as e:
        ClientPin(fido.ctap2()).change_pin(PIN, "new-pin-1")
    assert _code(e) == ERR.PIN_NOT_SET


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pin_policy(fido, protocol):
    ctap = fido.ctap2()
    p = protocol()
    cp = ClientPin(ctap, p)

    def set_padded(padded):
        key_agreement, secret = cp._get_shared_secret()
        enc = p.encrypt(secret, padded)
        ctap.client_pin(p.VERSION, ClientPin.CMD.SET_PIN, key_agreement=key_agreement, new_pin_enc=enc,
                        pin_uv_param=p.authenticate(secret, enc))

    for padded, code in [
        (b"123".ljust(64, b"\0"), ERR.PIN_POLICY_VIOLATION),               # 3 code points
        ("\u00e4\u00f6\u00fc".encode().ljust(64, b"\0"), ERR.PIN_POLICY_VIOLATION),  # 6 bytes, 3 code points
        (b"\xff\xfe\xfd\xfc".ljust(64, b"\0"), ERR.PIN_POLICY_VIOLATION),  # not UTF-8
        (b"7" * 64, ERR.PIN_POLICY_VIOLATION),                             # 64 bytes
        (b"1234".ljust(48, b"\0"), ERR.INVALID_PARAMETER),                 # not padded to 64
        (b"1234".ljust(80, b"\0"), ERR.INVALID_PARAMETER),
    ]:
        with pytest.raises(CtapError) as e:
            set_padded(padded)
        assert _code(e) == code, padded
    assert ClientPin.is_supported(Ctap2(fido.device).info) and not Ctap2(fido.device).info.options["clientPin"]
    # 4 code points in 8 bytes, and 63 bytes, are fine
    set_padded("\u00e4\u00f6\u00fc\u00df".encode().ljust(64, b"\0"))
    ctap = Ctap2(fido.device)
    _token(ctap, protocol, pin="\u00e4\u00f6\u00fc\u00df")
    ClientPin(ctap, p).change_pin("\u00e4\u00f6\u00fc\u00df", "8" * 63)
    _token(ctap, protocol, pin="8" * 63)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_set_pin_bad_auth(fido, protocol):
    ctap = fido.ctap2()
    p = protocol()
    key_agreement, secret = ClientPin(ctap, p)._get_shared_secret()
    enc = p.encrypt(secret, b"12345678".ljust(64, b"\0"))
    bad = bytearray(p.authenticate(secret, enc))
    bad[0] ^= 1
    for param in (bytes(bad), bytes(bad[:8]), b"\0" * 32):
        with pytest.raises(CtapError) as e:
            ctap.client_pin(p.VERSION, ClientPin.CMD.SET_PIN, key_agreement=key_agreement, new_pin_enc=enc,
                            pin_uv_param=param)
        assert _code(e) == ERR.PIN_AUTH_INVALID
    assert Ctap2(fido.device).info.options["clientPin"] is False


# --- permissions and RP binding ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_permissions(fido, protocol):
    ctap = _with_pin(fido)
    p = protocol()
    att = make_credential(ctap, token=_token(ctap, protocol), protocol=p)
    cred = [cred_id_of(att)]

    ga_only = _token(ctap, protocol, permissions=GA)
    with pytest.raises(CtapError) as e:
        make_credential(ctap, token=ga_only, protocol=p)
    assert _code(e) == ERR.PIN_AUTH_INVALID

    mc_only = _token(ctap, protocol, permissions=MC)
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=cred, token=mc_only, protocol=p)
    assert _code(e) == ERR.PIN_AUTH_INVALID

    cm = _token(ctap, protocol, permissions=ClientPin.PERMISSION.CREDENTIAL_MGMT, rp_id=None)
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=cred, token=cm, protocol=p)
    assert _code(e) == ERR.PIN_AUTH_INVALID
    _token(ctap, protocol, permissions=ClientPin.PERMISSION.AUTHENTICATOR_CFG, rp_id=None)

    for unsupported in (ClientPin.PERMISSION.BIO_ENROLL, ClientPin.PERMISSION.LARGE_BLOB_WRITE,
                        ClientPin.PERMISSION.PERSISTENT_CREDENTIAL_MGMT | GA):
        with pytest.raises(CtapError) as e:
            _token(ctap, protocol, permissions=unsupported)
        assert _code(e) == ERR.UNAUTHORIZED_PERMISSION
    with pytest.raises(CtapError) as e:
        _raw_client_pin(ctap, protocol, 0x09, permissions=0)
    assert _code(e) == ERR.INVALID_PARAMETER
    with pytest.raises(CtapError) as e:
        _raw_client_pin(ctap, protocol, 0x09)  # no permissions at all
    assert _code(e) == ERR.MISSING_PARAMETER
    assert _retries(ctap) == 8  # none of that cost a try


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rp_binding(fido, protocol):
    ctap = _with_pin(fido)
    p = protocol()
    token = _token(ctap, protocol, rp_id="a.example")
    with pytest.raises(CtapError) as e:
        make_credential(ctap, rp_id="b.example", token=token, protocol=p)
    assert _code(e) == ERR.PIN_AUTH_INVALID
    make_credential(ctap, rp_id="a.example", token=token, protocol=p)
    # a token without RP ID is bound by its first use
    token = _token(ctap, protocol, rp_id=None)
    att = make_credential(ctap, rp_id="c.example", token=token, protocol=p,
                          options={"up": True})
    token2 = _token(ctap, protocol, rp_id=None, permissions=GA)
    get_assertion(ctap, rp_id="c.example", cred_ids=[cred_id_of(att)], token=token2, protocol=p,
                  options={"up": False})
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, rp_id="d.example", cred_ids=[b"x"], token=token2, protocol=p, options={"up": False})
    assert _code(e) == ERR.PIN_AUTH_INVALID


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_token_rules(fido, protocol, monkeypatch):
    ctap = _with_pin(fido)
    p = protocol()
    token = _token(ctap, protocol)
    att = make_credential(ctap, token=token, protocol=p)
    cred = [cred_id_of(att)]
    # used up by the makeCredential that collected a touch
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=cred, token=token, protocol=p)
    assert _code(e) == ERR.PIN_AUTH_INVALID
    # a pre-flight (up=false) does not use it up
    token = _token(ctap, protocol)
    for _ in range(2):
        get_assertion(ctap, cred_ids=cred, token=token, protocol=p, cdh=b"\0" * 32, options={"up": False})
    get_assertion(ctap, cred_ids=cred, token=token, protocol=p)
    # valid only with the protocol it came with
    token = _token(ctap, protocol)
    other = PinProtocolV2() if protocol is PinProtocolV1 else PinProtocolV1()
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=cred, token=token, protocol=other)
    assert _code(e) == ERR.PIN_AUTH_INVALID
    # a new token voids the old one
    newer = _token(ctap, protocol)
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=cred, token=token, protocol=p)
    assert _code(e) == ERR.PIN_AUTH_INVALID
    # a wrong MAC, and an unsupported protocol
    with pytest.raises(CtapError) as e:
        ctap.get_assertion(RP_ID, CDH, [{"type": "public-key", "id": cred[0]}], None, None,
                           b"\0" * len(p.authenticate(newer, CDH)), p.VERSION)
    assert _code(e) == ERR.PIN_AUTH_INVALID
    with pytest.raises(CtapError) as e:
        ctap.get_assertion(RP_ID, CDH, [{"type": "public-key", "id": cred[0]}], None, None,
                           p.authenticate(newer, CDH), 3)
    assert _code(e) == ERR.INVALID_PARAMETER
    with pytest.raises(CtapError) as e:
        ctap.get_assertion(RP_ID, CDH, None, None, None, p.authenticate(newer, CDH), None)
    assert _code(e) == ERR.MISSING_PARAMETER
    # power off voids it
    fido.power_cycle()
    ctap = fido.ctap2()
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=cred, token=newer, protocol=p)
    assert _code(e) == ERR.PIN_AUTH_INVALID
    # and it expires
    token = _token(ctap, protocol)
    now = fido.platform.now_ms()
    monkeypatch.setattr(fido.platform, "now_ms", lambda: now + CTAP2_TOKEN_LIFETIME_MS + 1000)
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=cred, token=token, protocol=p)
    assert _code(e) == ERR.PIN_AUTH_INVALID


def test_pin_uv_auth_param_without_pin(fido):
    ctap = fido.ctap2()
    with pytest.raises(CtapError) as e:
        make_credential(ctap, token=b"\0" * 32, protocol=PinProtocolV2())
    assert _code(e) == ERR.PIN_NOT_SET


def test_legacy_selection_probe_with_pin(fido):
    ctap = _with_pin(fido)
    with pytest.raises(CtapError) as e:
        ctap.get_assertion(RP_ID, CDH, None, None, None, b"", 2)
    assert _code(e) == ERR.PIN_INVALID


# --- wrong PINs: retries, consecutive misses, blocking ---------------------------------------------


def test_key_agreement_stable_until_a_miss(fido):
    ctap = _with_pin(fido)
    get_ka = lambda: ctap.client_pin(2, ClientPin.CMD.GET_KEY_AGREEMENT)[1]  # noqa: E731
    first = get_ka()
    assert first == get_ka()
    assert first[1] == 2 and first[3] == -25 and first[-1] == 1
    _token(ctap, PinProtocolV2)  # a right PIN keeps it
    assert get_ka() == first
    with pytest.raises(CtapError):
        _token(ctap, PinProtocolV2, pin="wrong-pin")
    after_miss = get_ka()
    assert after_miss != first
    fido.power_cycle()
    ctap = fido.ctap2()
    assert get_ka() != after_miss


def test_one_ecdh_per_platform_key_while_the_key_agreement_key_lasts(fido, monkeypatch):
    # a PIN token and then hmac-secret with the same platform key cost one ECDH (a board spends
    # most of a second on one); a wrong PIN drops the key-agreement key and the shared point with it
    ctap = _with_pin(fido)
    calls = []
    real = fido.platform.p256_ecdh
    monkeypatch.setattr(fido.platform, "p256_ecdh", lambda *args: calls.append(1) or real(*args))
    client = ClientPin(ctap, PinProtocolV2())
    key_agreement, shared = client._get_shared_secret()

    def token_request(pin):
        pin_hash_enc = client.protocol.encrypt(shared, hashlib.sha256(pin.encode()).digest()[:16])
        return ctap.client_pin(2, ClientPin.CMD.GET_TOKEN_USING_PIN, key_agreement=key_agreement,
                               pin_hash_enc=pin_hash_enc, permissions=MC | GA, permissions_rpid=RP_ID)

    token_request(PIN)
    token_request(PIN)
    assert len(calls) == 1
    with pytest.raises(CtapError) as e:
        token_request("wrong-pin")
    assert _code(e) == ERR.PIN_INVALID and len(calls) == 1
    with pytest.raises(CtapError) as e:  # the same platform key meets a new key-agreement key
        token_request(PIN)
    assert _code(e) == ERR.PIN_INVALID and len(calls) == 2
    fido.power_cycle()
    ctap = fido.ctap2()
    client = ClientPin(ctap, PinProtocolV2())
    key_agreement, shared = client._get_shared_secret()
    token_request(PIN)
    assert len(calls) == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_lockout(fido, protocol):
    ctap = _with_pin(fido)

    def attempt(pin):
        with pytest.raises(CtapError) as e:
            _token(ctap, protocol, pin=pin)
        return _code(e)

    assert attempt("wrong-1") == ERR.PIN_INVALID
    assert _retries(ctap) == 7
    assert attempt("wrong-2") == ERR.PIN_INVALID
    assert attempt("wrong-3") == ERR.PIN_AUTH_BLOCKED  # third in a row
    assert ClientPin(ctap).get_pin_retries() == (5, True)
    # blocked until power cycle, even for the right PIN, and without spending tries
    assert attempt(PIN) == ERR.PIN_AUTH_BLOCKED
    assert _retries(ctap) == 5
    fido.power_cycle()
    ctap = fido.ctap2()
    assert ClientPin(ctap).get_pin_retries() == (5, False)
    _token(ctap, protocol)  # the right PIN resets the counter
    assert _retries(ctap) == 8

    codes = []
    for i in range(8):
        if i and i % 3 == 0:
            fido.power_cycle()
            ctap = fido.ctap2()
        codes.append(attempt(f"wrong-{i}"))
    assert codes == [ERR.PIN_INVALID, ERR.PIN_INVALID, ERR.PIN_AUTH_BLOCKED] * 2 + [ERR.PIN_INVALID, ERR.PIN_BLOCKED]
    assert _retries(ctap) == 0
    # blocked for good: the right PIN, a power cycle, a restart, changePIN do not help
    assert attempt(PIN) == ERR.PIN_BLOCKED
    fido.restart()
    ctap = fido.ctap2()
    assert attempt(PIN) == ERR.PIN_BLOCKED
    with pytest.raises(CtapError) as e:
        ClientPin(ctap, protocol()).change_pin(PIN, "new-pin-1")
    assert _code(e) == ERR.PIN_BLOCKED
    assert _retries(ctap) == 0
    # only reset helps
    ctap.reset()
    ctap = Ctap2(fido.device)
    assert ctap.info.options["clientPin"] is False
    assert _retries(ctap) == 8


def test_retries_survive_restart(fido):
    ctap = _with_pin(fido)
    for pin in ("wrong-1", "wrong-2"):
        with pytest.raises(CtapError):
            _token(ctap, PinProtocolV2, pin=pin)
    fido.restart()
    ctap = fido.ctap2()
    assert _retries(ctap) == 6
    _token(ctap, PinProtocolV2)
    assert _retries(ctap) == 8


class _PowerCut(BaseException):
    pass


@pytest.mark.parametrize("pin", [PIN, "wrong-pin"])
def test_try_is_persisted_before_the_comparison(fido, pin):
    """Power cut right after the retry counter was written: the try is spent, right PIN or not."""
    if fido.kind != "direct":
        pytest.skip("white-box: the cut is simulated inside the authenticator's call")
    ctap = _with_pin(fido)
    store = fido.store
    real_update = store.update
    writes = []

    def update(changes, scrub=False):
        real_update(changes, scrub)
        writes.append(dict(changes))
        if FIDO_KEY_PIN_RETRIES in changes:
            raise _PowerCut()

    store.update = update
    with pytest.raises(_PowerCut):
        _token(ctap, PinProtocolV2, pin=pin)
    # the first thing written was the decremented counter, and nothing after it
    assert writes == [{FIDO_KEY_PIN_RETRIES: bytes([7])}]
    fido.restart()
    assert _retries(fido.ctap2()) == 7


def test_wrong_pin_is_written_before_the_answer(fido):
    ctap = _with_pin(fido)
    with pytest.raises(CtapError):
        _token(ctap, PinProtocolV1, pin="wrong-pin")
    # what is in flash (a fresh Store reads the banks) already counts the miss
    from sealtoken.core.storage import Store

    assert Store(fido.platform).get(FIDO_KEY_PIN_RETRIES) == bytes([7])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_pin_hash_costs_no_try(fido, protocol):
    ctap = _with_pin(fido)
    p = protocol()
    key_agreement, secret = ClientPin(ctap, p)._get_shared_secret()
    for pin_hash_enc in (b"", b"\0" * 15, p.encrypt(secret, b"\0" * 32)):
        with pytest.raises(CtapError) as e:
            ctap.client_pin(p.VERSION, ClientPin.CMD.GET_TOKEN_USING_PIN_LEGACY, key_agreement=key_agreement,
                            pin_hash_enc=pin_hash_enc)
        assert _code(e) == ERR.INVALID_PARAMETER
    assert _retries(ctap) == 8


def test_bad_key_agreement(fido):
    ctap = _with_pin(fido)
    p = PinProtocolV2()
    key_agreement, secret = ClientPin(ctap, p)._get_shared_secret()
    pin_hash_enc = p.encrypt(secret, hashlib.sha256(PIN.encode()).digest()[:16])
    off_curve = dict(key_agreement)
    off_curve[-3] = bytes(32)
    for ka in (off_curve, {**key_agreement, -1: 2}, {**key_agreement, 1: 1}, {1: 2, 3: -25, -1: 1},
               {**key_agreement, -2: b"\1" * 31}):
        with pytest.raises(CtapError) as e:
            ctap.client_pin(2, ClientPin.CMD.GET_TOKEN_USING_PIN_LEGACY, key_agreement=ka, pin_hash_enc=pin_hash_enc)
        assert _code(e) == ERR.INVALID_PARAMETER
    assert _retries(ctap) == 8


def test_uv_subcommands_unsupported(fido):
    ctap = _with_pin(fido)
    for sub in (0x06, 0x07, 0x08, 0x0A, 0xFF):
        with pytest.raises(CtapError) as e:
            ctap.client_pin(2, sub)
        assert _code(e) == ERR.INVALID_SUBCOMMAND


# --- python-fido2's client with a PIN ----------------------------------------------------------------


class _Pin(UserInteraction):
    def request_pin(self, permissions, rp_id):
        return PIN


def test_fido2_client_with_pin(fido):
    _with_pin(fido)
    server = Fido2Server(PublicKeyCredentialRpEntity(id=RP_ID, name="Example"))
    client = Fido2Client(fido.device, DefaultClientDataCollector("https://example.com"), _Pin())
    user = PublicKeyCredentialUserEntity(id=b"user-42", name="carol")
    options, state = server.register_begin(user, user_verification=UserVerificationRequirement.REQUIRED)
    auth_data = server.register_complete(state, client.make_credential(options.public_key))
    assert auth_data.is_user_verified()
    # a second registration with the first as excluded credential: pre-flight + touch -> excluded
    options, state = server.register_begin(user, [auth_data.credential_data],
                                           user_verification=UserVerificationRequirement.REQUIRED)
    from fido2.client import ClientError

    with pytest.raises(ClientError) as e:
        client.make_credential(options.public_key)
    assert e.value.code == ClientError.ERR.DEVICE_INELIGIBLE
    options, state = server.authenticate_begin([auth_data.credential_data],
                                               user_verification=UserVerificationRequirement.REQUIRED)
    result = client.get_assertion(options.public_key)
    response = result.get_response(0)
    server.authenticate_complete(state, [auth_data.credential_data], response)
    assert response.response.authenticator_data.is_user_verified()


def test_change_pin_leaves_no_old_pin_hash_in_flash(fido):
    import hashlib
    import os

    from fido2.ctap2 import Ctap2
    from fido2.ctap2.pin import ClientPin

    client_pin = ClientPin(Ctap2(fido.device))
    client_pin.set_pin("old-pin-1234")
    client_pin.change_pin("old-pin-1234", "new-pin-5678")
    old = hashlib.sha256(b"old-pin-1234").digest()[:16]
    new = hashlib.sha256(b"new-pin-5678").digest()[:16]
    flash = b"".join(open(os.path.join(fido.state_dir, f), "rb").read()
                     for f in os.listdir(fido.state_dir) if f.startswith("flash"))
    assert old not in flash
    assert client_pin.get_pin_token("new-pin-5678")
