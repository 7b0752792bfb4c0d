"""authenticatorCredentialManagement (0x0A) with python-fido2's CredentialManagement as the client.

Runs over every transport of the `fido` fixture (in process, and the whole token
behind its CTAPHID framing). Effects are checked where they matter: a deleted
credential no longer signs nor answers hmac-secret, also after a restart from
flash; updated user details are what getAssertion returns.
"""

from __future__ import annotations

import hashlib

import pytest
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2, CredentialManagement
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from .conftest import CDH, cred_id_of, get_assertion, make_credential
from sealtoken.fido.const import CTAP2_MAX_RESIDENT

ERR = CtapError.ERR
PIN = "4711-cm"
RESULT = CredentialManagement.RESULT
PERM = ClientPin.PERMISSION
SALT = bytes(range(32))


def _sha(text):
    return hashlib.sha256(text.encode()).digest()


class Setup:
    """A token with a PIN and resident credentials: alice+bob at a.example, carol at b.example."""

    def __init__(self, fido, protocol):
        self.fido = fido
        self.protocol = protocol
        ctap = fido.ctap2()
        ClientPin(ctap, protocol).set_pin(PIN)
        self.ctap = Ctap2(fido.device)
        self.atts = {}
        for rp, user, extensions in (("a.example", "alice", {"hmac-secret": True}),
                                     ("a.example", "bob", {"credProtect": 2}),
                                     ("b.example", "carol", None)):
            token = self.token(PERM.MAKE_CREDENTIAL, rp)
            self.atts[user] = make_credential(self.ctap, rp_id=rp, user_id=user.encode(), name=user, rk=True,
                                              extensions=extensions, token=token, protocol=protocol)

    def reconnect(self):
        self.ctap = Ctap2(self.fido.device)

    def token(self, permissions, rp_id=None):
        return ClientPin(self.ctap, self.protocol).get_pin_token(PIN, permissions, rp_id)

    def cm(self, rp_id=None, permissions=PERM.CREDENTIAL_MGMT):
        return CredentialManagement(self.ctap, self.protocol, self.token(permissions, rp_id))

    def cred_id(self, user):
        return cred_id_of(self.atts[user])

    def descriptor(self, user):
        return {"type": "public-key", "id": self.cred_id(user)}

    def hmac_secret(self, user):
        client_pin = ClientPin(self.ctap, self.protocol)
        key_agreement, shared = client_pin._get_shared_secret()
        salt_enc = self.protocol.encrypt(shared, SALT)
        ext = {"hmac-secret": {1: key_agreement, 2: salt_enc, 3: self.protocol.authenticate(shared, salt_enc),
                               4: self.protocol.VERSION}}
        assertion = get_assertion(self.ctap, rp_id="a.example", cred_ids=[self.cred_id(user)], extensions=ext)
        return self.protocol.decrypt(shared, assertion.auth_data.extensions["hmac-secret"])


@pytest.fixture(params=[PinProtocolV1, PinProtocolV2], ids=["pin-protocol-1", "pin-protocol-2"])
def setup(fido, request):
    return Setup(fido, request.param())


def _code(excinfo):
    return excinfo.value.code


def test_info_advertises_credential_management(fido):
    info = fido.ctap2().info
    assert info.options["credMgmt"] is True
    assert CredentialManagement.is_supported(info) and CredentialManagement.is_update_supported(info)


