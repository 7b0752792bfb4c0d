"""The CTAP2 authenticator through python-fido2: getInfo, makeCredential, getAssertion,
getNextAssertion, credProtect, credential ids, counters, reset, selection, presence.

PIN tests: test_ctap2_pin.py; hmac-secret: test_ctap2_hmac_secret.py; malformed
input: test_ctap2_malformed.py; fuzzing: tests/fuzz/test_fuzz_ctap2.py.
"""

from __future__ import annotations

import hashlib
from threading import Event

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor as fido2_cbor
from fido2.attestation import PackedAttestation
from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.cose import ES256 as CoseES256
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.server import Fido2Server
from fido2.webauthn import (
    AuthenticatorData,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialUserEntity,
    UserVerificationRequirement,
)
from sealtoken.core.platform import UP_TIMEOUT

from .conftest import CDH, ES256, RP_ID, cred_id_of, get_assertion, make_credential
from sealtoken.core.keys import (FIDO_KEY_MASTER, FIDO_KEY_RK_FIRST, FIDO_KEY_RK_LAST, KEY_FIDO_FIRST,
                                 KEY_FIDO_LAST, OATH_KEY_SALT)
from sealtoken.fido.const import (CTAP2_AAGUID, CTAP2_MAX_CREDS_IN_LIST, CTAP2_MAX_CRED_ID_LENGTH,
                                  CTAP2_MAX_MSG_SIZE, CTAP2_MAX_RESIDENT, CTAP2_NEXT_ASSERTION_TIMEOUT_MS,
                                  CTAP2_PIN_RETRIES_MAX, CTAP2_RESET_WINDOW_MS)

ERR = CtapError.ERR


def _code(excinfo):
    return excinfo.value.code


# --- getInfo ---------------------------------------------------------------------------


def test_get_info_strict(ctap2):
    info = ctap2.info  # Ctap2() fetched it with strict_cbor=True
    assert info.versions == ["FIDO_2_0", "FIDO_2_1"]
    assert set(info.extensions) == {"hmac-secret", "credProtect"}
    assert bytes(info.aaguid) == CTAP2_AAGUID
    assert info.options == {"rk": True, "up": True, "clientPin": False, "pinUvAuthToken": True,
                            "credMgmt": True, "authnrCfg": True, "setMinPINLength": True, "alwaysUv": False}
    assert info.force_pin_change is False
    assert info.pin_uv_protocols == [2, 1]
    assert info.max_msg_size == CTAP2_MAX_MSG_SIZE
    assert info.max_creds_in_list == CTAP2_MAX_CREDS_IN_LIST
    assert info.max_cred_id_length == CTAP2_MAX_CRED_ID_LENGTH
    assert info.algorithms == [{"alg": -7, "type": "public-key"}]
    assert info.min_pin_length == 4
    assert info.firmware_version == 0x000100
    assert info.transports == ["nfc", "usb"]


def test_get_info_is_canonical_and_exact(fido):
    response = fido.raw(b"\x04")
    assert response[0] == 0
    decoded = fido2_cbor.decode(response[1:])
    assert fido2_cbor.encode(decoded) == response[1:]
    assert sorted(decoded) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14]


# --- makeCredential / getAssertion -----------------------------------------------------------


