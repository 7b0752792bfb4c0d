"""The MicroPython side of bench_ec.py (run by it under the unix port; not a test):

    micropython -X heapsize=3M _ec_micro.py FIRMWARE_DIR memory
        one JSON line per operation: bytes allocated (micropython.mem_total growth: every
        allocation, freed or not) and garbage (gc.mem_alloc growth with the collector off);
        and the comb table's build time and size
    micropython -X heapsize=512K _ec_micro.py FIRMWARE_DIR peak
        one JSON line per operation: about the smallest free heap it runs in (its peak)
    micropython -X heapsize=256K _ec_micro.py FIRMWARE_DIR time ROUNDS FREE_KB
        one JSON line per operation: the best microseconds of ROUNDS runs with the collector on and the heap
        filled until FREE_KB are free (the firmware's own live data on a board)
    micropython _ec_micro.py FIRMWARE_DIR run OPERATION
        runs one operation once (a smoke test)
"""

import gc
import sys
import time

import micropython

sys.path.insert(0, sys.argv[1])

from sealtoken.crypto import aes, ec  # noqa: E402

import _ec_affine  # noqa: E402

K = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721  # RFC 6979 A.2.5's key
D256 = K.to_bytes(32, "big")
D384 = (K * 0x1000193 % ec.P384.n).to_bytes(48, "big")
_counter = [0]


def random_bytes(n):
    # deterministic stand-in for os.urandom: the same work in every run
    _counter[0] += 1
    out = bytearray()
    while len(out) < n:
        out.extend(D256[_counter[0] % 7:] + D256[:_counter[0] % 7])
    return bytes(out[:n])


PEER256 = ec.public(ec.P256, (K // 3).to_bytes(32, "big"))
PEER384 = ec.public(ec.P384, (K // 5).to_bytes(48, "big"))
KEY = bytes(range(32))
IV = bytes(16)
BLOCK64 = bytes(range(64))


def op_baseline():
    _ec_affine.point_mul(K, _ec_affine.G)


def op_comb():
    ec.multiply_base(ec.P256, K)


def op_window():
    ec.multiply(ec.P256, K, ec.P256.gx, ec.P256.gy)


def op_keygen():
    ec.p256_generate(random_bytes)


def op_ecdh():
    x, y = PEER256
    ec.p256_ecdh(D256, x, y)


def op_sign():
    ec.p256_sign(D256, b"authenticator data || client data hash", random_bytes)


def op_ecdh384():
    x, y = PEER384
    ec.p384_ecdh(D384, x, y)


def op_aes_encrypt():
    aes.aes256_cbc_encrypt(KEY, IV, BLOCK64)


def op_aes_decrypt():
    aes.aes256_cbc_decrypt(KEY, IV, BLOCK64)


def op_make_credential():
    op_keygen()
    op_sign()


def op_assertion_request():
    op_ecdh()         # the shared secret with the platform's key
    op_aes_decrypt()  # saltEnc (two salts)
    op_aes_encrypt()  # the hmac-secret output
    op_sign()


def op_get_assertion():
    op_keygen()       # the key agreement key (getKeyAgreement; kept until power-off or a PIN failure)
    op_assertion_request()


OPERATIONS = ("baseline", "comb", "window", "keygen", "ecdh", "sign", "ecdh384", "aes_encrypt", "aes_decrypt",
              "make_credential", "assertion_request", "get_assertion")


def allocation(fn):
    """(bytes allocated, garbage left) of one call: mem_total growth, and heap growth with GC off."""
    gc.collect()
    gc.disable()
    total0 = micropython.mem_total()
    held0 = gc.mem_alloc()
    fn()
    held1 = gc.mem_alloc()
    total1 = micropython.mem_total()
    gc.enable()
    return total1 - total0, held1 - held0


def fill(free):
    """Hold heap until only about `free` bytes are free (largest pieces first); returns the holder."""
    held = [None] * 1024  # allocated first (8 KiB): growing it later could fail in a full heap
    i = 0
    for piece in (65536, 8192, 1024, 128):
        while i < len(held) and gc.mem_free() >= free + 2 * piece:
            try:
                held[i] = bytearray(piece - 48)  # with its object header, about one piece
            except MemoryError:  # no hole that large left: smaller pieces
                break
            i += 1
    return held


def _fits(fn, free):
    """The free heap fn ran in when about `free` bytes were left free, or 0 when it did not fit."""
    gc.collect()
    filler = fill(free)
    gc.collect()
    actual = gc.mem_free()
    try:
        fn()
        return actual
    except MemoryError:
        return 0
    finally:
        filler = None
        gc.collect()


def headroom(fn):
    """About the smallest free heap fn runs in (its peak of live memory, garbage collected): a
    binary search over how much is left free, reporting the free bytes of the tightest success."""
    low, high = 0, 64
    best = _fits(fn, high * 1024)
    while not best:
        low, high = high, high * 2
        if high > 4096:
            return -1
        best = _fits(fn, high * 1024)
    while high - low > 1:
        mid = (low + high) // 2
        got = _fits(fn, mid * 1024)
        if got:
            high = mid
            best = min(best, got)
        else:
            low = mid
    return best


def best_us(fn, rounds):
    """The fastest of `rounds` runs (wall time: the least disturbed by other processes)."""
    best = None
    for _ in range(rounds):
        start = time.ticks_us()
        fn()
        elapsed = time.ticks_diff(time.ticks_us(), start)
        if best is None or elapsed < best:
            best = elapsed
    return best


def main():
    mode = sys.argv[2]
    if mode == "run":
        name = sys.argv[3]
        if name == "precompute":
            ec.precompute(ec.P256)
        elif name != "import":
            globals()["op_" + name]()
        return
    if mode == "peak":  # in a small heap: the search scans it for free memory many times
        ec.precompute(ec.P256)
        for name in OPERATIONS:
            fn = globals()["op_" + name]
            fn()  # warm
            print('{"op": "%s", "peak": %d}' % (name, headroom(fn)))
        return
    if mode == "memory":
        ec.P256.comb = None
        gc.collect()
        before = gc.mem_alloc()
        start = time.ticks_us()
        ec.precompute(ec.P256)
        elapsed = time.ticks_diff(time.ticks_us(), start)
        gc.collect()
        print('{"op": "precompute", "us": %d, "table": %d}' % (elapsed, gc.mem_alloc() - before))
        for name in OPERATIONS:
            fn = globals()["op_" + name]
            fn()  # warm
            allocated, garbage = allocation(fn)
            print('{"op": "%s", "allocated": %d, "garbage": %d}' % (name, allocated, garbage))
        return
    # mode "time": the collector on and only free_kb of heap free, as on a board whose firmware
    # holds the rest: every free_kb of garbage costs a collection of the whole heap
    rounds = int(sys.argv[3])
    free_kb = int(sys.argv[4])
    ec.precompute(ec.P256)
    for name in OPERATIONS:
        globals()["op_" + name]()  # warm
    gc.collect()
    ballast = fill(free_kb * 1024)
    for name in OPERATIONS:
        print('{"op": "%s", "us": %d}' % (name, best_us(globals()["op_" + name], rounds)))
    ballast = None


main()
