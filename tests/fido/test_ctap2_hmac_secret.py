"""hmac-secret (docs/protocols.md section 6): the secret sealcodes derives its codes from."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.extensions import HmacSecretExtension
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.utils import websafe_decode
from fido2.webauthn import (
    AuthenticatorData,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialParameters,
    PublicKeyCredentialRequestOptions,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialType,
    PublicKeyCredentialUserEntity,
    UserVerificationRequirement,
)
from .conftest import CDH, RP_ID, cred_id_of, get_assertion, make_credential
from sealtoken.fido.const import CTAP2_MAX_CRED_ID_LENGTH

ERR = CtapError.ERR
PROTOCOLS = [PinProtocolV1, PinProtocolV2]
PIN = "hmac-pin-1"
SALT1 = hashlib.sha256(b"salt one").digest()
SALT2 = hashlib.sha256(b"salt two").digest()
SEALCODES_RP = "sealcodes:"


def _code(excinfo):
    return excinfo.value.code


def _hmac_secret(ctap, cred_id, salts, protocol, rp_id=RP_ID, token=None, options=None, tamper=None):
    """One getAssertion with the hmac-secret input built by hand; (assertion, decrypted output)."""
    p = protocol()
    key_agreement, secret = ClientPin(ctap, p)._get_shared_secret()
    salt_enc = p.encrypt(secret, salts)
    salt_auth = p.authenticate(secret, salt_enc)
    ext = {1: key_agreement, 2: salt_enc, 3: salt_auth, 4: p.VERSION}
    if tamper:
        tamper(ext)
    assertion = get_assertion(ctap, rp_id=rp_id, cred_ids=None if cred_id is None else [cred_id],
                              extensions={"hmac-secret": ext}, token=token, protocol=p if token else None,
                              options=options)
    out = assertion.auth_data.extensions["hmac-secret"]
    assert len(out) == len(salts) + (16 if p.VERSION == 2 else 0)
    return assertion, p.decrypt(secret, out)


def _with_hmac_secret(ctap, rk=False, **kw):
    att = make_credential(ctap, rk=rk, extensions={"hmac-secret": True}, **kw)
    flags = AuthenticatorData.FLAG
    assert att.auth_data.extensions == {"hmac-secret": True}
    assert att.auth_data.flags & flags.ED
    return att


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_outputs_stable_and_structured(fido, protocol):
    ctap = fido.ctap2()
    att = _with_hmac_secret(ctap)
    cred_id = cred_id_of(att)
    assertion, one = _hmac_secret(ctap, cred_id, SALT1, protocol)
    assert assertion.auth_data.flags == AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.ED
    assertion.verify(CDH, att.auth_data.credential_data.public_key)  # extensions are signed too
    _, again = _hmac_secret(ctap, cred_id, SALT1, protocol)
    assert one == again and len(one) == 32
    _, two = _hmac_secret(ctap, cred_id, SALT2, protocol)
    _, both = _hmac_secret(ctap, cred_id, SALT1 + SALT2, protocol)
    assert both == one + two and one != two
    # the structure of CTAP 2.1: output_j = HMAC-SHA-256(CredRandomWithoutUV, salt_j)
    cred = fido.authenticator.credentials.open_id(att.auth_data.rp_id_hash, cred_id)
    cred_random = fido.authenticator.credentials.cred_random(cred, False)
    assert one == hmac.new(cred_random, SALT1, hashlib.sha256).digest()
    assert two == hmac.new(cred_random, SALT2, hashlib.sha256).digest()
    assert cred_random != fido.authenticator.credentials.cred_random(cred, True)


def test_same_secret_whatever_the_protocol(fido):
    ctap = fido.ctap2()
    cred_id = cred_id_of(_with_hmac_secret(ctap))
    assert _hmac_secret(ctap, cred_id, SALT1, PinProtocolV1)[1] == _hmac_secret(ctap, cred_id, SALT1, PinProtocolV2)[1]


def test_stable_across_restart_and_power_cycle(fido):
    ctap = fido.ctap2()
    att = _with_hmac_secret(ctap, rk=True)
    _, before = _hmac_secret(ctap, cred_id_of(att), SALT1 + SALT2, PinProtocolV2)
    fido.power_cycle()
    ctap = fido.ctap2()
    _, cycled = _hmac_secret(ctap, cred_id_of(att), SALT1 + SALT2, PinProtocolV2)
    fido.restart()
    ctap = fido.ctap2()
    _, restarted = _hmac_secret(ctap, cred_id_of(att), SALT1 + SALT2, PinProtocolV2)
    _, discovered = _hmac_secret(ctap, None, SALT1 + SALT2, PinProtocolV1)
    assert before == cycled == restarted == discovered


def test_different_credentials_different_secrets(fido):
    ctap = fido.ctap2()
    a = _with_hmac_secret(ctap, user_id=b"a")
    b = _with_hmac_secret(ctap, user_id=b"b")
    assert _hmac_secret(ctap, cred_id_of(a), SALT1, PinProtocolV2)[1] != \
        _hmac_secret(ctap, cred_id_of(b), SALT1, PinProtocolV2)[1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_uv_and_no_uv_differ(fido, protocol):
    ctap = fido.ctap2()
    ClientPin(ctap, protocol()).set_pin(PIN)
    ctap = Ctap2(fido.device)

    def token():
        return ClientPin(ctap, protocol()).get_pin_token(
            PIN, ClientPin.PERMISSION.MAKE_CREDENTIAL | ClientPin.PERMISSION.GET_ASSERTION, RP_ID)

    att = _with_hmac_secret(ctap, token=token(), protocol=protocol())
    cred_id = cred_id_of(att)
    flags = AuthenticatorData.FLAG
    verified, with_uv = _hmac_secret(ctap, cred_id, SALT1, protocol, token=token())
    assert verified.auth_data.flags == flags.UP | flags.UV | flags.ED
    plain, without_uv = _hmac_secret(ctap, cred_id, SALT1, protocol)
    assert plain.auth_data.flags == flags.UP | flags.ED
    assert with_uv != without_uv
    assert _hmac_secret(ctap, cred_id, SALT1, protocol, token=token())[1] == with_uv
    assert _hmac_secret(ctap, cred_id, SALT1, protocol)[1] == without_uv
    cred = fido.authenticator.credentials.open_id(att.auth_data.rp_id_hash, cred_id)
    assert with_uv == hmac.new(fido.authenticator.credentials.cred_random(cred, True), SALT1, hashlib.sha256).digest()


def test_credential_without_hmac_secret_gives_no_output(fido):
    ctap = fido.ctap2()
    att = make_credential(ctap)
    p = PinProtocolV2()
    key_agreement, secret = ClientPin(ctap, p)._get_shared_secret()
    salt_enc = p.encrypt(secret, SALT1)
    assertion = get_assertion(ctap, cred_ids=[cred_id_of(att)], extensions={
        "hmac-secret": {1: key_agreement, 2: salt_enc, 3: p.authenticate(secret, salt_enc), 4: 2}})
    assert assertion.auth_data.extensions is None
    assert assertion.auth_data.flags == AuthenticatorData.FLAG.UP


def test_secret_gone_after_reset(fido):
    ctap = fido.ctap2()
    first = _hmac_secret(ctap, cred_id_of(_with_hmac_secret(ctap)), SALT1, PinProtocolV2)[1]
    ctap.reset()
    ctap = Ctap2(fido.device)
    # same user, same RP, same seed of nothing: a new credential has a new secret
    assert _hmac_secret(ctap, cred_id_of(_with_hmac_secret(ctap)), SALT1, PinProtocolV2)[1] != first


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_inputs(fido, protocol):
    ctap = fido.ctap2()
    cred_id = cred_id_of(_with_hmac_secret(ctap))
    p = protocol()

    def flip_auth(ext):
        ext[3] = bytes([ext[3][0] ^ 1]) + ext[3][1:]

    def short_auth(ext):
        ext[3] = ext[3][:8]

    def other_protocol(ext):
        ext[4] = 1 if p.VERSION == 2 else 2

    def bad_key(ext):
        ext[1] = {**ext[1], -3: bytes(32)}

    def unknown_protocol(ext):
        ext[4] = 9

    def missing(key):
        return lambda ext: ext.pop(key)

    def wrong_type(key, value):
        return lambda ext: ext.__setitem__(key, value)

    cases = [
        (flip_auth, ERR.PIN_AUTH_INVALID), (short_auth, ERR.PIN_AUTH_INVALID),
        (other_protocol, ERR.PIN_AUTH_INVALID), (bad_key, ERR.INVALID_PARAMETER),
        (unknown_protocol, ERR.INVALID_PARAMETER),
        (missing(1), ERR.MISSING_PARAMETER), (missing(2), ERR.MISSING_PARAMETER), (missing(3), ERR.MISSING_PARAMETER),
        (wrong_type(2, "text"), ERR.CBOR_UNEXPECTED_TYPE), (wrong_type(1, b"key"), ERR.CBOR_UNEXPECTED_TYPE),
        (wrong_type(4, -1), ERR.CBOR_UNEXPECTED_TYPE),
    ]
    for tamper, code in cases:
        with pytest.raises(CtapError) as e:
            _hmac_secret(ctap, cred_id, SALT1, protocol, tamper=tamper)
        assert _code(e) == code, tamper
    # salts of the wrong length (correctly authenticated)
    for salts in (SALT1[:16], SALT1 + SALT2[:16], SALT1 * 3):
        with pytest.raises(CtapError) as e:
            _hmac_secret(ctap, cred_id, salts, protocol)
        assert _code(e) == ERR.INVALID_LENGTH
    # hmac-secret input that is not a map
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=[cred_id], extensions={"hmac-secret": True})
    assert _code(e) == ERR.CBOR_UNEXPECTED_TYPE
    # no secret without a touch
    with pytest.raises(CtapError) as e:
        _hmac_secret(ctap, cred_id, SALT1, protocol, options={"up": False})
    assert _code(e) == ERR.UNSUPPORTED_OPTION


def test_key_agreement_key_is_the_clientpin_one(fido):
    """hmac-secret uses the key handed out by getKeyAgreement; after a PIN miss it is a new one."""
    ctap = fido.ctap2()
    ClientPin(ctap).set_pin(PIN)
    ctap = Ctap2(fido.device)
    cred_id = cred_id_of(_with_hmac_secret(
        ctap, token=ClientPin(ctap).get_pin_token(PIN, ClientPin.PERMISSION.MAKE_CREDENTIAL, RP_ID),
        protocol=PinProtocolV2()))
    p = PinProtocolV2()
    key_agreement, secret = ClientPin(ctap, p)._get_shared_secret()
    salt_enc = p.encrypt(secret, SALT1)
    ext = {"hmac-secret": {1: key_agreement, 2: salt_enc, 3: p.authenticate(secret, salt_enc), 4: 2}}
    with pytest.raises(CtapError):
        ClientPin(ctap, p).get_pin_token("wrong-pin", ClientPin.PERMISSION.GET_ASSERTION, RP_ID)
    with pytest.raises(CtapError) as e:
        get_assertion(ctap, cred_ids=[cred_id], extensions=ext)
    assert _code(e) == ERR.PIN_AUTH_INVALID


def test_hmac_secret_on_every_assertion_of_a_sequence(fido):
    ctap = fido.ctap2()
    for i in range(2):
        _with_hmac_secret(ctap, rk=True, user_id=bytes([i]))
    p = PinProtocolV2()
    key_agreement, secret = ClientPin(ctap, p)._get_shared_secret()
    salt_enc = p.encrypt(secret, SALT1)
    ext = {"hmac-secret": {1: key_agreement, 2: salt_enc, 3: p.authenticate(secret, salt_enc), 4: 2}}
    first = get_assertion(ctap, extensions=ext)
    second = ctap.get_next_assertion()
    outs = [p.decrypt(secret, a.auth_data.extensions["hmac-secret"]) for a in (first, second)]
    assert outs[0] != outs[1]
    for a, out in zip((first, second), outs):
        single = _hmac_secret(ctap, a.credential["id"], SALT1, PinProtocolV2)[1]
        assert single == out


# --- through python-fido2's Fido2Client, as the sealcodes host does it --------------------------------


class _Pin(UserInteraction):
    def __init__(self, pin=None):
        self.pin = pin

    def request_pin(self, permissions, rp_id):
        return self.pin


def _client(fido, pin=None):
    return Fido2Client(fido.device, DefaultClientDataCollector("https://example.com",
                                                               verify=lambda rp_id, origin: True),
                       _Pin(pin), extensions=[HmacSecretExtension(allow_hmac_secret=True)])


@pytest.mark.parametrize("with_pin", [False, True])
def test_fido2_client_hmac_get_secret(fido, with_pin):
    if with_pin:
        ClientPin(fido.ctap2()).set_pin(PIN)
    uv = UserVerificationRequirement.REQUIRED if with_pin else UserVerificationRequirement.DISCOURAGED
    client = _client(fido, PIN if with_pin else None)
    reg = client.make_credential(PublicKeyCredentialCreationOptions(
        rp=PublicKeyCredentialRpEntity(id=SEALCODES_RP, name="sealcodes"),
        user=PublicKeyCredentialUserEntity(id=b"sealcodes-user", name="sealcodes"),
        challenge=b"c" * 32,
        pub_key_cred_params=[PublicKeyCredentialParameters(type=PublicKeyCredentialType.PUBLIC_KEY, alg=-7)],
        authenticator_selection={"userVerification": uv},
        extensions={"hmacCreateSecret": True},
    ))
    assert reg.client_extension_results["hmacCreateSecret"] is True

    def derive(salts):
        result = client.get_assertion(PublicKeyCredentialRequestOptions(
            challenge=b"d" * 32, rp_id=SEALCODES_RP,
            allow_credentials=[PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY,
                                                             id=reg.raw_id)],
            user_verification=uv, extensions={"hmacGetSecret": salts},
        ))
        response = result.get_response(0)
        assert response.response.authenticator_data.is_user_verified() == with_pin
        out = response.client_extension_results["hmacGetSecret"]  # JSON form: base64url
        return {k: websafe_decode(v) if isinstance(v, str) else bytes(v) for k, v in out.items()}

    out = derive({"salt1": SALT1})
    assert len(out["output1"]) == 32 and not out.get("output2")
    both = derive({"salt1": SALT1, "salt2": SALT2})
    assert both["output1"] == out["output1"] and both["output2"] != out["output1"]
    # what the hand-built request gets, under the same UV state
    ctap = fido.ctap2()
    token = None
    if with_pin:
        token = ClientPin(ctap, PinProtocolV2()).get_pin_token(PIN, ClientPin.PERMISSION.GET_ASSERTION,
                                                               SEALCODES_RP)
    _, raw = _hmac_secret(ctap, reg.raw_id, SALT1, PinProtocolV2, rp_id=SEALCODES_RP, token=token)
    assert raw == out["output1"]
    assert CTAP2_MAX_CRED_ID_LENGTH >= len(reg.raw_id)
