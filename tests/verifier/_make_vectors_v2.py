"""Writes tests/vectors/verifier-record-v2.json once (cd tests && python -m verifier._make_vectors_v2).

Every "random" value (responses, salts) is SHA-256 of a fixed text, and Ed25519 signatures are
deterministic (RFC 8032), so the file can be re-made and compared; the file itself is frozen
(docs/spec.md section 14) and checked by test_record_v2.py against the library and against the
second implementation (tests/_independent_verifier.py with tests/_independent_ed25519.py).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from sealcodes import derivation
from sealcodes.verifier.record import HashParams, PreviousSet, make_record
from sealcodes.verifier.rotation import commitment, proof_message, rotation_key

OUT = Path(__file__).resolve().parent.parent / "vectors" / "verifier-record-v2.json"
CHEAP = {"scheme": "argon2id", "memory_kib": 64, "iterations": 1, "lanes": 1}
FAST = {"scheme": "hmac-sha256"}


def fixed(text: str, size: int) -> bytes:
    out, counter = b"", 0
    while len(out) < size:
        out += hashlib.sha256(f"{text}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


# name, (response text, length), label, epoch, format, count, account, hash, previous (response text,
# length, label, epoch) or None
CASES = [
    ("first-set", ("alice-key", 32), "github.com/alice", 0, "base32-16", 3, "alice", CHEAP, None),
    ("rotation", ("alice-key", 32), "github.com/alice", 1, "base32-16", 3, "alice", CHEAP,
     ("alice-key", 32, "github.com/alice", 0)),
    ("rotation-jump-new-format-fast-hash", ("alice-key", 32), "github.com/alice", 7, "base32-24", 2, "alice",
     FAST, ("alice-key", 32, "github.com/alice", 1)),
    ("yubiotp-20-byte-response-last-epoch", ("otp-slot", 20), "bank", 4294967295, "digits-24", 2,
     "bank customer 17", CHEAP, ("otp-slot", 20, "bank", 4294967294)),
    ("keyring-onto-new-seed", ("keyring S'", 32), "vpn", 4, "base32-16", 2, "vpn", CHEAP,
     ("keyring S", 32, "vpn", 3)),
    ("second-label-proven-by-first", ("bob-key", 32), "mail/bob", 0, "base32-16", 2, "bob", CHEAP,
     ("bob-key", 32, "github.com/bob", 2)),
    ("nfd-label-and-account", ("cafe-key", 64), "Cafe\u0301/b\u00e9atrice", 3, "base32-16", 2,
     "be\u0301atrice", CHEAP, ("cafe-key", 64, "Cafe\u0301/b\u00e9atrice", 2)),
    ("argon2id-passes-and-lanes-differ", ("lanes-key", 32), "ssh", 2, "base32-16", 2, "root", 
     {"scheme": "argon2id", "memory_kib": 96, "iterations": 2, "lanes": 3}, ("lanes-key", 32, "ssh", 1)),
]


def _case(name, response_spec, label, epoch, fmt, count, account, hash_params, previous_spec):
    response = fixed(*response_spec)
    salt = fixed(f"salt/{name}", 16)
    codes = derivation.derive(response, label, epoch, fmt, count)
    previous = None
    out = {"name": name, "response": response.hex(), "label": label, "epoch": epoch, "format": fmt,
           "count": count, "account": account, "hash": hash_params, "salt": salt.hex(),
           "rotation_key": bytes(rotation_key(response, label, epoch)).hex(),
           "commitment": commitment(rotation_key(response, label, epoch)).hex()}
    if previous_spec is not None:
        text, length, previous_label, previous_epoch = previous_spec
        previous_response = fixed(text, length)
        previous = PreviousSet(bytearray(previous_response), previous_label, previous_epoch)
        previous_key = rotation_key(previous_response, previous_label, previous_epoch)
        out["previous"] = {"response": previous_response.hex(), "label": previous_label, "epoch": previous_epoch,
                           "rotation_key": bytes(previous_key).hex(),
                           "commitment": commitment(previous_key).hex()}
    record = make_record(codes, account, HashParams.from_dict(hash_params), salt, response=bytearray(response),
                         previous=previous)
    if record.proof is not None:
        out["proof_message"] = proof_message(record, record.proof.label, record.proof.epoch).hex()
    out["record"] = record.to_dict()
    return out


def _flip(hex_text: str, index: int = 0) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[index] ^= 0x01
    return raw.hex()


def _checks(valid):
    """Proof checks a verifier makes: (stored commitment, record) -> holds or not."""
    rotation = next(c for c in valid if c["name"] == "rotation")
    jump = next(c for c in valid if c["name"] == "rotation-jump-new-format-fast-hash")
    good = rotation["record"]
    stored = rotation["previous"]["commitment"]
    checks = [{"why": "the proof of the set the verifier holds", "commitment": stored, "record": good,
               "holds": True}]

    def variant(why, change, commitment_hex=stored):
        record = copy.deepcopy(good)
        change(record)
        checks.append({"why": why, "commitment": commitment_hex, "record": record, "holds": False})

    variant("another account", lambda r: r.__setitem__("account", "mallory"))
    variant("another label", lambda r: r.__setitem__("label", "gitlab.com/alice"))
    variant("another format", lambda r: r.__setitem__("format", "digits-24"))
    variant("another count (one digest dropped)", lambda r: (r.__setitem__("count", 2), r["digests"].pop()))
    variant("another fingerprint", lambda r: r.__setitem__("fingerprint", "0000-0000"))
    variant("a cheaper hash", lambda r: r.__setitem__("hash", {"scheme": "argon2id", "memory_kib": 8,
                                                               "iterations": 1, "lanes": 1}))
    variant("the digests in another order", lambda r: r["digests"].reverse())
    variant("a digest replaced", lambda r: r["digests"].__setitem__(0, _flip(r["digests"][0])))
    variant("another salt", lambda r: r.__setitem__("salt", _flip(r["salt"])))
    variant("another commitment for the new set", lambda r: r.__setitem__("commitment", jump["commitment"]))
    variant("another epoch claimed for the new set", lambda r: r.__setitem__("epoch", 2))
    variant("the proof names another set of the account", lambda r: r["proof"].__setitem__("label", "gitlab.com/alice"))
    variant("a signature bit flipped", lambda r: r["proof"].__setitem__("signature",
                                                                      _flip(r["proof"]["signature"], 40)))
    variant("the commitment of the new set itself, not the replaced one", lambda r: None,
            commitment_hex=good["commitment"])
    # a jump of several epochs, proven by the set the verifier holds (epoch 1), not by an older one
    checks.append({"why": "a jump proven by the epoch the verifier holds", "commitment": jump["previous"]["commitment"],
                   "record": jump["record"], "holds": True})
    checks.append({"why": "a jump checked against an older epoch's key than the signer's",
                   "commitment": stored, "record": jump["record"], "holds": False})
    # a stored commitment that is no key: the neutral point verifies R_s = B, S = 1 for any message
    # under a cofactorless check that skips the key's order, so it must be refused as a key
    base = "5866666666666666666666666666666666666666666666666666666666666666"
    forged = copy.deepcopy(good)
    forged["proof"]["signature"] = base + (1).to_bytes(32, "little").hex()
    checks.append({"why": "the neutral point as the stored key, with a proof made without any key",
                   "commitment": "01" + "00" * 31, "record": forged, "holds": False})
    checks.append({"why": "a stored key that is not a canonical encoding (y = p + 1)",
                   "commitment": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "record": good,
                   "holds": False})
    # S + L: the same signature with a non-canonical scalar must be refused (RFC 8032 5.1.7)
    signature = bytes.fromhex(good["proof"]["signature"])
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little") + order
    if s < 2**256:
        variant("scalar S not reduced (S + L)", lambda r: r["proof"].__setitem__(
            "signature", (signature[:32] + s.to_bytes(32, "little")).hex()))
    return checks


def _invalid(valid):
    """Records a verifier refuses to read at all."""
    rotation = next(c for c in valid if c["name"] == "rotation")["record"]
    first = next(c for c in valid if c["name"] == "first-set")["record"]
    out = []

    def bad(why, base, change):
        record = copy.deepcopy(base)
        change(record)
        out.append({"why": why, "record": record})

    bad("version 2 without a commitment", first, lambda r: r.pop("commitment"))
    bad("commitment of 31 bytes", first, lambda r: r.__setitem__("commitment", r["commitment"][:62]))
    bad("commitment in upper-case hex", first, lambda r: r.__setitem__("commitment", r["commitment"].upper()))
    bad("version 1 with a commitment", first, lambda r: r.__setitem__("version", 1))
    bad("version 3", first, lambda r: r.__setitem__("version", 3))
    bad("proof without its signature", rotation, lambda r: r["proof"].pop("signature"))
    bad("proof with an unknown field", rotation, lambda r: r["proof"].__setitem__("key", "00"))
    bad("signature of 63 bytes", rotation, lambda r: r["proof"].__setitem__("signature", r["proof"]["signature"][:126]))
    bad("proof from the same epoch of the label", rotation, lambda r: r["proof"].__setitem__("epoch", 1))
    bad("proof from a newer epoch of the label", rotation, lambda r: r["proof"].__setitem__("epoch", 9))
    bad("proof epoch is not an integer", rotation, lambda r: r["proof"].__setitem__("epoch", "0"))
    bad("proof is not an object", rotation, lambda r: r.__setitem__("proof", r["proof"]["signature"]))
    bad("proof label with a control character", rotation, lambda r: r["proof"].__setitem__("label", "a\u0007b"))
    bad("version written 2.0", first, lambda r: r.__setitem__("version", 2.0))
    bad("commitment: the neutral point", first, lambda r: r.__setitem__("commitment", "01" + "00" * 31))
    bad("commitment: a point of order 2", first, lambda r: r.__setitem__("commitment", "ec" + "ff" * 30 + "7f"))
    bad("commitment: a point of order 8", first, lambda r: r.__setitem__(
        "commitment", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))
    bad("commitment: a key plus a point of order 2 (mixed order)", first, lambda r: r.__setitem__(
        "commitment", _mixed_order(r["commitment"])))
    bad("commitment: y >= p (not canonical)", first, lambda r: r.__setitem__("commitment", "ee" + "ff" * 30 + "7f"))
    bad("commitment: x = 0 with the sign bit set", first, lambda r: r.__setitem__("commitment", "01" + "00" * 30 + "80"))
    bad("commitment: no point has this y", first, lambda r: r.__setitem__("commitment", "02" + "00" * 31))
    return out


def _mixed_order(commitment_hex: str) -> str:
    """The commitment's point plus the point of order 2 (0, -1): on the curve, not of order L."""
    import _independent_ed25519 as ed

    point = ed.decode_point(bytes.fromhex(commitment_hex))
    minus_one = ed.decode_point(bytes.fromhex("ec" + "ff" * 30 + "7f"))
    return ed.encode_point(ed._add(point, minus_one)).hex()


# JSON texts (not objects) a reader refuses: a member named twice could be read two ways
INVALID_TEXT = [
    {"why": "a member named twice (the account)",
     "text": '{"type": "sealcodes-verifier-record", "version": 2, "account": "alice", "account": "root"}'},
]


def main():
    valid = [_case(*case) for case in CASES]
    document = {
        "title": "sealcodes verifier records v2 (device-bound rotation): vectors",
        "spec": "docs/spec.md, section 14; these outputs never change",
        "fields": {
            "valid": "inputs (R, label, epoch, format, count, account, hash, salt, and for a rotation the previous "
                     "set's R, label and epoch) with the expected rotation keys K (hex), commitments, the proof "
                     "message (hex) and the record",
            "checks": "a commitment the verifier stored and a record whose proof it checks against it: holds or not",
            "invalid": "records a verifier must refuse to read",
            "invalid_text": "JSON texts a verifier must refuse to read as a record",
        },
        "valid": valid,
        "checks": _checks(valid),
        "invalid": _invalid(valid),
        "invalid_text": INVALID_TEXT,
    }
    OUT.write_text(json.dumps(document, indent=1, ensure_ascii=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
