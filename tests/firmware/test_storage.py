"""The persistent store (sealtoken.storage): contract, bounds, and power cuts at every write.

Plain asserts: runs under MicroPython too (tests/micropython/run.mjs).
"""

from sealtoken import const
from sealtoken import storage
from sealtoken.simplatform import CORRUPT_MODES, PowerCut, SimPlatform
from sealtoken.storage import MAX_VALUE_LEN, Store, StoreFullError, device_serial

BANK = 4096


def fresh(seed=b"store"):
    p = SimPlatform(seed=seed, bank_size=BANK)
    return p, Store(p)


def state(store):
    out = {}
    for k in store.keys():
        out[k] = store.get(k)
    return out


def reboot(p):
    p.reboot()
    return Store(p)


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def contains(p, needle):
    for bank in p.banks:
        if bytes(bank).find(needle) >= 0:
            return True
    return False


# --- contract -------------------------------------------------------------------------------------
def test_empty_store():
    p, s = fresh()
    assert s.get(1) is None and s.keys() == [] and state(s) == {}
    assert p.flash_writes == 0  # booting writes nothing


def test_put_get_delete_persist():
    p, s = fresh()
    s.put(0x0101, b"abc")
    s.put(0x0001, b"")
    assert s.get(0x0101) == b"abc" and s.get(0x0001) == b""
    s2 = reboot(p)
    assert state(s2) == {0x0001: b"", 0x0101: b"abc"}
    s2.delete(0x0101)
    assert state(reboot(p)) == {0x0001: b""}


def test_update_many_keys_at_once():
    p, s = fresh()
    s.update({1: b"a", 2: b"b", 3: b"c"})
    s.update({1: None, 2: b"B", 4: b"d", 99: None})
    assert state(s) == {2: b"B", 3: b"c", 4: b"d"}
    assert state(reboot(p)) == {2: b"B", 3: b"c", 4: b"d"}


def test_keys_range():
    p, s = fresh()
    s.update({0x0001: b"s", 0x0100: b"p", 0x0111: b"x", 0x0200: b"f"})
    assert s.keys(const.KEY_SEAL_FIRST, const.KEY_SEAL_LAST) == [0x0100, 0x0111]


def test_values_are_copied():
    p, s = fresh()
    v = bytearray(b"mutable")
    s.put(5, v)
    v[0] = 0
    assert s.get(5) == b"mutable" and isinstance(s.get(5), bytes)


def test_erase_all():
    p, s = fresh()
    s.update({1: b"one-secret-value", 2: b"two"})
    s.erase_all()
    assert state(s) == {} and state(reboot(p)) == {}
    assert not contains(p, b"one-secret-value")


def test_alternates_banks_and_sequence():
    p, s = fresh()
    s.put(1, b"x")
    first = s._bank
    s.put(1, b"y")
    assert s._bank == 1 - first


def test_sequence_serial_arithmetic():
    assert storage._newer(1, 0)
    assert not storage._newer(0, 1)
    assert storage._newer(0, 0xFFFFFFFF)  # wrapped
    assert not storage._newer(5, 5)


# --- bounds ----------------------------------------------------------------------------------------
def test_bad_keys_and_values_are_refused():
    p, s = fresh()
    s.put(1, b"keep")
    writes = p.flash_writes
    assert raises(ValueError, s.put, 0, b"x")
    assert raises(ValueError, s.put, 0x10000, b"x")
    assert raises(ValueError, s.put, "k", b"x")
    assert raises(TypeError, s.put, 2, "text")
    assert raises(TypeError, s.put, 2, 5)
    assert raises(StoreFullError, s.put, 2, bytes(MAX_VALUE_LEN + 1))
    assert raises(ValueError, s.update, {3: b"ok", 0: b"bad"})  # nothing of it applied
    assert p.flash_writes == writes
    assert state(s) == {1: b"keep"} and state(reboot(p)) == {1: b"keep"}


def test_store_full_is_refused_without_damage():
    p, s = fresh()
    s.put(1, b"keep")
    i = 2
    while True:
        try:
            s.put(i, bytes(1000))
        except StoreFullError:
            break
        i += 1
        assert i < 100
    before = state(s)
    writes = p.flash_writes
    assert raises(StoreFullError, s.put, 500, bytes(1000))
    assert p.flash_writes == writes
    assert state(s) == before and state(reboot(p)) == before
    assert s.used() <= s.capacity


def test_max_value_fits():
    p = SimPlatform(bank_size=8192)
    s = Store(p)
    s.put(7, bytes(MAX_VALUE_LEN))
    assert reboot(p).get(7) == bytes(MAX_VALUE_LEN)


# --- corruption at rest -------------------------------------------------------------------------------
def test_bad_bank_falls_back_to_the_other():
    p, s = fresh()
    s.put(1, b"old")
    s.put(1, b"new")
    newest = s._bank
    p.banks[newest][20] ^= 0x01  # flip one bit in the newest image
    assert state(reboot(p)) == {1: b"old"}


