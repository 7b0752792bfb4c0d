"""authenticatorConfig (0x0D) with python-fido2's Config as the client.

toggleAlwaysUv and setMinPINLength (with forceChangePin), over every transport of
the `fido` fixture. The effects are what is tested: alwaysUv makes every
makeCredential and getAssertion need a pinUvAuthToken, a raised minimum makes
setPIN / changePIN refuse shorter PINs and forces a PIN change; all of it
survives a restart from flash and goes away with a reset.
"""

from __future__ import annotations

import pytest
from fido2.ctap import CtapError
from fido2.ctap2 import Config, Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2

from .conftest import CDH, cred_id_of, get_assertion, make_credential

ERR = CtapError.ERR
PERM = ClientPin.PERMISSION
PIN = "2468"


def _code(excinfo):
    return excinfo.value.code


def _token(ctap, protocol, permissions, rp_id=None, pin=PIN):
    return ClientPin(ctap, protocol).get_pin_token(pin, permissions, rp_id)


def _config(ctap, protocol, pin=PIN):
    return Config(ctap, protocol, _token(ctap, protocol, PERM.AUTHENTICATOR_CFG, pin=pin))


@pytest.fixture(params=[PinProtocolV1, PinProtocolV2], ids=["pin-protocol-1", "pin-protocol-2"])
def protocol(request):
    return request.param()


def test_info_advertises_config(fido):
    info = fido.ctap2().info
    assert Config.is_supported(info)
    assert info.options["setMinPINLength"] is True and info.options["alwaysUv"] is False
    assert info.min_pin_length == 4 and info.force_pin_change is False


def test_always_uv_requires_user_verification(fido, protocol):
    ctap = fido.ctap2()
    ClientPin(ctap, protocol).set_pin(PIN)
    ctap = Ctap2(fido.device)
    token = _token(ctap, protocol, PERM.MAKE_CREDENTIAL, "example.com")
    cred = cred_id_of(make_credential(ctap, token=token, protocol=protocol))
    get_assertion(ctap, cred_ids=[cred])          # touch only: fine before alwaysUv
    _config(ctap, protocol).toggle_always_uv()
    for restarted in (False, True):
        assert ctap.get_info().options["alwaysUv"] is True
        for options in (None, {"up": True}):
            with pytest.raises(CtapError) as e:
                get_assertion(ctap, cred_ids=[cred], options=options)
            assert _code(e) == ERR.PUAT_REQUIRED
        # a silent look-up stays possible (CTAP 2.1): no presence, no UV, no hmac-secret
        silent = get_assertion(ctap, cred_ids=[cred], options={"up": False})
        assert silent.auth_data.flags & 0x05 == 0
        token = _token(ctap, protocol, PERM.GET_ASSERTION, "example.com")
        assertion = get_assertion(ctap, cred_ids=[cred], token=token, protocol=protocol)
        assert assertion.auth_data.flags & 0x04
        if not restarted:
            fido.restart()
            ctap = Ctap2(fido.device)
    _config(ctap, protocol).toggle_always_uv()
    assert ctap.get_info().options["alwaysUv"] is False
    get_assertion(ctap, cred_ids=[cred])


def test_always_uv_without_a_pin(fido):
    ctap = fido.ctap2()
    config = Config(ctap)                 # no PIN: config needs no token (CTAP 2.1 section 6.11)
    config.toggle_always_uv()
    ctap = Ctap2(fido.device)
    assert ctap.info.options["alwaysUv"] is True and ctap.info.options["clientPin"] is False
    with pytest.raises(CtapError) as e:
        make_credential(ctap)
    assert _code(e) == ERR.PUAT_REQUIRED
    # with alwaysUv on, the other subcommands need a token even without a PIN
    with pytest.raises(CtapError) as e:
        Config(ctap).set_min_pin_length(8)
    assert _code(e) == ERR.PUAT_REQUIRED
    protocol = PinProtocolV2()
    ClientPin(ctap, protocol).set_pin(PIN)
    ctap = Ctap2(fido.device)
    token = _token(ctap, protocol, PERM.MAKE_CREDENTIAL, "example.com")
    att = make_credential(ctap, token=token, protocol=protocol)
    assert att.auth_data.flags & 0x04


