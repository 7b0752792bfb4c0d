"""PIV applet: slot 9D ECDH (P-256, P-384) as NIST SP 800-73-4 and yubikit's PivSession speak it.

Just what a sealcodes `piv` enrollment needs, done properly:

    INS  command                 P1        P2      data                           notes
    20   VERIFY                  00 | FF   80      PIN padded with FF to 8 | -    empty: status; P1=FF: forget
    24   CHANGE REFERENCE DATA   00        80 | 81 old(8) || new(8)
    2C   RESET RETRY COUNTER     00        80      PUK(8) || new PIN(8)
    47   GENERATE ASYMMETRIC     00        9D      AC { 80 alg, [AA pin], [AB touch] }   -> 7F49 { 86 point }
    87   GENERAL AUTHENTICATE    0C        9B      management key mutual auth (AES-256)
    87   GENERAL AUTHENTICATE    11 | 14   9D      7C { 82 00, 85 point }          -> 7C { 82 Z }
    CB   GET DATA                3F        FF      5C { object id }                -> 53 { ... } (7E: discovery)
    DB   PUT DATA                3F        FF      5C { id } 53 { data }
    F7   GET METADATA            00        80 | 81 | 9B | 9D                      (YubiKey extension)
    F8   GET SERIAL / FD GET VERSION / FB RESET / FE IMPORT KEY  (YubiKey extensions)

Security rules:
- PIN and PUK: PIV_PIN_MAX_TRIES tries; the counter is decremented and persisted
  before the comparison, only a match restores it (a power cut never gives a
  try back). Wrong: 63Cx; none left: 6983.
- GENERATE, IMPORT KEY, PUT DATA need the management key (authenticated in this
  session); the 9D key is used under its PIN policy (NEVER / ONCE / ALWAYS) and
  touch policy (NEVER / ALWAYS / CACHED), default ONCE / NEVER.
- RESET only when PIN and PUK are both blocked, as on YubiKeys.
- No command returns a private key, a PIN, or the management key.

Keys are AES-256 for the management key (so the platform's AES serves; type 0C
in GET METADATA) and P-256 / P-384 for slot 9D; P-384 only where the platform
has it (`p384_*`), else 6A80 for that algorithm.

MicroPython rules: plain classes, bytes/bytearray, crypto through the platform.
"""
from sealtoken.applets import AID_PIV, PIV_AID_FULL
from sealtoken.applets.ec import ec_ecdh, ec_generate, ec_public, ec_size
from sealtoken.core.applet import Applet, ApduError
from sealtoken.core.hmac import ct_equal, wipe
from sealtoken.core.iso7816 import (CLA_ISO, SW_AUTH_METHOD_BLOCKED, SW_CLA_NOT_SUPPORTED,
                                    SW_CONDITIONS_NOT_SATISFIED, SW_FILE_NOT_FOUND, SW_INCORRECT_P1P2,
                                    SW_INS_NOT_SUPPORTED, SW_NO_SPACE, SW_REFERENCED_DATA_NOT_FOUND,
                                    SW_SECURITY_STATUS_NOT_SATISFIED, SW_VERIFY_FAIL_00, SW_WRONG_DATA,
                                    find_tlv, only_one, parse_tlvs, tlv)
from sealtoken.core.keys import (KEY_PIV_FIRST, KEY_PIV_LAST, KEY_PIV_MGMT, KEY_PIV_OBJ_BASE, KEY_PIV_PIN,
                                 KEY_PIV_PIN_TRIES, KEY_PIV_PUK, KEY_PIV_PUK_TRIES, KEY_PIV_SLOT_9D)
