#!/usr/bin/env python3
"""Flash lifetime of the token's store: the old two-bank store against the log-structured one.

Both run the real firmware (every applet) on 2 x 4 KiB of flash rated for
100,000 erase cycles per page, driven by the host library as `sealcodes` drives
a token:

- generate: the seal applet backend's respond() (SELECT, VERIFY PIN, DERIVE) over
  the in-process card, slot enrolled beforehand;
- FIDO: the FIDO2 backend's respond() over CTAPHID (touch approved, no PIN),
  credential enrolled beforehand: two getAssertions, the silent check that the
  key holds the credential and the hmac-secret assertion; each writes the
  signature counter once. Assertions survived = twice the figure printed.

The new store runs on the NOR flash model (CPythonPlatform), which counts the
erases of each page: lifetime = cycles / (most erases of a page per operation).
The old store rewrote its whole image into the other bank at every update, so
on NOR flash every image it writes costs an erase of that bank's page, and
every scrub of an image tail one more; it runs on a RAM copy of its two banks,
and its erases are counted from those writes.

    python benchmarks/bench_store.py [--ops N]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _store_v1 import Store as StoreV1  # noqa: E402
from sealboard.ctaphid_link import open_emulated_hid_device  # noqa: E402
from sealboard.loopback import LoopbackConnection  # noqa: E402
from sealboard.platform import CPythonPlatform  # noqa: E402
from sealcodes import derivation  # noqa: E402
from sealcodes.backends.applet import AppletBackend  # noqa: E402
from sealcodes.backends.base import Interaction  # noqa: E402
from sealcodes.backends.fido2 import Fido2Backend  # noqa: E402
from sealcodes.enrollment import AppletOptions, Fido2Options  # noqa: E402
from sealcodes.records import Enrollment  # noqa: E402
from sealtoken.core.card import Card  # noqa: E402
from sealtoken.fido.ctap2 import Authenticator  # noqa: E402
from sealtoken.fido.ctaphid import CtapHid  # noqa: E402
from sealtoken.applets.fido import FidoApplet  # noqa: E402
from sealtoken.core.storage import Store, device_serial  # noqa: E402
from sealtoken.token import Token, build_applets  # noqa: E402

PAGE_SIZE = 4096
PAGES = 2
CYCLES = 100_000
PIN = "bench-store-pin"
LABEL = "bench.example/user"


class _Pin(Interaction):
    def request_pin(self, purpose, new=False):
        return PIN

    def confirm(self, question):
        return True


class _CountedV1(StoreV1):
    """The old store, counting the page erases NOR flash would need for what it writes."""

    def __init__(self, platform):
        self.erases = [0, 0]
        StoreV1.__init__(self, platform)

    def _write_image(self, bank, seq, body):
        self.erases[bank] += 1  # a new image over an old one: erase the bank first
        StoreV1._write_image(self, bank, seq, body)

    def _wipe_tail(self, bank, start):
        if self._extent[bank] > start:
            self.erases[bank] += 1  # 0xFF over written bytes: erase, then program the image again
        StoreV1._wipe_tail(self, bank, start)


class _Banks:
    """The old store's flash: two banks one page each, overwritten in place (RAM)."""

    BANK_SIZE = PAGE_SIZE
    NUM_BANKS = PAGES

    def __init__(self):
        self.banks = [bytearray(b"\xff" * PAGE_SIZE) for _ in range(PAGES)]

    def flash_read(self, bank, offset, length):
        return bytes(self.banks[bank][offset:offset + length])

    def flash_write(self, bank, offset, data):
        self.banks[bank][offset:offset + len(data)] = data

    def flash_sync(self):
        pass


class _TokenV1:
    """Token (sealtoken.token) with the old store in place of the new one."""

    def __init__(self, platform):
        self.platform = platform
        self.store = _CountedV1(_Banks())
        self.serial = device_serial(platform, self.store)
        self.authenticator = Authenticator(platform, self.store)
        self.fido = FidoApplet(platform, self.store, self.authenticator)
        self.card = Card(platform, build_applets(platform, self.store, self.fido))
        self.ctaphid = CtapHid(self.authenticator, platform)


def _platform(seed):
    return CPythonPlatform(rng_seed=seed, page_size=PAGE_SIZE, num_pages=PAGES)


def _erases(token):
    if isinstance(token.store, _CountedV1):
        return list(token.store.erases)
    return token.platform.erase_counts()


def _run(token, ops):
    """Enroll both ways, then ops generates and ops FIDO assertions: erases per page for each."""
    card_backend = AppletBackend(LoopbackConnection(token.card))
    card_backend.enroll(_Pin(), AppletOptions(slot=1))
    hid = open_emulated_hid_device(token)
    try:
        fido = Fido2Backend(hid)
        meta = fido.enroll(_Pin(), Fido2Options(uv="discouraged"))
        results = {}
        for kind in ("generate", "fido"):
            before = _erases(token)
            for i in range(ops):
                challenge = derivation.challenge(LABEL, i)
                if kind == "generate":
                    response = AppletBackend(LoopbackConnection(token.card)).respond(challenge, Enrollment(backend="applet", slot=1), _Pin())
                else:
                    response = fido.respond(challenge, meta, _Pin())
                assert len(response) == 32
            after = _erases(token)
            results[kind] = max(a - b for a, b in zip(after, before))
        return results, token.store.used()
    finally:
        hid.close()


def _lifetime(erases, ops):
    """Operations until a page reaches its erase limit; None when the run erased nothing."""
    if erases == 0:
        return None
    return CYCLES * ops // erases


def _lifetime_text(lifetime, ops):
    # a run too short to erase a page only tells a lower bound
    return f"{lifetime:,}" if lifetime is not None else f"> {CYCLES * ops:,}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="operations of each kind per store (default 2000)")
    args = parser.parse_args(argv)
    ops = args.ops
    old, old_used = _run(_TokenV1(_platform("bench-store-v1")), ops)
    new_token = Token(_platform("bench-store-v2"))
    new, new_used = _run(new_token, ops)
    capacity = Store(new_token.platform).capacity
    print(f"flash: {PAGES} pages x {PAGE_SIZE} bytes, {CYCLES:,} erase cycles per page; "
          f"{ops} operations of each kind per store; records in use: old {old_used} B, new {new_used} B "
          f"(new capacity {capacity} B)")
    print(f"{'operation':<42}{'old two-bank store':>22}{'log-structured store':>24}{'ratio':>9}")
    for kind, what in (("generate", "seal generate (VERIFY+DERIVE)"), ("fido", "FIDO generate (2 assertions)")):
        per_old = old[kind] / ops
        per_new = new[kind] / ops
        print(f"{what + ' erases/op':<42}{per_old:>22.4f}{per_new:>24.5f}"
              f"{(per_old / per_new if per_new else float('inf')):>9.0f}x")
        life_old = _lifetime(old[kind], ops)
        life_new = _lifetime(new[kind], ops)
        ratio = f"{life_new / life_old:>9.0f}x" if life_old and life_new else f"{'n/a':>10}"
        print(f"{what + ' lifetime':<42}{_lifetime_text(life_old, ops):>22}{_lifetime_text(life_new, ops):>24}"
              f"{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
