"""Fixtures of the board tests: the built files (once per run) and a board started on them."""

from __future__ import annotations

import pytest

from ._board import MODEL_FAILED, Board, build


@pytest.fixture(scope="session")
def board_dist(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dist") / "sealtoken-rp2")


@pytest.fixture
def board(board_dist, tmp_path):
    """A fresh board (blank flash), stopped after the test; a callback that failed in it fails the test."""
    b = Board(board_dist, tmp_path / "board").start()
    try:
        yield b
    finally:
        stderr = b.stop()
        # pytest shows this only when the test failed: what the board printed, for a rare failure
        print("board stderr (last 3000 characters):\n" + stderr[-3000:])
    assert MODEL_FAILED not in stderr, stderr[-3000:]
