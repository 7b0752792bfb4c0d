"""ISO 7816-4 command APDUs: parsing (short / extended, cases 1-4) and encoding.

    parse_apdu(apdu) -> Command       raises ApduError(6700 / 6E00) when malformed
    encode_apdu(cla, ins, p1, p2, data=b"", le=None, extended=False) -> bytes
    split_response(resp) -> (data, sw)
    tlv(tag, value), parse_tlvs(data), find_tlv(tlvs, tag), only_one(data, tag)   BER-TLV (PIV, OpenPGP)

Encodings accepted by parse_apdu (n = len(apdu)):

    case 1    CLA INS P1 P2                               n == 4
    case 2S   CLA INS P1 P2 Le                            n == 5            Le 00 = 256
    case 3S   CLA INS P1 P2 Lc data                       Lc = 1..255, n == 5 + Lc
    case 4S   CLA INS P1 P2 Lc data Le                    n == 6 + Lc       Le 00 = 256
    case 2E   CLA INS P1 P2 00 Le1 Le2                    n == 7            Le 0000 = 65536
    case 3E   CLA INS P1 P2 00 Lc1 Lc2 data               Lc = 1..65535, n == 7 + Lc
    case 4E   CLA INS P1 P2 00 Lc1 Lc2 data Le1 Le2       n == 9 + Lc       Le 0000 = 65536

"Case 1 with an explicit Le=00" (what yubikit sends for a command without data)
is case 2S with Ne = 256. Anything else (n < 4, n == 6 with byte 4 = 00, Lc not
matching the length) is malformed: 6700. CLA FF (reserved for PPS) and the RFU
classes 20..3F are refused with 6E00.

Command.le is Ne, the maximum number of response bytes expected: None when the
APDU has no Le field (cases 1 and 3), else 1..256 (short) or 1..65536 (extended).
"""
from sealtoken.core.applet import ApduError
from sealtoken.core.micro import const

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
SW_OK = const(0x9000)
SW_BYTES_REMAINING_00 = const(0x6100)             # 61xx: xx more bytes (00 = 256 or more), fetch with GET RESPONSE
_SW_WARNING_NO_INFO = const(0x6200)
SW_VERIFY_FAIL_00 = const(0x63C0)                 # 63Cx: verification failed, x tries left (x = 0..15)
_SW_MEMORY_FAILURE = const(0x6581)
SW_WRONG_LENGTH = const(0x6700)
_SW_LAST_COMMAND_EXPECTED = const(0x6883)         # chaining: last command of the chain expected
_SW_CHAINING_NOT_SUPPORTED = const(0x6884)
SW_SECURITY_STATUS_NOT_SATISFIED = const(0x6982)
SW_AUTH_METHOD_BLOCKED = const(0x6983)
SW_DATA_INVALID = const(0x6984)
SW_CONDITIONS_NOT_SATISFIED = const(0x6985)
_SW_COMMAND_NOT_ALLOWED = const(0x6986)
SW_WRONG_DATA = const(0x6A80)                     # incorrect parameters in the data field
SW_FILE_NOT_FOUND = const(0x6A82)                 # also: applet (AID) not found on SELECT
_SW_RECORD_NOT_FOUND = const(0x6A83)
SW_NO_SPACE = const(0x6A84)                       # not enough memory space
SW_INCORRECT_P1P2 = const(0x6A86)
SW_REFERENCED_DATA_NOT_FOUND = const(0x6A88)
SW_FILE_EXISTS = const(0x6A89)
_SW_WRONG_P1P2 = const(0x6B00)
SW_INS_NOT_SUPPORTED = const(0x6D00)
SW_CLA_NOT_SUPPORTED = const(0x6E00)
SW_UNKNOWN = const(0x6F00)                        # no precise diagnosis (also: unexpected firmware error)
CLA_ISO = const(0x00)
CLA_CHAINING = const(0x10)                        # CLA bit b5: more commands of this chain follow
SHORT_MAX_NE = const(256)                         # short APDU: Le=00 means 256
EXTENDED_MAX_NE = const(65536)                    # extended APDU: Le=0000 means 65536


class Command:
    """One command APDU. `cla` has the chaining bit (0x10) as it arrived; the card
    hands applets a whole command (`chained` False, bit cleared)."""

    def __init__(self, cla, ins, p1, p2, data=b"", le=None, extended=False):
        self.cla = cla
        self.ins = ins
        self.p1 = p1
        self.p2 = p2
        self.data = data
        self.le = le
        self.extended = extended

    @property
    def p1p2(self):
        return (self.p1 << 8) | self.p2

    @property
    def chained(self):
        """True when more commands of this chain follow (CLA bit 0x10)."""
        return has_chaining_bit(self.cla)

    def __repr__(self):
        # never shows the data field (it may hold a PIN)
        return "Command(cla=%02X ins=%02X p1=%02X p2=%02X lc=%d le=%s)" % (
            self.cla, self.ins, self.p1, self.p2, len(self.data), self.le)



