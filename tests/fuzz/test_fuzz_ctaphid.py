"""Fuzzing CTAPHID: packet reassembly with several channels, in front of the whole token.

Every input is one scenario of 64-byte output reports (or a shorter/longer one) handed to
Token.ctaphid.handle_packet. The reports come from scenarios:

- intact messages (PING with random payloads, CBOR requests recorded from a
  python-fido2 session, WINK, CANCEL) on an allocated channel, often with
  packets of other channels interleaved: the answer on that channel must be
  exactly the right one (PING echoes its payload, CBOR gives a known status and
  canonical CBOR), the intruders get CHANNEL_BUSY / INVALID_CHANNEL or nothing;
- broken framing: wrong SEQ, foreign CID, wrong BCNT, dropped, repeated,
  reordered or cut packets, INIT mid-message, LOCK, random reports, and the
  clock moved past MSG_TIMEOUT in the middle of a message.

After every report: no exception (raise_internal_errors on the link and the
authenticator), every answer a whole number of well-formed 64-byte reports
carrying complete messages, ERROR codes from the known set, RAM equal to flash,
FIDO PIN tries not up, no known secret in any answer.
"""

from __future__ import annotations

import random
import struct

import pytest
from fido2 import cbor as fido2_cbor
from sealtoken.fido.ctaphid import frame
from sealtoken.token import Token

from ._ctap import SecretCache, check_ctap_response, fido_tries, record_session
from ._harness import Budget, assert_flash_equals_ram, assert_no_secret, mutate_bytes, mutate_structure
from ._platform import FuzzPlatform
from sealtoken.fido.ctaphid import (CTAPHID_BROADCAST_CID, CTAPHID_CANCEL, CTAPHID_CBOR, CTAPHID_ERROR,
                                    CTAPHID_ERR_CHANNEL_BUSY, CTAPHID_ERR_INVALID_CHANNEL,
                                    CTAPHID_ERR_INVALID_CMD, CTAPHID_ERR_INVALID_LEN,
                                    CTAPHID_ERR_INVALID_PAR, CTAPHID_ERR_INVALID_SEQ,
                                    CTAPHID_ERR_LOCK_REQUIRED, CTAPHID_ERR_MSG_TIMEOUT, CTAPHID_ERR_OTHER,
                                    CTAPHID_INIT, CTAPHID_LOCK, CTAPHID_MAX_MESSAGE, CTAPHID_MSG,
                                    CTAPHID_MSG_TIMEOUT_MS, CTAPHID_PACKET_SIZE, CTAPHID_PING,
                                    CTAPHID_TYPE_INIT, CTAPHID_WINK)

BROADCAST = CTAPHID_BROADCAST_CID
ERRORS = {CTAPHID_ERR_INVALID_CMD, CTAPHID_ERR_INVALID_PAR, CTAPHID_ERR_INVALID_LEN,
          CTAPHID_ERR_INVALID_SEQ, CTAPHID_ERR_MSG_TIMEOUT, CTAPHID_ERR_CHANNEL_BUSY,
          CTAPHID_ERR_LOCK_REQUIRED, CTAPHID_ERR_INVALID_CHANNEL, CTAPHID_ERR_OTHER}
ANSWER_CMDS = {CTAPHID_INIT, CTAPHID_PING, CTAPHID_CBOR, CTAPHID_WINK, CTAPHID_LOCK, CTAPHID_ERROR}


def parse_answer(packets):
    """The messages [(cid, cmd, payload)] of one answer; asserts the framing is whole and right."""
    messages = []
    i = 0
    while i < len(packets):
        p = packets[i]
        assert isinstance(p, (bytes, bytearray)) and len(p) == CTAPHID_PACKET_SIZE, p
        cid = struct.unpack_from(">I", p, 0)[0]
        assert p[4] & CTAPHID_TYPE_INIT, "answer starts with a continuation packet"
        cmd = p[4] & 0x7F
        bcnt = (p[5] << 8) | p[6]
        assert cmd in ANSWER_CMDS and bcnt <= CTAPHID_MAX_MESSAGE, (cmd, bcnt)
        data = bytearray(p[7:7 + bcnt])
        i += 1
        seq = 0
        while len(data) < bcnt:
            assert i < len(packets), "answer message cut short"
            q = packets[i]
            assert len(q) == CTAPHID_PACKET_SIZE and struct.unpack_from(">I", q, 0)[0] == cid and q[4] == seq
            data.extend(q[5:5 + bcnt - len(data)])
            seq += 1
            i += 1
        if cmd == CTAPHID_ERROR:
            assert bcnt == 1 and data[0] in ERRORS, data.hex()
        messages.append((cid, cmd, bytes(data)))
    return messages


