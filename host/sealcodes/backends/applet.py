"""AppletBackend: our own token's sealcodes applet (docs/applet.md), over any SmartCardConnection.

R = DERIVE(slot, challenge) = HMAC-SHA-256(slot secret, challenge), the slot secret made inside
the token by GENERATE and never exported.

The applet is PIN-always: one VERIFY authorizes one GENERATE or DERIVE. So the PIN is asked once
per operation, kept in a bytearray, sent in a VERIFY right before each command that needs it
(every slot of a recovery), and wiped when the operation ends. A session that verified the PIN
resets the card when it releases it, so no verified state outlives the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import const
from ..apdu import ApduError, SmartCardProtocol
from ..const import SW
from ..errors import DeviceError, InvalidInputError, PinBlockedError, PinError
from ..memory import wipe
from ..records import Enrollment, serial_text
from .base import Backend, Interaction, require_challenge, take_pin

if TYPE_CHECKING:  # enrollment.py is loaded only to enroll
    from ..enrollment import AppletOptions

DEFAULT_SLOT = 1
RESPONSE_LEN = 32
MAX_RESPONSE_BYTES = 4096  # no answer of the applet is longer; a device sending more is broken or hostile


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
        slots = fields[const.SEAL_TAG_SLOTS_USED][0]
        info = {
            "version": ".".join(str(b) for b in fields[const.SEAL_TAG_VERSION]),
            "serial": serial_text(fields[const.SEAL_TAG_SERIAL]),
            "pin_set": fields[const.SEAL_TAG_PIN_SET] == b"\x01",
            "pin_tries": fields[const.SEAL_TAG_PIN_TRIES][0],
            "slots_used": [s for s in range(1, const.SEAL_NUM_SLOTS + 1) if slots & (1 << (s - 1))],
        }
    except (KeyError, IndexError):
        raise DeviceError("the token's info answer lacks required fields") from None
    if not fields[const.SEAL_TAG_SERIAL]:
        raise DeviceError("the token's info answer lacks required fields")
    return info


class AppletBackend(Backend):
    name = "applet"
    pin_name = "token PIN"

    def __init__(self, connection):
        self.protocol = SmartCardProtocol(connection, max_response=MAX_RESPONSE_BYTES)
        self.connection = self.protocol.connection
        try:
            data = self.protocol.select(const.AID_SEALCODES)
        except ApduError:
            raise DeviceError(f"no sealcodes applet on {self.connection.name or 'this card'}") from None
        self._info = parse_info(data)

    def _send(self, ins, p1=0, p2=0, data=b"", redact=True):
        """One command to the applet: (answer, SW). Traces never show PINs or DERIVE answers."""
        return self.protocol.transceive(const.CLA_ISO, ins, p1, p2, data, le=0, redact=redact)

    def _check(self, sw, what):
        if sw == SW.OK:
            return
        if (sw & 0xFFF0) == SW.VERIFY_FAIL:
            left = sw & 0x0F
            if left == 0:
                raise PinBlockedError("wrong PIN, and that was the last try: the token's PIN is now blocked; "
                                      "only a factory reset, which destroys its secrets, unblocks it")
            raise PinError(f"wrong PIN: {left} {'try' if left == 1 else 'tries'} left before the token locks",
                           retries_left=left)
        if sw == SW.AUTH_METHOD_BLOCKED:
            raise PinBlockedError("the token's PIN is blocked (too many wrong PINs): only a factory reset, "
                                  "which destroys its secrets, unblocks it")
        if sw == SW.SECURITY_STATUS_NOT_SATISFIED:
            raise DeviceError(f"{what}: the PIN was not verified")
        if sw == SW.REFERENCED_DATA_NOT_FOUND:
            raise DeviceError(f"{what}: nothing there (slot empty or no PIN set); enroll first")
        if sw == SW.FILE_EXISTS:
            raise DeviceError(f"{what}: the slot already holds a secret (use --force to replace it, "
                              "which makes every code set of that slot unrecoverable)")
        if sw == SW.WRONG_DATA:
            raise InvalidInputError(f"{what}: the token refused the data (PIN must be 4 to 63 bytes)")
        raise DeviceError(f"{what}: the token answered with status {sw:04X}")

    # --- operations ------------------------------------------------------------------
    def identity(self) -> dict:
        return {"serial": self._info["serial"], "version": self._info["version"]}

    def info(self) -> dict:
        data, sw = self._send(const.SEAL_INS_GET_INFO, redact=False)
        self._check(sw, "reading the token's info")
        self._info = parse_info(data)
        return dict(self._info)

    def _ask_pin(self, interaction: Interaction, new: bool = False) -> bytearray:
        """The PIN for this operation, in a bytearray the caller wipes."""
        if not new and self._info["pin_tries"] == 0:
            self._check(SW.AUTH_METHOD_BLOCKED, "verifying the PIN")
        pin = take_pin(interaction.request_pin("applet", new=new))
        if not const.SEAL_PIN_MIN_LEN <= len(pin) <= const.SEAL_PIN_MAX_LEN:
            wipe(pin)
            raise InvalidInputError(f"the PIN must be {const.SEAL_PIN_MIN_LEN} to {const.SEAL_PIN_MAX_LEN} bytes")
        return pin

    def set_pin(self, interaction: Interaction) -> None:
        pin = self._ask_pin(interaction, new=True)
        try:
            _, sw = self._send(const.SEAL_INS_SET_PIN, data=pin)
        finally:
            wipe(pin)
        self._check(sw, "setting the PIN")

    def _verify(self, pin: bytearray) -> None:
        """VERIFY: authorizes the next DERIVE (or GENERATE) only (PIN-always)."""
        self.connection.reset_on_close()  # from here on, the card holds state that is ours
        _, sw = self._send(const.SEAL_INS_VERIFY_PIN, data=pin)
        if (sw & 0xFFF0) == SW.VERIFY_FAIL:
            self._info["pin_tries"] = sw & 0x0F
        self._check(sw, "verifying the PIN")

    def verify_pin(self, interaction: Interaction) -> None:
        pin = self._ask_pin(interaction)
        try:
            self._verify(pin)
        finally:
            wipe(pin)

    def enroll(self, interaction: Interaction, options: AppletOptions | None = None) -> Enrollment:
        options = options if options is not None else self.default_options()
        slot = options.slot
        if isinstance(slot, bool) or not isinstance(slot, int) or not 1 <= slot <= const.SEAL_NUM_SLOTS:
            raise InvalidInputError(f"slot must be 1..{const.SEAL_NUM_SLOTS}")
        pin_set = self._info["pin_set"]
        pin = self._ask_pin(interaction, new=not pin_set)
        try:
            if not pin_set:
                _, sw = self._send(const.SEAL_INS_SET_PIN, data=pin)
                self._check(sw, "setting the PIN")
            if slot in self._info["slots_used"] and not options.force:
                if not interaction.confirm(f"Slot {slot} of token {self._info['serial']} already holds a secret; "
                                           "replace it (its code sets become unrecoverable)?"):
                    self._check(SW.FILE_EXISTS, f"generating a secret in slot {slot}")
            self._verify(pin)
        finally:
            wipe(pin)
        p2 = const.SEAL_P2_GENERATE_OVERWRITE if slot in self._info["slots_used"] else 0x00
        _, sw = self._send(const.SEAL_INS_GENERATE, slot, p2, redact=False)
        self._check(sw, f"generating a secret in slot {slot}")
        return Enrollment(backend=self.name, serial=self._info["serial"], slot=slot)

    def _derive(self, slot, challenge, pin: bytearray) -> bytearray:
        self._verify(pin)  # PIN-always: its own VERIFY before every DERIVE
        data, sw = self._send(const.SEAL_INS_DERIVE, slot, 0, challenge)
        try:
            self._check(sw, f"deriving with slot {slot}")
            if len(data) != RESPONSE_LEN:
                raise DeviceError(f"the token answered DERIVE with {len(data)} bytes instead of {RESPONSE_LEN}")
            return bytearray(data)
        finally:
            del data

    def _slot_of(self, enrollment: Enrollment) -> int:
        slot = DEFAULT_SLOT if enrollment.slot is None else enrollment.slot
        if not 1 <= slot <= const.SEAL_NUM_SLOTS:
            raise InvalidInputError(f"slot must be 1..{const.SEAL_NUM_SLOTS}")
        return slot

    def respond(self, challenge: bytes, enrollment: Enrollment, interaction: Interaction) -> bytearray:
        require_challenge(challenge)
        slot = self._slot_of(enrollment)
        if slot not in self._info["slots_used"]:
            raise DeviceError(f"slot {slot} of token {self._info['serial']} holds no secret: "
                              "it was reset or never enrolled; codes cannot be recovered from it")
        pin = self._ask_pin(interaction)
        try:
            return self._derive(slot, challenge, pin)
        finally:
            wipe(pin)

    def recover_responses(self, challenge: bytes, interaction: Interaction):
        require_challenge(challenge)
        if not self._info["slots_used"]:
            return
        pin = self._ask_pin(interaction)
        try:
            for slot in self._info["slots_used"]:
                yield f"slot {slot}", self._derive(slot, challenge, pin)
        finally:
            wipe(pin)

    def wrong_secret_hint(self) -> str:
        return "another token, or the slot's secret was replaced (enroll --force) since"
