"""Credentials of the authenticator: their ids, keys, resident records and the signature counter.

Every credential has an encrypted, authenticated credential id (97 bytes):

    id = 01 || IV(16) || AES-256-CBC(K_enc, IV, d(32) || flags(1) || 0(15)) || TAG(32)
    TAG = HMAC-SHA-256(K_mac, 01 || IV || ciphertext || rpIdHash)

d is the credential's P-256 private scalar; flags hold the credProtect level
(bits 0-1), hmac-secret (bit 2) and "resident" (bit 3). K_enc, K_mac and K_cr are
HMAC-SHA-256(master, label) of a 32-byte master secret made on first use and
kept in the store (FIDO_KEY_MASTER). An id made for another RP, altered in any
bit, or made before a reset fails the tag check and is treated as unknown.
The hmac-secret secrets of a credential are

    CredRandomWithUV    = HMAC-SHA-256(K_cr, "CredRandomWithUV" || d)
    CredRandomWithoutUV = HMAC-SHA-256(K_cr, "CredRandomWithoutUV" || d)

so they exist nowhere but inside the token, survive restarts, and die with the
master secret at reset. Resident credentials additionally have a store record
(FIDO_KEY_RK_FIRST..LAST, CBOR map with the RK_* keys below) holding their id,
rpIdHash, rpId (first 32 bytes), user id, name and displayName (first 64 bytes
each) and creation stamp; an id with the resident flag is honoured only while
its record exists. One signature counter for all credentials
(FIDO_KEY_SIGN_COUNT) is incremented and persisted for every makeCredential
and every assertion.

MicroPython rules: plain classes, integer constants, crypto via the Platform.
"""
from sealtoken.core import cbor
from sealtoken.core.cbor import CtapError
from sealtoken.core.hmac import ct_equal, hmac_sha256, wipe
from sealtoken.core.keys import FIDO_KEY_MASTER, FIDO_KEY_RK_FIRST, FIDO_KEY_RK_LAST, FIDO_KEY_SIGN_COUNT
from sealtoken.core.micro import const
from sealtoken.fido import const as C

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_CTAP2_CRED_ID_VERSION = const(0x01)

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

FLAG_PROTECT_MASK = 0x03
FLAG_HMAC_SECRET = 0x04
FLAG_RESIDENT = 0x08
_FLAGS_KNOWN = 0x0F

_CRED_ID_LEN = 1 + 16 + 48 + 32
_PAYLOAD_LEN = 48

# keys of a resident record (CBOR map in the store)
RK_ID = 1
RK_RP_ID_HASH = 2
RK_RP_ID = 3
RK_USER_ID = 4
RK_USER_NAME = 5
RK_USER_DISPLAY_NAME = 6
RK_CREATED = 7


