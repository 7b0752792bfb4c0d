"""CTAPHID: the USB HID framing of CTAP (CTAP 2.1 section 11.2), 64-byte reports.

Wire format (docs/protocols.md section 2):
  init packet          CID(4) || CMD|0x80 || BCNT(2, big endian) || 57 data bytes
  continuation packet  CID(4) || SEQ (0..0x7F) || 59 data bytes
A message is at most 57 + 128 * 59 = 7609 bytes.

`CtapHid(authenticator, platform)` is pure: `handle_packet(packet)` takes one
64-byte output report from the host and returns the list of 64-byte input
reports to send back (often empty while a message is being assembled).

A CBOR request blocks inside `authenticator.process(request, keepalive)` while
the token waits for a touch. The transport that carries the packets may attach
two hooks so the host is not left in the dark meanwhile:

  send_packet(packet)  sends one report at once (KEEPALIVE, and errors for other
                       channels that speak while we are busy);
  poll_packet()        returns a report the host sent meanwhile, or None; it must
                       not block. CANCEL (or INIT, which resynchronises) on the
                       busy channel makes the keepalive callback answer True, so
                       the presence wait ends and the request answers 0x2D.

Without hooks (e.g. a board whose USB stack cannot be polled from inside a
request) keepalives are dropped and CANCEL is only seen between requests.

Behaviour on malformed input (the token keeps working after every one of them):
  CID 0, unknown CID, non-INIT on the broadcast CID   ERROR INVALID_CHANNEL
  init packet on another channel mid-message / locked ERROR CHANNEL_BUSY
  init packet (not INIT) on the channel mid-message   ERROR INVALID_SEQ, message dropped
  continuation with the wrong SEQ                     ERROR INVALID_SEQ, message dropped
  continuation without a message in progress          ignored (CTAP: spurious, no answer)
  BCNT > 7609, INIT with BCNT != 8, CBOR with BCNT 0  ERROR INVALID_LEN
  next packet later than MSG_TIMEOUT_MS               ERROR MSG_TIMEOUT to that channel
  MSG (U2F), unknown commands                         ERROR INVALID_CMD (CTAP2 only: NMSG)
  CANCEL while idle                                   no answer

MicroPython rules: plain classes, no dataclasses, typing, abc or enum.
"""

import struct

from sealtoken import VERSION
from sealtoken.core.micro import const

# protocol constants: MicroPython's compiler puts their values in the code; a leading _ keeps the name
# out of the module's RAM too (docs/architecture.md, "Constants")
CTAPHID_PACKET_SIZE = const(64)                   # HID report size, both directions
CTAPHID_MAX_MESSAGE = const(7609)                 # 57 + 128 * 59
CTAPHID_BROADCAST_CID = const(0xFFFFFFFF)
CTAPHID_TYPE_INIT = const(0x80)                   # bit 7 of byte 4: init packet
_CTAPHID_INIT_NONCE_SIZE = const(8)
_CTAPHID_PROTOCOL_VERSION = const(2)
CTAPHID_MSG_TIMEOUT_MS = const(500)               # longest gap between packets of one message
_CTAPHID_LOCK_MAX_S = const(10)
CTAPHID_PING = const(0x01)
CTAPHID_MSG = const(0x03)
CTAPHID_LOCK = const(0x04)
CTAPHID_INIT = const(0x06)
CTAPHID_WINK = const(0x08)
CTAPHID_CBOR = const(0x10)
CTAPHID_CANCEL = const(0x11)
_CTAPHID_KEEPALIVE = const(0x3B)
CTAPHID_ERROR = const(0x3F)
CTAPHID_ERR_INVALID_CMD = const(0x01)
CTAPHID_ERR_INVALID_PAR = const(0x02)
CTAPHID_ERR_INVALID_LEN = const(0x03)
CTAPHID_ERR_INVALID_SEQ = const(0x04)
CTAPHID_ERR_MSG_TIMEOUT = const(0x05)
CTAPHID_ERR_CHANNEL_BUSY = const(0x06)
CTAPHID_ERR_LOCK_REQUIRED = const(0x0A)
CTAPHID_ERR_INVALID_CHANNEL = const(0x0B)
CTAPHID_ERR_OTHER = const(0x7F)
_CTAPHID_CAPABILITY_WINK = const(0x01)
_CTAPHID_CAPABILITY_CBOR = const(0x04)
_CTAPHID_CAPABILITY_NMSG = const(0x08)            # no MSG: CTAP2 only
CTAPHID_KEEPALIVE_PROCESSING = const(1)
_CTAPHID_KEEPALIVE_UPNEEDED = const(2)
_CTAPHID_STATUS_KEEPALIVE_CANCEL = const(0x2D)
_CTAPHID_STATUS_TOO_LARGE = const(0x39)           # CTAP2_ERR_REQUEST_TOO_LARGE
CTAPHID_STATUS_OTHER = const(0x7F)                # CTAP1_ERR_OTHER
_INIT_DATA = CTAPHID_PACKET_SIZE - 7  # 57
_CONT_DATA = CTAPHID_PACKET_SIZE - 5  # 59
_MAX_POLL_PER_KEEPALIVE = 32