def test_garbage_in_both_banks_reads_as_empty_and_recovers():
    p, s = fresh()
    for b in range(2):
        for i in range(0, BANK, 7):
            p.banks[b][i] = (i * 13) & 0xFF
    s = reboot(p)
    assert state(s) == {}
    s.put(3, b"z")
    assert state(reboot(p)) == {3: b"z"}


def test_header_with_huge_length_is_invalid():
    p, s = fresh()
    s.put(1, b"v")
    bank = s._bank
    p.banks[bank][10:14] = b"\xff\xff\xff\x00"
    assert state(reboot(p)) == {}


# --- power cuts -------------------------------------------------------------------------------------------
# a sequence of updates: (changes, scrub); None in place of changes = erase_all
UPDATES = [
    ({0x0001: b"SERIAL01"}, False),
    ({0x0100: b"pin-record-" + bytes(range(37)), 0x0101: b"\x08"}, False),
    ({0x0111: b"\x01" + b"S1" * 16, 0x0101: b"\x07"}, False),
    ({0x0112: bytes(range(256)) + bytes(range(200)), 0x0300: b"oath" * 100}, False),  # several chunks
    ({0x0101: b"\x08"}, False),
    ({0x0112: None, 0x0113: b"\x01" + b"S3" * 16}, True),  # scrubbed
    ({0x0300: None}, False),
    (None, True),  # erase_all
    ({0x0200: b"fido" * 10}, False),
]


def _apply(store, changes, scrub):
    if changes is None:
        store.erase_all()
    else:
        store.update(changes, scrub)


def _expected_states():
    states = [{}]
    cur = {}
    for changes, _ in UPDATES:
        cur = dict(cur)
        if changes is None:
            cur = {}
        else:
            for k in changes:
                if changes[k] is None:
                    cur.pop(k, None)
                else:
                    cur[k] = bytes(changes[k])
        states.append(cur)
    return states


def _cut_everywhere(modes):
    p = SimPlatform(seed=b"cuts", bank_size=BANK)
    s = Store(p)
    expected = _expected_states()
    checked = 0
    for u, (changes, scrub) in enumerate(UPDATES):
        old, new = expected[u], expected[u + 1]
        snap = p.flash_snapshot()
        w0 = p.flash_writes
        _apply(s, changes, scrub)
        writes = p.flash_writes - w0
        assert writes >= 1
        for mode in modes:
            for k in range(writes + 1):
                p.flash_restore(snap)
                p.reboot()
                s = Store(p)
                assert state(s) == old
                p.cut_power_after(k, mode)
                cut = False
                try:
                    _apply(s, changes, scrub)
                except PowerCut:
                    cut = True
                assert cut == (k < writes)
                p.cancel_power_cut()
                s = reboot(p)
                got = state(s)
                assert got == old or got == new, (u, k, mode)
                if not cut:
                    assert got == new
                # the store keeps working after the cut
                s.put(0x04FF, b"after")
                again = reboot(p)
                want = dict(got)
                want[0x04FF] = b"after"
                assert state(again) == want
                checked += 1
        # continue from the completed update
        p.flash_restore(snap)
        p.reboot()
        s = Store(p)
        _apply(s, changes, scrub)
        assert state(reboot(p)) == new
        s = Store(p)
    return checked


def test_power_cut_at_every_write_without_corruption():
    assert _cut_everywhere(("none",)) > len(UPDATES)


def test_power_cut_at_every_write_with_corrupted_write():
    assert _cut_everywhere(("truncate", "flip", "torn")) > 3 * len(UPDATES)


def test_corruption_modes_are_all_exercised():
    assert set(CORRUPT_MODES) == {"none", "truncate", "flip", "torn"}


def test_power_cut_during_boot_free_of_writes():
    p, s = fresh()
    s.put(1, b"a")
    p.cut_power_after(0, "flip")
    s = Store(p)  # booting does not write
    assert state(s) == {1: b"a"}
    p.cancel_power_cut()


def test_interrupted_update_then_same_store_object_reloads():
    p, s = fresh()
    s.put(1, b"a")
    p.cut_power_after(0, "truncate")
    try:
        s.put(1, b"b")
        assert False, "expected a power cut"
    except PowerCut:
        pass
    p.reboot()
    assert s.get(1) == b"a"  # the object re-reads flash after a failed commit


# --- scrubbing -------------------------------------------------------------------------------------------
def test_plain_delete_may_leave_old_copy_scrub_does_not():
    p, s = fresh()
    secret = b"SLOT-SECRET-" + bytes(range(20))
    s.put(0x0111, secret)
    s.put(0x0001, b"x")
    s.delete(0x0111)
    assert contains(p, secret)  # the previous image in the other bank
    s.put(0x0111, secret)
    s.delete(0x0111, True)
    assert not contains(p, secret)
    assert state(reboot(p)) == {0x0001: b"x"}


