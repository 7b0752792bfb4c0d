"""The persistent store (sealtoken.core.storage): contract, bounds, log and compaction, wear levelling,
power cuts at every byte of every flash write and erase, and the migration of old two-bank images.

Plain asserts: runs under MicroPython too (tests/micropython/run.mjs).
"""

import json
from sealtoken.core import storage
from sealtoken.core.simplatform import CORRUPT_MODES, PowerCut, SimPlatform
from sealtoken.core.storage import MAX_VALUE_LEN, Store, StoreFullError, device_serial
from sealtoken.applets.seal import SEAL_NUM_SLOTS
from sealtoken.core.keys import (KEY_DEVICE_FIRST, KEY_DEVICE_LAST, KEY_FIDO_FIRST, KEY_FIDO_LAST,
                                 KEY_OATH_FIRST, KEY_OATH_LAST, KEY_OTP_FIRST, KEY_OTP_LAST, KEY_SEAL_FIRST,
                                 KEY_SEAL_LAST, KEY_SEAL_PIN_TRIES, KEY_SEAL_SLOT_BASE, KEY_SERIAL,
                                 SERIAL_LEN)

BANK = 4096


def fresh(seed=b"store", page=BANK):
    p = SimPlatform(seed=seed, bank_size=page)
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


def _vectors(name):
    here = __file__.replace("\\", "/").rsplit("/", 1)[0]
    with open(here + "/../vectors/" + name) as f:
        return json.load(f)


# --- contract -------------------------------------------------------------------------------------
def test_empty_store():
    p, s = fresh()
    assert s.get(1) is None and s.keys() == [] and state(s) == {}
    assert p.flash_ops == 0  # booting writes nothing


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
    assert s.keys(KEY_SEAL_FIRST, KEY_SEAL_LAST) == [0x0100, 0x0111]


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


def test_sequence_serial_arithmetic():
    assert storage._newer(1, 0)
    assert not storage._newer(0, 1)
    assert storage._newer(0, 0xFFFFFFFF)  # wrapped
    assert not storage._newer(5, 5)


# --- the log ------------------------------------------------------------------------------------------
def test_an_update_appends_one_entry_and_erases_nothing():
    p, s = fresh()
    s.put(1, b"first")  # the first update makes the log: format + join + snapshot
    ops = p.flash_ops
    erases = p.flash_erases
    for i in range(10):
        s.put(2, b"value %d" % i)
        assert p.flash_ops == ops + 1  # one word-aligned write per update
        ops = p.flash_ops
    assert p.flash_erases == erases == 0
    assert state(reboot(p)) == {1: b"first", 2: b"value 9"}


def test_an_update_that_changes_nothing_writes_nothing():
    p, s = fresh()
    s.update({1: b"a", 2: b"b"})
    ops = p.flash_ops
    s.put(1, b"a")
    s.delete(77)
    s.update({})
    assert p.flash_ops == ops


def test_reads_never_write():
    p, s = fresh()
    s.update({1: b"a", 2: b"b"})
    ops = p.flash_ops
    for _ in range(3):
        s = reboot(p)
        s.get(1), s.keys(), s.used(), s.wear()
    assert p.flash_ops == ops


def test_compaction_keeps_the_state_and_alternates_regions():
    p, s = fresh(page=1024)
    expected = {}
    for i in range(200):
        key = 0x0300 + i % 7
        value = bytes((i,)) * (20 + i % 13)
        s.put(key, value)
        expected[key] = value
        if i % 37 == 0:
            assert state(reboot(p)) == expected
            s = Store(p)
    assert state(s) == expected and state(reboot(p)) == expected
    counts = p.erase_counts()
    assert counts[0] >= 3 and abs(counts[0] - counts[1]) <= 1  # both pages wear alike
    # the region headers carry the same counts (one page per region here)
    assert reboot(p).wear() == counts


def test_wear_levelling_over_four_regions():
    p = SimPlatform(seed=b"wear", page_size=512, num_pages=4)
    s = Store(p, regions=4)
    for i in range(600):
        s.put(0x0400 + i % 5, bytes(30 + i % 11))
    counts = p.erase_counts()
    assert min(counts) >= 5 and max(counts) - min(counts) <= 1, counts
    before = state(s)
    p.reboot()
    s = Store(p, regions=4)
    assert state(s) == before
    assert s.wear() == counts  # the region headers remember the wear across reboots


