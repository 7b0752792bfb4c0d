"""Writes tests/vectors/keyring-v1.json once (python -m tests.keyring._make_vectors).

Every "random" value is SHA-256 of a fixed text, so the file can be re-made and compared; the file
itself is frozen (docs/spec.md section 12) and checked by test_vectors.py against the library and
against tests/keyring/_independent_keyring.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sealcodes import derivation
from sealcodes import keyring as kr

OUT = Path(__file__).resolve().parent.parent / "vectors" / "keyring-v1.json"


def fixed(text: str, size: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{text}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


CASES = [
    # name, threshold, [(member id, answer length, device)]
    ("one-of-two", 1, [(1, 32, {"backend": "applet", "serial": "5EA1C0DE", "slot": 1}),
                       (2, 32, {"backend": "fido2", "credential_id": "AbCd", "rp_id": "sealcodes:", "uv": False})]),
    ("two-of-three", 2, [(1, 32, {"backend": "applet", "serial": "00000001", "slot": 2}),
                         (2, 20, {"backend": "yubiotp", "serial": "12345678", "slot": 2}),
                         (3, 32, {"backend": "ykoath", "serial": "12345678", "credential_name": "sealcodes"})]),
    ("three-of-three-gaps", 3, [(1, 16, {"backend": "applet", "serial": "0A", "slot": 8}),
                                (2, 64, {"backend": "applet", "serial": "0B", "slot": 1}),
                                (5, 32, {"backend": "fido2", "credential_id": "x-_y", "uv": True,
                                         "device_name": "Caf\u00e9 key"})]),
]


def make_case(name, threshold, specs):
    keyring_id = fixed(f"{name}/id", kr.ID_BYTES)
    seed = bytearray(fixed(f"{name}/seed", kr.SEED_BYTES))
    coefficients = [fixed(f"{name}/a{i}", kr.SEED_BYTES) for i in range(1, threshold)]
    stream = iter(coefficients)
    shares = kr.split(seed, [m for m, _, _ in specs], threshold, random_bytes=lambda n: next(stream))
    members, out_members = [], []
    for member_id, answer_len, device in specs:
        answer = fixed(f"{name}/answer{member_id}", answer_len)
        nonce = fixed(f"{name}/nonce{member_id}", kr.NONCE_BYTES)
        _, sealed = kr.seal_member(keyring_id, member_id, threshold, shares[member_id], answer, nonce=nonce)
        members.append(kr.Member(member_id, device, nonce, sealed))
        out_members.append({
            "member": member_id,
            "challenge": kr.member_challenge(keyring_id, member_id).hex(),
            "answer": answer.hex(),
            "kek": bytes(kr._wrap_key(answer, keyring_id, member_id, threshold)).hex(),
            "aad": kr.associated_data(keyring_id, member_id, threshold).hex(),
            "share": bytes(shares[member_id]).hex(),
            "nonce": nonce.hex(),
            "envelope": sealed.hex(),
        })
    keyring = kr.Keyring(keyring_id, name, threshold, tuple(members), retired_max=max(m for m, _, _ in specs))
    codes = derivation.derive(seed, "github.com/alice", 0, "base32-16", 3)
    return {
        "name": name,
        "id": keyring_id.hex(),
        "threshold": threshold,
        "seed": bytes(seed).hex(),
        "coefficients": [c.hex() for c in coefficients],
        "members": out_members,
        "document": kr.to_json(keyring),
        "paper": kr.to_paper(keyring),
        "codes": {"label": "github.com/alice", "epoch": 0, "format": "base32-16", "count": 3,
                  "codes": list(codes.codes), "fingerprint": codes.fingerprint},
    }


def main():
    valid = [make_case(*case) for case in CASES]
    first = valid[1]
    m1, m2 = first["members"][0], first["members"][1]
    flipped = bytearray.fromhex(m1["envelope"])
    flipped[0] ^= 0x01
    invalid = [
        {"why": "one bit of the ciphertext flipped", "case": first["name"], "member": 1,
         "answer": m1["answer"], "nonce": m1["nonce"], "envelope": flipped.hex()},
        {"why": "member 1's envelope presented as member 2 (swapped member)", "case": first["name"], "member": 2,
         "answer": m1["answer"], "nonce": m1["nonce"], "envelope": m1["envelope"]},
        {"why": "another device's answer", "case": first["name"], "member": 1,
         "answer": m2["answer"], "nonce": m1["nonce"], "envelope": m1["envelope"]},
        {"why": "threshold changed to 1 in the AAD", "case": first["name"], "member": 1, "threshold": 1,
         "answer": m1["answer"], "nonce": m1["nonce"], "envelope": m1["envelope"]},
    ]
    body = {"about": "sealcodes keyring v1 vectors (docs/spec.md section 12); frozen", "valid": valid,
            "invalid": invalid}
    OUT.write_text(json.dumps(body, indent=1, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
