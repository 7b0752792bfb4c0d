"""The FIDO side of the fuzz harnesses: seed sessions, known secrets, the PIN try counter.

`record_session(authenticator)` drives a whole python-fido2 session (reset,
credentials with hmac-secret and credProtect, discoverable assertions, PIN with
both protocols, credential management, authenticatorConfig) and returns the
requests it sent: valid for the token's state at that moment (its key-agreement
key, its PIN), so mutations of them reach deep into every command handler.
"""

from __future__ import annotations

from fido2.ctap2 import Config, Ctap2, CredentialManagement
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from sealtoken.core import cbor

from fido._direct_device import DirectCtapDevice
from fido.conftest import CDH, RP_ID, cred_id_of, make_credential
from ._harness import Tries
from sealtoken.core.keys import FIDO_KEY_MASTER, FIDO_KEY_PIN_HASH, FIDO_KEY_PIN_RETRIES
from sealtoken.fido.const import CTAP2_CMD_RESET, CTAP2_PIN_RETRIES_MAX

FIDO_PIN = "fuzzing-fido-pin"

KNOWN_STATUS = {0x00, 0x01, 0x02, 0x03, 0x11, 0x12, 0x14, 0x19, 0x26, 0x27, 0x28, 0x2B, 0x2C, 0x2D, 0x2E,
                0x2F, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x39, 0x3E, 0x40}


def record_session(auth):
    device = DirectCtapDevice(auth)
    ctap = Ctap2(device)
    ctap.reset()
    plain = make_credential(ctap, extensions={"hmac-secret": True, "credProtect": 2},
                            exclude=[{"type": "public-key", "id": b"\x01" * 97}])
    auth.fuzz_plain_ids = [cred_id_of(plain)]
    for i in range(2):
        make_credential(ctap, rk=True, user_id=bytes([i]), extensions={"hmac-secret": True})
    ctap.get_assertions(RP_ID, CDH)
    ctap.selection()
    ClientPin(ctap, PinProtocolV2()).set_pin(FIDO_PIN)
    ctap = Ctap2(device)
    perm = ClientPin.PERMISSION
    for proto in (PinProtocolV1(), PinProtocolV2()):
        cp = ClientPin(ctap, proto)
        token = cp.get_pin_token(FIDO_PIN, perm.MAKE_CREDENTIAL | perm.GET_ASSERTION, RP_ID)
        make_credential(ctap, token=token, protocol=proto, rk=True, user_id=b"pin")
        token = cp.get_pin_token(FIDO_PIN)
        ctap.get_assertion(RP_ID, CDH, None, None, None, proto.authenticate(token, CDH), proto.VERSION)
        ctap.get_next_assertion()
        cp.get_pin_retries()
        key_agreement, secret = cp._get_shared_secret()
        salt_enc = proto.encrypt(secret, b"s" * 64)
        ctap.get_assertion(RP_ID, CDH, [{"type": "public-key", "id": auth.fuzz_plain_ids[0]}],
                           {"hmac-secret": {1: key_agreement, 2: salt_enc, 3: proto.authenticate(secret, salt_enc),
                                            4: proto.VERSION}})
        cm = CredentialManagement(ctap, proto, cp.get_pin_token(FIDO_PIN, perm.CREDENTIAL_MGMT))
        cm.get_metadata()
        rps = cm.enumerate_rps()
        creds = cm.enumerate_creds(rps[0][CredentialManagement.RESULT.RP_ID_HASH])
        first = creds[0][CredentialManagement.RESULT.CREDENTIAL_ID]
        user = creds[0][CredentialManagement.RESULT.USER]
        cm.update_user_info(first, {"id": user["id"], "name": "renamed", "displayName": "Renamed"})
        if proto.VERSION == 2:
            cm.delete_cred(first)
        config = Config(ctap, proto, cp.get_pin_token(FIDO_PIN, perm.AUTHENTICATOR_CFG))
        config.toggle_always_uv()
        config.toggle_always_uv()
        config.set_min_pin_length(len(FIDO_PIN))
        cp.change_pin(FIDO_PIN, FIDO_PIN)
    return [r for r in device.requests if r and r[0] != CTAP2_CMD_RESET]  # a replayed reset undoes the set-up


def fido_secrets(auth, store):
    """(name, bytes) of every FIDO secret the test can know: master secret, derived keys, PIN hash,
    the pinUvAuthToken, credential private keys and CredRandoms."""
    out = []
    master = store.get(FIDO_KEY_MASTER)
    if master is not None:
        out.append(("fido master", master))
    pin_hash = store.get(FIDO_KEY_PIN_HASH)
    if pin_hash is not None:
        out.append(("fido PIN hash", pin_hash))
    out.append(("fido PIN", FIDO_PIN.encode()))
    token = auth.client_pin._token
    if token is not None:
        out.append(("pinUvAuthToken", bytes(token)))
    keys = auth.credentials.keys(False)
    if keys is None:
        return out
    for name, key in zip(("K_enc", "K_mac", "K_cr"), keys):
        out.append((name, bytes(key)))
    ids = [(rec[1], rec[2]) for _, rec in auth.credentials.resident_slots()]
    for cred_id in getattr(auth, "fuzz_plain_ids", ()):
        ids.append((cred_id, _sha(RP_ID)))
    for cred_id, rp_id_hash in ids:
        cred = auth.credentials.open_id(rp_id_hash, cred_id)
        if cred is None:
            continue
        out.append(("credential private key", bytes(cred.private)))
        out.append(("CredRandomWithUV", auth.credentials.cred_random(cred, True)))
        out.append(("CredRandomWithoutUV", auth.credentials.cred_random(cred, False)))
        cred.wipe()
    return out


def _sha(text):
    import hashlib

    return hashlib.sha256(text.encode()).digest()


def fido_tries(store):
    def read():
        raw = store.get(FIDO_KEY_PIN_RETRIES)
        return CTAP2_PIN_RETRIES_MAX if raw is None or len(raw) != 1 else raw[0]

    return Tries("FIDO clientPIN", read, CTAP2_PIN_RETRIES_MAX)


def check_ctap_response(response, context=""):
    assert isinstance(response, bytes) and len(response) >= 1, context
    assert response[0] in KNOWN_STATUS, (hex(response[0]), context)
    if len(response) > 1:
        from fido2 import cbor as fido2_cbor

        assert response[0] == 0, context
        body = response[1:]
        assert fido2_cbor.encode(fido2_cbor.decode(body)) == body, context
        cbor.decode(body)   # our own decoder reads our own answers


class SecretCache:
    """fido_secrets, recomputed only when the store or the token changed."""

    def __init__(self, auth, store, extra=()):
        self.auth = auth
        self.store = store
        self.extra = list(extra)
        self._key = None
        self._secrets = []

    def get(self, snapshot):
        token = self.auth.client_pin._token
        key = (tuple(sorted(snapshot.items())), None if token is None else bytes(token))
        if key != self._key:
            self._key = key
            self._secrets = fido_secrets(self.auth, self.store) + self.extra
        return self._secrets