def test_a_damaged_log_end_is_left_behind_by_the_next_update():
    p, s = fresh(page=1024)
    s.put(1, b"a")
    s.put(2, b"b")
    end = s._end
    region = s._active
    p.cut_power_after(0, "torn", 6)
    assert raises(PowerCut, s.put, 3, b"c")
    s = reboot(p)
    assert state(s) == {1: b"a", 2: b"b"} and s._end == end and not s._appendable
    erases = p.flash_erases
    s.put(4, b"d")  # no more writes after a damaged entry: this one compacts into the other region
    assert s._active != region and p.flash_erases > erases
    assert state(reboot(p)) == {1: b"a", 2: b"b", 4: b"d"}


def test_worn_out_flash_keeps_the_last_state_readable():
    from sealtoken.core.platform import FlashWornOut

    p = SimPlatform(seed=b"worn", bank_size=1024, max_erase_cycles=3)
    s = Store(p)
    expected = {}
    worn = None
    for i in range(500):
        old = dict(expected)
        new = dict(expected)
        new[0x0300 + i % 3] = bytes((i & 0xFF,)) * 90
        try:
            s.update({0x0300 + i % 3: new[0x0300 + i % 3]})
        except FlashWornOut:
            worn = i
            break
        expected = new
    assert worn is not None and max(p.erase_counts()) == 3
    s = reboot(p)
    got = state(s)
    assert got == old or got == new
    # every later update that needs an erase fails the same way, and the state stays readable
    for _ in range(3):
        assert raises(FlashWornOut, s.update, {0x0301: b"scrubbed"}, True)
        assert state(s) == got and state(reboot(p)) == got


# --- bounds ----------------------------------------------------------------------------------------
def test_bad_keys_and_values_are_refused():
    p, s = fresh()
    s.put(1, b"keep")
    ops = p.flash_ops
    assert raises(ValueError, s.put, 0, b"x")
    assert raises(ValueError, s.put, 0x10000, b"x")
    assert raises(ValueError, s.put, "k", b"x")
    assert raises(TypeError, s.put, 2, "text")
    assert raises(TypeError, s.put, 2, 5)
    assert raises(StoreFullError, s.put, 2, bytes(MAX_VALUE_LEN + 1))
    assert raises(ValueError, s.update, {3: b"ok", 0: b"bad"})  # nothing of it applied
    assert p.flash_ops == ops
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
    ops = p.flash_ops
    assert raises(StoreFullError, s.put, 500, bytes(1000))
    assert p.flash_ops == ops
    assert state(s) == before and state(reboot(p)) == before
    assert s.used() <= s.capacity


def test_capacity_is_at_least_the_old_banks():
    # an old two-bank image of any size converts: a region holds as many record bytes as a bank did
    for bank in (1024, 4096, 32768):
        p = SimPlatform(bank_size=bank)
        assert Store(p).capacity >= bank - 14 - 32
    p = SimPlatform()
    assert Store(p).capacity >= 32768 - 14 - 32  # the emulator's 2 x 32 KiB banks, now 16 pages of 4 KiB


def test_max_value_fits():
    p = SimPlatform(bank_size=8192)
    s = Store(p)
    s.put(7, bytes(MAX_VALUE_LEN))
    assert reboot(p).get(7) == bytes(MAX_VALUE_LEN)


# --- corruption at rest -------------------------------------------------------------------------------
def test_a_damaged_entry_drops_it_and_what_follows():
    p, s = fresh()
    s.put(1, b"old")
    mark = s._end
    s.put(1, b"new")
    s.put(2, b"later")
    p.banks[s._active][mark + 5] ^= 0x01  # flip one bit inside the entry that wrote "new"
    assert state(reboot(p)) == {1: b"old"}


def test_garbage_in_both_pages_reads_as_empty_and_recovers():
    p, s = fresh()
    for b in range(2):
        for i in range(0, BANK, 7):
            p.banks[b][i] = (i * 13) & 0xFF
    p.flash_restore(p.flash_snapshot())
    s = reboot(p)
    assert state(s) == {}
    s.put(3, b"z")
    assert state(reboot(p)) == {3: b"z"}