def frame(cid, cmd, payload):
    """The input reports carrying `payload` as command `cmd` on channel `cid`."""
    n = len(payload)
    packets = []
    head = struct.pack(">IBH", cid, CTAPHID_TYPE_INIT | cmd, n)
    chunk = payload[:_INIT_DATA]
    packets.append(_pad(head + bytes(chunk)))
    offset = len(chunk)
    seq = 0
    while offset < n:
        chunk = payload[offset:offset + _CONT_DATA]
        packets.append(_pad(struct.pack(">IB", cid, seq) + bytes(chunk)))
        offset += len(chunk)
        seq += 1
    return packets


def error_packet(cid, code):
    """One ERROR report with `code` (CTAPHID_ERR_*) on channel `cid`."""
    return frame(cid, CTAPHID_ERROR, bytes((code,)))[0]


def _pad(data):
    if len(data) < CTAPHID_PACKET_SIZE:
        data = data + bytes(CTAPHID_PACKET_SIZE - len(data))
    return data


class CtapHid:
    """CTAPHID channels, message assembly and dispatch for one authenticator."""

    def __init__(self, authenticator, platform, send_packet=None, poll_packet=None):
        self.authenticator = authenticator
        self.platform = platform
        self.send_packet = send_packet
        self.poll_packet = poll_packet
        # tests set this to see a crash of the authenticator instead of status 0x7F
        self.raise_internal_errors = False
        self.capabilities = (_CTAPHID_CAPABILITY_WINK | _CTAPHID_CAPABILITY_CBOR
                             | _CTAPHID_CAPABILITY_NMSG)
        self._next_cid = 1  # channels 1 .. _next_cid - 1 are allocated
        self._lock_cid = 0
        self._lock_until = 0
        self._busy_cid = 0  # channel whose CBOR request is running
        self._cancel = False
        self._resync_nonce = None
        self._reset_message()

    # --- state ----------------------------------------------------------------
    def _reset_message(self):
        self._msg_cid = 0  # 0: no message being assembled
        self._msg_cmd = 0
        self._msg_len = 0
        self._msg_seq = 0
        self._msg_data = None
        self._msg_time = 0

    def power_off(self):
        """USB reset / power loss: forget channels, locks and partial messages."""
        self._next_cid = 1
        self._lock_cid = 0
        self._lock_until = 0
        self._reset_message()

    def attach(self, send_packet=None, poll_packet=None):
        """Install (or remove, with None) the transport hooks described in the module doc."""
        self.send_packet = send_packet
        self.poll_packet = poll_packet

    def cancel(self):
        """The transport went away: end the running CBOR request at its next keepalive."""
        if self._busy_cid:
            self._cancel = True

    @property
    def busy(self):
        """True while a CBOR request runs."""
        return self._busy_cid != 0

    def keepalive_packet(self, status=CTAPHID_KEEPALIVE_PROCESSING):
        """The KEEPALIVE report for the running CBOR request, or None while none runs: for a
        transport that sends one every ~100 ms while the token computes (a timer on a board)."""
        cid = self._busy_cid
        if not cid:
            return None
        return frame(cid, _CTAPHID_KEEPALIVE, bytes((status,)))[0]

    def _valid_cid(self, cid):
        return 0 < cid < self._next_cid

    def _locked_by_other(self, cid, now):
        if self._lock_cid and now >= self._lock_until:
            self._lock_cid = 0
        return self._lock_cid != 0 and self._lock_cid != cid

    def _allocate_cid(self):
        cid = self._next_cid
        if cid >= CTAPHID_BROADCAST_CID - 1:
            # 2^32 INITs: start over (old channels become unknown)
            cid = 1
        self._next_cid = cid + 1
        return cid

    # --- entry points -----------------------------------------------------------
    def tick(self):
        """Call now and then while idle: reports MSG_TIMEOUT for an abandoned message."""
        out = []
        self._check_timeout(self.platform.now_ms(), out)
        return out

    def handle_packet(self, packet):
        """One output report from the host -> list of input reports to send back."""
        out = []
        packet = bytes(packet)
        if len(packet) > CTAPHID_PACKET_SIZE:
            return out  # not a report of this device: drop
        if len(packet) < 5:
            return out
        packet = _pad(packet)
        now = self.platform.now_ms()
        self._check_timeout(now, out)
        cid = struct.unpack_from(">I", packet, 0)[0]
        if packet[4] & CTAPHID_TYPE_INIT:
            self._init_packet(cid, packet, now, out)
        else:
            self._cont_packet(cid, packet, now, out)
        return out

    # --- assembly -------------------------------------------------------------
    def _check_timeout(self, now, out):
        if self._msg_cid and now - self._msg_time > CTAPHID_MSG_TIMEOUT_MS:
            cid = self._msg_cid
            self._reset_message()
            out.append(error_packet(cid, CTAPHID_ERR_MSG_TIMEOUT))

    def _init_packet(self, cid, packet, now, out):
        cmd = packet[4] & 0x7F
        bcnt = (packet[5] << 8) | packet[6]
        if cid == CTAPHID_BROADCAST_CID:
            if cmd != CTAPHID_INIT:
                out.append(error_packet(cid, CTAPHID_ERR_INVALID_CHANNEL))
                return
        elif not self._valid_cid(cid):
            out.append(error_packet(cid, CTAPHID_ERR_INVALID_CHANNEL))
            return
        if self._msg_cid:
            if cid != self._msg_cid:
                out.append(error_packet(cid, CTAPHID_ERR_CHANNEL_BUSY))
                return
            # a new init packet on the channel of an unfinished message
            self._reset_message()
            if cmd != CTAPHID_INIT:
                out.append(error_packet(cid, CTAPHID_ERR_INVALID_SEQ))
                return
        if self._locked_by_other(cid, now) and cmd != CTAPHID_INIT:
            out.append(error_packet(cid, CTAPHID_ERR_CHANNEL_BUSY))
            return
        if bcnt > CTAPHID_MAX_MESSAGE or (cmd == CTAPHID_INIT
                                                and bcnt != _CTAPHID_INIT_NONCE_SIZE):
            out.append(error_packet(cid, CTAPHID_ERR_INVALID_LEN))
            return
        if bcnt <= _INIT_DATA:
            self._dispatch(cid, cmd, packet[7:7 + bcnt], out)
            return
        self._msg_cid = cid
        self._msg_cmd = cmd
        self._msg_len = bcnt
        self._msg_seq = 0
        self._msg_data = bytearray(packet[7:7 + _INIT_DATA])
        self._msg_time = now

    def _cont_packet(self, cid, packet, now, out):
        if not self._msg_cid or cid != self._msg_cid:
            return  # spurious continuation (or one of a request refused as busy)
        seq = packet[4]
        if seq != self._msg_seq:
            self._reset_message()
            out.append(error_packet(cid, CTAPHID_ERR_INVALID_SEQ))
            return
        need = self._msg_len - len(self._msg_data)
        self._msg_data.extend(packet[5:5 + min(need, _CONT_DATA)])
        self._msg_seq += 1
        self._msg_time = now
        if len(self._msg_data) >= self._msg_len:
            cmd = self._msg_cmd
            data = bytes(self._msg_data)
            self._reset_message()
            self._dispatch(cid, cmd, data, out)

    # --- commands ---------------------------------------------------------------
    def _dispatch(self, cid, cmd, data, out):
        if cmd == CTAPHID_INIT:
            self._cmd_init(cid, data, out)
        elif cmd == CTAPHID_PING:
            out.extend(frame(cid, CTAPHID_PING, data))
        elif cmd == CTAPHID_CBOR:
            self._cmd_cbor(cid, data, out)
        elif cmd == CTAPHID_CANCEL:
            pass  # nothing is running: CANCEL never gets an answer
        elif cmd == CTAPHID_WINK:
            self.platform.wink()
            out.extend(frame(cid, CTAPHID_WINK, b""))
        elif cmd == CTAPHID_LOCK:
            self._cmd_lock(cid, data, out)
        else:
            # MSG (U2F/CTAP1) included: this is a CTAP2-only authenticator (NMSG)
            out.append(error_packet(cid, CTAPHID_ERR_INVALID_CMD))

    def _init_reply(self, cid, nonce):
        if cid == CTAPHID_BROADCAST_CID:
            new_cid = self._allocate_cid()
        else:
            new_cid = cid
        major, minor, build = VERSION[0], VERSION[1], VERSION[2]
        body = bytes(nonce) + struct.pack(">IBBBBB", new_cid, _CTAPHID_PROTOCOL_VERSION,
                                          major & 0xFF, minor & 0xFF, build & 0xFF, self.capabilities)
        return frame(cid, CTAPHID_INIT, body)

    def _cmd_init(self, cid, data, out):
        if len(data) != _CTAPHID_INIT_NONCE_SIZE:
            out.append(error_packet(cid, CTAPHID_ERR_INVALID_LEN))
            return
        out.extend(self._init_reply(cid, data))

    def _cmd_lock(self, cid, data, out):
        if cid == CTAPHID_BROADCAST_CID:
            out.append(error_packet(cid, CTAPHID_ERR_INVALID_CHANNEL))
            return
        if len(data) != 1:
            out.append(error_packet(cid, CTAPHID_ERR_INVALID_LEN))
            return
        seconds = data[0]
        if seconds > _CTAPHID_LOCK_MAX_S:
            out.append(error_packet(cid, CTAPHID_ERR_INVALID_PAR))
            return
        if seconds == 0:
            if self._lock_cid == cid:
                self._lock_cid = 0
        else:
            self._lock_cid = cid
            self._lock_until = self.platform.now_ms() + 1000 * seconds
        out.extend(frame(cid, CTAPHID_LOCK, b""))

    def _cmd_cbor(self, cid, data, out):
        if len(data) == 0:
            out.append(error_packet(cid, CTAPHID_ERR_INVALID_LEN))
            return
        self._busy_cid = cid
        self._cancel = False
        self._resync_nonce = None
        try:
            try:
                response = self.authenticator.process(data, self._keepalive)
            except Exception:  # the authenticator must never take the link down
                if self.raise_internal_errors:
                    raise
                response = bytes((CTAPHID_STATUS_OTHER,))
        finally:
            self._busy_cid = 0
        if self._resync_nonce is not None:
            # INIT arrived on this channel meanwhile: the transaction is discarded
            nonce = self._resync_nonce
            self._resync_nonce = None
            out.extend(self._init_reply(cid, nonce))
            return
        if len(response) > CTAPHID_MAX_MESSAGE:
            response = bytes((_CTAPHID_STATUS_TOO_LARGE,))
        out.extend(frame(cid, CTAPHID_CBOR, response))

    # --- while a CBOR request is running ---------------------------------------------
    def _send(self, packet):
        if self.send_packet is not None:
            self.send_packet(packet)

    def _keepalive(self, status):
        """The authenticator's keepalive callback: True when the request must stop."""
        if self._busy_cid and self.send_packet is not None:
            if status not in (CTAPHID_KEEPALIVE_PROCESSING, _CTAPHID_KEEPALIVE_UPNEEDED):
                status = CTAPHID_KEEPALIVE_PROCESSING
            self._send(self.keepalive_packet(status))
        if self.poll_packet is not None:
            for _ in range(_MAX_POLL_PER_KEEPALIVE):
                packet = self.poll_packet()
                if packet is None:
                    break
                self._busy_packet(packet)
        return self._cancel

    def _busy_packet(self, packet):
        packet = bytes(packet)
        if len(packet) < 5 or len(packet) > CTAPHID_PACKET_SIZE:
            return
        packet = _pad(packet)
        cid = struct.unpack_from(">I", packet, 0)[0]
        if not packet[4] & CTAPHID_TYPE_INIT:
            return  # continuations of requests refused as busy: ignore
        cmd = packet[4] & 0x7F
        bcnt = (packet[5] << 8) | packet[6]
        if cid == self._busy_cid:
            if cmd == CTAPHID_CANCEL:
                self._cancel = True
            elif cmd == CTAPHID_INIT and bcnt == _CTAPHID_INIT_NONCE_SIZE:
                self._cancel = True
                self._resync_nonce = packet[7:7 + bcnt]
            else:
                self._send(error_packet(cid, CTAPHID_ERR_CHANNEL_BUSY))
            return
        if cmd == CTAPHID_CANCEL:
            return  # never answered
        if cid == 0 or (cid != CTAPHID_BROADCAST_CID and not self._valid_cid(cid)):
            self._send(error_packet(cid, CTAPHID_ERR_INVALID_CHANNEL))
        else:
            self._send(error_packet(cid, CTAPHID_ERR_CHANNEL_BUSY))
