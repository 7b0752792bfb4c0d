"""The sealcodes applet: PIN-protected slots holding secrets made inside the token.

AID F0 53 45 41 4C 43 4F 44 45 53 ("\\xF0SEALCODES"). CLA 00 for every command.
docs/applet.md is the reference for the host; in short:

    INS  command      P1    P2        data                       response
    50   GET INFO     00    00        -                          info TLVs (also the SELECT answer)
    52   SET PIN      00    00        PIN (4..63)                -          only when no PIN is set
    20   VERIFY PIN   00    00        PIN (4..63) | empty        -          empty data: status only
    24   CHANGE PIN   00    00        Lold(1) old new            -
    46   GENERATE     slot  00 | 01   -                          -          01 = may replace the slot
    88   DERIVE       slot  00        challenge (32)             HMAC-SHA-256(slot secret, challenge)
    E4   DELETE       slot  00        -                          -
    FE   RESET        DE    AD        -                          -          touch; destroys PIN and slots

PIN rules: 4..63 bytes; SEAL_PIN_MAX_TRIES (8) tries; before a PIN is compared
the tries counter is decremented and persisted, and only a match resets it, so
a power cut right after VERIFY never gives a try back. 0 tries: 6983 until
RESET. Wrong PIN: 63Cx (x tries left).

PIN-always (as PIV's signature key): a successful VERIFY authorizes exactly one
GENERATE, DERIVE or DELETE. That command uses the authorization up as soon as
its parameters are accepted, whether it then succeeds or not, so no other
program sharing the card (through pcscd, in shared mode) can use a VERIFY the
host made for itself. A wrong PIN, CHANGE PIN, deselect (SELECT of another
application, or of this one again), power off and reset also end it.

No command returns a slot secret or the PIN; RESET (no PIN, like the FIDO and
OATH resets, but it only destroys) needs user presence through the platform
(denied, cancelled or timed out: 6985, nothing erased), then removes every
record of this applet and scrubs both flash banks.
"""

import hashlib

from sealtoken.applets import AID_SEALCODES
from sealtoken.core.applet import Applet, ApduError
from sealtoken.core.hmac import ct_equal, hmac_sha256, wipe
from sealtoken.core.iso7816 import (CLA_ISO, SW_AUTH_METHOD_BLOCKED, SW_CLA_NOT_SUPPORTED,
                                    SW_CONDITIONS_NOT_SATISFIED, SW_FILE_EXISTS, SW_INCORRECT_P1P2,
                                    SW_INS_NOT_SUPPORTED, SW_NO_SPACE, SW_REFERENCED_DATA_NOT_FOUND,
                                    SW_SECURITY_STATUS_NOT_SATISFIED, SW_VERIFY_FAIL_00, SW_WRONG_DATA,
                                    SW_WRONG_LENGTH)
from sealtoken.core.keys import (KEY_SEAL_FIRST, KEY_SEAL_LAST, KEY_SEAL_PIN, KEY_SEAL_PIN_TRIES,
                                 KEY_SEAL_SLOT_BASE)
