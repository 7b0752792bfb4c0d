"""The verifier's HTTP JSON API: a Starlette (ASGI) app, run by uvicorn (`sealcodes verifier serve`,
one process or several: workers.py).

Routes stay thin: take a token from the client address's bucket, check the API key and take one
from its bucket, read and validate the body, call the Verifier with the key's `Principal` (the
Verifier checks the key's scope and account pattern: auth.py), map errors to HTTP in one place
(`_error_response`). The app keeps no state of its own but the rate-limit buckets and its
figures (metrics.py): every answer comes from the database, so several processes and hosts can
serve one database. The schema is written in docs/verifier-api.json (OpenAPI 3.1) and served at
/v1/openapi.json.

    POST /v1/records                 import one verifier record         import, admin  -> 201 / 200
    POST /v1/verify                  {"account", "code"}                verify         -> 200 {"result", ...}
    GET  /v1/accounts/status         ?account=A                         admin          -> 200
    POST /v1/accounts/revoke         {"account", "label"?}              admin          -> 200
    POST /v1/accounts/unlock         {"account"}                        admin          -> 200
    GET  /v1/audit                   ?account=A&limit=N                 admin          -> 200
    GET  /metrics                    Prometheus text format             metrics, admin -> 200
    GET  /v1/health                  alive; no key needed                              -> 200
    GET  /v1/ready                   database reachable, schema current; no key        -> 200 / 503

The account travels in the body or the query, never in the path: accounts often hold `/`.
`replace_verifier(app, verifier)` swaps the configuration (policy, peppers) of a running app:
requests already answering keep the Verifier they started with.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from importlib import resources
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import InvalidInputError
from ..numerals import ascii_int
from .auth import AUDIT, IMPORT, METRICS, REVOKE, STATUS, UNLOCK, VERIFY, Forbidden, Principal
from .core import ACCEPTED, EVENT_ACCOUNT_LOCKED, THROTTLED, Busy, Event, RetiredSet, Verifier, VerifierConfigError
from .ratelimit import InFlight, TokenBuckets, client_key
from .record import DuplicateMemberError, VerifierRecord, load_json
from .store import SCHEMA_VERSION, StoreError

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger("sealcodes.verifier.service")

#: largest body accepted: a record of 100 codes is about 7 KiB
MAX_RECORD_BYTES = 64 * 1024
MAX_VERIFY_BYTES = 2 * 1024
MAX_SMALL_BYTES = 2 * 1024
MAX_ACCOUNT_CHARS = 256
MAX_AUDIT_ROWS = 1000
BUSY_RETRY_AFTER_S = 1
#: seconds a client has to send a request's body once the server reads it (serve --request-timeout)
BODY_TIMEOUT_S = 10.0
#: what /v1/ready answers when it is not ready
NOT_READY_UNREACHABLE = "the verifier database is unreachable"
NOT_READY_SCHEMA = "the verifier database's schema is not this release's: run `sealcodes verifier init`"
#: the /metrics reason of a connection closed after a body that did not come in time
CLOSED_SLOW_BODY = "slow_body"
#: a repeated log message is written once per window, then with a count of those left out
REPEAT_WINDOW_S = 60.0


class HttpError(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers


class RepeatFilter(logging.Filter):
    """Lets a message through once per window (same logger, level and text); the next one after
    the window says how many were left out. Under a flood (a database gone, descriptors exhausted
    at accept) the log grows by a line a minute, not a line per request."""

    def __init__(self, window: float = REPEAT_WINDOW_S, clock=time.monotonic):
        super().__init__()
        self.window, self._clock = window, clock
        self._seen: dict[tuple, list] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg), record.exc_info[0] if record.exc_info else None)
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            record.msg, record.args = f"{record.getMessage()} ({seen[1]} more like this left out)", None
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = [now, 0]
        return True


def quiet_repeats(*logger_names: str) -> None:
    """Put one RepeatFilter on each named logger (once)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter())