def test_metadata_and_enumeration(setup):
    cm = setup.cm()
    meta = cm.get_metadata()
    assert meta == {RESULT.EXISTING_CRED_COUNT: 3, RESULT.MAX_REMAINING_COUNT: CTAP2_MAX_RESIDENT - 3}
    rps = cm.enumerate_rps()
    assert [(r[RESULT.RP], r[RESULT.RP_ID_HASH]) for r in rps] == [
        ({"id": "a.example"}, _sha("a.example")), ({"id": "b.example"}, _sha("b.example"))]
    assert rps[0][RESULT.TOTAL_RPS] == 2
    creds = cm.enumerate_creds(_sha("a.example"))
    assert creds[0][RESULT.TOTAL_CREDENTIALS] == 2
    by_user = {c[RESULT.USER]["name"]: c for c in creds}
    assert set(by_user) == {"alice", "bob"}
    for user, entry in by_user.items():
        att = setup.atts[user]
        assert entry[RESULT.USER] == {"id": user.encode(), "name": user, "displayName": user.title()}
        assert entry[RESULT.CREDENTIAL_ID] == {"id": setup.cred_id(user), "type": "public-key"}
        # the public key is the credential's: the one attested at makeCredential
        assert entry[RESULT.PUBLIC_KEY] == dict(att.auth_data.credential_data.public_key)
    assert by_user["alice"][RESULT.CRED_PROTECT] == 1 and by_user["bob"][RESULT.CRED_PROTECT] == 2
    assert [c[RESULT.USER]["name"] for c in cm.enumerate_creds(_sha("b.example"))] == ["carol"]
    assert cm.enumerate_creds(_sha("nobody.example")) == []


def test_delete_credential_removes_it_for_good(setup):
    before = setup.hmac_secret("alice")
    assert len(before) == 32
    setup.cm().delete_cred(setup.descriptor("alice"))
    for attempt in range(2):
        with pytest.raises(CtapError) as e:
            get_assertion(setup.ctap, rp_id="a.example", cred_ids=[setup.cred_id("alice")])
        assert _code(e) == ERR.NO_CREDENTIALS
        with pytest.raises(CtapError) as e:
            setup.hmac_secret("alice")
        assert _code(e) == ERR.NO_CREDENTIALS
        cm = setup.cm()
        assert cm.get_metadata()[RESULT.EXISTING_CRED_COUNT] == 2
        assert [c[RESULT.USER]["name"] for c in cm.enumerate_creds(_sha("a.example"))] == ["bob"]
        # the discoverable assertion lists only bob now
        token = setup.token(PERM.GET_ASSERTION, "a.example")
        assertions = setup.ctap.get_assertions("a.example", CDH, None, None, None,
                                               setup.protocol.authenticate(token, CDH), setup.protocol.VERSION)
        assert [a.user["id"] for a in assertions] == [b"bob"]
        if attempt == 0:
            setup.fido.restart()   # gone from flash too, not only from RAM
            setup.reconnect()
    with pytest.raises(CtapError) as e:
        setup.cm().delete_cred(setup.descriptor("alice"))
    assert _code(e) == ERR.NO_CREDENTIALS


def test_update_user_information_changes_get_assertion(setup):
    cm = setup.cm()
    cm.update_user_info(setup.descriptor("bob"), {"id": b"bob", "name": "robert", "displayName": "Robert B."})
    token = setup.token(PERM.GET_ASSERTION, "a.example")
    assertion = get_assertion(setup.ctap, rp_id="a.example", cred_ids=[setup.cred_id("bob")], token=token,
                              protocol=setup.protocol)
    assert assertion.user == {"id": b"bob", "name": "robert", "displayName": "Robert B."}
    # absent fields are removed
    setup.cm().update_user_info(setup.descriptor("bob"), {"id": b"bob", "name": "rob"})
    setup.fido.restart()
    setup.reconnect()
    token = setup.token(PERM.GET_ASSERTION, "a.example")
    assertion = get_assertion(setup.ctap, rp_id="a.example", cred_ids=[setup.cred_id("bob")], token=token,
                              protocol=setup.protocol)
    assert assertion.user == {"id": b"bob", "name": "rob"}
    # the user id is not changed by an update
    with pytest.raises(CtapError) as e:
        setup.cm().update_user_info(setup.descriptor("bob"), {"id": b"mallory", "name": "x"})
    assert _code(e) == ERR.INVALID_PARAMETER


