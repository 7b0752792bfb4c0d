"""OpenPGP card applet: an ECDH decryption key (P-256, P-384) as the OpenPGP Card spec 3.4 defines it.

Just what a sealcodes `openpgp` enrollment and the usual clients need:

    INS  command                 P1 P2          data                          notes
    CA   GET DATA                tag            -                             4F 5E 5F50 5F52 65 6E 7A 7F66 C4 FA ...
    DA   PUT DATA                tag            value                         C2 (ECDH attributes), C8, CF, D7; PW3
    DB   PUT DATA (odd)          3F FF          4D { B8, 7F48, 5F48 }          import the decryption key; PW3
    20   VERIFY                  00|FF 81|82|83  PW | -                        empty: status; P1=FF: forget
    24   CHANGE REFERENCE DATA   00 81|83        old || new
    2C   RESET RETRY COUNTER     02 81           new PW1                       needs PW3
    47   GENERATE ASYMMETRIC     80|81 00        B8 (decryption key CRT)       80 needs PW3; 81 reads the public key
    2A   PSO:DECIPHER            80 86           A6 { 7F49 { 86 point } }      needs PW1 mode 82 -> Z
    E6   TERMINATE / 44 ACTIVATE                                                reset (PW3 verified or blocked)
    F1   GET VERSION (Yubico)    00 00                                          for yubikit's OpenPgpSession

PW1 (user, default 123456) and PW3 (admin, default 12345678): OPENPGP_PW_MAX_TRIES
tries each; the counter is decremented and persisted before the comparison and
only a match restores it. Wrong: 6982 (as the spec says), blocked: 6983.
Only the decryption key exists; signature and authentication keys are absent
(their attributes are reported so clients can parse the application data).

MicroPython rules: plain classes, bytes/bytearray, crypto through the platform.
"""
from sealtoken.applets import openpgp_aid
from sealtoken.applets.ec import ec_ecdh, ec_generate, ec_public, ec_size, has_p384
from sealtoken.core.applet import Applet, ApduError
from sealtoken.core.hmac import ct_equal, wipe
from sealtoken.core.iso7816 import (CLA_ISO, SW_AUTH_METHOD_BLOCKED, SW_CLA_NOT_SUPPORTED,
                                    SW_CONDITIONS_NOT_SATISFIED, SW_INCORRECT_P1P2, SW_INS_NOT_SUPPORTED,
                                    SW_NO_SPACE, SW_REFERENCED_DATA_NOT_FOUND,
                                    SW_SECURITY_STATUS_NOT_SATISFIED, SW_VERIFY_FAIL_00, SW_WRONG_DATA,
                                    SW_WRONG_LENGTH, find_tlv, parse_tlvs, read_ber_length, tlv)
from sealtoken.core.keys import (KEY_OPENPGP_DEC_ALGO, KEY_OPENPGP_DEC_FPR, KEY_OPENPGP_DEC_KEY,
                                 KEY_OPENPGP_DEC_TIME, KEY_OPENPGP_FIRST, KEY_OPENPGP_LAST, KEY_OPENPGP_PW1,
                                 KEY_OPENPGP_PW1_TRIES, KEY_OPENPGP_PW3, KEY_OPENPGP_PW3_TRIES,
                                 KEY_OPENPGP_UIF_DEC)
