"""The server half of device-bound rotation (docs/spec.md section 14, docs/verifier.md "Who may
change codes"): an account with an active set takes a new set from an import key only with a proof
that verifies under the stored commitment of the active set it names. Proofs here are real Ed25519
signatures made by the library from device responses, as `rotate --verifier-record` makes them;
end to end, `rotate --verifier-record | verifier import` on the emulator and through pcscd + vpcd."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

from _support import run_cli
from _vsupport import TEST_PARAMS, VerifierServer, cheap_policy, code_set
from sealcodes.errors import InvalidInputError
from sealcodes.verifier import Forbidden, Verifier, open_store
from sealcodes.verifier.record import PreviousSet, make_record

LABEL = "github.com/alice"
ALICE_R = [bytes([e + 1]) * 32 for e in range(4)]  # alice's device response for epochs 0..3
OTHER_R = bytes(range(200, 232))  # someone else's device
NEEDS_PROOF = "needs the device's proof"  # a record without a proof
PROOF_FAILS = "the record's proof does not check against the active set's commitment"  # a proof that does not verify


def _record(epoch, response, account="alice", label=LABEL, signer=None, v1=False):
    """The record of (label, epoch) made from `response`; signed by `signer` = (response, label,
    epoch) of the set it replaces, as the host does."""
    codes = code_set(label=label, epoch=epoch, count=3, response=response)
    previous = None if signer is None else PreviousSet(bytearray(signer[0]), signer[1], signer[2])
    return make_record(codes, account=account, params=TEST_PARAMS,
                       response=None if v1 else bytearray(response), previous=previous)


@pytest.fixture
def setup(db_url):
    store = open_store(db_url)
    verifier = Verifier.initialise(store, cheap_policy(delay_base_s=0))
    importer = verifier.check_api_key(verifier.create_api_key("import", "import")[1])
    admin = verifier.check_api_key(verifier.create_api_key("admin", "admin")[1])
    yield verifier, importer, admin
    store.close()


def _active(verifier, account="alice"):
    return [(s.label, s.epoch) for s in verifier.status(account).sets]


def test_a_proven_rotation_is_taken_from_an_import_key(setup):
    verifier, importer, _ = setup
    first = _record(0, ALICE_R[0])
    assert verifier.import_record(first, importer).imported
    stored = verifier.store.active_sets("alice")[0].commitment
    assert stored == first.commitment and len(stored) == 32
    rotated = _record(1, ALICE_R[1], signer=(ALICE_R[0], LABEL, 0))
    result = verifier.import_record(rotated, importer)
    assert result.imported and not result.forced and result.superseded_epochs == (0,)
    assert _active(verifier) == [(LABEL, 1)]
    # and the next one is proven by epoch 1's key, a jump of several epochs included
    assert verifier.import_record(_record(3, ALICE_R[3], signer=(ALICE_R[1], LABEL, 1)), importer).imported
    assert _active(verifier) == [(LABEL, 3)]
    events = [a.event for a in verifier.audit("alice")]
    assert "forced-replace" not in events and events.count("import") == 3


@pytest.mark.parametrize("why, signer, account", [
    ("signed by another device", (OTHER_R, LABEL, 0), "alice"),
    ("signed by the right device for a set it does not hold", (ALICE_R[1], LABEL, 0), "alice"),
    ("names a set the account does not have", (ALICE_R[0], "other-label", 0), "alice"),
])
def test_a_wrong_proof_is_refused(setup, why, signer, account):
    verifier, importer, admin = setup
    verifier.import_record(_record(0, ALICE_R[0]), importer)
    attack = _record(1, OTHER_R, account=account, signer=signer)
    with pytest.raises(Forbidden, match=PROOF_FAILS):
        verifier.import_record(attack, importer)
    assert _active(verifier) == [(LABEL, 0)]
    assert verifier.import_record(attack, admin).forced  # an admin may still force it, audited


def test_a_stale_proof_is_refused(setup):
    """A proof by epoch 0's key, once epoch 1 replaced it, proves nothing."""
    verifier, importer, _ = setup
    verifier.import_record(_record(0, ALICE_R[0]), importer)
    verifier.import_record(_record(1, ALICE_R[1], signer=(ALICE_R[0], LABEL, 0)), importer)
    stale = _record(2, OTHER_R, signer=(ALICE_R[0], LABEL, 0))
    with pytest.raises(Forbidden, match=PROOF_FAILS) as refused:
        verifier.import_record(stale, importer)
    assert "needs the device's proof" not in str(refused.value)  # it has one: it does not check
    assert _active(verifier) == [(LABEL, 1)]
    # audited as before, with the key id
    assert [a.detail for a in verifier.audit("alice") if a.event == "forbidden"] == [
        f"key {importer.key_id} (import): rotate without proof"]