from sealtoken.core.micro import const
from sealtoken.core.platform import UP_APPROVED
from sealtoken.core.storage import StoreFullError, device_serial

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
PIV_VERSION = (5, 4, 3)                           # answered to GET VERSION: yubikit enables metadata (>= 5.3)
PIV_INS_VERIFY = const(0x20)
PIV_INS_CHANGE_REFERENCE = const(0x24)
PIV_INS_RESET_RETRY = const(0x2C)
PIV_INS_GENERATE = const(0x47)
PIV_INS_AUTHENTICATE = const(0x87)
PIV_INS_GET_DATA = const(0xCB)
PIV_INS_PUT_DATA = const(0xDB)
PIV_INS_GET_METADATA = const(0xF7)                # YubiKey extension
_PIV_INS_GET_SERIAL = const(0xF8)                 # YubiKey extension
PIV_INS_RESET = const(0xFB)                       # YubiKey extension: only with PIN and PUK blocked
PIV_INS_GET_VERSION = const(0xFD)                 # YubiKey extension
PIV_INS_IMPORT_KEY = const(0xFE)                  # YubiKey extension
PIV_P2_PIN = const(0x80)
PIV_P2_PUK = const(0x81)
_PIV_P1_VERIFY_RESET = const(0xFF)                # VERIFY P1=FF: forget the PIN verification
_PIV_SLOT_MANAGEMENT = const(0x9B)                # card management (symmetric) key
_PIV_SLOT_KEY_MANAGEMENT = const(0x9D)            # the ECDH key slot
_PIV_ALG_ECC_P256 = const(0x11)
_PIV_ALG_ECC_P384 = const(0x14)
_PIV_ALG_AES256 = const(0x0C)                     # our management key algorithm
_PIV_MGMT_KEY_LEN = const(32)
PIV_MGMT_DEFAULT = b"\x01\x02\x03\x04\x05\x06\x07\x08" * 4  # the usual default, repeated to 32 bytes
_PIV_MGMT_CHALLENGE_LEN = const(16)
_PIV_PIN_DEFAULT = const(b"123456\xff\xff")
_PIV_PUK_DEFAULT = const(b"12345678")
_PIV_PIN_LEN = const(8)                           # PIN/PUK travel padded with FF to 8 bytes
_PIV_PIN_MIN_LEN = const(6)
PIV_PIN_MAX_TRIES = const(3)
PIV_PUK_MAX_TRIES = const(3)
_PIV_PIN_SALT_LEN = const(16)
_PIV_PIN_POLICY_DEFAULT = const(0)
_PIV_PIN_POLICY_NEVER = const(1)
_PIV_PIN_POLICY_ONCE = const(2)
_PIV_PIN_POLICY_ALWAYS = const(3)
_PIV_TOUCH_POLICY_DEFAULT = const(0)
_PIV_TOUCH_POLICY_NEVER = const(1)
_PIV_TOUCH_POLICY_ALWAYS = const(2)
_PIV_TOUCH_POLICY_CACHED = const(3)
_PIV_TOUCH_CACHE_MS = const(15000)
_PIV_TOUCH_TIMEOUT_MS = const(15000)
_PIV_ORIGIN_GENERATED = const(1)
_PIV_ORIGIN_IMPORTED = const(2)
_PIV_TAG_DYN_AUTH = const(0x7C)
_PIV_TAG_WITNESS = const(0x80)
_PIV_TAG_CHALLENGE = const(0x81)
_PIV_TAG_RESPONSE = const(0x82)
_PIV_TAG_EXPONENTIATION = const(0x85)
_PIV_TAG_GEN_TEMPLATE = const(0xAC)
_PIV_TAG_GEN_ALGORITHM = const(0x80)
_PIV_TAG_PIN_POLICY = const(0xAA)
_PIV_TAG_TOUCH_POLICY = const(0xAB)
_PIV_TAG_EC_PRIVATE = const(0x06)
_PIV_TAG_OBJ_ID = const(0x5C)
_PIV_TAG_OBJ_DATA = const(0x53)
_PIV_TAG_PUBLIC_KEY = const(0x7F49)               # two-byte tag
_PIV_TAG_EC_POINT = const(0x86)
_PIV_META_ALGO = const(0x01)
_PIV_META_POLICY = const(0x02)
_PIV_META_ORIGIN = const(0x03)
_PIV_META_PUBLIC_KEY = const(0x04)
PIV_META_IS_DEFAULT = const(0x05)
PIV_META_RETRIES = const(0x06)
_PIV_OBJ_DISCOVERY = const(b"\x7e")
_PIV_OBJ_PREFIX = const(b"\x5f\xc1")              # 5FC1xx: the data objects stored, xx in PIV_OBJ_IDS
_PIV_OBJ_IDS = (0x01, 0x02, 0x05, 0x07, 0x0A, 0x0B, 0x0C)  # card auth, CHUID, 9A/9C/9D certs, CCC, key history
_PIV_OBJ_MAX_LEN = const(1536)

