"""Keeping secrets out of files: no core dumps, wipe buffers after use."""

from __future__ import annotations

import contextlib


def disable_core_dumps() -> None:
    """RLIMIT_CORE = 0 for this process (docs/security.md item 8). Harmless where unsupported."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def wipe(buffer) -> None:
    """Overwrite a bytearray (or memoryview) in place; other types are left alone."""
    if isinstance(buffer, (bytearray, memoryview)):
        for i in range(len(buffer)):
            buffer[i] = 0
