"""keyring.py without devices: envelopes authenticate, Shamir hides with k-1 and reconstructs with k."""

from __future__ import annotations

import itertools
import json
import os

import pytest

from sealcodes import keyring as kr
from sealcodes.errors import InvalidInputError

DEVICES = [{"backend": "applet", "serial": "0A", "slot": 1}, {"backend": "fido2", "credential_id": "QQ", "uv": False},
           {"backend": "ykoath", "serial": "7"}, {"backend": "yubiotp", "serial": "7", "slot": 2}]


def make(threshold=1, n=3):
    answers = [os.urandom(20 if d["backend"] == "yubiotp" else 32) for d in DEVICES[:n]]
    seed = kr.new_seed()
    keyring = kr.create("home", DEVICES[:n], answers, threshold=threshold, seed=seed)
    return keyring, answers, bytes(seed)


def open_all(keyring, answers, ids):
    return {m: kr.open_member(keyring, keyring.member(m), answers[m - 1]) for m in ids}


@pytest.mark.parametrize("threshold,n", [(1, 2), (1, 3), (2, 3), (3, 3), (2, 4), (3, 4), (4, 4)])
def test_any_k_members_reconstruct_the_seed(threshold, n):
    keyring, answers, seed = make(threshold, n)
    for subset in itertools.permutations(range(1, n + 1), threshold):
        assert bytes(kr.recover_seed(keyring, open_all(keyring, answers, subset))) == seed


@pytest.mark.parametrize("threshold,n", [(2, 3), (3, 4)])
def test_fewer_than_k_members_are_refused(threshold, n):
    keyring, answers, _ = make(threshold, n)
    with pytest.raises(kr.KeyringError, match=f"needs {threshold} members"):
        kr.recover_seed(keyring, open_all(keyring, answers, range(1, threshold)))


def test_every_byte_of_every_envelope_is_authenticated():
    keyring, answers, _ = make(2, 3)
    for member in keyring.members:
        for field in ("nonce", "ciphertext"):
            value = getattr(member, field)
            for position in range(len(value)):
                changed = bytearray(value)
                changed[position] ^= 0x80
                forged = kr.Member(member.member_id, member.device, **{
                    "nonce": member.nonce, "ciphertext": member.ciphertext, field: bytes(changed)})
                with pytest.raises(kr.EnvelopeOpenError, match="does not open"):
                    kr.open_member(keyring, forged, answers[member.member_id - 1])


def test_swapped_member_wrong_answer_other_keyring_other_threshold_refused():
    keyring, answers, _ = make(2, 3)
    one, two = keyring.members[0], keyring.members[1]
    swapped = kr.Member(2, two.device, one.nonce, one.ciphertext)
    with pytest.raises(kr.EnvelopeOpenError):
        kr.open_member(keyring, swapped, answers[0])  # the right device for that envelope, wrong member slot
    with pytest.raises(kr.EnvelopeOpenError):
        kr.open_member(keyring, one, answers[1])  # another member's device
    other_id = kr.Keyring(os.urandom(16), "home", 2, keyring.members)
    with pytest.raises(kr.EnvelopeOpenError):
        kr.open_member(other_id, one, answers[0])
    lowered = kr.Keyring(keyring.keyring_id, "home", 1, keyring.members)
    with pytest.raises(kr.EnvelopeOpenError):
        kr.open_member(lowered, one, answers[0])  # a k-of-n keyring cannot be relabelled 1-of-n


def test_error_text_holds_no_secret():
    keyring, answers, seed = make(1, 2)
    with pytest.raises(kr.EnvelopeOpenError) as info:
        kr.open_member(keyring, keyring.members[0], answers[1])
    text = str(info.value)
    for secret in (seed, answers[0], answers[1]):
        assert secret.hex() not in text.lower()
    assert info.value.__cause__ is None and info.value.__suppress_context__


