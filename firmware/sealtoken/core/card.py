"""Card: ISO 7816-4 framing and applet dispatch. APDU in -> data || SW1 SW2 out.

    card = Card(platform, applets)   # Applet objects, or AppletSlots imported on first SELECT
    card.atr                      # ATR
    card.power_on() / card.reset() -> ATR;  card.power_off()
    card.process_apdu(apdu_bytes) -> response bytes (never empty, never raises)

What the card does, so that applets only ever see one whole Command:

- parses short and extended APDUs, cases 1-4 (iso7816.parse_apdu); malformed -> 6700,
  bad class -> 6E00, logical channels -> 6881, secure messaging -> 6882;
- command chaining (CLA bit 0x10): fragments with the same CLA/INS/P1/P2 are
  collected (each answered 9000) until one without the bit; the whole command
  may hold at most max_command_data bytes (else 6700, chain dropped). A
  different command mid-chain drops the chain and is processed on its own;
- SELECT by AID (00 A4 04 xx): exact AID, else the first applet whose AID
  starts with the given 5..16 bytes; unknown -> 6A82 (selection unchanged).
  An AppletSlot knows its applet's AID and module only: the module is
  imported and the applet made on its first SELECT (a board keeps in RAM
  only the applets it uses).
  P2 & 0x0C == 0x0C: no response data. Selecting deselects the previous applet.
  INS A4 with P1 != 04 is not a SELECT for the card: it goes to the selected
  applet (YKOATH CALCULATE ALL is 00 A4 00 01); with none selected -> 6A86;
- long responses: at most Ne bytes go out (Ne = Le; without Le 256 for a short
  or case-1 APDU, 65536 for an extended one); the rest waits behind SW 61xx
  (xx = bytes left, 00 = 256 or more) and is fetched with GET RESPONSE (00 C0
  00 00, P1P2 != 0000 -> 6A86) or the selected applet's SEND_REMAINING_INS
  (OATH: A5). Any other command drops the rest. GET RESPONSE with nothing
  pending -> 6985. The final chunk carries the applet's own status word;
- no applet selected -> 6D00. ApduError(sw) from an applet -> sw; any other
  exception -> 6F00 with no data, the chain and pending response are dropped
  and the applet is deselected (its session state wiped);
- power_off / power_on / reset drop the selection, the chain and any pending
  response, and call every applet's power_off().
"""
from sealtoken.core.applet import ApduError
from sealtoken.core.iso7816 import Command, has_chaining_bit, parse_apdu, sw_bytes
from sealtoken.core.iso7816 import (CLA_CHAINING, EXTENDED_MAX_NE, SHORT_MAX_NE, SW_BYTES_REMAINING_00,
                                    SW_CONDITIONS_NOT_SATISFIED, SW_FILE_NOT_FOUND, SW_INCORRECT_P1P2,
                                    SW_INS_NOT_SUPPORTED, SW_OK, SW_UNKNOWN, SW_WRONG_LENGTH)
from sealtoken.core.micro import const, import_room

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
_SW_LOGICAL_CHANNEL_NOT_SUPPORTED = const(0x6881)
_SW_SECURE_MESSAGING_NOT_SUPPORTED = const(0x6882)
INS_SELECT = const(0xA4)
INS_GET_RESPONSE = const(0xC0)
P1_SELECT_BY_AID = const(0x04)
_P2_SELECT_NO_FCI = const(0x0C)                   # SELECT P2 bits 0x0C: no response data
CARD_MAX_COMMAND_DATA = const(4096)               # command data after chaining; more -> 6700
AID_MIN_LEN = const(5)                            # ISO 7816-5: 5..16 bytes
_AID_MAX_LEN = const(16)
ATR = const(b"\x3b\xff\x13\x00\x00\x81\x31\xfe\x15\x80\x73\xc0\x21\xc0\x59sealtoken\x5c")

APDU_OVERHEAD = 9  # header(4) + extended Lc(3) + extended Le(2)


