"""The HTTP JSON API over real HTTP: a `sealcodes verifier serve` process (uvicorn) on
127.0.0.1, on SQLite and on a real PostgreSQL; clients are httpx."""

from __future__ import annotations

import json
import pathlib
import threading
import uuid

import httpx
import pytest

from _vsupport import VerifierServer, code_set, record_for
from sealcodes.verifier import Policy, Verifier, open_store

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _prepare(url, max_failures=10):
    store = open_store(url)
    verifier = Verifier.initialise(store, Policy(max_failures=max_failures, delay_base_s=0))
    _, key = verifier.create_api_key("tests")
    return store, verifier, key


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    """One server per store for the module; each test uses its own account."""
    if request.param == "sqlite":
        db_url = "sqlite:///" + str(tmp_path_factory.mktemp("served") / "verifier.db")
    else:
        db_url = request.getfixturevalue("postgres").fresh_url()
    store, verifier, key = _prepare(db_url, max_failures=4)
    server = VerifierServer(db_url).start()
    client = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    yield server, client, verifier
    client.close()
    log = server.stop()
    store.close()
    assert "Traceback" not in log


@pytest.fixture
def alice():
    return f"alice-{uuid.uuid4().hex[:12]}"


def test_import_verify_status_revoke(served, alice):
    server, client, _ = served
    codes = code_set(count=3)
    record = record_for(codes, account=alice).to_dict()
    created = client.post("/v1/records", json=record)
    assert created.status_code == 201 and created.json()["imported"] is True
    assert client.post("/v1/records", json=record).status_code == 200
    ok = client.post("/v1/verify", json={"account": alice, "code": codes.codes[1].lower()})
    assert ok.status_code == 200
    assert ok.json() == {"result": "accepted", "label": "github.com/alice", "epoch": 0, "code_number": 2,
                         "remaining": 2}
    assert client.post("/v1/verify", json={"account": alice, "code": codes.codes[1]}).json() == {"result": "rejected"}
    assert client.post("/v1/verify", json={"account": alice, "code": "ABCD"}).json() == {"result": "mistyped"}
    status = client.get(f"/v1/accounts/{alice}").json()
    assert (status["remaining"], status["locked"], status["sets"][0]["fingerprint"]) == (2, False, codes.fingerprint)
    assert client.post(f"/v1/accounts/{alice}/revoke", json={}).json() == {
        "revoked": [{"label": "github.com/alice", "epoch": 0}]}
    assert client.post("/v1/verify", json={"account": alice, "code": codes.codes[0]}).json()["result"] == "rejected"


def test_lockout_over_http(served, alice):
    _, client, verifier = served
    codes = code_set(count=2)
    client.post("/v1/records", json=record_for(codes, account=alice).to_dict())
    wrong = code_set(label="x").codes
    answers = [client.post("/v1/verify", json={"account": alice, "code": c}).json()["result"] for c in wrong[:4]]
    assert answers == ["rejected", "rejected", "rejected", "locked"]
    assert client.post("/v1/verify", json={"account": alice, "code": codes.codes[0]}).json() == {"result": "locked"}
    verifier.unlock(alice)
    assert client.post("/v1/verify", json={"account": alice, "code": codes.codes[0]}).json()["result"] == "accepted"


