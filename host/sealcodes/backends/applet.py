"""AppletBackend: our own token's sealcodes applet (docs/applet.md), over any SmartCardConnection.

R = DERIVE(slot, challenge) = HMAC-SHA-256(slot secret, challenge), the slot secret
made inside the token by GENERATE and never exported.

The applet is PIN-always: one VERIFY authorizes one GENERATE, DERIVE or DELETE. So the
PIN is asked once per operation, kept in a bytearray, sent in a VERIFY right before each
command that needs it (every slot of a recovery), and wiped when the operation ends.
"""

from __future__ import annotations

import logging

from sealtoken import const

from ..errors import DeviceError, InvalidInputError, PinBlockedError, PinError
from ..memory import wipe
from .base import Backend, Interaction, require_challenge, take_pin

log = logging.getLogger(__name__)

DEFAULT_SLOT = 1
RESPONSE_LEN = 32
MAX_RESPONSE_BYTES = 4096  # no answer of the applet is longer; a device sending more is broken or hostile


def _apdu(ins, p1=0, p2=0, data=b"", le=None):
    out = bytes([const.CLA_ISO, ins, p1, p2])
    if data:
        out += bytes([len(data)]) + bytes(data)
    if le is not None:
        out += bytes([le])
    return out


def _pin_apdu(ins, pin: bytearray) -> bytearray:
    """A command carrying the PIN, built in a bytearray the caller wipes (no immutable copy)."""
    out = bytearray((const.CLA_ISO, ins, 0, 0, len(pin)))
    out.extend(pin)
    return out


def parse_info(data: bytes) -> dict:
    """GET INFO / SELECT answer: simple TLVs (tag, 1-byte length, value)."""
    fields, i = {}, 0
    while i < len(data):
        if i + 2 > len(data) or i + 2 + data[i + 1] > len(data):
            raise DeviceError("the token's info answer is malformed")
        tag, length = data[i], data[i + 1]
        fields[tag] = bytes(data[i + 2:i + 2 + length])
        i += 2 + length
    try:
        info = {
            "version": ".".join(str(b) for b in fields[const.SEAL_TAG_VERSION]),
            "serial": fields[const.SEAL_TAG_SERIAL].hex().upper(),
            "pin_set": fields[const.SEAL_TAG_PIN_SET] == b"\x01",
            "pin_tries": fields[const.SEAL_TAG_PIN_TRIES][0],
            "slots_used": [s for s in range(1, 9) if fields[const.SEAL_TAG_SLOTS_USED][0] & (1 << (s - 1))],
        }
    except (KeyError, IndexError):
        raise DeviceError("the token's info answer lacks required fields") from None
    return info