def test_a_proof_of_another_account_is_refused(setup):
    """Alice's device signs a record for bob's account: bob's set's commitment does not verify it."""
    verifier, importer, _ = setup
    verifier.import_record(_record(0, ALICE_R[0]), importer)
    verifier.import_record(_record(0, OTHER_R, account="bob"), importer)
    for_bob = _record(1, ALICE_R[1], account="bob", signer=(ALICE_R[0], LABEL, 0))
    with pytest.raises(Forbidden, match=PROOF_FAILS):
        verifier.import_record(for_bob, importer)
    # and alice's genuine proof with the account changed afterwards no longer verifies
    moved = dataclasses.replace(_record(1, ALICE_R[1], signer=(ALICE_R[0], LABEL, 0)), account="bob")
    with pytest.raises(Forbidden, match=PROOF_FAILS):
        verifier.import_record(moved, importer)
    assert _active(verifier, "bob") == [(LABEL, 0)]


def test_a_proven_record_changed_in_transit_is_refused(setup):
    verifier, importer, _ = setup
    verifier.import_record(_record(0, ALICE_R[0]), importer)
    genuine = _record(1, ALICE_R[1], signer=(ALICE_R[0], LABEL, 0))
    attackers = _record(1, OTHER_R)  # the attacker's codes under the genuine proof
    swapped = dataclasses.replace(attackers, commitment=attackers.commitment, proof=genuine.proof)
    with pytest.raises(Forbidden, match=PROOF_FAILS):
        verifier.import_record(swapped, importer)


def test_an_epoch_jump_without_proof_is_refused(setup):
    verifier, importer, _ = setup
    verifier.import_record(_record(0, ALICE_R[0]), importer)
    with pytest.raises(Forbidden, match=NEEDS_PROOF):
        verifier.import_record(_record(2**32 - 1, OTHER_R), importer)
    assert verifier.import_record(_record(1, ALICE_R[1], signer=(ALICE_R[0], LABEL, 0)), importer).imported


def test_a_v1_set_is_replaced_only_by_force(setup):
    """A record v1 set has no commitment: nothing can prove a rotation of it."""
    verifier, importer, admin = setup
    verifier.import_record(_record(0, ALICE_R[0], v1=True), importer)
    assert verifier.store.active_sets("alice")[0].commitment is None
    proven = _record(1, ALICE_R[1], signer=(ALICE_R[0], LABEL, 0))
    with pytest.raises(Forbidden, match=PROOF_FAILS):
        verifier.import_record(proven, importer)
    result = verifier.import_record(proven, admin)
    assert result.forced and result.superseded_epochs == (0,)
    assert [a.detail for a in verifier.audit("alice") if a.event == "forced-replace"] == [
        f"key {admin.key_id}: epoch 0 -> 1, without the device's proof"]


def test_a_second_label_needs_a_proof_from_an_active_set(setup):
    verifier, importer, _ = setup
    verifier.import_record(_record(0, ALICE_R[0]), importer)
    unproven = _record(0, OTHER_R, label="vpn")
    with pytest.raises(Forbidden, match=NEEDS_PROOF):
        verifier.import_record(unproven, importer)
    proven = _record(0, ALICE_R[2], label="vpn", signer=(ALICE_R[0], LABEL, 0))
    assert verifier.import_record(proven, importer).imported
    assert sorted(_active(verifier)) == [(LABEL, 0), ("vpn", 0)]


def test_a_label_is_replaced_only_by_its_own_sets_proof(setup):
    """docs/spec.md 14.4: the holder of another label's device adds labels, but replaces none."""
    verifier, importer, _ = setup
    verifier.import_record(_record(0, ALICE_R[0]), importer)
    verifier.import_record(_record(0, ALICE_R[2], label="vpn", signer=(ALICE_R[0], LABEL, 0)), importer)
    by_vpn = _record(1, OTHER_R, signer=(ALICE_R[2], "vpn", 0))
    with pytest.raises(Forbidden, match=PROOF_FAILS):
        verifier.import_record(by_vpn, importer)
    assert sorted(_active(verifier)) == [(LABEL, 0), ("vpn", 0)]
    assert verifier.import_record(_record(1, ALICE_R[1], signer=(ALICE_R[0], LABEL, 0)), importer).imported


