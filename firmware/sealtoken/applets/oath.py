"""YKOATH applet: OATH HOTP/TOTP credentials as yubikit's OathSession expects them.

Wire protocol: docs/protocols.md section 7 (the YKOATH specification as
yubikit 5.9 speaks it). Every credential lives in one store record; the order of
credentials (LIST, CALCULATE ALL) is kept in an index record, updated in the same
atomic store update as the credential it names.

Status words:
  6982  locked (access code set, no VALIDATE yet), or touch refused / timed out
  6984  no such credential (CALCULATE, DELETE, RENAME)
  6A80  malformed data, wrong VALIDATE / SET CODE response
  6A84  no space for another credential
  6A86  wrong P1/P2 (RESET without DE AD, CALCULATE P2 not 00/01)
  6A89  RENAME to a name that exists
  6985  PROPERTY "increasing" credential got a challenge not above the last one

MicroPython rules: plain classes, bytes/bytearray, crypto through the platform.
"""
from sealtoken.applets import AID_OATH
from sealtoken.core.applet import Applet, ApduError
from sealtoken.core.hmac import ct_equal, wipe
from sealtoken.core.hmac import hmac as _hmac
from sealtoken.core.iso7816 import (SW_CONDITIONS_NOT_SATISFIED, SW_DATA_INVALID, SW_FILE_EXISTS,
                                    SW_INCORRECT_P1P2, SW_INS_NOT_SUPPORTED, SW_NO_SPACE,
                                    SW_SECURITY_STATUS_NOT_SATISFIED, SW_WRONG_DATA, find_tlv,
                                    read_ber_length, tlv)
from sealtoken.core.keys import OATH_KEY_CODE, OATH_KEY_CRED_FIRST, OATH_KEY_INDEX, OATH_KEY_SALT
from sealtoken.core.micro import const
from sealtoken.core.platform import UP_APPROVED
from sealtoken.core.storage import StoreFullError

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_OATH_VERSION = (5, 7, 1)                         # what SELECT reports; yubikit enables RENAME from 5.3.1
_OATH_INS_PUT = const(0x01)
_OATH_INS_DELETE = const(0x02)
_OATH_INS_SET_CODE = const(0x03)
_OATH_INS_RESET = const(0x04)
_OATH_INS_RENAME = const(0x05)
_OATH_INS_LIST = const(0xA1)
OATH_INS_CALCULATE = const(0xA2)
_OATH_INS_VALIDATE = const(0xA3)
_OATH_INS_CALCULATE_ALL = const(0xA4)
OATH_INS_SEND_REMAINING = const(0xA5)
OATH_TAG_NAME = const(0x71)                       # also the salt in the SELECT response
_OATH_TAG_NAME_LIST = const(0x72)
_OATH_TAG_KEY = const(0x73)
OATH_TAG_CHALLENGE = const(0x74)
OATH_TAG_RESPONSE = const(0x75)
_OATH_TAG_TRUNCATED = const(0x76)
_OATH_TAG_HOTP = const(0x77)
_OATH_TAG_PROPERTY = const(0x78)                  # one value byte, no length byte
OATH_TAG_VERSION = const(0x79)
_OATH_TAG_IMF = const(0x7A)
_OATH_TAG_ALGORITHM = const(0x7B)
_OATH_TAG_TOUCH = const(0x7C)
_OATH_MASK_TYPE = const(0xF0)
_OATH_MASK_ALGO = const(0x0F)
_OATH_TYPE_HOTP = const(0x10)
_OATH_TYPE_TOTP = const(0x20)
_OATH_ALG_SHA1 = const(0x01)
_OATH_ALG_SHA256 = const(0x02)
_OATH_ALG_SHA512 = const(0x03)
_OATH_PROP_INCREASING = const(0x01)
_OATH_PROP_TOUCH = const(0x02)
_OATH_SALT_LEN = const(8)
_OATH_CHALLENGE_LEN = const(8)
_OATH_MAX_NAME_LEN = const(64)
_OATH_MAX_KEY_LEN = const(256)                    # longer keys than a hash block are hashed (RFC 2104) before storing
_OATH_MAX_CHALLENGE_LEN = const(64)
_OATH_MIN_DIGITS = const(4)
_OATH_MAX_DIGITS = const(10)
_OATH_MAX_CREDENTIALS = const(32)
_OATH_TOUCH_TIMEOUT_MS = const(15000)

