"""The library's loggers, which do not import `logging` on the way to a device.

`import logging` (with traceback, string and textwrap behind it) costs more start-up time than
a whole FIDO2 exchange over PC/SC (benchmarks/bench_generate.py), and `generate` on a smartcard
needs nothing else from it. Until some code imports `logging`, nothing can have given it a
handler or lowered a level, so a debug or info line would be dropped there anyway: such lines
are dropped here without loading it. A warning or error loads it and goes where `logging` sends
it. Once `logging` is loaded (by the CLI at --debug, by a client library, by an application),
every line goes to `logging.getLogger(name)` as usual.

Modules that run only where `logging` is loaded anyway (the verifier service) use it directly.
"""

from __future__ import annotations

import sys

DEBUG = 10  # the levels of `logging`
INFO = 20
WARNING = 30
ERROR = 40


class Logger:
    """`logging.getLogger(name)`, reached only when a line can go somewhere. Records name the
    code that logged (stacklevel), as a logging.Logger's would."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def _target(self, level: int):
        if level < WARNING and "logging" not in sys.modules:
            return None
        import logging  # loaded (or being loaded by another thread: this waits for it), or a warning

        return logging.getLogger(self.name)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (the name logging.Logger gives it)
        target = self._target(level)
        return target is not None and target.isEnabledFor(level)

    def _send(self, level: int, msg: str, args, kwargs) -> None:
        target = self._target(level)
        if target is not None:
            # the caller of debug() / info() / ... , two frames above this one
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 2
            target.log(level, msg, *args, **kwargs)

    def log(self, level: int, msg: str, *args, **kwargs) -> None:
        self._send(level, msg, args, kwargs)

    def debug(self, msg: str, *args, **kwargs) -> None:
        self._send(DEBUG, msg, args, kwargs)

    def info(self, msg: str, *args, **kwargs) -> None:
        self._send(INFO, msg, args, kwargs)

    def warning(self, msg: str, *args, **kwargs) -> None:
        self._send(WARNING, msg, args, kwargs)

    def error(self, msg: str, *args, **kwargs) -> None:
        self._send(ERROR, msg, args, kwargs)


def get_logger(name: str) -> Logger:
    return Logger(name)
