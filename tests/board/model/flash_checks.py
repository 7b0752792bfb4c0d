"""The board Platform's flash under real MicroPython (run by tests/board/test_board_flash.py):

    micropython -X heapsize=N flash_checks.py MODEL_DIR LIB_DIR WORK_DIR CHECK [MODES [STRIDE]]

with $SEALBOARD_MODEL_FLASH naming the flash file. The board file (rp2), BoardPlatform, the
reservation and the token run on the model of rp2.Flash, under littlefs as MicroPython mounts it.

CHECK "cuts": a sequence of token commands (first boot, seal applet SET PIN, VERIFY + GENERATE,
CHANGE PIN, DELETE, an OATH credential), each from a fresh boot. For every step, power is cut in
every STRIDE-th flash program or erase of it, in each MODE; after the cut the store must read as it
was before one of the step's updates or after it (the states a reference run went through), and
take a new update. Randomness is a seeded stream, so every run of a step writes the same bytes.
CHECK "reservation": power cut in every STRIDE-th flash operation of the first start (littlefs
writing the reserved files, the scan, the erases, the map); the next start must reserve again,
and the files people keep on the board must be intact.
CHECK "coexist": the token's flash next to a filesystem in use: user files written, the token
used, then 1.5 MB of file writes and deletions (littlefs hands out every free block in turn); the
user files, the token's state and the reserved blocks must all be as they were; a removed flash file
is refused.
Prints "PASS <check> <number>" lines.
"""

import sys

sys.path[:0] = [sys.argv[1], sys.argv[2]]

import gc  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402

import board  # noqa: E402
import boot_fs  # noqa: E402
import rp2  # noqa: E402
from sealdevice.flash import FlashReservationError  # noqa: E402
from sealdevice.platform import BoardPlatform  # noqa: E402
from sealtoken.core.iso7816 import encode_apdu  # noqa: E402
from sealtoken.core.storage import Store  # noqa: E402
from sealtoken.token import Token  # noqa: E402

WORK = sys.argv[3]
CHECK = sys.argv[4]
MODES = sys.argv[5].split(",") if len(sys.argv) > 5 else ["truncate"]
STRIDE = int(sys.argv[6]) if len(sys.argv) > 6 else 1
FLASH = rp2.Flash()
PIN = b"4711-pin"
NEW_PIN = b"0815-pin"
AID_SEAL = b"\xf0SEALCODES"
AID_OATH = b"\xa0\x00\x00\x05\x27\x21\x01"
PROBE_KEY = 0xFFF0


mount = boot_fs.mount


class Stream:
    def __init__(self, seed):
        self.key = hashlib.sha256(b"flash-checks" + seed).digest()
        self.n = 0

    def read(self, n):
        out = b""
        while len(out) < n:
            self.n += 1
            out += hashlib.sha256(self.key + self.n.to_bytes(4, "big")).digest()
        return out[:n]

    def write(self, f, n):
        """f.write(self.read(n)) a digest at a time: the checks boot hundreds of tokens in one
        interpreter, whose heap then has no room for a file-sized piece (a board boots once)."""
        while n > 0:
            self.n += 1
            f.write(hashlib.sha256(self.key + self.n.to_bytes(4, "big")).digest()[:n])
            n -= 32


class SeededPlatform(BoardPlatform):
    stream = Stream(b"")

    def random_bytes(self, n):
        return SeededPlatform.stream.read(n)


def boot(seed):
    SeededPlatform.stream = Stream(seed)
    return SeededPlatform(board)


def digest(records):
    h = hashlib.sha256()
    for key in sorted(records):
        h.update(key.to_bytes(2, "big") + len(records[key]).to_bytes(2, "big") + records[key])
    return h.digest()


def stored():
    store = Store(boot(b"read"))
    return digest({k: store.get(k) for k in store.keys()}), store


def apdu(token, cla, ins, p1, p2, data=b"", ok=True):
    response = token.card.process_apdu(encode_apdu(cla, ins, p1, p2, data))
    if ok and response[-2:] != b"\x90\x00":
        raise AssertionError("%02x %02x: %s" % (ins, p1, response[-2:].hex()))
    return response


def select(token, aid):
    apdu(token, 0, 0xA4, 4, 0, aid)


def seal_set_pin(token):
    select(token, AID_SEAL)
    apdu(token, 0, 0x52, 0, 0, PIN)


def seal_generate(token):
    select(token, AID_SEAL)
    apdu(token, 0, 0x20, 0, 0, PIN)
    apdu(token, 0, 0x46, 1, 0)


def seal_change_pin(token):
    select(token, AID_SEAL)
    apdu(token, 0, 0x24, 0, 0, bytes((len(PIN),)) + PIN + NEW_PIN)


def seal_generate_and_delete(token):
    select(token, AID_SEAL)
    apdu(token, 0, 0x20, 0, 0, NEW_PIN)
    apdu(token, 0, 0x46, 2, 0)
    apdu(token, 0, 0x20, 0, 0, NEW_PIN)
    apdu(token, 0, 0xE4, 1, 0)


def oath_put(token):
    select(token, AID_OATH)
    name = b"board@example.com"
    key = bytes((0x21, 6)) + b"12345678901234567890"
    apdu(token, 0, 0x01, 0, 0, bytes((0x71, len(name))) + name + bytes((0x73, len(key))) + key)


STEPS = [("first boot", None), ("seal set pin", seal_set_pin), ("seal generate", seal_generate),
         ("seal change pin", seal_change_pin), ("seal generate, delete", seal_generate_and_delete),
         ("oath put", oath_put)]