# record layout (one store value per credential):
#   [0] type|algo  [1] digits  [2] properties  [3:11] counter / last challenge (big endian)
#   [11] name length  [12:12+n] name  [12+n:] key
_REC_TYPE = 0
_REC_DIGITS = 1
_REC_PROPS = 2
_REC_COUNTER = 3
_REC_NAME_LEN = 11
_REC_NAME = 12

_HASHES = {
    _OATH_ALG_SHA1: ("sha1", 64),
    _OATH_ALG_SHA256: ("sha256", 64),
    _OATH_ALG_SHA512: ("sha512", 128),
}


def _parse_tlvs(data):
    """[(tag, value), ...] of BER-TLV data (one-byte tags).

    PROPERTY (78) is special: YKOATH sends its single value byte with no length.
    Raises ApduError(6A80) on anything malformed.
    """
    out = []
    pos = 0
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == _OATH_TAG_PROPERTY:
            if pos >= end:
                raise ApduError(SW_WRONG_DATA)
            out.append((tag, data[pos:pos + 1]))
            pos += 1
            continue
        n, pos = read_ber_length(data, pos, end)
        if pos + n > end:
            raise ApduError(SW_WRONG_DATA)
        out.append((tag, data[pos:pos + n]))
        pos += n
    return out


def _only(tlvs, allowed):
    for tag, _ in tlvs:
        if tag not in allowed:
            raise ApduError(SW_WRONG_DATA)


def _check_name(name):
    if not 1 <= len(name) <= _OATH_MAX_NAME_LEN:
        raise ApduError(SW_WRONG_DATA)
    return bytes(name)


