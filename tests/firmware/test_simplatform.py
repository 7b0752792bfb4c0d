"""SimPlatform: determinism, clock, flash model with power cuts, presence policy.

Plain asserts: runs under MicroPython too.
"""

from sealtoken.core.platform import UP_APPROVED, UP_CANCELLED, UP_DENIED, UP_TIMEOUT
from sealtoken.core.simplatform import PowerCut, SimPlatform


def test_rng_is_seeded_and_deterministic():
    # a small flash model: three default ones (80 KB each) would crowd a small heap
    a, b, c = (SimPlatform(seed=b"x", bank_size=256), SimPlatform(seed=b"x", bank_size=256),
               SimPlatform(seed=b"y", bank_size=256))
    ra = a.random_bytes(10) + a.random_bytes(50)
    assert ra == b.random_bytes(60)
    assert ra != c.random_bytes(60)
    assert len(a.random_bytes(0)) == 0 and len(a.random_bytes(33)) == 33


def test_clock_moves_by_hand_only():
    p = SimPlatform(now_ms=5)
    assert p.now_ms() == 5
    p.advance_ms(100)
    assert p.now_ms() == 105
    p.set_ms(200)
    assert p.now_ms() == 200
    for bad in (lambda: p.advance_ms(-1), lambda: p.set_ms(10)):
        try:
            bad()
            assert False
        except ValueError:
            pass


def test_flash_starts_erased_and_is_bounded():
    p = SimPlatform(bank_size=1024)
    assert p.NUM_PAGES == 2 and p.PAGE_SIZE == 1024  # the old two-bank geometry
    assert p.flash_read(0, 0, 1024) == b"\xff" * 1024
    p.flash_write(1, 12, b"abcd")
    assert p.flash_read(1, 11, 6) == b"\xffabcd\xff"
    for fn in (lambda: p.flash_read(2, 0, 1), lambda: p.flash_write(0, 1020, b"abcdefgh"),
               lambda: p.flash_read(0, -1, 1), lambda: p.flash_erase(2)):
        try:
            fn()
            assert False
        except ValueError:
            pass


def test_default_geometry():
    p = SimPlatform()
    assert (p.NUM_PAGES, p.PAGE_SIZE, p.WORD_SIZE, p.MAX_ERASE_CYCLES) == (16, 4096, 4, 100000)
    assert p.erase_counts() == [0] * 16


def _cut(mode, data=b"0123456789" * 4, n=1):
    p = SimPlatform(bank_size=256, seed=mode)
    p.cut_power_after(n, mode)
    p.flash_write(0, 0, b"firs")
    try:
        p.flash_write(0, 100, data)
        assert False, "power should have been cut"
    except PowerCut:
        pass
    # no access until reboot
    try:
        p.flash_read(0, 0, 1)
        assert False
    except PowerCut:
        pass
    p.reboot()
    assert p.flash_read(0, 0, 4) == b"firs"
    return p.flash_read(0, 100, len(data))


def test_power_cut_modes():
    data = b"0123456789" * 4
    assert _cut("none") == b"\xff" * len(data)
    t = _cut("truncate")
    keep = len(t.rstrip(b"\xff"))
    assert keep < len(data) and t[:keep] == data[:keep]
    f = _cut("flip")
    assert f != data and len(f) == len(data)
    diff = 0
    for i in range(len(data)):
        x = f[i] ^ data[i]
        while x:
            diff += x & 1
            x >>= 1
    assert 1 <= diff <= 3
    torn = _cut("torn")
    assert torn != data


def test_power_cut_is_not_an_exception():
    assert not issubclass(PowerCut, Exception)


def test_presence_policies():
    p = SimPlatform()
    assert p.wait_user_presence(1000, lambda s: False) == UP_APPROVED
    p.presence = UP_DENIED
    assert p.wait_user_presence(1000, None) == UP_DENIED
    p.presence = UP_TIMEOUT
    calls = []
    t0 = p.now_ms()

    def keepalive(status):
        calls.append(status)
        return False

    assert p.wait_user_presence(1000, keepalive) == UP_TIMEOUT
    assert p.now_ms() - t0 == 1000 and len(calls) >= 10 and calls[0] == 2
    assert p.wait_user_presence(1000, lambda s: True) == UP_CANCELLED
    p.presence = lambda timeout, keepalive: UP_DENIED
    assert p.wait_user_presence(5, None) == UP_DENIED
    assert p.presence_requests == 5


def test_p256_is_not_available():
    try:
        SimPlatform().p256_generate()
        assert False
    except NotImplementedError:
        pass


def test_fallback_sha1_and_sha512():
    from sealtoken.core.simplatform import sha1, sha512
    import binascii

    # FIPS 180-4 examples ("abc", two-block message) and the empty string
    two_block = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
    assert sha1(b"abc") == binascii.unhexlify("a9993e364706816aba3e25717850c26c9cd0d89d")
    assert sha1(two_block) == binascii.unhexlify("84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    assert sha1(b"") == binascii.unhexlify("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    assert sha512(b"abc") == binascii.unhexlify(
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
    assert sha512(b"") == binascii.unhexlify(
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")
    long_msg = bytes(range(256)) * 3
    p = SimPlatform()
    assert p.hash("sha1", long_msg) == sha1(long_msg)
    assert p.hash("sha512", long_msg) == sha512(long_msg)
    assert len(p.hash("sha256", b"x")) == 32
    try:
        p.hash("nosuchhash", b"")
        assert False
    except ValueError:
        pass
