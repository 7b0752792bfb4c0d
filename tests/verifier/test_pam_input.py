"""What `sealcodes verifier pam` reads from pam_exec: the code up to NUL or end of line, capped."""

from __future__ import annotations

import io

import pytest

from sealcodes.verifier import pam


@pytest.mark.parametrize("raw, expected", [
    (b"ABCD-EFGH\x00", b"ABCD-EFGH"),
    (b"ABCD\n", b"ABCD"),
    (b"ABCD\r\n", b"ABCD"),
    (b"ABCD", b"ABCD"),
    (b"\x00", b""),
])
def test_read_authtok(raw, expected):
    assert pam.read_authtok(io.BytesIO(raw)) == expected


def test_too_long_and_wrong_phase_refused():
    with pytest.raises(pam.PamRefusal):
        pam.read_authtok(io.BytesIO(b"A" * 300))
    with pytest.raises(pam.PamRefusal):
        pam.pam_user({"PAM_USER": "root", "PAM_TYPE": "account"})
    with pytest.raises(pam.PamRefusal):
        pam.pam_user({})
    assert pam.pam_user({"PAM_USER": "alice", "PAM_TYPE": "auth"}) == "alice"


def test_remote_needs_http_url():
    with pytest.raises(pam.PamRefusal):
        pam.check_remote("file:///etc/passwd", "k", "u", "c")