def test_a_proven_rotation_over_http(tmp_path):
    url = "sqlite:///" + str(tmp_path / "v.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy())
    _, key = verifier.create_api_key("portal", "import", "alice")
    server = VerifierServer(url).start()
    try:
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"}) as client:
            assert client.post("/v1/records", json=_record(0, ALICE_R[0]).to_dict()).status_code == 201
            refused = client.post("/v1/records", json=_record(1, OTHER_R, signer=(OTHER_R, LABEL, 0)).to_dict())
            assert refused.status_code == 403 and PROOF_FAILS in refused.json()["message"]
            proven = client.post("/v1/records", json=_record(1, ALICE_R[1], signer=(ALICE_R[0], LABEL, 0)).to_dict())
            assert proven.status_code == 201
            assert proven.json() == {"account": "alice", "label": LABEL, "epoch": 1, "imported": True,
                                     "superseded_epochs": [0], "forced": False}
    finally:
        server.stop()
        store.close()


PIN = "rotation-pin-1"


def test_a_first_set_at_the_last_epoch_locks_no_label(setup):
    """The review: an import key's first set at epoch 2^32-1 made every later epoch of that account
    and label "older", refused for everyone, an admin included. Now an admin's forced replacement
    may import an older epoch never used (audited); the owner's proven rotations go on from there."""
    verifier, importer, admin = setup
    top = 2**32 - 1
    assert verifier.import_record(_record(top, OTHER_R), importer).imported  # the squatter's first set
    own = _record(2, ALICE_R[2])
    with pytest.raises(Forbidden, match=NEEDS_PROOF):
        verifier.import_record(own, importer)
    result = verifier.import_record(own, admin)
    assert result.forced and result.superseded_epochs == (top,)
    forced = [a.detail for a in verifier.audit("alice") if a.event == "forced-replace"]
    assert forced == [f"key {admin.key_id}: epoch {top} -> 2, without the device's proof"]
    # the owner rotates with the device, from an import key, as usual
    assert verifier.import_record(_record(3, ALICE_R[3], signer=(ALICE_R[2], LABEL, 2)), importer).imported
    assert _active(verifier) == [(LABEL, 3)]
    # an epoch already used is never imported again, whoever asks
    with pytest.raises(InvalidInputError, match="already imported with other codes"):
        verifier.import_record(_record(top, ALICE_R[0]), admin)
    # the squatter revoked first: the label has no active set, and its newest epoch is the last one
    verifier.revoke("alice")
    again = _record(1, ALICE_R[1])
    with pytest.raises(InvalidInputError, match=f"already at epoch {top}; epoch 1 is older: only a forced "):
        verifier.import_record(again, importer)
    result = verifier.import_record(again, admin)
    assert result.forced and result.superseded_epochs == ()
    assert [a.detail for a in verifier.audit("alice") if a.event == "forced-replace"][-1] == (
        f"key {admin.key_id}: epoch none of this label -> 1, below the label's epoch {top}, never imported before")


def _end_to_end(device, tmp_path, restart=None):
    env = {"SEALCODES_VERIFIER_DB": "sqlite:///" + str(tmp_path / "v.db")}
    assert run_cli("verifier", "init", env=env).returncode == 0  # the default Argon2id shape
    assert run_cli("enroll", "--device", device, input=PIN + "\n").returncode == 0
    first = run_cli("generate", LABEL, "--verifier-record", "--account", "alice", input=PIN + "\n")
    assert run_cli("verifier", "import", "-", input=first.stdout, env=env).returncode == 0
    for epoch in (1, 2):
        if restart is not None:
            restart()
        rotated = run_cli("rotate", LABEL, "--verifier-record", "--account", "alice", input=PIN + "\n")
        assert rotated.returncode == 0, rotated.stderr
        imported = run_cli("verifier", "import", "-", input=rotated.stdout, env=env)  # no --force
        assert imported.returncode == 0, imported.stderr
        assert f"epoch {epoch}: 10 codes; superseded epoch {epoch - 1}" in imported.stdout
        assert "forced" not in imported.stdout
    codes = json.loads(run_cli("generate", LABEL, "--json", input=PIN + "\n").stdout)["codes"]
    assert run_cli("verifier", "verify", "alice", input=codes[0] + "\n", env=env).returncode == 0
    audit = run_cli("verifier", "audit", "alice", env=env).stdout
    assert "forced-replace" not in audit and audit.count("\timport\t") == 3


def test_rotate_then_import_end_to_end_on_the_emulator(isolated_dirs, tmp_path):
    _end_to_end("emulator", tmp_path)


@pytest.mark.pcsc
def test_rotate_then_import_end_to_end_through_vpcd(vpcd_token, isolated_dirs, tmp_path):
    _end_to_end(vpcd_token.reader, tmp_path, restart=vpcd_token.restart)