def truncate_text(text, limit):
    """text cut to at most limit UTF-8 bytes, at a code point boundary."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    cut = limit
    while cut > 0 and (raw[cut] & 0xC0) == 0x80:
        cut -= 1
    return str(raw[:cut], "utf-8")


class Cred:
    """A credential found for a request."""

    def __init__(self, cred_id, private, flags, record=None):
        self.id = cred_id
        self.private = private            # bytearray(32), wiped when done
        self.flags = flags
        self.record = record              # decoded resident record, or None

    def protect(self):
        level = self.flags & FLAG_PROTECT_MASK
        return level if level else C.CTAP2_CRED_PROTECT_UV_OPTIONAL

    def created(self):
        stamp = self.record.get(RK_CREATED) if self.record else None
        return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else 0

    def wipe(self):
        wipe(self.private)


class Credentials:
    """Credential ids, their keys, resident records and the signature counter, over the store."""

    def __init__(self, platform, store):
        self.platform = platform
        self.store = store
        self._keys = None          # (K_enc, K_mac, K_cr) bytearrays, from the master secret

    def drop_keys(self):
        if self._keys is not None:
            for k in self._keys:
                wipe(k)
        self._keys = None

    # --- keys and credential ids -------------------------------------------------------
    def keys(self, create):
        """(K_enc, K_mac, K_cr), making the master secret if create; None if there is none."""
        if self._keys is None:
            master = self.store.get(FIDO_KEY_MASTER)
            if master is None or len(master) != 32:
                if not create:
                    return None
                master = bytes(self.platform.random_bytes(32))
                self.store.put(FIDO_KEY_MASTER, master)
            self._keys = (bytearray(hmac_sha256(master, b"sealtoken/fido/credential-id/enc")),
                          bytearray(hmac_sha256(master, b"sealtoken/fido/credential-id/mac")),
                          bytearray(hmac_sha256(master, b"sealtoken/fido/cred-random")))
        return self._keys

    def seal_id(self, rp_id_hash, private, flags):
        k_enc, k_mac, _ = self.keys(True)
        iv = bytes(self.platform.random_bytes(16))
        payload = bytearray(_PAYLOAD_LEN)
        payload[0:32] = private
        payload[32] = flags
        ciphertext = self.platform.aes256_cbc_encrypt(bytes(k_enc), iv, bytes(payload))
        body = bytes((_CTAP2_CRED_ID_VERSION,)) + iv + ciphertext
        wipe(payload)
        return body + hmac_sha256(k_mac, body + rp_id_hash)

    def open_id(self, rp_id_hash, cred_id):
        """Cred of an id this token made for this RP, else None (never an error)."""
        if len(cred_id) != _CRED_ID_LEN or cred_id[0] != _CTAP2_CRED_ID_VERSION:
            return None
        keys = self.keys(False)
        if keys is None:
            return None
        k_enc, k_mac, _ = keys
        body = cred_id[:-32]
        if not ct_equal(hmac_sha256(k_mac, body + rp_id_hash), cred_id[-32:]):
            return None
        payload = bytearray(self.platform.aes256_cbc_decrypt(bytes(k_enc), body[1:17], body[17:]))
        flags = payload[32]
        private = bytearray(payload[0:32])
        tail_ok = flags & ~_FLAGS_KNOWN == 0 and payload[33:] == bytes(_PAYLOAD_LEN - 33)
        wipe(payload)
        d = int.from_bytes(bytes(private), "big")
        if not tail_ok or not 0 < d < _P256_ORDER:
            wipe(private)
            return None
        return Cred(bytes(cred_id), private, flags)

    def cred_random(self, cred, uv):
        k_cr = self.keys(True)[2]
        label = b"CredRandomWithUV" if uv else b"CredRandomWithoutUV"
        return hmac_sha256(k_cr, label + bytes(cred.private))

    # --- resident records ------------------------------------------------------------
    def resident_slots(self):
        """[(store key, record dict)] of every readable resident record."""
        out = []
        for key in self.store.keys(FIDO_KEY_RK_FIRST, FIDO_KEY_RK_LAST):
            raw = self.store.get(key)
            try:
                record = cbor.decode(raw)
            except CtapError:
                continue
            if (isinstance(record, dict) and isinstance(record.get(RK_ID), bytes)
                    and isinstance(record.get(RK_RP_ID_HASH), bytes) and isinstance(record.get(RK_USER_ID), bytes)):
                out.append((key, record))
        return out

    def resident_by_id(self, cred_id):
        for _, record in self.resident_slots():
            if ct_equal(record[RK_ID], cred_id):
                return record
        return None

    def resident_slot_for(self, rp_id_hash, user_id):
        """Store key for a new resident credential: same RP and user id replaces; else a free slot."""
        used = set()
        for key, record in self.resident_slots():
            used.add(key)
            if record.get(RK_RP_ID_HASH) == rp_id_hash and record.get(RK_USER_ID) == user_id:
                return key
        # unreadable records occupy their slot too
        for key in self.store.keys(FIDO_KEY_RK_FIRST, FIDO_KEY_RK_LAST):
            used.add(key)
        for key in range(FIDO_KEY_RK_FIRST, FIDO_KEY_RK_LAST + 1):
            if key not in used:
                return key
        raise CtapError(C.CTAP2_ERR_KEY_STORE_FULL, "no free resident slot")

    # --- signature counter -----------------------------------------------------------
    def next_count(self):
        raw = self.store.get(FIDO_KEY_SIGN_COUNT)
        count = int.from_bytes(raw, "big") if raw is not None and len(raw) == 4 else 0
        count = (count + 1) & 0xFFFFFFFF
        return count, count.to_bytes(4, "big")