def test_token_permission_and_rp_binding(setup):
    with pytest.raises(CtapError) as e:
        setup.cm(permissions=PERM.GET_ASSERTION, rp_id="a.example").get_metadata()
    assert _code(e) == ERR.PIN_AUTH_INVALID
    bound = setup.cm(rp_id="a.example")
    for call in (bound.get_metadata, bound.enumerate_rps_begin):
        with pytest.raises(CtapError) as e:
            call()
        assert _code(e) == ERR.PIN_AUTH_INVALID
    assert len(bound.enumerate_creds(_sha("a.example"))) == 2
    with pytest.raises(CtapError) as e:
        bound.enumerate_creds_begin(_sha("b.example"))
    assert _code(e) == ERR.PIN_AUTH_INVALID
    with pytest.raises(CtapError) as e:
        bound.delete_cred(setup.descriptor("carol"))
    assert _code(e) == ERR.PIN_AUTH_INVALID
    with pytest.raises(CtapError) as e:
        bound.update_user_info(setup.descriptor("carol"), {"id": b"carol", "name": "x"})
    assert _code(e) == ERR.PIN_AUTH_INVALID
    bound.delete_cred(setup.descriptor("bob"))
    assert [c[RESULT.USER]["name"] for c in setup.cm().enumerate_creds(_sha("a.example"))] == ["alice"]


def test_requests_without_a_valid_token(setup):
    raw = setup.fido.raw
    assert raw(b"\x0a\xa1\x01\x01") == bytes([ERR.PUAT_REQUIRED])
    assert raw(b"\x0a\xa2\x01\x01\x04\x50" + b"\x00" * 16) == bytes([ERR.MISSING_PARAMETER])
    assert raw(b"\x0a\xa3\x01\x01\x03\x01\x04\x50" + b"\x00" * 16) == bytes([ERR.PIN_AUTH_INVALID])
    assert raw(b"\x0a\xa1\x01\x18\x42") == bytes([ERR.INVALID_SUBCOMMAND])
    # getNext without a begin, and after another command ended the enumeration
    assert raw(b"\x0a\xa1\x01\x03") == bytes([ERR.NOT_ALLOWED])
    assert raw(b"\x0a\xa1\x01\x05") == bytes([ERR.NOT_ALLOWED])
    cm = setup.cm()
    first = cm.enumerate_rps_begin()
    assert first[RESULT.TOTAL_RPS] == 2
    setup.ctap.get_info()
    with pytest.raises(CtapError) as e:
        cm.enumerate_rps_next()
    assert _code(e) == ERR.NOT_ALLOWED
    # enumerating past the end
    cm.enumerate_rps_begin()
    cm.enumerate_rps_next()
    with pytest.raises(CtapError) as e:
        cm.enumerate_rps_next()
    assert _code(e) == ERR.NOT_ALLOWED


def test_without_pin_and_after_reset(fido):
    ctap = fido.ctap2()
    make_credential(ctap, rk=True)
    assert fido.raw(b"\x0a\xa1\x01\x01") == bytes([ERR.PUAT_REQUIRED])
    assert fido.raw(b"\x0a\xa3\x01\x01\x03\x02\x04\x58\x20" + b"\x00" * 32) == bytes([ERR.PIN_NOT_SET])
    ClientPin(ctap).set_pin(PIN)
    ctap = Ctap2(fido.device)
    protocol = PinProtocolV2()
    cm = CredentialManagement(ctap, protocol, ClientPin(ctap, protocol).get_pin_token(PIN, PERM.CREDENTIAL_MGMT))
    assert cm.get_metadata()[RESULT.EXISTING_CRED_COUNT] == 1
    ctap.reset()
    ClientPin(ctap).set_pin(PIN)
    ctap = Ctap2(fido.device)
    cm = CredentialManagement(ctap, protocol, ClientPin(ctap, protocol).get_pin_token(PIN, PERM.CREDENTIAL_MGMT))
    assert cm.get_metadata() == {RESULT.EXISTING_CRED_COUNT: 0, RESULT.MAX_REMAINING_COUNT: CTAP2_MAX_RESIDENT}
    assert cm.enumerate_rps() == []


def test_power_cycle_ends_an_enumeration(setup):
    cm = setup.cm()
    assert cm.enumerate_creds_begin(_sha("a.example"))[RESULT.TOTAL_CREDENTIALS] == 2
    setup.fido.power_cycle()
    setup.reconnect()
    assert setup.fido.raw(b"\x0a\xa1\x01\x05") == bytes([ERR.NOT_ALLOWED])