from sealtoken.core.micro import const
from sealtoken.core.platform import UP_APPROVED
from sealtoken.core.storage import StoreFullError, device_serial

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_OPENPGP_FW_VERSION = (5, 7, 0)                   # answered to Yubico's GET VERSION (00 F1) for yubikit
_OPENPGP_INS_SELECT_DATA = const(0xA5)
OPENPGP_INS_GET_DATA = const(0xCA)
_OPENPGP_INS_GET_NEXT_DATA = const(0xCC)
OPENPGP_INS_VERIFY = const(0x20)
OPENPGP_INS_CHANGE_REFERENCE = const(0x24)
_OPENPGP_INS_RESET_RETRY = const(0x2C)
OPENPGP_INS_PUT_DATA = const(0xDA)
OPENPGP_INS_PUT_DATA_ODD = const(0xDB)
OPENPGP_INS_GENERATE = const(0x47)
OPENPGP_INS_PSO = const(0x2A)
OPENPGP_INS_TERMINATE = const(0xE6)
OPENPGP_INS_ACTIVATE = const(0x44)
OPENPGP_INS_GET_VERSION = const(0xF1)             # Yubico extension yubikit sends first
_OPENPGP_INS_GET_CHALLENGE = const(0x84)
_OPENPGP_PW1_SIGN = const(0x81)
_OPENPGP_PW1_OTHER = const(0x82)
OPENPGP_PW3 = const(0x83)
_OPENPGP_PW1_DEFAULT = const(b"123456")
_OPENPGP_PW3_DEFAULT = const(b"12345678")
_OPENPGP_PW1_MIN_LEN = const(6)
_OPENPGP_PW3_MIN_LEN = const(8)
_OPENPGP_PW_MAX_LEN = const(127)
OPENPGP_PW_MAX_TRIES = const(3)
_OPENPGP_PW_SALT_LEN = const(16)
_OPENPGP_P1P2_PSO_DECIPHER = const(0x8086)
_OPENPGP_GENERATE_NEW = const(0x80)
_OPENPGP_GENERATE_READ = const(0x81)
_OPENPGP_CRT_SIG = const(0xB6)
_OPENPGP_CRT_DEC = const(0xB8)
_OPENPGP_CRT_AUT = const(0xA4)
_OPENPGP_ALG_ECDH = const(0x12)                   # algorithm attributes: ECDH || curve OID
OPENPGP_OID_P256 = const(b"\x2a\x86\x48\xce\x3d\x03\x01\x07")
OPENPGP_OID_P384 = const(b"\x2b\x81\x04\x00\x22")
_OPENPGP_DO_AID = const(0x4F)
_OPENPGP_DO_LOGIN = const(0x5E)
_OPENPGP_DO_URL = const(0x5F50)
_OPENPGP_DO_HISTORICAL = const(0x5F52)
_OPENPGP_DO_CARDHOLDER = const(0x65)
_OPENPGP_DO_NAME = const(0x5B)
_OPENPGP_DO_LANG = const(0x5F2D)
_OPENPGP_DO_SEX = const(0x5F35)
_OPENPGP_DO_APP_DATA = const(0x6E)
_OPENPGP_DO_DISCRETIONARY = const(0x73)
_OPENPGP_DO_EXT_CAPS = const(0xC0)
_OPENPGP_DO_ALGO_SIG = const(0xC1)
_OPENPGP_DO_ALGO_DEC = const(0xC2)
_OPENPGP_DO_ALGO_AUT = const(0xC3)
_OPENPGP_DO_PW_STATUS = const(0xC4)
_OPENPGP_DO_FINGERPRINTS = const(0xC5)
_OPENPGP_DO_CA_FINGERPRINTS = const(0xC6)
_OPENPGP_DO_FPR_SIG = const(0xC7)
_OPENPGP_DO_FPR_DEC = const(0xC8)
_OPENPGP_DO_FPR_AUT = const(0xC9)
_OPENPGP_DO_GEN_TIMES = const(0xCD)
_OPENPGP_DO_TIME_SIG = const(0xCE)
_OPENPGP_DO_TIME_DEC = const(0xCF)
_OPENPGP_DO_TIME_AUT = const(0xD0)
_OPENPGP_DO_SECURITY = const(0x7A)
_OPENPGP_DO_SIG_COUNT = const(0x93)
_OPENPGP_DO_EXT_LENGTH = const(0x7F66)
_OPENPGP_DO_KDF = const(0xF9)
_OPENPGP_DO_ALGO_INFO = const(0xFA)
_OPENPGP_DO_UIF_SIG = const(0xD6)
_OPENPGP_DO_UIF_DEC = const(0xD7)
_OPENPGP_DO_UIF_AUT = const(0xD8)
_OPENPGP_DO_CARDHOLDER_CERT = const(0x7F21)
_OPENPGP_DO_PUBLIC_KEY = const(0x7F49)
_OPENPGP_TAG_EC_POINT = const(0x86)
_OPENPGP_TAG_EXT_HEADER = const(0x4D)             # key import (PUT DATA odd, extended header list)
_OPENPGP_TAG_TEMPLATE = const(0x7F48)
_OPENPGP_TAG_KEY_DATA = const(0x5F48)
_OPENPGP_TAG_CIPHER = const(0xA6)

