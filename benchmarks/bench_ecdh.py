#!/usr/bin/env python3
"""Cost of the ECDH derivation input on the host, against the applet backend in the same run.

Prints, per operation (median of N rounds, in-process token, no pcscd):
  - hash_to_curve in pure Python for P-256 and P-384 (the host's share of section 11 of
    docs/spec.md), next to the v1 derivation of 10 codes from R (baseline: pure hashing);
  - one `respond` (R for a challenge) for the applet backend (baseline), piv and openpgp
    backends, each with its APDU count.

    python benchmarks/bench_ecdh.py [--rounds N]
"""

from __future__ import annotations

import argparse

from _timing import median_ms
from sealboard.loopback import LoopbackConnection
from sealboard.platform import CPythonPlatform
from sealcodes import derivation
from sealcodes.backends import ecdh, h2c
from sealcodes.backends.applet import AppletBackend
from sealcodes.backends.base import Interaction
from sealcodes.backends.openpgp import OpenPgpBackend
from sealcodes.backends.piv import PivBackend
from sealcodes.enrollment import OpenPgpOptions, PivOptions
from sealtoken.token import Token

PINS = {"applet": "bench-pin", "piv": "123456", "openpgp": "123456", "openpgp-admin": "12345678"}


class _Pins(Interaction):
    def request_pin(self, purpose, new=False):
        return PINS[purpose]

    def confirm(self, message):
        return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    rounds = parser.parse_args().rounds
    challenge = derivation.challenge("bench.example/user", 0)

    print(f"{'operation':48} {'median ms':>10} {'APDUs':>6}")
    base = median_ms(lambda: derivation.derive(bytes(32), "bench.example/user", 0, "base32-16", 10), rounds)
    print(f"{'v1 derivation of 10 codes from R (baseline)':48} {base:10.3f} {'-':>6}")
    for curve in (h2c.P256, h2c.P384):
        ms = median_ms(lambda: ecdh.request_point(curve, challenge), rounds)
        print(f"{'hash_to_curve ' + curve.name + ' (pure Python)':48} {ms:10.3f} {'-':>6}")

    token = Token(CPythonPlatform(rng_seed=1))
    connection = LoopbackConnection(token.card)
    interaction = _Pins()
    backends = [("applet respond (baseline)", AppletBackend, AppletBackend(connection).enroll(interaction)),
                ("piv respond (P-256)", PivBackend, PivBackend(connection).enroll(interaction, PivOptions())),
                ("openpgp respond (P-384)", OpenPgpBackend,
                 OpenPgpBackend(connection).enroll(interaction, OpenPgpOptions(curve="P-384")))]
    for name, cls, enrollment in backends:
        # a session per answer (SELECT included), as generate opens one
        before = connection.apdu_count
        cls(connection).respond(challenge, enrollment, interaction)
        apdus = connection.apdu_count - before
        ms = median_ms(lambda: cls(connection).respond(challenge, enrollment, interaction), rounds)
        print(f"{name:48} {ms:10.3f} {apdus:>6}")


if __name__ == "__main__":
    main()