def read_ber_length(data, pos, end):
    """The BER-TLV length at data[pos] (one byte, or 81/82 and one or two bytes): (length, position
    after it). A truncated or longer form is malformed data (6A80)."""
    if pos >= end:
        raise ApduError(SW_WRONG_DATA)
    n = data[pos]
    pos += 1
    if n == 0x81:
        if pos + 1 > end:
            raise ApduError(SW_WRONG_DATA)
        n = data[pos]
        pos += 1
    elif n == 0x82:
        if pos + 2 > end:
            raise ApduError(SW_WRONG_DATA)
        n = (data[pos] << 8) | data[pos + 1]
        pos += 2
    elif n >= 0x80:
        raise ApduError(SW_WRONG_DATA)
    return n, pos

def tlv(tag, value):
    """One TLV; tag of one or two bytes (given as an int), definite length up to 65535."""
    value = bytes(value)
    n = len(value)
    if tag > 0xFF:
        head = bytes((tag >> 8, tag & 0xFF))
    else:
        head = bytes((tag,))
    if n < 0x80:
        head += bytes((n,))
    elif n < 0x100:
        head += bytes((0x81, n))
    else:
        head += bytes((0x82, n >> 8, n & 0xFF))
    return head + value


def parse_tlvs(data):
    """[(tag, value), ...] of BER-TLV data; tags are ints (two bytes when the first has low bits 1F).

    Raises ApduError(6A80) on anything malformed (truncated, bad length form).
    """
    out = []
    pos = 0
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            if pos >= end:
                raise ApduError(SW_WRONG_DATA)
            tag = (tag << 8) | data[pos]
            pos += 1
        n, pos = read_ber_length(data, pos, end)
        if pos + n > end:
            raise ApduError(SW_WRONG_DATA)
        out.append((tag, bytes(data[pos:pos + n])))
        pos += n
    return out


def find_tlv(tlvs, tag, required=True):
    for t, value in tlvs:
        if t == tag:
            return value
    if required:
        raise ApduError(SW_WRONG_DATA)
    return None


def only_one(data, tag):
    """The value of data when it is exactly one TLV with this tag, else 6A80."""
    tlvs = parse_tlvs(data)
    if len(tlvs) != 1 or tlvs[0][0] != tag:
        raise ApduError(SW_WRONG_DATA)
    return tlvs[0][1]


def has_chaining_bit(cla):
    """CLA b5 means 'chained' for interindustry classes (00-1F, 40-7F) and for the
    ISO-structured proprietary classes 80-9F (FIDO's NFCCTAP uses 80 / 90)."""
    if cla < 0x20 or 0x40 <= cla < 0xA0:
        return bool(cla & CLA_CHAINING)
    return False


def parse_apdu(apdu):
    """apdu: bytes, bytearray or memoryview; the command's data is a copy (bytes) of its part."""
    n = len(apdu)
    if n < 4:
        raise ApduError(SW_WRONG_LENGTH)
    cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
    if cla == 0xFF or 0x20 <= cla < 0x40:
        raise ApduError(SW_CLA_NOT_SUPPORTED)
    data = b""
    le = None
    extended = False
    if n == 4:
        pass
    elif n == 5:
        le = apdu[4] or SHORT_MAX_NE
    elif apdu[4] != 0:
        lc = apdu[4]
        if n == 5 + lc:
            data = bytes(memoryview(apdu)[5:])
        elif n == 6 + lc:
            data = bytes(memoryview(apdu)[5:5 + lc])
            le = apdu[5 + lc] or SHORT_MAX_NE
        else:
            raise ApduError(SW_WRONG_LENGTH)
    else:
        extended = True
        if n < 7:
            raise ApduError(SW_WRONG_LENGTH)
        x = (apdu[5] << 8) | apdu[6]
        if n == 7:
            le = x or EXTENDED_MAX_NE
        else:
            lc = x
            if lc == 0:
                raise ApduError(SW_WRONG_LENGTH)
            if n == 7 + lc:
                data = bytes(memoryview(apdu)[7:])
            elif n == 9 + lc:
                data = bytes(memoryview(apdu)[7:7 + lc])
                le = ((apdu[7 + lc] << 8) | apdu[8 + lc]) or EXTENDED_MAX_NE
            else:
                raise ApduError(SW_WRONG_LENGTH)
    return Command(cla, ins, p1, p2, data, le, extended)


def encode_apdu(cla, ins, p1, p2, data=b"", le=None, extended=False):
    """Build a command APDU. le=None: no Le field; le=256 (short) / 65536 (extended)
    is encoded as 00 / 0000. Extended is forced when data or le do not fit short."""
    data = bytes(data)
    if len(data) > 65535 or (le is not None and not 0 < le <= EXTENDED_MAX_NE):
        raise ValueError("APDU field out of range")
    if len(data) > 255 or (le is not None and le > SHORT_MAX_NE):
        extended = True
    out = bytearray((cla, ins, p1, p2))
    if extended:
        if data:
            out.extend((0, len(data) >> 8, len(data) & 0xFF))
            out.extend(data)
        if le is not None:
            if not data:
                out.append(0)
            le &= 0xFFFF
            out.extend((le >> 8, le & 0xFF))
    else:
        if data:
            out.append(len(data))
            out.extend(data)
        if le is not None:
            out.append(le & 0xFF)
    return bytes(out)


def sw_bytes(sw):
    return bytes(((sw >> 8) & 0xFF, sw & 0xFF))


def split_response(resp):
    """(data, sw) of a response APDU (at least 2 bytes)."""
    if len(resp) < 2:
        raise ValueError("response shorter than a status word")
    return bytes(resp[:-2]), (resp[-2] << 8) | resp[-1]
