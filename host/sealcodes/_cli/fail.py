"""How a command gives up: one clear line for the user and an exit status (no traceback)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1


class CliFail(Exception):
    """One clear line for the user, then exit."""

    def __init__(self, message, exit_code=EXIT_ERROR):
        super().__init__(message)
        self.exit_code = exit_code
