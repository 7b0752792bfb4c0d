"""Break-glass login through real PAM: pamtester -> pam_exec.so expose_authtok ->
`sealcodes verifier pam`, against a local SQLite store and against a `verifier serve` URL.
The test installs its own service file into /etc/pam.d (needs root, as CI runs) and removes it.

The account is a user of the system (`daemon`, on every Debian system): the helper refuses a
PAM_USER the system does not name exactly so (docs/verifier.md, "PAM")."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from _support import console_script
from _vsupport import VerifierServer, cheap_policy, code_set, free_privileged_port, record_for
from sealcodes.verifier import Verifier, open_store

#: a user of every Debian system
USER = "daemon"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("pamtester") is None
                                or not os.path.isdir("/etc/pam.d"),
                                reason="needs root, /etc/pam.d and pamtester (scripts/setup.sh --test)")


@pytest.fixture
def pam_service(tmp_path):
    """Install /etc/pam.d/<name> with the given sealcodes arguments; removed after the test."""
    name = f"sealcodes-test-{uuid.uuid4().hex[:10]}"
    path = f"/etc/pam.d/{name}"
    log = tmp_path / "pam.log"

    def install(*group_args, pam_args=()):
        command = " ".join([console_script("sealcodes"), "verifier", *group_args, "pam", *pam_args])
        with open(path, "w") as handle:
            handle.write(f"auth required pam_exec.so expose_authtok quiet log={log} {command}\n"
                         "account required pam_permit.so\n")
        return name

    yield install, log
    if os.path.exists(path):
        os.unlink(path)


def pamtester(service, user, password):
    return subprocess.run(["pamtester", service, user, "authenticate"], input=password + "\n", text=True,
                          capture_output=True, timeout=60)


@pytest.fixture
def local_db(tmp_path):
    url = "sqlite:///" + str(tmp_path / "verifier.db")
    store = open_store(url)
    verifier = Verifier.initialise(store, cheap_policy(max_failures=3, delay_base_s=0))
    codes = code_set(count=3)
    verifier.import_record(record_for(codes, account=USER))
    yield url, verifier, codes
    store.close()


def test_pam_local_store(pam_service, local_db):
    install, log = pam_service
    url, verifier, codes = local_db
    service = install("--db", url)
    assert pamtester(service, USER, codes.codes[0]).returncode == 0
    assert pamtester(service, USER, codes.codes[0]).returncode != 0  # spent
    assert pamtester(service, USER, codes.codes[1].lower().replace("-", "")).returncode == 0
    assert pamtester(service, "someone-else", codes.codes[2]).returncode != 0  # another user's code
    assert pamtester(service, USER, "").returncode != 0
    assert pamtester(service, USER, "x" * 1000).returncode != 0
    assert verifier.status(USER).remaining == 1
    text = log.read_text()
    assert "accepted" in text and all(code not in text for code in codes.codes)


def test_pam_lockout(pam_service, local_db):
    install, _ = pam_service
    url, verifier, codes = local_db
    service = install("--db", url)
    for wrong in code_set(label="guess").codes[:3]:
        assert pamtester(service, USER, wrong).returncode != 0
    assert verifier.status(USER).locked
    assert pamtester(service, USER, codes.codes[0]).returncode != 0


def test_pam_fails_closed_without_store(pam_service, tmp_path):
    install, log = pam_service
    service = install("--db", "sqlite:///" + str(tmp_path / "missing.db"))
    assert pamtester(service, USER, code_set().codes[0]).returncode != 0
    assert not (tmp_path / "missing.db").exists()
    assert "refused" in log.read_text()
    service = install("--db", f"postgresql://postgres@/postgres?host={tmp_path}")
    assert pamtester(service, USER, code_set().codes[0]).returncode != 0


def test_pam_through_the_http_service(pam_service, local_db, tmp_path):
    install, log = pam_service
    url, verifier, codes = local_db
    _, key = verifier.create_api_key("pam", "verify")
    key_file = tmp_path / "api-key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    bad_key = tmp_path / "bad-key"
    bad_key.write_text("sck_000000000000_wrong\n")
    server = VerifierServer(url, port=free_privileged_port()).start()  # plain http: a port only root may take
    try:
        service = install(pam_args=("--url", server.base, "--api-key-file", str(key_file)))
        assert pamtester(service, USER, codes.codes[2]).returncode == 0
        assert pamtester(service, USER, codes.codes[2]).returncode != 0
        wrong_key = install(pam_args=("--url", server.base, "--api-key-file", str(bad_key)))
        assert pamtester(wrong_key, USER, codes.codes[1]).returncode != 0
    finally:
        server.stop()
    # the verifier is gone: no login
    service = install(pam_args=("--url", server.base, "--api-key-file", str(key_file)))
    assert pamtester(service, USER, codes.codes[1]).returncode != 0
    assert "unreachable" in log.read_text()
    assert verifier.status(USER).remaining == 2


def test_pam_user_must_be_the_systems_name_of_the_user(pam_service, local_db):
    """The review: the verifier folded PAM_USER (NFKC) while the system matched it as given, so a
    login as `ｄaemon` (full-width) spent daemon's codes; and an account that is no user of the
    system took a login. Both are refused before any code is checked."""
    install, log = pam_service
    url, verifier, codes = local_db
    verifier.import_record(record_for(code_set(label="ghost", count=2), account="breakglass-no-such-user"))
    ghost = code_set(label="ghost", count=2).codes[0]
    service = install("--db", url)
    assert pamtester(service, "\uff44aemon", codes.codes[0]).returncode != 0
    assert pamtester(service, "breakglass-no-such-user", ghost).returncode != 0
    text = log.read_text()
    assert "PAM_USER is not an account name in normal form" in text
    assert "PAM_USER is not a user of this system" in text
    assert verifier.status(USER).remaining == 3 and verifier.status("breakglass-no-such-user").remaining == 2
    assert pamtester(service, USER, codes.codes[0]).returncode == 0