def test_api_key_required(served):
    server, client, verifier = served
    assert httpx.get(server.base + "/v1/health").json() == {"status": "ok"}
    for headers in ({}, {"Authorization": "Bearer sck_000000000000_nope"}, {"Authorization": "Basic abc"}):
        answer = httpx.post(server.base + "/v1/verify", json={"account": "a", "code": "b"}, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"
    key_id, token = verifier.create_api_key("short-lived")
    assert httpx.get(server.base + "/v1/accounts/a", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    verifier.revoke_api_key(key_id)
    assert httpx.get(server.base + "/v1/accounts/a", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("path, body, headers, status, error", [
    ("/v1/verify", b"{not json", {"Content-Type": "application/json"}, 400, "invalid_json"),
    ("/v1/verify", b'["a"]', {"Content-Type": "application/json"}, 400, "invalid_input"),
    ("/v1/verify", b'{"account": "a"}', {"Content-Type": "application/json"}, 400, "invalid_input"),
    ("/v1/verify", b'{"account": "a", "code": 5}', {"Content-Type": "application/json"}, 400, "invalid_input"),
    ("/v1/verify", b'{"account": "a", "code": "b", "x": 1}', {"Content-Type": "application/json"}, 400, "invalid_input"),
    ("/v1/verify", b'{"account": "a\\u0007", "code": "b"}', {"Content-Type": "application/json"}, 400, "invalid_input"),
    ("/v1/verify", b'{"account": "a", "code": "b"}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    ("/v1/verify", b'{"account": "a", "code": "' + b"A" * 4000 + b'"}', {"Content-Type": "application/json"}, 413,
     "too_large"),
    ("/v1/records", b'{"type": "x"}', {"Content-Type": "application/json"}, 400, "invalid_input"),
    ("/v1/records", b"[" * 100000, {"Content-Type": "application/json"}, 413, "too_large"),
    ("/v1/records", b"[" * 60000, {"Content-Type": "application/json"}, 400, "invalid_json"),
    ("/v1/nothing", b"{}", {"Content-Type": "application/json"}, 404, "not_found"),
])
def test_bad_input_gets_a_json_4xx(served, path, body, headers, status, error):
    _, client, _ = served
    answer = client.post(path, content=body, headers=headers)
    assert answer.status_code == status and answer.json()["error"] == error
    assert "Traceback" not in answer.text


def test_oversized_body_without_length_is_cut(served):
    _, client, _ = served

    def chunks():
        for _ in range(200):
            yield b"A" * 1024

    answer = client.post("/v1/records", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


def test_wrong_method_and_schema(served):
    server, client, _ = served
    assert client.get("/v1/verify").status_code == 405
    schema = httpx.get(server.base + "/v1/openapi.json").json()
    assert schema == json.loads((ROOT / "docs" / "verifier-api.json").read_text())
    assert set(schema["paths"]) >= {"/v1/records", "/v1/verify", "/v1/accounts/{account}"}


def test_hundred_concurrent_http_attempts_one_success(served, alice):
    _, client, _ = served
    codes = code_set(count=2)
    client.post("/v1/records", json=record_for(codes, account=alice).to_dict())
    barrier = threading.Barrier(100)
    results = []

    def attempt():
        with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=60) as own:
            barrier.wait()
            results.append(own.post("/v1/verify", json={"account": alice, "code": codes.codes[0]}).json()["result"])

    threads = [threading.Thread(target=attempt) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 100 and results.count("accepted") == 1 and set(results) == {"accepted", "rejected"}


def test_two_servers_share_one_postgresql(postgres):
    url = postgres.fresh_url()
    store, verifier, key = _prepare(url)
    codes = code_set(count=2)
    verifier.import_record(record_for(codes))
    first, second = VerifierServer(url).start(), VerifierServer(url).start()
    try:
        headers = {"Authorization": f"Bearer {key}"}
        body = {"account": "alice", "code": codes.codes[0]}
        assert httpx.post(first.base + "/v1/verify", json=body, headers=headers).json()["result"] == "accepted"
        assert httpx.post(second.base + "/v1/verify", json=body, headers=headers).json()["result"] == "rejected"
        body["code"] = codes.codes[1]
        assert httpx.post(second.base + "/v1/verify", json=body, headers=headers).json()["result"] == "accepted"
    finally:
        first.stop()
        second.stop()
        store.close()


def test_database_gone_is_503(tmp_path, postgres):
    url = postgres.fresh_url()
    store, _, key = _prepare(url)
    store.close()
    server = VerifierServer(url).start()
    try:
        import psycopg

        schema = url.rsplit("search_path%3D", 1)[1]
        with psycopg.connect(postgres.url(), autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")
        answer = httpx.post(server.base + "/v1/verify", json={"account": "a", "code": "b"},
                            headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 503 and answer.json()["error"] == "unavailable"
    finally:
        server.stop()