def _valid_sw(sw):
    if not isinstance(sw, int) or not 0 <= sw <= 0xFFFF:
        return False
    sw1 = sw >> 8
    return (0x61 <= sw1 <= 0x6F) or (0x90 <= sw1 <= 0x9F)


class AppletSlot:
    """An applet known by its AID, its module and its class name until its first SELECT imports the
    module and makes the applet with args."""

    def __init__(self, aid, module, name, args):
        self.AID = aid
        self.module = module
        self.name = name
        self.args = args
        self.applet = None

    def load(self):
        if self.applet is None:
            # the one import by name in the firmware: module is a sealtoken.applets module
            # (tests/test_platform_boundary.py checks every slot the token makes)
            with import_room:  # a late import, in a fragmented heap (sealtoken.core.micro)
                module = __import__(self.module, None, None, (self.name,))
            self.applet = getattr(module, self.name)(*self.args)
        return self.applet


def _slot(applet):
    """An applet made beforehand, as a slot."""
    if isinstance(applet, AppletSlot):
        return applet
    slot = AppletSlot(applet.AID, None, None, None)
    slot.applet = applet
    return slot


class Card:
    def __init__(self, platform, applets, atr=ATR, max_command_data=CARD_MAX_COMMAND_DATA):
        self.platform = platform
        self.slots = [_slot(a) for a in applets]
        self._atr = bytes(atr)
        self.max_command_data = max_command_data
        self.powered = True    # informational: bridges power the card on before sending APDUs
        self._selected = None
        self._chain = None     # [cla (bit 0x10 cleared), ins, p1, p2, bytearray data]
        self._pending = None   # [data, offset, final sw]

    # --- power --------------------------------------------------------------------
    @property
    def atr(self):
        return self._atr

    @property
    def selected(self):
        """The selected applet, or None."""
        return self._selected

    def power_on(self):
        self._drop_session()
        self.powered = True
        return self._atr

    def power_off(self):
        self._drop_session()
        self.powered = False

    def reset(self):
        self._drop_session()
        self.powered = True
        return self._atr

    def _drop_session(self):
        self._selected = None
        self._chain = None
        self._pending = None
        for slot in self.slots:
            if slot.applet is None:
                continue  # never selected: no session state
            try:
                slot.applet.power_off()
            except Exception:
                pass

    # --- APDUs ----------------------------------------------------------------------
    def process_apdu(self, apdu):
        try:
            data, sw = self._process(apdu)
            if not isinstance(data, (bytes, bytearray)) or not _valid_sw(sw):
                raise ValueError("bad applet response")
            return bytes(data) + sw_bytes(sw)
        except ApduError as e:
            self._chain = None
            self._pending = None
            sw = e.sw if _valid_sw(e.sw) else SW_UNKNOWN
            return sw_bytes(sw)
        except Exception:
            self._crashed()
            return sw_bytes(SW_UNKNOWN)

    def _crashed(self):
        self._chain = None
        self._pending = None
        applet = self._selected
        self._selected = None
        if applet is not None:
            try:
                applet.deselect()
            except Exception:
                pass

    def _process(self, apdu):
        if len(apdu) > self.max_command_data + APDU_OVERHEAD:
            raise ApduError(SW_WRONG_LENGTH)
        cmd = parse_apdu(apdu)  # copies only the data out of it: the caller may reuse its buffer
        cla = cmd.cla
        if cla < 0x20:
            if cla & 0x03:
                raise ApduError(_SW_LOGICAL_CHANNEL_NOT_SUPPORTED)
            if cla & 0x0C:
                raise ApduError(_SW_SECURE_MESSAGING_NOT_SUPPORTED)
        elif 0x40 <= cla < 0x80:
            if cla & 0x0F:
                raise ApduError(_SW_LOGICAL_CHANNEL_NOT_SUPPORTED)
            if cla & 0x20:
                raise ApduError(_SW_SECURE_MESSAGING_NOT_SUPPORTED)
        chained = has_chaining_bit(cla)
        base_cla = cla & ~CLA_CHAINING if chained else cla

        # the rest of a long response
        if not chained and self._is_get_response(cmd):
            return self._get_response(cmd)
        self._pending = None

        # command chaining
        head = (base_cla, cmd.ins, cmd.p1, cmd.p2)
        chain = self._chain
        if chain is not None and tuple(chain[:4]) != head:
            chain = self._chain = None
        if chained:
            if chain is None:
                chain = self._chain = [base_cla, cmd.ins, cmd.p1, cmd.p2, bytearray()]
            if len(chain[4]) + len(cmd.data) > self.max_command_data:
                self._chain = None
                raise ApduError(SW_WRONG_LENGTH)
            chain[4].extend(cmd.data)
            return b"", SW_OK
        data = cmd.data
        if chain is not None:
            self._chain = None
            data = b"".join((chain[4], data))  # one allocation of the whole
        if len(data) > self.max_command_data:
            raise ApduError(SW_WRONG_LENGTH)
        whole = Command(base_cla, cmd.ins, cmd.p1, cmd.p2, data, cmd.le, cmd.extended)

        applet = self._selected
        if whole.ins == INS_SELECT and base_cla < 0x80 and (whole.p1 == P1_SELECT_BY_AID or applet is None):
            data, sw = self._select(whole)
        else:
            # INS A4 with P1 != 04 goes to the applet: YKOATH's CALCULATE ALL is 00 A4 00 01
            if applet is None:
                raise ApduError(SW_INS_NOT_SUPPORTED)
            data, sw = self._call(applet.process, whole)
        return self._respond(whole, data, sw)

    def _call(self, method, command):
        result = method(command)
        if isinstance(result, tuple):
            if len(result) != 2:
                raise ValueError("bad applet response")
            data, sw = result
        else:
            data, sw = result, SW_OK
        if data is None:
            data = b""
        return data, sw

    def _select(self, cmd):
        if cmd.p1 != P1_SELECT_BY_AID:
            raise ApduError(SW_INCORRECT_P1P2)
        aid = cmd.data
        found = None
        if 0 < len(aid) <= _AID_MAX_LEN:
            for slot in self.slots:
                if slot.AID == aid:
                    found = slot
                    break
            if found is None and len(aid) >= AID_MIN_LEN:
                for slot in self.slots:
                    if slot.AID[:len(aid)] == aid:
                        found = slot
                        break
        if found is None:
            raise ApduError(SW_FILE_NOT_FOUND)
        target = found.load()
        previous = self._selected
        self._selected = None
        if previous is not None:
            previous.deselect()
        data, sw = self._call(target.select, cmd)
        if sw == SW_OK or (sw >> 8) in (0x62, 0x63):
            self._selected = target
        if cmd.p2 & _P2_SELECT_NO_FCI == _P2_SELECT_NO_FCI:
            data = b""
        return data, sw

    def _is_get_response(self, cmd):
        if cmd.ins == INS_GET_RESPONSE:
            return True
        applet = self._selected
        return (self._pending is not None and applet is not None
                and applet.SEND_REMAINING_INS is not None and cmd.ins == applet.SEND_REMAINING_INS)

    def _get_response(self, cmd):
        if self._pending is None:
            self._chain = None
            raise ApduError(SW_CONDITIONS_NOT_SATISFIED)
        if cmd.p1 != 0 or cmd.p2 != 0:
            raise ApduError(SW_INCORRECT_P1P2)
        self._chain = None
        data, offset, sw = self._pending
        self._pending = None
        return self._respond(cmd, data, sw, offset)

    def _respond(self, cmd, data, sw, offset=0):
        """Send at most Ne bytes of data[offset:]; park the rest behind 61xx."""
        if cmd.le is not None:
            limit = cmd.le
        elif cmd.extended:
            limit = EXTENDED_MAX_NE
        else:
            limit = SHORT_MAX_NE
        rest = len(data) - offset - limit
        if rest <= 0:
            return (data[offset:] if offset else data), sw
        self._pending = [data, offset + limit, sw]
        more = rest if rest < 256 else 0
        return data[offset:offset + limit], SW_BYTES_REMAINING_00 | more
