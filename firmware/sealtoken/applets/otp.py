"""YubiKey-OTP-compatible applet over CCID: HMAC-SHA1 challenge-response slots.

Wire protocol: docs/protocols.md section 8, as yubikit's YubiOtpSession
speaks it over a smartcard connection:

  SELECT           -> status: major minor build pgmSeq touchLevel(2, little endian)
  INS 03           -> status
  INS 01 P1=slot-command, data:
    01 / 03  program slot 1 / 2: 52-byte config || 6-byte current access code
             (a config of 52 zero bytes deletes the slot)
    04 / 05  update slot 1 / 2 (flags and access code only, needs ALLOW_UPDATE;
             a challenge-response slot keeps its TKT/CFG flags)
    06       swap slots 1 and 2
    10       serial number (4 bytes, big endian)
    30 / 38  HMAC-SHA1 challenge-response, slot 1 / 2: 64-byte challenge -> 20 bytes.
             With HMAC_LT64 (as yubikit programs slots) the message is the challenge
             without its trailing run of bytes equal to its last byte: yubikit pads
             shorter challenges with a byte that differs from their last one, so they
             come back intact; a full 64-byte challenge loses its trailing run.

A write that is refused (wrong access code, bad CRC, nothing to update) answers
the unchanged status with 9000: yubikit notices that pgmSeq did not move on and
raises CommandRejectedError, as with a real YubiKey.

Config layout (52 bytes): fixed(16) uid(6) key(16) accCode(6) fixedSize extFlags
tktFlags cfgFlags rfu(2) crc(2, little endian; the CRC-16 residual over all 52
bytes is F0B8). An HMAC-SHA1 key is key(16) || uid[0:4].

MicroPython rules: plain classes, bytes/bytearray, crypto through the platform.
"""
from sealtoken.applets import AID_OTP
from sealtoken.core.applet import Applet, ApduError
from sealtoken.core.hmac import ct_equal, wipe
from sealtoken.core.hmac import hmac as _hmac
from sealtoken.core.iso7816 import (SW_CONDITIONS_NOT_SATISFIED, SW_INCORRECT_P1P2, SW_INS_NOT_SUPPORTED,
                                    SW_NO_SPACE, SW_SECURITY_STATUS_NOT_SATISFIED, SW_WRONG_LENGTH)
from sealtoken.core.keys import OTP_KEY_PGM_SEQ, OTP_KEY_SLOT1, OTP_KEY_SLOT2
from sealtoken.core.micro import const
from sealtoken.core.platform import UP_APPROVED
from sealtoken.core.storage import StoreFullError, device_serial

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_OTP_VERSION = (5, 7, 1)
_OTP_INS_CONFIG = const(0x01)
_OTP_INS_STATUS = const(0x03)
_OTP_SLOT_CONFIG_1 = const(0x01)
_OTP_SLOT_CONFIG_2 = const(0x03)
_OTP_SLOT_UPDATE_1 = const(0x04)
_OTP_SLOT_UPDATE_2 = const(0x05)
_OTP_SLOT_SWAP = const(0x06)
_OTP_SLOT_DEVICE_SERIAL = const(0x10)
_OTP_SLOT_CHAL_HMAC_1 = const(0x30)
_OTP_SLOT_CHAL_HMAC_2 = const(0x38)
_OTP_CONFIG_SIZE = const(52)
_OTP_ACC_CODE_SIZE = const(6)
_OTP_HMAC_CHALLENGE_SIZE = const(64)
_OTP_CRC_OK_RESIDUAL = const(0xF0B8)
_OTP_TKT_CHAL_RESP = const(0x40)
_OTP_TKT_UPDATE_MASK = const(0x3F)
_OTP_CFG_CHAL_YUBICO = const(0x20)
_OTP_CFG_CHAL_HMAC = const(0x22)
_OTP_CFG_HMAC_LT64 = const(0x04)
_OTP_CFG_CHAL_BTN_TRIG = const(0x08)
_OTP_CFG_UPDATE_MASK = const(0x0C)
_OTP_EXT_ALLOW_UPDATE = const(0x20)
_OTP_STATE_SLOT1_VALID = const(0x01)
_OTP_STATE_SLOT2_VALID = const(0x02)
_OTP_STATE_SLOT1_TOUCH = const(0x04)
_OTP_STATE_SLOT2_TOUCH = const(0x08)
_OTP_TOUCH_TIMEOUT_MS = const(15000)

