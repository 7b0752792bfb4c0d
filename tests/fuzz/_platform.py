"""FuzzPlatform: SimPlatform (seeded DRBG, hand-moved clock, RAM flash) plus P-256 and AES.

The whole token (FIDO included) runs on it deterministically: the same seed gives
the same keys, the same credential ids and the same answers, so a failing input
can be replayed. No background jobs (no run_background): every request is
answered synchronously, as a board without threads would.
"""

from __future__ import annotations

from sealboard.platform import CryptographyPrimitives
from sealtoken.core.simplatform import SimPlatform

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class FuzzPlatform(CryptographyPrimitives, SimPlatform):
    def p256_generate(self):
        while True:
            d = int.from_bytes(bytes(self.random_bytes(32)), "big")
            if 0 < d < _P256_ORDER:
                break
        private = d.to_bytes(32, "big")
        x, y = self.p256_public(private)
        return private, x, y