def test_entry_with_huge_length_is_invalid():
    p, s = fresh()
    s.put(1, b"v")
    at = s._end
    s.put(2, b"w")
    page = p.banks[s._active]
    page[at + 2:at + 4] = b"\x7f\xf0"  # body_len far past the page
    assert state(reboot(p)) == {1: b"v"}


# --- power cuts -------------------------------------------------------------------------------------------
# a sequence of updates on 2 x 1 KiB: (changes, scrub); None in place of changes = erase_all.
# It makes the log, appends, compacts (the page fills), scrubs, erases all, and compacts again.
UPDATES = [
    ({0x0001: b"SERIAL01"}, False),
    ({0x0100: b"pin-record-" + bytes(range(37)), 0x0101: b"\x08"}, False),
    ({0x0111: b"\x01" + b"S1" * 16, 0x0101: b"\x07"}, False),
    ({0x0112: bytes(range(256)) + bytes(range(100)), 0x0300: b"oath" * 40}, False),
    ({0x0101: b"\x08"}, False),
    ({0x0300: b"OATH" * 60}, False),  # does not fit the page any more: compaction
    ({0x0112: None, 0x0113: b"\x01" + b"S3" * 16}, True),  # scrubbed
    ({0x0300: None}, False),
    (None, True),  # erase_all
    ({0x0200: b"fido" * 10}, False),
    ({0x0201: b"F" * 500}, False),
    ({0x0202: b"G" * 400}, False),  # compaction again
]
CUT_PAGE = 1024


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


class _OpLog(SimPlatform):
    """Remembers the length of every flash operation (erase: the page size) while op_sizes is a list."""

    def __init__(self, **kw):
        SimPlatform.__init__(self, **kw)
        self.op_sizes = None

    def flash_write(self, page, offset, data):
        SimPlatform.flash_write(self, page, offset, data)
        if self.op_sizes is not None:
            self.op_sizes.append(len(data))

    def flash_erase(self, page):
        SimPlatform.flash_erase(self, page)
        if self.op_sizes is not None:
            self.op_sizes.append(-self.PAGE_SIZE)


def _cuts(size, modes, every_byte):
    """(mode, keep) pairs to try for an operation of size bytes (negative: an erase)."""
    out = []
    for mode in modes:
        if mode in ("none", "flip"):
            out.append((mode, None))
            continue
        n = -size if size < 0 else size
        if size < 0:  # an erase: the page header area byte by byte, then coarser
            points = list(range(0, 48)) + list(range(48, n, 97 if every_byte else 331))
        elif every_byte:
            points = range(0, n + 1) if mode == "truncate" else range(1, n + 1)
        else:
            points = (None,)
        for keep in points:
            out.append((mode, keep))
    return out


def _cut_everywhere(modes, every_byte, stride=1, seed=b"cuts"):
    p = _OpLog(seed=seed, bank_size=CUT_PAGE)
    s = Store(p)
    expected = _expected_states()
    checked = 0
    compactions = 0
    for u, (changes, scrub) in enumerate(UPDATES):
        old, new = expected[u], expected[u + 1]
        snap = p.flash_snapshot()
        p.op_sizes = []  # the operations of this update only: the replays below are not logged
        _apply(s, changes, scrub)
        sizes = p.op_sizes
        p.op_sizes = None
        assert sizes
        if [x for x in sizes if x < 0]:
            compactions += 1
        case = 0
        for op in range(len(sizes)):
            for mode, keep in _cuts(sizes[op], modes, every_byte):
                case += 1
                if case % stride:
                    continue
                p.flash_restore(snap)
                p.reboot()
                s = Store(p)
                assert state(s) == old
                p.cut_power_after(op, mode, keep)
                cut = False
                try:
                    _apply(s, changes, scrub)
                except PowerCut:
                    cut = True
                assert cut, (u, op, mode, keep)
                p.cancel_power_cut()
                s = reboot(p)
                got = state(s)
                assert got == old or got == new, (u, op, mode, keep)
                # the store keeps working after the cut
                s.put(0x04FF, b"after")
                again = reboot(p)
                want = dict(got)
                want[0x04FF] = b"after"
                assert state(again) == want, (u, op, mode, keep)
                if scrub and got == new:
                    # a scrubbed update leaves no old value, once the next update has run
                    for key in old:
                        if old[key] != new.get(key) and len(old[key]) >= 8:
                            assert not contains(p, old[key]), (u, op, mode, keep, key)
                checked += 1
        # continue from the completed update
        p.flash_restore(snap)
        p.reboot()
        s = Store(p)
        _apply(s, changes, scrub)
        assert state(reboot(p)) == new
        s = Store(p)
    assert compactions >= 4  # the sequence exercises compaction, scrubbing and erase_all
    return checked