def _split_one_byte(secret, xs, coefficients):
    stream = iter([bytes([c]) for c in coefficients])
    return kr.split(bytearray([secret]), xs, len(coefficients) + 1, random_bytes=lambda n: next(stream))


def test_one_share_of_two_of_n_reveals_nothing_exhaustive():
    """k = 2: for each observed share, every candidate secret is consistent with exactly one coefficient."""
    for x in (1, 2, 200, 255):
        table = {}
        for secret in range(256):
            for a1 in range(256):
                y = _split_one_byte(secret, [x, 1 if x != 1 else 2], [a1])[x][0]
                table.setdefault(y, []).append(secret)
        assert len(table) == 256
        assert all(sorted(secrets) == list(range(256)) for secrets in table.values())


def test_two_shares_of_three_of_n_reveal_nothing():
    """k = 3: for fixed secrets, the 65536 coefficient pairs map one-to-one onto pairs of shares, so every
    pair of shares is equally likely whatever the secret."""
    xs = [3, 7]
    for secret in (0x00, 0x5A, 0xFF):
        seen = set()
        for a1, a2 in itertools.product(range(256), repeat=2):
            # evaluate through the library's own field arithmetic (same polynomial as split)
            seen.add(tuple(kr.gf_mul(kr.gf_mul(a2, x) ^ a1, x) ^ secret for x in xs))
        assert len(seen) == 65536
    shares = _split_one_byte(0x5A, xs + [9], [0x11, 0x22])
    assert bytes(kr.interpolate({x: shares[x] for x in (3, 7, 9)})) == b"\x5a"


def test_gf_inverse_and_interpolation_at_new_member():
    for a in range(1, 256):
        assert kr.gf_mul(a, kr.gf_inv(a)) == 1
    seed = bytearray(os.urandom(32))
    shares = kr.split(seed, [1, 2, 3, 9], 3)
    assert kr.interpolate({1: shares[1], 2: shares[2], 3: shares[3]}, 9) == shares[9]


def test_added_member_keeps_the_seed_and_every_envelope():
    keyring, answers, seed = make(2, 3)
    new_answer = os.urandom(32)
    grown = kr.add_member(keyring, open_all(keyring, answers, [1, 3]), {"backend": "applet", "serial": "NEW"},
                          new_answer)
    assert [m.member_id for m in grown.members] == [1, 2, 3, 4]
    assert grown.keyring_id == keyring.keyring_id and grown.members[:3] == keyring.members
    assert [(m.nonce, m.ciphertext) for m in grown.members[:3]] == [(m.nonce, m.ciphertext) for m in keyring.members]
    opened = {2: kr.open_member(grown, grown.member(2), answers[1]), 4: kr.open_member(grown, grown.member(4), new_answer)}
    assert bytes(kr.recover_seed(grown, opened)) == seed


def _reseeded(keyring, keep, threshold=None):
    """The keyring re-seeded for `keep`, with fresh answers to the new id's challenges: (keyring, answers, S')."""
    new_id = kr.new_keyring_id()
    new_answers = {m: os.urandom(32) for m in keep}
    new_seed = kr.new_seed()
    return kr.reseed(keyring, keep, new_answers, new_seed, new_id, threshold), new_answers, bytes(new_seed)