from sealtoken.core.micro import const
from sealtoken.core.platform import UP_APPROVED
from sealtoken.core.storage import StoreFullError, device_serial

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
SEAL_VERSION = (1, 1, 0)                          # 1.1: PIN-always (one VERIFY, one use); RESET needs a touch
SEAL_INS_VERIFY_PIN = const(0x20)                 # ISO VERIFY
SEAL_INS_CHANGE_PIN = const(0x24)                 # ISO CHANGE REFERENCE DATA
SEAL_INS_GENERATE = const(0x46)                   # make a slot secret inside the token
SEAL_INS_GET_INFO = const(0x50)
SEAL_INS_SET_PIN = const(0x52)
SEAL_INS_DERIVE = const(0x88)                     # ISO INTERNAL AUTHENTICATE: HMAC-SHA-256(slot, challenge)
SEAL_INS_DELETE = const(0xE4)                     # delete one slot
SEAL_INS_RESET = const(0xFE)                      # factory reset of this applet (P1P2 = SEAL_RESET_CONFIRM)
SEAL_P2_GENERATE_OVERWRITE = const(0x01)          # GENERATE: P2=01 allows replacing an existing slot
_SEAL_RESET_CONFIRM = const(0xDEAD)               # RESET: P1 P2 = DE AD
SEAL_RESET_TOUCH_TIMEOUT_MS = const(15000)        # RESET waits this long for a touch, then 6985
SEAL_PIN_MIN_LEN = const(4)                       # bytes (UTF-8 from the host)
SEAL_PIN_MAX_LEN = const(63)
SEAL_PIN_MAX_TRIES = const(8)
_SEAL_PIN_SALT_LEN = const(16)
SEAL_NUM_SLOTS = const(8)                         # slots 1..8
SEAL_SECRET_LEN = const(32)
SEAL_CHALLENGE_LEN = const(32)
_SEAL_ALG_HMAC_SHA256 = const(0x01)
SEAL_TAG_VERSION = const(0x01)                    # 3 bytes major minor patch
SEAL_TAG_SERIAL = const(0x02)                     # 4 bytes
SEAL_TAG_PIN_SET = const(0x03)                    # 1 byte: 0 / 1
SEAL_TAG_PIN_TRIES = const(0x04)                  # 1 byte: tries left
SEAL_TAG_SLOTS_USED = const(0x05)                 # 1 byte bitmap: bit (n-1) = slot n holds a secret
SEAL_TAG_NUM_SLOTS = const(0x06)                  # 1 byte
SEAL_TAG_PIN_VERIFIED = const(0x07)               # 1 byte: 0 / 1 (this session)
SEAL_TAG_PIN_MAX_TRIES = const(0x08)              # 1 byte
SEAL_TAG_PIN_LENGTHS = const(0x09)                # 2 bytes: min, max

PIN_RECORD_LEN = _SEAL_PIN_SALT_LEN + 32
SLOT_RECORD_LEN = 1 + SEAL_SECRET_LEN


def _tlv(tag, value):
    return bytes((tag, len(value))) + bytes(value)


def slot_key(slot):
    """Storage key of slot 1..SEAL_NUM_SLOTS."""
    return KEY_SEAL_SLOT_BASE + slot


def _no_cancel(status):
    return False


def _pin_hash(salt, pin):
    h = hashlib.sha256(salt)
    h.update(pin)
    return h.digest()