def test_power_cut_at_every_operation_without_corruption():
    assert _cut_everywhere(("none",), False) > len(UPDATES)


def test_power_cut_at_every_operation_with_corrupted_write():
    assert _cut_everywhere(("truncate", "flip", "torn"), False) > 3 * len(UPDATES)


def test_power_cut_at_every_byte_of_every_write():
    # every byte of every write and of every erased page header, truncated and torn
    assert _cut_everywhere(("truncate", "torn"), True) > 7000


def test_bit_flips_in_the_write_in_progress():
    # 1..3 bits wrong in the interrupted write (or left 0 in the interrupted erase), other bits each seed
    for seed in (b"f1", b"f2", b"f3", b"f4"):
        assert _cut_everywhere(("flip",), False, 1, seed) > len(UPDATES)


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
    assert contains(p, secret)  # the earlier entry in the log
    s.put(0x0111, secret)
    s.delete(0x0111, True)
    assert not contains(p, secret)
    assert state(reboot(p)) == {0x0001: b"x"}


def test_scrub_after_compaction_leaves_no_copy_in_any_page():
    p, s = fresh(page=1024)
    secret = b"OLD-SECRET-" + bytes(range(30))
    s.put(0x0111, secret)
    for i in range(40):  # several compactions: copies of the secret move with the snapshots
        s.put(0x0300, bytes((i,)) * 100)
    assert contains(p, secret)
    s.put(0x0111, b"replacement-value", True)
    assert not contains(p, secret)
    assert reboot(p).get(0x0111) == b"replacement-value"


# --- migration from the old two-bank format ----------------------------------------------------------------
def _old_image(case):
    bank_size = case["bank_size"]
    p = SimPlatform(bank_size=bank_size) if bank_size <= 4096 else SimPlatform()
    pages_per_bank = p.NUM_PAGES // 2
    for bank in range(2):
        raw = bytes.fromhex(case["banks"][bank])
        for i in range(pages_per_bank):  # page by page: no copy of a whole 32 KiB bank in the heap
            chunk = raw[i * p.PAGE_SIZE:(i + 1) * p.PAGE_SIZE]
            p.flash.set_content(bank * pages_per_bank + i, chunk + b"\xff" * (p.PAGE_SIZE - len(chunk)))
    return p


def _records(case):
    out = {}
    for key in case["records"]:
        out[int(key, 16)] = bytes.fromhex(case["records"][key])
    return out


def test_old_two_bank_images_convert_without_losing_a_key():
    vectors = _vectors("store-v1-images.json")
    for case in vectors["cases"]:
        p = _old_image(case)
        want = _records(case)
        assert want
        s = Store(p)  # converts on first load
        assert state(s) == want, case["name"]
        assert p.flash_ops > 0
        for page in p.banks:  # no old image left anywhere: the old banks are erased
            assert bytes(page).find(b"SLST") < 0, case["name"]
        ops = p.flash_ops
        s = reboot(p)
        assert state(s) == want and p.flash_ops == ops  # converted once
        s.put(0x04FE, b"new")
        want[0x04FE] = b"new"
        assert state(reboot(p)) == want


def test_old_image_conversion_survives_a_power_cut_anywhere():
    vectors = _vectors("store-v1-images.json")
    case = vectors["cases"][0]
    want = _records(case)
    ref = _old_image(case)
    first = ref.flash_ops
    Store(ref)
    total = ref.flash_ops - first
    assert total >= 3
    for op in range(total):
        for mode in CORRUPT_MODES:
            p = _old_image(case)
            p.cut_power_after(op, mode)
            try:
                Store(p)
                assert False, "expected a power cut"
            except PowerCut:
                pass
            p.reboot()
            assert state(Store(p)) == want, (op, mode)
            assert state(reboot(p)) == want


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
    from sealtoken.core.platform import SingleThreadLock

    lock = SingleThreadLock()
    assert lock.acquire() and lock.locked()
    assert raises(RuntimeError, lock.acquire)
    lock.release()
    assert not lock.locked()
    assert raises(RuntimeError, lock.release)


