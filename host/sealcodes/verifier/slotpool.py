"""One pool of hash slots shared by the server's processes, which a killed process cannot leak.

`serve --workers N` runs N processes, and the kernel hands each connection to one of them, so the
attempts of a moment sit unevenly on the processes. Slots of each process's own would leave a CPU
idle while attempts queue in the other process (or, made larger to avoid that, run more Argon2id
hashes at once than there are CPUs, which then contend for the cache). One pool of `size` slots
for all processes has neither problem.

A worker can die while it holds a slot (SIGKILL, the OOM killer). A POSIX or `multiprocessing`
semaphore would lose that slot for good, and a server that has lost every slot answers "busy"
forever. A System V semaphore taken with SEM_UNDO does not: when a process ends, however it ends,
the kernel gives back what it held (semop(2), "SEM_UNDO"). Threads share their process's undo
record, and a forked child starts without one, so only the holder's own end gives slots back.

The set is created private (IPC_PRIVATE, mode 0600) by the supervising process and removed by it
when it stops; a worker that outlives its supervisor removes it (see `SharedSlots.remove`).
Linux only: elsewhere, or where the kernel refuses System V IPC, `create` raises `SlotPoolError`
and the server keeps slots per process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys
import time

# <sys/ipc.h>, <sys/sem.h> (Linux, every architecture)
IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_NOWAIT = 0o4000
IPC_RMID = 0
GETNCNT = 14
GETVAL = 12
SEM_UNDO = 0x1000
MODE_OWNER_ONLY = 0o600
#: the largest value a System V semaphore holds (SEMVMX)
MAX_SLOTS = 32767


class SlotPoolError(OSError):
    """The shared pool cannot be made or used here (not Linux, System V IPC refused, removed)."""


class _SemBuf(ctypes.Structure):
    _fields_ = [("sem_num", ctypes.c_ushort), ("sem_op", ctypes.c_short), ("sem_flg", ctypes.c_short)]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc = None


def _c_library():
    global _libc
    if _libc is None:
        if not sys.platform.startswith("linux"):
            raise SlotPoolError(errno.ENOSYS, "a shared pool of hash slots needs Linux")
        library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        library.semget.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.semtimedop.argtypes = [ctypes.c_int, ctypes.POINTER(_SemBuf), ctypes.c_size_t,
                                       ctypes.POINTER(_TimeSpec)]
        library.semctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        _libc = library
    return _libc


def _failed(what: str) -> SlotPoolError:
    number = ctypes.get_errno()
    return SlotPoolError(number, f"{what}: {os.strerror(number)}")


class SharedSlots:
    """A counting semaphore of `size` slots for every process that has it (pickled to a spawned
    worker, it names the same kernel object). `acquire`/`release` as `threading.Semaphore`'s."""

    def __init__(self, ident: int, size: int):
        self.ident, self.size = ident, size

    def __reduce__(self):
        return SharedSlots, (self.ident, self.size)

    @classmethod
    def create(cls, size: int) -> "SharedSlots":
        if not 1 <= size <= MAX_SLOTS:
            raise ValueError(f"a pool holds 1 to {MAX_SLOTS} slots")
        libc = _c_library()
        ident = libc.semget(IPC_PRIVATE, 1, IPC_CREAT | MODE_OWNER_ONLY)
        if ident < 0:
            raise _failed("cannot create the shared hash slots")
        pool = cls(ident, size)
        # filled without SEM_UNDO: these slots belong to the pool, not to the process that made it
        if pool._operate(size, 0, None) is not True:
            error = _failed("cannot fill the shared hash slots")
            pool.remove()
            raise error
        return pool

    def _operate(self, change: int, flags: int, timeout: float | None) -> bool:
        """One semop of `change`; False when `timeout` (seconds) ran out first."""
        libc = _c_library()
        operation = _SemBuf(0, change, flags)
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            if deadline is None:
                limit = None
            else:
                left = max(0.0, deadline - time.monotonic())
                limit = ctypes.pointer(_TimeSpec(int(left), int((left - int(left)) * 1e9)))
            if libc.semtimedop(self.ident, ctypes.byref(operation), 1, limit) == 0:
                return True
            number = ctypes.get_errno()
            if number == errno.EINTR:  # a signal for this process: semtimedop is never restarted
                continue
            if number == errno.EAGAIN:
                return False
            raise SlotPoolError(number, f"the shared hash slots: {os.strerror(number)}")

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a slot; False when none came free within `timeout` seconds (None: wait for one)."""
        return self._operate(-1, SEM_UNDO | (0 if blocking else IPC_NOWAIT), timeout if blocking else None)

    def release(self) -> None:
        """Give back a slot this process took (SEM_UNDO again: the kernel's record of it is cleared).
        A pool removed meanwhile (the server stopping) has nothing left to give back to."""
        try:
            self._operate(1, SEM_UNDO, None)
        except SlotPoolError as exc:
            if exc.errno not in (errno.EINVAL, errno.EIDRM):
                raise

    def _read(self, command: int) -> int:
        value = _c_library().semctl(self.ident, 0, command)
        if value < 0:
            raise _failed("cannot read the shared hash slots")
        return value

    def free(self) -> int:
        """Slots free now (for tests and figures: it may change at once)."""
        return self._read(GETVAL)

    def waiting(self) -> int:
        """Attempts of every process waiting for a slot now (for tests and figures)."""
        return self._read(GETNCNT)

    def remove(self) -> None:
        """Remove the pool from the kernel (processes waiting on it get SlotPoolError). Removing one
        already removed is not an error: a supervisor and an orphaned worker may both try."""
        if _c_library().semctl(self.ident, 0, IPC_RMID) < 0 and ctypes.get_errno() not in (errno.EINVAL, errno.EIDRM):
            raise _failed("cannot remove the shared hash slots")