class AppletBackend(Backend):
    name = "applet"

    def __init__(self, connection):
        self.connection = connection
        data, sw = self._send(bytes([0x00, 0xA4, 0x04, 0x00, len(const.AID_SEALCODES)]) + const.AID_SEALCODES
                              + b"\x00", redact=False)
        if sw != 0x9000:
            raise DeviceError(f"no sealcodes applet on {connection.name or 'this card'}")
        self._info = parse_info(data)

    # --- transport ---------------------------------------------------------------
    def _send(self, apdu, redact=True):
        """One APDU; follows 61xx. Traces never show PINs or DERIVE answers."""
        log.debug("> %s", apdu[:4].hex() + (" [data redacted]" if redact and len(apdu) > 5 else apdu[4:].hex()))
        data, sw = self.connection.send_and_receive(apdu)
        while (sw >> 8) == 0x61:
            if len(data) > MAX_RESPONSE_BYTES:
                raise DeviceError("the token keeps sending more data than any sealcodes answer holds")
            more, sw = self.connection.send_and_receive(bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
            data += more
        log.debug("< SW %04X (%d bytes%s)", sw, len(data), ", redacted" if redact else "")
        return data, sw

    def _check(self, sw, what):
        if sw == 0x9000:
            return
        if (sw & 0xFFF0) == 0x63C0:
            left = sw & 0x0F
            if left == 0:
                raise PinBlockedError("wrong PIN, and that was the last try: the token's PIN is now blocked; "
                                      "only a factory reset, which destroys its secrets, unblocks it")
            raise PinError(f"wrong PIN: {left} {'try' if left == 1 else 'tries'} left before the token locks",
                           retries_left=left)
        if sw == 0x6983:
            raise PinBlockedError("the token's PIN is blocked (too many wrong PINs): only a factory reset, "
                                  "which destroys its secrets, unblocks it")
        if sw == 0x6982:
            raise DeviceError(f"{what}: the PIN was not verified")
        if sw == 0x6A88:
            raise DeviceError(f"{what}: nothing there (slot empty or no PIN set); enroll first")
        if sw == 0x6A89:
            raise DeviceError(f"{what}: the slot already holds a secret (use --force to replace it, "
                              "which makes every code set of that slot unrecoverable)")
        if sw == 0x6A80:
            raise InvalidInputError(f"{what}: the token refused the data (PIN must be 4 to 63 bytes)")
        raise DeviceError(f"{what}: the token answered with status {sw:04X}")

    # --- operations ------------------------------------------------------------------
    def identity(self) -> dict:
        return {"serial": self._info["serial"], "version": self._info["version"]}

    def info(self) -> dict:
        data, sw = self._send(_apdu(const.SEAL_INS_GET_INFO, le=0), redact=False)
        self._check(sw, "reading the token's info")
        self._info = parse_info(data)
        return dict(self._info)

    def _ask_pin(self, interaction: Interaction, new: bool = False) -> bytearray:
        """The PIN for this operation; the caller wipes it."""
        if not new and self._info["pin_tries"] == 0:
            self._check(0x6983, "verifying the PIN")
        pin = take_pin(interaction.request_pin("applet", new=new))
        if not const.SEAL_PIN_MIN_LEN <= len(pin) <= const.SEAL_PIN_MAX_LEN:
            wipe(pin)
            raise InvalidInputError(f"the PIN must be {const.SEAL_PIN_MIN_LEN} to {const.SEAL_PIN_MAX_LEN} bytes")
        return pin

    def _send_pin(self, ins, pin: bytearray, what: str) -> None:
        apdu = _pin_apdu(ins, pin)
        try:
            _, sw = self._send(apdu)
        finally:
            wipe(apdu)
        self._check(sw, what)

    def _verify(self, pin: bytearray) -> None:
        """VERIFY: authorizes exactly one GENERATE, DERIVE or DELETE (PIN-always)."""
        self._send_pin(const.SEAL_INS_VERIFY_PIN, pin, "verifying the PIN")

    def enroll(self, interaction: Interaction, slot: int = DEFAULT_SLOT, force: bool = False, **_) -> dict:
        if not 1 <= slot <= const.SEAL_NUM_SLOTS:
            raise InvalidInputError(f"slot must be 1..{const.SEAL_NUM_SLOTS}")
        pin_set = self._info["pin_set"]
        pin = self._ask_pin(interaction, new=not pin_set)
        try:
            if not pin_set:
                self._send_pin(const.SEAL_INS_SET_PIN, pin, "setting the PIN")
            if slot in self._info["slots_used"] and not force:
                if not interaction.confirm(f"Slot {slot} of token {self._info['serial']} already holds a secret; "
                                           "replace it (its code sets become unrecoverable)?"):
                    self._check(0x6A89, f"generating a secret in slot {slot}")
            self._verify(pin)
        finally:
            wipe(pin)
        p2 = 0x01 if slot in self._info["slots_used"] else 0x00
        _, sw = self._send(_apdu(const.SEAL_INS_GENERATE, slot, p2), redact=False)
        self._check(sw, f"generating a secret in slot {slot}")
        return {"serial": self._info["serial"], "slot": slot}

    def _derive(self, slot, challenge) -> bytearray:
        data, sw = self._send(_apdu(const.SEAL_INS_DERIVE, slot, 0, challenge, le=0))
        try:
            self._check(sw, f"deriving with slot {slot}")
            if len(data) != RESPONSE_LEN:
                raise DeviceError(f"the token answered DERIVE with {len(data)} bytes instead of {RESPONSE_LEN}")
            return bytearray(data)
        finally:
            del data

    def respond(self, challenge: bytes, enrollment: dict, interaction: Interaction) -> bytearray:
        require_challenge(challenge)
        slot = int(enrollment.get("slot", DEFAULT_SLOT))
        if slot not in self._info["slots_used"]:
            raise DeviceError(f"slot {slot} of token {self._info['serial']} holds no secret: "
                              "it was reset or never enrolled; codes cannot be recovered from it")
        pin = self._ask_pin(interaction)
        try:
            self._verify(pin)
        finally:
            wipe(pin)
        return self._derive(slot, challenge)

    def recover_responses(self, challenge: bytes, interaction: Interaction):
        if not self._info["slots_used"]:
            return
        pin = self._ask_pin(interaction)
        try:
            for slot in self._info["slots_used"]:
                self._verify(pin)  # PIN-always: one VERIFY per DERIVE
                yield f"slot {slot}", self._derive(slot, challenge)
        finally:
            wipe(pin)
