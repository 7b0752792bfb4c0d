"""Serving the HTTP API with one process or several (`sealcodes verifier serve --workers N`).

One process (`run_server`): uvicorn on a socket bound beforehand. Several (`Supervisor`): the
supervising process binds the socket, then starts N workers (spawned: fresh interpreters) that
share it; the kernel hands each new connection to one of them. Each worker builds its own app from
the configuration the supervisor passes: `target(config)` returns the ASGI app and a reload
function. They share nothing but the database (and, for /metrics, a directory of figures:
metrics.py), exactly as servers on several hosts do.

Signals (the supervisor passes them on to its workers; one process handles them itself):

    SIGTERM, SIGINT  stop accepting, let the requests in flight finish (at most `grace_s`), exit 0
    SIGHUP           reload: every process re-reads its configuration (the policy and rate limits
                     from the database, the pepper files); a reload that fails keeps the running one

A worker that dies is replaced (after a pause that grows while workers die young); a worker whose
supervisor is gone stops by itself. Under systemd (Type=notify), READY=1 is sent once every worker
answers, and STOPPING=1 when a stop begins.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("sealcodes.verifier.server")

#: how long requests in flight may take to finish after SIGTERM
GRACE_S = 25.0
#: a worker that ran this long before it died is replaced at once; younger ones after a pause
STEADY_S = 10.0
MAX_RESTART_PAUSE_S = 30.0
#: exit status of a worker that could not build its app (configuration, database)
STARTUP_FAILED = 3


@dataclass(frozen=True)
class ServerOptions:
    """How uvicorn serves (the same in every process)."""

    host: str
    port: int
    certfile: str | None = None
    keyfile: str | None = None
    forwarded_allow_ips: str | None = None
    grace_s: float = GRACE_S
    backlog: int = 2048
    limit_concurrency: int = 1000


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket, bound before any worker starts (a port in use fails here, once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def notify(state: str) -> None:
    """Tell systemd (Type=notify) about the service's state; nothing without $NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode("ascii"), address)


def run_server(app, sock: socket.socket, options: ServerOptions, reload: Callable[[], None] | None = None,
               on_ready: Callable[[], None] | None = None, parent_pid: int | None = None) -> None:
    """Serve `app` on `sock` in this process until SIGTERM or SIGINT; returns once the requests in
    flight are answered. SIGHUP calls `reload` (in a thread of its own)."""
    import uvicorn

    config = uvicorn.Config(
        # asyncio's loop, not uvloop even when installed: its accept() failures (descriptors
        # exhausted) are logged, once a minute (service.RepeatFilter), where libuv drops them unseen
        app, loop="asyncio", log_config=None, log_level=None, access_log=False, lifespan="off", server_header=False,
        limit_concurrency=options.limit_concurrency, timeout_keep_alive=5, backlog=options.backlog,
        timeout_graceful_shutdown=options.grace_s, proxy_headers=bool(options.forwarded_allow_ips),
        forwarded_allow_ips=options.forwarded_allow_ips or "",
        **({"ssl_certfile": options.certfile, "ssl_keyfile": options.keyfile} if options.certfile else {}))
    _graceful_server_class()(config, reload, on_ready, parent_pid).run(sockets=[sock])


