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
    body.update(edge_cases(valid))
    OUT.write_text(json.dumps(body, indent=1, ensure_ascii=True) + "\n")


# --- edge cases (added later; the sections above are unchanged) -------------------------------------

#: characters the canonical form must escape one way only: NFD kept as typed, short escapes, \u escapes
#: for other controls and DEL, a non-BMP character as a surrogate pair, "/" as itself
AWKWARD_NAME = "Cafe\u0301 \"reader\" \\ 1/2 \u2028 \U0001f511 \u00e9"
AWKWARD_CONTROLS = "tab\there nl\ncr\rbs\bff\fnul\x00us\x1fdel\x7fnel\x85"


def edge_cases(valid):
    by_name = {case["name"]: case for case in valid}
    documents = []

    # 1. device text that needs every kind of escape, and a serial in each spelling
    base = json.loads(by_name["one-of-two"]["document"])
    base["members"][0]["device"] = {"backend": "applet", "serial": "1587658974", "slot": 1, "device_kind": "pcsc",
                                    "device_name": AWKWARD_NAME}
    base["members"][1]["device"] = {"backend": "fido2", "serial": "5EA1C0DE", "credential_id": "AbCd",
                                    "rp_id": "sealcodes:", "uv": False, "touch": None,
                                    "credential_name": AWKWARD_CONTROLS}
    text = json.dumps(base, indent=2, ensure_ascii=True).replace("\\u00e9", "\\u00E9").replace("1/2", "1\\/2")
    documents.append(_document_case("escapes-and-serial-spellings", "one-of-two", text))

    # 2. members in another order, white space, non-ASCII written as itself: read, then written by id
    base = json.loads(by_name["two-of-three"]["document"])
    base["members"].reverse()
    documents.append(_document_case("members-out-of-order", "two-of-three",
                                    json.dumps(base, indent=4, ensure_ascii=False)))

    # 3. upper-case hex, no retired_max, fields this version does not know: all normalised away
    base = json.loads(by_name["three-of-three-gaps"]["document"])
    del base["retired_max"]
    base["note"] = "kept in a drawer"
    base["members"][0]["label"] = "the blue one"
    base["members"][1]["device"]["colour"] = "blue"
    for key in ("id",):
        base[key] = base[key].upper()
    for member in base["members"]:
        member["nonce"], member["envelope"] = member["nonce"].upper(), member["envelope"].upper()
    documents.append(_document_case("upper-hex-unknown-fields-no-retired-max", "three-of-three-gaps",
                                    json.dumps(base, separators=(", ", ": "))))

    return {"documents": documents, "papers": paper_cases(by_name), "invalid_documents": invalid_documents(by_name),
            "serials": SERIALS}


def _document_case(name, keys_of, text):
    """A document as read (`input`), the canonical form every reader writes back, and its paper form.
    Device fields are not authenticated: it opens with the answers of the case `keys_of`."""
    keyring = kr.from_json(text)
    return {"name": name, "answers_of": keys_of, "input": text, "canonical": kr.to_json(keyring),
            "paper": kr.to_paper(keyring)}


