"""Shared parts of the fuzz harnesses: budgets, invariants, mutations.

Budgets: the default run tries a fixed number of inputs per harness (seeded, so
every run tries the same inputs, a few seconds each). The slow runs
(`pytest -m slow tests/fuzz -s`) try inputs for SEALCODES_FUZZ_SECONDS seconds per
harness (default 120) and print how many they tried.

Invariants checked after every input (helpers below):
- no exception escapes the firmware entry point;
- the store re-opened from the same flash equals the store in RAM;
- no secret the test knows appears in any answer (any 12-byte window of it);
- PIN tries never go up, except to the maximum on a success answer, and a
  "wrong PIN" answer cost exactly one try.
"""

from __future__ import annotations

import os
import random
import time

from sealtoken.core.storage import Store

SECRET_WINDOW = 12


class Budget:
    """for i in Budget(...): one input per iteration; .report() says how many and how long."""

    def __init__(self, name, count, slow=False):
        self.name = name
        self.count = None if slow else count
        self.seconds = float(os.environ.get("SEALCODES_FUZZ_SECONDS", "120")) if slow else None
        self.tried = 0
        self.started = time.monotonic()

    def __iter__(self):
        deadline = None if self.seconds is None else self.started + self.seconds
        while True:
            if self.count is not None and self.tried >= self.count:
                return
            if deadline is not None and self.tried % 64 == 0 and time.monotonic() > deadline:
                return
            yield self.tried
            self.tried += 1

    def report(self, detail=""):
        elapsed = time.monotonic() - self.started
        line = f"fuzz {self.name}: {self.tried} inputs in {elapsed:.1f} s {detail}".rstrip()
        print(line)
        return line


def store_snapshot(store):
    return {key: store.get(key) for key in store.keys()}


def assert_flash_equals_ram(platform, store, context=""):
    """Re-open the store from the same flash: it must hold exactly what the running store holds."""
    ram = store_snapshot(store)
    flash = store_snapshot(Store(platform))
    assert flash == ram, f"RAM and flash differ after {context}: {sorted(set(ram) ^ set(flash))}"
    return ram


def windows(secret):
    """Pieces of a secret to look for: the whole of a short one, else every SECRET_WINDOW-byte window."""
    secret = bytes(secret)
    if len(secret) <= SECRET_WINDOW:
        return [secret] if len(secret) >= 6 else []
    return [secret[i:i + SECRET_WINDOW] for i in range(0, len(secret) - SECRET_WINDOW + 1, 4)]


def assert_no_secret(answer, secrets, context=""):
    answer = bytes(answer)
    for name, secret in secrets:
        for piece in windows(secret):
            assert answer.find(piece) < 0, f"secret {name} in the answer to {context}"


class Tries:
    """A PIN try counter the harness watches: it may only go up to its maximum, on success;
    an answer that says "wrong PIN" must have cost exactly one try."""

    def __init__(self, name, read, maximum):
        self.name = name
        self.read = read
        self.maximum = maximum
        self.last = read()

    def check(self, success, context="", spent=False):
        now = self.read()
        if now > self.last:
            assert success and now == self.maximum, (
                f"{self.name} tries went up {self.last} -> {now} after {context}")
        if spent:
            assert now == self.last - 1, f"{self.name}: a wrong PIN cost {self.last - now} tries ({context})"
        self.last = now


# --- mutation -------------------------------------------------------------------------------------

INTERESTING_BYTES = (0x00, 0x01, 0x17, 0x18, 0x1F, 0x20, 0x40, 0x5F, 0x7F, 0x80, 0x9F, 0xBF, 0xF6, 0xFE, 0xFF)


def mutate_bytes(rng: random.Random, data: bytes, keep_first=0) -> bytes:
    """1-3 byte-level edits (bit flips, interesting bytes, cuts, inserts, duplications)."""
    data = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(6)
        start = min(keep_first, len(data))
        if kind == 0 and len(data) > start:
            data[rng.randrange(start, len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1 and len(data) > start:
            data[rng.randrange(start, len(data))] = rng.choice(INTERESTING_BYTES + (rng.randrange(256),))
        elif kind == 2:
            del data[rng.randrange(start, len(data) + 1):]
        elif kind == 3:
            pos = rng.randrange(start, len(data) + 1)
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        elif kind == 4 and len(data) > start:
            a = rng.randrange(start, len(data))
            b = rng.randrange(a, min(len(data), a + 40) + 1)
            data[b:b] = data[a:b]
        else:
            pos = rng.randrange(start, len(data) + 1)
            del data[pos:pos + rng.randrange(1, 8)]
    return bytes(data)


def random_value(rng, depth=0):
    """A random decoded-CBOR value of the shapes CTAP uses."""
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 9, 23, 24, 32, 63, 64, 255, 256, 65535, 2**32, 2**64 - 1])
    if kind == 1:
        return -rng.choice([1, 7, 25, 257, 2**31, 2**64])
    if kind == 2:
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 15, 16, 31, 32, 33, 64, 97, 300])))
    if kind == 3:
        return rng.choice(["", "public-key", "hmac-secret", "credProtect", "rk", "up", "uv", "id", "alg",
                           "type", "name", "displayName", "example.com", "\u00e9" * 40, "x" * 300])
    if kind in (4, 5):
        return rng.random() < 0.5
    if kind == 6:
        return rng.choice([b"\x01" * 97, b"\0" * 32, {1: 2, 3: -25, -1: 1, -2: b"\1" * 32, -3: b"\2" * 32},
                           {"id": b"\x01" * 97, "type": "public-key"}])
    if kind in (7, 8):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -1, -2, "id", "type", "alg", "rk", "up", "name",
                        "hmac-secret"]) for _ in range(rng.randrange(4))]
    return {k: random_value(rng, depth + 1) for k in keys}


def mutate_structure(rng, value):
    """A copy of a decoded CBOR value with one node replaced, deleted or added."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.2:
            del out[key]
        elif roll < 0.3:
            out[rng.choice([0, 6, 10, 11, 255, "extra", -7])] = random_value(rng)
        elif roll < 0.65:
            out[key] = mutate_structure(rng, value[key])
        else:
            out[key] = random_value(rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.7:
        out = list(value)
        i = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.2:
            del out[i]
        elif roll < 0.3:
            out.extend(out * rng.randrange(1, 12))
        elif roll < 0.7:
            out[i] = mutate_structure(rng, out[i])
        else:
            out[i] = random_value(rng)
        return out
    return random_value(rng)
