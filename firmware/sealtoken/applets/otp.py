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

from sealtoken import const
from sealtoken.core.applet import Applet, ApduError
from sealtoken.core.hmac import ct_equal, wipe
from sealtoken.core.hmac import hmac as _hmac
from sealtoken.core.platform import UP_APPROVED
from sealtoken.core.storage import StoreFullError, device_serial

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
    return bool(config[_OFF_TKT] & const.OTP_TKT_CHAL_RESP) and bool(config[_OFF_CFG] & const.OTP_CFG_CHAL_YUBICO)


def _is_hmac(config):
    return _is_chal_resp(config) and config[_OFF_CFG] & const.OTP_CFG_CHAL_HMAC == const.OTP_CFG_CHAL_HMAC


class OtpApplet(Applet):
    AID = const.AID_OTP

    # --- state -------------------------------------------------------------
    def _slot_key(self, slot):
        return const.OTP_KEY_SLOT1 if slot == 1 else const.OTP_KEY_SLOT2

    def _config(self, slot):
        config = self.store.get(self._slot_key(slot))
        if config is None or len(config) != const.OTP_CONFIG_SIZE:
            return None
        return config

    def _pgm_seq(self):
        value = self.store.get(const.OTP_KEY_PGM_SEQ)
        return value[0] if value else 0

    def _touch_level(self, configs):
        level = 0
        for slot in (1, 2):
            config = configs[slot - 1]
            if config is None:
                continue
            level |= const.OTP_STATE_SLOT1_VALID if slot == 1 else const.OTP_STATE_SLOT2_VALID
            if not _is_chal_resp(config):
                level |= const.OTP_STATE_SLOT1_TOUCH if slot == 1 else const.OTP_STATE_SLOT2_TOUCH
        return level

    def _status(self):
        level = self._touch_level((self._config(1), self._config(2)))
        return bytes(const.OTP_VERSION) + bytes((self._pgm_seq(), level & 0xFF, level >> 8))

    # --- applet --------------------------------------------------------------------
    def select(self, command):
        return self._status()

    def process(self, command):
        if command.ins == const.OTP_INS_STATUS:
            return self._status()
        if command.ins != const.OTP_INS_CONFIG:
            raise ApduError(const.SW_INS_NOT_SUPPORTED)
        p1 = command.p1
        if p1 in (const.OTP_SLOT_CONFIG_1, const.OTP_SLOT_CONFIG_2):
            return self._write(1 if p1 == const.OTP_SLOT_CONFIG_1 else 2, command.data, False)
        if p1 in (const.OTP_SLOT_UPDATE_1, const.OTP_SLOT_UPDATE_2):
            return self._write(1 if p1 == const.OTP_SLOT_UPDATE_1 else 2, command.data, True)
        if p1 == const.OTP_SLOT_SWAP:
            return self._swap(command.data)
        if p1 == const.OTP_SLOT_DEVICE_SERIAL:
            return bytes(device_serial(self.platform, self.store))
        if p1 in (const.OTP_SLOT_CHAL_HMAC_1, const.OTP_SLOT_CHAL_HMAC_2):
            return self._challenge_response(1 if p1 == const.OTP_SLOT_CHAL_HMAC_1 else 2, command.data)
        raise ApduError(const.SW_INCORRECT_P1P2)

    # --- programming ---------------------------------------------------------------
    def _access_ok(self, config, given):
        if config is None:
            return True
        current = config[_OFF_ACC:_OFF_ACC + const.OTP_ACC_CODE_SIZE]
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
        changes[const.OTP_KEY_PGM_SEQ] = bytes((seq,))
        # scrub: no copy of a replaced or deleted key stays in flash
        try:
            self.store.update(changes, True)
        except StoreFullError:
            raise ApduError(const.SW_NO_SPACE)
        return self._status()

    def _write(self, slot, data, update):
        if len(data) != const.OTP_CONFIG_SIZE + const.OTP_ACC_CODE_SIZE:
            raise ApduError(const.SW_WRONG_LENGTH)
        new = data[:const.OTP_CONFIG_SIZE]
        given = data[const.OTP_CONFIG_SIZE:]
        old = self._config(slot)
        if not self._access_ok(old, given):
            return self._status()
        if not update and _is_zero(new):
            return self._commit({self._slot_key(slot): None})
        if crc16(new) != const.OTP_CRC_OK_RESIDUAL:
            return self._status()
        if update:
            if old is None or not old[_OFF_EXT] & const.OTP_EXT_ALLOW_UPDATE:
                return self._status()
            merged = bytearray(old)
            merged[_OFF_ACC:_OFF_ACC + const.OTP_ACC_CODE_SIZE] = new[_OFF_ACC:_OFF_ACC + const.OTP_ACC_CODE_SIZE]
            merged[_OFF_EXT] = new[_OFF_EXT]
            if not _is_chal_resp(old):
                # keyboard flags; in challenge-response mode the same bits mean HMAC_LT64 and
                # CHAL_BTN_TRIG, which an update (made for keyboard slots) must not change
                merged[_OFF_TKT] = ((old[_OFF_TKT] & ~const.OTP_TKT_UPDATE_MASK)
                                    | (new[_OFF_TKT] & const.OTP_TKT_UPDATE_MASK))
                merged[_OFF_CFG] = ((old[_OFF_CFG] & ~const.OTP_CFG_UPDATE_MASK)
                                    | (new[_OFF_CFG] & const.OTP_CFG_UPDATE_MASK))
            crc = 0xFFFF & ~crc16(merged[:const.OTP_CONFIG_SIZE - 2])
            merged[const.OTP_CONFIG_SIZE - 2] = crc & 0xFF
            merged[const.OTP_CONFIG_SIZE - 1] = crc >> 8
            new = bytes(merged)
            wipe(merged)
        return self._commit({self._slot_key(slot): bytes(new)})

    def _swap(self, data):
        given = data[-const.OTP_ACC_CODE_SIZE:] if len(data) >= const.OTP_ACC_CODE_SIZE else b""
        one = self._config(1)
        two = self._config(2)
        if not (self._access_ok(one, given) and self._access_ok(two, given)):
            return self._status()
        return self._commit({const.OTP_KEY_SLOT1: two, const.OTP_KEY_SLOT2: one})

    # --- challenge-response ------------------------------------------------------------
    def _challenge_response(self, slot, data):
        if len(data) != const.OTP_HMAC_CHALLENGE_SIZE:
            raise ApduError(const.SW_WRONG_LENGTH)
        config = self._config(slot)
        if config is None or not _is_hmac(config):
            raise ApduError(const.SW_CONDITIONS_NOT_SATISFIED)
        n = len(data)
        if config[_OFF_CFG] & const.OTP_CFG_HMAC_LT64:
            # the message ends before the run of bytes equal to the last one
            last = data[n - 1]
            while n > 0 and data[n - 1] == last:
                n -= 1
        if config[_OFF_CFG] & const.OTP_CFG_CHAL_BTN_TRIG:
            result = self.platform.wait_user_presence(const.OTP_TOUCH_TIMEOUT_MS, _no_cancel)
            if result != UP_APPROVED:
                raise ApduError(const.SW_SECURITY_STATUS_NOT_SATISFIED)
        key = bytearray(config[_OFF_KEY:_OFF_KEY + 16])
        key += config[_OFF_UID:_OFF_UID + 4]
        try:
            return bytes(_hmac(self.platform, "sha1", key, bytes(data[:n])))
        finally:
            wipe(key)


def _no_cancel(status):
    return False