class SealApplet(Applet):
    AID = AID_SEALCODES
    SEND_REMAINING_INS = None

    def __init__(self, platform, store):
        Applet.__init__(self, platform, store)
        self._verified = False

    # --- session --------------------------------------------------------------------
    def pin_verified(self):
        """True while a successful VERIFY waits for the one command it authorizes."""
        return self._verified

    def deselect(self):
        self._verified = False

    def power_off(self):
        self._verified = False

    def select(self, command):
        self._verified = False
        return self._info()

    # --- dispatch ---------------------------------------------------------------------
    def process(self, command):
        if command.cla != CLA_ISO:
            raise ApduError(SW_CLA_NOT_SUPPORTED)
        ins = command.ins
        if ins == SEAL_INS_GET_INFO:
            self._p1p2(command, 0)
            return self._info()
        if ins == SEAL_INS_VERIFY_PIN:
            return self._verify(command)
        if ins == SEAL_INS_SET_PIN:
            return self._set_pin(command)
        if ins == SEAL_INS_CHANGE_PIN:
            return self._change_pin(command)
        if ins == SEAL_INS_GENERATE:
            return self._generate(command)
        if ins == SEAL_INS_DERIVE:
            return self._derive(command)
        if ins == SEAL_INS_DELETE:
            return self._delete(command)
        if ins == SEAL_INS_RESET:
            return self._reset(command)
        raise ApduError(SW_INS_NOT_SUPPORTED)

    @staticmethod
    def _p1p2(command, value):
        if command.p1p2 != value:
            raise ApduError(SW_INCORRECT_P1P2)

    # --- state ----------------------------------------------------------------------------
    def _pin_record(self):
        rec = self.store.get(KEY_SEAL_PIN)
        if rec is None:
            return None
        if len(rec) != PIN_RECORD_LEN:
            return None
        return rec

    def _tries(self):
        """Tries left; a PIN whose counter is missing or damaged counts as blocked."""
        raw = self.store.get(KEY_SEAL_PIN_TRIES)
        if raw is None or len(raw) != 1 or raw[0] > SEAL_PIN_MAX_TRIES:
            return 0
        return raw[0]

    def _slot(self, slot):
        rec = self.store.get(slot_key(slot))
        if rec is None or len(rec) != SLOT_RECORD_LEN or rec[0] != _SEAL_ALG_HMAC_SHA256:
            return None
        return rec

    def _slots_bitmap(self):
        bits = 0
        for slot in range(1, SEAL_NUM_SLOTS + 1):
            if self._slot(slot) is not None:
                bits |= 1 << (slot - 1)
        return bits

    def _info(self):
        pin_set = self._pin_record() is not None
        tries = self._tries() if pin_set else SEAL_PIN_MAX_TRIES
        return (_tlv(SEAL_TAG_VERSION, bytes(SEAL_VERSION))
                + _tlv(SEAL_TAG_SERIAL, device_serial(self.platform, self.store))
                + _tlv(SEAL_TAG_PIN_SET, bytes((1 if pin_set else 0,)))
                + _tlv(SEAL_TAG_PIN_TRIES, bytes((tries,)))
                + _tlv(SEAL_TAG_SLOTS_USED, bytes((self._slots_bitmap(),)))
                + _tlv(SEAL_TAG_NUM_SLOTS, bytes((SEAL_NUM_SLOTS,)))
                + _tlv(SEAL_TAG_PIN_VERIFIED, bytes((1 if self._verified else 0,)))
                + _tlv(SEAL_TAG_PIN_MAX_TRIES, bytes((SEAL_PIN_MAX_TRIES,)))
                + _tlv(SEAL_TAG_PIN_LENGTHS, bytes((SEAL_PIN_MIN_LEN, SEAL_PIN_MAX_LEN))))

    # --- PIN ------------------------------------------------------------------------------
    @staticmethod
    def _check_pin_format(pin):
        if not SEAL_PIN_MIN_LEN <= len(pin) <= SEAL_PIN_MAX_LEN:
            raise ApduError(SW_WRONG_DATA)

    def _new_pin_record(self, pin):
        salt = bytes(self.platform.random_bytes(_SEAL_PIN_SALT_LEN))
        return salt + _pin_hash(salt, pin)

    def _check_pin(self, rec, pin):
        """Spend one try (persisted first), then compare. True on a match (tries back to max)."""
        tries = self._tries()
        if tries == 0:
            raise ApduError(SW_AUTH_METHOD_BLOCKED)
        # the decrement is durable before the comparison happens
        self.store.put(KEY_SEAL_PIN_TRIES, bytes((tries - 1,)))
        salt = rec[:_SEAL_PIN_SALT_LEN]
        ok = ct_equal(_pin_hash(salt, pin), rec[_SEAL_PIN_SALT_LEN:])
        if not ok:
            self._verified = False
            return False, tries - 1
        return True, tries - 1

    def _verify(self, command):
        self._p1p2(command, 0)
        rec = self._pin_record()
        if rec is None:
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
        pin = command.data
        if not pin:  # status query, spends no try
            tries = self._tries()
            if tries == 0:
                raise ApduError(SW_AUTH_METHOD_BLOCKED)
            if self._verified:
                return b""
            raise ApduError(SW_VERIFY_FAIL_00 | tries)
        if self._tries() == 0:
            raise ApduError(SW_AUTH_METHOD_BLOCKED)
        self._check_pin_format(pin)
        ok, left = self._check_pin(rec, pin)
        if not ok:
            raise ApduError(SW_VERIFY_FAIL_00 | left)
        self.store.put(KEY_SEAL_PIN_TRIES, bytes((SEAL_PIN_MAX_TRIES,)))
        self._verified = True
        return b""

    def _set_pin(self, command):
        self._p1p2(command, 0)
        if self._pin_record() is not None:
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
        pin = command.data
        self._check_pin_format(pin)
        self._store_update({
            KEY_SEAL_PIN: self._new_pin_record(pin),
            KEY_SEAL_PIN_TRIES: bytes((SEAL_PIN_MAX_TRIES,)),
        }, True)
        return b""

    def _change_pin(self, command):
        self._p1p2(command, 0)
        rec = self._pin_record()
        if rec is None:
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
        if self._tries() == 0:
            raise ApduError(SW_AUTH_METHOD_BLOCKED)
        data = command.data
        if len(data) < 1 or data[0] > len(data) - 1:
            raise ApduError(SW_WRONG_DATA)
        old = data[1:1 + data[0]]
        new = data[1 + data[0]:]
        self._check_pin_format(old)
        self._check_pin_format(new)
        ok, left = self._check_pin(rec, old)
        if not ok:
            raise ApduError(SW_VERIFY_FAIL_00 | left)
        self._verified = False  # CHANGE PIN authorizes nothing: a VERIFY precedes every use
        self._store_update({
            KEY_SEAL_PIN: self._new_pin_record(new),
            KEY_SEAL_PIN_TRIES: bytes((SEAL_PIN_MAX_TRIES,)),
        }, True)
        return b""

    # --- slots ------------------------------------------------------------------------------
    def _slot_param(self, command, allowed_p2):
        slot = command.p1
        if not 1 <= slot <= SEAL_NUM_SLOTS or command.p2 not in allowed_p2:
            raise ApduError(SW_INCORRECT_P1P2)
        return slot

    def _use_pin(self):
        """Spend the one command a VERIFY authorizes (PIN-always), before doing anything with it."""
        if not self._verified:
            raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
        self._verified = False

    def _store_update(self, changes, scrub):
        try:
            self.store.update(changes, scrub)
        except StoreFullError:
            raise ApduError(SW_NO_SPACE)

    def _generate(self, command):
        slot = self._slot_param(command, (0, SEAL_P2_GENERATE_OVERWRITE))
        self._use_pin()
        existing = self.store.get(slot_key(slot)) is not None
        if existing and command.p2 != SEAL_P2_GENERATE_OVERWRITE:
            raise ApduError(SW_FILE_EXISTS)
        record = bytearray((_SEAL_ALG_HMAC_SHA256,))
        record.extend(self.platform.random_bytes(SEAL_SECRET_LEN))
        try:
            self._store_update({slot_key(slot): record}, existing)
        finally:
            wipe(record)
        return b""

    def _derive(self, command):
        slot = self._slot_param(command, (0,))
        self._use_pin()
        if len(command.data) != SEAL_CHALLENGE_LEN:
            raise ApduError(SW_WRONG_LENGTH)
        rec = self._slot(slot)
        if rec is None:
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
        key = bytearray(rec[1:])
        try:
            return hmac_sha256(key, command.data)
        finally:
            wipe(key)

    def _delete(self, command):
        slot = self._slot_param(command, (0,))
        self._use_pin()
        if self.store.get(slot_key(slot)) is None:
            raise ApduError(SW_REFERENCED_DATA_NOT_FOUND)
        self.store.update({slot_key(slot): None}, True)
        return b""

    def _reset(self, command):
        self._p1p2(command, _SEAL_RESET_CONFIRM)
        self._verified = False
        # malware on the host must not wipe the slots unseen: a person touches the token first
        if self.platform.wait_user_presence(SEAL_RESET_TOUCH_TIMEOUT_MS, _no_cancel) != UP_APPROVED:
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
        changes = {}
        for key in self.store.keys(KEY_SEAL_FIRST, KEY_SEAL_LAST):
            changes[key] = None
        self.store.update(changes, True)
        return b""