def _verify_es256(cose_key, message, signature):
    key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(cose_key[-2], "big"), int.from_bytes(cose_key[-3], "big"), ec.SECP256R1()
    ).public_key()
    key.verify(signature, message, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature


@pytest.mark.parametrize("rk", [False, True])
def test_make_and_get_signatures_verify(ctap2, rk):
    att = make_credential(ctap2, rk=rk)
    auth_data = att.auth_data
    assert att.fmt == "packed"
    assert auth_data.rp_id_hash == hashlib.sha256(RP_ID.encode()).digest()
    assert auth_data.flags == AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.AT
    cred = auth_data.credential_data
    assert bytes(cred.aaguid) == CTAP2_AAGUID
    assert len(cred.credential_id) == 97 <= ctap2.info.max_cred_id_length
    assert dict(cred.public_key) == {1: 2, 3: -7, -1: 1, -2: cred.public_key[-2], -3: cred.public_key[-3]}
    assert isinstance(cred.public_key, CoseES256)
    # packed self attestation: python-fido2's verifier and an independent check with cryptography
    PackedAttestation().verify(att.att_stmt, auth_data, CDH)
    assert att.att_stmt["alg"] == -7
    _verify_es256(cred.public_key, bytes(auth_data) + CDH, att.att_stmt["sig"])

    for cdh in (b"\x11" * 32, b"\x22" * 32):
        assertion = get_assertion(ctap2, cred_ids=[cred.credential_id], cdh=cdh)
        assert assertion.credential == {"id": cred.credential_id, "type": "public-key"}
        assert assertion.auth_data.rp_id_hash == auth_data.rp_id_hash
        assert assertion.auth_data.flags == AuthenticatorData.FLAG.UP
        _verify_es256(cred.public_key, bytes(assertion.auth_data) + cdh, assertion.signature)
        assertion.verify(cdh, cred.public_key)
        assert (assertion.user is not None) == rk


def test_discoverable_credential(ctap2):
    att = make_credential(ctap2, rk=True, user_id=b"\x01\x02", name="bob")
    assertion = get_assertion(ctap2)
    assert assertion.credential["id"] == cred_id_of(att)
    assert assertion.user == {"id": b"\x01\x02"}  # no name without user verification
    assertion.verify(CDH, att.auth_data.credential_data.public_key)
    assert assertion.number_of_credentials is None
    with pytest.raises(CtapError) as e:
        get_assertion(ctap2, rp_id="other.example")
    assert _code(e) == ERR.NO_CREDENTIALS


def test_non_resident_is_not_discoverable(ctap2):
    make_credential(ctap2)
    with pytest.raises(CtapError) as e:
        get_assertion(ctap2)
    assert _code(e) == ERR.NO_CREDENTIALS


def test_resident_same_user_is_replaced(fido, ctap2):
    first = make_credential(ctap2, rk=True, user_id=b"u")
    second = make_credential(ctap2, rk=True, user_id=b"u")
    make_credential(ctap2, rk=True, user_id=b"u", rp_id="other.example")
    assertions = ctap2.get_assertions(RP_ID, CDH)
    assert [a.credential["id"] for a in assertions] == [cred_id_of(second)]
    # the replaced credential's id is gone for good
    with pytest.raises(CtapError) as e:
        get_assertion(ctap2, cred_ids=[cred_id_of(first)])
    assert _code(e) == ERR.NO_CREDENTIALS
    assert len(fido.store.keys(FIDO_KEY_RK_FIRST, FIDO_KEY_RK_LAST)) == 2


def test_get_next_assertion_newest_first(ctap2):
    atts = [make_credential(ctap2, rk=True, user_id=bytes([i]), name=f"user{i}") for i in range(3)]
    first = get_assertion(ctap2)
    assert first.number_of_credentials == 3
    rest = [ctap2.get_next_assertion(), ctap2.get_next_assertion()]
    got = [first] + rest
    assert [a.credential["id"] for a in got] == [cred_id_of(a) for a in reversed(atts)]
    assert [a.number_of_credentials for a in rest] == [None, None]
    counters = [a.auth_data.counter for a in got]
    assert counters == sorted(counters) and len(set(counters)) == 3
    for assertion, att in zip(got, reversed(atts)):
        assertion.verify(CDH, att.auth_data.credential_data.public_key)
    with pytest.raises(CtapError) as e:
        ctap2.get_next_assertion()
    assert _code(e) == ERR.NOT_ALLOWED


def test_get_next_assertion_needs_to_follow(ctap2):
    with pytest.raises(CtapError) as e:
        ctap2.get_next_assertion()
    assert _code(e) == ERR.NOT_ALLOWED
    for i in range(2):
        make_credential(ctap2, rk=True, user_id=bytes([i]))
    assert get_assertion(ctap2).number_of_credentials == 2
    ctap2.get_info()  # any other command ends the sequence
    with pytest.raises(CtapError) as e:
        ctap2.get_next_assertion()
    assert _code(e) == ERR.NOT_ALLOWED


def test_get_next_assertion_times_out(fido, ctap2, monkeypatch):
    for i in range(2):
        make_credential(ctap2, rk=True, user_id=bytes([i]))
    get_assertion(ctap2)
    now = fido.platform.now_ms()
    monkeypatch.setattr(fido.platform, "now_ms", lambda: now + CTAP2_NEXT_ASSERTION_TIMEOUT_MS + 1)
    with pytest.raises(CtapError) as e:
        ctap2.get_next_assertion()
    assert _code(e) == ERR.NOT_ALLOWED


def test_allow_list_picks_first_valid(ctap2):
    a = make_credential(ctap2, user_id=b"a")
    b = make_credential(ctap2, user_id=b"b")
    assertion = get_assertion(ctap2, cred_ids=[b"\x00" * 16, cred_id_of(b), cred_id_of(a)])
    assert assertion.credential["id"] == cred_id_of(b)
    assert assertion.number_of_credentials is None


def test_unsupported_algorithm(ctap2):
    for params in ([{"type": "public-key", "alg": -257}], [{"type": "other", "alg": -7}], []):
        with pytest.raises(CtapError) as e:
            make_credential(ctap2, key_params=params)
        assert _code(e) == ERR.UNSUPPORTED_ALGORITHM
    att = make_credential(ctap2, key_params=[{"type": "public-key", "alg": -8}, ES256[0]])
    assert att.auth_data.credential_data.public_key[3] == -7


def test_exclude_list(fido, ctap2):
    att = make_credential(ctap2)
    calls = []
    real = fido.platform.wait_user_presence

    def counting(timeout_ms, keepalive):
        calls.append(timeout_ms)
        return real(timeout_ms, keepalive)

    fido.platform.wait_user_presence = counting
    with pytest.raises(CtapError) as e:
        make_credential(ctap2, exclude=[{"type": "public-key", "id": cred_id_of(att)}])
    assert _code(e) == ERR.CREDENTIAL_EXCLUDED
    assert len(calls) == 1  # answered only after a touch
    # ids of other RPs, or unknown ones, do not exclude
    make_credential(ctap2, rp_id="other.example", exclude=[{"type": "public-key", "id": cred_id_of(att)}])
    make_credential(ctap2, exclude=[{"type": "public-key", "id": b"\x01" * 97}])


def test_options(ctap2):
    with pytest.raises(CtapError) as e:
        make_credential(ctap2, options={"up": False})
    assert _code(e) == ERR.INVALID_OPTION
    with pytest.raises(CtapError) as e:
        make_credential(ctap2, options={"uv": True})
    assert _code(e) == ERR.INVALID_OPTION
    att = make_credential(ctap2, options={"up": True, "uv": False, "unknown": True})
    with pytest.raises(CtapError) as e:
        get_assertion(ctap2, cred_ids=[cred_id_of(att)], options={"rk": True})
    assert _code(e) == ERR.UNSUPPORTED_OPTION
    with pytest.raises(CtapError) as e:
        get_assertion(ctap2, cred_ids=[cred_id_of(att)], options={"uv": True})
    assert _code(e) == ERR.INVALID_OPTION


def test_preflight_without_presence(fido, ctap2):
    """python-fido2 filters lists with up=false, zero cdh, no extensions: silent answers."""
    att = make_credential(ctap2)
    fido.set_presence("deny")  # any touch request would fail now
    silent = get_assertion(ctap2, cred_ids=[cred_id_of(att)], cdh=b"\0" * 32, options={"up": False})
    assert silent.auth_data.flags == 0
    silent.verify(b"\0" * 32, att.auth_data.credential_data.public_key)
    with pytest.raises(CtapError) as e:
        get_assertion(ctap2, cred_ids=[b"\0"], cdh=b"\0" * 32, options={"up": False})
    assert _code(e) == ERR.NO_CREDENTIALS


# --- credential ids ----------------------------------------------------------------------------


def test_forged_and_altered_ids_are_unknown(fido, ctap2, fido_factory):
    att = make_credential(ctap2)
    good = cred_id_of(att)
    forged = [good[:-1], good + b"\0", b"\0" * 97, bytes([2]) + good[1:], good[:50] + b"\x00" * 47]
    for i in range(len(good)):
        for bit in (0, 7):
            altered = bytearray(good)
            altered[i] ^= 1 << bit
            forged.append(bytes(altered))
    # a genuine id of another token
    other = fido_factory(rng_seed=77)
    forged.append(cred_id_of(make_credential(other.ctap2())))
    for cred_id in forged:
        with pytest.raises(CtapError) as e:
            get_assertion(ctap2, cred_ids=[cred_id])
        assert _code(e) == ERR.NO_CREDENTIALS
    # bound to its RP: the same id under another RP ID is unknown
    with pytest.raises(CtapError) as e:
        get_assertion(ctap2, rp_id="example.org", cred_ids=[good])
    assert _code(e) == ERR.NO_CREDENTIALS
    get_assertion(ctap2, cred_ids=[good])


def test_ids_hold_no_plaintext_key(fido, ctap2):
    att = make_credential(ctap2)
    cred = fido.authenticator.credentials.open_id(att.auth_data.rp_id_hash, cred_id_of(att))
    private = bytes(cred.private)
    assert private not in cred_id_of(att)
    for page in range(fido.platform.NUM_PAGES):
        assert private not in fido.platform.flash_read(page, 0, fido.platform.PAGE_SIZE)


# --- counters, persistence --------------------------------------------------------------------------


def test_signature_counter_persists(fido):
    ctap = fido.ctap2()
    att = make_credential(ctap)
    counters = [att.auth_data.counter]
    counters.append(get_assertion(ctap, cred_ids=[cred_id_of(att)]).auth_data.counter)
    fido.restart()
    ctap = fido.ctap2()
    after = get_assertion(ctap, cred_ids=[cred_id_of(att)])
    after.verify(CDH, att.auth_data.credential_data.public_key)
    counters.append(after.auth_data.counter)
    assert counters == sorted(counters) and len(set(counters)) == 3 and counters[0] >= 1


def test_resident_credentials_survive_restart(fido):
    att = make_credential(fido.ctap2(), rk=True)
    fido.restart()
    assertion = get_assertion(fido.ctap2())
    assert assertion.credential["id"] == cred_id_of(att)
    assertion.verify(CDH, att.auth_data.credential_data.public_key)


def test_key_store_full(fido, ctap2):
    for i in range(CTAP2_MAX_RESIDENT):
        make_credential(ctap2, rk=True, user_id=i.to_bytes(2, "big"))
    with pytest.raises(CtapError) as e:
        make_credential(ctap2, rk=True, user_id=b"one too many")
    assert _code(e) == ERR.KEY_STORE_FULL
    # replacing one still works, and non-resident credentials need no space
    make_credential(ctap2, rk=True, user_id=(7).to_bytes(2, "big"))
    make_credential(ctap2)


def test_unreadable_resident_records_are_skipped(fido, ctap2):
    att = make_credential(ctap2, rk=True, user_id=b"good")
    garbage = [b"", b"\xff\x00", fido2_cbor.encode([1, 2]), fido2_cbor.encode({1: b"id"}),
               fido2_cbor.encode({1: cred_id_of(att), 2: "not bytes", 4: b"u"}),
               fido2_cbor.encode({1: b"\0" * 97, 2: att.auth_data.rp_id_hash, 4: b"u", 7: "late"})]
    for i, value in enumerate(garbage):
        fido.store.put(FIDO_KEY_RK_FIRST + 10 + i, value)
    assertions = ctap2.get_assertions(RP_ID, CDH)
    assert [a.credential["id"] for a in assertions] == [cred_id_of(att)]
    # their slots are not reused
    make_credential(ctap2, rk=True, user_id=b"other")
    for i, value in enumerate(garbage):
        assert fido.store.get(FIDO_KEY_RK_FIRST + 10 + i) == value


def test_long_user_fields_are_truncated(ctap2):
    name = "\u00e9" * 40  # 80 bytes of UTF-8
    att = make_credential(ctap2, rk=True, name=name, user_id=b"u" * 64)
    assert get_assertion(ctap2).user == {"id": b"u" * 64}
    with pytest.raises(CtapError) as e:
        make_credential(ctap2, rk=True, user_id=b"u" * 65)
    assert _code(e) == ERR.INVALID_PARAMETER
    assert cred_id_of(att)


# --- credProtect -------------------------------------------------------------------------------


def test_cred_protect_levels_without_uv(ctap2):
    made = {}
    for level in (1, 2, 3):
        for rk in (False, True):
            att = make_credential(ctap2, rk=rk, user_id=bytes([level, rk]), extensions={"credProtect": level})
            assert att.auth_data.extensions == {"credProtect": level}
            assert att.auth_data.flags & AuthenticatorData.FLAG.ED
            made[level, rk] = cred_id_of(att)
    # discoverable without UV: only level 1
    assert [a.credential["id"] for a in ctap2.get_assertions(RP_ID, CDH)] == [made[1, True]]
    # with an allow list: levels 1 and 2
    for (level, rk), cred_id in made.items():
        if level == 3:
            with pytest.raises(CtapError) as e:
                get_assertion(ctap2, cred_ids=[cred_id])
            assert _code(e) == ERR.NO_CREDENTIALS
        else:
            get_assertion(ctap2, cred_ids=[cred_id])
    # a level-3 credential does not exclude without UV
    make_credential(ctap2, exclude=[{"type": "public-key", "id": made[3, False]}])
    with pytest.raises(CtapError) as e:
        make_credential(ctap2, extensions={"credProtect": 4})
    assert _code(e) == ERR.INVALID_PARAMETER


# --- reset ------------------------------------------------------------------------------------


def test_reset_destroys_everything(fido):
    from fido2.ctap2.pin import ClientPin

    ctap = fido.ctap2()
    fido.store.put(OATH_KEY_SALT, b"oathsalt")  # another applet's record
    resident = make_credential(ctap, rk=True)
    plain = make_credential(ctap)
    ClientPin(ctap).set_pin("12345678")
    master = fido.store.get(FIDO_KEY_MASTER)
    assert master is not None
    ctap.reset()
    ctap = Ctap2(fido.device)
    assert ctap.info.options["clientPin"] is False
    for ids in ([cred_id_of(resident)], [cred_id_of(plain)], None):
        with pytest.raises(CtapError) as e:
            get_assertion(ctap, cred_ids=ids)
        assert _code(e) == ERR.NO_CREDENTIALS
    assert fido.store.keys(KEY_FIDO_FIRST, KEY_FIDO_LAST) == []
    assert fido.store.get(OATH_KEY_SALT) == b"oathsalt"
    for page in range(fido.platform.NUM_PAGES):  # no copy of the old master secret left in flash
        assert master not in fido.platform.flash_read(page, 0, fido.platform.PAGE_SIZE)
    assert ClientPin(ctap).get_pin_retries()[0] == CTAP2_PIN_RETRIES_MAX
    # usable again, with a new master secret
    att = make_credential(ctap)
    get_assertion(ctap, cred_ids=[cred_id_of(att)])
    assert fido.store.get(FIDO_KEY_MASTER) != master


def test_reset_needs_presence(fido, ctap2):
    att = make_credential(ctap2)
    fido.set_presence("deny")
    with pytest.raises(CtapError) as e:
        ctap2.reset()
    assert _code(e) == ERR.OPERATION_DENIED
    fido.set_presence("approve")
    get_assertion(ctap2, cred_ids=[cred_id_of(att)])


def test_reset_only_right_after_power_up(fido_factory, monkeypatch):
    fido = fido_factory(reset_window_ms=CTAP2_RESET_WINDOW_MS)
    clock = [fido.platform.now_ms()]
    monkeypatch.setattr(fido.platform, "now_ms", lambda: clock[0])
    ctap = fido.ctap2()
    clock[0] += CTAP2_RESET_WINDOW_MS + 1
    with pytest.raises(CtapError) as e:
        ctap.reset()
    assert _code(e) == ERR.NOT_ALLOWED
    fido.power_cycle()
    ctap = fido.ctap2()
    ctap.get_info()  # first command after power-up starts the window
    clock[0] += CTAP2_RESET_WINDOW_MS - 1
    ctap.reset()


# --- user presence, selection, cancel ----------------------------------------------------------


def test_presence_outcomes(fido, ctap2, monkeypatch):
    att = make_credential(ctap2)
    fido.set_presence("deny")
    for call in (lambda: make_credential(ctap2), lambda: get_assertion(ctap2, cred_ids=[cred_id_of(att)]),
                 lambda: ctap2.selection()):
        with pytest.raises(CtapError) as e:
            call()
        assert _code(e) == ERR.OPERATION_DENIED
    monkeypatch.setattr(fido.platform, "wait_user_presence", lambda timeout_ms, keepalive: UP_TIMEOUT)
    with pytest.raises(CtapError) as e:
        get_assertion(ctap2, cred_ids=[cred_id_of(att)])
    assert _code(e) == ERR.USER_ACTION_TIMEOUT


def test_selection(ctap2):
    ctap2.selection()


def test_keepalive_and_cancel(fido, ctap2):
    att = make_credential(ctap2)
    fido.set_presence("wait")
    seen = []
    event = Event()

    def on_keepalive(status):
        seen.append(status)
        event.set()  # the user gives up while the token waits for a touch

    with pytest.raises(CtapError) as e:
        ctap2.get_assertion(RP_ID, CDH, [{"type": "public-key", "id": cred_id_of(att)}],
                            event=event, on_keepalive=on_keepalive)
    assert _code(e) == ERR.KEEPALIVE_CANCEL
    assert seen == [2]  # UPNEEDED
    # a touch that comes in time is accepted
    fido.platform.press()
    get_assertion(ctap2, cred_ids=[cred_id_of(att)])


def test_legacy_selection_probe(fido, ctap2):
    """CTAP 2.0 clients select a device with an empty pinUvAuthParam."""
    with pytest.raises(CtapError) as e:
        ctap2.make_credential(CDH, {"id": RP_ID}, {"id": b"u"}, ES256, pin_uv_param=b"", pin_uv_protocol=1)
    assert _code(e) == ERR.PIN_NOT_SET


# --- whole WebAuthn ceremonies through python-fido2's client and server ----------------------------------


class _Approve(UserInteraction):
    def __init__(self, pin=None):
        self.pin = pin

    def request_pin(self, permissions, rp_id):
        return self.pin


@pytest.mark.parametrize("resident", ["discouraged", "required"])
def test_fido2_client_and_server(fido, resident):
    server = Fido2Server(PublicKeyCredentialRpEntity(id=RP_ID, name="Example"))
    client = Fido2Client(fido.device, DefaultClientDataCollector("https://example.com"), _Approve())
    user = PublicKeyCredentialUserEntity(id=b"user-42", name="carol")
    options, state = server.register_begin(user, resident_key_requirement=resident,
                                           user_verification=UserVerificationRequirement.DISCOURAGED)
    reg = client.make_credential(options.public_key)
    auth_data = server.register_complete(state, reg)
    creds = [auth_data.credential_data]
    options, state = server.authenticate_begin(
        creds if resident == "discouraged" else None, user_verification=UserVerificationRequirement.DISCOURAGED)
    result = client.get_assertion(options.public_key)
    server.authenticate_complete(state, creds, result.get_response(0))