class Harness:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.platform = FuzzPlatform(seed=b"ctaphid-%d" % seed)
        self.token = Token(self.platform)
        self.auth = self.token.fido.authenticator
        self.auth.reset_window_ms = None
        self.auth.raise_internal_errors = True
        self.hid = self.token.ctaphid
        self.hid.raise_internal_errors = True
        self.store = self.token.store
        self.tries = fido_tries(self.store)
        self.secrets = SecretCache(self.auth, self.store)
        self.requests = record_session(self.auth)
        self.tries.last = self.tries.read()
        self.channels = []
        self.lock_until = 0      # a LOCK may be in force until then (conservative)
        self.fed = 0
        self.intact = 0

    # --- one report in, invariants out ------------------------------------------------------
    def feed(self, packet):
        self.fed += 1
        answer = self.hid.handle_packet(packet)
        messages = parse_answer(answer)
        context = bytes(packet).hex()
        snapshot = assert_flash_equals_ram(self.platform, self.store, context)
        success = False
        for cid, cmd, data in messages:
            seconds = bytes(packet).ljust(CTAPHID_PACKET_SIZE, b"\0")[7]   # short reports are zero-padded
            if cmd == CTAPHID_LOCK and seconds:
                # the device took a LOCK: other channels may get CHANNEL_BUSY until it ends
                self.lock_until = max(self.lock_until, self.platform.now_ms() + 1000 * seconds)
            if cmd == CTAPHID_CBOR:
                check_ctap_response(data, context)
                success = success or data[0] == 0
            assert_no_secret(data, self.secrets.get(snapshot), context)
        self.tries.check(success, context)
        return messages

    # --- scenarios --------------------------------------------------------------------------
    def new_channel(self):
        self.platform.advance_ms(CTAPHID_MSG_TIMEOUT_MS + 1)   # no other message half-assembled
        nonce = bytes(self.rng.randrange(256) for _ in range(8))
        messages = self.feed(frame(BROADCAST, CTAPHID_INIT, nonce)[0])
        replies = [m for m in messages if m[1] == CTAPHID_INIT]
        assert len(replies) == 1 and replies[0][0] == BROADCAST and replies[0][2][:8] == nonce, messages
        cid = struct.unpack(">I", replies[0][2][8:12])[0]
        assert cid not in (0, BROADCAST) and cid not in self.channels
        self.channels.append(cid)
        del self.channels[:-6]
        return cid

    def _intruder(self, cid):
        other = self.rng.choice(self.channels + [0, BROADCAST, 0x12345678])
        if other == cid:
            other = 0
        if self.rng.random() < 0.5:
            return struct.pack(">IBH", other, 0x80 | CTAPHID_PING, 3) + b"abc", other
        return struct.pack(">IB", other, self.rng.randrange(0x80)) + b"x" * 20, other

    def intact_message(self):
        if not self.channels or self.rng.random() < 0.1:
            self.new_channel()
        cid = self.rng.choice(self.channels)
        self.platform.advance_ms(CTAPHID_MSG_TIMEOUT_MS + 1)   # whatever a broken scenario left behind
        kind = self.rng.random()
        if kind < 0.4:
            cmd, payload = CTAPHID_PING, bytes(self.rng.randrange(256)
                                                 for _ in range(self.rng.choice([0, 1, 57, 58, 59, 117, 300, 1000])))
        elif kind < 0.85:
            cmd, payload = CTAPHID_CBOR, self._cbor_request()
        elif kind < 0.95:
            cmd, payload = CTAPHID_WINK, b""
        else:
            cmd, payload = CTAPHID_CANCEL, b""
        answers = []
        locked = self.platform.now_ms() < self.lock_until
        for index, packet in enumerate(frame(cid, cmd, payload)):
            if index and not locked and self.rng.random() < 0.3:   # another channel speaks meanwhile
                intruder, other = self._intruder(cid)
                for m in self.feed(intruder):
                    assert m[0] == other and m[1] == CTAPHID_ERROR, m
            answers.extend(m for m in self.feed(packet))
        mine = [m for m in answers if not (m[1] == CTAPHID_ERROR and m[2][0] == CTAPHID_ERR_MSG_TIMEOUT)]
        if cmd == CTAPHID_CANCEL:
            assert mine == [] or (locked and mine == [(cid, CTAPHID_ERROR, bytes([CTAPHID_ERR_CHANNEL_BUSY]))])
            return
        if locked and mine == [(cid, CTAPHID_ERROR, bytes([CTAPHID_ERR_CHANNEL_BUSY]))]:
            return
        assert len(mine) == 1 and mine[0][0] == cid and mine[0][1] == cmd, (cmd, mine)
        if cmd == CTAPHID_PING:
            assert mine[0][2] == payload
        self.intact += 1

    def _cbor_request(self):
        base = self.rng.choice(self.requests)
        roll = self.rng.random()
        if roll < 0.3 and len(base) > 1:
            try:
                decoded = fido2_cbor.decode(base[1:])
            except Exception:
                decoded = {}
            return base[:1] + fido2_cbor.encode(mutate_structure(self.rng, decoded))
        if roll < 0.6:
            out = mutate_bytes(self.rng, base, keep_first=1)
            return out or b"\x04"
        return base

    def broken_message(self):
        rng = self.rng
        if not self.channels:
            self.new_channel()
        cid = rng.choice(self.channels + [0, BROADCAST, rng.randrange(1 << 32)])
        cmd = rng.choice([CTAPHID_PING, CTAPHID_CBOR, CTAPHID_INIT, CTAPHID_LOCK, CTAPHID_WINK,
                          CTAPHID_CANCEL, CTAPHID_MSG, 0x3F, 0x3B, rng.randrange(0x80)])
        if cmd == CTAPHID_LOCK:
            payload = bytes([rng.choice([0, 1, 10, 11, 255])])
        elif cmd == CTAPHID_CBOR:
            payload = self._cbor_request()
        else:
            payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 8, 57, 58, 200])))
        packets = [bytearray(p) for p in frame(cid, cmd, payload)]
        for _ in range(rng.randrange(1, 3)):
            op = rng.randrange(9)
            i = rng.randrange(len(packets))
            if op == 0 and len(packets) > 1:
                j = rng.randrange(1, len(packets))
                if len(packets[j]) > 4:
                    packets[j][4] = rng.randrange(0x80)                              # wrong SEQ
            elif op == 1:
                packets[i][0:4] = struct.pack(">I", rng.choice(self.channels + [0, BROADCAST]))
            elif op == 2:
                packets[0][5:7] = struct.pack(">H", rng.choice([0, 1, 58, 7609, 7610, 0xFFFF]))
            elif op == 3 and len(packets) > 1:
                del packets[i]
            elif op == 4:
                packets.insert(i, bytearray(packets[i]))
            elif op == 5 and len(packets) > 1:
                packets.reverse()
            elif op == 6:
                packets[i] = packets[i][:rng.choice([0, 3, 4, 5, 7, 20])]
            elif op == 7:
                packets[i] = packets[i] + bytes(rng.randrange(1, 8))                  # longer than a report
            else:
                head = bytes(packets[0][:4]).ljust(4, b"\0")                        # INIT mid-message
                packets.insert(i, bytearray(frame(struct.unpack(">I", head)[0], CTAPHID_INIT, bytes(8))[0]))
        for j, packet in enumerate(packets):
            if rng.random() < 0.05:
                self.platform.advance_ms(rng.choice([100, CTAPHID_MSG_TIMEOUT_MS + 1, 3000]))
            self.feed(bytes(packet))

    def random_report(self):
        rng = self.rng
        n = rng.choice([0, 4, 5, 7, 64, 64, 64, 65])
        packet = bytearray(rng.randrange(256) for _ in range(n))
        if n >= 4 and self.channels and rng.random() < 0.5:
            packet[0:4] = struct.pack(">I", rng.choice(self.channels))
        self.feed(bytes(packet))


def fuzz_ctaphid(budget, seed):
    h = Harness(seed)
    rng = h.rng
    for _ in budget:
        roll = rng.random()
        if roll < 0.45:
            h.intact_message()
        elif roll < 0.85:
            h.broken_message()
        elif roll < 0.95:
            h.random_report()
        elif roll < 0.98:
            h.new_channel()
        else:
            h.token.power_off()
            h.token.power_on()
            h.channels = []
            h.lock_until = 0
    # still a working token: a new channel, getInfo
    h.platform.advance_ms(11000)
    cid = h.new_channel()
    [(got_cid, cmd, data)] = h.feed(frame(cid, CTAPHID_CBOR, b"\x04")[0])
    assert (got_cid, cmd, data[0]) == (cid, CTAPHID_CBOR, 0)
    assert h.intact > budget.tried // 10, h.intact
    return budget.report(f"({h.fed} reports, {h.intact} intact messages checked exactly)")


def test_fuzz_ctaphid():
    fuzz_ctaphid(Budget("ctaphid", 5000), 21)


@pytest.mark.slow
def test_fuzz_ctaphid_long():
    fuzz_ctaphid(Budget("ctaphid", 0, slow=True), 1021)