def test_scrub_clears_tail_of_longer_images():
    p, s = fresh()
    tail = b"TAIL-SECRET" * 30
    s.update({1: b"a", 2: tail}, True)
    s.update({2: None}, True)
    assert not contains(p, b"TAIL-SECRET")
    assert state(reboot(p)) == {1: b"a"}


def test_scrub_clears_old_tails_found_at_boot():
    p, s = fresh()
    s.update({1: b"a", 2: b"OLD-TAIL-SECRET" * 20})  # long image in one bank
    s.put(3, b"c")                                     # long image in the other bank too
    s.delete(2)                                        # short images, not scrubbed:
    s.put(4, b"d")                                     # the tails stay in both banks
    assert contains(p, b"OLD-TAIL-SECRET")
    s = reboot(p)
    s.put(5, b"e", True)
    assert not contains(p, b"OLD-TAIL-SECRET")
    assert state(reboot(p)) == {1: b"a", 3: b"c", 4: b"d", 5: b"e"}


# --- one writer at a time -------------------------------------------------------------------------
class _LockedSim(SimPlatform):
    """Records whether the store's lock is held at each flash access."""

    def __init__(self, **kw):
        SimPlatform.__init__(self, **kw)
        self.locks = []
        self.unlocked_accesses = 0

    def new_lock(self):
        lock = SimPlatform.new_lock(self)
        self.locks.append(lock)
        return lock

    def _held(self):
        if not any(lock.locked() for lock in self.locks):
            self.unlocked_accesses += 1

    def flash_write(self, bank, offset, data):
        self._held()
        SimPlatform.flash_write(self, bank, offset, data)

    def flash_read(self, bank, offset, length):
        self._held()
        return SimPlatform.flash_read(self, bank, offset, length)


def test_store_takes_its_lock_from_the_platform_and_holds_it_for_every_write():
    p = _LockedSim(bank_size=BANK)
    s = Store(p)
    assert len(p.locks) == 1
    s.put(1, b"a")
    s.update({2: b"b", 1: None}, True)
    s.erase_all()
    s.put(3, b"c")
    p.cut_power_after(0, "truncate")
    try:
        s.put(3, b"d")
        assert False, "expected a power cut"
    except PowerCut:
        pass
    p.reboot()
    assert s.get(3) == b"c"  # the reload after the failed commit also runs under the lock
    assert p.unlocked_accesses == 0
    assert not p.locks[0].locked()  # released on every path, the power cut included
    assert raises(ValueError, s.put, 0, b"x") and not p.locks[0].locked()


def test_single_thread_lock_refuses_reentry():
    from sealtoken.platform import SingleThreadLock

    lock = SingleThreadLock()
    assert lock.acquire() and lock.locked()
    assert raises(RuntimeError, lock.acquire)
    lock.release()
    assert not lock.locked()
    assert raises(RuntimeError, lock.release)


# --- key registry ------------------------------------------------------------------------------------------
def test_key_registry_ranges():
    """Every persisted key of const.py lies inside its owner's range; no two share a value."""
    owners = (("KEY_SERIAL", const.KEY_DEVICE_FIRST, const.KEY_DEVICE_LAST),
              ("KEY_SEAL_", const.KEY_SEAL_FIRST, const.KEY_SEAL_LAST),
              ("FIDO_KEY_", const.KEY_FIDO_FIRST, const.KEY_FIDO_LAST),
              ("OATH_KEY_", const.KEY_OATH_FIRST, const.KEY_OATH_LAST),
              ("OTP_KEY_", const.KEY_OTP_FIRST, const.KEY_OTP_LAST))
    seen = {}
    for name in dir(const):
        for prefix, first, last in owners:
            if name.startswith(prefix) and not name.startswith("KEY_SEAL_FIRST") and not name.startswith("KEY_SEAL_LAST"):
                value = getattr(const, name)
                assert first <= value <= last, name
                if not name.endswith("_LAST"):
                    assert value not in seen, (name, seen.get(value))
                    seen[value] = name
    assert const.KEY_SEAL_SLOT_BASE + const.SEAL_NUM_SLOTS <= const.KEY_SEAL_LAST
    assert const.KEY_SEAL_SLOT_BASE + 1 > const.KEY_SEAL_PIN_TRIES
    ranges = sorted((o[1], o[2]) for o in owners)
    for (a_first, a_last), (b_first, b_last) in zip(ranges, ranges[1:]):
        assert a_first <= a_last < b_first <= b_last


# --- device serial ------------------------------------------------------------------------------------------
def test_device_serial_made_once_and_persisted():
    p, s = fresh()
    serial = device_serial(p, s)
    assert len(serial) == const.SERIAL_LEN
    assert serial not in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff")
    assert device_serial(p, reboot(p)) == serial
    s = Store(p)
    assert s.get(const.KEY_SERIAL) == serial
