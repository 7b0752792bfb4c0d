"""Writes tests/vectors/yubiotp-v1.json once (python tests/yubikey/_make_yubiotp_vectors.py): what a
YubiKey OTP slot answers to a v1 challenge, with and without HMAC_LT64 (docs/spec.md section 3).

The values are computed here with the hmac module from the rule of the spec; the tests confirm them
against sealcodes' `yubiotp` backend driving our firmware's OTP applet through yubikit, and against
tests/_independent_v1.py (its own HMAC-SHA1 and padding).
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from sealcodes import derivation

OUT = Path(__file__).resolve().parent.parent / "vectors" / "yubiotp-v1.json"
KEY = bytes(range(0x10, 0x24))  # 20 bytes
#: epoch 269 is the first whose challenge ends in 0x00 (so the padding is 0x01)
CASES = [("github.com/alice", 0), ("github.com/alice", 269)]


def main():
    cases = []
    for label, epoch in CASES:
        challenge = derivation.challenge(label, epoch)
        pad = b"\x01" if challenge[-1] == 0 else b"\x00"
        block = challenge + pad * 32
        cases.append({"label": label, "epoch": epoch, "challenge": challenge.hex(), "block": block.hex(),
                      "response_lt64": hmac.new(KEY, challenge, "sha1").hexdigest(),
                      "response_without_lt64": hmac.new(KEY, block, "sha1").hexdigest()})
    body = {"about": "yubiotp responses to v1 challenges (docs/spec.md section 3); frozen", "key": KEY.hex(),
            "cases": cases}
    OUT.write_text(json.dumps(body, indent=1) + "\n")


if __name__ == "__main__":
    main()