def test_min_pin_length_refuses_short_pins(fido, protocol):
    ctap = fido.ctap2()
    Config(ctap).set_min_pin_length(6)
    ctap = Ctap2(fido.device)
    assert ctap.info.min_pin_length == 6 and ctap.info.force_pin_change is False
    with pytest.raises(CtapError) as e:
        ClientPin(ctap, protocol).set_pin("12345")
    assert _code(e) == ERR.PIN_POLICY_VIOLATION
    assert ctap.get_info().options["clientPin"] is False
    ClientPin(ctap, protocol).set_pin("123456")
    with pytest.raises(CtapError) as e:
        ClientPin(ctap, protocol).change_pin("123456", "abcde")
    assert _code(e) == ERR.PIN_POLICY_VIOLATION
    # the old PIN still works, and a long enough one is taken
    ClientPin(ctap, protocol).change_pin("123456", "abcdef")
    _token(ctap, protocol, PERM.GET_ASSERTION, "example.com", pin="abcdef")
    # the minimum only grows
    config = _config(ctap, protocol, pin="abcdef")
    with pytest.raises(CtapError) as e:
        config.set_min_pin_length(5)
    assert _code(e) == ERR.PIN_POLICY_VIOLATION
    fido.restart()
    ctap = Ctap2(fido.device)
    assert ctap.info.min_pin_length == 6


def test_raised_minimum_forces_a_pin_change(fido, protocol):
    ctap = fido.ctap2()
    ClientPin(ctap, protocol).set_pin(PIN)             # 4 code points
    ctap = Ctap2(fido.device)
    _config(ctap, protocol).set_min_pin_length(8)
    fido.restart()
    ctap = Ctap2(fido.device)
    assert ctap.info.min_pin_length == 8 and ctap.info.force_pin_change is True
    client_pin = ClientPin(ctap, protocol)
    with pytest.raises(CtapError) as e:
        client_pin.get_pin_token(PIN, PERM.GET_ASSERTION, "example.com")
    assert _code(e) == ERR.PIN_INVALID
    assert client_pin.get_pin_retries()[0] == 8        # the right PIN spent no try
    with pytest.raises(CtapError) as e:
        client_pin.change_pin(PIN, "1234567")
    assert _code(e) == ERR.PIN_POLICY_VIOLATION
    client_pin.change_pin(PIN, "12345678")
    ctap = Ctap2(fido.device)
    assert ctap.info.force_pin_change is False
    _token(ctap, protocol, PERM.GET_ASSERTION, "example.com", pin="12345678")


def test_force_change_pin_flag(fido, protocol):
    ctap = fido.ctap2()
    with pytest.raises(CtapError) as e:
        Config(ctap).set_min_pin_length(force_change_pin=True)
    assert _code(e) == ERR.PIN_NOT_SET
    ClientPin(ctap, protocol).set_pin("long-enough-pin")
    ctap = Ctap2(fido.device)
    _config(ctap, protocol, pin="long-enough-pin").set_min_pin_length(force_change_pin=True)
    ctap = Ctap2(fido.device)
    assert ctap.info.force_pin_change is True and ctap.info.min_pin_length == 4
    client_pin = ClientPin(ctap, protocol)
    with pytest.raises(CtapError) as e:
        client_pin.change_pin("long-enough-pin", "long-enough-pin")   # a forced change must change it
    assert _code(e) == ERR.PIN_POLICY_VIOLATION
    client_pin.change_pin("long-enough-pin", "another-pin")
    assert Ctap2(fido.device).info.force_pin_change is False


def test_authorization_and_unsupported_parts(fido, protocol):
    ctap = fido.ctap2()
    ClientPin(ctap, protocol).set_pin(PIN)
    ctap = Ctap2(fido.device)
    with pytest.raises(CtapError) as e:
        Config(ctap).toggle_always_uv()                # PIN set: a token is needed
    assert _code(e) == ERR.PUAT_REQUIRED
    wrong = Config(ctap, protocol, _token(ctap, protocol, PERM.GET_ASSERTION, "example.com"))
    with pytest.raises(CtapError) as e:
        wrong.toggle_always_uv()
    assert _code(e) == ERR.PIN_AUTH_INVALID
    config = _config(ctap, protocol)
    with pytest.raises(CtapError) as e:
        config.set_min_pin_length(6, rp_ids=["example.com"])   # no minPinLength extension
    assert _code(e) == ERR.INVALID_PARAMETER
    with pytest.raises(CtapError) as e:
        config.enable_enterprise_attestation()
    assert _code(e) == ERR.INVALID_SUBCOMMAND
    with pytest.raises(CtapError) as e:
        config.set_min_pin_length(64)
    assert _code(e) == ERR.PIN_POLICY_VIOLATION
    assert ctap.get_info().options["alwaysUv"] is False and ctap.get_info().min_pin_length == 4


def test_reset_restores_defaults(fido, protocol):
    ctap = fido.ctap2()
    ClientPin(ctap, protocol).set_pin(PIN)
    ctap = Ctap2(fido.device)
    config = _config(ctap, protocol)
    config.toggle_always_uv()
    config.set_min_pin_length(10)
    info = ctap.get_info()
    assert info.options["alwaysUv"] and info.min_pin_length == 10 and info.force_pin_change
    ctap.reset()
    info = ctap.get_info()
    assert not info.options["alwaysUv"] and info.min_pin_length == 4 and not info.force_pin_change
    make_credential(ctap, cdh=CDH)
