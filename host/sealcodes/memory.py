"""Keeping secrets out of files: no core dumps, wipe buffers after use."""

from __future__ import annotations

import contextlib


def disable_core_dumps() -> None:
    """RLIMIT_CORE = 0 for this process (docs/security.md item 8). Harmless where unsupported."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def wipe(buffer) -> None:
    """Overwrite a bytearray (or writable memoryview) with zeros in place; other types (immutable
    bytes, None) are left alone. The one wipe of the host."""
    if isinstance(buffer, bytearray):
        buffer[:] = bytes(len(buffer))
    elif isinstance(buffer, memoryview) and not buffer.readonly:
        buffer.cast("B")[:] = bytes(buffer.nbytes)
