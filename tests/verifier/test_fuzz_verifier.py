"""Bad input never crashes the verifier or `batch enroll`: a clear error (InvalidInputError: HTTP 400,
a one-line CLI error), never another exception. Fuzzed with hypothesis (a fixed sequence in the default run, budgeted;
the long runs, marked `slow`, draw fresh examples). The review's crashes are regression cases: `hash.lanes` an object
(HTTP 500, TypeError), a CSV count written `²` or `¹⁰` (ValueError), an output file that is not
UTF-8 (UnicodeDecodeError)."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _support import run_cli
from _vsupport import cheap_policy, code_set, record_for
from sealcodes.batch import done_keys, read_rows
from sealcodes.errors import InvalidInputError
from sealcodes.verifier import Forbidden, Verifier, open_store
from sealcodes.verifier.record import VerifierRecord

VALID = record_for(code_set(count=2)).to_dict()
KEYS = sorted(VALID) + ["hash.scheme", "hash.memory_kib", "hash.iterations", "hash.lanes", "extra"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _budget(examples):
    # a fixed sequence in the default run, fresh examples in the slow run (profiles: conftest.py)
    return settings(max_examples=examples)


def _mutated(changes):
    record = copy.deepcopy(VALID)
    for key, value in changes:
        if key.startswith("hash."):
            if isinstance(record.get("hash"), dict):
                record["hash"][key[5:]] = value
        elif key == "extra":
            record["x"] = value
        else:
            record[key] = value
    return record


def _parse(data):
    try:
        return VerifierRecord.from_dict(data)
    except InvalidInputError:
        return None


@pytest.mark.parametrize("lanes", [{}, [], "1", 1.0, None, True, {"a": 1}])
def test_lanes_of_any_type_is_a_clear_error(lanes):
    record = _mutated([("hash.lanes", lanes)])
    with pytest.raises(InvalidInputError, match="lanes"):
        VerifierRecord.from_dict(record)


records = st.lists(st.tuples(st.sampled_from(KEYS), json_values), min_size=1, max_size=4)


@_budget(150)
@given(changes=records)
def test_record_parsing_fuzz(changes):
    _parse(_mutated(changes))


@pytest.mark.slow
@_budget(20000)
@given(changes=records)
def test_record_parsing_fuzz_long(changes):
    _parse(_mutated(changes))


@pytest.fixture(scope="module")
def verifier(tmp_path_factory):
    store = open_store("sqlite:///" + str(tmp_path_factory.mktemp("fuzz") / "v.db"))
    yield Verifier.initialise(store, cheap_policy())
    store.close()


@_budget(60)
@given(changes=records, account=st.text(min_size=1, max_size=20))
def test_record_import_fuzz(verifier, changes, account):
    """What parses is imported or refused with a clear error; the database stays consistent."""
    record = _parse(_mutated(changes + [("account", account)]))
    if record is None:
        return
    try:
        verifier.import_record(record)
    except (InvalidInputError, Forbidden):
        pass
    for row in verifier.store.active_sets(record.account):
        assert len(verifier.store._fetch("SELECT idx FROM codes WHERE set_id = ?", (row.id,))) == row.count


cells = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["²", "¹⁰", "٣", "10", "0", "101", " 5", "+5", "5.0", "base32-16", "digits-24", "DEADBEEF", "pin-1234"])
csv_rows = st.lists(st.lists(cells, min_size=0, max_size=7), max_size=5)


def _csv(header, rows):
    return "\n".join([header] + [",".join(row) for row in rows]) + "\n"


@_budget(400)
@given(rows=csv_rows, header=st.sampled_from(["account,label,serial,format,count,pin", "account,label,count",
                                              "account,label"]))
def test_csv_rows_fuzz(rows, header):
    try:
        read_rows(_csv(header, rows))
    except InvalidInputError:
        pass


@pytest.mark.slow
@_budget(20000)
@given(rows=csv_rows, text=st.text(max_size=200))
def test_csv_rows_fuzz_long(rows, text):
    for candidate in (_csv("account,label,serial,format,count,pin", rows), text):
        try:
            read_rows(candidate)
        except InvalidInputError:
            pass


@pytest.mark.parametrize("count", ["²", "¹⁰", "٣", "1e2"])
def test_csv_count_in_other_digits_is_one_line(tmp_path, count):
    path = tmp_path / "fleet.csv"
    path.write_text(f"account,label,count\nalice,corp/alice,{count}\n", encoding="utf-8")
    result = run_cli("batch", "enroll", "--csv", str(path), "--output", str(tmp_path / "out.jsonl"))
    assert result.returncode == 1 and result.stderr.strip() == "Error: line 2: count must be a number from 1 to 100"


def test_output_that_is_not_utf8_is_one_line(tmp_path):
    csv_path, out = tmp_path / "fleet.csv", tmp_path / "out.jsonl"
    csv_path.write_text("account,label\nalice,corp/alice\n")
    out.write_bytes(json.dumps(VALID).encode() + b"\n\xff\xfe not text\n")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        done_keys(str(out))
    result = run_cli("batch", "enroll", "--csv", str(csv_path), "--output", str(out), "--no-wait")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "the output file is not UTF-8 text" in result.stderr and "Traceback" not in result.stderr
