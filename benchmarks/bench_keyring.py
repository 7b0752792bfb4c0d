#!/usr/bin/env python3
"""What a keyring and a sheet cost on the host, beside the plain v1 derivation, in the same run.

No device: member answers are random bytes (a device's own time is the same with or without a
keyring). Prints the median time of: deriving 10 codes from R (baseline); opening a 1-of-3 and a
2-of-3 keyring (HKDF + AES-GCM per member, Shamir interpolation) and deriving the same 10 codes
from S; creating a 2-of-3 keyring; removing a member of it (open S, re-seed for the two members
left, rotate one set of 10 codes); rendering a sheet as text and as PDF (with the keyring QR code).

    python benchmarks/bench_keyring.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os

from _timing import median_ms
from sealcodes import derivation
from sealcodes import keyring as kr
from sealcodes import sheet

DEVICES = [{"backend": "applet", "serial": "5EA1C0DE", "slot": 1},
           {"backend": "fido2", "credential_id": "A" * 86, "public_key": "B" * 104, "uv": True},
           {"backend": "ykoath", "serial": "12345678", "credential_name": "sealcodes"}]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    rounds = parser.parse_args().rounds
    answers = [os.urandom(32) for _ in DEVICES]
    response = bytearray(os.urandom(32))
    rings = {k: kr.create("bench", DEVICES, answers, threshold=k) for k in (1, 2)}

    def plain():
        derivation.derive(response, "github.com/alice", 0, "base32-16", 10)

    def through(k):
        ring = rings[k]

        def run():
            opened = {m.member_id: kr.open_member(ring, m, answers[m.member_id - 1]) for m in ring.members[:k]}
            seed = kr.recover_seed(ring, opened)
            derivation.derive(seed, "github.com/alice", 0, "base32-16", 10)
        return run

    def remove_one():
        ring = rings[2]
        opened = {m.member_id: kr.open_member(ring, m, answers[m.member_id - 1]) for m in ring.members[:2]}
        seed = kr.recover_seed(ring, opened)
        new_seed = kr.new_seed()
        kr.reseed(ring, [1, 2], {1: answers[0], 2: answers[1]}, new_seed, kr.new_keyring_id())
        derivation.derive(new_seed, "github.com/alice", 1, "base32-16", 10)
        del seed

    codes = derivation.derive(response, "github.com/alice", 0, "base32-16", 10)
    paper = kr.to_paper(rings[2])
    data = sheet.SheetData("github.com/alice", 0, "base32-16", codes.fingerprint, tuple(codes.codes), "2026-01-01",
                           ("keyring bench",), "", "", (sheet.QrItem("Keyring", paper, tuple(kr.paper_lines(paper))),))
    rows = [
        ("derive 10 codes from R (baseline)", median_ms(plain, rounds)),
        ("open 1-of-3 keyring + derive", median_ms(through(1), rounds)),
        ("open 2-of-3 keyring + derive", median_ms(through(2), rounds)),
        ("create 2-of-3 keyring", median_ms(lambda: kr.create("bench", DEVICES, answers, threshold=2), rounds)),
        ("remove a member (re-seed, rotate 1 set)", median_ms(remove_one, rounds)),
        ("sheet as text (with QR)", median_ms(lambda: sheet.render_text(data), max(5, rounds // 5))),
        ("sheet as PDF (with QR)", median_ms(lambda: sheet.render_pdf(data), max(5, rounds // 5))),
    ]
    base = rows[0][1]
    print(f"{'operation':40} {'median ms':>10} {'x baseline':>11}")
    for name, ms in rows:
        print(f"{name:40} {ms:10.3f} {ms / base:11.1f}")
    print(f"paper form of the 3-member keyring: {len(paper)} characters; "
          f"canonical JSON: {len(kr.to_json(rings[2]))} bytes")


if __name__ == "__main__":
    main()