def test_reseed_revokes_the_left_member_and_its_old_envelope():
    keyring, answers, seed = make(2, 4)
    reseeded, new_answers, new_seed = _reseeded(keyring, [1, 3, 4])
    assert new_seed != seed and reseeded.keyring_id != keyring.keyring_id
    assert [m.member_id for m in reseeded.members] == [1, 3, 4] and reseeded.retired_max == 4
    assert reseeded.threshold == 2 and reseeded.next_member_id() == 5
    for subset in itertools.combinations([1, 3, 4], 2):
        opened = {m: kr.open_member(reseeded, reseeded.member(m), new_answers[m]) for m in subset}
        assert bytes(kr.recover_seed(reseeded, opened)) == new_seed
    # the left member's old envelope, carried into the new document, does not open (the id is in the AAD)
    old_two = keyring.member(2)
    smuggled = kr.Keyring(reseeded.keyring_id, "home", 2, reseeded.members + (old_two,), retired_max=4)
    with pytest.raises(kr.EnvelopeOpenError):
        kr.open_member(smuggled, old_two, answers[1])
    # its old share with any k - 1 new shares interpolates to something other than S'
    old_share = kr.open_member(keyring, old_two, answers[1])
    for m in (1, 3, 4):
        new_share = kr.open_member(reseeded, reseeded.member(m), new_answers[m])
        assert bytes(kr.interpolate({2: old_share, m: new_share})) not in (new_seed, seed)
    # and the old envelopes of the members left open the OLD seed only
    assert bytes(kr.recover_seed(keyring, open_all(keyring, answers, [1, 3]))) == seed


def test_reseed_threshold_and_id_rules():
    keyring, _, _ = make(3, 3)
    with pytest.raises(InvalidInputError, match="threshold must be 1..2"):
        _reseeded(keyring, [1, 2])
    lowered, _, _ = _reseeded(keyring, [1, 2], threshold=1)
    assert lowered.threshold == 1
    with pytest.raises(InvalidInputError, match="no member"):
        _reseeded(keyring, [])
    with pytest.raises(InvalidInputError, match="new keyring id"):
        kr.reseed(keyring, [1, 2], {1: os.urandom(32), 2: os.urandom(32)}, kr.new_seed(), keyring.keyring_id, 1)


def test_document_round_trip_and_paper_typing_rules():
    keyring, _, _ = make(2, 4)
    assert kr.from_json(kr.to_json(keyring)) == keyring
    paper = kr.to_paper(keyring)
    typed = " ".join(kr.paper_lines(paper)).lower().replace("0", "o").replace("1", "l")
    assert kr.from_paper(typed) == keyring
    assert kr.load_any(paper) == keyring and kr.load_any(kr.to_json(keyring).encode()) == keyring
    wrong = paper[:40] + ("A" if paper[40] != "A" else "B") + paper[41:]
    with pytest.raises(kr.KeyringError, match="mistyped"):
        kr.from_paper(wrong)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(type="x"), "not a sealcodes keyring"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d.update(id="zz"), "id"),
    (lambda d: d.update(threshold=9), "threshold"),
    (lambda d: d.update(threshold=True), "threshold"),
    (lambda d: d.update(members=[]), "members"),
    (lambda d: d["members"].append(dict(d["members"][0])), "twice"),
    (lambda d: d["members"][0].update(envelope="00"), "envelope"),
    (lambda d: d["members"][0].update(nonce=None), "nonce"),
    (lambda d: d["members"][0].update(device={"slot": 1}), "backend"),
    (lambda d: d["members"][0]["device"].update(slot="1"), "slot"),
    (lambda d: d.update(name="a b\x1b[31m"), "name"),
])
def test_malformed_documents_give_one_clear_error(mutate, message):
    keyring, _, _ = make(2, 3)
    doc = kr.to_document(keyring)
    mutate(doc)
    with pytest.raises(kr.KeyringError, match=message) as info:
        kr.from_json(json.dumps(doc))
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


def test_bad_parameters_rejected():
    with pytest.raises(InvalidInputError):
        kr.create("home", DEVICES[:1], [os.urandom(32)])
    with pytest.raises(InvalidInputError):
        kr.create("home", DEVICES[:2], [os.urandom(32)] * 2, threshold=3)
    with pytest.raises(InvalidInputError):
        kr.create("bad name", DEVICES[:2], [os.urandom(32)] * 2)
    with pytest.raises(InvalidInputError):
        kr.create("home", DEVICES[:2], [os.urandom(8)] * 2)
    for bad in ("", "{", "[]", '{"type": "sealcodes-keyring"}', "SCK1", "SCK1!!", "x" * 300000):
        with pytest.raises(kr.KeyringError):
            kr.load_any(bad)