_seen = []
_update = Store.update


def _recording_update(self, changes, scrub=False):
    _update(self, changes, scrub)
    _seen.append(digest(self._records))


def cut_off():
    """After a cut: what the dead run left in RAM (a littlefs file it was writing) is finalised now,
    while the flash has no power, so that nothing of it reaches flash after the reboot."""
    gc.collect()
    FLASH.reboot()


def run_step(index, step):
    token = Token(boot(("step%d" % index).encode()))
    if step is not None:
        step(token)


def check_cuts():
    mount()
    boot(b"reserve")  # the reservation is check_reservation's: here only the token's own writes are cut
    cuts = 0
    for index, (name, step) in enumerate(STEPS):
        before = WORK + "/before.bin"
        FLASH.save(before)
        start_state = stored()[0]
        # the reference run: the states the store goes through, the flash operations it takes
        del _seen[:]
        Store.update = _recording_update
        ops = FLASH.operations
        run_step(index, step)
        ops = FLASH.operations - ops
        Store.update = _update
        allowed = [start_state] + list(_seen)
        after = WORK + "/after.bin"
        FLASH.save(after)
        for mode in MODES:
            for k in range(0, ops, STRIDE):
                FLASH.load(before)
                FLASH.reboot()
                FLASH.cut_after(k, mode)
                try:
                    run_step(index, step)
                except rp2.PowerCut:
                    pass
                else:
                    raise AssertionError("%s: no power cut at operation %d" % (name, k))
                cut_off()
                state, store = stored()
                if state not in allowed:
                    raise AssertionError("%s, cut in operation %d (%s): neither before nor after an update"
                                         % (name, k, mode))
                store.put(PROBE_KEY, b"after the cut")
                if Store(boot(b"read")).get(PROBE_KEY) != b"after the cut":
                    raise AssertionError("%s, cut in operation %d (%s): the store takes no update" % (name, k, mode))
                cuts += 1
        FLASH.load(after)
        FLASH.reboot()
    print("PASS cuts", cuts)


def user_files(count, size, seed):
    names = []
    try:
        os.mkdir(board.FLASH_DIR + "/lib")
    except OSError:
        pass
    for i in range(count):
        name = board.FLASH_DIR + "/lib/%s%02d.bin" % (seed.decode(), i)
        with open(name, "wb") as f:
            Stream(seed + bytes((i,))).write(f, size)
        names.append(name)
    return names


def file_digest(name):
    with open(name, "rb") as f:
        h = hashlib.sha256()
        chunk = f.read(256)
        while chunk:
            h.update(chunk)
            chunk = f.read(256)
        return h.digest()


def check_reservation():
    mount()
    names = user_files(6, 3000, b"u")
    kept = [file_digest(n) for n in names]
    FLASH.save(WORK + "/blank.bin")
    ops = FLASH.operations
    boot(b"first")
    ops = FLASH.operations - ops
    cuts = 0
    for mode in MODES:
        for k in range(0, ops, STRIDE):
            FLASH.load(WORK + "/blank.bin")
            FLASH.reboot()
            mount()
            FLASH.cut_after(k, mode)
            try:
                boot(b"first")
            except rp2.PowerCut:
                pass
            cut_off()
            mount()
            token = Token(boot(b"again"))
            seal_set_pin(token)
            if [file_digest(n) for n in names] != kept:
                raise AssertionError("a user file changed after a cut in operation %d (%s)" % (k, mode))
            cuts += 1
    print("PASS reservation", cuts)


def check_coexist():
    mount()
    names = user_files(8, 5000, b"c")
    kept = [file_digest(n) for n in names]
    platform = boot(b"coexist")
    blocks = list(platform.flash.blocks)
    with open(board.FLASH_DIR + "/map", "rb") as f:
        print("MAP", f.read().hex(), ",".join(str(b) for b in blocks))
    token = Token(platform)
    seal_set_pin(token)
    seal_generate(token)
    oath_put(token)
    state = stored()[0]
    # littlefs, in use: 1.5 MB of writes and deletions over the free blocks
    junk = board.FLASH_DIR + "/junk.bin"
    for i in range(24):
        with open(junk, "wb") as f:
            stream = Stream(b"junk" + bytes((i,)))
            for _ in range(32):
                stream.write(f, 2048)
        os.remove(junk)
    for i in range(4):
        os.remove(names[i])
    names, kept = names[4:], kept[4:]
    names += user_files(4, 7000, b"d")[:4]
    kept += [file_digest(n) for n in names[4:]]
    mount()
    if [file_digest(n) for n in names] != kept:
        raise AssertionError("user files changed")
    if stored()[0] != state:
        raise AssertionError("the token's state changed while the filesystem was used")
    again = boot(b"again")
    if list(again.flash.blocks) != blocks:
        raise AssertionError("the reserved blocks moved")
    token = Token(again)
    select(token, AID_SEAL)
    apdu(token, 0, 0x20, 0, 0, PIN)
    if len(apdu(token, 0, 0x88, 1, 0, bytes(32))) != 34:
        raise AssertionError("DERIVE after the filesystem was used")
    os.remove(board.FLASH_DIR + "/%02d" % 7)
    try:
        boot(b"gone")
    except FlashReservationError:
        print("PASS coexist", len(names))
        return
    raise AssertionError("a removed flash file was not noticed")


{"cuts": check_cuts, "reservation": check_reservation, "coexist": check_coexist}[CHECK]()