def paper_cases(by_name):
    """Typed paper forms: the canonical document they give, or null when a reader must refuse them."""
    paper = by_name["two-of-three"]["paper"]  # 2 padding bits: room for both padding cases below
    document = by_name["two-of-three"]["document"]
    body = paper[4:]
    lines = kr.paper_lines(paper)
    on_sheet = "\r\n".join(lines[:3]) + "\n\t" + "\u00a0".join(lines[3:6]) + "\n" + "-".join("\n".join(lines[6:]).split(" "))
    lookalikes = "sckl" + body.replace("0", "o").replace("1", "l", 5).replace("1", "I", 5).lower()
    flipped = body[:100] + ("A" if body[100] != "A" else "B") + body[101:]
    last = kr.PAPER_ALPHABET.index(body[-1])
    stray = body[:-1] + kr.PAPER_ALPHABET[last ^ 1]
    where_one = body.index("1")
    return [
        {"why": "lower case", "typed": paper.lower(), "document": document},
        {"why": "several lines as on the sheet, CR LF, tab, no-break space and - between groups",
         "typed": on_sheet, "document": document},
        {"why": "look-alikes o, l, I for 0 and 1, in the prefix too", "typed": lookalikes, "document": document},
        {"why": "one symbol more (5 or more padding bits)", "typed": paper + "0", "document": None},
        {"why": "a padding bit set", "typed": "SCK1" + stray, "document": None},
        {"why": "one symbol changed (the 4-byte check fails)", "typed": "SCK1" + flipped, "document": None},
        {"why": "dotless i (not an ASCII letter) for 1", "typed": "SCK1" + body[:where_one] + "\u0131"
         + body[where_one + 1:], "document": None},
        {"why": "U+001C (not White_Space) between groups", "typed": "SCK1" + body[:8] + "\u001c" + body[8:],
         "document": None},
        {"why": "another prefix", "typed": "SCK2" + body, "document": None},
        {"why": "no prefix", "typed": body, "document": None},
    ]


def invalid_documents(by_name):
    """JSON texts every reader refuses, each with what is wrong."""
    good = by_name["two-of-three"]["document"]

    def changed(mutate):
        doc = json.loads(good)
        mutate(doc)
        return json.dumps(doc, separators=(",", ":"))

    cases = [
        ("a key twice in one object", good.replace('{"id":', '{"threshold":1,"id":', 1)),
        ("version 2", changed(lambda d: d.update(version=2))),
        ("version as true", changed(lambda d: d.update(version=True))),
        ("id with a space", changed(lambda d: d.update(id=d["id"][:30] + " 1"))),
        ("threshold above the number of members", changed(lambda d: d.update(threshold=4))),
        ("threshold as true", changed(lambda d: d.update(threshold=True))),
        ("threshold as 2.0", good.replace('"threshold":2', '"threshold":2.0')),
        ("member id 0", changed(lambda d: d["members"][0].update(member=0))),
        ("member id 256", changed(lambda d: d["members"][0].update(member=256))),
        ("one member id twice", changed(lambda d: d["members"][1].update(member=1))),
        ("no members", changed(lambda d: d.update(members=[]))),
        ("id of 15 bytes", changed(lambda d: d.update(id=d["id"][:30]))),
        ("envelope one byte short", changed(lambda d: d["members"][0].update(envelope=d["members"][0]["envelope"][:-2]))),
        ("nonce not hex", changed(lambda d: d["members"][0].update(nonce="zz" * 12))),
        ("device without backend", changed(lambda d: d["members"][0]["device"].pop("backend"))),
        ("slot as a string", changed(lambda d: d["members"][0]["device"].update(slot="2"))),
        ("uv as 0", changed(lambda d: d["members"][0]["device"].update(uv=0))),
        ("name with a space", changed(lambda d: d.update(name="two of three"))),
        ("another type", changed(lambda d: d.update(type="sealcodes-keyring-x"))),
    ]
    return [{"why": why, "input": text} for why, text in cases]


#: how a serial recorded in a document (or profile) matches the decimal serial a device reports
SERIALS = [
    {"recorded": "1587658974", "reported": "1587658974", "same": True},
    {"recorded": "5EA1C0DE", "reported": "1587658974", "same": True},
    {"recorded": "5ea1c0de", "reported": "1587658974", "same": True},
    {"recorded": "00000001", "reported": "1", "same": True},
    {"recorded": "00000010", "reported": "16", "same": True},
    {"recorded": "00000010", "reported": "10", "same": False},
    {"recorded": "0A", "reported": "10", "same": False},
    {"recorded": "12345678", "reported": "12345678", "same": True},
    {"recorded": "12345678", "reported": "305419896", "same": True},  # 8 digits read as hex too
    {"recorded": "05EA1C0DE", "reported": "1587658974", "same": False},
    {"recorded": "1587658974", "reported": "1587658975", "same": False},
]


if __name__ == "__main__":
    main()