# --- key registry ------------------------------------------------------------------------------------------
def test_key_registry_ranges():
    """Every key of the one registry (sealtoken.core.keys) lies inside its owner's range; no two keys share
    a value; the ranges do not overlap."""
    from sealtoken.core import keys
    from sealtoken.fido.const import CTAP2_MAX_RESIDENT

    owners = (("KEY_SERIAL", keys.KEY_DEVICE_FIRST, keys.KEY_DEVICE_LAST),
              ("KEY_SEAL_", keys.KEY_SEAL_FIRST, keys.KEY_SEAL_LAST),
              ("FIDO_KEY_", keys.KEY_FIDO_FIRST, keys.KEY_FIDO_LAST),
              ("OATH_KEY_", keys.KEY_OATH_FIRST, keys.KEY_OATH_LAST),
              ("OTP_KEY_", keys.KEY_OTP_FIRST, keys.KEY_OTP_LAST),
              ("KEY_PIV_", keys.KEY_PIV_FIRST, keys.KEY_PIV_LAST),
              ("KEY_OPENPGP_", keys.KEY_OPENPGP_FIRST, keys.KEY_OPENPGP_LAST))
    seen = {}
    placed = set()
    for name in dir(keys):
        if not name.isupper() or name in ("SERIAL_LEN",):
            continue
        bounds = name.endswith(("_FIRST", "_LAST")) and name.startswith("KEY_") and name.count("_") == 2
        if bounds:
            placed.add(name)
            continue
        for prefix, first, last in owners:
            if name.startswith(prefix):
                value = getattr(keys, name)
                assert first <= value <= last, name
                placed.add(name)
                if not name.endswith("_LAST"):
                    assert value not in seen, (name, seen.get(value))
                    seen[value] = name
    assert placed == {n for n in dir(keys) if n.isupper() and n != "SERIAL_LEN"}, "a key outside every range"
    assert keys.KEY_SEAL_SLOT_BASE + SEAL_NUM_SLOTS <= keys.KEY_SEAL_LAST
    assert keys.KEY_SEAL_SLOT_BASE + 1 > keys.KEY_SEAL_PIN_TRIES
    assert keys.FIDO_KEY_RK_LAST - keys.FIDO_KEY_RK_FIRST + 1 == CTAP2_MAX_RESIDENT
    ranges = sorted((o[1], o[2]) for o in owners)
    for (a_first, a_last), (b_first, b_last) in zip(ranges, ranges[1:]):
        assert a_first <= a_last < b_first <= b_last


# --- device serial ------------------------------------------------------------------------------------------
def test_device_serial_made_once_and_persisted():
    p, s = fresh()
    serial = device_serial(p, s)
    assert len(serial) == SERIAL_LEN
    assert serial not in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff")
    assert device_serial(p, reboot(p)) == serial
    s = Store(p)
    assert s.get(KEY_SERIAL) == serial


def test_entries_of_every_length_around_the_staging_buffer_read_back():
    """An entry goes to flash through a 256-byte staging buffer (storage._STAGE_LEN): entries that
    end just before, at and just after its size, and several times it, with the digest falling on
    either side of a flush, all read back after a reboot."""
    p, s = fresh()
    for n in range(200, 300, 3):
        s.put(0x0100, bytes((n + i) & 0xFF for i in range(n)))
        assert state(reboot(p)) == state(s)
    for n in (255, 256, 257, 700, 1500):
        s.put(0x0200 + n, bytes(range(256)) * (n // 256) + bytes(n % 256))
        s.put(0x0300, bytes(n % 7))
        assert state(reboot(p)) == state(s)
    s.put(0x0400, b"x", scrub=True)  # a snapshot of everything, in many writes
    reloaded = state(reboot(p))
    assert reloaded == state(s) and reloaded[0x0200 + 1500][:256] == bytes(range(256))