# slot record layout
_REC_ALG = 0
_REC_PIN_POLICY = 1
_REC_TOUCH_POLICY = 2
_REC_ORIGIN = 3
_REC_PRIVATE = 4


def _curve_of(alg):
    if alg == _PIV_ALG_ECC_P256:
        return "p256"
    if alg == _PIV_ALG_ECC_P384:
        return "p384"
    return None


def _secret_hash(platform, salt, secret):
    return platform.hash("sha256", bytes(salt) + bytes(secret))


class PivApplet(Applet):
    AID = PIV_AID_FULL
    SEND_REMAINING_INS = None

    def __init__(self, platform, store):
        Applet.__init__(self, platform, store)
        self._pin_verified = False
        self._mgmt_authenticated = False
        self._witness = None          # pending management-key witness (bytes) or None
        self._touch_ms = None         # last touch for CACHED policy

    # --- session ---------------------------------------------------------------------
    def deselect(self):
        self._pin_verified = False
        self._mgmt_authenticated = False
        self._witness = None
        self._touch_ms = None

    def select(self, command):
        self.deselect()
        # application property template: AID (PIX) and the coexistent tag allocation authority
        return tlv(0x61, tlv(0x4F, PIV_AID_FULL[5:])
                   + tlv(0x79, tlv(0x4F, AID_PIV + b"\x00\x00")))

    def process(self, command):
        if command.cla != CLA_ISO:
            raise ApduError(SW_CLA_NOT_SUPPORTED)
        ins = command.ins
        if ins == PIV_INS_VERIFY:
            return self._verify(command)
        if ins == PIV_INS_GET_DATA:
            return self._get_data(command)
        if ins == PIV_INS_AUTHENTICATE:
            return self._authenticate(command)
        if ins == PIV_INS_GET_VERSION:
            return bytes(PIV_VERSION)
        if ins == _PIV_INS_GET_SERIAL:
            return bytes(device_serial(self.platform, self.store))
        if ins == PIV_INS_GET_METADATA:
            return self._metadata(command)
        if ins == PIV_INS_CHANGE_REFERENCE:
            return self._change_reference(command)
        if ins == PIV_INS_RESET_RETRY:
            return self._reset_retry(command)
        if ins == PIV_INS_GENERATE:
            return self._generate(command)
        if ins == PIV_INS_IMPORT_KEY:
            return self._import_key(command)
        if ins == PIV_INS_PUT_DATA:
            return self._put_data(command)
        if ins == PIV_INS_RESET:
            return self._reset(command)
        raise ApduError(SW_INS_NOT_SUPPORTED)

    # --- PIN and PUK --------------------------------------------------------------------
    def _ref_keys(self, p2):
        if p2 == PIV_P2_PIN:
            return KEY_PIV_PIN, KEY_PIV_PIN_TRIES, PIV_PIN_MAX_TRIES, _PIV_PIN_DEFAULT
        if p2 == PIV_P2_PUK:
            return KEY_PIV_PUK, KEY_PIV_PUK_TRIES, PIV_PUK_MAX_TRIES, _PIV_PUK_DEFAULT
        raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)

    def _tries(self, p2):
        _, tries_key, max_tries, _ = self._ref_keys(p2)
        raw = self.store.get(tries_key)
        if raw is None:
            return max_tries
        if len(raw) != 1 or raw[0] > max_tries:
            return 0  # a damaged counter counts as blocked
        return raw[0]

    def _is_default(self, p2):
        return self.store.get(self._ref_keys(p2)[0]) is None

    @staticmethod
    def _check_format(value):
        """PIN/PUK as sent: 8 bytes, FF padding only at the end, at least 6 characters."""
        if len(value) != _PIV_PIN_LEN:
            raise ApduError(SW_WRONG_DATA)
        n = _PIV_PIN_LEN
        while n > 0 and value[n - 1] == 0xFF:
            n -= 1
        for i in range(n):
            if value[i] == 0xFF:
                raise ApduError(SW_WRONG_DATA)
        if n < _PIV_PIN_MIN_LEN:
            raise ApduError(SW_WRONG_DATA)

    def _spend_and_compare(self, p2, value):
        """Spend a try (persisted first), compare, restore the counter on a match. Raises 63Cx / 6983."""
        rec_key, tries_key, max_tries, default = self._ref_keys(p2)
        tries = self._tries(p2)
        if tries == 0:
            raise ApduError(SW_AUTH_METHOD_BLOCKED)
        # the decrement is durable before the comparison happens
        self.store.put(tries_key, bytes((tries - 1,)))
        rec = self.store.get(rec_key)
        if rec is None:
            ok = ct_equal(bytes(value), default)
        elif len(rec) != _PIV_PIN_SALT_LEN + 32:
            ok = False
        else:
            salt = rec[:_PIV_PIN_SALT_LEN]
            ok = ct_equal(_secret_hash(self.platform, salt, value), rec[_PIV_PIN_SALT_LEN:])
        if not ok:
            if p2 == PIV_P2_PIN:
                self._pin_verified = False
            raise ApduError(SW_VERIFY_FAIL_00 | (tries - 1))
        self.store.put(tries_key, bytes((max_tries,)))

    def _new_record(self, value):
        salt = bytes(self.platform.random_bytes(_PIV_PIN_SALT_LEN))
        return salt + _secret_hash(self.platform, salt, value)

    def _verify(self, command):
        if command.p2 != PIV_P2_PIN:
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
        if command.p1 == _PIV_P1_VERIFY_RESET:
            if command.data:
                raise ApduError(SW_WRONG_DATA)
            self._pin_verified = False
            return b""
        if command.p1 != 0:
            raise ApduError(SW_INCORRECT_P1P2)
        if not command.data:  # status query: spends no try
            tries = self._tries(PIV_P2_PIN)
            if tries == 0:
                raise ApduError(SW_AUTH_METHOD_BLOCKED)
            if self._pin_verified:
                return b""
            raise ApduError(SW_VERIFY_FAIL_00 | tries)
        if self._tries(PIV_P2_PIN) == 0:
            raise ApduError(SW_AUTH_METHOD_BLOCKED)
        pin = bytearray(command.data)
        try:
            if len(pin) != _PIV_PIN_LEN:
                raise ApduError(SW_WRONG_DATA)
            self._spend_and_compare(PIV_P2_PIN, pin)
        finally:
            wipe(pin)
        self._pin_verified = True
        return b""

    def _change_reference(self, command):
        if command.p1 != 0:
            raise ApduError(SW_INCORRECT_P1P2)
        rec_key = self._ref_keys(command.p2)[0]
        data = bytearray(command.data)
        try:
            if len(data) != 2 * _PIV_PIN_LEN:
                raise ApduError(SW_WRONG_DATA)
            new = data[_PIV_PIN_LEN:]
            # the old value is checked first (as cards do): a bad new one then costs no try
            self._spend_and_compare(command.p2, data[:_PIV_PIN_LEN])
            self._check_format(new)
            self._store_update({rec_key: self._new_record(new)}, True)
            wipe(new)
        finally:
            wipe(data)
        if command.p2 == PIV_P2_PIN:
            self._pin_verified = True
        return b""

    def _reset_retry(self, command):
        if command.p1 != 0 or command.p2 != PIV_P2_PIN:
            raise ApduError(SW_INCORRECT_P1P2)
        data = bytearray(command.data)
        try:
            if len(data) != 2 * _PIV_PIN_LEN:
                raise ApduError(SW_WRONG_DATA)
            new = data[_PIV_PIN_LEN:]
            self._spend_and_compare(PIV_P2_PUK, data[:_PIV_PIN_LEN])
            self._check_format(new)
            self._store_update({KEY_PIV_PIN: self._new_record(new),
                                KEY_PIV_PIN_TRIES: bytes((PIV_PIN_MAX_TRIES,))}, True)
            wipe(new)
        finally:
            wipe(data)
        return b""

    # --- management key ---------------------------------------------------------------------
    def _mgmt_key(self):
        key = self.store.get(KEY_PIV_MGMT)
        if key is None or len(key) != _PIV_MGMT_KEY_LEN:
            return PIV_MGMT_DEFAULT
        return key

    def _aes_block(self, data, encrypt):
        iv = bytes(16)
        if encrypt:
            return bytes(self.platform.aes256_cbc_encrypt(self._mgmt_key(), iv, data))
        return bytes(self.platform.aes256_cbc_decrypt(self._mgmt_key(), iv, data))

    def _require_mgmt(self):
        if not self._mgmt_authenticated:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)

    def _mgmt_authenticate(self, command, inner):
        if command.p1 != _PIV_ALG_AES256:
            raise ApduError(SW_INCORRECT_P1P2)
        witness = find_tlv(inner, _PIV_TAG_WITNESS, False)
        challenge = find_tlv(inner, _PIV_TAG_CHALLENGE, False)
        if witness is not None and len(witness) == 0 and challenge is None:
            # step 1: the card's witness, encrypted
            self._mgmt_authenticated = False
            self._witness = bytes(self.platform.random_bytes(_PIV_MGMT_CHALLENGE_LEN))
            return tlv(_PIV_TAG_DYN_AUTH, tlv(_PIV_TAG_WITNESS, self._aes_block(self._witness, True)))
        if witness is not None and challenge is not None:
            expected = self._witness
            self._witness = None  # one answer per witness
            if expected is None:
                raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
            if len(challenge) != _PIV_MGMT_CHALLENGE_LEN or not ct_equal(witness, expected):
                self._mgmt_authenticated = False
                raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
            self._mgmt_authenticated = True
            return tlv(_PIV_TAG_DYN_AUTH, tlv(_PIV_TAG_RESPONSE, self._aes_block(challenge, True)))
        raise ApduError(SW_WRONG_DATA)

    # --- slot 9D ------------------------------------------------------------------------------
    def _slot(self):
        rec = self.store.get(KEY_PIV_SLOT_9D)
        if rec is None or len(rec) < _REC_PRIVATE + 32:
            return None
        curve = _curve_of(rec[_REC_ALG])
        if curve is None or len(rec) != _REC_PRIVATE + (32 if curve == "p256" else 48):
            return None
        return rec

    @staticmethod
    def _policies(tlvs):
        pin = find_tlv(tlvs, _PIV_TAG_PIN_POLICY, False)
        touch = find_tlv(tlvs, _PIV_TAG_TOUCH_POLICY, False)
        pin = _PIV_PIN_POLICY_DEFAULT if pin is None else (pin[0] if len(pin) == 1 else -1)
        touch = _PIV_TOUCH_POLICY_DEFAULT if touch is None else (touch[0] if len(touch) == 1 else -1)
        if pin == _PIV_PIN_POLICY_DEFAULT:
            pin = _PIV_PIN_POLICY_ONCE
        if touch == _PIV_TOUCH_POLICY_DEFAULT:
            touch = _PIV_TOUCH_POLICY_NEVER
        if pin not in (_PIV_PIN_POLICY_NEVER, _PIV_PIN_POLICY_ONCE, _PIV_PIN_POLICY_ALWAYS):
            raise ApduError(SW_WRONG_DATA)
        if touch not in (_PIV_TOUCH_POLICY_NEVER, _PIV_TOUCH_POLICY_ALWAYS,
                         _PIV_TOUCH_POLICY_CACHED):
            raise ApduError(SW_WRONG_DATA)
        return pin, touch

    def _store_update(self, changes, scrub):
        try:
            self.store.update(changes, scrub)
        except StoreFullError:
            raise ApduError(SW_NO_SPACE)

    def _generate(self, command):
        if command.p1 != 0:
            raise ApduError(SW_INCORRECT_P1P2)
        if command.p2 != _PIV_SLOT_KEY_MANAGEMENT:
            raise ApduError(SW_INCORRECT_P1P2)
        template = only_one(command.data, _PIV_TAG_GEN_TEMPLATE)
        tlvs = parse_tlvs(template)
        alg = find_tlv(tlvs, _PIV_TAG_GEN_ALGORITHM)
        if len(alg) != 1 or _curve_of(alg[0]) is None:
            raise ApduError(SW_WRONG_DATA)
        curve = _curve_of(alg[0])
        ec_size(self.platform, curve)
        pin_policy, touch_policy = self._policies(tlvs)
        self._require_mgmt()
        private, x, y = ec_generate(self.platform, curve)
        rec = bytearray((alg[0], pin_policy, touch_policy, _PIV_ORIGIN_GENERATED))
        rec += private
        try:
            self._store_update({KEY_PIV_SLOT_9D: bytes(rec)}, True)  # the old key must not stay in flash
        finally:
            wipe(rec)
            if isinstance(private, bytearray):
                wipe(private)
        return tlv(_PIV_TAG_PUBLIC_KEY, tlv(_PIV_TAG_EC_POINT, b"\x04" + bytes(x) + bytes(y)))

    def _import_key(self, command):
        if command.p2 != _PIV_SLOT_KEY_MANAGEMENT:
            raise ApduError(SW_INCORRECT_P1P2)
        curve = _curve_of(command.p1)
        if curve is None:
            raise ApduError(SW_WRONG_DATA)
        tlvs = parse_tlvs(command.data)
        private = find_tlv(tlvs, _PIV_TAG_EC_PRIVATE)
        pin_policy, touch_policy = self._policies(tlvs)
        self._require_mgmt()
        ec_public(self.platform, curve, private)  # refuses scalars outside 1..n-1
        rec = bytearray((command.p1, pin_policy, touch_policy, _PIV_ORIGIN_IMPORTED))
        rec += private
        try:
            self._store_update({KEY_PIV_SLOT_9D: bytes(rec)}, True)
        finally:
            wipe(rec)
        return b""

    def _touch(self, policy):
        if policy == _PIV_TOUCH_POLICY_NEVER:
            return
        now = self.platform.now_ms()
        if (policy == _PIV_TOUCH_POLICY_CACHED and self._touch_ms is not None
                and 0 <= now - self._touch_ms < _PIV_TOUCH_CACHE_MS):
            return
        if self.platform.wait_user_presence(_PIV_TOUCH_TIMEOUT_MS, _no_cancel) != UP_APPROVED:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
        self._touch_ms = self.platform.now_ms()

    def _ecdh(self, command, inner):
        rec = self._slot()
        if rec is None:
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
        if command.p1 != rec[_REC_ALG]:
            raise ApduError(SW_INCORRECT_P1P2)
        response = find_tlv(inner, _PIV_TAG_RESPONSE)
        point = find_tlv(inner, _PIV_TAG_EXPONENTIATION, False)
        if len(response) != 0 or point is None or len(inner) != 2:
            raise ApduError(SW_WRONG_DATA)
        curve = _curve_of(rec[_REC_ALG])
        size = ec_size(self.platform, curve)
        if len(point) != 1 + 2 * size or point[0] != 0x04:
            raise ApduError(SW_WRONG_DATA)
        pin_policy = rec[_REC_PIN_POLICY]
        if pin_policy != _PIV_PIN_POLICY_NEVER and not self._pin_verified:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
        self._touch(rec[_REC_TOUCH_POLICY])
        if pin_policy == _PIV_PIN_POLICY_ALWAYS:
            self._pin_verified = False  # one use per VERIFY
        private = bytearray(rec[_REC_PRIVATE:])
        try:
            shared = ec_ecdh(self.platform, curve, private, point)
        finally:
            wipe(private)
        return tlv(_PIV_TAG_DYN_AUTH, tlv(_PIV_TAG_RESPONSE, shared))

    def _authenticate(self, command):
        inner = parse_tlvs(only_one(command.data, _PIV_TAG_DYN_AUTH))
        if command.p2 == _PIV_SLOT_MANAGEMENT:
            return self._mgmt_authenticate(command, inner)
        if command.p2 == _PIV_SLOT_KEY_MANAGEMENT:
            return self._ecdh(command, inner)
        raise ApduError(SW_INCORRECT_P1P2)

    # --- metadata (YubiKey extension) -----------------------------------------------------------
    def _metadata(self, command):
        if command.p1 != 0:
            raise ApduError(SW_INCORRECT_P1P2)
        p2 = command.p2
        if p2 in (PIV_P2_PIN, PIV_P2_PUK):
            max_tries = PIV_PIN_MAX_TRIES if p2 == PIV_P2_PIN else PIV_PUK_MAX_TRIES
            return (tlv(_PIV_META_ALGO, b"\xff")
                    + tlv(_PIV_META_POLICY, b"\x00\x00")
                    + tlv(PIV_META_IS_DEFAULT, b"\x01" if self._is_default(p2) else b"\x00")
                    + tlv(PIV_META_RETRIES, bytes((max_tries, self._tries(p2)))))
        if p2 == _PIV_SLOT_MANAGEMENT:
            is_default = self.store.get(KEY_PIV_MGMT) is None
            return (tlv(_PIV_META_ALGO, bytes((_PIV_ALG_AES256,)))
                    + tlv(_PIV_META_POLICY, bytes((0, _PIV_TOUCH_POLICY_NEVER)))
                    + tlv(PIV_META_IS_DEFAULT, b"\x01" if is_default else b"\x00"))
        if p2 == _PIV_SLOT_KEY_MANAGEMENT:
            rec = self._slot()
            if rec is None:
                raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
            curve = _curve_of(rec[_REC_ALG])
            private = bytearray(rec[_REC_PRIVATE:])
            try:
                x, y = ec_public(self.platform, curve, private)
            finally:
                wipe(private)
            return (tlv(_PIV_META_ALGO, bytes((rec[_REC_ALG],)))
                    + tlv(_PIV_META_POLICY, bytes((rec[_REC_PIN_POLICY], rec[_REC_TOUCH_POLICY])))
                    + tlv(_PIV_META_ORIGIN, bytes((rec[_REC_ORIGIN],)))
                    + tlv(_PIV_META_PUBLIC_KEY, tlv(_PIV_TAG_EC_POINT, b"\x04" + bytes(x) + bytes(y))))
        raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)

    # --- data objects ---------------------------------------------------------------------------
    @staticmethod
    def _object_key(object_id):
        """Storage key of a 5FC1xx object we keep, or ApduError(6A82)."""
        if len(object_id) == 3 and object_id[:2] == _PIV_OBJ_PREFIX and object_id[2] in _PIV_OBJ_IDS:
            return KEY_PIV_OBJ_BASE + object_id[2]
        raise ApduError(SW_FILE_NOT_FOUND)

    def _get_data(self, command):
        if command.p1p2 != 0x3FFF:
            raise ApduError(SW_INCORRECT_P1P2)
        object_id = only_one(command.data, _PIV_TAG_OBJ_ID)
        if object_id == _PIV_OBJ_DISCOVERY:
            # discovery object: PIV AID, PIN usage policy (PIV PIN only)
            return tlv(0x7E, tlv(0x4F, PIV_AID_FULL) + tlv(0x5F2F, b"\x40\x00"))
        value = self.store.get(self._object_key(object_id))
        if value is None:
            raise ApduError(SW_FILE_NOT_FOUND)
        return tlv(_PIV_TAG_OBJ_DATA, value)

    def _put_data(self, command):
        if command.p1p2 != 0x3FFF:
            raise ApduError(SW_INCORRECT_P1P2)
        tlvs = parse_tlvs(command.data)
        if len(tlvs) != 2 or tlvs[0][0] != _PIV_TAG_OBJ_ID or tlvs[1][0] != _PIV_TAG_OBJ_DATA:
            raise ApduError(SW_WRONG_DATA)
        key = self._object_key(tlvs[0][1])
        value = tlvs[1][1]
        if len(value) > _PIV_OBJ_MAX_LEN:
            raise ApduError(SW_NO_SPACE)
        self._require_mgmt()
        self._store_update({key: value if value else None}, False)
        return b""

    # --- reset ------------------------------------------------------------------------------------
    def _reset(self, command):
        if self._tries(PIV_P2_PIN) != 0 or self._tries(PIV_P2_PUK) != 0:
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
        changes = {}
        for key in self.store.keys(KEY_PIV_FIRST, KEY_PIV_LAST):
            changes[key] = None
        self._store_update(changes, True)
        self.deselect()
        return b""


def _no_cancel(status):
    return False