class OathApplet(Applet):
    AID = AID_OATH
    SEND_REMAINING_INS = OATH_INS_SEND_REMAINING

    def __init__(self, platform, store):
        Applet.__init__(self, platform, store)
        self._challenge = None  # pending VALIDATE challenge (bytes) or None
        self._unlocked = False

    # --- session ------------------------------------------------------------
    def deselect(self):
        self._challenge = None
        self._unlocked = False

    def _salt(self):
        salt = self.store.get(OATH_KEY_SALT)
        if salt is None or len(salt) != _OATH_SALT_LEN:
            salt = bytes(self.platform.random_bytes(_OATH_SALT_LEN))
            self.store.put(OATH_KEY_SALT, salt)
        return salt

    def _access_code(self):
        """(algorithm, key) of the access code, or None."""
        rec = self.store.get(OATH_KEY_CODE)
        if not rec or len(rec) < 2:
            return None
        return rec[0], rec[1:]

    def _require_unlocked(self):
        if self._unlocked:
            return
        if self._access_code() is not None:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)

    def select(self, command):
        self._challenge = None
        self._unlocked = False
        resp = tlv(OATH_TAG_VERSION, bytes(_OATH_VERSION))
        resp += tlv(OATH_TAG_NAME, self._salt())
        code = self._access_code()
        if code is not None:
            self._challenge = bytes(self.platform.random_bytes(_OATH_CHALLENGE_LEN))
            resp += tlv(OATH_TAG_CHALLENGE, self._challenge)
            resp += tlv(_OATH_TAG_ALGORITHM, bytes((code[0],)))
        else:
            self._unlocked = True
        return resp

    # --- dispatch --------------------------------------------------------------
    def process(self, command):
        ins = command.ins
        if ins == _OATH_INS_RESET:
            return self._reset(command)
        if ins == _OATH_INS_VALIDATE:
            return self._validate(command)
        if ins == _OATH_INS_PUT:
            handler = self._put
        elif ins == _OATH_INS_DELETE:
            handler = self._delete
        elif ins == _OATH_INS_SET_CODE:
            handler = self._set_code
        elif ins == _OATH_INS_RENAME:
            handler = self._rename
        elif ins == _OATH_INS_LIST:
            handler = self._list
        elif ins == OATH_INS_CALCULATE:
            handler = self._calculate
        elif ins == _OATH_INS_CALCULATE_ALL:
            handler = self._calculate_all
        else:
            raise ApduError(SW_INS_NOT_SUPPORTED)
        self._require_unlocked()
        return handler(command)

    # --- credential records ---------------------------------------------------------
    def _index(self):
        """Slots in use, in creation order (a list: MicroPython's bytearray has no `in`/remove)."""
        idx = self.store.get(OATH_KEY_INDEX)
        return [b for b in idx] if idx else []

    def _find_slot(self, name, index=None):
        """(slot, record) of the credential called name, or (None, None)."""
        if index is None:
            index = self._index()
        for slot in index:
            rec = self.store.get(OATH_KEY_CRED_FIRST + slot)
            if rec is not None and _rec_name(rec) == name:
                return slot, rec
        return None, None

    def _records(self):
        out = []
        for slot in self._index():
            rec = self.store.get(OATH_KEY_CRED_FIRST + slot)
            if rec is not None:
                out.append(rec)
        return out

    # --- commands ------------------------------------------------------------------
    def _put(self, command):
        tlvs = _parse_tlvs(command.data)
        _only(tlvs, (OATH_TAG_NAME, _OATH_TAG_KEY, _OATH_TAG_PROPERTY, _OATH_TAG_IMF))
        name = _check_name(find_tlv(tlvs, OATH_TAG_NAME))
        keydata = find_tlv(tlvs, _OATH_TAG_KEY)
        if len(keydata) < 3:
            raise ApduError(SW_WRONG_DATA)
        type_algo = keydata[0]
        digits = keydata[1]
        oath_type = type_algo & _OATH_MASK_TYPE
        algo = type_algo & _OATH_MASK_ALGO
        if oath_type not in (_OATH_TYPE_HOTP, _OATH_TYPE_TOTP) or algo not in _HASHES:
            raise ApduError(SW_WRONG_DATA)
        if not _OATH_MIN_DIGITS <= digits <= _OATH_MAX_DIGITS:
            raise ApduError(SW_WRONG_DATA)
        hash_name, block = _HASHES[algo]
        key = keydata[2:]
        if len(key) > _OATH_MAX_KEY_LEN:
            raise ApduError(SW_WRONG_DATA)
        if len(key) > block:  # RFC 2104: keys longer than a block are hashed first
            key = self.platform.hash(hash_name, bytes(key))
        props = find_tlv(tlvs, _OATH_TAG_PROPERTY, required=False)
        props = props[0] if props else 0
        if props & ~(_OATH_PROP_INCREASING | _OATH_PROP_TOUCH):
            raise ApduError(SW_WRONG_DATA)
        imf = find_tlv(tlvs, _OATH_TAG_IMF, required=False)
        counter = 0
        if imf is not None:
            if not 1 <= len(imf) <= 8:
                raise ApduError(SW_WRONG_DATA)
            for b in imf:
                counter = (counter << 8) | b
        rec = bytearray((type_algo, digits, props))
        rec += _u64(counter)
        rec.append(len(name))
        rec += name
        rec += key
        index = self._index()
        slot, _ = self._find_slot(name, index)
        if slot is None:
            if len(index) >= _OATH_MAX_CREDENTIALS:
                raise ApduError(SW_NO_SPACE)
            slot = 0
            while slot in index:
                slot += 1
            index.append(slot)
            changes = {OATH_KEY_CRED_FIRST + slot: bytes(rec), OATH_KEY_INDEX: bytes(index)}
            scrub = False
        else:
            changes = {OATH_KEY_CRED_FIRST + slot: bytes(rec)}
            scrub = True  # the replaced key must not stay in flash
        wipe(rec)
        try:
            self.store.update(changes, scrub)
        except StoreFullError:
            raise ApduError(SW_NO_SPACE)
        return b""

    def _delete(self, command):
        tlvs = _parse_tlvs(command.data)
        name = _check_name(find_tlv(tlvs, OATH_TAG_NAME))
        index = self._index()
        slot, _ = self._find_slot(name, index)
        if slot is None:
            raise ApduError(SW_DATA_INVALID)
        index.remove(slot)
        self.store.update({OATH_KEY_CRED_FIRST + slot: None,
                           OATH_KEY_INDEX: bytes(index) if index else None}, True)
        return b""

    def _rename(self, command):
        tlvs = _parse_tlvs(command.data)
        _only(tlvs, (OATH_TAG_NAME,))
        if len(tlvs) != 2:
            raise ApduError(SW_WRONG_DATA)
        old = _check_name(tlvs[0][1])
        new = _check_name(tlvs[1][1])
        index = self._index()
        slot, rec = self._find_slot(old, index)
        if slot is None:
            raise ApduError(SW_DATA_INVALID)
        if new != old and self._find_slot(new, index)[0] is not None:
            raise ApduError(SW_FILE_EXISTS)
        n = rec[_REC_NAME_LEN]
        renamed = bytearray(rec[:_REC_NAME_LEN])
        renamed.append(len(new))
        renamed += new
        renamed += rec[_REC_NAME + n:]
        self.store.put(OATH_KEY_CRED_FIRST + slot, bytes(renamed))
        wipe(renamed)
        return b""

    def _list(self, command):
        out = bytearray()
        for rec in self._records():
            out += tlv(_OATH_TAG_NAME_LIST, bytes((rec[_REC_TYPE],)) + _rec_name(rec))
        return bytes(out)

    def _calculate(self, command):
        if command.p2 not in (0x00, 0x01):
            raise ApduError(SW_INCORRECT_P1P2)
        tlvs = _parse_tlvs(command.data)
        name = _check_name(find_tlv(tlvs, OATH_TAG_NAME))
        challenge = find_tlv(tlvs, OATH_TAG_CHALLENGE, required=False)
        if challenge is None:
            challenge = b""
        if len(challenge) > _OATH_MAX_CHALLENGE_LEN:
            raise ApduError(SW_WRONG_DATA)
        slot, rec = self._find_slot(name)
        if slot is None:
            raise ApduError(SW_DATA_INVALID)
        if rec[_REC_PROPS] & _OATH_PROP_TOUCH:
            self._touch()
        digest = self._compute(slot, rec, challenge)
        digits = bytes((rec[_REC_DIGITS],))
        try:
            if command.p2 == 0x01:
                return tlv(_OATH_TAG_TRUNCATED, digits + _truncate(digest))
            return tlv(OATH_TAG_RESPONSE, digits + bytes(digest))
        finally:
            wipe(digest)

    def _calculate_all(self, command):
        if command.p2 not in (0x00, 0x01):
            raise ApduError(SW_INCORRECT_P1P2)
        tlvs = _parse_tlvs(command.data)
        challenge = find_tlv(tlvs, OATH_TAG_CHALLENGE)
        if len(challenge) > _OATH_MAX_CHALLENGE_LEN:
            raise ApduError(SW_WRONG_DATA)
        out = bytearray()
        for slot in self._index():
            rec = self.store.get(OATH_KEY_CRED_FIRST + slot)
            if rec is None:
                continue
            out += tlv(OATH_TAG_NAME, _rec_name(rec))
            digits = bytes((rec[_REC_DIGITS],))
            if rec[_REC_TYPE] & _OATH_MASK_TYPE == _OATH_TYPE_HOTP:
                out += tlv(_OATH_TAG_HOTP, digits)
            elif rec[_REC_PROPS] & _OATH_PROP_TOUCH:
                out += tlv(_OATH_TAG_TOUCH, digits)
            else:
                digest = self._compute(slot, rec, challenge)
                if command.p2 == 0x01:
                    out += tlv(_OATH_TAG_TRUNCATED, digits + _truncate(digest))
                else:
                    out += tlv(OATH_TAG_RESPONSE, digits + bytes(digest))
                wipe(digest)
        return bytes(out)

    def _touch(self):
        result = self.platform.wait_user_presence(_OATH_TOUCH_TIMEOUT_MS, _no_cancel)
        if result != UP_APPROVED:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)

    def _compute(self, slot, rec, challenge):
        """HMAC of the credential over challenge (TOTP) or its counter (HOTP); a bytearray."""
        hash_name = _HASHES[rec[_REC_TYPE] & _OATH_MASK_ALGO][0]
        key = rec[_REC_NAME + rec[_REC_NAME_LEN]:]
        previous = _rec_counter(rec)
        if rec[_REC_TYPE] & _OATH_MASK_TYPE == _OATH_TYPE_HOTP:
            message = _u64(previous)
            # the counter moves on before the code leaves the token
            self._save_counter(slot, rec, previous + 1)
        else:
            message = bytes(challenge)
            if rec[_REC_PROPS] & _OATH_PROP_INCREASING:
                value = 0
                for b in message[-8:]:
                    value = (value << 8) | b
                if len(message) > 8 or (previous and value <= previous):
                    raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
                self._save_counter(slot, rec, value)
        return bytearray(_hmac(self.platform, hash_name, key, message))

    def _save_counter(self, slot, rec, value):
        updated = bytearray(rec)
        updated[_REC_COUNTER:_REC_COUNTER + 8] = _u64(value & 0xFFFFFFFFFFFFFFFF)
        self.store.put(OATH_KEY_CRED_FIRST + slot, bytes(updated))
        wipe(updated)

    def _validate(self, command):
        tlvs = _parse_tlvs(command.data)
        response = find_tlv(tlvs, OATH_TAG_RESPONSE)
        host_challenge = find_tlv(tlvs, OATH_TAG_CHALLENGE)
        code = self._access_code()
        if code is None:
            raise ApduError(SW_DATA_INVALID)
        challenge = self._challenge
        # one try per SELECT: a wrong answer needs a new challenge
        self._challenge = None
        if challenge is None:
            raise ApduError(SW_WRONG_DATA)
        hash_name = _HASHES.get(code[0], _HASHES[_OATH_ALG_SHA1])[0]
        expected = bytearray(_hmac(self.platform, hash_name, code[1], challenge))
        ok = ct_equal(expected, response)
        wipe(expected)
        if not ok:
            self._unlocked = False
            raise ApduError(SW_WRONG_DATA)
        self._unlocked = True
        return tlv(OATH_TAG_RESPONSE, _hmac(self.platform, hash_name, code[1], bytes(host_challenge)))

    def _set_code(self, command):
        tlvs = _parse_tlvs(command.data)
        _only(tlvs, (_OATH_TAG_KEY, OATH_TAG_CHALLENGE, OATH_TAG_RESPONSE))
        keydata = find_tlv(tlvs, _OATH_TAG_KEY)
        if len(keydata) == 0:
            self.store.update({OATH_KEY_CODE: None}, True)
            return b""
        algo = keydata[0] & _OATH_MASK_ALGO
        key = keydata[1:]
        if algo not in _HASHES or not 1 <= len(key) <= _HASHES[algo][1]:
            raise ApduError(SW_WRONG_DATA)
        challenge = find_tlv(tlvs, OATH_TAG_CHALLENGE)
        response = find_tlv(tlvs, OATH_TAG_RESPONSE)
        expected = bytearray(_hmac(self.platform, _HASHES[algo][0], key, challenge))
        ok = ct_equal(expected, response)
        wipe(expected)
        if not ok:
            raise ApduError(SW_WRONG_DATA)
        rec = bytearray((algo,))
        rec += key
        value = bytes(rec)
        wipe(rec)
        self.store.update({OATH_KEY_CODE: value}, True)
        self._unlocked = True
        return b""

    def _reset(self, command):
        if command.p1 != 0xDE or command.p2 != 0xAD:
            raise ApduError(SW_INCORRECT_P1P2)
        changes = {OATH_KEY_CODE: None, OATH_KEY_INDEX: None,
                   OATH_KEY_SALT: bytes(self.platform.random_bytes(_OATH_SALT_LEN))}
        for slot in range(_OATH_MAX_CREDENTIALS):
            changes[OATH_KEY_CRED_FIRST + slot] = None
        self.store.update(changes, True)
        self._challenge = None
        self._unlocked = True
        return b""


def _no_cancel(status):
    return False


def _u64(value):
    out = bytearray(8)
    for i in range(7, -1, -1):
        out[i] = value & 0xFF
        value >>= 8
    return bytes(out)


def _rec_name(rec):
    n = rec[_REC_NAME_LEN]
    return bytes(rec[_REC_NAME:_REC_NAME + n])


def _rec_counter(rec):
    value = 0
    for b in rec[_REC_COUNTER:_REC_COUNTER + 8]:
        value = (value << 8) | b
    return value


def _truncate(digest):
    """RFC 4226 dynamic truncation: 4 bytes, top bit cleared."""
    offset = digest[-1] & 0x0F
    return bytes((digest[offset] & 0x7F, digest[offset + 1], digest[offset + 2], digest[offset + 3]))