_GENERATED = 1   # key status of DE: made on the card
_IMPORTED = 2    # ... imported
_CURVE_P256 = 1
_CURVE_P384 = 2
_CURVES = {_CURVE_P256: ("p256", OPENPGP_OID_P256), _CURVE_P384: ("p384", OPENPGP_OID_P384)}
_TOUCH_TIMEOUT_MS = 15000
_DEFAULT_ALGO_DEC = bytes((_OPENPGP_ALG_ECDH,)) + OPENPGP_OID_P256
_ALGO_SIG_AUT = bytes((0x13,)) + OPENPGP_OID_P256   # ECDSA P-256: reported, no key


def _bcd(n):
    return ((n // 10) << 4) | (n % 10)


def _curve_of_attributes(value):
    """Curve id of ECDH attributes (with or without the trailing FF import-format byte), or None."""
    if not value or value[0] != _OPENPGP_ALG_ECDH:
        return None
    oid = value[1:]
    if oid and oid[-1] == 0xFF:
        oid = oid[:-1]
    for curve_id in _CURVES:
        if _CURVES[curve_id][1] == oid:
            return curve_id
    return None


class OpenPgpApplet(Applet):
    AID = b""  # set per token in __init__: the full AID carries the serial

    def __init__(self, platform, store):
        Applet.__init__(self, platform, store)
        serial = bytes(device_serial(platform, store))
        self.AID = openpgp_aid(serial)
        self._pw1_sign = False
        self._pw1_other = False
        self._pw3 = False
        self._terminated = False

    # --- session ---------------------------------------------------------------------
    def deselect(self):
        self._pw1_sign = False
        self._pw1_other = False
        self._pw3 = False

    def power_off(self):
        self.deselect()
        self._terminated = False

    def select(self, command):
        self.deselect()
        return b""

    def process(self, command):
        if command.cla != CLA_ISO:
            raise ApduError(SW_CLA_NOT_SUPPORTED)
        ins = command.ins
        if ins == OPENPGP_INS_ACTIVATE:
            self._terminated = False
            return b""
        if self._terminated:
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
        if ins == OPENPGP_INS_GET_DATA:
            return self._get_data(command)
        if ins == OPENPGP_INS_GET_VERSION:
            return bytes(_bcd(v) for v in _OPENPGP_FW_VERSION)
        if ins == OPENPGP_INS_VERIFY:
            return self._verify(command)
        if ins == OPENPGP_INS_PSO:
            return self._decipher(command)
        if ins == OPENPGP_INS_GENERATE:
            return self._generate(command)
        if ins == OPENPGP_INS_CHANGE_REFERENCE:
            return self._change(command)
        if ins == _OPENPGP_INS_RESET_RETRY:
            return self._reset_retry(command)
        if ins == OPENPGP_INS_PUT_DATA:
            return self._put_data(command)
        if ins == OPENPGP_INS_PUT_DATA_ODD:
            return self._import_key(command)
        if ins == OPENPGP_INS_TERMINATE:
            return self._terminate(command)
        raise ApduError(SW_INS_NOT_SUPPORTED)

    # --- passwords ------------------------------------------------------------------------
    @staticmethod
    def _pw_keys(pw):
        if pw == OPENPGP_PW3:
            return KEY_OPENPGP_PW3, KEY_OPENPGP_PW3_TRIES, _OPENPGP_PW3_DEFAULT
        return KEY_OPENPGP_PW1, KEY_OPENPGP_PW1_TRIES, _OPENPGP_PW1_DEFAULT

    def _tries(self, pw):
        raw = self.store.get(self._pw_keys(pw)[1])
        if raw is None:
            return OPENPGP_PW_MAX_TRIES
        if len(raw) != 1 or raw[0] > OPENPGP_PW_MAX_TRIES:
            return 0
        return raw[0]

    def _pw_length(self, pw):
        rec = self.store.get(self._pw_keys(pw)[0])
        if rec is None:
            return len(self._pw_keys(pw)[2])
        return rec[0] if rec else 0

    def _spend_and_compare(self, pw, value):
        """Spend a try (persisted first), compare, restore on a match; raises 6982 / 6983."""
        rec_key, tries_key, default = self._pw_keys(pw)
        tries = self._tries(pw)
        if tries == 0:
            raise ApduError(SW_AUTH_METHOD_BLOCKED)
        # the decrement is durable before the comparison happens
        self.store.put(tries_key, bytes((tries - 1,)))
        rec = self.store.get(rec_key)
        if rec is None:
            ok = ct_equal(bytes(value), default)
        elif len(rec) != 1 + _OPENPGP_PW_SALT_LEN + 32:
            ok = False
        else:
            salt = rec[1:1 + _OPENPGP_PW_SALT_LEN]
            digest = self.platform.hash("sha256", bytes(salt) + bytes(value))
            ok = len(value) == rec[0] and ct_equal(digest, rec[1 + _OPENPGP_PW_SALT_LEN:])
        if not ok:
            if tries - 1 == 0:
                raise ApduError(SW_AUTH_METHOD_BLOCKED)
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
        self.store.put(tries_key, bytes((OPENPGP_PW_MAX_TRIES,)))

    def _new_record(self, value):
        salt = bytes(self.platform.random_bytes(_OPENPGP_PW_SALT_LEN))
        return bytes((len(value),)) + salt + self.platform.hash("sha256", salt + bytes(value))

    @staticmethod
    def _check_new(pw, value):
        low = _OPENPGP_PW3_MIN_LEN if pw == OPENPGP_PW3 else _OPENPGP_PW1_MIN_LEN
        if not low <= len(value) <= _OPENPGP_PW_MAX_LEN:
            raise ApduError(SW_WRONG_DATA)

    def _set_verified(self, pw, value):
        if pw == _OPENPGP_PW1_SIGN:
            self._pw1_sign = value
        elif pw == _OPENPGP_PW1_OTHER:
            self._pw1_other = value
        else:
            self._pw3 = value

    def _is_verified(self, pw):
        if pw == _OPENPGP_PW1_SIGN:
            return self._pw1_sign
        if pw == _OPENPGP_PW1_OTHER:
            return self._pw1_other
        return self._pw3

    def _verify(self, command):
        pw = command.p2
        if pw not in (_OPENPGP_PW1_SIGN, _OPENPGP_PW1_OTHER, OPENPGP_PW3):
            raise ApduError(SW_INCORRECT_P1P2)
        if command.p1 == 0xFF:
            if command.data:
                raise ApduError(SW_WRONG_DATA)
            self._set_verified(pw, False)
            return b""
        if command.p1 != 0:
            raise ApduError(SW_INCORRECT_P1P2)
        if not command.data:  # status query
            tries = self._tries(pw)
            if tries == 0:
                raise ApduError(SW_AUTH_METHOD_BLOCKED)
            if self._is_verified(pw):
                return b""
            raise ApduError(SW_VERIFY_FAIL_00 | tries)
        if self._tries(pw) == 0:
            raise ApduError(SW_AUTH_METHOD_BLOCKED)
        value = bytearray(command.data)
        try:
            if len(value) > _OPENPGP_PW_MAX_LEN:
                raise ApduError(SW_WRONG_LENGTH)
            self._set_verified(pw, False)
            self._spend_and_compare(pw, value)
        finally:
            wipe(value)
        self._set_verified(pw, True)
        return b""

    def _change(self, command):
        pw = command.p2
        if command.p1 != 0 or pw not in (_OPENPGP_PW1_SIGN, OPENPGP_PW3):
            raise ApduError(SW_INCORRECT_P1P2)
        data = bytearray(command.data)
        try:
            n = self._pw_length(pw)
            if len(data) <= n:
                raise ApduError(SW_WRONG_DATA)
            new = data[n:]
            self._spend_and_compare(pw, data[:n])
            self._check_new(pw, new)
            self._store_update({self._pw_keys(pw)[0]: self._new_record(new)}, True)
            wipe(new)
        finally:
            wipe(data)
        return b""

    def _reset_retry(self, command):
        if command.p1 != 0x02 or command.p2 != _OPENPGP_PW1_SIGN:
            # no resetting code on this card: only the admin path (P1=02)
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED if command.p1 == 0 else SW_INCORRECT_P1P2)
        if not self._pw3:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
        new = bytearray(command.data)
        try:
            self._check_new(_OPENPGP_PW1_SIGN, new)
            self._store_update({KEY_OPENPGP_PW1: self._new_record(new),
                                KEY_OPENPGP_PW1_TRIES: bytes((OPENPGP_PW_MAX_TRIES,))}, True)
        finally:
            wipe(new)
        return b""

    def _require_pw3(self):
        if not self._pw3:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)

    def _store_update(self, changes, scrub):
        try:
            self.store.update(changes, scrub)
        except StoreFullError:
            raise ApduError(SW_NO_SPACE)

    # --- the decryption key ---------------------------------------------------------------
    def _algo_dec(self):
        value = self.store.get(KEY_OPENPGP_DEC_ALGO)
        return value if value is not None else _DEFAULT_ALGO_DEC

    def _key(self):
        """(curve name, private, origin) of the decryption key, or None."""
        rec = self.store.get(KEY_OPENPGP_DEC_KEY)
        if not rec or rec[0] not in _CURVES:
            return None
        curve = _CURVES[rec[0]][0]
        if len(rec) != 2 + (32 if curve == "p256" else 48) or rec[1] not in (_GENERATED, _IMPORTED):
            return None
        return curve, rec[2:], rec[1]

    def _public_do(self):
        key = self._key()
        if key is None:
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
        private = bytearray(key[1])
        try:
            x, y = ec_public(self.platform, key[0], private)
        finally:
            wipe(private)
        return tlv(_OPENPGP_DO_PUBLIC_KEY, tlv(_OPENPGP_TAG_EC_POINT, b"\x04" + bytes(x) + bytes(y)))

    def _generate(self, command):
        if command.p2 != 0 or command.p1 not in (_OPENPGP_GENERATE_NEW, _OPENPGP_GENERATE_READ):
            raise ApduError(SW_INCORRECT_P1P2)
        crt = parse_tlvs(command.data)
        if len(crt) != 1:
            raise ApduError(SW_WRONG_DATA)
        if crt[0][0] in (_OPENPGP_CRT_SIG, _OPENPGP_CRT_AUT):
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)  # only the decryption key exists here
        if crt[0][0] != _OPENPGP_CRT_DEC or crt[0][1]:
            raise ApduError(SW_WRONG_DATA)
        if command.p1 == _OPENPGP_GENERATE_READ:
            return self._public_do()
        self._require_pw3()
        curve_id = _curve_of_attributes(self._algo_dec())
        if curve_id is None:
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
        private, x, y = ec_generate(self.platform, _CURVES[curve_id][0])
        rec = bytearray((curve_id, _GENERATED))
        rec += private
        try:
            # a new key invalidates the fingerprint and time the host set for the old one
            self._store_update({KEY_OPENPGP_DEC_KEY: bytes(rec), KEY_OPENPGP_DEC_FPR: None,
                                KEY_OPENPGP_DEC_TIME: None}, True)
        finally:
            wipe(rec)
            if isinstance(private, bytearray):
                wipe(private)
        return tlv(_OPENPGP_DO_PUBLIC_KEY, tlv(_OPENPGP_TAG_EC_POINT, b"\x04" + bytes(x) + bytes(y)))

    def _import_key(self, command):
        """Extended header list: 4D { B8 00, 7F48 { 92 len [99 len] }, 5F48 { private [public] } }."""
        if command.p1p2 != 0x3FFF:
            raise ApduError(SW_INCORRECT_P1P2)
        header = find_tlv(parse_tlvs(command.data), _OPENPGP_TAG_EXT_HEADER)
        items = parse_tlvs(header)
        if len(items) != 3 or items[1][0] != _OPENPGP_TAG_TEMPLATE or items[2][0] != _OPENPGP_TAG_KEY_DATA:
            raise ApduError(SW_WRONG_DATA)
        if items[0][0] in (_OPENPGP_CRT_SIG, _OPENPGP_CRT_AUT):
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
        if items[0][0] != _OPENPGP_CRT_DEC:
            raise ApduError(SW_WRONG_DATA)
        lengths = _template_lengths(items[1][1])
        key_data = items[2][1]
        if sum(n for _, n in lengths) != len(key_data):
            raise ApduError(SW_WRONG_DATA)
        private = None
        public = None
        pos = 0
        for tag, n in lengths:
            if tag == 0x92:
                private = key_data[pos:pos + n]
            elif tag == 0x99:
                public = key_data[pos:pos + n]
            else:
                raise ApduError(SW_WRONG_DATA)
            pos += n
        self._require_pw3()
        curve_id = _curve_of_attributes(self._algo_dec())
        if private is None or curve_id is None:
            raise ApduError(SW_WRONG_DATA)
        curve = _CURVES[curve_id][0]
        size = ec_size(self.platform, curve)
        if len(private) < size:  # leading zero bytes may be dropped
            private = bytes(size - len(private)) + private
        x, y = ec_public(self.platform, curve, private)
        if public is not None and bytes(public) != b"\x04" + bytes(x) + bytes(y):
            raise ApduError(SW_WRONG_DATA)
        rec = bytearray((curve_id, _IMPORTED))
        rec += private
        try:
            self._store_update({KEY_OPENPGP_DEC_KEY: bytes(rec), KEY_OPENPGP_DEC_FPR: None,
                                KEY_OPENPGP_DEC_TIME: None}, True)
        finally:
            wipe(rec)
        return b""

    def _decipher(self, command):
        if command.p1p2 != _OPENPGP_P1P2_PSO_DECIPHER:
            raise ApduError(SW_INCORRECT_P1P2)
        cipher = find_tlv(parse_tlvs(command.data), _OPENPGP_TAG_CIPHER)
        public = find_tlv(parse_tlvs(cipher), _OPENPGP_DO_PUBLIC_KEY)
        point = find_tlv(parse_tlvs(public), _OPENPGP_TAG_EC_POINT)
        if not self._pw1_other:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
        key = self._key()
        if key is None:
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
        uif = self.store.get(KEY_OPENPGP_UIF_DEC)
        if uif and uif[0] != 0:
            if self.platform.wait_user_presence(_TOUCH_TIMEOUT_MS, _no_cancel) != UP_APPROVED:
                raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
        private = bytearray(key[1])
        try:
            return bytes(ec_ecdh(self.platform, key[0], private, point))
        finally:
            wipe(private)

    # --- data objects ---------------------------------------------------------------------
    def _pw_status(self):
        return bytes((0x01, _OPENPGP_PW_MAX_LEN, 0, _OPENPGP_PW_MAX_LEN,
                      self._tries(_OPENPGP_PW1_SIGN), 0, self._tries(OPENPGP_PW3)))

    def _key_status(self):
        """Key information (DE): key reference, status 00 none / 01 generated / 02 imported."""
        key = self._key()
        return b"\x01\x00\x02" + bytes((key[2] if key is not None else 0,)) + b"\x03\x00"

    def _fingerprints(self):
        fpr = self.store.get(KEY_OPENPGP_DEC_FPR) or bytes(20)
        return bytes(20) + fpr + bytes(20)

    def _times(self):
        ts = self.store.get(KEY_OPENPGP_DEC_TIME) or bytes(4)
        return bytes(4) + ts + bytes(4)

    def _uif_dec(self):
        uif = self.store.get(KEY_OPENPGP_UIF_DEC)
        return bytes((uif[0] if uif else 0, 0x20))

    def _extended_caps(self):
        # key import, changeable algorithm attributes; no SM, no GET CHALLENGE, no KDF
        return bytes((0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x00, 0x00))

    def _algorithm_information(self):
        out = b""
        for do, alg in ((_OPENPGP_DO_ALGO_SIG, 0x13), (_OPENPGP_DO_ALGO_DEC, _OPENPGP_ALG_ECDH),
                        (_OPENPGP_DO_ALGO_AUT, 0x13)):
            out += tlv(do, bytes((alg,)) + OPENPGP_OID_P256)
            if has_p384(self.platform):
                out += tlv(do, bytes((alg,)) + OPENPGP_OID_P384)
        return tlv(_OPENPGP_DO_ALGO_INFO, out)

    def _historical(self):
        return b"\x00\x31\xc5\x73\xc0\x01\x40\x05\x90\x00"

    def _application_data(self):
        discretionary = (tlv(_OPENPGP_DO_EXT_CAPS, self._extended_caps())
                         + tlv(_OPENPGP_DO_ALGO_SIG, _ALGO_SIG_AUT)
                         + tlv(_OPENPGP_DO_ALGO_DEC, self._algo_dec())
                         + tlv(_OPENPGP_DO_ALGO_AUT, _ALGO_SIG_AUT)
                         + tlv(_OPENPGP_DO_PW_STATUS, self._pw_status())
                         + tlv(_OPENPGP_DO_FINGERPRINTS, self._fingerprints())
                         + tlv(_OPENPGP_DO_CA_FINGERPRINTS, bytes(60))
                         + tlv(_OPENPGP_DO_GEN_TIMES, self._times())
                         + tlv(0xDE, self._key_status())
                         + tlv(_OPENPGP_DO_UIF_SIG, b"\x00\x20")
                         + tlv(_OPENPGP_DO_UIF_DEC, self._uif_dec())
                         + tlv(_OPENPGP_DO_UIF_AUT, b"\x00\x20"))
        return tlv(_OPENPGP_DO_APP_DATA,
                   tlv(_OPENPGP_DO_AID, self.AID)
                   + tlv(_OPENPGP_DO_HISTORICAL, self._historical())
                   + tlv(_OPENPGP_DO_EXT_LENGTH, tlv(0x02, b"\x08\x00") + tlv(0x02, b"\x08\x00"))
                   + tlv(_OPENPGP_DO_DISCRETIONARY, discretionary))

    def _get_data(self, command):
        tag = command.p1p2
        if tag == _OPENPGP_DO_AID:
            return self.AID
        if tag == _OPENPGP_DO_APP_DATA:
            return self._application_data()
        if tag == _OPENPGP_DO_PW_STATUS:
            return self._pw_status()
        if tag == _OPENPGP_DO_HISTORICAL:
            return self._historical()
        if tag in (_OPENPGP_DO_LOGIN, _OPENPGP_DO_URL, _OPENPGP_DO_CARDHOLDER_CERT):
            return b""
        if tag == _OPENPGP_DO_CARDHOLDER:
            return tlv(_OPENPGP_DO_CARDHOLDER, tlv(_OPENPGP_DO_NAME, b"")
                       + tlv(_OPENPGP_DO_LANG, b"en") + tlv(_OPENPGP_DO_SEX, b"\x39"))
        if tag == _OPENPGP_DO_SECURITY:
            return tlv(_OPENPGP_DO_SECURITY, tlv(_OPENPGP_DO_SIG_COUNT, b"\x00\x00\x00"))
        if tag == _OPENPGP_DO_EXT_LENGTH:
            return tlv(_OPENPGP_DO_EXT_LENGTH, tlv(0x02, b"\x08\x00") + tlv(0x02, b"\x08\x00"))
        if tag == _OPENPGP_DO_EXT_CAPS:
            return self._extended_caps()
        if tag == _OPENPGP_DO_ALGO_DEC:
            return self._algo_dec()
        if tag in (_OPENPGP_DO_ALGO_SIG, _OPENPGP_DO_ALGO_AUT):
            return _ALGO_SIG_AUT
        if tag == _OPENPGP_DO_FINGERPRINTS:
            return self._fingerprints()
        if tag == _OPENPGP_DO_GEN_TIMES:
            return self._times()
        if tag == _OPENPGP_DO_UIF_DEC:
            return self._uif_dec()
        if tag in (_OPENPGP_DO_UIF_SIG, _OPENPGP_DO_UIF_AUT):
            return b"\x00\x20"
        if tag == _OPENPGP_DO_ALGO_INFO:
            return self._algorithm_information()
        raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)

    def _put_data(self, command):
        tag = command.p1p2
        value = bytes(command.data)
        if tag == _OPENPGP_DO_ALGO_DEC:
            curve_id = _curve_of_attributes(value)
            if curve_id is None or (curve_id == _CURVE_P384 and not has_p384(self.platform)):
                raise ApduError(SW_WRONG_DATA)
            self._require_pw3()
            changes = {KEY_OPENPGP_DEC_ALGO: value}
            if _curve_of_attributes(self._algo_dec()) != curve_id:
                # new attributes delete the key of the old ones
                changes[KEY_OPENPGP_DEC_KEY] = None
                changes[KEY_OPENPGP_DEC_FPR] = None
                changes[KEY_OPENPGP_DEC_TIME] = None
            self._store_update(changes, True)
            return b""
        if tag in (_OPENPGP_DO_ALGO_SIG, _OPENPGP_DO_ALGO_AUT):
            if value != _ALGO_SIG_AUT:
                raise ApduError(SW_WRONG_DATA)
            self._require_pw3()
            return b""
        if tag == _OPENPGP_DO_FPR_DEC or tag == _OPENPGP_DO_TIME_DEC:
            if len(value) != (20 if tag == _OPENPGP_DO_FPR_DEC else 4):
                raise ApduError(SW_WRONG_DATA)
            self._require_pw3()
            key = KEY_OPENPGP_DEC_FPR if tag == _OPENPGP_DO_FPR_DEC else KEY_OPENPGP_DEC_TIME
            self._store_update({key: value}, False)
            return b""
        if tag == _OPENPGP_DO_UIF_DEC:
            if len(value) != 2 or value[0] > 1:
                raise ApduError(SW_WRONG_DATA)
            self._require_pw3()
            self._store_update({KEY_OPENPGP_UIF_DEC: value[:1]}, False)
            return b""
        raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)

    # --- reset ----------------------------------------------------------------------------------
    def _terminate(self, command):
        if not self._pw3 and self._tries(OPENPGP_PW3) != 0:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
        changes = {}
        for key in self.store.keys(KEY_OPENPGP_FIRST, KEY_OPENPGP_LAST):
            changes[key] = None
        self._store_update(changes, True)
        self.deselect()
        self._terminated = True  # until ACTIVATE
        return b""


def _template_lengths(template):
    """[(tag, length), ...] of a 7F48 cardholder private key template (tags and lengths, no values)."""
    out = []
    pos = 0
    end = len(template)
    while pos < end:
        tag = template[pos]
        pos += 1
        n, pos = read_ber_length(template, pos, end)
        out.append((tag, n))
    return out


def _no_cancel(status):
    return False