def _error_response(exc: Exception) -> JSONResponse:
    """Every failure becomes one JSON object {"error", "message"}; no traceback leaves the server."""
    if isinstance(exc, HttpError):
        return JSONResponse({"error": exc.error, "message": exc.message}, status_code=exc.status, headers=exc.headers)
    if isinstance(exc, Forbidden):
        return JSONResponse({"error": "forbidden", "message": str(exc)}, status_code=403)
    if isinstance(exc, RetiredSet):
        return JSONResponse({"error": "retired", "message": str(exc)}, status_code=409)
    if isinstance(exc, Busy):
        return _busy()
    if isinstance(exc, InvalidInputError):
        return JSONResponse({"error": "invalid_input", "message": str(exc)}, status_code=400)
    if isinstance(exc, (StoreError, VerifierConfigError)):
        log.error("verifier store failure: %s", exc)
        return JSONResponse({"error": "unavailable", "message": "the verifier database is unavailable"},
                            status_code=503)
    log.error("unexpected failure (%s)", type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
    return JSONResponse({"error": "internal", "message": "unexpected failure"}, status_code=500)


def _busy() -> JSONResponse:
    """Every hash slot (or the client's share of them) stayed taken: try again shortly."""
    return JSONResponse({"error": "busy", "message": "the verifier is busy: retry shortly"}, status_code=503,
                        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})


def _too_many(wait: float) -> HttpError:
    return HttpError(429, "rate_limited", "too many requests: retry later",
                     {"Retry-After": str(max(1, math.ceil(wait)))})


class SlowBody(HttpError):
    """The body did not arrive within its deadline: answered 408, then the connection is closed."""

    def __init__(self):
        super().__init__(408, "timeout", "the request body did not arrive in time", {"Connection": "close"})