def _graceful_server_class():
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, but a stop by signal ends the process normally (exit 0) instead of
        raising the signal again once the requests are answered, and SIGHUP reloads."""

        def __init__(self, config, reload, on_ready, parent_pid):
            super().__init__(config)
            self._reload, self._on_ready, self._parent_pid = reload, on_ready, parent_pid
            self._reloading = threading.Lock()

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handlers = {signal.SIGINT: self.handle_exit, signal.SIGTERM: self.handle_exit,
                        signal.SIGHUP: self._handle_reload}
            original = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

        def _handle_reload(self, sig, frame) -> None:
            if self._reload is not None:
                threading.Thread(target=self._reload_once, name="reload", daemon=True).start()

        def _reload_once(self) -> None:
            with self._reloading:  # one reload at a time; a second SIGHUP waits for the first
                self._reload()

        async def on_tick(self, counter: int) -> bool:
            if self._on_ready is not None and self.started:
                on_ready, self._on_ready = self._on_ready, None
                on_ready()
            if self._parent_pid is not None and counter % 10 == 0 and os.getppid() != self._parent_pid:
                log.warning("the supervising process is gone: stopping")
                self.should_exit = True
            return await super().on_tick(counter)

    return GracefulServer


def _worker_main(target, config, sock: socket.socket, options: ServerOptions, ready, parent_pid: int) -> None:
    """A worker process: build the app from `config`, then serve until told to stop."""
    try:
        app, reload = target(config)
    except Exception as exc:  # the target has logged why, or says it here
        log.error("worker could not start: %s", exc)
        ready.close()
        raise SystemExit(STARTUP_FAILED) from None

    def tell_ready():
        with contextlib.suppress(OSError):
            ready.send(os.getpid())
            ready.close()

    run_server(app, sock, options, reload, tell_ready, parent_pid)


class _Worker:
    def __init__(self, process, ready):
        self.process, self.ready, self.started = process, ready, time.monotonic()
        self.answering = False


class Supervisor:
    """Starts `workers` processes serving `target(config)` on `sock`, keeps that many running,
    passes SIGHUP on, and stops them all gracefully on SIGTERM/SIGINT (`run` returns 0)."""

    def __init__(self, target, config, workers: int, sock: socket.socket, options: ServerOptions,
                 metrics_dir: str | None = None):
        self.target, self.config, self.count, self.sock, self.options = target, config, workers, sock, options
        self.metrics_dir = metrics_dir
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._stopping = False
        self._reload_asked = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._deaths_young = 0

    def _start_one(self) -> _Worker:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_worker_main, name="sealcodes-verifier-worker", args=(
            self.target, self.config, self.sock, self.options, send, os.getpid()))
        process.start()
        send.close()
        return _Worker(process, receive)

    def _signal(self, sig, frame) -> None:
        if sig == signal.SIGHUP:
            self._reload_asked = True
        else:
            self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def run(self, timeout: float = 120.0) -> int:
        """Serve until a stop; 0 after a graceful stop, 1 when the workers could not start."""
        previous = {sig: signal.signal(sig, self._signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            self._workers = [self._start_one() for _ in range(self.count)]
            if not self._wait_ready(timeout):  # a stop while workers were starting is a stop like any other
                return 0 if self._stopping else 1
            notify("READY=1")
            log.info("%d workers answering", len(self._workers))
            self._watch()
            return 0
        finally:
            notify("STOPPING=1")
            # new connections are refused from now on, as by one process that stops (the workers
            # close their copies as they stop accepting)
            self.sock.close()
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _wait_ready(self, timeout: float) -> bool:
        """True once every worker answers; False when one could not start, or a stop came first."""
        deadline = time.monotonic() + timeout
        waiting = {w.ready: w for w in self._workers}
        while waiting and not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("the workers did not start in %.0f s", timeout)
                return False
            for ready in multiprocessing.connection.wait(list(waiting), timeout=min(left, 1.0)):
                worker = waiting.pop(ready)
                try:
                    ready.recv()
                    worker.answering = True
                except (EOFError, OSError):
                    log.error("a worker could not start (exit status %s)", _status(worker.process))
                    return False
        return not self._stopping

    def _watch(self) -> None:
        restart_at: list[float] = []
        while not self._stopping:
            sentinels = [w.process.sentinel for w in self._workers]
            multiprocessing.connection.wait(sentinels + [self._wake_r], timeout=1.0)
            with contextlib.suppress(OSError):
                os.read(self._wake_r, 512)
            if self._stopping:
                return
            if self._reload_asked:
                self._reload_asked = False
                log.info("reloading the configuration of %d workers", len(self._workers))
                for worker in self._workers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.process.pid, signal.SIGHUP)
            for worker in list(self._workers):
                if worker.process.is_alive():
                    continue
                worker.process.join()
                self._gone(worker)
                self._workers.remove(worker)
                young = time.monotonic() - worker.started < STEADY_S
                self._deaths_young = self._deaths_young + 1 if young else 0
                pause = min(MAX_RESTART_PAUSE_S, 2.0 ** self._deaths_young - 1) if young else 0.0
                log.warning("worker %d ended (exit status %s); another starts in %.0f s", worker.process.pid,
                            _status(worker.process), pause)
                restart_at.append(time.monotonic() + pause)
            now = time.monotonic()
            for when in sorted(restart_at):
                if when <= now:
                    restart_at.remove(when)
                    self._workers.append(self._start_one())

    def _gone(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError):
            worker.ready.close()
        if self.metrics_dir and worker.process.pid is not None:
            from .metrics import process_gone

            with contextlib.suppress(OSError):
                process_gone(self.metrics_dir, worker.process.pid)

    def _stop_all(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.options.grace_s + 5.0
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                log.error("worker %d did not stop in time: killed", worker.process.pid)
                worker.process.kill()
                worker.process.join()
            self._gone(worker)


def _status(process) -> str:
    code = process.exitcode
    if code is None:
        return "unknown"
    return f"signal {-code}" if code < 0 else str(code)
