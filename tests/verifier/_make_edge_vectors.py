"""Adds the edge cases of docs/spec.md section 13 to tests/vectors/verifier-record-v1.json
(python tests/verifier/_make_edge_vectors.py): the exact JSON line of two records, records a
verifier reads with an NFD label and account, pepper ids, and more records every verifier refuses.

Existing entries are kept byte for byte (the file is re-written with the indentation it has);
the expected values come from sealcodes.verifier.record and are confirmed by
tests/_independent_verifier.py on every run (tests/verifier/test_record_edges.py).
"""

from __future__ import annotations

import copy
import json
import unicodedata
from pathlib import Path

from sealcodes import derivation
from sealcodes.verifier.record import HashParams, make_record, pepper_id

OUT = Path(__file__).resolve().parent.parent / "vectors" / "verifier-record-v1.json"


def _line(case) -> str:
    codes = derivation.derive(bytes.fromhex(case["response"]), case["label"], case["epoch"], case["format"],
                              case["count"])
    return make_record(codes, case["account"], HashParams.from_dict(case["hash"]), bytes.fromhex(case["salt"])).to_json()


def _invalid(base: dict) -> list:
    def changed(why, **fields):
        record = copy.deepcopy(base)
        record.update(fields)
        return {"why": why, "record": record}

    argon = dict(base["hash"])
    return [
        changed("fingerprint in lower case", fingerprint=base["fingerprint"].lower()),
        changed("fingerprint with a look-alike (I for 1)", fingerprint=base["fingerprint"].replace("1", "I")),
        changed("label ending in white space", label=base["label"] + " "),
        changed("empty account", account=""),
        changed("label of 129 bytes", label="x" * 129),
        changed("count 0 and no digests", count=0, digests=[]),
        changed("version as true", version=True),
        changed("epoch as 1.0", epoch=1.0),
        changed("argon2id hash with a member more", hash=dict(argon, secret="x")),
        changed("argon2id memory above 1 GiB", hash=dict(argon, memory_kib=1048577)),
        changed("argon2id with 17 lanes", hash=dict(argon, lanes=17, memory_kib=1024)),
        changed("hmac-sha256 with a cost member", format="base32-24", hash={"scheme": "hmac-sha256", "iterations": 1}),
        changed("a digest in upper-case hex", digests=[base["digests"][0].upper()] + base["digests"][1:]),
    ]


def main():
    text = OUT.read_text()
    body = json.loads(text)
    assert json.dumps(body, indent=1, ensure_ascii=True) + "\n" == text  # re-written as it is
    valid = {case["name"]: case for case in body["valid"]}
    body["fields"].update({
        "lines": "a record exactly as sealcodes prints it: one line of JSON (docs/spec.md section 13.1)",
        "imports": "a record as given to a verifier, and as the verifier stores it (label and account in NFC)",
        "pepper_ids": "a pepper and its public id (section 13.3)",
    })
    body["lines"] = [{"case": name, "line": _line(valid[name])}
                     for name in ("argon2id-base32-16", "argon2id-base32-24-nfd-label")]
    stored = valid["argon2id-base32-24-nfd-label"]["record"]
    given = dict(stored, label=unicodedata.normalize("NFD", stored["label"]),
                 account=unicodedata.normalize("NFD", stored["account"]))
    assert given != stored
    body["imports"] = [{"why": "label and account in NFD", "record": given, "stored": stored}]
    body["pepper_ids"] = [{"pepper": pepper.hex(), "id": pepper_id(pepper)}
                          for pepper in (bytes([0x70]) * 16, bytes(range(64)))]
    known = {case["why"] for case in body["invalid"]}
    body["invalid"] += [case for case in _invalid(valid["argon2id-base32-16"]["record"]) if case["why"] not in known]
    OUT.write_text(json.dumps(body, indent=1, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