async def _read_json(request: Request, limit: int, timeout: float = BODY_TIMEOUT_S) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HttpError(415, "unsupported_media_type", "send the body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None:
        size = ascii_int(declared)
        if size is None:
            raise HttpError(400, "invalid_input", "bad Content-Length")
        if size > limit:
            raise HttpError(413, "too_large", f"the body may be at most {limit} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):  # a body trickled byte by byte holds a connection no longer
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise HttpError(413, "too_large", f"the body may be at most {limit} bytes")
        data = load_json(body)
    except TimeoutError:
        raise SlowBody() from None
    except DuplicateMemberError:
        raise HttpError(400, "invalid_json", "the body names a member twice") from None
    except (ValueError, RecursionError):
        raise HttpError(400, "invalid_json", "the body is not JSON") from None
    finally:
        body[:] = bytes(len(body))
    if not isinstance(data, dict):
        raise HttpError(400, "invalid_input", "the body must be a JSON object")
    return data


def _string(data: dict, key: str, limit: int, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise HttpError(400, "invalid_input", f"field {key!r} must be a non-empty string of at most {limit} characters")
    return value


def _account_field(value, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ACCOUNT_CHARS:
        raise HttpError(400, "invalid_input",
                        f"{where} 'account' must be a non-empty string of at most {MAX_ACCOUNT_CHARS} characters")
    return value


def _only(data: dict, allowed: tuple[str, ...]) -> None:
    if set(data) - set(allowed):
        raise HttpError(400, "invalid_input", f"unknown field in the body (allowed: {', '.join(allowed)})")


class _Serving:
    """What the routes answer with: the Verifier, the token buckets and the caps on attempts in
    flight of its policy. Replaced whole on a reload; those of unchanged limits carry over (a
    reload neither refills a bucket nor frees a place)."""

    def __init__(self, verifier: Verifier, before: "_Serving | None" = None):
        policy = verifier.policy
        self.verifier = verifier
        self.by_address = _buckets(policy.address_rate, policy.address_burst, before and before.by_address)
        self.by_key = _buckets(policy.key_rate, policy.key_burst, before and before.by_key)
        self.attempts_by_address = _in_flight(policy.address_in_flight, before and before.attempts_by_address)
        self.attempts_by_key = _in_flight(policy.key_in_flight, before and before.attempts_by_key)


def _buckets(rate, burst, before: TokenBuckets | None) -> TokenBuckets:
    if before is not None and (before.rate, before.burst) == (float(rate), int(burst)):
        return before
    return TokenBuckets(rate, burst)


def _in_flight(limit, before: InFlight | None) -> InFlight:
    return before if before is not None and before.limit == int(limit) else InFlight(limit)


def _client(request: Request) -> str:
    """The key of the request's client for the per-address limits (an IPv6 client's /64)."""
    return client_key(request.client.host if request.client else None)


def replace_verifier(app: Starlette, verifier: Verifier) -> None:
    """Answer new requests with `verifier` (a reloaded configuration)."""
    app.state.serving = _Serving(verifier, app.state.serving)


def create_app(verifier: Verifier, openapi: bytes | None = None, metrics: "Metrics | None" = None,
               body_timeout_s: float = BODY_TIMEOUT_S) -> Starlette:
    """The ASGI app around one Verifier (thread-safe; the blocking calls run in a thread pool).
    With `metrics`, every answer is counted and GET /metrics serves the figures. A body must
    arrive within `body_timeout_s` once it is read (else 408, and the connection closes)."""
    if openapi is None:
        openapi = _bundled_openapi()
    quiet_repeats(log.name)
    if metrics is not None:
        verifier.hash_slots.on_change = metrics.hash_slots_changed
        verifier.hash_slots.on_hashed = metrics.hashed

    async def authorized(request: Request, action: str) -> tuple[Principal, Verifier]:
        serving = request.app.state.serving
        verifier = serving.verifier
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, "unauthorized", "an API key is needed: Authorization: Bearer <key>",
                            {"WWW-Authenticate": "Bearer"})
        principal = await run_in_threadpool(verifier.check_api_key, token.strip())
        if principal is None:
            raise HttpError(401, "unauthorized", "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
        wait = serving.by_key.take(principal.key_id)
        if wait:
            if metrics is not None:
                metrics.rate_limited.labels("key").inc()
            raise _too_many(wait)
        # the scope first, before any body is read; the account is checked by the Verifier
        if not principal.may(action):
            await run_in_threadpool(verifier.authorize, principal, action)  # refuses and audits
        return principal, verifier

    def route(name: str, handler, limited: bool = True):
        async def answer(request: Request) -> Response:
            try:
                if limited:
                    wait = request.app.state.serving.by_address.take(_client(request))
                    if wait:
                        if metrics is not None:
                            metrics.rate_limited.labels("address").inc()
                        raise _too_many(wait)
                return await handler(request)
            except Exception as exc:  # mapped in one place
                if metrics is not None and isinstance(exc, StoreError):
                    metrics.database_errors.inc()
                if metrics is not None and isinstance(exc, SlowBody):
                    metrics.connection_closed(CLOSED_SLOW_BODY)
                return _error_response(exc)

        if metrics is None:
            return answer

        async def counted(request: Request) -> Response:
            start = time.perf_counter()
            response = await answer(request)
            metrics.latency.labels(name).observe(time.perf_counter() - start)
            metrics.responses.labels(name, str(response.status_code)).inc()
            return response
        return counted

    async def import_record(request: Request) -> Response:
        principal, verifier = await authorized(request, IMPORT)
        data = await _read_json(request, MAX_RECORD_BYTES, body_timeout_s)
        record = VerifierRecord.from_dict(data)
        result = await run_in_threadpool(verifier.import_record, record, principal)
        if metrics is not None:
            metrics.imports.labels("forced" if result.forced else "imported" if result.imported
                                   else "unchanged").inc()
        return JSONResponse({"account": result.account, "label": result.label, "epoch": result.epoch,
                             "imported": result.imported, "superseded_epochs": list(result.superseded_epochs),
                             "forced": result.forced},
                            status_code=201 if result.imported else 200)

    async def verify(request: Request) -> Response:
        principal, verifier = await authorized(request, VERIFY)
        data = await _read_json(request, MAX_VERIFY_BYTES, body_timeout_s)
        account = _account_field(data.get("account"), "field")
        code = _string(data, "code", 128)
        _only(data, ("account", "code"))
        # one address, one key: only their share of the hash slots; over it, they wait their turn
        serving = request.app.state.serving
        deadline = time.monotonic() + verifier.policy.attempt_wait_s
        try:
            async with serving.attempts_by_address.slot(_client(request), deadline), \
                    serving.attempts_by_key.slot(principal.key_id, deadline):
                # the wait left is reckoned when a thread takes the attempt up, not before it queued
                result = await run_in_threadpool(
                    lambda: verifier.verify(account, code, principal, deadline - time.monotonic()))
        except TimeoutError:
            raise Busy("no turn came in time") from None
        if metrics is not None:
            metrics.verifies.labels(result.outcome).inc()
        body = {"result": result.outcome}
        if result.outcome == ACCEPTED:
            body.update(label=result.label, epoch=result.epoch, code_number=result.code_number,
                        remaining=result.remaining)
        elif result.retry_after:
            body["retry_after"] = result.retry_after
        headers = {"Retry-After": str(max(1, math.ceil(result.retry_after)))} \
            if result.outcome == THROTTLED and result.retry_after else None
        return JSONResponse(body, headers=headers)

    async def status(request: Request) -> Response:
        principal, verifier = await authorized(request, STATUS)
        account = _account_field(request.query_params.get("account"), "query parameter")
        state = await run_in_threadpool(verifier.status, account, principal)
        return JSONResponse({
            "account": state.account, "locked": state.locked, "failures": state.failures,
            "retry_after": state.retry_after, "remaining": state.remaining, "few_left": state.few_left,
            "sets": [{"label": s.label, "epoch": s.epoch, "format": s.format, "count": s.count,
                      "remaining": s.remaining, "fingerprint": s.fingerprint} for s in state.sets],
        })

    async def revoke(request: Request) -> Response:
        principal, verifier = await authorized(request, REVOKE)
        data = await _read_json(request, MAX_SMALL_BYTES, body_timeout_s)
        account = _account_field(data.get("account"), "field")
        label = _string(data, "label", 512, required=False)
        _only(data, ("account", "label"))
        revoked = await run_in_threadpool(verifier.revoke, account, label, principal)
        return JSONResponse({"revoked": [{"label": lbl, "epoch": epoch} for lbl, epoch in revoked]})

    async def unlock(request: Request) -> Response:
        principal, verifier = await authorized(request, UNLOCK)
        data = await _read_json(request, MAX_SMALL_BYTES, body_timeout_s)
        account = _account_field(data.get("account"), "field")
        _only(data, ("account",))
        was_locked = await run_in_threadpool(verifier.unlock, account, principal)
        return JSONResponse({"account": account, "was_locked": was_locked})

    async def audit(request: Request) -> Response:
        principal, verifier = await authorized(request, AUDIT)
        account = request.query_params.get("account")
        if account is not None:
            account = _account_field(account, "query parameter")
        limit_text = request.query_params.get("limit", "100")
        limit = ascii_int(limit_text)
        if limit is None or not 1 <= limit <= MAX_AUDIT_ROWS:
            raise HttpError(400, "invalid_input", f"query parameter 'limit' must be 1 to {MAX_AUDIT_ROWS}")
        rows = await run_in_threadpool(verifier.audit, account, limit, principal)
        return JSONResponse({"events": [{"at": r.at, "event": r.event, "account": r.account, "label": r.label,
                                         "epoch": r.epoch, "code_number": None if r.code_index is None
                                         else r.code_index + 1, "detail": r.detail} for r in rows]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        """Whether this process can answer: its database reachable and at this release's schema."""
        # no key is needed here: the answer is one of fixed texts, never the store's error, which
        # may name the database's host, port or file (that goes to the log)
        try:
            version = await run_in_threadpool(request.app.state.serving.verifier.store.schema_version)
        except StoreError as exc:
            log.warning("not ready: %s", exc)
            raise HttpError(503, "not_ready", NOT_READY_UNREACHABLE) from None
        if version != SCHEMA_VERSION:
            raise HttpError(503, "not_ready", NOT_READY_SCHEMA)
        return JSONResponse({"status": "ready"})

    async def exposition(request: Request) -> Response:
        await authorized(request, METRICS)
        if metrics is None:
            raise HttpError(404, "not_found", "this server keeps no metrics")
        return Response(await run_in_threadpool(metrics.exposition), media_type=_metrics_content_type())

    async def schema(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "not_found", "message": "no such endpoint"}, status_code=404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "method_not_allowed", "message": "method not allowed"}, status_code=405)

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error_response(exc)

    routes = [
        Route("/v1/records", route("records", import_record), methods=["POST"]),
        Route("/v1/verify", route("verify", verify), methods=["POST"]),
        Route("/v1/accounts/status", route("status", status), methods=["GET"]),
        Route("/v1/accounts/revoke", route("revoke", revoke), methods=["POST"]),
        Route("/v1/accounts/unlock", route("unlock", unlock), methods=["POST"]),
        Route("/v1/audit", route("audit", audit), methods=["GET"]),
        Route("/metrics", route("metrics", exposition), methods=["GET"]),
        Route("/v1/health", route("health", health, limited=False), methods=["GET"]),
        Route("/v1/ready", route("ready", ready), methods=["GET"]),
        Route("/v1/openapi.json", route("openapi", schema), methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed, 500: server_error})
    app.state.serving = _Serving(verifier)
    return app


def count_lockouts(metrics: "Metrics"):
    """An event listener (core.Event) counting lockouts in `metrics`."""
    def listener(event: Event) -> None:
        if event.kind == EVENT_ACCOUNT_LOCKED:
            metrics.lockouts.inc()
    return listener


def _metrics_content_type() -> str:
    from .metrics import CONTENT_TYPE

    return CONTENT_TYPE


def _bundled_openapi() -> bytes:
    try:
        return resources.files("sealcodes.verifier").joinpath("openapi.json").read_bytes()
    except (FileNotFoundError, OSError):
        return b'{"error": "not_found", "message": "the API schema is in docs/verifier-api.json"}'