_OFF_UID = 16
_OFF_KEY = 22
_OFF_ACC = 38
_OFF_EXT = 45
_OFF_TKT = 46
_OFF_CFG = 47


def crc16(data):
    """CRC-16 of the YubiKey configuration (ISO 13239, reflected 0x8408, init FFFF)."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0x8408
            else:
                crc >>= 1
    return crc


def _is_zero(data):
    for b in data:
        if b:
            return False
    return True


def _is_chal_resp(config):
    return bool(config[_OFF_TKT] & _OTP_TKT_CHAL_RESP) and bool(config[_OFF_CFG] & _OTP_CFG_CHAL_YUBICO)


def _is_hmac(config):
    return _is_chal_resp(config) and config[_OFF_CFG] & _OTP_CFG_CHAL_HMAC == _OTP_CFG_CHAL_HMAC


class OtpApplet(Applet):
    AID = AID_OTP

    # --- state -------------------------------------------------------------
    def _slot_key(self, slot):
        return OTP_KEY_SLOT1 if slot == 1 else OTP_KEY_SLOT2

    def _config(self, slot):
        config = self.store.get(self._slot_key(slot))
        if config is None or len(config) != _OTP_CONFIG_SIZE:
            return None
        return config

    def _pgm_seq(self):
        value = self.store.get(OTP_KEY_PGM_SEQ)
        return value[0] if value else 0

    def _touch_level(self, configs):
        level = 0
        for slot in (1, 2):
            config = configs[slot - 1]
            if config is None:
                continue
            level |= _OTP_STATE_SLOT1_VALID if slot == 1 else _OTP_STATE_SLOT2_VALID
            if not _is_chal_resp(config):
                level |= _OTP_STATE_SLOT1_TOUCH if slot == 1 else _OTP_STATE_SLOT2_TOUCH
        return level

    def _status(self):
        level = self._touch_level((self._config(1), self._config(2)))
        return bytes(_OTP_VERSION) + bytes((self._pgm_seq(), level & 0xFF, level >> 8))

    # --- applet --------------------------------------------------------------------
    def select(self, command):
        return self._status()

    def process(self, command):
        if command.ins == _OTP_INS_STATUS:
            return self._status()
        if command.ins != _OTP_INS_CONFIG:
            raise ApduError(SW_INS_NOT_SUPPORTED)
        p1 = command.p1
        if p1 in (_OTP_SLOT_CONFIG_1, _OTP_SLOT_CONFIG_2):
            return self._write(1 if p1 == _OTP_SLOT_CONFIG_1 else 2, command.data, False)
        if p1 in (_OTP_SLOT_UPDATE_1, _OTP_SLOT_UPDATE_2):
            return self._write(1 if p1 == _OTP_SLOT_UPDATE_1 else 2, command.data, True)
        if p1 == _OTP_SLOT_SWAP:
            return self._swap(command.data)
        if p1 == _OTP_SLOT_DEVICE_SERIAL:
            return bytes(device_serial(self.platform, self.store))
        if p1 in (_OTP_SLOT_CHAL_HMAC_1, _OTP_SLOT_CHAL_HMAC_2):
            return self._challenge_response(1 if p1 == _OTP_SLOT_CHAL_HMAC_1 else 2, command.data)
        raise ApduError(SW_INCORRECT_P1P2)

    # --- programming ---------------------------------------------------------------
    def _access_ok(self, config, given):
        if config is None:
            return True
        current = config[_OFF_ACC:_OFF_ACC + _OTP_ACC_CODE_SIZE]
        if _is_zero(current):
            return True
        return ct_equal(current, given)

    def _commit(self, changes):
        """Store the slot changes with the next programming sequence number; returns the status."""
        configs = [self._config(1), self._config(2)]
        for slot in (1, 2):
            key = self._slot_key(slot)
            if key in changes:
                configs[slot - 1] = changes[key]
        if configs[0] is None and configs[1] is None:
            seq = 0  # yubikit accepts a reset to 0 when no slot is left programmed
        else:
            seq = self._pgm_seq() + 1
            if seq > 0xFF:
                seq = 1
        changes[OTP_KEY_PGM_SEQ] = bytes((seq,))
        # scrub: no copy of a replaced or deleted key stays in flash
        try:
            self.store.update(changes, True)
        except StoreFullError:
            raise ApduError(SW_NO_SPACE)
        return self._status()

    def _write(self, slot, data, update):
        if len(data) != _OTP_CONFIG_SIZE + _OTP_ACC_CODE_SIZE:
            raise ApduError(SW_WRONG_LENGTH)
        new = data[:_OTP_CONFIG_SIZE]
        given = data[_OTP_CONFIG_SIZE:]
        old = self._config(slot)
        if not self._access_ok(old, given):
            return self._status()
        if not update and _is_zero(new):
            return self._commit({self._slot_key(slot): None})
        if crc16(new) != _OTP_CRC_OK_RESIDUAL:
            return self._status()
        if update:
            if old is None or not old[_OFF_EXT] & _OTP_EXT_ALLOW_UPDATE:
                return self._status()
            merged = bytearray(old)
            merged[_OFF_ACC:_OFF_ACC + _OTP_ACC_CODE_SIZE] = new[_OFF_ACC:_OFF_ACC + _OTP_ACC_CODE_SIZE]
            merged[_OFF_EXT] = new[_OFF_EXT]
            if not _is_chal_resp(old):
                # keyboard flags; in challenge-response mode the same bits mean HMAC_LT64 and
                # CHAL_BTN_TRIG, which an update (made for keyboard slots) must not change
                merged[_OFF_TKT] = ((old[_OFF_TKT] & ~_OTP_TKT_UPDATE_MASK)
                                    | (new[_OFF_TKT] & _OTP_TKT_UPDATE_MASK))
                merged[_OFF_CFG] = ((old[_OFF_CFG] & ~_OTP_CFG_UPDATE_MASK)
                                    | (new[_OFF_CFG] & _OTP_CFG_UPDATE_MASK))
            crc = 0xFFFF & ~crc16(merged[:_OTP_CONFIG_SIZE - 2])
            merged[_OTP_CONFIG_SIZE - 2] = crc & 0xFF
            merged[_OTP_CONFIG_SIZE - 1] = crc >> 8
            new = bytes(merged)
            wipe(merged)
        return self._commit({self._slot_key(slot): bytes(new)})

    def _swap(self, data):
        given = data[-_OTP_ACC_CODE_SIZE:] if len(data) >= _OTP_ACC_CODE_SIZE else b""
        one = self._config(1)
        two = self._config(2)
        if not (self._access_ok(one, given) and self._access_ok(two, given)):
            return self._status()
        return self._commit({OTP_KEY_SLOT1: two, OTP_KEY_SLOT2: one})

    # --- challenge-response ------------------------------------------------------------
    def _challenge_response(self, slot, data):
        if len(data) != _OTP_HMAC_CHALLENGE_SIZE:
            raise ApduError(SW_WRONG_LENGTH)
        config = self._config(slot)
        if config is None or not _is_hmac(config):
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
        n = len(data)
        if config[_OFF_CFG] & _OTP_CFG_HMAC_LT64:
            # the message ends before the run of bytes equal to the last one
            last = data[n - 1]
            while n > 0 and data[n - 1] == last:
                n -= 1
        if config[_OFF_CFG] & _OTP_CFG_CHAL_BTN_TRIG:
            result = self.platform.wait_user_presence(_OTP_TOUCH_TIMEOUT_MS, _no_cancel)
            if result != UP_APPROVED:
                raise ApduError(SW_SECURITY_STATUS_NOT_SATISFIED)
        key = bytearray(config[_OFF_KEY:_OFF_KEY + 16])
        key += config[_OFF_UID:_OFF_UID + 4]
        try:
            return bytes(_hmac(self.platform, "sha1", key, bytes(data[:n])))
        finally:
            wipe(key)


def _no_cancel(status):
    return False
